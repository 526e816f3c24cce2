"""Claims of the girnet report: each builder on inputs built to give every verdict."""

import numpy as np
import pytest

from reprolab.medical.girnet_report import (
    claim_lesion,
    claim_premise,
    claim_registration,
    claims_ablation,
    claims_from,
    lesion_table,
    registration_table,
    unit_table,
)


def _runs(values: np.ndarray, metric: str, extra: dict | None = None, segmentation: bool = True) -> dict:
    """{seed: eval record} with ``values[seed_index, subject]`` as the per-subject ``metric``."""
    values = np.atleast_2d(values)
    subjects = [f"sub{i}" for i in range(values.shape[1])]
    out = {}
    for k, row in enumerate(values):
        per = {metric: list(map(float, row))}
        for name, table in (extra or {}).items():
            per[name] = list(map(float, np.atleast_2d(table)[k]))
        out[42 + k] = {"subjects": subjects, "per_subject": per, "polarity": "m", "has_segmentation": segmentation,
                       "train_lesion_dice": {"m": 0.5, "1-m": 0.01}}
    return out


CLAIMS = {"registration_metric": "dice_mean", "registration_metrics": ["dice_mean", "dice_near_lesion_mean"],
          "registration_min_effect": 0.01, "lesion_min_effect": 0.1}
REG_METRICS = ("dice_mean", "dice_near_lesion_mean")


def _reg(values: np.ndarray, identity: np.ndarray | None = None, near: np.ndarray | None = None,
         extra: dict | None = None, segmentation: bool = True) -> dict:
    """Runs with both registration metrics (near-lesion = whole-volume unless given) and their identity values."""
    identity = values - 0.1 if identity is None else identity
    near = values if near is None else near
    tables = {"dice_near_lesion_mean": near, "dice_mean_identity": identity,
              "dice_near_lesion_mean_identity": identity, **(extra or {})}
    return _runs(values, "dice_mean", tables, segmentation)


def _pair(a: np.ndarray, b: np.ndarray, arm_a: str = "girnet", arm_b: str = "symnet", identity=None):
    identity = b - 0.1 if identity is None else identity
    return {arm_a: _reg(a, identity), arm_b: _reg(b, identity)}


RNG = np.random.default_rng(0)
BASE = 0.7 + 0.05 * RNG.standard_normal((2, 10))


def _noise(scale: float, shape=(2, 10)) -> np.ndarray:
    """Subject-level noise whose mean is the same for every seed (no training variability)."""
    e = scale * RNG.standard_normal(shape)
    return e - e.mean(axis=1, keepdims=True)


@pytest.mark.parametrize(("shift", "noise", "expected"), [
    (0.03, 0.005, "supported"),
    (-0.03, 0.005, "not supported"),
    (0.0, 0.05, "inconclusive"),
])
def test_registration_claim_gives_each_verdict(shift, noise, expected):
    girnet = BASE + shift + (_noise(noise) if expected != "inconclusive" else noise * RNG.standard_normal(BASE.shape))
    claim = claim_registration(_pair(girnet, BASE), "demo", [], CLAIMS)
    assert claim.verdict == expected, claim.note
    assert "x100" in claim.measured and claim.id == "C1"
    assert "structure Dice near the lesion" in claim.measured and "Other settings" in claim.note


def test_registration_claim_is_inconclusive_when_the_registration_does_nothing():
    # GIRNet far better than SYM-Net, but SYM-Net scores the identity map's Dice: the subjects are
    # (nearly) aligned already, so a difference between registrations is not evidence.
    girnet = BASE + 0.05 + _noise(0.002)
    claim = claim_registration(_pair(girnet, BASE, identity=BASE + _noise(0.001)), "demo", [], CLAIMS)
    assert claim.verdict == "inconclusive", claim.note
    assert "precondition" in claim.note and "no registration" in claim.note


def test_registration_claim_that_flips_between_metrics_is_setting_dependent():
    girnet = _reg(BASE + 0.03 + _noise(0.002), identity=BASE - 0.1, near=BASE - 0.03 + _noise(0.002))
    claim = claim_registration({"girnet": girnet, "symnet": _reg(BASE, identity=BASE - 0.1)}, "demo", [], CLAIMS)
    assert claim.verdict == "setting-dependent", claim.note


def test_premise_compares_oracle_masking_with_symnet():
    evals = _pair(BASE + 0.03 + _noise(0.002), BASE, arm_a="symnet_cfm")
    assert claim_premise(evals, "demo", [], CLAIMS).verdict == "supported"
    evals = _pair(BASE + _noise(0.002), BASE, arm_a="symnet_cfm")
    assert claim_premise(evals, "demo", [], CLAIMS).verdict == "not supported"  # rules out a 1-point gain
    assert claim_premise(_pair(BASE, BASE), "demo", [], CLAIMS).verdict == "not tested"


