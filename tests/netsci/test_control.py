"""Minimum-energy control: Gramians, static and dynamic energies, controllability metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy import stats

from reprolab.core.errors import DataError
from reprolab.netsci import control as ctl


def random_system(n: int = 12, frames: int = 200, seed: int = 0) -> ctl.SymmetricSystem:
    """A system built, as in the paper, from the FC of a correlated random time series."""
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((n, frames))
    ts[1:] += 0.6 * ts[:-1]
    return ctl.system_from_fc(ctl.functional_connectivity(ts))


def quadrature_gramian(A: np.ndarray, B: np.ndarray, T: float, n: int = 4001) -> np.ndarray:
    """Reference Gramian by Simpson's rule on a fine grid of exact matrix exponentials."""
    t = np.linspace(0.0, T, n)
    e = np.stack([scipy.linalg.expm(A * s) @ B for s in t])
    return scipy.integrate.simpson(e @ np.swapaxes(e, 1, 2), x=t, axis=0)


def test_two_node_system_matches_hand_computation():
    # FC r = 0.6: L = [[.6, -.6], [-.6, .6]], eigenvalues 0 and 1.2, so A = [[-.5, .5], [.5, -.5]].
    fc = np.array([[1.0, 0.6], [0.6, 1.0]])
    system = ctl.system_from_fc(fc)
    np.testing.assert_allclose(system.matrix(), [[-0.5, 0.5], [0.5, -0.5]], atol=1e-14)
    # e^{At} e_1 = ((1 + e^-t) / 2, (1 - e^-t) / 2); integrate its outer product over [0, T].
    T = 1.7
    a, b = 1 - np.exp(-T), (1 - np.exp(-2 * T)) / 2
    w_hand = 0.25 * np.array([[T + 2 * a + b, T - b], [T - b, T - 2 * a + b]])
    np.testing.assert_allclose(ctl.gramian_spectral(system, [0], T), w_hand, rtol=1e-12)
    # E(0 -> e_1) = 1/2 [W^-1]_11 = 1/2 W_22 / det W
    e_hand = 0.5 * w_hand[1, 1] / np.linalg.det(w_hand)
    energy = ctl.static_energy(system, [0], T, np.zeros(2), np.array([1.0, 0.0]))
    assert energy == pytest.approx(e_hand, rel=1e-10)


@pytest.mark.parametrize("T", [0.3, 2.0, 8.0])
def test_spectral_and_vanloan_gramians_match_quadrature(T):
    system = random_system()
    A, nodes = system.matrix(), [0, 2, 5, 7]
    B = ctl.control_matrix(A.shape[0], nodes)
    reference = quadrature_gramian(A, B, T)
    scale = np.linalg.norm(reference)
    assert np.linalg.norm(ctl.gramian_spectral(system, nodes, T) - reference) / scale < 1e-9
    assert np.linalg.norm(ctl.gramian_vanloan(A, B, T) - reference) / scale < 1e-9


