"""The sdconv validation split and the choice of alpha on it (reprolab.vision.validation)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.vision.validation import read_split, run_split, select_alpha, validation_split


def test_split_is_stratified_seeded_disjoint_and_recorded(tmp_path):
    labels = np.repeat(np.arange(10), [30, 20, 25, 30, 30, 28, 22, 30, 30, 35])
    np.savez(tmp_path / "train.npz", images=np.zeros((len(labels), 1, 2, 2), np.float32), labels=labels)
    rec = run_split({"dataset": "digits"}, {"validation": {"fraction": 0.2, "seed": 3}}, str(tmp_path / "train.npz"),
                    str(tmp_path / "split.json"))
    fit, val = np.array(rec["fit"]), np.array(rec["validation"])
    assert len(set(fit) & set(val)) == 0 and len(fit) + len(val) == len(labels)
    assert abs(len(val) - 0.2 * len(labels)) <= 1
    for c, n in zip(*np.unique(labels, return_counts=True), strict=True):  # every class keeps its share
        assert abs((labels[val] == c).sum() - 0.2 * n) <= 1
    again = validation_split(labels, 0.2, 3)
    assert np.array_equal(again[1], val) and not np.array_equal(validation_split(labels, 0.2, 4)[1], val)
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["seed"] == 3 and saved["fraction"] == 0.2 and saved["stratified"]
    assert sum(saved["class_counts"]["validation"].values()) == len(val)
    assert np.array_equal(read_split(tmp_path / "split.json")["fit"], fit)


def test_split_respects_the_training_limit(tmp_path):
    labels = np.tile(np.arange(5), 40)
    np.savez(tmp_path / "train.npz", images=np.zeros((len(labels), 1, 2, 2), np.float32), labels=labels)
    rec = run_split({"dataset": "digits", "limit": {"train": 100}}, {"validation": {"fraction": 0.25, "seed": 0}},
                    str(tmp_path / "train.npz"), str(tmp_path / "s.json"))
    assert rec["n_train"] == 100 and max(rec["fit"] + rec["validation"]) < 100


def test_a_fraction_that_empties_a_class_names_the_key():
    with pytest.raises(ConfigError, match="validation.fraction"):
        validation_split(np.array([0, 0, 1, 1, 2]), 0.2, 0)


def _history(run: str, seed: int, acc: float, nonzero: int) -> dict:
    arm, _, alpha = run.partition("_a")
    return {"run": run, "arm": arm, "alpha": float(alpha) if alpha else None, "seed": seed,
            "validation": {"accuracy": acc, "n": 200, "nonzero": nonzero}}


SETTINGS = {"alphas": {"sdconv": [1e-4, 3e-4, 1e-3]}, "chosen_alpha": "validation",
            "alpha_selection": {"max_val_drop": 0.01}}


def _histories(accs: dict[str, float], nonzeros: dict[str, int]) -> list[dict]:
    return [_history(run, s, accs[run] + 0.002 * (s - 1), nonzeros.get(run, 50_000)) for run in accs for s in (1, 2)]


def test_alpha_is_the_sparsest_within_the_validation_drop_of_dy_conv():
    accs = {"dynamic": 0.97, "sdconv_a0.0001": 0.968, "sdconv_a0.0003": 0.962, "sdconv_a0.001": 0.94}
    nonzeros = {"sdconv_a0.0001": 40_000, "sdconv_a0.0003": 25_000, "sdconv_a0.001": 12_000}
    sel = select_alpha(_histories(accs, nonzeros), SETTINGS)
    assert sel["chosen"] == 3e-4  # 1e-3 is sparser but 3 points below DY-Conv on validation
    assert sel["alphas"]["0.0003"]["validation_accuracy"] == pytest.approx(0.963)
    assert "fewest non-zero" in sel["rule"] and sel["n_validation"] == 200


def test_without_an_alpha_close_to_dy_conv_the_best_validation_accuracy_wins():
    accs = {"dynamic": 0.99, "sdconv_a0.0001": 0.95, "sdconv_a0.0003": 0.96, "sdconv_a0.001": 0.90}
    sel = select_alpha(_histories(accs, {}), SETTINGS)
    assert sel["chosen"] == 3e-4 and "highest mean validation accuracy" in sel["rule"]


def test_a_fixed_alpha_is_recorded_as_fixed_and_missing_runs_stop():
    accs = {"dynamic": 0.97, "sdconv_a0.0001": 0.968, "sdconv_a0.0003": 0.962, "sdconv_a0.001": 0.94}
    sel = select_alpha(_histories(accs, {}), {**SETTINGS, "chosen_alpha": 1e-3})
    assert sel["chosen"] == 1e-3 and "fixed" in sel["rule"]
    from reprolab.core.errors import DataError

    with pytest.raises(DataError, match="0.001"):
        select_alpha([h for h in _histories(accs, {}) if h["run"] != "sdconv_a0.001"], SETTINGS)
