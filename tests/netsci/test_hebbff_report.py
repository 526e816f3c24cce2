"""Claim builders of the hebbff report: each verdict is reachable, and too little data is inconclusive."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.netsci import hebbff as hb
from reprolab.netsci import hebbff_report as rep
from reprolab.report.stats import per_sample

MODES = ["dataset", "infinite"]


def per_run(observed: float, runs: int = 12, spread: float = 0.1) -> np.ndarray:
    """Per-run rho with mean ``observed``."""
    values = np.random.default_rng(1).normal(0.0, spread, runs)
    return observed + values - values.mean()


def group(observed: float, null_values: np.ndarray, runs: int = 12, spread: float = 0.1) -> dict:
    """One correlation claim's statistics as hebbff.group_statistics writes them."""
    rho = per_run(observed, runs, spread)
    return {"mean": observed, "null_mean": float(null_values.mean()), "null_std": float(null_values.std()),
            "positive": int((rho > 0).sum()), "n": runs, **hb.null_test(observed, null_values),
            **hb.sign_rank_test(rho)}


def fake_stats(lag_observed: list[float], shuffles: int = 99, seed: int = 0, null_centre: float = 0.0,
               spread: float = 0.1) -> dict:
    """Statistics of 12 runs whose null mean rho is ~N(null_centre, 0.15) at every lag."""
    rng = np.random.default_rng(seed)
    nulls = [rng.normal(null_centre, 0.15, shuffles) for _ in lag_observed]
    tests = [hb.null_test(o, n) | hb.sign_rank_test(per_run(o, spread=spread)) for o, n in zip(lag_observed, nulls)]
    g = {
        "Q_acc": group(lag_observed[0], nulls[0], spread=spread),
        "Q_flex": group(lag_observed[0], nulls[0], spread=spread),
        "Q_acc_lags": list(lag_observed),
        "null_Q_acc_lags": [float(n.mean()) for n in nulls],
        "Q_acc_lag_tests": tests,
        "first_Q": [0.1, 0.0], "final_Q": [0.3, 0.0], "null_first_Q": [0.1, 0.0], "null_final_Q": [0.2, 0.0],
    }
    return {"alpha": 0.05, "modes": MODES, "all": g, "by_mode": {m: g for m in MODES}, "test_repeats": 2,
            "window": 5, "mode_differences": {}}


@pytest.mark.parametrize(
    "observed, expected",
    [([0.6, 0.5, 0.4], "supported"), ([-0.6, -0.5, -0.4], "not supported"), ([0.05, 0.0, 0.1], "inconclusive"),
     ([0.6, 0.5, -0.6], "setting-dependent")],
)
def test_modularity_claim_against_the_null_at_the_chosen_lags(observed, expected):
    claim = rep.modularity_claim(fake_stats(observed), chosen_lag=0, scale="demo", evidence=[], predict_lag=1)
    assert claim.verdict == expected
    assert [r["setting"] for r in claim.by_setting] == ["lag d = 0 (pre-registered)", "lag d = 1 (pre-registered)",
                                                        "lag d = 2"]
    assert "lag d = 0 and d = 1" in claim.note


def test_modularity_claim_needs_q_to_predict_later_accuracy_too():
    # rises with accuracy at lag 0, but no evidence that it predicts accuracy at the next snapshot
    stats = fake_stats([0.6, 0.05, 0.4])
    assert rep.modularity_claim(stats, chosen_lag=0, scale="demo", evidence=[]).verdict == "supported"
    claim = rep.modularity_claim(stats, chosen_lag=0, scale="demo", evidence=[], predict_lag=1)
    assert claim.verdict == "inconclusive" and "[lag 1]" in claim.note


def test_modularity_claim_lag_outside_the_computed_lags_is_a_config_error():
    with pytest.raises(rep.ConfigError, match="analysis.max_lag"):
        rep.modularity_claim(fake_stats([0.6, 0.5, 0.4]), chosen_lag=0, scale="demo", evidence=[], predict_lag=3)


def test_modularity_claim_with_too_few_null_networks_is_inconclusive():
    claim = rep.modularity_claim(fake_stats([0.9, 0.9, 0.9], shuffles=9), chosen_lag=0, scale="demo", evidence=[],
                                 predict_lag=1)
    assert claim.verdict == "inconclusive" and "cannot be tested here" in claim.note


@pytest.mark.parametrize(
    "observed, shuffles, expected",
    [(0.6, 99, "supported"), (-0.6, 99, "not supported"), (0.05, 99, "inconclusive"), (0.9, 9, "inconclusive")],
)
def test_flexibility_claim(observed, shuffles, expected):
    claim = rep.flexibility_claim(fake_stats([observed], shuffles), scale="demo", evidence=[])
    assert claim.verdict == expected


def test_beating_a_negative_null_is_not_a_positive_correlation():
    """Mean rho +0.06, about half the runs negative, null well below: above the null, but not positive."""
    stats = fake_stats([0.06], null_centre=-0.5, spread=0.4)
    assert stats["all"]["Q_flex"]["p_null"] < 0.05 and stats["all"]["Q_flex"]["p_positive"] > 0.05
    claim = rep.flexibility_claim(stats, scale="demo", evidence=[])
    assert claim.verdict == "inconclusive" and "positive_across_runs" in claim.note


