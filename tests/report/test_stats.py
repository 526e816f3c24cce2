import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from reprolab.report.stats import (
    Comparison,
    Verdict,
    above_chance,
    across_settings,
    all_of,
    correctness,
    equivalence,
    group_runs,
    mean_std,
    metric_comparison,
    non_inferiority,
    paired_comparison,
    per_sample,
    require,
    significance,
    superiority,
    wilson_interval,
)


def _arms(rng, n, seeds, p_a, p_b, seed_sd=0.0):
    """0/1 correctness of two arms on one test set of ``n`` items of varying difficulty."""
    difficulty = rng.normal(0, 1.5, n)
    def arm(p):
        logit = np.log(p / (1 - p))
        shifts = rng.normal(0, seed_sd, (seeds, 1))
        prob = 1 / (1 + np.exp(-(logit + 1.5 - difficulty + shifts)))
        return (rng.random((seeds, n)) < prob).astype(float)
    return arm(p_a), arm(p_b)


def test_mean_std_and_wilson():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert mean_std([5.0]) == (5.0, 0.0)
    lo, hi = wilson_interval(0, 100)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.03 < hi < 0.04  # never of zero width at 0 %
    lo, hi = wilson_interval(100, 100)
    assert 0.96 < lo < 0.97 and hi == 1.0


def test_a_shared_test_set_is_not_divided_by_the_number_of_seeds():
    rng = np.random.default_rng(0)
    a, b = _arms(rng, 200, 1, 0.7, 0.7)
    one = paired_comparison(a, b)
    # The same predictions copied to 8 "seeds": no new information, so no narrower interval.
    eight = paired_comparison(np.repeat(a, 8, 0), np.repeat(b, 8, 0))
    assert eight.half_width == pytest.approx(one.half_width, rel=1e-6)
    assert not one.seeds_known and eight.seeds_known


def test_seed_to_seed_variability_widens_the_interval():
    rng = np.random.default_rng(1)
    calm = paired_comparison(*_arms(rng, 300, 3, 0.7, 0.7, seed_sd=0.0))
    shaky = paired_comparison(*_arms(rng, 300, 3, 0.7, 0.7, seed_sd=1.0))
    assert shaky.half_width > calm.half_width


def test_noise_never_collapses_at_zero_or_full_accuracy():
    zeros, ones = np.zeros((3, 100)), np.ones((3, 100))
    for x in (zeros, ones):
        cmp = paired_comparison(x, x)
        assert cmp.estimate == 0 and cmp.half_width > 0.01


@pytest.mark.parametrize("seeds, seed_sd", [(1, 0.0), (2, 0.0), (3, 0.0), (5, 0.4), (5, 1.0)])
def test_intervals_cover_a_null_difference_about_95_percent_of_the_time(seeds, seed_sd):
    rng = np.random.default_rng(2)
    covered = []
    for _ in range(300):
        cmp = paired_comparison(*_arms(rng, 150, seeds, 0.75, 0.75, seed_sd=seed_sd))
        covered.append(cmp.low <= 0 <= cmp.high)
    assert 0.92 <= np.mean(covered) <= 0.995  # honest, and not uselessly conservative


def test_two_seeds_give_an_interval_conditional_on_the_networks_not_a_lottery():
    """With 2 seeds a seed term would have 1 df (t = 12.7): the interval is conditional instead, and says so."""
    rng = np.random.default_rng(8)
    widths, texts = [], set()
    for _ in range(200):
        cmp = paired_comparison(*_arms(rng, 100, 2, 0.9, 0.9))
        widths.append(cmp.half_width)
        texts.add("conditional on these 2 seeds" in cmp.describe())
    assert np.quantile(widths, 0.9) < 1.5 * np.median(widths) and texts == {True}


def test_a_seed_term_is_kept_only_when_seeds_really_differ():
    rng = np.random.default_rng(9)
    calm = paired_comparison(*_arms(rng, 300, 5, 0.7, 0.7, seed_sd=0.0))
    shaky = paired_comparison(*_arms(rng, 300, 5, 0.7, 0.7, seed_sd=1.5))
    assert "seed term kept" in shaky.method and shaky.half_width > 1.5 * calm.half_width


def test_groups_widen_the_interval_when_units_move_together():
    rng = np.random.default_rng(3)
    day_effect = np.repeat(rng.normal(0, 0.3, 40), 25)  # 40 days x 25 stocks
    a = (day_effect + rng.normal(0, 0.1, 1000))[None, :]
    b = np.zeros_like(a)
    days = np.repeat(np.arange(40), 25)
    assert paired_comparison(a, b, groups=days).half_width > 2 * paired_comparison(a, b).half_width


