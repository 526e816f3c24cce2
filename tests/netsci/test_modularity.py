"""Multilayer modularity, Leiden partitions, flexibility, entropy and the shuffled-weights null."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.core.errors import ConfigError
from reprolab.netsci import modularity as mod


def planted_multilayer(L: int = 6, N: int = 20, p_in: float = 0.8, p_out: float = 0.1, seed: int = 0):
    """L weighted slices with two planted communities of N / 2 nodes, fresh edges in every slice."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1], N // 2)
    p = np.where(truth[:, None] == truth[None, :], p_in, p_out)
    adjs = []
    for _ in range(L):
        A = (rng.random((N, N)) < p) * rng.uniform(0.5, 1.5, (N, N))
        A = np.triu(A, 1)
        adjs.append(A + A.T)
    return np.array(adjs), truth


def brute_force_Q(adjs, membership, gamma, omega):
    """Mucha et al. Eq. 3 from the dense supra-modularity matrix, term by term."""
    L, N, _ = adjs.shape
    B = np.zeros((L * N, L * N))
    for s in range(L):
        k = adjs[s].sum(1)
        B[s * N : (s + 1) * N, s * N : (s + 1) * N] = adjs[s] - gamma * np.outer(k, k) / adjs[s].sum()
        if s + 1 < L:
            for i in range(N):
                B[s * N + i, (s + 1) * N + i] = B[(s + 1) * N + i, s * N + i] = omega
    g = np.asarray(membership).ravel()
    two_mu = adjs.sum() + 2 * omega * N * (L - 1)
    return (B * (g[:, None] == g[None, :])).sum() / two_mu


@pytest.mark.parametrize("backend", mod.BACKENDS)
def test_planted_two_communities_are_found_by_every_backend(backend):
    adjs, truth = planted_multilayer()
    memberships = mod.multilayer_partitions(adjs, gamma=1.0, omega=1.0, repeats=3, seed=1, backend=backend)
    for g in memberships:
        assert (g == truth[None]).all() or (g == 1 - truth[None]).all()
    q = mod.multilayer_modularity(adjs, memberships[0])
    assert q == pytest.approx(brute_force_Q(adjs, memberships[0], 1.0, 1.0), rel=1e-12)
    assert q > 0.3
    assert (mod.node_flexibility(memberships[0]) == 0).all()


def test_modularity_matches_brute_force_for_random_partitions():
    rng = np.random.default_rng(3)
    adjs, _ = planted_multilayer(L=4, N=10, seed=3)
    for gamma, omega in ((1.0, 1.0), (0.8, 0.1), (1.3, 2.0)):
        g = rng.integers(0, 3, size=(4, 10))
        assert mod.multilayer_modularity(adjs, g, gamma, omega) == pytest.approx(
            brute_force_Q(adjs, g, gamma, omega)
        )


def test_leidenalg_layered_quality_equals_two_mu_times_mucha_Q():
    """leidenalg's own evaluation of the temporal objective agrees with our Q for any partition."""
    import igraph as ig
    import leidenalg as la

    adjs, _ = planted_multilayer(L=4, N=10, seed=5)
    L, N, _ = adjs.shape
    slices = []
    for A in adjs:
        iu, ju = np.nonzero(np.triu(A, 1))
        g = ig.Graph(n=N, edges=list(zip(iu, ju)))
        g.vs["id"] = list(range(N))
        g.es["weight"] = A[iu, ju].tolist()
        slices.append(g)
    gamma, omega = 0.9, 0.5
    layers, interslice, full = la.time_slices_to_layers(slices, interslice_weight=omega)
    rng = np.random.default_rng(0)
    for _ in range(3):
        g = rng.integers(0, 3, size=(L, N))
        flat = g[np.asarray(full.vs["slice"]), np.asarray(full.vs["id"])].tolist()
        parts = [
            la.RBConfigurationVertexPartition(
                H, initial_membership=flat, weights="weight", resolution_parameter=gamma
            )
            for H in layers
        ]
        parts.append(
            la.CPMVertexPartition(
                interslice,
                initial_membership=flat,
                resolution_parameter=0,
                node_sizes="node_size",
                weights="weight",
            )
        )
        two_mu = adjs.sum() + 2 * omega * N * (L - 1)
        assert sum(p.quality() for p in parts) == pytest.approx(
            two_mu * mod.multilayer_modularity(adjs, g, gamma, omega)
        )