def test_vanloan_handles_non_symmetric_matrices():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 6)) * 0.3 - np.eye(6)
    B = ctl.control_matrix(6, [1, 4])
    e_at, w = ctl.vanloan_terms(A, B, 1.5)
    np.testing.assert_allclose(e_at, scipy.linalg.expm(A * 1.5), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w, quadrature_gramian(A, B, 1.5), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("nodes", [list(range(12)), [0, 1, 3, 4, 6, 8, 9, 11]])
def test_static_energy_is_half_of_nctpy_minimum_energy_fast(nodes):
    from nctpy.energies import minimum_energy_fast

    rng = np.random.default_rng(2)
    system = random_system()
    A = system.matrix()
    B = ctl.control_matrix(12, nodes)
    x0, xf = rng.standard_normal(12), rng.standard_normal(12)
    ours = ctl.static_energy(system, nodes, 1.5, x0, xf)
    theirs = minimum_energy_fast(A, 1.5, B, x0, xf).sum()
    assert ours == pytest.approx(0.5 * theirs, rel=1e-6)


@pytest.mark.parametrize("M", [1, 2, 5])
def test_dynamic_energy_with_identical_windows_equals_static(M):
    rng = np.random.default_rng(3)
    system = random_system()
    nodes = [0, 3, 6, 9]
    stack = ctl.SymmetricSystem(np.repeat(system.lam[None], M, 0), np.repeat(system.vecs[None], M, 0))
    x0, xf = rng.standard_normal(12), rng.standard_normal(12)
    static = ctl.static_energy(system, nodes, 3.0, x0, xf)
    dynamic = ctl.dynamic_energy(stack, nodes, 3.0 / M, x0, xf)
    assert dynamic == pytest.approx(static, rel=1e-8)


def test_dynamic_energy_matches_block_formula_of_the_paper():
    """W_eff = S diag(W_1..W_M) S^T with S = [Phi_M..Phi_2, ..., Phi_M, I] (calcu_S.m), Van Loan terms."""
    rng = np.random.default_rng(4)
    systems = [random_system(seed=s) for s in range(4)]
    stack = ctl.SymmetricSystem(np.stack([s.lam for s in systems]), np.stack([s.vecs for s in systems]))
    nodes, dt = [1, 2, 8], 0.7
    B = ctl.control_matrix(12, nodes)
    terms = [ctl.vanloan_terms(s.matrix(), B, dt) for s in systems]
    phis, grams = [t[0] for t in terms], [t[1] for t in terms]
    blocks, panel = [np.eye(12)], np.eye(12)
    for phi in phis[:0:-1]:  # Phi_M, Phi_M Phi_{M-1}, ..., Phi_M .. Phi_2
        panel = panel @ phi
        blocks.insert(0, panel)
    S = np.hstack(blocks)
    w_eff = S @ scipy.linalg.block_diag(*grams) @ S.T
    total = phis[3] @ phis[2] @ phis[1] @ phis[0]
    x0, xf = rng.standard_normal(12), rng.standard_normal(12)
    d = xf - total @ x0
    reference = 0.5 * d @ np.linalg.pinv(w_eff) @ d
    assert ctl.dynamic_energy(stack, nodes, dt, x0, xf) == pytest.approx(reference, rel=1e-7)
    assert ctl.piecewise_energy(np.stack(phis), np.stack(grams), x0, xf) == pytest.approx(reference, rel=1e-7)


def test_window_order_changes_dynamic_energy():
    rng = np.random.default_rng(5)
    systems = [random_system(seed=s) for s in range(3)]
    stack = ctl.SymmetricSystem(np.stack([s.lam for s in systems]), np.stack([s.vecs for s in systems]))
    x0, xf = rng.standard_normal(12), rng.standard_normal(12)
    forward = ctl.dynamic_energy(stack, [0, 5], 1.0, x0, xf)
    backward = ctl.dynamic_energy(stack.take([2, 1, 0], axis=0), [0, 5], 1.0, x0, xf)
    assert abs(forward - backward) > 1e-6 * forward
    win = ctl.spectral_windows(stack, [0, 5], 1.0)
    w_eff, drift = ctl.accumulate_windows(win.take([2, 1, 0], axis=0), x0)
    assert ctl.minimum_energy(w_eff, xf - drift) == pytest.approx(backward, rel=1e-12)


def test_batched_energies_equal_one_at_a_time():
    rng = np.random.default_rng(6)
    systems = [random_system(seed=s) for s in range(3)]
    batch = ctl.SymmetricSystem(np.stack([s.lam for s in systems]), np.stack([s.vecs for s in systems]))
    x0, xf = rng.standard_normal((3, 12)), rng.standard_normal((3, 12))
    horizons = np.array([0.5, 5.0, 50.0])
    batched = ctl.static_energy(batch, [0, 4], horizons, x0, xf)
    single = [ctl.static_energy(s, [0, 4], t, a, b) for s, t, a, b in zip(systems, horizons, x0, xf)]
    np.testing.assert_allclose(batched, single, rtol=1e-12)


def test_fc_threshold_zeroes_exactly_the_non_significant_correlations():
    rng = np.random.default_rng(7)
    ts = rng.standard_normal((8, 31))
    ts[1] += ts[0]
    fc = ctl.functional_connectivity(ts, 0.05)
    for i in range(8):
        for j in range(i + 1, 8):
            r, p = stats.pearsonr(ts[i], ts[j])
            assert fc[i, j] == (0.0 if p > 0.05 else pytest.approx(r, abs=1e-12))
    assert np.all(np.diag(fc) == 1.0)


def test_system_spectrum_lies_in_minus_one_to_zero():
    system = random_system(n=20, seed=8)
    assert system.lam.min() == pytest.approx(-1.0)
    assert system.lam.max() <= 1e-12
    L = ctl.signed_laplacian(ctl.functional_connectivity(np.random.default_rng(8).standard_normal((5, 50)), None))
    np.testing.assert_allclose(np.diag(L), np.abs(L - np.diag(np.diag(L))).sum(axis=1))


def test_minimum_energy_uses_pinv_tolerance():
    rng = np.random.default_rng(9)
    u = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    w = u @ np.diag(np.logspace(0, -20, 10)) @ u.T
    d = rng.standard_normal(10)
    assert ctl.minimum_energy(w, d) == pytest.approx(0.5 * d @ np.linalg.pinv(w, hermitian=True) @ d, rel=1e-6)
    _, rank = ctl.minimum_energy(w, d, return_rank=True)
    assert rank == np.sum(np.logspace(0, -20, 10) > 10 * np.finfo(float).eps)


def test_controllability_metrics_match_nctpy_on_a_plus_identity():
    from nctpy.metrics import modal_control

    system = random_system(seed=10)
    A = system.matrix()
    shifted = A + np.eye(12)
    np.testing.assert_allclose(ctl.modal_controllability(A), modal_control(shifted), atol=1e-12)
    # AC = diag of the discrete-time infinite Gramian sum_k (A+I)^{2k} (stable: spectral radius < 1)
    assert np.abs(np.linalg.eigvalsh(shifted)).max() < 1
    gram = scipy.linalg.solve_discrete_lyapunov(shifted, np.eye(12))
    np.testing.assert_allclose(ctl.average_controllability(A), np.diag(gram), rtol=1e-8)


def test_average_controllability_skips_the_marginal_mode():
    fc = np.array([[1.0, 0.6], [0.6, 1.0]])  # A has eigenvalue 0, so A + I has eigenvalue 1
    ac = ctl.average_controllability(ctl.system_matrix(fc))
    # only the mode xi = 0 (eigenvector (1, -1)/sqrt 2) remains: 1/2 / (1 - 0) per node
    np.testing.assert_allclose(ac, [0.5, 0.5])


def test_regional_activation_energy_is_static_energy_to_unit_states():
    system = random_system(seed=11)
    ev = ctl.regional_activation_energy(system, 1.0)
    direct = [ctl.static_energy(system, list(range(12)), 1.0, np.zeros(12), np.eye(12)[i]) for i in range(12)]
    np.testing.assert_allclose(ev, direct, rtol=1e-9)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(DataError, match="zero or non-finite variance"):
        ctl.zscore_regions(np.vstack([np.arange(10.0), np.ones(10)]))
    with pytest.raises(ValueError, match="distinct indices"):
        ctl.control_matrix(4, [0, 4])
    with pytest.raises(ValueError, match="horizon must be positive"):
        ctl.gramian_spectral(random_system(), [0], 0.0)
    with pytest.raises(DataError, match="at least 3 frames"):
        ctl.critical_r(2)
    with pytest.raises(ValueError, match="symmetric"):
        ctl.average_controllability(np.array([[0.0, 1.0], [0.0, 0.0]]))


def test_accumulating_in_given_orders_equals_reordering_the_windows():
    rng = np.random.default_rng(4)
    fc = np.stack([np.corrcoef(rng.standard_normal((6, 30))) for _ in range(2 * 5)]).reshape(2, 5, 6, 6)
    win = ctl.spectral_windows(ctl.system_from_fc(fc), [0, 3], 2.0)
    x0 = rng.standard_normal((2, 6))
    orders = np.stack([rng.permutation(5) for _ in range(4)])
    w, v = ctl.accumulate_windows(win, x0[:, None], order=orders)
    w_ref, v_ref = ctl.accumulate_windows(win.take(orders, axis=1), x0[:, None])
    assert w.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(v, v_ref, rtol=1e-12, atol=1e-14)
