"""Minimum-energy control of linear network dynamics built from functional connectivity.

Deng, Li, Yeo, Gu. "Control Theory Illustrates the Energy Efficiency in the Dynamic
Reconfiguration of Functional Connectivity", Commun. Biol. 5:295 (2022), arXiv:2201.02340,
following the lab's code (brain-intelligence-lab/functional_controllability, read only):

- System matrix (``functional2system.m``): thresholded Pearson FC -> signed Laplacian
  ``L_ij = -FC_ij (i != j), L_ii = sum_{j != i} |FC_ij|`` -> ``A = -L / max|eig(L)|``.
- Continuous-time LTI system ``dx/dt = A x + B u`` with ``B = I[:, control nodes]``.
- Finite-horizon controllability Gramian ``W_T = int_0^T e^{At} B B^T e^{A^T t} dt``.
- Static minimum energy (``staticMiniEnergy.m``): ``E = 1/2 d^T pinv(W_T) d`` with
  ``d = x_f - e^{AT} x_0``.
- Dynamic minimum energy for a piecewise-constant system (``dynamicMiniEnergy.m``; Li,
  Cornelius et al., Science 358:1042, 2017): windows ``A_1..A_M`` held for ``dt`` each,
  ``Phi_m = e^{A_m dt}``, ``W_eff = sum_m (Phi_M..Phi_{m+1}) W_m (Phi_M..Phi_{m+1})^T``,
  ``d = x_f - Phi_M..Phi_1 x_0``, ``E = 1/2 d^T pinv(W_eff) d``.

Gramians are exact. A system matrix built from FC is symmetric, so ``A = V diag(lam) V^T``
and the integral has the closed form ``W_T = V (C * G) V^T`` with ``C = V^T B B^T V`` and
``G_ij = (e^{(lam_i + lam_j) T} - 1) / (lam_i + lam_j)`` (``T`` where the sum vanishes). Any
square ``A`` is handled by Van Loan's block exponential (Van Loan, IEEE TAC 23:395, 1978):
``expm([[-A, B B^T], [0, A^T]] T) = [[F1, G1], [0, F2]]`` gives ``W_T = F2^T G1``. Both are
batched over leading dimensions; neither integrates numerically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg
from scipy import stats

from reprolab.core.errors import DataError

#: Below this |x|, ``(e^x - 1) / x`` is evaluated by its Taylor series (relative error < 1e-16).
_PHI1_SERIES = 1e-8


# --------------------------------------------------------------------------- connectivity


def zscore_regions(ts: np.ndarray) -> np.ndarray:
    """Z-score every region over time (MATLAB ``zscore(Si')'``: mean 0, sample SD 1).

    Parameters
    ----------
    ts
        Time series ``[..., regions, frames]``.

    Raises
    ------
    DataError
        If a region has no variance (a dead or masked-out parcel).
    """
    ts = np.asarray(ts, dtype=float)
    sd = ts.std(axis=-1, ddof=1, keepdims=True)
    if np.any(sd == 0) or not np.all(np.isfinite(sd)):
        bad = np.argwhere(~(sd[..., 0] > 0))
        raise DataError(f"time series: region(s) with zero or non-finite variance at index {bad[:5].tolist()}; "
                        "drop those parcels or check the parcellation")
    return (ts - ts.mean(axis=-1, keepdims=True)) / sd


def critical_r(n_frames: int, p_threshold: float = 0.05) -> float:
    """Smallest |r| whose two-sided Pearson p-value is at most ``p_threshold``.

    The p-value of MATLAB's ``corr`` comes from ``t = r sqrt((n-2)/(1-r^2))`` with ``n-2``
    degrees of freedom, so ``p <= p_threshold`` exactly when ``|r| >= t_c / sqrt(n - 2 + t_c^2)``.
    """
    if n_frames < 3:
        raise DataError(f"a correlation over {n_frames} frames has no p-value; use windows of at least 3 frames")
    df = n_frames - 2
    t_c = stats.t.isf(p_threshold / 2, df)
    return float(t_c / np.sqrt(df + t_c**2))


def functional_connectivity(ts: np.ndarray, p_threshold: float | None = 0.05) -> np.ndarray:
    """Pearson correlation between regions, zeroed where its p-value exceeds ``p_threshold``.

    Parameters
    ----------
    ts
        ``[..., regions, frames]`` (any scaling; the correlation standardises each window).
    p_threshold
        Two-sided significance level of ``functional2system`` (``FC(p > 0.05) = 0``);
        ``None`` keeps every correlation.

    Returns
    -------
    ndarray
        ``[..., regions, regions]``, symmetric, ones on the diagonal.
    """
    ts = np.asarray(ts, dtype=float)
    centred = ts - ts.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.einsum("...nf,...nf->...n", centred, centred))
    unit = centred / np.where(norm > 0, norm, 1.0)[..., None]
    fc = unit @ np.swapaxes(unit, -1, -2)
    fc = np.clip((fc + np.swapaxes(fc, -1, -2)) / 2, -1.0, 1.0)
    if p_threshold is not None:
        fc = np.where(np.abs(fc) >= critical_r(ts.shape[-1], p_threshold), fc, 0.0)
    idx = np.arange(fc.shape[-1])
    fc[..., idx, idx] = 1.0
    return fc


def proportional_threshold(fc: np.ndarray, density: float) -> np.ndarray:
    """Keep the strongest ``density`` fraction of the off-diagonal ``|FC|`` entries of each matrix.

    Every matrix of the batch keeps the same number of edges, ``round(density N (N - 1) / 2)``
    pairs, whatever its length in frames; the rest are set to 0 and the diagonal to 1. Ties at
    the cut-off are kept.

    Parameters
    ----------
    fc
        ``[..., N, N]`` symmetric correlation matrices.
    density
        Fraction of node pairs kept, in ``(0, 1]``.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    fc = np.asarray(fc, dtype=float)
    n = fc.shape[-1]
    iu, ju = np.triu_indices(n, 1)
    strength = np.abs(fc[..., iu, ju])  # [..., P]
    keep = max(1, round(density * len(iu)))
    cut = -np.partition(-strength, keep - 1, axis=-1)[..., keep - 1 : keep]  # keep-th largest
    out = np.zeros_like(fc)
    kept = np.where(strength >= cut, fc[..., iu, ju], 0.0)
    out[..., iu, ju] = kept
    out[..., ju, iu] = kept
    idx = np.arange(n)
    out[..., idx, idx] = 1.0
    return out


def edge_density(fc: np.ndarray) -> np.ndarray:
    """Fraction of node pairs with a non-zero FC entry, ``[...]``."""
    n = fc.shape[-1]
    iu, ju = np.triu_indices(n, 1)
    return (fc[..., iu, ju] != 0).mean(axis=-1)


@numba.njit(cache=True)
def _laplacian_kernel(fc: np.ndarray, crit: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Signed Laplacian of ``fc [B, N, N]`` (symmetrised, clipped to [-1, 1], entries with |r| < crit
    dropped) and the fraction of node pairs kept with a non-zero weight."""
    n_batch, n = fc.shape[0], fc.shape[1]
    lap = np.zeros_like(fc)
    density = np.zeros(n_batch)
    for b in range(n_batch):
        kept = 0
        for i in range(n):
            for j in range(i + 1, n):
                r = min(max(0.5 * (fc[b, i, j] + fc[b, j, i]), -1.0), 1.0)
                if abs(r) >= crit and r != 0.0:
                    lap[b, i, j] = -r
                    lap[b, j, i] = -r
                    kept += 1
        for i in range(n):
            total = 0.0
            for j in range(n):
                if j != i:
                    total += abs(lap[b, i, j])
            lap[b, i, i] = total
        density[b] = kept / (n * (n - 1) / 2)
    return lap, density


def _laplacian(fc: np.ndarray, crit: float) -> tuple[np.ndarray, np.ndarray]:
    fc = np.asarray(fc, dtype=float)
    batch, n = fc.shape[:-2], fc.shape[-1]
    lap, density = _laplacian_kernel(np.ascontiguousarray(fc).reshape(-1, n, n), float(crit))
    return lap.reshape(batch + (n, n)), density.reshape(batch)


def signed_laplacian(fc: np.ndarray) -> np.ndarray:
    """``L_ij = -FC_ij`` for ``i != j`` and ``L_ii = sum_{j != i} |FC_ij|`` (``functional2system.m``)."""
    return _laplacian(fc, 0.0)[0]


def correlation_laplacian(ts: np.ndarray, p_threshold: float | None = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Signed Laplacian of :func:`functional_connectivity` straight from the series, and its edge density.

    Equal to ``signed_laplacian(functional_connectivity(ts, p_threshold))`` without the
    intermediate thresholded matrices (one compiled pass).

    Returns
    -------
    laplacian, density
        ``[..., N, N]`` and ``[...]`` (fraction of node pairs with a kept, non-zero correlation).
    """
    ts = np.asarray(ts, dtype=float)
    centred = ts - ts.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.einsum("...nf,...nf->...n", centred, centred))
    unit = centred / np.where(norm > 0, norm, 1.0)[..., None]
    crit = 0.0 if p_threshold is None else critical_r(ts.shape[-1], p_threshold)
    return _laplacian(unit @ np.swapaxes(unit, -1, -2), crit)


@dataclass
class SymmetricSystem:
    """Symmetric system matrices in spectral form, ``A = V diag(lam) V^T``, batched.

    Attributes
    ----------
    lam
        Eigenvalues ``[..., N]`` (in ``[-1, 0]`` for a system built by :func:`system_from_fc`).
    vecs
        Orthonormal eigenvectors as columns ``[..., N, N]``.
    """

    lam: np.ndarray
    vecs: np.ndarray

    @property
    def n(self) -> int:
        """Number of regions."""
        return self.lam.shape[-1]

    def matrix(self) -> np.ndarray:
        """The system matrices ``A`` ``[..., N, N]``."""
        return (self.vecs * self.lam[..., None, :]) @ np.swapaxes(self.vecs, -1, -2)

    def take(self, index: np.ndarray | Sequence[int], axis: int) -> SymmetricSystem:
        """Select or reorder systems along batch axis ``axis`` (counted from 0)."""
        return SymmetricSystem(np.take(self.lam, index, axis=axis), np.take(self.vecs, index, axis=axis))


def system_from_fc(fc: np.ndarray) -> SymmetricSystem:
    """``A = -L / max|eig(L)|`` from (thresholded) FC, in spectral form (``functional2system.m``).

    The signed Laplacian is diagonally dominant, so its spectrum is ``>= 0`` and that of
    ``A`` lies in ``[-1, 0]``: the system is at most marginally stable. A network without
    any edge (all FC zeroed) gives ``A = 0``.
    """
    return system_from_laplacian(signed_laplacian(fc))


def system_from_laplacian(lap: np.ndarray) -> SymmetricSystem:
    """``A = -L / max|eig(L)|`` in spectral form, from signed Laplacians ``[..., N, N]``."""
    mu, vecs = np.linalg.eigh(lap)
    scale = np.abs(mu).max(axis=-1, keepdims=True)
    lam = -mu / np.where(scale > 0, scale, 1.0)
    return SymmetricSystem(lam, vecs)


def system_matrix(fc: np.ndarray) -> np.ndarray:
    """The dense system matrix ``A`` of :func:`system_from_fc`."""
    return system_from_fc(fc).matrix()


def control_matrix(n: int, nodes: Sequence[int]) -> np.ndarray:
    """``B = I[:, nodes]``: unit input at each control node."""
    nodes = np.asarray(nodes, dtype=int)
    if nodes.size == 0 or nodes.min() < 0 or nodes.max() >= n or len(set(nodes.tolist())) != nodes.size:
        raise ValueError(f"control nodes must be distinct indices in 0..{n - 1}, got {nodes.tolist()}")
    return np.eye(n)[:, nodes]


# --------------------------------------------------------------------------- Gramians


def phi1(x: np.ndarray) -> np.ndarray:
    """``(e^x - 1) / x`` with its limit 1 at 0, accurate for every ``x``."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < _PHI1_SERIES
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 + x / 2, np.expm1(safe) / safe)


@numba.njit(cache=True)
def _gram_kernel(lam: np.ndarray, c: np.ndarray, t: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``c_ij t phi1((lam_i + lam_j) t)`` for flat batches ``lam [B, N]``, ``c [B, N, N]``, ``t [B]``."""
    n_batch, n = lam.shape
    out = np.empty_like(c)
    for b in range(n_batch):
        tb = t[b]
        for i in range(n):
            for j in range(i, n):
                x = (lam[b, i] + lam[b, j]) * tb
                f = tb * (1.0 + 0.5 * x) if abs(x) < _PHI1_SERIES else tb * math.expm1(x) / x
                out[b, i, j] = c[b, i, j] * f
                out[b, j, i] = c[b, j, i] * f
    return out


def gram_inner(lam: np.ndarray, c: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The Gramian in the eigenbasis, ``C * G`` with ``G_ij = t phi1((lam_i + lam_j) t)``, batched.

    Equal to ``c * (t * phi1((lam_i + lam_j) t))``, in one compiled pass without temporaries (this
    elementwise step costs as much as the eigendecompositions when done with NumPy).

    Parameters
    ----------
    lam
        ``[..., N]`` eigenvalues.
    c
        ``[..., N, N]`` ``V^T B B^T V``.
    t
        Horizon per system, broadcastable to ``lam.shape[:-1]``.
    """
    batch = lam.shape[:-1]
    n = lam.shape[-1]
    t = np.broadcast_to(np.asarray(t, dtype=float), batch).reshape(-1)
    out = _gram_kernel(np.ascontiguousarray(lam, dtype=float).reshape(-1, n),
                       np.ascontiguousarray(c, dtype=float).reshape(-1, n, n), np.ascontiguousarray(t))
    return out.reshape(batch + (n, n))


def compile_kernels() -> None:
    """Compile (or load from numba's cache) the compiled kernels, so that timings do not include it."""
    fc = np.eye(3)[None]
    _laplacian(fc, 0.0)
    gram_inner(np.zeros((1, 3)), np.eye(3)[None], np.ones(1))


def _as_times(T: float | np.ndarray, batch_shape: tuple[int, ...]) -> np.ndarray:
    """Horizon(s) broadcast to the batch shape."""
    T = np.asarray(T, dtype=float)
    if np.any(T <= 0):
        raise ValueError(f"control horizon must be positive, got {T}")
    return np.broadcast_to(T, batch_shape)


def gramian_spectral(system: SymmetricSystem, nodes: Sequence[int], T: float | np.ndarray) -> np.ndarray:
    """Exact finite-horizon Gramian of symmetric systems, ``W_T = V (C * G) V^T``.

    ``C = V^T B B^T V = V[nodes]^T V[nodes]`` and ``G_ij = T phi1((lam_i + lam_j) T)``.

    Parameters
    ----------
    system
        Batched symmetric systems.
    nodes
        Control node indices (``B = I[:, nodes]``).
    T
        Horizon, scalar or broadcastable to the batch shape.

    Returns
    -------
    ndarray
        ``[..., N, N]`` symmetric positive semi-definite Gramians.
    """
    T = _as_times(T, system.lam.shape[:-1])
    vb = system.vecs[..., np.asarray(nodes, dtype=int), :]
    inner = gram_inner(system.lam, np.swapaxes(vb, -1, -2) @ vb, T)
    w = system.vecs @ inner @ np.swapaxes(system.vecs, -1, -2)
    return (w + np.swapaxes(w, -1, -2)) / 2


def propagator_spectral(system: SymmetricSystem, t: float | np.ndarray) -> np.ndarray:
    """``e^{A t} = V diag(e^{lam t}) V^T``, batched."""
    t = _as_times(t, system.lam.shape[:-1])[..., None]
    return (system.vecs * np.exp(system.lam * t)[..., None, :]) @ np.swapaxes(system.vecs, -1, -2)


def vanloan_terms(A: np.ndarray, B: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray]:
    """``e^{AT}`` and the exact Gramian ``W_T`` of any square ``A`` by Van Loan's method.

    ``expm(T [[-A, B B^T], [0, A^T]]) = [[F1, G1], [0, F2]]``; then ``e^{AT} = F2^T`` and
    ``W_T = F2^T G1`` (Van Loan 1978, Theorem 1).

    Parameters
    ----------
    A
        ``[..., N, N]`` system matrices.
    B
        ``[N, K]`` input matrix.
    T
        Horizon (> 0).

    Returns
    -------
    tuple of ndarray
        ``(e^{AT}, W_T)``, each ``[..., N, N]``.
    """
    A = np.asarray(A, dtype=float)
    _as_times(T, ())
    n = A.shape[-1]
    h = np.zeros(A.shape[:-2] + (2 * n, 2 * n))
    h[..., :n, :n] = -A
    h[..., :n, n:] = B @ B.T
    h[..., n:, n:] = np.swapaxes(A, -1, -2)
    block = scipy.linalg.expm(h * T)
    f2t = np.swapaxes(block[..., n:, n:], -1, -2)
    w = f2t @ block[..., :n, n:]
    return f2t, (w + np.swapaxes(w, -1, -2)) / 2


def gramian_vanloan(A: np.ndarray, B: np.ndarray, T: float) -> np.ndarray:
    """Exact Gramian ``W_T`` of any square ``A`` (see :func:`vanloan_terms`)."""
    return vanloan_terms(A, B, T)[1]


# --------------------------------------------------------------------------- energies


def minimum_energy(W: np.ndarray, d: np.ndarray, return_rank: bool = False, rtol: float | None = None
                   ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``1/2 d^T pinv(W) d`` for symmetric PSD ``W``, batched.

    The pseudo-inverse drops eigenvalues below ``rtol * max eig``; the default
    ``rtol = N * eps`` is the tolerance of MATLAB's and NumPy's ``pinv``, which the
    official code uses: Gramians of a few control nodes over short horizons are numerically
    singular.

    Parameters
    ----------
    W
        ``[..., N, N]`` Gramians.
    d
        ``[..., N]`` state differences ``x_f - e^{AT} x_0``.
    return_rank
        Also return how many eigenvalues the pseudo-inverse keeps (its numerical rank).
    rtol
        Relative cut-off of the pseudo-inverse (default ``N * eps``).
    """
    evals, evecs = np.linalg.eigh(W)
    energy, rank = _energy_from_eigh(evals, evecs, d, W.shape[-1] * np.finfo(float).eps if rtol is None else rtol)
    return (energy, rank) if return_rank else energy


def energies_at_tolerances(W: np.ndarray, d: np.ndarray, rtols: Sequence[float | None]
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`minimum_energy` with its rank for several pseudo-inverse cut-offs, from one eigendecomposition."""
    evals, evecs = np.linalg.eigh(W)
    default = W.shape[-1] * np.finfo(float).eps
    return [_energy_from_eigh(evals, evecs, d, default if r is None else r) for r in rtols]


def _energy_from_eigh(evals: np.ndarray, evecs: np.ndarray, d: np.ndarray, rtol: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    keep = evals > rtol * np.abs(evals).max(axis=-1, keepdims=True)
    proj = np.einsum("...ij,...i->...j", evecs, d)
    inv = np.where(keep, 1.0 / np.where(keep, evals, 1.0), 0.0)
    return 0.5 * np.einsum("...j,...j->...", proj**2, inv), keep.sum(axis=-1)


@dataclass
class SpectralWindows:
    """What the recursion of :func:`accumulate_windows` needs of each window, batched.

    Attributes
    ----------
    vecs
        Eigenvectors ``V_m`` ``[..., M, N, N]``.
    decay
        ``e^{lam_m dt}`` ``[..., M, N]`` (``Phi_m = V_m diag(decay_m) V_m^T``).
    gram
        ``W_m`` in the eigenbasis of its window, ``V_m^T W_m V_m = C_m * G_m`` ``[..., M, N, N]``.
    """

    vecs: np.ndarray
    decay: np.ndarray
    gram: np.ndarray

    def take(self, index: np.ndarray | Sequence[int], axis: int) -> SpectralWindows:
        """Select or reorder windows along batch axis ``axis`` (counted from 0)."""
        return SpectralWindows(np.take(self.vecs, index, axis=axis), np.take(self.decay, index, axis=axis),
                               np.take(self.gram, index, axis=axis))


def spectral_windows(systems: SymmetricSystem, nodes: Sequence[int], dt: float | np.ndarray) -> SpectralWindows:
    """Propagators and Gramians over ``dt`` of every system, kept in each system's eigenbasis."""
    dt = _as_times(dt, systems.lam.shape[:-1])
    vb = systems.vecs[..., np.asarray(nodes, dtype=int), :]
    gram = gram_inner(systems.lam, np.swapaxes(vb, -1, -2) @ vb, dt)
    return SpectralWindows(systems.vecs, np.exp(systems.lam * dt[..., None]), gram)


def accumulate_windows(win: SpectralWindows, x0: np.ndarray, order: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``W_eff`` and ``Phi_M .. Phi_1 x0`` of windows applied in order (window axis = last batch axis).

    The recursion ``W <- Phi_m W Phi_m^T + W_m`` is done in the eigenbasis of window ``m``:
    ``V_m^T W_new V_m = (e e^T) * (P^T (V_{m-1}^T W V_{m-1}) P) + C_m * G_m`` with the change of
    basis ``P = V_{m-1}^T V_m``, three matrix products per window (``W`` is carried in the basis
    of the last window and rotated back once); the drift is propagated as a vector.

    Parameters
    ----------
    win
        Windows ``[..., M, ...]``.
    x0
        Start states ``[..., N]`` (broadcast against the result's batch shape).
    order
        Optional ``[R, M]`` window orders: the result gains an axis of ``R`` orders after the
        windows' batch axes (``win.take(order, axis)`` without materialising every reordered copy).
    """
    inner, previous = None, None
    v = np.asarray(x0, dtype=float)
    for m in range(win.vecs.shape[-3] if order is None else order.shape[-1]):
        if order is None:
            vm, em, gm = win.vecs[..., m, :, :], win.decay[..., m, :], win.gram[..., m, :, :]
        else:
            vm, em, gm = win.vecs[..., order[:, m], :, :], win.decay[..., order[:, m], :], win.gram[..., order[:, m], :, :]
        if inner is None:
            inner = gm
        else:
            change = np.swapaxes(previous, -1, -2) @ vm
            inner = (np.swapaxes(change, -1, -2) @ inner @ change) * (em[..., :, None] * em[..., None, :]) + gm
        previous = vm
        v = np.einsum("...ij,...j->...i", vm, em * np.einsum("...ji,...j->...i", vm, v))
    w = previous @ inner @ np.swapaxes(previous, -1, -2)
    return (w + np.swapaxes(w, -1, -2)) / 2, v


def static_energy(system: SymmetricSystem, nodes: Sequence[int], T: float | np.ndarray, x0: np.ndarray,
                  xf: np.ndarray, return_rank: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Minimum energy from ``x0`` to ``xf`` in time ``T`` with one (static) system.

    Parameters
    ----------
    system
        ``[...]`` batch of symmetric systems.
    nodes
        Control nodes.
    T
        Horizon.
    x0, xf
        ``[..., N]`` start and target states.
    return_rank
        Also return the numerical rank of the Gramian.

    Returns
    -------
    ndarray
        ``[...]`` energies ``1/2 d^T pinv(W_T) d``.
    """
    one = SymmetricSystem(system.lam[..., None, :], system.vecs[..., None, :, :])
    T = np.asarray(T, dtype=float)
    w, drift = accumulate_windows(spectral_windows(one, nodes, T[..., None] if T.ndim else T), x0)
    return minimum_energy(w, xf - drift, return_rank)


def window_terms(system: SymmetricSystem, nodes: Sequence[int], dt: float | np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``Phi_m = e^{A_m dt}`` and ``W_m = W_dt(A_m)`` of every window (for general-purpose use)."""
    return propagator_spectral(system, dt), gramian_spectral(system, nodes, dt)


def effective_gramian(phis: np.ndarray, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W_eff`` and ``Phi_M ... Phi_1`` of a piecewise-constant system from dense terms.

    Uses the recursion ``W <- Phi_m W Phi_m^T + W_m`` (m = 1..M), which expands to
    ``sum_m (Phi_M..Phi_{m+1}) W_m (Phi_M..Phi_{m+1})^T`` = ``S diag(W_1..W_M) S^T`` of
    ``dynamicMiniEnergy.m`` without forming the ``N x NM`` matrix ``S``. Works for any
    (e.g. Van Loan) propagators and Gramians.

    Parameters
    ----------
    phis, grams
        ``[..., M, N, N]``; window ``m`` acts after windows ``1..m-1``.
    """
    w = grams[..., 0, :, :]
    total = phis[..., 0, :, :]
    for m in range(1, phis.shape[-3]):
        phi = phis[..., m, :, :]
        w = phi @ w @ np.swapaxes(phi, -1, -2) + grams[..., m, :, :]
        total = phi @ total
    return (w + np.swapaxes(w, -1, -2)) / 2, total


def piecewise_energy(phis: np.ndarray, grams: np.ndarray, x0: np.ndarray, xf: np.ndarray) -> np.ndarray:
    """Minimum energy through windows with dense propagators and Gramians ``[..., M, N, N]``."""
    w_eff, total = effective_gramian(phis, grams)
    d = xf - np.einsum("...ij,...j->...i", total, x0)
    return minimum_energy(w_eff, d)


def dynamic_energy(systems: SymmetricSystem, nodes: Sequence[int], dt: float | np.ndarray, x0: np.ndarray,
                   xf: np.ndarray, return_rank: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Minimum energy of the piecewise-constant system ``A_1..A_M``, each held for ``dt``.

    Parameters
    ----------
    systems
        ``[..., M]`` batch of symmetric systems, windows on the last batch axis in time order.
    nodes
        Control nodes.
    dt
        Time each window is held (``T_static / M`` in the paper), scalar or ``[...]``.
    x0, xf
        ``[..., N]`` states.
    return_rank
        Also return the numerical rank of ``W_eff``.
    """
    dt = np.asarray(dt, dtype=float)
    w, drift = accumulate_windows(spectral_windows(systems, nodes, dt[..., None] if dt.ndim else dt), x0)
    return minimum_energy(w, xf - drift, return_rank)


# --------------------------------------------------------------------------- controllability metrics


def average_controllability(A: np.ndarray) -> np.ndarray:
    """Average controllability of every node of ``A + I`` (Gu et al., Nat. Commun. 6:8414, 2015).

    ``AC_i = sum_j U_ij^2 / (1 - xi_j^2)`` with ``A + I = U diag(xi) U^T`` (real Schur form,
    the eigendecomposition for symmetric input), as ``ave_control.m`` of the paper's code
    ("for functional normalized matrix": ``A + I`` without rescaling). This is the diagonal
    of the infinite-horizon discrete-time Gramian ``sum_k (A+I)^{2k}``. Modes with
    ``|xi| >= 1`` (a Laplacian's zero mode gives ``xi = 1``) have no finite Gramian; they are
    left out of the sum, which the report states.

    Parameters
    ----------
    A
        ``[..., N, N]`` symmetric system matrices (spectrum in ``[-1, 0]``).
    """
    xi, u = np.linalg.eigh(_symmetrised(A) + np.eye(A.shape[-1]))
    gap = 1.0 - xi**2
    stable = gap > np.sqrt(np.finfo(float).eps)
    return np.einsum("...ij,...j->...i", u**2, np.where(stable, 1.0 / np.where(stable, gap, 1.0), 0.0))


def modal_controllability(A: np.ndarray) -> np.ndarray:
    """Modal controllability ``MC_i = sum_j (1 - xi_j^2) U_ij^2`` of ``A + I`` (``modal_control.m``)."""
    xi, u = np.linalg.eigh(_symmetrised(A) + np.eye(A.shape[-1]))
    return np.einsum("...ij,...j->...i", u**2, 1.0 - xi**2)


def regional_activation_energy(system: SymmetricSystem, T: float = 1.0) -> np.ndarray:
    """Energy to move each region from 0 to 1 alone, with every region controlled, in time ``T``.

    ``regional_activation_energy.m``: ``E_i = 1/2 e_i^T pinv(W_T) e_i`` with ``B = I``,
    ``x0 = 0``, ``xf = e_i``, ``T = 1``; the Gramian is well conditioned, so this is
    ``1/2 diag(W_T^-1)``.
    """
    w = gramian_spectral(system, np.arange(system.n), T)
    evals, evecs = np.linalg.eigh(w)
    return 0.5 * np.einsum("...ij,...j->...i", evecs**2, 1.0 / evals)


def _symmetrised(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A, dtype=float)
    if not np.allclose(A, np.swapaxes(A, -1, -2), atol=1e-10 * max(1.0, float(np.abs(A).max(initial=0.0)))):
        raise ValueError("controllability metrics here need symmetric system matrices (build them with "
                         "system_from_fc; symmetrise directed matrices first)")
    return (A + np.swapaxes(A, -1, -2)) / 2
