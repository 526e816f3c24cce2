"""HebbFF model, familiarity task, learning modes, snapshots and the statistics of the hebbff DAG."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.netsci import hebbff as hb


def train_cfg(**overrides):
    cfg = {
        "lr": 1e-3,
        "iterations": 1500,
        "batch_size": 1,
        "log_every": 10,
        "converge_acc": 0.98,
        "early_stop": False,
        "min_iters": 50,
        "checkpoint_every": 10**9,
        "dataset_sequences": 1,
        "curriculum": {"R0": 1, "R_final": 3},
        "multiR": {"R_lo": 1, "R_hi": 2, "R_hi_max": 6, "valid_threshold": 0.55, "increment": "plus1"},
    }
    cfg.update(overrides)
    return cfg


# --------------------------------------------------------------------------------------------
# Task generator
# --------------------------------------------------------------------------------------------


def test_generator_repeat_fraction_interval_and_no_repeat_of_repeat():
    rng = np.random.default_rng(0)
    X, labels, delays = hb.generate_recog_batch(rng, 50, 500, 20, R=3, P=0.5)
    # familiar fraction P / (1 + P) = 1/3; 25,000 steps give a standard error of 0.003
    assert labels.mean() == pytest.approx(1 / 3, abs=0.015)
    b, t = np.nonzero(labels)
    assert (t >= 3).all() and (delays[b, t] == 3).all()
    np.testing.assert_array_equal(X[b, t], X[b, t - 3])  # a familiar pattern is the one R steps back
    assert (labels[b, t - 3] == 0).all()  # ... which was itself novel (multiRep = False)
    nb, nt = np.nonzero(labels[:, 3:] == 0)
    assert not (X[nb, nt + 3] == X[nb, nt]).all(1).any()  # novel steps do not repeat by accident
    assert set(np.unique(X)) == {-1.0, 1.0}


def test_generator_with_several_delays_and_multi_rep():
    X, labels, delays = hb.generate_recog_batch(np.random.default_rng(1), 40, 400, 16, R=[2, 5], P=0.5)
    b, t = np.nonzero(labels)
    assert set(np.unique(delays[b, t])) == {2, 5}
    np.testing.assert_array_equal(X[b, t], X[b, t - delays[b, t]])
    _, labels_multi, _ = hb.generate_recog_batch(
        np.random.default_rng(2), 40, 400, 16, R=2, P=0.5, multi_rep=True
    )
    assert labels_multi[:, 2:].mean() == pytest.approx(0.5, abs=0.02)
    assert hb.chance_accuracy(0.5) == pytest.approx(2 / 3) and hb.chance_accuracy(0.5, True) == 0.5


def test_generator_is_reproducible_and_rejects_bad_settings():
    a = hb.generate_recog_batch(np.random.default_rng(5), 2, 50, 8, 3)
    b = hb.generate_recog_batch(np.random.default_rng(5), 2, 50, 8, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ConfigError, match="R must be >= 1"):
        hb.generate_recog_batch(np.random.default_rng(0), 1, 10, 4, 0)
    with pytest.raises(ConfigError, match="task.patterns"):
        hb.generate_recog_batch(np.random.default_rng(0), 1, 10, 4, 1, patterns="gauss")


# --------------------------------------------------------------------------------------------
# Model, gradient, optimiser
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plasticity,lam_param,eta", [("free", "clamp", -5.0), ("anti", "sigmoid", -5.0), ("hebb", "clamp", 3.0)]
)
def test_bptt_gradient_equals_torch_autograd(plasticity, lam_param, eta):
    import torch

    net = hb.ModelSpec(
        7, 5, lam_init=0.9, eta_init_times_Nx=eta, plasticity=plasticity, lam_param=lam_param
    ).build(4)
    X, labels, _ = hb.generate_recog_batch(np.random.default_rng(3), 3, 40, 7, R=2)
    loss, acc, grads = hb.loss_and_grads(net, X, labels)
    logits, leaves = hb.torch_reference_logits(net, X)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(labels))
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), rel=1e-10)
    assert acc == pytest.approx(float(((logits.detach() > 0).numpy() == (labels > 0.5)).mean()))
    for name, g in grads.items():
        np.testing.assert_allclose(
            g.reshape(leaves[name].shape), leaves[name].grad.numpy(), rtol=1e-7, atol=1e-10
        )
    np.testing.assert_allclose(hb.predict_logits(net, X)[0], logits.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_adam_matches_torch_adam():
    import torch

    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal(4), "b": rng.standard_normal((2, 3))}
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    ours, ref = hb.Adam(lr=0.01), torch.optim.Adam(leaves.values(), lr=0.01)
    for step in range(5):
        grads = {k: np.sin(v * (step + 1)) for k, v in params.items()}
        ours.step(params, grads)
        for k, leaf in leaves.items():
            leaf.grad = torch.sin(leaf.detach() * (step + 1))
        ref.step()
    for k, value in params.items():
        np.testing.assert_allclose(value, leaves[k].detach().numpy(), rtol=1e-10)


def test_lambda_is_clamped_and_bad_model_settings_are_named():
    net = hb.ModelSpec(4, 3).build(0)
    net.params["lam_raw"] = np.array(1.7)
    net.constrain()
    assert net.lam() == 1.0
    with pytest.raises(ConfigError, match="model.plasticity"):
        hb.HebbFF(4, 3, plasticity="mixed")
    with pytest.raises(ConfigError, match="wrong sign"):
        hb.HebbFF(4, 3, eta_init=0.5, plasticity="anti")


def test_small_hebbff_learns_familiarity_far_above_chance():
    task = hb.TaskSpec(R=2, T=200)
    net, history, snaps = hb.train_run(
        hb.ModelSpec(16, 16), task, train_cfg(), hb.SnapshotSpec(250), "infinite", 0
    )
    X, labels, _ = task.generate(np.random.default_rng(99), 8, 16)
    rates = hb.positive_rates(hb.predict_logits(net, X)[0], labels)
    # chance is 2/3; 1,600 held-out steps put 0.85 about ten standard errors above it
    assert rates["accuracy"] > 0.85, rates
    assert rates["tpr"] > rates["fpr"] + 0.5
    assert snaps["accuracy"][-1] > snaps["accuracy"][0]
    assert history["eta"] < 0  # anti-Hebbian, as in Tyulmankov et al.
    assert snaps["W1"].shape == (7, 16, 16) and list(snaps["iteration"]) == list(range(0, 1501, 250))


# --------------------------------------------------------------------------------------------
# Learning modes and resumption
# --------------------------------------------------------------------------------------------


def test_curriculum_raises_R_after_convergence_and_reports_trained_R():
    cfg = train_cfg(iterations=300, converge_acc=0.0, curriculum={"R0": 1, "R_final": 3})
    _, history, snaps = hb.train_run(
        hb.ModelSpec(6, 6), hb.TaskSpec(R=3, T=60), cfg, hb.SnapshotSpec(50), "curriculum", 0
    )
    assert [r for _, r in history["schedule"]["increments"]] == [1, 2, 3]
    assert history["schedule"]["increments"][1][0] >= 50  # min_iters between changes
    assert history["trained_R"] == [3] and snaps["R_current"][-1] == 3


def test_early_stop_and_multiR_growth():
    cfg = train_cfg(iterations=400, converge_acc=0.0, early_stop=True)
    _, history, _ = hb.train_run(
        hb.ModelSpec(6, 6), hb.TaskSpec(R=3, T=60), cfg, hb.SnapshotSpec(50), "infinite", 0
    )
    assert history["stopped_early"] and history["iterations"] == 50
    cfg = train_cfg(
        iterations=400,
        multiR={"R_lo": 1, "R_hi": 2, "R_hi_max": 5, "valid_threshold": 0.0, "increment": "plus1"},
    )
    _, history, _ = hb.train_run(
        hb.ModelSpec(6, 6), hb.TaskSpec(R=3, T=60), cfg, hb.SnapshotSpec(50), "multiR", 0
    )
    assert [inc[2] for inc in history["schedule"]["increments"]] == [2, 3, 4, 5]
    assert history["trained_R"] == [1, 2, 3, 4, 5]


def test_dataset_mode_cycles_through_its_fixed_sequences():
    sched = hb.make_schedule("dataset", hb.TaskSpec(R=2, T=30), 5, train_cfg(dataset_sequences=3), seed=0)
    rng = np.random.default_rng(0)
    seen = [sched.sequences(rng, 1)[0][0] for _ in range(4)]
    np.testing.assert_array_equal(seen[0], seen[3])
    assert not np.array_equal(seen[0], seen[1])
    with pytest.raises(ConfigError, match="learning mode"):
        hb.make_schedule("online", hb.TaskSpec(R=2), 5, train_cfg(), 0)


class Killed(Exception):
    pass


def test_killed_run_resumes_to_identical_numbers(tmp_path, monkeypatch):
    args = (
        hb.ModelSpec(6, 6),
        hb.TaskSpec(R=2, T=40),
        train_cfg(iterations=120, checkpoint_every=40, converge_acc=0.5),
        hb.SnapshotSpec(30),
        "curriculum",
        1,
    )
    net_a, hist_a, snaps_a = hb.train_run(*args, checkpoint_dir=None)
    real, calls = hb.loss_and_grads, {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] > 70:
            raise Killed
        return real(*a, **k)

    monkeypatch.setattr(hb, "loss_and_grads", dying)
    with pytest.raises(Killed):
        hb.train_run(*args, checkpoint_dir=str(tmp_path))
    monkeypatch.setattr(hb, "loss_and_grads", real)
    net_b, hist_b, snaps_b = hb.train_run(*args, checkpoint_dir=str(tmp_path))
    for k in snaps_a:
        np.testing.assert_array_equal(snaps_a[k], snaps_b[k])
    assert hist_a["log"] == hist_b["log"] and hist_a["schedule"] == hist_b["schedule"]
    for k in net_a.params:
        np.testing.assert_array_equal(net_a.params[k], net_b.params[k])


def test_model_file_round_trip(tmp_path):
    net = hb.ModelSpec(5, 4, plasticity="anti").build(2)
    hb.save_model(tmp_path / "m.npz", net, {"mode": "infinite", "seed": 2, "trained_R": [3]})
    back, meta = hb.load_model(tmp_path / "m.npz")
    assert meta["trained_R"] == [3] and back.plasticity == "anti" and back.eta() == pytest.approx(net.eta())
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception, match="hebbff_train"):
        hb.load_model(tmp_path / "bad.npz")


# --------------------------------------------------------------------------------------------
# Analysis and statistics
# --------------------------------------------------------------------------------------------


def analysis_cfg(**overrides):
    cfg = {
        "weights": "w1",
        "graph": "corr",
        "gamma": 1.0,
        "omega": 1.0,
        "repeats": 3,
        "backend": "igraph",
        "leiden_iterations": -1,
        "entropy": "size",
        "window": 3,
        "max_lag": 2,
        "chosen_lag": 0,
        "predict_lag": 1,
        "alpha": 0.05,
        "mode_permutations": 99,
        "mode_min_effect": 0.14,
        "mode_boot": 100,
        "seed": 0,
        "consensus": {"threshold": 0.5, "repeats": 2, "max_rounds": 2},
        "null_model": {"shuffles": 3, "repeats": 2, "same_permutation": True},
        "robustness": [{"graph": "gram"}],
        "robustness_repeats": 1,
    }
    cfg.update(overrides)
    return cfg


def test_analysis_of_planted_weight_modules_beats_its_shuffled_null():
    """Rows of W1 drawn around two prototypes form two modules; permuting W1's entries destroys them."""
    rng = np.random.default_rng(0)
    protos = rng.standard_normal((2, 30))
    L = 8
    strength = np.linspace(0.2, 3.0, L)  # modules grow sharper slice by slice
    W = np.stack([s * np.repeat(protos, 6, axis=0) + rng.standard_normal((12, 30)) for s in strength])
    snaps = {
        "W1": W,
        "A_mean": np.zeros_like(W),
        "accuracy": np.linspace(0.6, 1.0, L),
        "iteration": np.arange(L) * 10,
    }
    arrays, summary = hb.analyse_snapshots(snaps, analysis_cfg())
    assert arrays["Q_slice"].shape == (3, L) and arrays["null_Q_slice"].shape == (3, L)
    assert arrays["Q_slice"].mean(0)[-1] > arrays["null_Q_slice"][:, -1].max() + 0.1
    # the observed test series averages as many partitions as each null network (2 of its 3)
    np.testing.assert_allclose(arrays["test_Q_slice"], arrays["Q_slice"][:2].mean(0))
    assert summary["test_repeats"] == 2 and int(arrays["test_repeats"]) == 2
    late = arrays["consensus"][-1]
    assert len(set(late[:6])) == 1 and len(set(late[6:])) == 1 and late[0] != late[6]
    measures = hb.run_measures(arrays, "size", 3, 2)
    assert measures["rho_Q_acc"] > 0.7 and measures["final_Q"] > measures["null_final_Q"]
    with pytest.raises(ConfigError, match="snapshots"):
        hb.analyse_snapshots({k: v[:2] for k, v in snaps.items()}, analysis_cfg())
    with pytest.raises(ConfigError, match="null_model.repeats"):
        hb.analyse_snapshots(snaps, analysis_cfg(null_model={"shuffles": 3, "repeats": 4, "same_permutation": True}))


