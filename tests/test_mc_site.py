"""Monte Carlo and ground states of a position-dependent SiteLowRank coupling (M_ij = A_i B_j^T)
against exact answers computed here independently of the kernels.

* discrete spins on 4 sites: every state enumerated through ``H.energy`` (81 states);
* O(3) spins on 2 sites: the Boltzmann integral over S^2 x S^2 by Gauss-Legendre (cos theta) x
  uniform (phi) quadrature, converged to ~1e-10 relative for these smooth integrands;
* ground states: the brute-force minimum over discrete states, and for two O(n) spins coupled
  one way (W_10 = 1, no field) the analytic minimum ``-m_0 m_1 sigma_max(A_1 B_0^T)`` (the
  largest value of x^T M y over unit vectors x, y is the largest singular value of M).

Monte Carlo tolerance: within K = 4 standard errors of the run's own error bar, fixed seeds.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import spinsim as ss
from spinsim.coupling import SiteLowRank

K = 4.0


def _discrete(N=4, n=3, r=2, Kst=3, seed=7):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((Kst, n))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    M = SiteLowRank(rng.standard_normal((N, n, r)) * 0.7, rng.standard_normal((N, n, r)) * 0.7)
    W = rng.random((N, N)) * (1 - np.eye(N))
    return ss.Hamiltonian(W, M=M, h=rng.standard_normal((N, n)) * 0.3, spin=ss.Discrete(V),
                          lengths=rng.uniform(0.6, 1.4, N))


def _enumerate(H):
    """(E, |m|) of every state of a discrete H, through H.energy."""
    V = H.spin.vectors
    E, mabs = [], []
    for combo in itertools.product(range(V.shape[0]), repeat=H.n_sites):
        S = V[list(combo)] * H.lengths[:, None]
        E.append(H.energy(S))
        mabs.append(np.linalg.norm(S.mean(0)))
    return np.asarray(E), np.asarray(mabs)


def _averages(E, mabs, weights, T, N):
    e, m = [], []
    for t in T:
        w = weights * np.exp(-(E - E.min()) / t)
        w /= w.sum()
        e.append(w @ E / N)
        m.append(w @ mabs)
    return np.asarray(e), np.asarray(m)


def _assert_within(r, e_ref, m_ref, what):
    for name, val, err, ref in (("energy", r.energy, r.energy_err, e_ref),
                                ("|m|", r.magnetization, r.magnetization_err, m_ref)):
        z = np.abs(val - ref) / err
        assert np.all(err > 0) and np.all(z < K), f"{what} {name}: MC {val} +- {err} vs exact {ref} (z = {z})"


@pytest.mark.parametrize("algorithm", ["heatbath", "metropolis", "pt"])
def test_discrete_site_lowrank_matches_enumeration(algorithm):
    H = _discrete()
    T = np.array([0.6, 1.0, 2.0])
    E, mabs = _enumerate(H)
    e, m = _averages(E, mabs, np.ones_like(E), T, H.n_sites)
    r = ss.solve(H, T=T, method="mc", algorithm=algorithm, sweeps=20000, seed=3, progress=False)
    _assert_within(r, e, m, f"discrete SiteLowRank {algorithm}")
    if algorithm == "pt":
        assert min(r.meta["swap_acceptance"]) > 0.05


def _two_o3_spins(seed=11):
    rng = np.random.default_rng(seed)
    n, r = 3, 2
    M = SiteLowRank(rng.standard_normal((2, n, r)) * 0.8, rng.standard_normal((2, n, r)) * 0.8)
    W = np.array([[0.0, 0.4], [1.0, 0.0]])
    return ss.Hamiltonian(W, M=M, h=rng.standard_normal((2, n)) * 0.5, spin=ss.Heisenberg(n),
                          lengths=np.array([1.0, 1.3]))


def _sphere_rule(n_t=40, n_p=80):
    x, wx = np.polynomial.legendre.leggauss(n_t)
    ph = 2 * np.pi * np.arange(n_p) / n_p
    st = np.sqrt(1 - x ** 2)
    pts = np.stack([np.outer(st, np.cos(ph)), np.outer(st, np.sin(ph)), np.outer(x, np.ones(n_p))], -1)
    return pts.reshape(-1, 3), np.repeat(wx, n_p) * (2 * np.pi / n_p)


def test_two_o3_spins_match_quadrature():
    H = _two_o3_spins()
    A, B = H.M.A, H.M.B
    m0, m1 = H.lengths
    X, w = _sphere_rule()
    S0, S1 = m0 * X, m1 * X
    # E(S0, S1) = -W_01 S0^T A_0 B_1^T S1 - W_10 S1^T A_1 B_0^T S0 - h_0.S0 - h_1.S1
    E = (-H.W[0, 1] * (S0 @ A[0]) @ (S1 @ B[1]).T - H.W[1, 0] * (S0 @ B[0]) @ (S1 @ A[1]).T
         - (S0 @ H.h[0])[:, None] - (S1 @ H.h[1])[None, :])
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, X.shape[0], (5, 2)):     # the reference's E is H's energy
        assert E[a, b] == pytest.approx(H.energy(np.stack([S0[a], S1[b]])), rel=1e-12, abs=1e-12)
    mabs = np.linalg.norm(S0[:, None, :] + S1[None, :, :], axis=-1) / 2
    T = np.array([0.4, 1.0])
    e, m = _averages(E.ravel(), mabs.ravel(), np.outer(w, w).ravel(), T, 2)
    for algorithm in ("heatbath", "metropolis", "overrelax"):
        r = ss.solve(H, T=T, method="mc", algorithm=algorithm, sweeps=40000, seed=5, progress=False)
        _assert_within(r, e, m, f"two O(3) spins {algorithm}")


def test_tracked_energy_and_projections_survive_exchange():
    """E tracked through dE = -(S'-S).phi (fields from the kept projections P, Q, swapped with
    the configurations by replica exchange) equals H.energy of the final state."""
    rng = np.random.default_rng(4)
    N, n, r = 5, 7, 3
    H = ss.Hamiltonian(np.tril(rng.random((N, N)), -1),
                       M=SiteLowRank(rng.standard_normal((N, n, r)), rng.standard_normal((N, n, r))),
                       h=rng.standard_normal((N, n)), spin=ss.Heisenberg(n))
    from spinsim.kernels import cpu
    from spinsim.solvers.mc import initial_state, prepare
    S, X = initial_state(H, 4, "random", 1)
    run = cpu.Runner(S, X, np.array([0.3, 0.5, 0.8, 1.2]), 1, np.arange(4), prepare(H),
                     algorithm="pt", alg_code=1, n_overrelax=1, exchange=True, n_T=4, delta=0.5,
                     resync=0, n_meas=40)
    run.run(0, 40, measure_from=0, adapt=False)
    assert run.results()["swap_acc"].sum() > 0
    for q in range(4):
        assert abs(run.E[q] - H.energy(run.S[q])) < 1e-9 * max(1.0, abs(run.E[q]))
        Q, P = H.M.projections(run.S[q])
        np.testing.assert_allclose(run.ch.P[q], P, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(run.ch.Q[q], Q, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("anneal", [False, True])
def test_ground_state_of_discrete_site_lowrank_is_the_enumerated_minimum(anneal):
    H = _discrete(N=4)
    E, _ = _enumerate(H)
    g = ss.solve(H, method="ground", restarts=32, seed=0, anneal=anneal, progress=False)
    E0 = g.ground_energy
    assert E0 >= E.min() - 1e-9 * abs(E.min())
    assert E0 == pytest.approx(E.min(), rel=1e-9)


def test_ground_state_of_two_o_n_spins_is_the_analytic_minimum():
    """W_10 = 1 only, no field: E = -S_1^T A_1 B_0^T S_0, minimum -m_0 m_1 sigma_max(A_1 B_0^T);
    n = 10, rank 2: the quench runs in the reduced span of the factors (d = 8 < 10)."""
    rng = np.random.default_rng(2)
    n, r = 10, 2
    A, B = rng.standard_normal((2, n, r)), rng.standard_normal((2, n, r))
    lengths = np.array([0.7, 1.6])
    H = ss.Hamiltonian(np.array([[0.0, 0.0], [1.0, 0.0]]), M=SiteLowRank(A, B), spin=ss.Heisenberg(n),
                       lengths=lengths)
    exact = -lengths[0] * lengths[1] * np.linalg.svd(A[1] @ B[0].T, compute_uv=False)[0]
    g = ss.solve(H, method="ground", restarts=8, seed=1, progress=False)
    assert g.ground_energy == pytest.approx(exact, rel=1e-9)
    assert g.meta["working_dim"] == 8
