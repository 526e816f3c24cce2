"""planes claims: verdicts from per-volume Dice built to be supported, not supported, inconclusive, underpowered."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.medical.planes_report import claims_from, dice_table, dice_units, limited_budgets, works_gate
from reprolab.report.stats import Verdict

SETTINGS = {"claims": {"min_effect": 0.0, "margin": 0.01, "works_dice": 0.3}}
BUDGETS = ["1", "2", "all"]


def record(arm: str, dice: dict[str, np.ndarray]) -> dict:
    """An eval.json of one arm: ``dice[budget]`` is ``[seeds, volumes, classes]``."""
    runs = []
    for budget, values in dice.items():
        for s, per_volume in enumerate(values):
            runs.append({"seed": s + 1, "budget": budget, "n_labelled_subjects": 16 if budget == "all" else int(budget),
                         "test": {"volume": list(range(per_volume.shape[0])), "dice": per_volume.tolist(),
                                  "subject": [f"s{v // 2}" for v in range(per_volume.shape[0])],
                                  "hd": np.full(per_volume.shape, np.nan).tolist(),
                                  "assd": np.full(per_volume.shape, np.nan).tolist()},
                         "history": [{"epoch": 1, "train_loss": 1.0, "val_dice": 0.5}]})
    return {"arm": arm, "classes": ["a", "b", "c"], "runs": runs}


def arms(gains: dict[str, dict[str, float]], seeds: int = 3, volumes: int = 16, noise: float = 0.02,
         seed: int = 0, level: float = 0.6) -> dict[str, dict]:
    """Four arms sharing per-volume difficulty; ``gains[arm][budget]`` is added to scratch's Dice (about ``level``)."""
    rng = np.random.default_rng(seed)
    base = {b: level + 0.05 * i + rng.normal(0, 0.05, (1, volumes, 1)) for i, b in enumerate(BUDGETS)}
    out = {}
    for arm in ("scratch", "line", "slice", "multitask"):
        out[arm] = record(arm, {b: np.clip(base[b] + gains.get(arm, {}).get(b, 0.0)
                                           + rng.normal(0, noise, (seeds, volumes, 3)), 0, 1) for b in BUDGETS})
    return out


def verdicts(finetune) -> dict[str, str]:
    return {c.id: c.verdict for c in claims_from(finetune, SETTINGS, "demo", ["x.json"])}


def test_clear_gains_at_few_labels_are_supported():
    gain = {"1": 0.08, "2": 0.05, "all": 0.0}
    v = verdicts(arms({"line": gain, "slice": gain, "multitask": {"1": 0.12, "2": 0.06, "all": 0.01}}))
    assert v["C1a"] == v["C1b"] == v["C1c"] == v["C1d"] == "supported"
    assert v["C2a"] == v["C2b"] == "supported"  # multitask clearly better than either
    assert v["C3"] == "not tested"


def test_pretraining_that_hurts_is_not_supported():
    hurt = {"1": -0.08, "2": -0.08, "all": -0.02}
    v = verdicts(arms({"line": hurt, "slice": hurt, "multitask": {"1": -0.15, "2": -0.15, "all": 0.0}}))
    assert v["C1a"] == v["C1b"] == v["C1c"] == "not supported"
    assert v["C1d"] == "not supported"  # the (negative) gain is smaller with few labels
    assert v["C2a"] == v["C2b"] == "not supported"


def test_equal_arms_are_inconclusive_for_superiority():
    v = verdicts(arms({}))
    assert v["C1a"] == v["C1b"] == v["C1c"] == v["C1d"] == "inconclusive"


def test_underpowered_comparisons_are_inconclusive():
    # a real 3-point gain, but 3 test volumes and very noisy runs: the interval cannot exclude 0
    gain = {"1": 0.03, "2": 0.03, "all": 0.0}
    v = verdicts(arms({"line": gain, "slice": gain, "multitask": gain}, volumes=3, noise=0.15, seed=3))
    assert v["C1a"] == v["C1b"] == v["C1c"] == "inconclusive"
    assert v["C2a"] == v["C2b"] == "inconclusive"


def test_a_flip_between_limited_budgets_is_setting_dependent():
    v = verdicts(arms({"multitask": {"1": 0.1, "2": -0.1, "all": 0.0}}))
    assert v["C1c"] == "setting-dependent"


def test_units_are_paired_by_seed_and_volume_and_mismatches_are_refused():
    finetune = arms({})
    units, seeds, volumes = dice_units(finetune["line"], "1")
    assert units.shape == (3, 16) and seeds == [1, 2, 3] and volumes == list(range(16))
    assert limited_budgets(finetune["line"]) == ["1", "2"]
    finetune["line"]["runs"][0]["test"]["volume"] = list(range(1, 17))
    with pytest.raises(ValueError, match="different volumes"):
        dice_units(finetune["line"], "1")
    table = dice_table(arms({}), ["a", "b", "c"])
    assert len(table.rows) == 4 * 3 and table.rows[2][1] == "all (16)"


SUPPORTED, REFUTED, OPEN = (Verdict("supported", "s"), Verdict("not supported", "n"), Verdict("inconclusive", "i"))


@pytest.mark.parametrize(("verdict", "claimed", "comparator", "expected"), [
    (SUPPORTED, 0.6, 0.5, "supported"),         # both work: the comparison stands
    (OPEN, 0.6, 0.5, "inconclusive"),
    (REFUTED, 0.6, 0.7, "not supported"),
    (SUPPORTED, 0.2, 0.1, "not supported"),     # the claimed arm does not work: no benefit to claim
    (OPEN, 0.25, 0.6, "not supported"),
    (SUPPORTED, 0.6, 0.2, "inconclusive"),      # beating a comparator that does not work is no evidence
    (REFUTED, 0.35, 0.29, "inconclusive"),
])
def test_works_gate_outcomes(verdict, claimed, comparator, expected):
    out = works_gate(verdict, claimed, comparator, 0.3, "line only", "scratch")
    assert out.verdict == expected
    if expected != verdict.verdict:
        assert "works_dice" in out.reason and verdict.reason in out.reason


def test_works_gate_refuses_a_threshold_outside_0_1():
    with pytest.raises(ValueError, match="works_dice"):
        works_gate(SUPPORTED, 0.6, 0.5, 30.0, "a", "b")


def test_a_gain_over_a_scratch_arm_that_does_not_work_is_inconclusive():
    # scratch at about 0.1 Dice, pretraining +0.4 at every limited budget: "supported" without the gate
    gain = {"1": 0.4, "2": 0.4, "all": 0.4}
    finetune = arms({"line": gain, "slice": gain, "multitask": gain}, level=0.1)
    v = verdicts(finetune)
    assert v["C1a"] == v["C1b"] == v["C1c"] == v["C1d"] == "inconclusive"
    ungated = {c.id: c.verdict for c in claims_from(finetune, {"claims": {**SETTINGS["claims"], "works_dice": 0.0}},
                                                     "demo", ["x.json"])}
    assert ungated["C1a"] == ungated["C1b"] == ungated["C1c"] == "supported"


def test_a_pretrained_arm_that_does_not_work_is_not_supported():
    # every arm near 0.15 Dice with a small real gain: both at chance, not a reproduction
    gain = {"1": 0.08, "2": 0.08, "all": 0.0}
    v = verdicts(arms({"line": gain, "slice": gain, "multitask": gain}, level=0.05))
    assert v["C1a"] == v["C1b"] == v["C1c"] == v["C1d"] == "not supported"
    assert v["C2a"] == v["C2b"] == "not supported"
