"""Features and behaviour prediction of the ``energy`` paper."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.netsci import energy as en


def weighted_graph(n: int, density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.random((n, n))
    w[rng.random((n, n)) > density] = 0
    w = np.triu(w, 1)
    return w + w.T


@pytest.mark.parametrize("n,density", [(12, 0.5), (20, 0.3), (15, 0.95)])
def test_local_efficiency_and_participation_match_bctpy(n, density):
    import bct

    w = weighted_graph(n, density, seed=n)
    np.testing.assert_allclose(en.local_efficiency(w), bct.efficiency_wei(w, local=True), atol=1e-12)
    ci = np.random.default_rng(n).integers(0, 3, n)
    np.testing.assert_allclose(en.participation_coefficient(w, ci), bct.participation_coef(w, ci), atol=1e-12)
    np.testing.assert_allclose(en.node_strength(w), bct.strengths_und(w))


def test_mvar1_recovers_the_generating_matrix():
    rng = np.random.default_rng(0)
    a = np.array([[0.5, 0.2, 0.0], [0.0, 0.4, -0.3], [0.1, 0.0, 0.6]])
    x = np.zeros((3, 20000))
    for t in range(1, x.shape[1]):
        x[:, t] = a @ x[:, t - 1] + rng.standard_normal(3)
    np.testing.assert_allclose(en.mvar1(x), a, atol=0.03)


def test_louvain_finds_planted_blocks():
    w = np.full((12, 12), 0.05)
    w[:6, :6] = w[6:, 6:] = 0.9
    np.fill_diagonal(w, 0)
    labels = en.louvain_communities(w, seed=0)
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[6]


def test_graph_weights_keep_positive_off_diagonal_part():
    m = np.array([[1.0, -0.5, 2.0], [0.3, 1.0, 0.1], [1.0, 0.2, 1.0]])
    w = en.graph_weights(m)
    assert np.all(np.diag(w) == 0) and w.min() >= 0 and w.max() == pytest.approx(1.0)
    np.testing.assert_allclose(w, w.T)


def test_compute_features_shapes_and_values():
    rng = np.random.default_rng(1)
    ts = rng.standard_normal((3, 10, 200))
    ts[:, 1] += ts[:, 0]
    communities = {"FC": np.arange(10) % 2, "AR": np.arange(10) % 3}
    feats = en.compute_features(ts, 0.05, 1.0, communities)
    assert sorted(feats) == sorted(f"{i}_{t}" for i in en.CONTROL_ITEMS + en.GRAPH_ITEMS for t in en.MATRIX_TYPES)
    assert all(v.shape == (3, 10) and np.all(np.isfinite(v)) for v in feats.values())
    assert np.all(feats["EV_FC"] > 0) and np.all(feats["AC_FC"] >= 0)


def test_kernel_ridge_matches_scikit_learn():
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 7)), rng.standard_normal((40, 3))
    k = en.cosine_kernel(x, x)
    ours = en.krr_predict_all_alphas(k[:30, :30], k[30:, :30], y[:30], np.array([0.5, 20.0]))
    for i, alpha in enumerate([0.5, 20.0]):
        ref = KernelRidge(alpha=alpha, kernel="cosine").fit(x[:30], y[:30]).predict(x[30:])
        np.testing.assert_allclose(ours[i], ref, rtol=1e-8, atol=1e-10)


def test_nested_cv_learns_a_planted_signal_and_not_noise():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((150, 20))
    signal = x[:, :3] @ np.array([1.0, -1.0, 0.5])
    y = np.column_stack([signal + 0.5 * rng.standard_normal(150), rng.standard_normal(150)])
    pred, target = en.nested_cv_predict(en.zscore_columns(x), y, [0.1, 1, 10, 100, 1000], 10, 5, seed=0)
    r = en.pearson_columns(pred, target)
    assert r[0] > 0.7  # ideal r is 1 / sqrt(1 + 0.25 / 2.25) = 0.95; a linear-ish kernel gets most of it
    assert abs(r[1]) < 0.3


def test_confounds_are_regressed_out_within_folds():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((120, 5))
    confound = rng.standard_normal((120, 1))
    y = 3 * confound + 0.1 * rng.standard_normal((120, 1))
    _, target = en.nested_cv_predict(x, y, [1.0], 5, 2, seed=0, confounds=confound)
    assert abs(np.corrcoef(target[:, 0], confound[:, 0])[0, 1]) < 0.2


def test_combination_beats_single_sets_on_planted_behaviours():
    rng = np.random.default_rng(5)
    n, p = 120, 6
    base = rng.standard_normal((n, 4))
    feats = {}
    for i, item in enumerate(en.CONTROL_ITEMS + en.GRAPH_ITEMS):
        for t in en.MATRIX_TYPES:
            feats[f"{item}_{t}"] = base[:, [i % 4]] * 0.3 + rng.standard_normal((n, p))
    y, kinds = en.planted_behaviours(feats, 12, 4, 0.6, seed=0)
    assert kinds[:3] == ["control", "graph", "both"]
    cfg = {"alphas": [0.1, 1, 10, 100, 1000], "outer_folds": 5, "inner_folds": 3}
    res = en.compare_feature_sets(feats, y, cfg, seed=0)
    assert res["n_variants"] == {"control": 9, "graph": 9, "combination": 36}
    assert res["mean_r"]["combination"] > max(res["mean_r"]["control"], res["mean_r"]["graph"])
    assert res["tests"]["combination_vs_control"]["p"] < 0.05
    assert res["tests"]["combination_vs_graph"]["p"] < 0.05


def test_planted_behaviours_have_the_requested_strength():
    rng = np.random.default_rng(6)
    feats = {f"{i}_{t}": rng.standard_normal((4000, 5)) for i in en.CONTROL_ITEMS + en.GRAPH_ITEMS
             for t in en.MATRIX_TYPES}
    y, _ = en.planted_behaviours(feats, 3, 4, 0.5, seed=1)
    assert np.var(y, axis=0) == pytest.approx(np.ones(3), abs=0.08)
    null, _ = en.planted_behaviours(feats, 3, 4, 0.0, seed=1)
    block = np.hstack(list(feats.values()))
    assert np.abs(np.corrcoef(np.column_stack([null, block]).T)[:3, 3:]).max() < 0.07


def test_cohort_segments_are_balanced_and_fit():
    subj, starts = en.cohort_segments(7, 1200, 70, 400, seed=0)
    assert np.bincount(subj).tolist() == [10] * 7
    assert starts.min() >= 0 and starts.max() <= 800
    with pytest.raises(ConfigError, match="segment_frames"):
        en.cohort_segments(7, 100, 10, 400, seed=0)