def test_signed_supra_graph_backends_reach_the_same_objective_as_the_temporal_recipe():
    adjs, _ = planted_multilayer(L=5, N=16, p_in=0.5, p_out=0.3, seed=7)
    best = {
        b: max(
            mod.multilayer_modularity(adjs, g) for g in mod.multilayer_partitions(adjs, repeats=4, backend=b)
        )
        for b in mod.BACKENDS
    }
    assert max(best.values()) - min(best.values()) < 0.01


def test_flexibility_equals_hand_count():
    g = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 1], [1, 0, 1]])
    # node 0 changes once (slices 1->2), node 1 twice (0->1, 2->3), node 2 never; 3 transitions
    np.testing.assert_allclose(mod.node_flexibility(g), [1 / 3, 2 / 3, 0.0])
    # fraction of nodes changing at each transition: 1/3, 1/3, 1/3; window of 2 slices = that fraction
    np.testing.assert_allclose(mod.windowed_flexibility(g, 2), [np.nan, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(mod.windowed_flexibility(g, 4), [np.nan, np.nan, np.nan, 1 / 3])


def test_entropies_and_allegiance_of_known_partitions():
    g = np.array([[0, 0, 1, 1], [0, 0, 0, 0]])
    np.testing.assert_allclose(mod.module_size_entropy(g), [np.log(2), 0.0])
    np.testing.assert_allclose(mod.allegiance_entropy(g), [0.0, 0.0, np.log(2), np.log(2)])
    P = mod.allegiance_matrix(g)
    assert P[0, 1] == 1.0 and P[0, 2] == 0.5 and P[2, 3] == 1.0
    np.testing.assert_array_equal(mod.n_modules(g), [2, 1])


def test_windowed_allegiance_entropy_equals_the_entropy_of_each_window():
    rng = np.random.default_rng(3)
    g = rng.integers(0, 4, (12, 7))
    for window in (1, 3, 12):
        expected = [np.nan] * (window - 1) + [
            mod.allegiance_entropy(g[end - window + 1 : end + 1]).mean() for end in range(window - 1, 12)
        ]
        np.testing.assert_allclose(mod.windowed_allegiance_entropy(g, window), expected, atol=1e-12)
    assert np.isnan(mod.windowed_allegiance_entropy(g, 13)).all()


def test_consensus_of_identical_partitions_is_that_partition():
    _, truth = planted_multilayer(L=3, N=10)
    ms = np.stack([np.tile(truth, (3, 1))] * 5)
    consensus, rounds, agreed = mod.consensus_partition(ms, repeats=3)
    assert agreed == 1.0 and rounds == 1
    assert (consensus == truth).all() or (consensus == 1 - truth).all()


def test_shuffled_weights_keep_each_slice_multiset():
    base = np.arange(12.0).reshape(4, 3)
    Ws = np.stack([base + 100 * s for s in range(5)])  # slice s = slice 0 + 100 s, entry by entry
    same = mod.shuffle_weights(Ws, np.random.default_rng(1), same_permutation=True)
    fresh = mod.shuffle_weights(Ws, np.random.default_rng(1), same_permutation=False)
    for out in (same, fresh):
        np.testing.assert_allclose(np.sort(out.reshape(5, -1), 1), np.sort(Ws.reshape(5, -1), 1))
    assert not (same[0] == base).all()
    # one permutation for all slices: every entry keeps its trajectory
    np.testing.assert_allclose(same - same[0], Ws - Ws[0])
    assert not np.allclose(fresh - fresh[0], Ws - Ws[0])


def test_weight_graphs():
    W = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 1.0, 0.0]])
    A = mod.weight_graph(W, "corr")
    assert (
        A[0, 1] == pytest.approx(1.0) and (np.diag(A) == 0).all() and np.allclose(A, A.T) and (A >= 0).all()
    )
    np.testing.assert_allclose(mod.weight_graph(W, "gram")[0, 1], 28.0)
    B = mod.weight_graph(W, "bipartite")
    assert B.shape == (6, 6) and B[0, 3] == 1.0 and B[:3, :3].sum() == 0
    assert mod.weight_graph(np.ones((3, 4)), "corr").sum() == 0  # constant rows: no correlation, no NaN
    with pytest.raises(ConfigError, match="analysis.graph"):
        mod.weight_graph(W, "spectral")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="non-negative"):
        mod.multilayer_partitions(-np.ones((2, 3, 3)), repeats=1)
    with pytest.raises(ConfigError, match="analysis.backend"):
        mod.multilayer_partitions(np.ones((2, 3, 3)), repeats=1, backend="louvain")


def test_relabel_orders_labels_by_first_appearance():
    np.testing.assert_array_equal(mod.relabel(np.array([[5, 5, 2], [9, 2, 5]])), [[0, 0, 1], [2, 1, 0]])