def test_correlation_helpers():
    q = np.array([0.1, 0.2, 0.15, 0.3, 0.25, 0.4, 0.35])
    acc = np.concatenate([[0.5, 0.5], q[:-2]])  # accuracy follows Q two snapshots later
    lags = hb.lagged_spearman(q, acc, 2)
    assert lags[2] == pytest.approx(1.0) and lags[0] < 1.0
    assert hb.null_p_value(0.9, np.array([0.1, 0.95, -0.2, 0.3])) == pytest.approx(2 / 5)
    assert hb.null_p_value(-0.9, np.array([0.1, 0.95, -0.2, 0.3]), "less") == pytest.approx(1 / 5)
    np.testing.assert_allclose(hb.rolling_mean(np.arange(5.0), 2), [np.nan, 0.5, 1.5, 2.5, 3.5])
    assert np.isnan(hb.spearman(np.ones(5), np.arange(5.0)))


def test_null_test_p_values_and_their_resolution():
    null = np.array([0.1, 0.2, 0.3, -0.1])
    t = hb.null_test(0.5, null)
    assert t["p_null_greater"] == pytest.approx(1 / 5) and t["p_null_less"] == 1.0
    assert t["p_null"] == pytest.approx(2 / 5) and t["smallest_p"] == pytest.approx(2 / 5) and t["above_null"]
    t = hb.null_test(-0.5, np.append(null, np.nan))  # NaN null values do not count
    assert t["shuffles"] == 4 and not t["above_null"] and t["p_null"] == pytest.approx(2 / 5)


