"""Claim builders of the mtt report: each verdict reachable, and inconclusive when underpowered."""

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.snn.mtt_report import (
    CLAIM_RULES,
    accuracy_range,
    claims_from,
    cost_claim,
    event_claims,
    flexibility_claim,
    keeps_accuracy,
    range_comparison,
    spread,
)

RULES = dict(CLAIM_RULES, n_boot=500)


def bernoulli(rng, p, shape):
    return (rng.random(shape) < np.asarray(p)).astype(float)


def flip(rng, correct, rate):
    """The same correctness with a fraction ``rate`` of entries flipped (a second, almost identical arm)."""
    return np.where(rng.random(correct.shape) < rate, 1 - correct, correct)


def arm(base, deployed=None, event=None, clock=None):
    """A summary arm with per-sample correctness (and the scalars the claim texts print)."""
    deployed = base if deployed is None else deployed
    n_seeds, n_T, n = base.shape
    event = base[:, -1] if event is None else event
    clock = base[:, -1] if clock is None else clock
    return {
        "n_seeds": n_seeds, "n_test": n, "max_T": n_T, "num_classes": 10, "clock_T": n_T,
        "base_correct": base, "deployed_correct": deployed, "event_correct": event, "clock_correct_event": clock,
        "base_spread": spread(base.mean((0, 2))), "deployed_spread": spread(deployed.mean((0, 2))),
        "base_hetero": None, "base_accuracy": float(base[:, -1].mean()), "clock_accuracy": float(clock.mean()),
        "clock_accuracy_event_subset": float(clock.mean()), "event_accuracy": float(event.mean()),
        "event_n_test": event.shape[1], "agreement": float((event == clock).mean()), "min_v": None,
        "other_floor_min_v": -1.0, "event_accuracy_other_floor": 0.5, "fine_T": {},
    }


def curve(rng, accs, seeds, n):
    """``[seeds, T, n]`` correctness with the given accuracy at each T."""
    return bernoulli(rng, np.asarray(accs)[None, :, None], (seeds, len(accs), n))


FLAT = [0.9] * 6
STEEP = [0.2, 0.4, 0.6, 0.75, 0.85, 0.9]


def steady(rng, acc, seeds, n, n_T=6, rate=0.01):
    """``[seeds, n_T, n]``: one network's answers at max_T, the other T flipping ``rate`` of them (as a
    flexible network answers the same samples right at every T)."""
    last = bernoulli(rng, acc, (seeds, 1, n))
    return np.concatenate([flip(rng, np.repeat(last, n_T - 1, axis=1), rate), last], axis=1)


# ----------------------------------------------------------------------------- C1 range statistic


def test_accuracy_range_per_seed_and_under_weights():
    c = np.array([[[1, 1, 0, 0], [1, 1, 1, 1]]], float)  # one seed, T=2: 50 % then 100 %
    assert accuracy_range(c).tolist() == [0.5]
    w = np.array([[4, 0, 0, 0], [0, 0, 4, 0]], float)  # resample only sample 0, or only sample 2
    assert accuracy_range(c, w).tolist() == [[0.0], [1.0]]


def test_range_comparison_interval_covers_a_null_difference():
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(60):
        a, b = curve(rng, STEEP, 3, 150), curve(rng, STEEP, 3, 150)
        cmp = range_comparison(a, b, n_boot=300, seed=1)
        covered.append(cmp.low <= 0 <= cmp.high)
    assert np.mean(covered) >= 0.85


def test_range_comparison_never_collapses_for_flat_arms():
    same = np.ones((2, 5, 100))
    cmp = range_comparison(same, same, n_boot=200)
    assert cmp.estimate == 0 and cmp.half_width > 0.01


def test_range_comparison_has_no_seed_term_from_two_seeds():
    """Two seeds give the seed spread one degree of freedom: conditional on the networks, as the stats layer."""
    rng = np.random.default_rng(12)
    a2, b2 = curve(rng, STEEP, 2, 200), curve(rng, FLAT, 2, 200)
    two = range_comparison(a2, b2, n_boot=300)
    assert two.df == pytest.approx(199) and not two.seeds_known and "seed spread" not in two.method
    assert "conditional" in two.describe()
    a3, b3 = curve(rng, STEEP, 3, 200), curve(rng, FLAT, 3, 200)
    three = range_comparison(a3, b3, n_boot=300)
    assert three.seeds_known and "seed spread" in three.method


def test_range_comparison_refuses_unpaired_arms():
    with pytest.raises(ValueError, match="same T and units"):
        range_comparison(np.ones((2, 5, 100)), np.ones((2, 4, 100)))


# ----------------------------------------------------------------------------- C1