def test_unpaired_arms_are_refused():
    with pytest.raises(ValueError, match="not paired"):
        paired_comparison(np.zeros((2, 10)), np.zeros((2, 11)))


def test_per_sample_records_pair_only_on_one_test_set():
    recs = [per_sample([0, 1, 1], [0, 1, 0]), per_sample([0, 0, 0], [0, 1, 0])]
    assert correctness(recs).tolist() == [[1, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="one test set"):
        correctness([per_sample([0, 1], [0, 1]), per_sample([0, 1], [1, 0])])
    with pytest.raises(ValueError, match="per-unit"):
        correctness([{"accuracy": 0.5}])


@pytest.mark.parametrize("metric, reference", [
    ("accuracy", accuracy_score),
    ("macro_f1", lambda y, p: f1_score(y, p, average="macro")),
    ("mcc", matthews_corrcoef),
])
def test_metric_comparison_estimates_the_difference_of_the_metric(metric, reference):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 300)
    pa = np.where(rng.random((2, 300)) < 0.8, y, rng.integers(0, 3, (2, 300)))
    pb = np.where(rng.random((2, 300)) < 0.6, y, rng.integers(0, 3, (2, 300)))
    cmp = metric_comparison(y, pa, pb, metric, n_boot=500)
    expected = np.mean([reference(y, p) for p in pa]) - np.mean([reference(y, p) for p in pb])
    assert cmp.estimate == pytest.approx(expected)
    assert cmp.low < cmp.estimate < cmp.high and cmp.low > 0


def test_metric_comparison_groups_resample_patients_as_blocks():
    rng = np.random.default_rng(5)
    patients = np.repeat(np.arange(30), 10)
    y = np.repeat(rng.integers(0, 2, 30), 10)
    pa = np.where(np.repeat(rng.random(30) < 0.8, 10), y, 1 - y)[None, :]
    pb = np.where(np.repeat(rng.random(30) < 0.8, 10), y, 1 - y)[None, :]
    grouped = metric_comparison(y, pa, pb, "accuracy", groups=patients, n_boot=500)
    naive = metric_comparison(y, pa, pb, "accuracy", n_boot=500)
    assert grouped.n_units == 30 and grouped.half_width > 1.5 * naive.half_width


# --- verdicts: supported, not supported, inconclusive, underpowered ---------------------

def _cmp(est, half):
    return Comparison.from_interval(est, est - half, est + half, "test interval", n_units=100, n_seeds=(3, 3))


@pytest.mark.parametrize("cmp, expected", [
    (_cmp(0.05, 0.02), "supported"),
    (_cmp(-0.05, 0.02), "not supported"),
    (_cmp(0.01, 0.02), "inconclusive"),
    (_cmp(0.10, 0.30), "inconclusive"),  # underpowered
])
def test_superiority(cmp, expected):
    assert superiority(cmp).verdict == expected


def test_superiority_with_a_smallest_effect_of_interest():
    assert superiority(_cmp(0.01, 0.005), min_effect=0.05).verdict == "not supported"
    assert superiority(_cmp(0.02, 0.019), min_effect=0.05).verdict == "not supported"
    assert superiority(_cmp(0.06, 0.02), min_effect=0.05).verdict == "supported"
    below = superiority(_cmp(0.04, 0.02), min_effect=0.05)  # above 0, estimate below the effect of interest
    assert below.verdict == "inconclusive" and "smallest effect of interest" in below.reason
    assert "measurably worse" in superiority(_cmp(0.0, 0.01)).reason


def test_superiority_says_when_a_null_effect_cannot_be_ruled_out_at_this_scale():
    wide = superiority(_cmp(0.0, 0.03), min_effect=0.02)  # half-width 3 points >= 2: a null can't be "not supported"
    assert wide.verdict == "inconclusive" and "cannot come out 'not supported' here" in wide.reason
    narrow = superiority(_cmp(0.01, 0.015), min_effect=0.02)  # half-width 1.5 < 2: a null could be ruled out
    assert narrow.verdict == "inconclusive" and "cannot come out" not in narrow.reason


@pytest.mark.parametrize("cmp, expected", [
    (_cmp(0.0, 0.01), "supported"),
    (_cmp(0.06, 0.01), "not supported"),
    (_cmp(0.015, 0.01), "inconclusive"),
    (_cmp(0.0, 0.05), "inconclusive"),  # underpowered
])
def test_equivalence(cmp, expected):
    assert equivalence(cmp, margin=0.02).verdict == expected


def test_equivalence_says_when_supported_is_out_of_reach():
    assert "cannot be reached" in equivalence(_cmp(0.0, 0.05), margin=0.02).reason
    assert "cannot be reached" not in equivalence(_cmp(0.015, 0.01), margin=0.02).reason


