"""Claim builders of the tet report: each verdict reachable, and inconclusive when underpowered."""

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.snn.tet_report import (
    CLAIM_RULES,
    accuracy_claim,
    claims_from,
    drop_per_sample,
    scalability_claim,
    scalability_drop,
    tit_budgets,
    tit_claim,
)

TS = [2, 5, 10, 20]


def arm(rng, accs, seeds, n):
    """A summary arm with per-sample correctness at every T of ``TS`` (training T = 10)."""
    correct = (rng.random((seeds, len(TS), n)) < np.asarray(accs)[None, :, None]).astype(float)
    acc = correct[:, TS.index(10)].mean(1)
    return {"n_seeds": seeds, "n_test": n, "T": 10, "num_classes": 10, "accuracy": float(acc.mean()),
            "accuracy_std": float(acc.std(ddof=1)) if seeds > 1 else 0.0, "Ts": TS, "correct_by_T": correct}


def test_scalability_drop_averages_the_other_T():
    run = {"T_train": 4, "accuracy": 0.9, "by_T": {"2": 0.5, "4": 0.9, "8": 0.7}}
    assert abs(scalability_drop(run) - 0.3) < 1e-12


def test_drop_per_sample_averages_to_the_accuracy_drop():
    correct = np.array([[[1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 1, 1]]], float)  # T = 2, 10, 20
    drop = drop_per_sample([2, 10, 20], correct, 10)
    assert drop.tolist() == [[0.5, 1.0, 0.0, 0.5]] and drop.mean() == pytest.approx(1.0 - (0.5 + 0.5) / 2)
    with pytest.raises(ConfigError, match="other T"):
        drop_per_sample([10], correct[:, 1:2], 10)


@pytest.mark.parametrize("sdt_acc, tet_acc, seeds, n, expected", [
    (0.7, 0.9, 3, 500, "supported"),
    (0.9, 0.7, 3, 500, "not supported"),
    (0.9, 0.9, 3, 500, "inconclusive"),
    (0.75, 0.85, 2, 20, "inconclusive"),  # underpowered
    (0.9, 0.9, 2, 20000, "not supported"),  # a null effect rules out the 1-point smallest effect of interest
])
def test_accuracy_claim_verdicts(sdt_acc, tet_acc, seeds, n, expected):
    rng = np.random.default_rng(0)
    sdt, tet = arm(rng, [sdt_acc] * 4, seeds, n), arm(rng, [tet_acc] * 4, seeds, n)
    claim = accuracy_claim("e", sdt, tet, CLAIM_RULES, "demo", [])
    assert claim.verdict == expected, claim.note


def test_accuracy_claim_needs_sdt_above_chance():
    """TET far above an SDT baseline at chance (a baseline that did not train) is no reproduction of C1."""
    rng = np.random.default_rng(14)
    claim = accuracy_claim("e", arm(rng, [0.1] * 4, 3, 500), arm(rng, [0.9] * 4, 3, 500), CLAIM_RULES, "demo", [])
    assert claim.verdict == "inconclusive" and "precondition" in claim.note


STEEP = [0.3, 0.7, 0.9, 0.6]      # drop 36.7 points away from T = 10
FLAT = [0.85, 0.9, 0.9, 0.88]     # drop 2.3 points
HALF = [0.6, 0.8, 0.9, 0.76]      # drop 18.0 points: about half of STEEP's removed
SLIGHT = [0.38, 0.74, 0.9, 0.66]  # drop 30.7 points: 16 % of STEEP's removed


@pytest.mark.parametrize("sdt_accs, tet_accs, seeds, n, expected", [
    (STEEP, FLAT, 3, 500, "supported"),
    (FLAT, STEEP, 3, 500, "not supported"),
    (STEEP, STEEP, 3, 500, "not supported"),   # a TET that changes nothing: the claimed half is ruled out
    (STEEP, HALF, 3, 500, "inconclusive"),
    ([0.75, 0.85, 0.9, 0.85], FLAT, 2, 10, "inconclusive"),  # underpowered
])
def test_scalability_claim_verdicts(sdt_accs, tet_accs, seeds, n, expected):
    rng = np.random.default_rng(1)
    claim = scalability_claim("e", arm(rng, sdt_accs, seeds, n), arm(rng, tet_accs, seeds, n), CLAIM_RULES,
                              "demo", [])
    assert claim.verdict == expected, claim.note


