import json

import pytest

from reprolab.report.stats import group_runs, mean_std, noise_level, verdict


def test_mean_std_uses_the_sample_spread_and_zero_for_one_value():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert mean_std([5.0]) == (5.0, 0.0)


def test_noise_level_is_two_binomial_standard_errors_of_a_difference():
    # p = 0.5, n = 100: SE of one accuracy 0.05, of a difference 0.0707, two SE 0.1414
    assert noise_level(0.5, 100) == pytest.approx(2 * (2 * 0.25 / 100) ** 0.5)
    assert noise_level(0.5, 100, n_seeds=4) == pytest.approx(noise_level(0.5, 100) / 2)
    assert noise_level(0.9, 10_000, 2, seed_std=0.1) == pytest.approx(2 * 0.1)


def test_verdict_respects_the_noise_band_and_the_sign():
    assert verdict(0.05, 0.02) == "supported"
    assert verdict(-0.05, 0.02) == "not supported"
    assert verdict(0.01, 0.02) == "inconclusive"


def test_group_runs_by_experiment_and_key(tmp_path):
    for exp, arm, seed in [("a", "x", 1), ("a", "x", 2), ("a", "y", 1), ("b", "x", 1)]:
        path = tmp_path / exp / f"{arm}_s{seed}" / "eval.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"arm": arm, "seed": seed}))
    grouped = group_runs([str(p) for p in tmp_path.rglob("eval.json")], "arm")
    assert {e: {k: len(v) for k, v in arms.items()} for e, arms in grouped.items()} == {
        "a": {"x": 2, "y": 1}, "b": {"x": 1}}