@pytest.mark.parametrize("sdt_accs, mtt_accs, seeds, n, expected", [
    (STEEP, 0.9, 3, 400, "supported"),       # 0.9: a steady MTT network (steady())
    (FLAT, STEEP, 3, 400, "not supported"),
    ([0.84, 0.86, 0.88, 0.9, 0.9, 0.9], FLAT, 3, 400, "inconclusive"),
    ([0.8, 0.85, 0.9, 0.9, 0.9, 0.9], FLAT, 2, 10, "inconclusive"),  # underpowered: 10 samples, 2 seeds
])
def test_flexibility_claim_verdicts(sdt_accs, mtt_accs, seeds, n, expected):
    rng = np.random.default_rng(1)
    mtt_c = steady(rng, mtt_accs, seeds, n) if isinstance(mtt_accs, float) else curve(rng, mtt_accs, seeds, n)
    sdt, mtt = arm(curve(rng, sdt_accs, seeds, n)), arm(mtt_c)
    claim = flexibility_claim("e", sdt, mtt, RULES, "demo", [])
    assert claim.verdict == expected, claim.note
    assert [r["setting"].split(",")[0] for r in claim.by_setting] == ["base networks", "deployed IAF networks"]


def test_flexibility_claim_needs_mtt_to_keep_its_accuracy():
    """SDT drops 70 points, MTT 'only' 25: flatter than SDT, but MTT does not keep its accuracy at every T,
    which the card claims (judged on the range difference alone, this was 'supported')."""
    rng = np.random.default_rng(13)
    sdt = arm(curve(rng, STEEP, 3, 1000))
    mtt = arm(curve(rng, [0.65, 0.75, 0.85, 0.9, 0.9, 0.9], 3, 1000))
    claim = flexibility_claim("e", sdt, mtt, RULES, "demo", [])
    assert claim.verdict == "not supported", claim.note
    assert "[SDT loses more than MTT]" in claim.note and "the interval lies above 0" in claim.note
    assert "T=1: not supported" in claim.note


def test_keeps_accuracy_verdicts():
    rng = np.random.default_rng(14)
    assert keeps_accuracy(steady(rng, 0.9, 3, 2000), 0.05).verdict == "supported"
    assert keeps_accuracy(curve(rng, STEEP, 3, 400), 0.05).verdict == "not supported"
    assert keeps_accuracy(curve(rng, [0.86, 0.9, 0.9, 0.9, 0.9, 0.9], 3, 400), 0.05).verdict == "inconclusive"
    assert keeps_accuracy(steady(rng, 0.9, 2, 10), 0.05).verdict == "inconclusive"  # underpowered
    with pytest.raises(ConfigError, match="one inference T"):
        keeps_accuracy(np.ones((2, 1, 10)), 0.05)


def test_flexibility_claim_needs_mtt_above_chance():
    rng = np.random.default_rng(2)
    sdt, mtt = arm(curve(rng, STEEP, 3, 400)), arm(curve(rng, [0.1] * 6, 3, 400))
    claim = flexibility_claim("e", sdt, mtt, RULES, "demo", [])
    assert claim.verdict == "inconclusive" and "precondition" in claim.note


def test_flexibility_claim_flipping_between_base_and_deployed_is_setting_dependent():
    rng = np.random.default_rng(3)
    sdt = arm(curve(rng, STEEP, 3, 400), deployed=curve(rng, FLAT, 3, 400))
    mtt = arm(curve(rng, FLAT, 3, 400), deployed=curve(rng, STEEP, 3, 400))
    assert flexibility_claim("e", sdt, mtt, RULES, "demo", []).verdict == "setting-dependent"
    chosen_deployed = flexibility_claim("e", sdt, mtt, dict(RULES, flexibility_setting="deployed"), "demo", [])
    assert chosen_deployed.verdict == "setting-dependent" and "pre-registered setting deployed" in chosen_deployed.note


# ----------------------------------------------------------------------------- C2a, C2b


def event_arm(rng, clock_acc, event_shift, seeds, n, discord=0.0):
    """An arm whose event-driven correctness is its clock-driven one, flipped at ``discord`` and shifted."""
    clock = bernoulli(rng, clock_acc, (seeds, n))
    event = flip(rng, clock, discord)
    if event_shift < 0:  # lose a fraction of the correct answers
        event = np.where((event == 1) & (rng.random(event.shape) < -event_shift / clock_acc), 0.0, event)
    return arm(curve(rng, FLAT, seeds, n), event=event, clock=clock)


@pytest.mark.parametrize("shift, discord, seeds, n, expected", [
    (0.0, 0.002, 3, 3000, "supported"),
    (-0.25, 0.0, 3, 400, "not supported"),
    (-0.01, 0.03, 2, 100, "inconclusive"),
    (0.0, 0.05, 2, 20, "inconclusive"),  # underpowered
])
def test_event_vs_clock_claim_verdicts(shift, discord, seeds, n, expected):
    rng = np.random.default_rng(4)
    mtt = event_arm(rng, 0.9, shift, seeds, n, discord)
    sdt = event_arm(rng, 0.9, 0.0, seeds, n)
    c2a = event_claims("e", sdt, mtt, RULES, "demo", [])[0]
    assert c2a.id == "C2a" and c2a.verdict == expected, c2a.note


