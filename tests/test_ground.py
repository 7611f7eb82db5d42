"""``method="ground"``: ground states, gaps and excitations against exactly solvable cases.

References are derived by hand (stated in each test) or by brute force over every state with
plain numpy. Energies to 1e-8 (relative to max(1, |E|)), mode counts exactly, Hessian
eigenvalues to 1e-8 relative to the spectral scale unless stated (finite differences: 1e-5).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import spinsim as ss
from spinsim.excitations import excitations
from spinsim.probe import candidate_gaps
from spinsim.solvers.ground import find_minima, solve_ground

ETOL = 1e-8


def close(a: float, b: float, tol: float = ETOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def brute_force(H: ss.Hamiltonian) -> tuple[float, list[np.ndarray]]:
    """(E_0, ground configurations) of a discrete/Ising H by enumerating every state (numpy)."""
    V = H.spin.vectors
    free = np.flatnonzero(~H.frozen)
    best, states = np.inf, []
    for combo in itertools.product(range(V.shape[0]), repeat=free.size):
        S = np.array(H.state, dtype=float) if H.state is not None else np.zeros((H.n_sites, H.n_comp))
        S[free] = V[list(combo)] * H.lengths[free, None]
        E = H.energy(S)
        if E < best - 1e-9 * max(1, abs(E)):
            best, states = E, [S]
        elif abs(E - best) <= 1e-9 * max(1, abs(E)):
            states.append(S)
    return best, states


def triangle(n: int, J: float) -> ss.Hamiltonian:
    """H = -J (S_0.S_1 + S_0.S_2 + S_1.S_2): three bonds, each stored once."""
    W = np.triu(np.ones((3, 3)), 1)
    return ss.Hamiltonian(W, M=ss.Identity(n, J), spin=ss.Heisenberg(n))


def head_like(N: int, n: int, r: int, seed: int, field: float = 0.0) -> ss.Hamiltonian:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, r)) / np.sqrt(n)
    B = rng.standard_normal((n, r)) / np.sqrt(n)
    h = field * rng.standard_normal((N, n)) if field else None
    return ss.Hamiltonian(ss.causal(N), M=ss.LowRank(A, B), h=h, spin=ss.Heisenberg(n),
                          lengths=rng.uniform(1, 4, N))


# ============================================================================ exactly solvable
@pytest.mark.parametrize("n", [2, 3, 5])
def test_ferromagnet_complete_graph(n):
    """Isotropic ferro on the complete graph, W_ij = J/N (i < j), lengths m_i: ground state all
    aligned, E_0 = -(J/N) sum_{i<j} m_i m_j. Hessian: K_kk = m_k c_k, c_k = (J/N) sum_{l!=k} m_l,
    K_kl = -(J/N) m_k m_l; the uniform rotation t_k = t is a zero mode for each of the n - 1
    tangent directions (global O(n) rotations moving the common direction: dim O(n) - dim O(n-1)
    = n - 1), and nothing else is soft. With equal lengths the other (N-1)(n-1) modes sit at J."""
    N, J = 6, 1.5
    m = np.array([1.0, 2.0, 0.5, 1.5, 1.0, 3.0])
    W = np.triu(np.full((N, N), J / N), 1)
    H = ss.Hamiltonian(W, M=ss.Identity(n, 1.0), spin=ss.Heisenberg(n), lengths=m)
    res = ss.solve(H, method="ground", restarts=8, seed=1, n_modes=N * (n - 1))
    E0 = -(J / N) * sum(m[i] * m[j] for i in range(N) for j in range(i + 1, N))
    assert close(res.ground_energy, E0)
    sig = res.ground_states[0] / m[:, None]
    assert np.allclose(sig @ sig.T, 1.0, atol=1e-9)                        # all aligned
    assert res.ground_degeneracy == 1 and res.meta["n_minima"] == 1         # one minimum up to O(n)
    assert res.meta["best_hit_fraction"] == 1.0
    assert res.meta["n_zero_modes"] == n - 1 and res.meta["n_negative_modes"] == 0
    assert res.meta["spin_wave_gap"] > 1e-3
    # equal lengths: the spin-wave gap is exactly J, with multiplicity (N-1)(n-1)
    H1 = ss.Hamiltonian(W, M=ss.Identity(n, 1.0), spin=ss.Heisenberg(n))
    ex = excitations(H1, ss.solve(H1, method="ground", restarts=2).ground_states[0], n_modes=N * (n - 1))
    assert ex.n_zero_modes == n - 1 and ex.complete
    assert np.allclose(ex.eigenvalues[n - 1:], J, rtol=1e-8) and close(ex.spin_wave_gap, J)


@pytest.mark.parametrize("n, zero_modes", [(2, 1), (3, 3), (4, 5)])
def test_antiferromagnetic_triangle(n, zero_modes):
    """H = -J sum_3bonds S_i.S_j, J < 0: the 120-degree state (S_i.S_j = -1/2) has
    E_0 = -J * 3 * (-1/2) = 3J/2 = -(3/2)|J|. Zero modes: the orbit of a coplanar non-collinear
    state under O(n) has dimension dim O(n) - dim O(n-2) = 2n - 3 (XY: 1, Heisenberg: 3).
    Nonzero modes: in plane |J|(3/2 1 - 1/2 11^T) -> 3|J|/2 twice; each out-of-plane direction
    |J| 11^T -> 3|J| once (its other two are zero modes)."""
    J = -1.3
    H = triangle(n, J)
    res = ss.solve(H, method="ground", restarts=16, seed=0, n_modes=3 * (n - 1))
    assert close(res.ground_energy, 1.5 * J)
    sig = res.ground_states[0]
    G = sig @ sig.T
    assert np.allclose(G[np.triu_indices(3, 1)], -0.5, atol=1e-9)
    assert res.meta["n_minima"] == 1                       # Gram clustering folds the manifold
    assert res.meta["n_zero_modes"] == zero_modes == 2 * n - 3
    lam = np.array(res.meta["modes_eigenvalues"])
    expect = np.sort(np.r_[np.zeros(zero_modes), [1.5 * abs(J)] * 2, [3 * abs(J)] * (n - 2)])
    assert np.allclose(lam, expect, atol=1e-8 * 3 * abs(J))
    assert close(res.meta["spin_wave_gap"], 1.5 * abs(J))


def test_single_spin_in_field():
    """One spin of length m in a field h: E_0 = -m|h|, sigma = h/|h|, Hessian m|h| 1_{n-1}.
    Also through a low-rank coupling (n = 7, A and B rank 1: u = dim span(A, B) = 2), where
    n - 1 - u = 4 of the 6 modes are the analytic flat modes and u = 2 are diagonalised."""
    rng = np.random.default_rng(4)
    n, m = 7, 2.5
    h = rng.standard_normal(n)
    for M in (ss.Identity(n, 1.0), ss.LowRank(rng.standard_normal((n, 1)), rng.standard_normal((n, 1)))):
        H = ss.Hamiltonian(np.zeros((1, 1)), M=M, h=h, spin=ss.Heisenberg(n), lengths=[m])
        res = ss.solve(H, method="ground", restarts=3, n_modes=n - 1)
        b = np.linalg.norm(h)
        assert close(res.ground_energy, -m * b)
        assert np.allclose(res.ground_states[0][0], m * h / b, atol=1e-12)
        assert np.allclose(res.meta["modes_eigenvalues"], m * b, rtol=1e-10)
        assert res.meta["n_zero_modes"] == 0 and close(res.meta["spin_wave_gap"], m * b)
    ex = excitations(H, res.ground_states[0], n_modes=n - 1)
    assert ex.flat_multiplicity == n - 1 - 2 and ex.n_reduced == 2


def test_rank_one_coupling():
    """M = lam u u^T (rank 1, symmetric, lam > 0), W_ij >= 0: every pair energy
    -W_ij m_i m_j lam (u.sigma_i)(u.sigma_j) is minimised by sigma_i = s u/|u| with one common
    sign s: E_0 = -lam |u|^2 sum_{i!=j} W_ij m_i m_j, two states (s = +-1) that the Gram
    clustering counts once. The coupling has no tangent part (t.u = 0), so the Hessian is
    diagonal: m_k c_k, c_k = lam |u|^2 sum_l (W_kl + W_lk) m_l, each n - 1 times; no zero mode."""
    rng = np.random.default_rng(7)
    N, n, lam = 5, 6, 0.8
    u = rng.standard_normal(n)
    W = np.triu(rng.uniform(0.2, 1.0, (N, N)), 1) + np.tril(rng.uniform(0.0, 0.5, (N, N)), -1)
    m = rng.uniform(1, 3, N)
    H = ss.Hamiltonian(W, M=ss.LowRank(lam * u[:, None], u[:, None]), spin=ss.Heisenberg(n), lengths=m)
    res = ss.solve(H, method="ground", restarts=16, n_modes=N * (n - 1))
    E0 = -lam * (u @ u) * float(m @ W @ m)
    assert close(res.ground_energy, E0)
    assert res.meta["working_dim"] == 2                  # span(u) padded to 2 dims
    sig = res.ground_states[0] / m[:, None]
    assert np.allclose(np.abs(sig @ u) / np.linalg.norm(u), 1.0, atol=1e-10)
    assert res.ground_degeneracy == 1 and res.gap is None
    c = lam * (u @ u) * ((W + W.T) @ m)
    expect = np.sort(np.repeat(m * c, n - 1))
    assert np.allclose(res.meta["modes_eigenvalues"], expect, rtol=1e-9)
    assert res.meta["n_zero_modes"] == 0


# ============================================================================ discrete == exact
def test_ising_ground_matches_enumeration():
    """SK Ising (N = 10, field 0.1) and an unfielded one (Z2-degenerate pair of ground states)."""
    for h in (0.1, None):
        H = ss.sherrington_kirkpatrick(10, seed=5, h=h)
        E0, states = brute_force(H)
        res = ss.solve(H, method="ground", restarts=64, seed=0)
        assert close(res.ground_energy, E0)
        assert res.ground_degeneracy == len(states)
        for s in res.ground_states:
            assert any(np.array_equal(s, t) for t in states)
        assert close(H.energy(res.ground_states[0]), res.ground_energy, 1e-12)


def test_discrete_low_rank_matches_enumeration():
    """Token-like discrete spins (K = 4 unit vectors in R^6), causal W, rank-2 M, lengths."""
    rng = np.random.default_rng(0)
    V = rng.standard_normal((4, 6))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    H = ss.Hamiltonian(ss.causal(6), M=ss.LowRank(rng.standard_normal((6, 2)), rng.standard_normal((6, 2))),
                       h=0.3 * rng.standard_normal((6, 6)), spin=ss.Discrete(V), lengths=rng.uniform(1, 3, 6))
    E0, states = brute_force(H)
    res = ss.solve(H, method="ground", restarts=64, seed=0)
    assert close(res.ground_energy, E0)
    assert np.array_equal(res.ground_states[0], states[0])


@pytest.mark.slow
def test_ground_agrees_with_exact_solver():
    """SK, 9 Ising spins in a small field (no flip symmetry): the quench's best state is the exact
    ground state of method="exact" and of a numpy brute force over the 2^9 states (energies to
    ETOL, the configuration exactly, one ground state)."""
    H = ss.sherrington_kirkpatrick(9, seed=2, h=0.05)
    E0, states = brute_force(H)
    ref = ss.solve(H, T=1.0, method="exact")
    res = ss.solve(H, method="ground", restarts=64)
    assert close(ref.ground_energy, E0) and close(res.ground_energy, E0)
    assert len(states) == 1 and ref.ground_degeneracy == 1 and res.ground_degeneracy == 1
    np.testing.assert_allclose(ref.ground_states[0], states[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.ground_states[0], states[0], rtol=0, atol=1e-12)


# ============================================================================ candidate gaps
def test_candidate_gaps_of_probe_site():
    """One free Discrete site in the field of a frozen bath: E_a = E_const - m v_a . phi, so
    E_b - E_a = m phi . (v_a - v_b); checked against H.energy of every candidate and against
    the ground solver (whose only free site must pick the best candidate)."""
    rng = np.random.default_rng(3)
    N, n = 5, 6
    V = rng.standard_normal((5, n))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    state = V[rng.integers(0, 5, N)] * 1.7
    H = ss.Hamiltonian(ss.causal(N), M=ss.LowRank(rng.standard_normal((n, 3)), rng.standard_normal((n, 3))),
                       spin=ss.Discrete(V, labels=tuple("abcde")), lengths=np.full(N, 1.7),
                       frozen=[True] * (N - 1) + [False], state=state)
    cg = candidate_gaps(H)
    for a in range(5):
        S = state.copy()
        S[-1] = 1.7 * V[a]
        assert close(cg.energies[a], H.energy(S), 1e-12)
    assert cg.best == int(np.argmin(cg.energies)) and cg.gap >= 0
    assert close(cg.gap, np.sort(cg.energies)[1] - np.sort(cg.energies)[0], 1e-12)
    assert close(cg.pair_gap("a", "b"), 1.7 * cg.field @ (V[0] - V[1]), 1e-12)
    res = ss.solve(H, method="ground", restarts=4)
    assert close(res.ground_energy, cg.energies[cg.best], 1e-12)
    # the quench always moves the single free site to its best candidate: one minimum, no
    # quench gap (the candidate gap is a different quantity: excited candidates are not minima)
    assert res.gap is None and res.meta["n_minima"] == 1
    # explicit candidate vectors for a Heisenberg probe
    Hh = ss.Hamiltonian(ss.causal(N), M=H.M, spin=ss.Heisenberg(n), frozen=H.frozen,
                        state=np.vstack([state[:-1], V[0] * 1.0]))
    cgh = candidate_gaps(Hh, vectors=V[:3], labels=["x", "y", "z"])
    assert cgh.energies.shape == (3,) and cgh.labels == ("x", "y", "z")
    with pytest.raises(ValueError, match="exactly one free"):
        candidate_gaps(ss.sherrington_kirkpatrick(4))
    with pytest.raises(ValueError, match="needs vectors"):
        candidate_gaps(Hh)
    with pytest.raises(ValueError, match="unknown candidate 'q'"):
        cg.pair_gap("q", "a")


# ============================================================================ restarts, seeds
def test_restarts_monotone_and_reproducible():
    """Restart q depends only on (seed, q): the best energy is non-increasing in the number of
    restarts, and the same seed reproduces every restart energy bit for bit."""
    H = head_like(8, 12, 3, seed=13, field=0.4)     # two minima; restarts 0-2 miss the lower one
    big = find_minima(H, restarts=24, seed=5)
    best = [find_minima(H, restarts=R, seed=5).energies[0] for R in (1, 2, 4, 8, 16, 24)]
    assert all(b2 <= b1 + 1e-12 * abs(b1) for b1, b2 in zip(best, best[1:]))
    assert best[-1] < best[0] - 1.0                  # the monotonicity is not vacuous
    small = find_minima(H, restarts=8, seed=5)
    assert np.array_equal(small.restart_energies, big.restart_energies[:8])
    again = find_minima(H, restarts=24, seed=5)
    assert np.array_equal(again.restart_energies, big.restart_energies)
    assert np.array_equal(again.states, big.states)
    other = find_minima(H, restarts=24, seed=6)
    assert not np.array_equal(other.restart_energies, big.restart_energies)
    assert big.counts.sum() == 24 and big.converged.all()
    assert 0 < big.best_hit_fraction <= 1


def test_several_minima_gap_and_meta():
    """A head-like system with two minima: gap between the two lowest levels, basin counts,
    Result fields at T = 0."""
    H = head_like(8, 12, 3, seed=13, field=0.4)
    res = ss.solve(H, method="ground", restarts=32, seed=0)
    E = np.array(res.meta["minima_energy"])
    assert E.size == 2 and np.all(np.diff(E) > 0) and sum(res.meta["minima_count"]) == 32
    assert close(res.gap, E[1] - E[0], 1e-12) and res.excited_degeneracy == 1
    assert res.meta["best_hit_fraction"] == res.meta["minima_count"][0] / 32
    assert res.T.tolist() == [0.0] and res.meta["zero_temperature"]
    assert close(res.energy[0], res.ground_energy / H.n_free, 1e-14)
    assert np.isnan(res.specific_heat[0]) and np.isnan(res.binder[0]) and res.energy_err[0] == 0
    assert close(res.magnetization[0], np.linalg.norm(res.ground_states[0].mean(axis=0)), 1e-12)
    for S in find_minima(H, restarts=32, seed=0).states:      # both are genuine local minima
        ex = excitations(H, S, n_modes=4)
        assert ex.n_negative_modes == 0 and ex.max_torque < 1e-9


def test_hdf5_round_trip(tmp_path):
    res = ss.solve(triangle(3, -1.0), method="ground", restarts=4, n_modes=4)
    back = ss.Result.from_hdf5(res.to_hdf5(tmp_path / "g.h5"))
    assert back.ground_energy == res.ground_energy and back.method == "ground"
    assert np.allclose(back.meta["minima_energy"], res.meta["minima_energy"])
    assert back.meta["n_zero_modes"] == 3


# ============================================================================ reduction, modes
def test_low_rank_reduction_is_exact():
    """The span(A, B, h) quench and the full R^n quench find the same ground energy; the lifted
    state is a stationary point of the full H (zero torque) and a minimum (no negative mode)."""
    H = head_like(6, 40, 2, seed=3, field=0.3)
    red = ss.solve(H, method="ground", restarts=16, seed=0)
    full = ss.solve(H, method="ground", restarts=16, seed=0, reduce=False)
    assert red.meta["working_dim"] < H.n_comp == full.meta["working_dim"]
    assert close(red.ground_energy, full.ground_energy, 1e-10)
    S = red.ground_states[0]
    phi = H.local_fields(S)
    sig = S / H.lengths[:, None]
    torque = phi - np.sum(phi * sig, axis=1, keepdims=True) * sig
    assert np.max(np.abs(torque)) < 1e-9 * np.max(np.abs(phi))
    assert close(H.energy(S), red.ground_energy, 1e-12)
    ex = excitations(H, S, n_modes=8)
    assert ex.n_negative_modes == 0 and ex.max_torque < 1e-9


def test_frozen_bath_low_rank():
    """Frozen sites (a pinned bath) with a reduced low-rank quench: the working-basis energies
    equal H.energy of the lifted states, frozen sites keep H.state exactly, and the full-space
    quench agrees."""
    rng = np.random.default_rng(2)
    H0 = head_like(7, 20, 2, seed=1, field=0.3)
    st = rng.standard_normal((7, 20))
    st *= (H0.lengths / np.linalg.norm(st, axis=1))[:, None]
    frozen = np.array([1, 0, 1, 0, 0, 0, 1], bool)
    H = ss.Hamiltonian(H0.W, M=H0.M, h=H0.h, spin=H0.spin, lengths=H0.lengths, frozen=frozen, state=st)
    red = find_minima(H, restarts=8)
    assert red.working_dim < 20
    assert close(red.restart_energies[red.best_restart], red.energies[0], 1e-12)
    assert np.array_equal(red.states[0][frozen], st[frozen])
    full = find_minima(H, restarts=8, reduce=False)
    assert close(full.energies[0], red.energies[0], 1e-10)
    ex = excitations(H, red.states[0], n_modes=4)
    assert ex.n_tangent == 4 * 19 and ex.n_negative_modes == 0


def test_hessian_matches_finite_differences():
    """Derivation check: second differences of H.energy along the geodesics
    S_k(t) = m_k (sigma_k cos|t| + t_hat sin|t|) at the ground state of a small system with a
    dense non-symmetric M, a field and lengths, against the full spectrum (rtol 1e-5)."""
    rng = np.random.default_rng(9)
    N, n = 3, 3
    H = ss.Hamiltonian(np.triu(rng.uniform(0.5, 1.0, (N, N)), 1), M=rng.standard_normal((n, n)),
                       h=0.5 * rng.standard_normal((N, n)), spin=ss.Heisenberg(n),
                       lengths=rng.uniform(1, 2, N))
    S0 = ss.solve(H, method="ground", restarts=8).ground_states[0]
    sig = S0 / H.lengths[:, None]
    basis = []                                   # tangent basis: (site, vector)
    for k in range(N):
        q, _ = np.linalg.qr(np.column_stack([sig[k], rng.standard_normal((n, n - 1))]))
        basis += [(k, q[:, j]) for j in range(1, n)]

    def energy(t: np.ndarray) -> float:
        S = S0.copy()
        for k in range(N):
            v = sum(t[i] * e for i, (kk, e) in enumerate(basis) if kk == k)
            a = np.linalg.norm(v)
            S[k] = H.lengths[k] * (sig[k] * np.cos(a) + (v / a * np.sin(a) if a > 0 else 0))
        return H.energy(S)

    D, eps = len(basis), 1e-4
    K = np.zeros((D, D))
    E0 = energy(np.zeros(D))
    for i in range(D):
        for j in range(D):
            ei, ej = np.eye(D)[i] * eps, np.eye(D)[j] * eps
            K[i, j] = (energy(ei + ej) - energy(ei - ej) - energy(ej - ei) + energy(-ei - ej)) / (4 * eps ** 2)
    ref = np.linalg.eigvalsh(0.5 * (K + K.T))
    ex = excitations(H, S0, n_modes=D)
    assert np.allclose(ex.eigenvalues, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert close(E0, H.energy(S0), 1e-14)


def test_excitations_dense_equals_iterative():
    """The matrix-free ARPACK path gives the dense path's lowest modes (reduced dim 6 * 8)."""
    H = head_like(6, 30, 4, seed=2, field=0.2)
    S = ss.solve(H, method="ground", restarts=4).ground_states[0]
    d = excitations(H, S, n_modes=6, method="dense")
    i = excitations(H, S, n_modes=6, method="eigsh")
    assert d.method == "dense" and i.method == "eigsh" and d.n_reduced == 6 * 8
    assert np.allclose(d.eigenvalues, i.eigenvalues, rtol=1e-8, atol=1e-8 * d.scale)
    assert d.n_zero_modes == i.n_zero_modes and close(d.spin_wave_gap, i.spin_wave_gap, 1e-8)
    assert d.flat_multiplicity == 30 - 1 - 8