def test_scalability_claim_needs_the_configured_fraction_of_the_drop():
    """TET narrows SDT's drop measurably, but by 16 %, not the configured half: not supported (any
    reduction counted before); with drop_fraction 0 the same data are supported."""
    rng = np.random.default_rng(11)
    sdt, tet = arm(rng, STEEP, 3, 3000), arm(rng, SLIGHT, 3, 3000)
    claim = scalability_claim("e", sdt, tet, CLAIM_RULES, "demo", [])
    assert CLAIM_RULES["drop_fraction"] == 0.5
    assert claim.verdict == "not supported", claim.note
    assert "removes at least 50 %" in claim.statement and "papers.tet.claims.drop_fraction" in claim.note
    lenient = scalability_claim("e", sdt, tet, dict(CLAIM_RULES, drop_fraction=0.0), "demo", [])
    assert lenient.verdict == "supported", lenient.note


def test_scalability_claim_rejects_a_fraction_outside_0_1():
    rng = np.random.default_rng(12)
    with pytest.raises(ConfigError, match="drop_fraction"):
        scalability_claim("e", arm(rng, STEEP, 2, 20), arm(rng, FLAT, 2, 20), dict(CLAIM_RULES, drop_fraction=1.5),
                          "demo", [])


def test_scalability_claim_needs_an_sdt_drop():
    """SDT loses nothing away from its training T: there is no drop to narrow, whatever TET does."""
    rng = np.random.default_rng(13)
    flat = [0.9] * 4
    claim = scalability_claim("e", arm(rng, flat, 3, 500), arm(rng, flat, 3, 500), CLAIM_RULES, "demo", [])
    assert claim.verdict == "inconclusive" and "sdt_drops" in claim.note


def test_scalability_interval_never_collapses_when_nothing_changes_with_T():
    rng = np.random.default_rng(3)
    flat = arm(rng, [0.5] * 4, 2, 100)
    flat["correct_by_T"][:] = flat["correct_by_T"][:, :1]  # every sample answers the same at every T: drops all 0
    claim = scalability_claim("e", flat, flat, CLAIM_RULES, "demo", [])
    assert claim.verdict == "inconclusive" and "+0.0 to +0.0" not in claim.measured and "floor" in claim.measured


def test_scalability_claim_needs_tet_above_chance():
    rng = np.random.default_rng(2)
    claim = scalability_claim("e", arm(rng, STEEP, 3, 500), arm(rng, [0.1] * 4, 3, 500), CLAIM_RULES, "demo", [])
    assert claim.verdict == "inconclusive" and "precondition" in claim.note


# ----------------------------------------------------------------------------- C3, time inheritance


def history(rng, targets, accs, seconds, T, final_right=None):
    """A training history with per-epoch predictions right with probability ``accs[e]`` (or, at the
    last epoch, exactly where ``final_right`` says)."""
    epochs = []
    for e, (acc, sec) in enumerate(zip(accs, seconds, strict=True)):
        right = rng.random(len(targets)) < acc
        if final_right is not None and e == len(accs) - 1:
            right = final_right
        preds = np.where(right, targets, (targets + 1) % 10)
        epochs.append({"test_accuracy": float(right.mean()), "seconds": sec, "test_predictions": preds.tolist()})
    return {"seed": 0, "T": T, "targets": targets.tolist(), "epochs": epochs}


def tit_runs(rng, tit_acc, scratch_accs, seeds, n, small_seconds=1.0, scratch_seconds=10.0):
    """Small run: 3 epochs at T=2; inherited: 2 epochs at T=10 ending at ``tit_acc``; scratch: 5 epochs.

    When ``tit_acc`` equals the scratch run's final accuracy, the two final networks differ on 1 %
    of the samples (they share most answers, as networks trained on one data set do).
    """
    out = {}
    targets = rng.integers(0, 10, n)
    for seed in range(seeds):
        scratch_final = rng.random(n) < scratch_accs[-1]
        tit_final = (np.where(rng.random(n) < 0.01, ~scratch_final, scratch_final) if tit_acc == scratch_accs[-1]
                     else rng.random(n) < tit_acc)
        out[seed] = {"small": history(rng, targets, [0.5, 0.6, 0.7], [small_seconds] * 3, 2),
                     "inherit": history(rng, targets, [tit_acc - 0.02, tit_acc], [scratch_seconds] * 2, 10, tit_final),
                     "scratch": history(rng, targets, scratch_accs, [scratch_seconds] * 5, 10, scratch_final)}
    return {"e": out}