def test_observed_and_null_statistics_are_exchangeable_under_the_null():
    """Weights with no structure: the observed network is one more draw of the null, so p is ~uniform."""
    rng = np.random.default_rng(5)
    L, ps = 6, []
    for trial in range(12):
        W = rng.standard_normal((L, 8, 10)).cumsum(0)  # a random walk: smooth trajectories, no modules
        snaps = {"W1": W, "A_mean": np.zeros_like(W), "accuracy": rng.random(L), "iteration": np.arange(L)}
        cfg = analysis_cfg(repeats=6, seed=trial, robustness=[],
                           null_model={"shuffles": 19, "repeats": 2, "same_permutation": False})
        arrays, _ = hb.analyse_snapshots(snaps, cfg)
        m = hb.run_measures(arrays, "size", 3, 1)
        ps.append(hb.null_test(m["rho_Q_acc"], np.array(m["null_rho_Q_acc"]))["p_null"])
    assert np.mean(np.array(ps) < 0.2) < 0.5  # not systematically small


def test_kruskal_permutation_detects_separated_modes_and_knows_its_resolution():
    rng = np.random.default_rng(0)
    separated = [rng.normal(loc, 0.1, 3) for loc in (0.0, 1.0, 2.0, 3.0)]
    res = hb.kruskal_permutation(separated, 9999, seed=1)
    assert res["p"] < 0.01 / 5 and res["smallest_p"] == pytest.approx(1e-4)
    # 4 groups of 3: only 4! * (3!)^4 of the 12! labelings separate them completely
    assert hb.smallest_permutation_p([3, 3, 3, 3], 10**9) == pytest.approx(24 * 6**4 / 479001600)
    alike = [rng.normal(0, 1, 3) for _ in range(4)]
    assert hb.kruskal_permutation(alike, 999, seed=1)["p"] > 0.05
    assert hb.smallest_permutation_p([1, 1], 999) == pytest.approx(1.0)  # one run per mode: every relabeling ties
    diffs = hb.mode_differences({"a": [{k: 1.0 for k in hb.MODE_SUMMARIES}], "b": []}, 99)
    assert all(np.isnan(d["p"]) and d["smallest_p"] == 1.0 for d in diffs.values())


def test_sign_rank_test_of_per_run_correlations():
    t = hb.sign_rank_test(np.linspace(0.1, 0.9, 12))
    assert t["positive_direction"] and t["p_positive"] == pytest.approx(2 / 2**12) and t["runs_tested"] == 12
    assert t["smallest_p_positive"] == pytest.approx(2 / 2**12)
    t = hb.sign_rank_test([0.5, -0.4, np.nan])  # two finite runs: at best p = 0.5
    assert t["runs_tested"] == 2 and t["smallest_p_positive"] == 0.5
