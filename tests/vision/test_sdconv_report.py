"""The sdconv claims (reprolab.vision.sdconv_report), built to give each verdict."""

from __future__ import annotations

import numpy as np

from reprolab.vision import sdconv_report as R

SETTINGS = {"alphas": {"sdconv": [1e-4, 1e-3]}, "chosen_alpha": "validation",
            "claims": {"far_fewer_ratio": 0.5, "c2a_min_effect": 0.005, "c2a_margin": 0.01, "c2b_min_effect": 0.01},
            "bar": {"max_accuracy_drop": 0.01, "max_nonzero_ratio": 0.5}}


def _rec(run: str, seed: int, correct: int, n: int, nonzero: int) -> dict:
    arm, _, alpha = run.partition("_a")
    targets = np.arange(n) % 10
    preds = targets.copy()
    preds[correct:] = (preds[correct:] + 1) % 10  # nested: every arm gets the first `correct` samples right
    return {"run": run, "arm": arm, "alpha": float(alpha) if alpha else None, "seed": seed, "n_test": n,
            "num_classes": 10, "accuracy": correct / n, "predictions": preds.tolist(), "targets": targets.tolist(),
            "params": {"dense": 60_000, "nonzero": nonzero, "kernel_dense": 55_000, "kernel_nonzero": nonzero - 1000},
            "madds": {"dense": 900_000, "sparse": 600_000}}


def _evals(n: int, seeds: int, arms: dict[str, tuple[int, int]], jitter: int = 0) -> dict:
    """``arms``: run -> (correct samples, non-zero parameters); ``jitter`` moves the count per seed."""
    return {"exp": {run: [_rec(run, s, correct, n, nonzero + jitter * s) for s in range(1, seeds + 1)]
                    for run, (correct, nonzero) in arms.items()}}


def _summary(evals: dict) -> dict:
    out = {}
    for exp, runs in evals.items():
        out[exp] = {}
        for run, recs in runs.items():
            out[exp][run] = {"n_seeds": len(recs), "n_test": recs[0]["n_test"],
                             "kernel_nonzero": float(np.mean([r["params"]["kernel_nonzero"] for r in recs])),
                             "madds_sparse": 600_000.0, "madds_dense": 900_000.0}
    return out


def _claims(evals: dict, chosen: float = 1e-3, settings: dict = SETTINGS) -> dict:
    selections = {"exp": {"chosen": chosen, "rule": "test rule", "n_validation": 300}}
    return {c.id: c for c in R.claims_from(evals, _summary(evals), selections, settings, "demo", [])}


def test_clear_results_are_supported_at_the_chosen_alpha():
    evals = _evals(3000, 3, {"static": (2700, 60_000), "dynamic": (2900, 240_000),
                             "sdconv_a0.0001": (2960, 200_000), "sdconv_a0.001": (2955, 60_000)}, jitter=500)
    claims = _claims(evals)
    assert claims["C1"].verdict == "setting-dependent"  # 25 % at alpha 1e-3, 83 % at 1e-4
    assert [r["verdict"] for r in claims["C1"].by_setting] == ["not supported", "supported"]
    for cid in ("C2a", "C2a-ni", "C2b"):
        assert claims[cid].verdict == "supported", cid
    assert claims["bar"].verdict == "setting-dependent"
    assert claims["C3"].verdict == "not tested"
    assert "(chosen)" in claims["C2a"].by_setting[1]["setting"] and "c2a_min_effect" in claims["C2a"].note
    assert "c2a_margin" in claims["C2a-ni"].note and "c2b_min_effect" in claims["C2b"].note
    assert list(claims) == ["C1", "C2a", "C2a-ni", "C2b", "bar", "C3"]


def test_c2a_is_superiority_and_the_old_reading_is_its_own_row():
    """SD-Conv exactly as accurate as DY-Conv: 'not worse' holds, the card's 'better than' does not."""
    evals = _evals(3000, 3, {"static": (2700, 60_000), "dynamic": (2950, 240_000),
                             "sdconv_a0.0001": (2950, 60_000), "sdconv_a0.001": (2950, 60_000)}, jitter=500)
    claims = _claims(evals)
    assert claims["C2a-ni"].verdict == "supported"
    assert claims["C2a"].verdict == "not supported", claims["C2a"].note  # 0 gain; the interval excludes 0.5 point


