"""Multilayer (temporal) modularity, flexibility and module entropy of a sequence of graphs.

A temporal network is a stack of ``L`` weighted, undirected graphs on the same ``N`` nodes
(``adjs[l]``, non-negative, zero diagonal). Node ``i`` in slice ``l`` and in slice ``l + 1`` are
joined by an interslice edge of weight ``omega``. The multilayer modularity of Mucha, Richardson,
Macon, Porter & Onnela (Science 328:876, 2010, Eq. 3) is::

    Q = 1/(2 mu) sum_{ijsr} [ (A_ijs - gamma k_is k_js / (2 m_s)) delta_sr + delta_ij omega_jsr ] delta(g_is, g_jr)

with ``2 mu = sum_s 2 m_s + 2 omega N (L - 1)``. Partitions are found with the Leiden algorithm
(Traag, Waltman & van Eck, Sci. Rep. 9:5233, 2019) through leidenalg or igraph. Because the
per-slice null model ``gamma k_is k_js / 2m_s`` only couples nodes of the same slice, the objective
equals, up to a constant and a factor, the Constant Potts Model with resolution 0 on the
"supra-graph" whose intra-slice edge weights are the modularity matrix
``B_ijs = A_ijs - gamma k_is k_js / 2 m_s`` (signed; CPM is defined for negative weights) and whose
interslice edges weigh ``omega``. Three optimisers of that same objective are offered:

``igraph``
    ``igraph.Graph.community_leiden(objective_function="CPM", resolution=0)`` on the supra-graph.
``leidenalg``
    ``leidenalg.Optimiser.optimise_partition_multiplex`` on two layers, the signed intra-slice
    modularity matrix and the interslice coupling (the leidenalg manual's recipe for signed
    multiplex graphs), both ``CPMVertexPartition`` with resolution 0.
``leidenalg_temporal``
    The documented temporal recipe (``time_slices_to_layers`` with one
    ``RBConfigurationVertexPartition`` per slice plus a coupling layer), as
    ``leidenalg.find_partition_temporal`` builds it. Its cost grows with ``L^2``.

Flexibility (Bassett et al., PNAS 108:7641, 2011): the fraction of consecutive slice pairs in
which a node changes module. Module labels are shared across slices by construction.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reprolab.core.errors import ConfigError

BACKENDS = ("igraph", "leidenalg", "leidenalg_temporal")
GRAPHS = ("corr", "gram", "bipartite")


# --------------------------------------------------------------------------------------------
# Graphs from weight matrices
# --------------------------------------------------------------------------------------------


def weight_graph(W: np.ndarray, kind: str = "corr") -> np.ndarray:
    """A non-negative, symmetric adjacency matrix with zero diagonal built from a weight matrix.

    Parameters
    ----------
    W
        ``[Nh, Nx]`` weights (rows = hidden units).
    kind
        ``corr``: hidden-unit graph ``|corr(W_i., W_j.)|``; ``gram``: ``|W W^T|``;
        ``bipartite``: input-hidden graph on ``Nh + Nx`` nodes (hidden first) with weights ``|W|``.
    """
    W = np.asarray(W, dtype=np.float64)
    if kind == "corr":
        centred = W - W.mean(1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            A = np.abs(centred @ centred.T) / np.outer(norms, norms)
        A = np.nan_to_num(A, nan=0.0, posinf=0.0)  # a constant row has no correlation
    elif kind == "gram":
        A = np.abs(W @ W.T)
    elif kind == "bipartite":
        Nh, Nx = W.shape
        A = np.zeros((Nh + Nx, Nh + Nx))
        A[:Nh, Nh:] = np.abs(W)
        A[Nh:, :Nh] = np.abs(W).T
    else:
        raise ConfigError(f"analysis.graph {kind!r} is unknown; use one of {', '.join(GRAPHS)}")
    np.fill_diagonal(A, 0.0)
    return A


def weight_graphs(Ws: np.ndarray, kind: str = "corr") -> np.ndarray:
    """:func:`weight_graph` of every slice of ``Ws [L, Nh, Nx]``; returns ``[L, N, N]``."""
    return np.stack([weight_graph(W, kind) for W in Ws])


def modularity_matrices(adjs: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``B_ijs = A_ijs - gamma k_is k_js / (2 m_s)`` per slice (zero for an empty slice)."""
    adjs = np.asarray(adjs, dtype=np.float64)
    k = adjs.sum(2)
    two_m = adjs.sum((1, 2))
    safe = np.where(two_m > 0, two_m, 1.0)
    return adjs - gamma * k[:, :, None] * k[:, None, :] / safe[:, None, None]


