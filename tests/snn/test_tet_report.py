from reprolab.snn.tet_report import claims_from, noise_level, scalability_drop, tit_claim


def arm(acc, drop, std=0.0, n_seeds=3, n_test=1000):
    return {"n_seeds": n_seeds, "n_test": n_test, "T": 10, "accuracy": acc, "accuracy_std": std, "drop": drop,
            "drop_std": 0.0}


def verdicts(summary):
    return {c.id: c.verdict for c in claims_from(summary, "demo", [])}


def test_clear_improvement_is_supported_and_a_tie_is_inconclusive():
    assert verdicts({"e": {"sdt": arm(0.80, 0.20), "tet": arm(0.90, 0.05)}}) == {
        "C1": "supported", "C2": "supported", "C4": "not tested"}
    assert verdicts({"e": {"sdt": arm(0.90, 0.10), "tet": arm(0.905, 0.10)}})["C1"] == "inconclusive"
    assert verdicts({"e": {"sdt": arm(0.95, 0.05), "tet": arm(0.85, 0.05)}})["C1"] == "not supported"


def test_noise_level_shrinks_with_test_set_size_and_grows_with_seed_spread():
    assert noise_level(0.9, 10_000, 1) < noise_level(0.9, 100, 1)
    assert noise_level(0.9, 10_000, 3, seed_std=0.05) > noise_level(0.9, 10_000, 3)


def test_scalability_drop_averages_the_other_T():
    run = {"T_train": 4, "accuracy": 0.9, "by_T": {"2": 0.5, "4": 0.9, "8": 0.7}}
    assert abs(scalability_drop(run) - 0.3) < 1e-12


def hist(accs, seconds=10.0, T=10):
    return {"seed": 1, "T": T, "epochs": [{"test_accuracy": a, "seconds": seconds} for a in accs]}


def test_time_inheritance_reaching_the_target_sooner_is_supported():
    runs = {"e": {"small": hist([0.5, 0.7], seconds=2.0, T=2), "inherit": hist([0.899, 0.9]),
                  "scratch": hist([0.5, 0.8, 0.9])}}
    summary = {"e": {"tet": {"n_test": 1000}}}
    (claim,) = tit_claim(runs, summary, "demo", [])
    assert claim.verdict == "supported" and "after 1 epoch" in claim.measured
    runs["e"]["inherit"] = hist([0.6, 0.7])
    assert tit_claim(runs, summary, "demo", [])[0].verdict == "not supported"