def test_clearly_worse_results_are_not_supported():
    evals = _evals(3000, 3, {"static": (2950, 60_000), "dynamic": (2950, 240_000),
                             "sdconv_a0.0001": (2700, 200_000), "sdconv_a0.001": (2700, 200_000)}, jitter=500)
    claims = _claims(evals)
    for cid in ("C1", "C2a", "C2a-ni", "C2b", "bar"):
        assert claims[cid].verdict == "not supported", cid


def test_differences_within_the_noise_are_inconclusive():
    evals = _evals(200, 3, {"static": (192, 60_000), "dynamic": (194, 240_000),
                            "sdconv_a0.0001": (193, 200_000), "sdconv_a0.001": (193, 60_000)}, jitter=500)
    claims = _claims(evals)
    for cid in ("C2a", "C2a-ni", "C2b"):
        assert claims[cid].verdict == "inconclusive", cid
    assert claims["bar"].verdict == "inconclusive"  # accuracy part inconclusive, sparsity part supported


def test_underpowered_input_is_inconclusive():
    evals = _evals(20, 1, {"static": (19, 60_000), "dynamic": (20, 240_000),
                           "sdconv_a0.0001": (20, 200_000), "sdconv_a0.001": (20, 60_000)})
    claims = _claims(evals)
    for cid in ("C1", "C2a", "C2a-ni", "C2b", "bar"):
        assert claims[cid].verdict == "inconclusive", cid
    assert "at least two seeds" in claims["C1"].note and "half-width" in claims["C2a-ni"].note


def test_at_chance_the_accuracy_claims_are_not_judged():
    evals = _evals(400, 3, {"static": (40, 60_000), "dynamic": (40, 240_000),
                            "sdconv_a0.0001": (40, 200_000), "sdconv_a0.001": (40, 60_000)}, jitter=500)
    claims = _claims(evals)
    for cid in ("C2a", "C2a-ni"):
        assert claims[cid].verdict in ("inconclusive", "not supported") and "chance" in claims[cid].note, cid


def test_c2b_against_a_static_baseline_at_chance_is_not_supported_evidence():
    """A 'better than static' from a broken static arm (at chance) is a degenerate comparison."""
    evals = _evals(3000, 3, {"static": (300, 60_000), "dynamic": (2900, 240_000),
                             "sdconv_a0.0001": (2950, 200_000), "sdconv_a0.001": (2950, 60_000)}, jitter=500)
    claims = _claims(evals)
    assert claims["C2b"].verdict == "inconclusive" and "static conv above chance" in claims["C2b"].note


def test_c2a_needs_masks_that_prune():
    """SD-Conv whose masks keep every weight is DY-Conv with a penalty: its gain is not SD-Conv's."""
    evals = _evals(3000, 3, {"static": (2700, 60_000), "dynamic": (2900, 240_000),
                             "sdconv_a0.0001": (2960, 240_000), "sdconv_a0.001": (2960, 240_000)})
    claims = _claims(evals)
    assert claims["C2a"].verdict == "inconclusive" and "prune nothing" in claims["C2a"].note
    assert R.prunes(evals["exp"]["sdconv_a0.001"], evals["exp"]["dynamic"]).verdict == "inconclusive"


def test_ratio_comparison_uses_the_seed_spread():
    sd = [_rec("sdconv_a0.001", s, 10, 10, nz) for s, nz in ((1, 100), (2, 120), (3, 110))]
    dy = [_rec("dynamic", s, 10, 10, 400) for s in (1, 2, 3)]
    cmp = R.ratio_comparison(sd, dy, 0.5)
    assert cmp.estimate == np.float64(0.5 - 0.275) and cmp.df == 2 and cmp.low < cmp.estimate < cmp.high
    assert R.ratio_comparison(sd[:1], dy[:1], 0.5) is None