def _check_adjs(adjs: np.ndarray) -> np.ndarray:
    adjs = np.asarray(adjs, dtype=np.float64)
    if adjs.ndim != 3 or adjs.shape[1] != adjs.shape[2]:
        raise ValueError(f"adjacency stack must be [L, N, N], got {adjs.shape}")
    if (adjs < 0).any():
        raise ValueError("multilayer modularity with the configuration null model needs non-negative weights")
    if not np.allclose(adjs, adjs.transpose(0, 2, 1)):
        raise ValueError("adjacency matrices must be symmetric")
    return adjs


# --------------------------------------------------------------------------------------------
# Quality of a given partition
# --------------------------------------------------------------------------------------------


def multilayer_modularity(
    adjs: np.ndarray, membership: np.ndarray, gamma: float = 1.0, omega: float = 1.0
) -> float:
    """Mucha et al. (2010) Eq. 3 for ``membership [L, N]`` (labels shared across slices)."""
    adjs = np.asarray(adjs, dtype=np.float64)
    g = np.asarray(membership)
    L, N = g.shape
    same = g[:, :, None] == g[:, None, :]
    intra = float((modularity_matrices(adjs, gamma) * same).sum())
    inter = 2.0 * omega * float((g[1:] == g[:-1]).sum())
    two_mu = float(adjs.sum()) + 2.0 * omega * N * (L - 1)
    return (intra + inter) / two_mu


