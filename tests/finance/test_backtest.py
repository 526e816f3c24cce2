"""Accuracy / MCC, the paired bootstrap and the daily long/short backtest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from reprolab.finance.backtest import backtest, bootstrap_differences, classification_metrics


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    m = classification_metrics(y, p)
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, p))
    assert m["accuracy"] == pytest.approx((y == p).mean())
    assert np.array(m["confusion"]).sum() == 200


def test_one_class_prediction_gives_zero_mcc_and_flag():
    m = classification_metrics(np.array([0, 1, 1, 0]), np.ones(4, dtype=int))
    assert m["mcc"] == 0.0 and m["one_class"]


def test_bootstrap_is_centred_on_the_observed_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random((2, 400)) < 0.8, y, 1 - y)
    bad = rng.integers(0, 2, (2, 400))
    d = bootstrap_differences(y, good, bad, 300, np.random.default_rng(2))
    observed = np.mean([(g == y).mean() for g in good]) - np.mean([(b == y).mean() for b in bad])
    assert abs(d["accuracy"].mean() - observed) < 0.01
    assert (d["mcc"] > 0).all()


def test_backtest_by_hand():
    dates = np.array(["2015-10-01", "2015-10-01", "2015-10-02", "2015-10-02"], dtype="datetime64[D]")
    stock = np.array([0, 1, 0, 1])
    ret = np.array([0.02, -0.01, 0.01, 0.03])
    pred = np.array([1, 0, 1, 1])
    r = backtest(dates, stock, ret, pred, cost_bps=10.0)
    # day 1: (+0.02 + 0.01) / 2 minus 10 bp on turnover 1; day 2: (0.01 + 0.03) / 2 minus 10 bp on turnover 1
    expected = np.array([0.015 - 0.001, 0.02 - 0.001])
    np.testing.assert_allclose(r["daily_return"], expected)
    assert r["cumulative_return"] == pytest.approx(np.prod(1 + expected) - 1)
    assert r["trades"] == 3 and r["hit_rate"] == pytest.approx(1.0)
    flat = backtest(dates, stock, ret, pred, cost_bps=0.0, mode="long_only")
    np.testing.assert_allclose(flat["daily_return"], [0.01, 0.02])