def test_event_vs_clock_equivalence_at_chance_is_not_a_reproduction():
    rng = np.random.default_rng(5)
    mtt = event_arm(rng, 0.1, 0.0, 3, 3000)
    c2a = event_claims("e", mtt, mtt, RULES, "demo", [])[0]
    assert c2a.verdict == "inconclusive" and "precondition" in c2a.note


@pytest.mark.parametrize("mtt_acc, sdt_acc, seeds, n, expected", [
    (0.9, 0.6, 3, 400, "supported"),
    (0.6, 0.9, 3, 400, "not supported"),
    (0.9, 0.9, 3, 400, "not supported"),   # a null effect rules out the card's +10.1 points
    (0.9, 0.82, 3, 400, "inconclusive"),   # a gain, but below the claimed one and not ruling it out
    (0.8, 0.7, 2, 20, "inconclusive"),  # underpowered
])
def test_mtt_vs_sdt_event_driven_claim_verdicts(mtt_acc, sdt_acc, seeds, n, expected):
    rng = np.random.default_rng(6)
    mtt, sdt = event_arm(rng, mtt_acc, 0.0, seeds, n), event_arm(rng, sdt_acc, 0.0, seeds, n)
    c2b = event_claims("e", sdt, mtt, RULES, "demo", [])[1]
    assert c2b.id == "C2b" and c2b.verdict == expected, c2b.note


def test_mtt_vs_sdt_event_driven_needs_the_configured_gain():
    """The smallest effect of interest comes from papers.mtt.claims (the card's +10.1 points), not 0."""
    assert CLAIM_RULES["event_min_effect"] == pytest.approx(0.101)
    rng = np.random.default_rng(10)
    mtt, sdt = event_arm(rng, 0.9, 0.0, 3, 400), event_arm(rng, 0.9, 0.0, 3, 400)
    c2b = event_claims("e", sdt, mtt, RULES, "demo", [])[1]
    assert c2b.verdict == "not supported" and "papers.mtt.claims.event_min_effect" in c2b.note
    assert "at least 10.1 points" in c2b.statement


def test_mtt_vs_sdt_event_driven_needs_mtt_above_chance():
    """SDT collapsing below an MTT at chance is not MTT deploying well."""
    rng = np.random.default_rng(11)
    mtt, sdt = event_arm(rng, 0.11, 0.0, 3, 300), event_arm(rng, 0.0, 0.0, 3, 300)
    c2b = event_claims("e", sdt, mtt, dict(RULES, event_min_effect=0.05), "demo", [])[1]
    assert c2b.verdict == "inconclusive" and "precondition" in c2b.note


# ----------------------------------------------------------------------------- C3


def cost_arms(rng, sdt_acc, mtt_loss, seeds, n, discord):
    sdt = curve(rng, [sdt_acc] * 4, seeds, n)
    mtt = flip(rng, sdt, discord)
    mtt = np.where((mtt == 1) & (rng.random(mtt.shape) < mtt_loss / sdt_acc), 0.0, mtt)
    return arm(sdt), arm(mtt)


@pytest.mark.parametrize("sdt_acc, loss, discord, seeds, n, expected", [
    (0.9, 0.0, 0.01, 3, 4000, "supported"),
    (0.95, 0.25, 0.0, 3, 400, "not supported"),
    (0.9, 0.01, 0.05, 2, 100, "inconclusive"),
    (0.9, 0.0, 0.05, 2, 20, "inconclusive"),  # underpowered
])
def test_cost_claim_verdicts(sdt_acc, loss, discord, seeds, n, expected):
    rng = np.random.default_rng(7)
    sdt, mtt = cost_arms(rng, sdt_acc, loss, seeds, n, discord)
    claim = cost_claim("e", sdt, mtt, RULES, "demo", [])
    assert claim.verdict == expected, claim.note


def test_cost_claim_at_chance_is_inconclusive():
    rng = np.random.default_rng(8)
    sdt, mtt = cost_arms(rng, 0.1, 0.0, 3, 4000, 0.0)
    claim = cost_claim("e", sdt, mtt, RULES, "demo", [])
    assert claim.verdict == "inconclusive" and "precondition" in claim.note


# ----------------------------------------------------------------------------- all claims


def test_claims_from_lists_every_claim_and_checks_the_rules():
    rng = np.random.default_rng(9)
    summary = {"e": {"sdt": arm(curve(rng, STEEP, 2, 50)), "mtt": arm(curve(rng, FLAT, 2, 50))}}
    claims = claims_from(summary, "demo", ["x.json"], {"n_boot": 200})
    assert [c.id for c in claims] == ["C1", "C2a", "C2b", "C3", "C4"]
    assert claims[-1].verdict == "not tested"
    with pytest.raises(ConfigError, match="flexibility_setting"):
        claims_from(summary, "demo", [], {"flexibility_setting": "both"})
