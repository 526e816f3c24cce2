"""planes claims: verdicts from per-volume Dice built to be supported, not supported, inconclusive, underpowered."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.medical.planes_report import claims_from, dice_table, dice_units, limited_budgets

SETTINGS = {"claims": {"min_effect": 0.0, "margin": 0.01}}
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
         seed: int = 0) -> dict[str, dict]:
    """Four arms sharing per-volume difficulty; ``gains[arm][budget]`` is added to scratch's Dice."""
    rng = np.random.default_rng(seed)
    base = {b: 0.6 + 0.05 * i + rng.normal(0, 0.05, (1, volumes, 1)) for i, b in enumerate(BUDGETS)}
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