@pytest.mark.parametrize("cmp, expected", [
    (_cmp(0.0, 0.01), "supported"),
    (_cmp(-0.06, 0.01), "not supported"),
    (_cmp(-0.02, 0.01), "inconclusive"),
    (_cmp(0.0, 0.08), "inconclusive"),  # underpowered
])
def test_non_inferiority(cmp, expected):
    assert non_inferiority(cmp, margin=0.02).verdict == expected


@pytest.mark.parametrize("acc, n, expected", [
    (0.9, 100, "supported"),
    (0.02, 100, "not supported"),
    (0.12, 100, "inconclusive"),
    (0.2, 5, "inconclusive"),  # underpowered: 5 test samples
])
def test_above_chance(acc, n, expected):
    correct = np.zeros((2, n))
    correct[:, : round(acc * n)] = 1
    assert above_chance(correct, chance=0.1).verdict == expected


def test_a_failed_precondition_never_hides_not_supported():
    collapsed = non_inferiority(_cmp(-0.8, 0.05), margin=0.02)  # the claimed arm fell to chance
    gated = require(collapsed, mtt=Verdict("inconclusive", "at chance."), sdt=Verdict("supported", "fine."))
    assert gated.verdict == "not supported" and "precondition" in gated.reason
    assert require(Verdict("supported", "x."), a=Verdict("inconclusive", "y.")).verdict == "inconclusive"


def test_two_arms_at_zero_accuracy_never_support_equivalence():
    zeros = np.zeros((3, 100))
    eq = equivalence(paired_comparison(zeros, zeros), margin=0.05)
    assert eq.verdict == "supported"  # on its own the interval is tight...
    gated = require(eq, sdt=above_chance(zeros, 0.1), mtt=above_chance(zeros, 0.1))
    assert gated.verdict == "inconclusive" and "chance" in gated.reason  # ...but it is not a reproduction


@pytest.mark.parametrize("p, ok, smallest, expected", [
    (0.001, True, 0.0, "supported"),
    (0.001, False, 0.0, "not supported"),
    (0.3, True, 0.0, "inconclusive"),
    (0.001, True, 0.1, "inconclusive"),  # underpowered: the test cannot go below 0.1
])
def test_significance(p, ok, smallest, expected):
    assert significance(p, ok, smallest_p=smallest).verdict == expected


def test_across_settings_reports_flips_as_setting_dependent():
    s, n, i = Verdict("supported", "a."), Verdict("not supported", "b."), Verdict("inconclusive", "c.")
    assert across_settings({"30": s, "50": i}, "30").verdict == "supported"
    flip = across_settings({"30": s, "50": i, "100": n}, "30")
    assert flip.verdict == "setting-dependent" and "100" in flip.reason
    assert across_settings({"30": n, "50": s}, "30").verdict == "setting-dependent"
    assert across_settings({"30": i, "50": s, "100": n}, "30").verdict == "setting-dependent"  # others conflict
    assert across_settings({"30": i, "50": s, "100": i}, "30").verdict == "inconclusive"
    with pytest.raises(ValueError, match="chosen"):
        across_settings({"30": s}, "40")


def test_verdicts_are_checked():
    with pytest.raises(ValueError):
        Verdict("probably", "")


def test_group_runs_by_experiment_and_key(tmp_path):
    for exp, arm, seed in [("a", "x", 1), ("a", "x", 2), ("a", "y", 1), ("b", "x", 1)]:
        path = tmp_path / exp / f"{arm}_s{seed}" / "eval.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"arm": arm, "seed": seed}))
    grouped = group_runs([str(p) for p in tmp_path.rglob("eval.json")], "arm")
    assert {e: {k: len(v) for k, v in arms.items()} for e, arms in grouped.items()} == {
        "a": {"x": 2, "y": 1}, "b": {"x": 1}}


def test_all_of_needs_every_part():
    s, n, i = Verdict("supported", "a."), Verdict("not supported", "b."), Verdict("inconclusive", "c.")
    assert all_of({"x": s, "y": s}).verdict == "supported"
    assert all_of({"x": s, "y": n, "z": i}).verdict == "not supported"
    assert all_of({"x": s, "y": i}).verdict == "inconclusive"
    assert "[y] c." in all_of({"x": s, "y": i}).reason


def test_comparisons_speak_of_their_own_units_and_repeats():
    rng = np.random.default_rng(6)
    cmp = paired_comparison(rng.normal(0, 1, (7, 50)), rng.normal(0, 1, (7, 50)), units="draws", seeds="subjects")
    text = cmp.describe()
    assert "50 draws, 7 subjects per arm" in text and "paired over draws and subjects" in text
    one = paired_comparison(rng.normal(0, 1, 50), rng.normal(0, 1, 50), units="draws", seeds="subjects")
    assert "conditional on this one subject" in one.describe()