def test_anneal_is_reproducible_and_finds_ground_state():
    H = ss.sherrington_kirkpatrick(10, seed=8, h=0.05)
    E0, _ = brute_force(H)
    a = ss.solve(H, method="ground", restarts=4, seed=3, anneal={"sweeps": 100})
    b = ss.solve(H, method="ground", restarts=4, seed=3, anneal={"sweeps": 100})
    assert a.meta["minima_energy"] == b.meta["minima_energy"]
    assert close(a.ground_energy, E0)
    Hc = triangle(3, -1.0)
    c = ss.solve(Hc, method="ground", restarts=2, seed=1, anneal=True)
    assert close(c.ground_energy, -1.5)


def test_plain_quench_and_fixed_omega_reach_the_same_fixed_point():
    H = head_like(8, 16, 3, seed=4)
    Es = [ss.solve(H, method="ground", restarts=4, omega=om).ground_energy for om in (1.0, 1.5, "auto")]
    assert all(close(E, Es[0], 1e-10) for E in Es)


# ============================================================================ bad input
@pytest.mark.parametrize("kw, match", [
    ({"restarts": 0}, "restarts must be an integer >= 1, got 0"),
    ({"restarts": 2.5}, "restarts must be an integer"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"tol": 0.0}, "tol must be a finite number > 0, got 0.0"),
    ({"max_iter": 0}, "max_iter must be an integer >= 1"),
    ({"omega": 2.0}, "omega must be 'auto' or a number in \\[1, 2\\), got 2.0"),
    ({"anneal": {"T_max": 1}}, "unknown anneal option 'T_max'"),
    ({"anneal": {"T_hi": 0.1, "T_lo": 1.0}}, "anneal needs T_lo <= T_hi"),
    ({"anneal": "yes"}, "anneal must be True, False or a dict"),
    ({"n_modes": -1}, "n_modes must be an integer >= 0"),
    ({"restart": 4}, "unknown option 'restart' for method='ground'"),
])
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        ss.solve(triangle(2, -1.0), method="ground", **kw)