def c3(runs, **rules):
    (claim,) = tit_claim(runs, dict(CLAIM_RULES, **rules), 10, "demo", [])
    return claim


def test_tit_budgets_pick_the_scratch_epochs_of_equal_epochs_and_equal_time():
    rng = np.random.default_rng(3)
    runs = tit_runs(rng, 0.9, [0.5, 0.7, 0.8, 0.85, 0.9], 2, 50, small_seconds=4.0, scratch_seconds=10.0)
    runs["e"][1]["scratch"]["epochs"][0]["seconds"] = 90.0  # a load spike in one seed does not move the budget
    b = tit_budgets(runs["e"])
    assert b["n_epochs"] == 5 and b["d_small"] == 4.0 and b["d_T"] == 10.0
    assert b["tit_s"] == 32.0 and b["scratch_epochs_s"] == 50.0
    assert b["time_epoch"] == 3 and b["time_s"] == 30.0  # 3 scratch epochs fit in TIT's 32 s
    assert b["tit"].shape == b["epochs"].shape == b["time"].shape == (2, 50)


@pytest.mark.parametrize("tit_acc, scratch_accs, seeds, n, expected", [
    (0.9, [0.6, 0.7, 0.8, 0.85, 0.9], 3, 2000, "supported"),
    (0.6, [0.6, 0.7, 0.8, 0.85, 0.95], 3, 500, "not supported"),
    (0.87, [0.6, 0.7, 0.85, 0.88, 0.9], 2, 300, "inconclusive"),
    (0.9, [0.6, 0.7, 0.8, 0.85, 0.9], 2, 15, "inconclusive"),  # underpowered
])
def test_tit_claim_verdicts(tit_acc, scratch_accs, seeds, n, expected):
    rng = np.random.default_rng(4)
    claim = c3(tit_runs(rng, tit_acc, scratch_accs, seeds, n))
    assert claim.verdict == expected, claim.note
    assert [r["setting"] for r in claim.by_setting] == ["equal epoch budget", "equal wall-time budget"]


def test_tit_that_is_not_faster_at_equal_epochs_is_not_supported_there():
    rng = np.random.default_rng(5)
    # the small-T epochs took as long as full-T ones: no acceleration at equal epochs, even at the same accuracy;
    # at equal wall time TIT is then compared with the whole scratch run and is as good: the claim flips
    claim = c3(tit_runs(rng, 0.9, [0.6, 0.7, 0.8, 0.85, 0.9], 3, 2000, small_seconds=10.0))
    assert claim.by_setting[0]["verdict"] == "not supported" and "less wall time" in claim.note
    assert claim.by_setting[1]["verdict"] == "supported" and claim.verdict == "setting-dependent"


def test_tit_at_chance_is_inconclusive():
    rng = np.random.default_rng(6)
    claim = c3(tit_runs(rng, 0.1, [0.1] * 5, 3, 2000))
    assert claim.verdict == "inconclusive" and "precondition" in claim.note


def test_tit_judged_at_equal_time_when_configured():
    rng = np.random.default_rng(7)
    # equal epochs: TIT as good as scratch; equal time: scratch (epoch 2, 70 %) far below TIT
    runs = tit_runs(rng, 0.9, [0.6, 0.7, 0.8, 0.85, 0.9], 3, 2000)
    assert c3(runs, tit_budget="time").verdict == "supported"
    assert "pre-registered budget 'time'" in c3(runs, tit_budget="time").note


def test_tit_needs_predictions_in_the_histories():
    rng = np.random.default_rng(8)
    runs = tit_runs(rng, 0.9, [0.9] * 5, 1, 20)
    del runs["e"][0]["scratch"]["targets"]
    with pytest.raises(ConfigError, match="per-epoch test predictions"):
        c3(runs)


def test_claims_from_lists_c1_c2_c4():
    rng = np.random.default_rng(9)
    claims = claims_from({"e": {"sdt": arm(rng, STEEP, 2, 50), "tet": arm(rng, FLAT, 2, 50)}}, "demo", [])
    assert [c.id for c in claims] == ["C1", "C2", "C4"]