def test_a_positive_correlation_the_null_reproduces_is_not_supported_as_a_prediction():
    stats = fake_stats([0.4], null_centre=0.4)
    assert rep.flexibility_claim(stats, scale="demo", evidence=[]).verdict == "inconclusive"


def fake_evals(accuracies: list[float], steps: int = 2000, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    evals = []
    for i, acc in enumerate(accuracies):
        targets = (rng.random(steps) < 1 / 3).astype(int)
        correct = np.zeros(steps, dtype=bool)
        correct[rng.permutation(steps)[: round(acc * steps)]] = True
        preds = np.where(correct, targets, 1 - targets)
        evals.append({"mode": MODES[i % 2], "seed": i, "accuracy_trained_R": acc, "accuracy_task_R": acc,
                      "trained_R": [3], "task_R": 3, "chance": 2 / 3, "sequences": 4,
                      "trained_R_samples": per_sample(preds, targets)})
    return evals


@pytest.mark.parametrize(
    "accuracies, steps, expected",
    [([0.97, 0.98, 0.96, 0.99], 2000, "supported"), ([0.97, 0.80, 0.96, 0.99], 2000, "not supported"),
     ([0.97, 0.905, 0.96, 0.99], 2000, "inconclusive"), ([1.0, 1.0, 1.0, 1.0], 20, "inconclusive")],
)
def test_learning_claim_needs_every_network_above_the_bar(accuracies, steps, expected):
    claim = rep.learning_claim(fake_evals(accuracies, steps), 0.9, "demo", [])
    assert claim.verdict == expected


def mode_stats(locations: list[float], runs: int, spread: float = 0.05, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    by_mode = {f"m{i}": [{k: float(rng.normal(loc, spread)) for k in hb.MODE_SUMMARIES} for _ in range(runs)]
               for i, loc in enumerate(locations)}
    return {"alpha": 0.05, "modes": list(by_mode), "mode_differences": hb.mode_differences(by_mode, 999, seed, 300)}


LARGE = 0.14  # analysis.mode_min_effect


def test_modes_claim_supported_when_modes_separate():
    claim = rep.modes_claim(mode_stats([0, 1, 2, 3], 3), LARGE, "demo", [])
    assert claim.verdict == "supported" and len(claim.by_setting) == len(hb.MODE_SUMMARIES)


def test_modes_claim_not_supported_when_many_runs_show_the_modes_alike():
    claim = rep.modes_claim(mode_stats([0, 0, 0, 0], 100, spread=1.0, seed=2), LARGE, "demo", [])
    assert claim.verdict == "not supported", claim.note
    assert "alike" in claim.note


def test_modes_claim_inconclusive_when_modes_overlap_with_few_runs():
    # the same identical modes with three runs each: the interval of eta^2_H cannot exclude a large effect
    claim = rep.modes_claim(mode_stats([0, 0, 0, 0], 3, spread=1.0), LARGE, "demo", [])
    assert claim.verdict == "inconclusive"


def test_modes_claim_a_significant_but_small_difference_is_not_supported_as_different():
    # many runs, a shift of 0.3 sd between two of four modes: significant, eta^2_H well below 0.14
    stats = mode_stats([0, 0, 0, 0.3], 200, spread=1.0, seed=3)
    d = stats["mode_differences"]["final_Q"]
    assert d["p"] < 0.01 and d["eta2"] < LARGE
    assert rep.modes_claim(stats, LARGE, "demo", []).verdict != "supported"


def test_modes_claim_underpowered_says_it_cannot_be_tested():
    # two modes with two runs each: at best 1/3 of relabelings separate them as well
    claim = rep.modes_claim(mode_stats([0, 10], 2), LARGE, "demo", [])
    assert claim.verdict == "inconclusive" and "cannot be tested here" in claim.note
    one_seed = rep.modes_claim(mode_stats([0, 10], 1), LARGE, "demo", [])
    assert one_seed.verdict == "inconclusive" and "no summary testable" in one_seed.measured


def test_eta_squared_h_bounds():
    assert hb.eta_squared_h([np.array([1.0, 2.0]), np.array([3.0, 4.0])]) == pytest.approx((2.4 - 1) / 2)
    # no difference between 4 modes of 3 runs: typically 0 and on average below 'large' (0.14), where
    # H / (n - 1) averages about 0.27
    rng = np.random.default_rng(0)
    null = [hb.eta_squared_h([rng.standard_normal(3) for _ in range(4)]) for _ in range(300)]
    assert np.median(null) < 0.05 and np.mean(null) < 0.14
    assert hb.eta_squared_h([np.ones(3), np.ones(3)]) == 0.0
    eps, low, high = hb.eta_squared_h_interval([np.arange(5.0), np.arange(5.0) + 100], 200, 0)
    assert eps > 0.7 and low > 0.5 and high <= 1.0
