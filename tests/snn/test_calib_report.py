"""Unit tests of the calib report's statistics and claims (reprolab.snn.calib_report)."""

from __future__ import annotations

import pytest

from reprolab.snn import calib_report as R


def _record(seed: int, ann: str, none: str, light: str, advanced: str, T: int = 16) -> dict:
    acc = lambda b: b.count("1") / len(b)
    stages = [{"step": "threshold_max", "mismatch": [0.1, 0.2]}]
    return {
        "seed": seed, "n_test": len(ann), "ann_accuracy": acc(ann), "ann_correct": ann, "folded_accuracy": acc(ann),
        "threshold_scan_seconds": 1.0, "pipelines": {"none": ["threshold_max"], "light": ["threshold_mse", "bias"],
                                                     "advanced": ["threshold_mse", "potential"]},
        "calibration_images": {"threshold": 896, "bias": 128, "weight": 1024},
        "layers": ["a", "b"], "pooling": [False, True],
        "by_T": {str(T): {
            "accuracy": {"none": acc(none), "light": acc(light), "advanced": acc(advanced)},
            "correct": {"none": none, "light": light, "advanced": advanced},
            "stages": {"none": stages}, "seconds": {"none": 0.0, "light": 2.0, "advanced": 2.0},
        }},
    }


def test_paired_difference_counts_discordant_pairs() -> None:
    diff, se = R.paired_difference(["1100"], ["1010"])
    assert diff == 0.0
    # n10 = n01 = 1 of n = 4: sqrt(2 - 0) / 4
    assert se == pytest.approx(2 ** 0.5 / 4)
    diff, se = R.paired_difference(["1111"], ["0000"])
    assert diff == 1.0 and se == 0.0


def test_claims_follow_the_measurements() -> None:
    n = 400
    ann = "1" * n
    none = "1" * 200 + "0" * 200
    light = "1" * 380 + "0" * 20
    advanced = "1" * 390 + "0" * 10
    evals = {"exp": [_record(s, ann, none, light, advanced) for s in (1000, 1001)]}
    claims = {c.id: c for c in R.claims_from(evals, {"exp": {"epochs": [{"seconds": 5.0}], "n_train": 1000}}, 16,
                                             "demo", [])}
    assert claims["C1"].verdict == "supported"
    assert claims["C2a"].verdict == "supported"
    assert "90 % of the gap" in claims["C2a"].measured
    assert claims["C2b"].verdict == "supported"
    assert claims["C3"].verdict == "supported"


def test_light_that_recovers_little_is_not_supported() -> None:
    n = 400
    evals = {"exp": [_record(1000, "1" * n, "1" * 200 + "0" * 200, "1" * 250 + "0" * 150, "1" * 250 + "0" * 150)]}
    claims = {c.id: c for c in R.claims_from(evals, {}, 16, "demo", [])}
    assert claims["C2a"].verdict == "not supported"
    assert claims["C2b"].verdict == "inconclusive"


def test_no_gap_is_inconclusive_and_says_so() -> None:
    same = "1" * 300 + "0" * 100
    claims = {c.id: c for c in R.claims_from({"exp": [_record(1000, same, same, same, same)]}, {}, 16, "demo", [])}
    assert claims["C1"].verdict == "inconclusive" and claims["C2a"].verdict == "inconclusive"
    assert "no gap to recover" in claims["C2a"].measured
