"""Unit tests of the calib report's claims (reprolab.snn.calib_report), built to give each verdict."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.snn import calib_report as R

PIPES = {"none": ["threshold_max"], "light": ["threshold_mse", "bias"], "advanced": ["threshold_mse", "potential"]}


def _bits(n: int, correct: int, rng: np.random.Generator | None = None) -> str:
    """``correct`` ones among ``n`` (shuffled by ``rng``, else the first ones)."""
    b = np.zeros(n, dtype=int)
    b[:correct] = 1
    if rng is not None:
        rng.shuffle(b)
    return "".join(map(str, b))


def _record(seed: int, ann: str, by_T: dict[int, dict[str, str]]) -> dict:
    acc = lambda b: b.count("1") / len(b)
    stages = [{"step": "threshold_max", "mismatch": [0.1, 0.2]}]
    return {
        "seed": seed, "n_test": len(ann), "num_classes": 10, "ann_accuracy": acc(ann), "ann_correct": ann,
        "folded_accuracy": acc(ann), "threshold_scan_seconds": 1.0, "pipelines": PIPES,
        "calibration_images": {"threshold": 896, "bias": 128, "weight": 1024},
        "layers": ["a", "b"], "pooling": [False, False],
        "by_T": {str(T): {"accuracy": {k: acc(v) for k, v in bits.items()}, "correct": bits, "stages": {"none": stages},
                          "seconds": {"none": 0.0, "light": 2.0, "advanced": 2.0}} for T, bits in by_T.items()},
    }


def _evals(n: int, ann: int, none: int, light: int, advanced: int, seeds: int = 3, Ts=(16,)) -> dict:
    """Nested per-image outcomes: whatever a worse arm gets right, a better arm gets right too."""
    a = _bits(n, ann)
    return {"exp": [_record(1000 + s, a, {T: {"none": _bits(n, none), "light": _bits(n, light),
                                              "advanced": _bits(n, advanced)} for T in Ts}) for s in range(seeds)]}


RULES = R.ClaimRules(focus_T=16, T_range=(16, 32), naive_loss=0.05, recovered=0.5, advanced_gain=0.0,
                     few_batches_pipeline="light", ann_margin=0.02)


def _claims(evals: dict, rules: R.ClaimRules = RULES) -> dict:
    hist = {"exp": {"epochs": [{"seconds": 5.0}], "n_train": 1000}}
    return {c.id: c for c in R.claims_from(evals, hist, rules, "demo", [])}


def test_clear_measurements_give_supported() -> None:
    claims = _claims(_evals(2000, ann=1990, none=1000, light=1970, advanced=1990))
    assert {k: claims[k].verdict for k in ("C1", "C2a", "C2b", "C3")} == dict.fromkeys(("C1", "C2a", "C2b", "C3"),
                                                                                         "supported")
    assert "98 % of the gap recovered" in claims["C2a"].measured
    assert "naive_loss" in claims["C1"].note and "recovered" in claims["C2a"].note


def test_opposite_measurements_give_not_supported() -> None:
    # naive loses 1 point (below the 5-point smallest effect), light recovers little, advanced is worse,
    # and the light SNN is 20 points below the ANN.
    claims = _claims(_evals(2000, ann=2000, none=1980, light=1600, advanced=1400))
    assert claims["C1"].verdict == "not supported"  # the loss is well below 5 points
    assert claims["C2b"].verdict == "not supported"
    assert claims["C3"].verdict == "not supported"
    claims = _claims(_evals(400, ann=396, none=200, light=230, advanced=230))
    assert claims["C2a"].verdict == "not supported"  # 15 % of the gap recovered


def test_differences_within_the_noise_are_inconclusive() -> None:
    claims = _claims(_evals(100, ann=96, none=93, light=94, advanced=95))
    assert claims["C1"].verdict == "inconclusive"  # 3 points of 100 images: the interval contains 0 and 5
    assert claims["C2b"].verdict == "inconclusive"  # one image
    assert claims["C3"].verdict == "inconclusive"  # -1.5 points, interval crosses -2


def test_underpowered_input_is_inconclusive_and_says_so() -> None:
    claims = _claims(_evals(10, ann=10, none=9, light=10, advanced=10, seeds=1))
    for cid in ("C1", "C2a", "C2b", "C3"):
        assert claims[cid].verdict == "inconclusive", cid
    assert "half-width" in claims["C3"].note and "training variability needs at least" in claims["C1"].note


def test_no_gap_means_recovery_is_not_judged() -> None:
    claims = _claims(_evals(400, ann=300, none=300, light=300, advanced=300))
    assert claims["C2a"].verdict == "inconclusive" and "no gap to recover" in claims["C2a"].measured
    assert "precondition" in claims["C2a"].note


def test_c3_is_its_own_test_not_a_copy_of_c2a() -> None:
    # light recovers most of a large gap (C2a supported) but stays 8 points below the ANN (C3 not supported)
    claims = _claims(_evals(2000, ann=2000, none=1000, light=1840, advanced=1840))
    assert claims["C2a"].verdict == "supported" and claims["C3"].verdict == "not supported"


def test_c3_needs_both_networks_above_chance() -> None:
    claims = _claims(_evals(400, ann=40, none=40, light=40, advanced=40))
    assert claims["C3"].verdict == "inconclusive" and "chance" in claims["C3"].note


def test_other_T_are_shown_and_a_flip_inside_the_range_is_setting_dependent() -> None:
    n, a = 400, _bits(400, 396)
    by_T = {4: {"none": _bits(n, 40), "light": _bits(n, 100), "advanced": _bits(n, 120)},
            16: {"none": _bits(n, 200), "light": _bits(n, 392), "advanced": _bits(n, 396)},
            32: {"none": _bits(n, 390), "light": _bits(n, 393), "advanced": _bits(n, 396)},
            64: {"none": _bits(n, 396), "light": _bits(n, 396), "advanced": _bits(n, 396)}}
    evals = {"exp": [_record(1000 + s, a, by_T) for s in range(3)]}
    claims = _claims(evals)
    c1 = claims["C1"]
    assert [r["setting"].split(" ")[0] for r in c1.by_setting] == ["T=4", "T=16", "T=32", "T=64"]
    assert "outside" in c1.by_setting[0]["setting"] and "outside" in c1.by_setting[-1]["setting"]
    # naive loses 49 points at T=16 but 1.5 at T=32 (inside the range): the claim depends on T
    assert c1.verdict == "setting-dependent"
    # T=4 (outside the range) light recovers only 17 %: shown, but it does not flip C2a
    c2a = claims["C2a"]
    assert c2a.by_setting[0]["verdict"] == "not supported" and c2a.verdict != "setting-dependent"


def test_rules_come_from_the_config_keys() -> None:
    settings = {"focus_T": 32, "claims": {"T_range": [16, 64], "naive_loss": 0.1, "recovered": 0.8,
                                          "advanced_gain": 0.01, "few_batches": {"pipeline": "advanced",
                                                                                  "ann_margin": 0.03}}}
    rules = R.ClaimRules.from_settings(settings)
    assert rules == R.ClaimRules(32, (16, 64), 0.1, 0.8, 0.01, "advanced", 0.03)


def _shipped_rules() -> R.ClaimRules:
    """The claim rules of config/papers/calib.yaml at demo scale (papers.calib.claims)."""
    import yaml
    from pathlib import Path

    cfg = yaml.safe_load((Path(__file__).parents[2] / "config/papers/calib.yaml").read_text())["papers"]["calib"]
    return R.ClaimRules.from_settings(cfg)


def test_shipped_config_lets_a_null_advanced_gain_come_out_not_supported() -> None:
    """Advanced = light on 2000 images: the card's +0.35-point gain is ruled out (with 0 it was inconclusive)."""
    rules = _shipped_rules()
    assert rules.advanced_gain > 0
    claims = _claims(_evals(2000, ann=1990, none=1000, light=1970, advanced=1970), rules)
    assert claims["C2b"].verdict == "not supported", claims["C2b"].note
    assert "papers.calib.claims.advanced_gain" in claims["C2b"].note


def test_claim_rules_have_no_defaults_in_code() -> None:
    with pytest.raises(TypeError):
        R.ClaimRules(focus_T=16)  # type: ignore[call-arg]


def test_correct_matrix_stacks_seeds() -> None:
    evals = _evals(10, ann=10, none=5, light=8, advanced=9, seeds=2)
    m = R.correct_matrix(evals["exp"], 16, "light")
    assert m.shape == (2, 10) and m.sum() == 16
    with pytest.raises(ValueError):
        bad = _evals(10, ann=10, none=5, light=8, advanced=9, seeds=2)["exp"]
        bad[1]["by_T"]["16"]["correct"]["light"] = "1" * 9
        R.correct_matrix(bad, 16, "light")