def test_registration_claim_is_inconclusive_when_underpowered():
    # One seed, two subjects, a positive but noisy gain: the interval is far too wide.
    claim = claim_registration(_pair(np.array([[0.72, 0.76]]), np.array([[0.70, 0.70]])), "demo", [], CLAIMS)
    assert claim.verdict == "inconclusive"
    assert "training variability needs at least" in claim.note


def test_registration_claim_is_not_tested_without_the_baseline():
    claim = claim_registration({"girnet": _reg(BASE)}, "demo", [], CLAIMS)
    assert claim.verdict == "not tested"


def _lesion(dice: np.ndarray, random: np.ndarray) -> dict:
    return {"girnet": _runs(dice, "lesion_dice", {"lesion_dice_random_mask": random})}


@pytest.mark.parametrize(("dice", "expected"), [
    (0.6, "supported"),
    (0.07, "not supported"),  # above chance, but not "well above" (the interval excludes +10 points)
])
def test_lesion_claim_gives_each_verdict(dice, expected):
    random = 0.03 + 0.005 * RNG.random((2, 10))
    value = dice + _noise(0.01)
    claim = claim_lesion(_lesion(value, random), "demo", [], CLAIMS)
    assert claim.verdict == expected, claim.note
    assert "polarity m" in claim.measured


def test_lesion_claim_is_inconclusive_when_noisy_or_underpowered():
    noisy = claim_lesion(_lesion(0.1 + 0.3 * RNG.random((2, 6)), 0.05 + 0.3 * RNG.random((2, 6))), "demo", [], CLAIMS)
    assert noisy.verdict == "inconclusive", noisy.note
    tiny = claim_lesion(_lesion(np.array([[0.3, 0.1]]), np.array([[0.05, 0.05]])), "demo", [], CLAIMS)
    assert tiny.verdict == "inconclusive", tiny.note


def test_ablation_claims_compare_girnet_with_each_ablation():
    evals = {
        "girnet": _reg(BASE + 0.03, BASE - 0.1, extra={"lesion_dice": 0.5 + _noise(0.01)}),
        "no_inpainting_guidance": _reg(BASE + _noise(0.002), BASE - 0.1, extra={"lesion_dice": 0.55 + _noise(0.01)}),
        "symnet": _reg(BASE, BASE - 0.1, segmentation=False),
    }
    claims = {c.id: c for c in claims_ablation(evals, "demo", [], CLAIMS)}
    assert claims["C3a"].verdict == "supported"
    assert claims["C3b"].verdict == "not tested"  # the no_segmentation_loss arm did not run
    assert claims["C3c"].verdict == "not supported"


def test_all_claims_and_tables_from_one_set_of_runs():
    per = {"dice_mean": BASE, "dice__grey_matter": BASE, "lncc": BASE * 0.3, "folding_percent": BASE * 0,
           "deformation_error_mm": BASE * 3, "dice_near_lesion_mean": BASE, "dice_mean_identity": BASE - 0.1,
           "dice_near_lesion_mean_identity": BASE - 0.1}
    seg = {"lesion_dice": BASE * 0.5, "lesion_dice_m": BASE * 0.5, "lesion_dice_inverse": BASE * 0.01,
           "lesion_dice_random_mask": BASE * 0.02, "lesion_dice_random_voxels": BASE * 0.01, "mask_voxels": BASE * 100,
           "lesion_voxels": BASE * 90}
    evals = {"girnet": _runs(BASE + 0.01, "dice_mean", {**per, **seg}),
             "symnet": _runs(BASE, "dice_mean", per, segmentation=False)}
    claims = claims_from(evals, "demo", ["x.json"], CLAIMS)
    assert [c.id for c in claims] == ["C0", "C1", "C2", "C3a", "C3b", "C3c"]
    t1 = registration_table(evals, ["grey_matter"])
    assert len(t1.rows) == 3 and t1.rows[1][-1] == "-"  # no near-lesion error measured; last row: identity
    with pytest.raises(ValueError, match="papers.girnet.claims"):
        claims_from(evals, "demo", [], {**CLAIMS, "registration_metric": "lncc"})
    t2 = lesion_table(evals)
    assert len(t2.rows) == 1 and "s42: m" in t2.rows[0][1]
    assert unit_table(evals, "girnet", "dice_mean").shape == (2, 10)


def test_unit_table_refuses_runs_on_different_subjects():
    runs = _runs(BASE, "dice_mean")
    runs[43]["subjects"] = list(reversed(runs[43]["subjects"]))
    with pytest.raises(KeyError, match="other subjects"):
        unit_table({"girnet": runs}, "girnet", "dice_mean")
