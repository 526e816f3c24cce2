"""Accuracy / MCC, the open-to-open returns of the next-open fill and the daily long/short backtest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from reprolab.finance.backtest import FILLS, backtest, classification_metrics
from reprolab.finance.stocknet import PRICE_COLUMNS, open_to_open_returns


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


def _price_rows(opens: np.ndarray, closes: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Corpus price rows: opens over the previous ``basis`` close, movement of the ``basis`` closes."""
    feat = np.zeros((len(opens), len(PRICE_COLUMNS)))
    feat[1:, PRICE_COLUMNS.index("open_rel")] = opens[1:] / basis[:-1] - 1
    feat[1:, PRICE_COLUMNS.index("movement")] = basis[1:] / basis[:-1] - 1
    return feat


def test_next_open_fill_earns_the_raw_open_to_open_return():
    opens = np.array([99.0, 101.0, 103.0, 104.0, 50.0, 51.0, 49.0])
    closes = np.array([100.0, 102.0, 101.0, 105.0, 50.5, 50.0, 48.0])
    # StockNet measures raw opens against the previous *adjusted* close: any close series gives the same ratio.
    adjusted = closes * np.array([0.97, 0.97, 0.98, 0.98, 1.0, 1.0, 1.0])
    stock = np.array([0, 0, 0, 0, 1, 1, 1])
    for basis in (closes, adjusted):
        out = open_to_open_returns(_price_rows(opens, closes, basis), stock)
        expected = [103 / 101 - 1, 104 / 103 - 1, np.nan, np.nan, 49 / 51 - 1, np.nan, np.nan]
        np.testing.assert_allclose(out, expected)  # no return across stocks or past the last row


def test_fills_name_sample_fields():
    assert list(FILLS) == ["next_open", "same_close"]
    assert set(FILLS.values()) == {"next_open_return", "next_return"}


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
    assert r["trades"] == 3 and r["hit_rate"] == pytest.approx(1.0) and r["untraded"] == 0
    flat = backtest(dates, stock, ret, pred, cost_bps=0.0, mode="long_only")
    np.testing.assert_allclose(flat["daily_return"], [0.01, 0.02])


def test_a_position_without_an_exit_price_is_not_traded():
    dates = np.array(["2015-10-01", "2015-10-01", "2015-10-02", "2015-10-02"], dtype="datetime64[D]")
    stock = np.array([0, 1, 0, 1])
    ret = np.array([0.02, -0.01, 0.01, np.nan])
    r = backtest(dates, stock, ret, np.array([1, 0, 1, 1]), cost_bps=0.0)
    # day 2 holds stock 0 only; stock 1's short is closed (turnover, no cost here)
    np.testing.assert_allclose(r["daily_return"], [0.015, 0.01])
    assert r["untraded"] == 1 and r["days"] == ["2015-10-01", "2015-10-02"]
