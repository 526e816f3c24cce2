"""mmcbm claim builders: supported, not supported, inconclusive and underpowered inputs."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.medical.mmcbm_folds import classification_metrics
from reprolab.medical.mmcbm_report import claim_c1, claim_c2, claim_f1_value, claim_reader, explanation_hits

SETTINGS = {"claims": {"c1_margin": 0.05, "n_boot": 400}, "explain": {"top_k": 15, "check_k": 5}}


def corrupt(y: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """``y`` with a fraction ``rate`` of the labels replaced by another class."""
    wrong = rng.random(len(y)) < rate
    return np.where(wrong, (y + rng.integers(1, 3, len(y))) % 3, y)


def c1_metrics(n: int, backbone_error: float, mmcbm_error: float, seed: int = 0, source: str = "generated") -> dict:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.72, 0.17, 0.11])
    bb, mm = corrupt(y, backbone_error, rng), corrupt(y, mmcbm_error, rng)
    return {
        "source": source,
        "oof": {"labels": y.tolist(), "patients": [f"p{i}" for i in range(n)], "backbone": [bb.tolist()],
                "mmcbm": [mm.tolist()]},
        "pooled": {"backbone": classification_metrics(y, bb), "mmcbm": classification_metrics(y, mm)},
    }


def test_c1_supported_when_mmcbm_matches_the_backbone_on_many_patients():
    m = c1_metrics(4000, 0.05, 0.05, seed=1)
    m["oof"]["mmcbm"] = m["oof"]["backbone"]  # the same predictions: no difference at all
    assert claim_c1(m, SETTINGS, "demo", []).verdict == "supported"


def test_c1_not_supported_when_mmcbm_is_clearly_worse():
    claim = claim_c1(c1_metrics(3000, 0.05, 0.35), SETTINGS, "demo", [])
    assert claim.verdict == "not supported" and "MMCBM - backbone" in claim.measured


def test_c1_inconclusive_when_the_interval_crosses_the_margin():
    claim = claim_c1(c1_metrics(300, 0.10, 0.14, seed=2), SETTINGS, "demo", [])
    assert claim.verdict == "inconclusive"


def test_c1_underpowered_is_inconclusive_even_with_equal_predictions():
    m = c1_metrics(12, 0.0, 0.0, seed=3)
    assert claim_c1(m, SETTINGS, "smoke", []).verdict == "inconclusive"


def test_c1_two_arms_at_the_majority_rule_are_not_a_reproduction():
    m = c1_metrics(3000, 0.0, 0.0, seed=4)
    majority = [[0] * 3000]
    m["oof"]["backbone"] = m["oof"]["mmcbm"] = majority
    claim = claim_c1(m, SETTINGS, "demo", [])
    assert claim.verdict == "inconclusive" and "precondition" in claim.note


def test_paper_f1_is_not_tested_on_generated_data_and_judged_on_cti():
    assert claim_f1_value(c1_metrics(200, 0.1, 0.1), SETTINGS, "demo", []).verdict == "not tested"
    close = c1_metrics(3000, 0.03, 0.05, source="CTI")  # macro-F1 0.925, interval inside 0.91 +- 0.05
    assert claim_f1_value(close, SETTINGS, "paper", []).verdict == "supported"
    edge = c1_metrics(3000, 0.03, 0.10, source="CTI")  # macro-F1 0.854: the interval crosses 0.86
    assert claim_f1_value(edge, SETTINGS, "paper", []).verdict == "inconclusive"
    far = c1_metrics(3000, 0.03, 0.40, source="CTI")
    assert claim_f1_value(far, SETTINGS, "paper", []).verdict == "not supported"
    assert claim_reader("demo").verdict == "not tested"


def c2_metrics(k: int, per_class: int, hit: bool, seed: int = 0) -> dict:
    """``k`` concepts, ``per_class`` of them associated with each class; top contributions on (or off) them."""
    rng = np.random.default_rng(seed)
    ref = np.full((3, k), 0.2)
    owner = np.full(k, -1)
    for c in range(3):
        idx = np.arange(c * per_class, (c + 1) * per_class)
        ref[c, idx], owner[idx] = 0.8, c
    contrib = rng.uniform(0, 0.1, (3, k))
    for c in range(3):
        target = np.flatnonzero(owner == c) if hit else np.flatnonzero(owner != c)
        contrib[c, target[: 2 * per_class]] += 1.0
    return {"contributions": contrib.tolist(), "class_weights": np.full((3, k + 3), 0.5).tolist(),
            "concepts": {"names": [f"c{j}" for j in range(k)], "reference": ref.tolist(), "visible": None,
                         "reference_kind": "generator P(c|y)"}}


def test_c2_supported_when_top_concepts_are_the_associated_ones():
    m = c2_metrics(30, 5, hit=True)
    hits, chance, top = explanation_hits(m, 5)
    assert hits.mean() == 1.0 and chance == pytest.approx(5 / 30) and len(top) == 3
    assert claim_c2(m, SETTINGS, "demo", []).verdict == "supported"


def test_c2_not_supported_when_top_concepts_belong_to_other_classes():
    m = c2_metrics(30, 10, hit=False)
    settings = {**SETTINGS, "explain": {"top_k": 15, "check_k": 15}}
    assert claim_c2(m, settings, "demo", []).verdict == "not supported"


def test_c2_inconclusive_at_chance():
    m = c2_metrics(30, 5, hit=True)
    m["contributions"] = np.random.default_rng(5).uniform(size=(3, 30)).tolist()  # unrelated to the reference
    settings = {**SETTINGS, "explain": {"top_k": 15, "check_k": 6}}
    assert claim_c2(m, settings, "demo", []).verdict == "inconclusive"


def test_c2_underpowered_with_one_concept_per_class():
    # half of the concepts are associated with each class (chance 1/2); one listed concept per class, all right
    ref = np.array([[0.8, 0.8, 0.8, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 0.8, 0.8, 0.8], [0.8, 0.2, 0.8, 0.2, 0.8, 0.2]])
    contrib = np.zeros((3, 6))
    contrib[0, 0] = contrib[1, 3] = contrib[2, 4] = 1.0
    m = {"contributions": contrib.tolist(), "class_weights": np.full((3, 9), 0.5).tolist(),
         "concepts": {"names": [f"c{j}" for j in range(6)], "reference": ref.tolist(), "visible": None,
                      "reference_kind": "generator P(c|y)"}}
    settings = {**SETTINGS, "explain": {"top_k": 15, "check_k": 1}}
    hits, chance, _ = explanation_hits(m, 1)
    assert hits.sum() == 3 and chance == pytest.approx(0.5)
    assert claim_c2(m, settings, "demo", []).verdict == "inconclusive"
