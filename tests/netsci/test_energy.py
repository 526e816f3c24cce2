"""Energy pipeline of the ``energy`` paper: sampling, resumable comparison, order test, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.netsci import control as ctl
from reprolab.netsci import energy as en


def synthetic_ts(n_subjects: int = 2, n: int = 10, frames: int = 300, seed: int = 0) -> np.ndarray:
    """Z-scored AR(1)-like series with slowly changing coupling (so windows differ)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_subjects, n, frames))
    drive = np.sin(np.linspace(0, 6 * np.pi, frames))
    x[:, 1] += 0.8 * x[:, 0] * drive
    x[:, 1:] += 0.3 * np.roll(x[:, :-1], 1, axis=-1)
    return ctl.zscore_regions(x)


def test_sample_draws_follow_matlab_ranges():
    plan = en.sample_draws(1200, 30, 5000, seed=1)
    latest = int(np.floor(1200 / 2.5))
    assert plan.start.min() == 0 and plan.start.max() == latest - 1  # randi(480) is 1..480
    assert plan.n_windows.min() == 1
    assert np.all(plan.n_windows <= (1200 - (plan.start + 1) - 30) // 30)
    assert np.all(plan.final + 30 <= 1200 - 1)  # the last window never reaches past the run
    k = np.round(plan.horizon / 0.1)
    np.testing.assert_allclose(plan.horizon, k * 0.1)
    assert k.min() >= 1 and k.max() <= 6000 and plan.horizon.max() > 590
    again = en.sample_draws(1200, 30, 5000, seed=1)
    np.testing.assert_array_equal(plan.start, again.start)


def test_sample_draws_rejects_windows_that_do_not_fit():
    with pytest.raises(ConfigError, match="window_sizes"):
        en.sample_draws(100, 40, 3, seed=0)


def test_windows_include_both_ends_like_matlab_ranges():
    frames = en.window_frames(start=10, window=5, n_windows=3)
    np.testing.assert_array_equal(frames[0], np.arange(10, 16))
    np.testing.assert_array_equal(frames[2], np.arange(20, 26))


def test_energies_for_draws_match_direct_computation():
    ts = synthetic_ts()
    nodes = [0, 2, 4]
    plan = en.sample_draws(ts.shape[-1], 20, 12, seed=3)
    draws = np.flatnonzero(plan.start % 20 == plan.start[0] % 20)
    out = en.energies_for_draws(ts, nodes, plan, draws, 0.05)
    for row, d in enumerate(draws):
        s, m, T = plan.start[d], plan.n_windows[d], plan.horizon[d]
        for subj in range(ts.shape[0]):
            x = ts[subj]
            static = ctl.system_from_fc(ctl.functional_connectivity(x[:, s:s + 20 * m + 1]))
            e_s = ctl.static_energy(static, nodes, T, x[:, s], x[:, s + 20 * m])
            wins = np.stack([x[:, s + 20 * k:s + 20 * k + 21] for k in range(m)])
            dyn = ctl.system_from_fc(ctl.functional_connectivity(wins))
            e_d = ctl.dynamic_energy(dyn, nodes, T / m, x[:, s], x[:, s + 20 * m])
            assert out["static"][row, subj] == pytest.approx(e_s, rel=1e-9)
            assert out["dynamic"][row, subj] == pytest.approx(e_d, rel=1e-9)
            if m == 1:
                assert out["dynamic"][row, subj] == pytest.approx(out["static"][row, subj], rel=1e-8)


def test_compare_energies_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    ts = synthetic_ts()
    plan = en.sample_draws(ts.shape[-1], 20, 10, seed=4)
    args = (ts, [0, 3], plan, 0.05)
    full = en.compare_energies(*args, tmp_path / "full", "fp", subject_chunk=1)

    calls = {"n": 0}
    real = en.energies_for_draws

    def dies_after_two(*a, **k):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(en, "energies_for_draws", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        en.compare_energies(*args, tmp_path / "killed", "fp", subject_chunk=1)
    assert len(list((tmp_path / "killed").glob("*.npz"))) == 2
    monkeypatch.setattr(en, "energies_for_draws", real)
    resumed = en.compare_energies(*args, tmp_path / "killed", "fp", subject_chunk=1)
    for key in full:
        np.testing.assert_array_equal(resumed[key], full[key])


def test_stale_checkpoints_are_recomputed(tmp_path):
    ts = synthetic_ts()
    plan = en.sample_draws(ts.shape[-1], 20, 4, seed=5)
    first = en.compare_energies(ts, [0, 3], plan, 0.05, tmp_path, "old")
    changed = en.compare_energies(ts, [1, 5], plan, 0.05, tmp_path, "new")
    assert not np.allclose(first["static"], changed["static"])


def test_shuffled_orders_contain_the_recorded_energy_for_identity_permutations():
    ts = synthetic_ts(n_subjects=1)
    plan = en.DrawPlan(20, np.array([5, 30]), np.array([1, 2]), np.array([40.0, 40.0]))
    res = en.shuffled_energies(ts, [0, 3], plan, n_shuffles=6, seed=0)
    # one window: every order is the recorded one
    np.testing.assert_allclose(res["shuffled"][0, 0], res["original"][0, 0], rtol=1e-10)
    # two windows: each shuffle is either the recorded order or its reverse
    vals = res["shuffled"][1, 0]
    assert np.any(np.isclose(vals, res["original"][1, 0], rtol=1e-9))


def test_summaries_recover_a_known_ratio():
    rng = np.random.default_rng(0)
    static = np.exp(rng.normal(10, 2, size=(400, 5)))
    dynamic = 0.4 * static * np.exp(rng.normal(0, 0.1, size=static.shape))
    s = en.summarise_ratio(static, dynamic, n_boot=300, seed=0)
    assert s["median_ratio"] == pytest.approx(0.4, rel=0.02)
    assert s["median_ratio_ci95"][0] < 0.4 < s["median_ratio_ci95"][1]
    assert s["median_reduction"] == pytest.approx(0.6, abs=0.01)
    assert s["fraction_dynamic_lower"] == 1.0 and len(s["per_subject_median_ratio"]) == 5
    assert np.shape(s["log_ratio"]) == (5, 400)  # per unit, subjects x draws


def test_two_way_bootstrap_widens_with_subject_differences():
    rng = np.random.default_rng(1)
    draws = rng.normal(0, 1, (200, 1))
    same = np.exp(draws + rng.normal(0, 0.1, (200, 6)))
    shifted = same * np.exp(rng.normal(0, 1.0, (1, 6)))  # subjects differ: a cohort effect
    lo1, hi1 = en.two_way_median_ci(same, 400, 0)
    lo2, hi2 = en.two_way_median_ci(shifted, 400, 0)
    assert hi2 / lo2 > 1.5 * hi1 / lo1


def test_shuffle_summary_per_unit_values_and_per_draw_test():
    rng = np.random.default_rng(1)
    shuffled = np.exp(rng.normal(0, 0.2, size=(30, 4, 10)))
    original = 0.5 * np.median(shuffled, axis=-1)
    s = en.summarise_shuffle(original, shuffled, np.full(30, 5))
    assert s["fraction_original_lower"] == 1.0 and s["per_draw_wilcoxon_p_greater"] < 1e-6
    np.testing.assert_allclose(s["log_gain"], np.log(2.0) * np.ones((4, 30)))
    np.testing.assert_allclose(np.subtract(s["log_shuffled"], s["log_recorded"]), s["log_gain"])
    null = en.summarise_shuffle(np.median(shuffled, axis=-1) * np.exp(rng.normal(0, 0.2, (30, 4))), shuffled,
                                np.full(30, 5))
    assert null["per_draw_wilcoxon_p_greater"] > 0.01
    assert en.summarise_shuffle(original, shuffled, np.full(30, 2))["n_pairs"] == 0


def test_phase_randomised_surrogates_keep_static_fc_and_spectra_but_not_dynamics():
    ts = synthetic_ts(n_subjects=1, n=6, frames=400, seed=2)[0]  # coupling of regions 0 and 1 switches on and off
    sur = en.phase_randomise(ts, 3, seed=[0, 1])
    assert sur.shape == (3, 6, 400)
    for s in sur:
        np.testing.assert_allclose(ctl.functional_connectivity(s, None), ctl.functional_connectivity(ts, None),
                                   atol=1e-10)  # the static FC is kept exactly
        np.testing.assert_allclose(np.abs(np.fft.rfft(s)), np.abs(np.fft.rfft(ts)), rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(s.mean(-1), 0, atol=1e-10)
        np.testing.assert_allclose(s.std(-1, ddof=1), 1, rtol=1e-10)  # z-scored series stay z-scored
    assert not np.allclose(sur[0], ts) and not np.allclose(sur[0], sur[1])
    np.testing.assert_array_equal(sur, en.phase_randomise(ts, 3, seed=[0, 1]))  # seeded

    def window_fc_spread(x):  # how much the 0-1 correlation moves between 40-frame windows
        wins = x[:, : 400 // 40 * 40].reshape(x.shape[0], -1, 40).transpose(1, 0, 2)
        return ctl.functional_connectivity(wins, None)[:, 0, 1].std()

    assert window_fc_spread(ts) > 1.3 * np.mean([window_fc_spread(s) for s in sur])


def test_surrogate_series_do_not_depend_on_the_subject_chunking():
    ts = synthetic_ts(n_subjects=3, n=5, frames=120)
    series = en.with_surrogates(ts, 2, seed=7)
    whole = series(slice(0, 3))
    assert whole.shape == (3, 3, 5, 120)
    np.testing.assert_array_equal(whole[:, 0], ts)
    np.testing.assert_array_equal(whole[2:], series(slice(2, 3)))


def test_fc_rules_and_equal_density():
    ts = synthetic_ts(n_subjects=2, n=10, frames=200)
    fc = ctl.functional_connectivity(ts, None)
    dense = ctl.proportional_threshold(fc, 0.2)
    assert np.allclose(ctl.edge_density(dense), 9 / 45)  # 20 % of 45 pairs
    kept = np.abs(dense[0][np.triu_indices(10, 1)])
    dropped = np.abs(fc[0][np.triu_indices(10, 1)])[kept == 0]
    assert dropped.max() <= kept[kept > 0].min()  # the strongest pairs are the ones kept
    for rule in (en.FCRule("p", 0.05), en.FCRule("none"), en.FCRule("density", 0.2)):
        system, density = rule.system(ts)
        ref = ctl.system_from_fc(rule.apply(ts))
        np.testing.assert_allclose(system.matrix(), ref.matrix(), atol=1e-12)
        np.testing.assert_allclose(density, ctl.edge_density(rule.apply(ts)))
    assert en.FCRule.of(0.05) == en.FCRule("p", 0.05) and en.FCRule.of(None) == en.FCRule("none")
    with pytest.raises(ConfigError, match="FC rule"):
        en.FCRule("bogus").apply(ts)


def test_energies_of_surrogate_batches_equal_one_series_at_a_time():
    ts = synthetic_ts(n_subjects=2, n=8, frames=200)
    plan = en.sample_draws(200, 20, 6, seed=2)
    draws = np.flatnonzero(plan.start % 20 == plan.start[0] % 20)
    series = en.with_surrogates(ts, 2, seed=3)(slice(0, 2))  # [S, 3, N, F]
    rule = en.FCRule("density", 0.3)
    batched = en.energies_for_draws(series, [0, 2], plan, draws, rule)
    for k in range(3):
        single = en.energies_for_draws(series[:, k], [0, 2], plan, draws, rule)
        for key in ("static", "dynamic", "density_dynamic"):
            np.testing.assert_allclose(batched[key][:, :, k], single[key], rtol=1e-10)


def test_run_compare_and_shuffle_write_their_files(tmp_path):
    from reprolab.data.hcp import write_timeseries

    ts = synthetic_ts(n_subjects=2, n=8, frames=260)
    path = tmp_path / "ts.npz"
    write_timeseries(path, ts, ["100001", "100002"], [f"r{i}" for i in range(8)], [0, 1, 2], 0.72, "test")
    settings = {"seed": 3, "draws": 5, "horizon": {"max": 50.0, "step": 0.5}, "p_threshold": 0.05,
                "subject_chunk": 1, "bootstrap": 50, "robust_rtol": 1e-8, "shuffle": {"draws": 3, "shuffles": 4}}
    en.run_compare(path, settings, 20, tmp_path / "ck", tmp_path / "c.npz", tmp_path / "c.json")
    summary = en.read_summary(tmp_path / "c.json")
    assert summary["n_draws"] == 5 and summary["control_nodes"] == ["r0", "r1", "r2"]
    assert np.isfinite(summary["median_ratio"])
    en.run_shuffle(path, settings, 20, tmp_path / "s.npz", tmp_path / "s.json")
    with np.load(tmp_path / "s.npz") as z:
        assert z["shuffled"].shape == (3, 2, 4)
    settings.update(surrogates={"count": 2, "draws": 3}, equal_density=0.3)
    en.run_surrogates(path, settings, 20, tmp_path / "ck2", tmp_path / "u.npz", tmp_path / "u.json")
    en.run_surrogates(path, settings, 20, tmp_path / "ck3", tmp_path / "v.npz", tmp_path / "v.json",
                      compare_npz=tmp_path / "c.npz")  # the data's paper-method energies taken from the comparison
    with np.load(tmp_path / "u.npz") as u, np.load(tmp_path / "v.npz") as v:
        for key in u.files:
            if key != "subjects":
                np.testing.assert_allclose(u[key], v[key], rtol=1e-9)
    sur = en.read_summary(tmp_path / "u.json")
    assert sur["n_draws"] == 3 and sur["n_surrogates"] == 2 and set(sur["variants"]) == set(en.VARIANTS)
    paper = sur["variants"]["paper"]
    assert np.shape(paper["real_log_ratio"]) == np.shape(paper["surrogate_log_ratio"]) == (2, 3)
    with np.load(tmp_path / "c.npz") as z:  # the surrogate draws are the comparison's first draws
        np.testing.assert_allclose(np.exp(paper["real_log_ratio"]), (z["dynamic"] / z["static"])[:3].T, rtol=1e-9)
    assert sur["variants"]["equal_density"]["density_dynamic"] == pytest.approx(0.3, abs=0.02)