def test_bad_input_excitations():
    with pytest.raises(ValueError, match="excitations need heisenberg spins; 'ising'"):
        excitations(ss.sherrington_kirkpatrick(4), np.ones((4, 1)))
    with pytest.raises(ValueError, match="n_modes=3: excitation modes need heisenberg spins"):
        solve_ground(ss.sherrington_kirkpatrick(4), n_modes=3)
    H = triangle(3, -1.0)
    with pytest.raises(ValueError, match="S must have shape \\(3, 3\\)"):
        excitations(H, np.ones((2, 3)))
    with pytest.raises(ValueError, match="unknown method 'lanczos'"):
        excitations(H, np.eye(3), method="lanczos")
    with pytest.raises(ValueError, match="unit vectors"):
        excitations(H, 2 * np.eye(3))


@pytest.mark.slow
def test_head_sized_system():
    """N = 32, n = 768, rank 64 (the benchmark's system): converged minima, a stationary lifted
    state with no negative mode, and the iterative spectrum."""
    H = head_like(32, 768, 64, seed=0)
    res = ss.solve(H, method="ground", restarts=16, n_modes=8)
    assert res.meta["n_converged"] == 16 and res.meta["working_dim"] == 128
    assert res.meta["n_negative_modes"] == 0 and res.meta["modes_method"] == "eigsh"
    assert res.meta["modes_max_torque"] < 1e-9
