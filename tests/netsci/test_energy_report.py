"""Claim builders of the energy report: each verdict is reachable, and too little data is inconclusive."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.netsci import energy_report as rep

CLAIMS = {"min_reduction": 0.1, "magnitude": {"target": 0.6, "margin": 0.15}, "order_min_reduction": 0.05}


def units(effect: float, subjects: int = 7, draws: int = 100, noise: float = 0.3, seed: int = 0):
    """Per-unit log ratios [subjects, draws] of the data and of the surrogates (surrogate - data = effect)."""
    rng = np.random.default_rng(seed)
    real = rng.normal(-1, 1.5, (1, draws)) + rng.normal(0, 0.3, (subjects, 1)) + rng.normal(0, noise, (subjects, draws))
    surrogate = real + effect + rng.normal(0, noise, (subjects, draws)) + rng.normal(0, 0.05, (subjects, 1))
    return real, surrogate


def variant_file(real: np.ndarray, surrogate: np.ndarray) -> dict:
    return {"fc": "p <= 0.05", "pinv": "N eps (paper)", "median_ratio": float(np.exp(np.median(real))),
            "surrogate_median_ratio": float(np.exp(np.median(surrogate))), "density_static": 0.7,
            "density_dynamic": 0.4, "real_log_ratio": real.tolist(), "surrogate_log_ratio": surrogate.tolist()}


def window_files(window: int, effect: float, free_effect: float | None = None, **kw) -> tuple[dict, dict]:
    """Compare and surrogate files of one window; ``free_effect``: the effect in the threshold-free variants."""
    real, surrogate = units(effect, **kw)
    s, d = real.shape
    compare = {"window": window, "n_draws": d, "n_subjects": s, "median_ratio": float(np.exp(np.median(real))),
               "median_ratio_ci95": [0.2, 0.3], "fraction_dynamic_lower": 0.7, "ratio_q25": 0.1, "ratio_q75": 0.9,
               "per_subject_median_ratio": [0.3] * s, "median_reduction": 0.7, "median_reduction_ci95": [0.6, 0.8],
               "density_static": 0.7, "density_dynamic": 0.4, "single_window_draws": 5}
    variants = {name: variant_file(real, surrogate) for name in rep.VARIANT_NAMES}
    if free_effect is not None:
        free = variant_file(*units(free_effect, **kw))
        variants.update({name: free for name in rep.THRESHOLD_FREE})
    surrogates = {"window": window, "n_draws": d, "n_subjects": s, "n_surrogates": 2, "variants": variants}
    return compare, surrogates


def claims_for(effects: dict[int, float], main: int = 30, free: dict[int, float] | None = None, **kw):
    files = {w: window_files(w, e, (free or {}).get(w), **kw) for w, e in effects.items()}
    return rep.energy_claims({w: f[0] for w, f in files.items()}, {w: f[1] for w, f in files.items()}, main, CLAIMS,
                             "demo", [])


@pytest.mark.parametrize(
    "effect, noise, direction, magnitude",
    [(np.log(1 / 0.4), 0.3, "supported", "supported"),  # data 60 % below the surrogates
     (np.log(1 / 0.1), 0.3, "supported", "not supported"),  # 90 % below: the direction holds, 60 % does not
     (-0.5, 0.3, "not supported", "not supported"),  # data above the surrogates
     (0.06, 1.5, "inconclusive", "not supported")],  # a small saving: cannot tell it from 0 or from 10 %
)
def test_energy_claims_against_the_surrogates(effect, noise, direction, magnitude):
    c1a, c1b, c1c = claims_for({30: effect, 50: effect}, noise=noise)
    assert (c1a.verdict, c1b.verdict) == (direction, magnitude)
    assert c1c.verdict == direction  # the threshold-free variants carry the same effect here
    assert [r["setting"] for r in c1a.by_setting] == ["w = 30 frames (pre-registered)", "w = 50 frames"]
    assert c1a.measured.startswith("median E_dyn/E_stat = ") and "surrogates" in c1a.measured
    assert "subjects" in c1a.note and "seeds" not in c1a.note


def test_energy_claims_that_flip_between_window_sizes_are_setting_dependent():
    c1a, _, _ = claims_for({30: np.log(1 / 0.4), 100: -0.5})
    assert c1a.verdict == "setting-dependent"
    assert {r["verdict"] for r in c1a.by_setting} == {"supported", "not supported"}


def test_energy_claims_with_two_subjects_and_three_draws_are_inconclusive():
    c1a, c1b, c1c = claims_for({30: np.log(1 / 0.4)}, subjects=2, draws=3, noise=1.5)
    assert c1a.verdict == c1b.verdict == c1c.verdict == "inconclusive"


@pytest.mark.parametrize(
    "free_effect, expected",
    [(np.log(1 / 0.4), "supported"),  # the saving survives without the threshold
     (-0.5, "not supported"),  # without the threshold the data need more energy than the surrogates
     (0.0, "inconclusive")],  # without the threshold the saving is gone, but 10 % is not ruled out
)
def test_c1c_judges_the_threshold_free_variants(free_effect, expected):
    """C1a can be supported while the saving comes from the threshold alone: C1c says so."""
    c1a, _, c1c = claims_for({30: np.log(1 / 0.4), 50: np.log(1 / 0.4)}, free={30: free_effect, 50: free_effect},
                             noise=1.0 if free_effect == 0.0 else 0.3)
    assert c1a.verdict == "supported" and c1c.verdict == expected, c1c.note
    assert [r["setting"] for r in c1c.by_setting] == ["w = 30 frames (pre-registered)", "w = 50 frames"]
    assert "unthresholded" in c1c.measured and "equal density" in c1c.measured


def test_c1c_is_judged_over_every_window():
    _, _, c1c = claims_for({30: np.log(1 / 0.4), 50: np.log(1 / 0.4)}, free={30: np.log(1 / 0.4), 50: -0.5})
    assert c1c.verdict == "setting-dependent"


def test_c1c_with_a_variant_missing_cannot_be_supported():
    compare, surrogates = window_files(30, np.log(1 / 0.4))
    del surrogates["variants"]["equal_density"]
    assert rep.threshold_free_verdict(surrogates["variants"], CLAIMS).verdict == "inconclusive"


def shuffle_summary(effect: float, window: int = 30, **kw) -> dict:
    recorded, shuffled = units(effect, **kw)
    return {"window": window, "n_pairs": recorded.size, "n_draws": recorded.shape[1], "n_subjects": recorded.shape[0],
            "n_shuffles": 20, "fraction_original_lower": 0.6, "per_draw_fraction_original_lower": 0.6,
            "per_draw_wilcoxon_p_greater": 0.01, "log_shuffled": shuffled.tolist(), "log_recorded": recorded.tolist()}


@pytest.mark.parametrize(
    "effect, kw, expected",
    [(0.5, {}, "supported"), (-0.3, {}, "not supported"), (0.02, {"noise": 1.0}, "inconclusive"),
     (0.5, {"subjects": 2, "draws": 3, "noise": 1.5}, "inconclusive")],
)
def test_shuffle_claim(effect, kw, expected):
    claim = rep.shuffle_claim({30: shuffle_summary(effect, **kw)}, 30, 0.05, "demo", [])
    assert claim.verdict == expected
    assert "two-way" in claim.note


def test_shuffle_claim_is_judged_over_every_window():
    """The order test at one window only hid a window where the order does not matter; now every window is shown."""
    same = {30: shuffle_summary(0.5), 50: shuffle_summary(0.5, window=50, seed=1)}
    claim = rep.shuffle_claim(same, 30, 0.05, "demo", [])
    assert claim.verdict == "supported"
    assert [r["setting"] for r in claim.by_setting] == ["w = 30 frames (pre-registered)", "w = 50 frames"]
    flips = {30: shuffle_summary(0.5), 50: shuffle_summary(-0.3, window=50, seed=1)}
    assert rep.shuffle_claim(flips, 30, 0.05, "demo", []).verdict == "setting-dependent"


def test_shuffle_claim_without_usable_draws_is_not_tested():
    assert rep.shuffle_claim({30: {"n_pairs": 0}}, 30, 0.05, "demo", []).verdict == "not tested"
    other_window_empty = {30: shuffle_summary(0.5), 100: {"window": 100, "n_pairs": 0}}
    claim = rep.shuffle_claim(other_window_empty, 30, 0.05, "demo", [])
    assert claim.verdict == "supported" and claim.by_setting[1]["verdict"] == "not tested"


def test_shuffle_claim_needs_the_pre_registered_window():
    with pytest.raises(ValueError, match="main_window"):
        rep.shuffle_claim({50: shuffle_summary(0.5, window=50)}, 30, 0.05, "demo", [])


def prediction(comb: np.ndarray, control: np.ndarray, graph: np.ndarray) -> dict:
    return {"r": {"combination": comb.tolist(), "control": control.tolist(), "graph": graph.tolist()}}


@pytest.mark.parametrize(
    "shift_control, shift_graph, n, expected",
    [(0.1, 0.1, 58, "supported"), (-0.1, 0.1, 58, "not supported"), (0.0, 0.1, 58, "inconclusive"),
     (0.1, 0.1, 3, "inconclusive")],
)
def test_combination_verdict(shift_control, shift_graph, n, expected):
    rng = np.random.default_rng(0)
    comb = rng.normal(0.2, 0.1, n)
    res = prediction(comb, comb - shift_control + rng.normal(0, 0.05, n), comb - shift_graph + rng.normal(0, 0.05, n))
    if n == 3:  # three behaviours with noisy differences
        res = prediction(comb, comb - shift_control + np.array([0.3, -0.3, 0.1]), comb - shift_graph + np.array([0.3, -0.2, 0.0]))
    assert rep.combination_verdict(res).verdict == expected