def slice_modularity(adjs: np.ndarray, membership: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Single-layer (Newman-Girvan) modularity of every slice under its part of the partition, ``[L]``."""
    adjs = np.asarray(adjs, dtype=np.float64)
    g = np.asarray(membership)
    same = g[:, :, None] == g[:, None, :]
    two_m = adjs.sum((1, 2))
    q = (modularity_matrices(adjs, gamma) * same).sum((1, 2))
    return np.where(two_m > 0, q / np.where(two_m > 0, two_m, 1.0), 0.0)


# --------------------------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------------------------


def relabel(membership: np.ndarray) -> np.ndarray:
    """Consecutive labels 0, 1, ... in order of first appearance (slice by slice)."""
    flat = np.asarray(membership).ravel()
    _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].reshape(np.shape(membership))


@dataclass
class SupraGraph:
    """Edges of the supra-graph of a temporal network (node ``l * N + i`` = node ``i`` in slice ``l``)."""

    L: int
    N: int
    intra_edges: np.ndarray  # [E, 2]
    intra_weights: np.ndarray  # [E], entries of the modularity matrices (signed)
    inter_edges: np.ndarray  # [(L - 1) N, 2]
    omega: float


def supra_graph(adjs: np.ndarray, gamma: float = 1.0, omega: float = 1.0) -> SupraGraph:
    """Intra-slice modularity-matrix edges and interslice coupling edges (vectorised)."""
    adjs = _check_adjs(adjs)
    L, N, _ = adjs.shape
    B = modularity_matrices(adjs, gamma)
    iu, ju = np.triu_indices(N, 1)
    offsets = (np.arange(L) * N)[:, None]
    edges = np.stack([(iu[None] + offsets).ravel(), (ju[None] + offsets).ravel()], 1)
    weights = B[:, iu, ju].ravel()
    keep = weights != 0
    inter_src = np.arange((L - 1) * N)
    return SupraGraph(L, N, edges[keep], weights[keep], np.stack([inter_src, inter_src + N], 1), float(omega))


def _igraph_supra(sg: SupraGraph) -> tuple[Any, list[float]]:
    """The supra-graph as an igraph ``Graph`` and its edge weights, built once for every repeat."""
    import igraph as ig

    edges = np.concatenate([sg.intra_edges, sg.inter_edges])
    weights = np.concatenate([sg.intra_weights, np.full(len(sg.inter_edges), sg.omega)])
    return ig.Graph(n=sg.L * sg.N, edges=edges), weights.tolist()


def _leiden_igraph(graph: Any, weights: list[float], seed: int, n_iterations: int) -> np.ndarray:
    state = random.getstate()
    random.seed(seed)  # python-igraph draws from Python's random module
    try:
        part = graph.community_leiden(
            objective_function="CPM", resolution=0.0, weights=weights, n_iterations=n_iterations
        )
    finally:
        random.setstate(state)
    return np.asarray(part.membership)


def _leiden_multiplex(sg: SupraGraph, seed: int, n_iterations: int) -> np.ndarray:
    import igraph as ig
    import leidenalg as la

    n = sg.L * sg.N
    intra = ig.Graph(n=n, edges=sg.intra_edges)
    inter = ig.Graph(n=n, edges=sg.inter_edges)
    layers = [
        la.CPMVertexPartition(intra, weights=sg.intra_weights.tolist(), resolution_parameter=0.0),
        la.CPMVertexPartition(inter, weights=[sg.omega] * len(sg.inter_edges), resolution_parameter=0.0),
    ]
    optimiser = la.Optimiser()
    optimiser.set_rng_seed(seed)
    optimiser.optimise_partition_multiplex(layers, n_iterations=n_iterations)
    return np.asarray(layers[0].membership)


def _leiden_temporal(
    adjs: np.ndarray, gamma: float, omega: float, seed: int, n_iterations: int
) -> np.ndarray:
    import igraph as ig
    import leidenalg as la

    L, N, _ = adjs.shape
    iu, ju = np.triu_indices(N, 1)
    slices = []
    for A in adjs:
        w = A[iu, ju]
        g = ig.Graph(n=N, edges=np.stack([iu[w > 0], ju[w > 0]], 1))
        g.vs["id"] = list(range(N))
        g.es["weight"] = w[w > 0].tolist()
        slices.append(g)
    layers, interslice, full = la.time_slices_to_layers(slices, interslice_weight=omega)
    parts = [
        la.RBConfigurationVertexPartition(H, weights="weight", resolution_parameter=gamma) for H in layers
    ]
    parts.append(
        la.CPMVertexPartition(interslice, resolution_parameter=0, node_sizes="node_size", weights="weight")
    )
    optimiser = la.Optimiser()
    optimiser.set_rng_seed(seed)
    optimiser.optimise_partition_multiplex(parts, n_iterations=n_iterations)
    out = np.empty((L, N), dtype=np.int64)
    out[np.asarray(full.vs["slice"]), np.asarray(full.vs["id"])] = parts[0].membership
    return out.ravel()


def multilayer_partitions(
    adjs: np.ndarray,
    gamma: float = 1.0,
    omega: float = 1.0,
    repeats: int = 100,
    seed: int = 0,
    backend: str = "igraph",
    n_iterations: int = -1,
) -> np.ndarray:
    """``repeats`` Leiden optimisations of the multilayer modularity with seeds ``seed + r``.

    Returns
    -------
    ndarray, int, ``[repeats, L, N]``
        Memberships with labels shared across slices, relabelled 0, 1, ... per repeat.
    """
    adjs = _check_adjs(adjs)
    L, N, _ = adjs.shape
    if backend not in BACKENDS:
        raise ConfigError(f"analysis.backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    sg = supra_graph(adjs, gamma, omega) if backend != "leidenalg_temporal" else None
    graph, weights = _igraph_supra(sg) if backend == "igraph" else (None, [])
    out = np.empty((repeats, L, N), dtype=np.int64)
    for r in range(repeats):
        if backend == "igraph":
            flat = _leiden_igraph(graph, weights, seed + r, n_iterations)
        elif backend == "leidenalg":
            flat = _leiden_multiplex(sg, seed + r, n_iterations)
        else:
            flat = _leiden_temporal(adjs, gamma, omega, seed + r, n_iterations)
        out[r] = relabel(flat.reshape(L, N))
    return out


def agreement(memberships: np.ndarray) -> np.ndarray:
    """Per slice, the fraction of partitions in which two nodes share a module, ``[L, N, N]``."""
    g = np.asarray(memberships)
    return (g[:, :, :, None] == g[:, :, None, :]).mean(0)


def consensus_partition(
    memberships: np.ndarray,
    gamma: float = 1.0,
    omega: float = 1.0,
    threshold: float = 0.5,
    repeats: int = 20,
    max_rounds: int = 10,
    seed: int = 0,
    backend: str = "igraph",
    n_iterations: int = -1,
) -> tuple[np.ndarray, int, float]:
    """Consensus clustering of a set of multilayer partitions (Lancichinetti & Fortunato 2012).

    The per-slice agreement matrices, with entries below ``threshold`` set to 0, are partitioned
    again ``repeats`` times (with the same interslice coupling), until the new partitions agree
    on every within-slice pair (all agreements 0 or 1) or ``max_rounds`` is reached (Bassett et
    al., Chaos 23:013142, 2013 apply the procedure to multilayer networks). Module labels across
    slices may still differ between the final partitions; the first one is returned.

    Returns
    -------
    membership, rounds, agreed
        The consensus ``[L, N]``, the rounds used, and the fraction of within-slice node pairs on
        which the last round's partitions all agree (1.0 = converged).
    """
    current = np.asarray(memberships)
    agreed = 0.0
    for rounds in range(1, max_rounds + 1):
        D = agreement(current)
        agreed = float(((D == 0) | (D == 1)).mean())
        if agreed == 1.0 and rounds > 1:
            return current[0], rounds - 1, agreed
        D = np.where(D >= threshold, D, 0.0)
        for Ds in D:
            np.fill_diagonal(Ds, 0.0)
        current = multilayer_partitions(D, gamma, omega, repeats, seed + 1000 * rounds, backend, n_iterations)
    D = agreement(current)
    return current[0], max_rounds, float(((D == 0) | (D == 1)).mean())


# --------------------------------------------------------------------------------------------
# Flexibility, entropy, allegiance
# --------------------------------------------------------------------------------------------


def node_flexibility(membership: np.ndarray) -> np.ndarray:
    """Fraction of the ``L - 1`` slice transitions in which each node changes module, ``[N]``."""
    g = np.asarray(membership)
    if g.shape[0] < 2:
        return np.zeros(g.shape[1])
    return (g[1:] != g[:-1]).mean(0)


def windowed_flexibility(membership: np.ndarray, window: int) -> np.ndarray:
    """Network flexibility of the windows of ``window`` slices ending at each slice (NaN before), ``[L]``."""
    g = np.asarray(membership)
    L = g.shape[0]
    changes = np.concatenate([[0.0], (g[1:] != g[:-1]).mean(1)])  # fraction of nodes changing at l
    out = np.full(L, np.nan)
    if window < 2 or window > L:
        return out
    csum = np.cumsum(changes)
    out[window - 1 :] = (csum[window - 1 :] - csum[: L - window + 1]) / (window - 1)
    return out


def module_size_entropy(membership: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the module-size distribution ``p_k = |C_k| / N`` of each slice, ``[L]``."""
    g = np.asarray(membership)
    L, N = g.shape
    counts = np.zeros((L, int(g.max()) + 1))
    np.add.at(counts, (np.repeat(np.arange(L), N), g.ravel()), 1.0)
    p = counts / N
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(1)


def allegiance_entropy(membership: np.ndarray) -> np.ndarray:
    """Per node, the entropy (nats) of the distribution of its module labels over slices, ``[N]``."""
    g = np.asarray(membership)
    L, N = g.shape
    counts = np.zeros((N, int(g.max()) + 1))
    np.add.at(counts, (np.tile(np.arange(N), L), g.ravel()), 1.0)
    q = counts / L
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(q > 0, q * np.log(q), 0.0).sum(1)


def windowed_allegiance_entropy(membership: np.ndarray, window: int) -> np.ndarray:
    """Mean node :func:`allegiance_entropy` over windows of ``window`` slices ending at each slice, ``[L]``.

    All windows at once: cumulative per-node label counts over slices, differenced ``window``
    slices apart, give every window's label distribution.
    """
    g = np.asarray(membership)
    L, N = g.shape
    out = np.full(L, np.nan)
    if window < 1 or window > L:
        return out
    onehot = np.zeros((L + 1, N, int(g.max()) + 1))
    onehot[np.repeat(np.arange(1, L + 1), N), np.tile(np.arange(N), L), g.ravel()] = 1.0
    counts = np.cumsum(onehot, axis=0)
    q = (counts[window:] - counts[:-window]) / window  # [L - window + 1, N, K]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[window - 1 :] = -np.where(q > 0, q * np.log(q), 0.0).sum(2).mean(1)
    return out


def allegiance_matrix(memberships: np.ndarray, slices: Sequence[int] | slice | None = None) -> np.ndarray:
    """Fraction of (repeat, slice) pairs in which two nodes share a module, ``[N, N]``.

    ``memberships`` is ``[R, L, N]`` (or ``[L, N]``); ``slices`` selects the slices averaged.
    """
    g = np.asarray(memberships)
    if g.ndim == 2:
        g = g[None]
    if slices is not None:
        g = g[:, slices]
    return (g[..., :, None] == g[..., None, :]).mean((0, 1))


def n_modules(membership: np.ndarray) -> np.ndarray:
    """Number of distinct modules in each slice, ``[L]``."""
    g = np.asarray(membership)
    present = np.zeros((g.shape[0], int(g.max()) + 1), dtype=bool)
    present[np.repeat(np.arange(g.shape[0]), g.shape[1]), g.ravel()] = True
    return present.sum(1)


def shuffle_weights(Ws: np.ndarray, rng: np.random.Generator, same_permutation: bool = True) -> np.ndarray:
    """Null model: permute the entries of every weight matrix ``Ws [L, ...]``.

    With ``same_permutation`` one permutation is applied to every slice, which keeps each
    weight's trajectory (and so the temporal smoothness of the stack) but scrambles which unit
    it belongs to; otherwise every slice gets its own permutation.
    """
    Ws = np.asarray(Ws)
    L = Ws.shape[0]
    flat = Ws.reshape(L, -1)
    if same_permutation:
        out = flat[:, rng.permutation(flat.shape[1])]
    else:
        out = np.take_along_axis(flat, np.argsort(rng.random(flat.shape), axis=1), axis=1)
    return out.reshape(Ws.shape)
