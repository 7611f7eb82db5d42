"""Exact enumeration (``method="exact"``) against independent brute-force sums.

References are written here from scratch (plain numpy over every state, bonds listed by hand),
never with the solver's kernels. Tolerances: 1e-10 absolute on log Z and per-site observables
unless stated.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import spinsim as ss
from spinsim.solvers.analytic import kaufman_thermo

TOL = 1e-10


# ----------------------------------------------------------------------------- references
def torus_ising(L: int, M: int, T: np.ndarray, J: float = 1.0) -> dict[str, np.ndarray]:
    """Brute force of the periodic L x M Ising model: every one of the 2^(LM) states."""
    N = L * M
    s = 1 - 2 * ((np.arange(2 ** N)[:, None] >> np.arange(N)) & 1)
    E = np.zeros(2 ** N)
    for r in range(L):
        for c in range(M):
            i = r * M + c
            E -= J * s[:, i] * s[:, ((r + 1) % L) * M + c]
            E -= J * s[:, i] * s[:, r * M + (c + 1) % M]
    return _thermo(E, np.abs(s.mean(axis=1)), None, T, N, 1)


def _thermo(E: np.ndarray, mabs: np.ndarray, mu: np.ndarray | None, T: np.ndarray, N: int, n: int
            ) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {k: [] for k in ("log_Z", "e", "C", "m", "chi", "U", "mu", "chi_u")}
    E0 = E.min()
    for t in T:
        w = np.exp(-(E - E0) / t)
        Z = w.sum()
        p = w / Z
        e = p @ E
        m1, m2, m4 = p @ mabs, p @ mabs ** 2, p @ mabs ** 4
        out["log_Z"].append(np.log(Z) - E0 / t)
        out["e"].append(e / N)
        out["C"].append(p @ (E - e) ** 2 / (t ** 2 * N))
        out["m"].append(m1)
        out["chi"].append(N * (m2 - m1 ** 2) / t)
        out["U"].append(1 - n * m4 / ((n + 2) * m2 ** 2))
        if mu is not None:
            out["mu"].append(p @ mu)
            out["chi_u"].append(N * (p @ mu ** 2 - (p @ mu) ** 2) / t)
    return {k: np.asarray(v) for k, v in out.items()}


def brute(H: ss.Hamiltonian, T: np.ndarray, u: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Brute force of any Ising/discrete H with H.energy on every configuration."""
    V = H.spin.vectors
    free = np.flatnonzero(~H.frozen)
    base = H.state.copy() if H.state is not None else np.zeros((H.n_sites, H.n_comp))
    E, mabs, mu, mvec, confs = [], [], [], [], []
    for combo in itertools.product(range(V.shape[0]), repeat=free.size):
        S = base.copy()
        S[free] = V[list(combo)] * H.lengths[free, None]
        E.append(H.energy(S))
        m = S[free].sum(0) / free.size
        mvec.append(m)
        mabs.append(np.linalg.norm(m))
        mu.append(0.0 if u is None else float(np.sum(S[free] * u[free]) / free.size))
        confs.append(S)
    E, mabs, mu, mvec = map(np.asarray, (E, mabs, mu, mvec))
    out = _thermo(E, mabs, mu if u is not None else None, T, free.size, H.n_comp)
    out["E"] = E
    out["confs"] = np.asarray(confs)
    out["mvec"] = np.asarray([np.exp(-(E - E.min()) / t) @ mvec / np.exp(-(E - E.min()) / t).sum() for t in T])
    return out


def check(res: ss.Result, ref: dict[str, np.ndarray], tol: float = TOL, proj: bool = False) -> None:
    np.testing.assert_allclose(res.log_Z, ref["log_Z"], rtol=0, atol=tol * max(1, np.abs(ref["log_Z"]).max()))
    np.testing.assert_allclose(res.energy, ref["e"], rtol=0, atol=tol)
    np.testing.assert_allclose(res.specific_heat, ref["C"], rtol=0, atol=tol)
    np.testing.assert_allclose(res.magnetization, ref["m"], rtol=0, atol=tol)
    np.testing.assert_allclose(res.susceptibility, ref["chi"], rtol=0, atol=tol)
    np.testing.assert_allclose(res.binder, ref["U"], rtol=0, atol=tol)
    if proj:
        np.testing.assert_allclose(res.projection, ref["mu"], rtol=0, atol=tol)
        np.testing.assert_allclose(res.projection_susceptibility, ref["chi_u"], rtol=0, atol=tol)
    for k in ("energy_err", "specific_heat_err", "magnetization_err", "susceptibility_err", "binder_err"):
        assert np.all(getattr(res, k) == 0)


T_GRID = np.array([0.4, 1.0, 2.0, 2.269185314213022, 3.5, 20.0])


# ----------------------------------------------------------------------------- 2D Ising
def test_ising_4x4_torus_matches_brute_force_and_kaufman():
    H = ss.square("ising", 4)
    res = ss.solve(H, T_GRID, method="exact")
    ref = torus_ising(4, 4, T_GRID)
    check(res, ref)
    k = kaufman_thermo(4, 4, T_GRID)
    np.testing.assert_allclose(res.log_Z, k["log_Z"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res.energy, k["energy"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res.specific_heat, k["specific_heat"], rtol=0, atol=TOL)
    assert res.meta["enumeration"].endswith("joint (E, M) histogram")


def test_ising_4x4_levels_dos_and_ground_states():
    H = ss.square("ising", 4)
    res = ss.solve(H, 1.0, method="exact")
    # ferromagnet: E0 = -2 N J = -32 (all up / all down); E1 = -24 (one flipped spin: 4 bonds)
    assert res.ground_energy == -32.0 and res.ground_degeneracy == 2
    assert res.gap == 8.0 and res.excited_degeneracy == 32
    gs = res.ground_states[:, :, 0]
    assert sorted(gs.sum(axis=1).tolist()) == [-16.0, 16.0]
    for S in res.ground_states:
        assert H.energy(S) == res.ground_energy
    # exact density of states against a brute-force count
    N = 16
    s = 1 - 2 * ((np.arange(2 ** N)[:, None] >> np.arange(N)) & 1)
    Ws = H.W_dense
    E = -np.einsum("ki,ij,kj->k", s, Ws, s)
    lev, cnt = np.unique(E, return_counts=True)
    np.testing.assert_array_equal(res.dos_energy, lev)
    np.testing.assert_array_equal(res.dos_count, cnt)
    assert res.dos_count.sum() == 2 ** N
    assert res.meta["dos"].startswith("exact distinct levels")


def test_ising_3x5_rectangular_torus_and_kaufman():
    T = np.array([0.7, 2.3, 6.0])
    res = ss.solve(ss.lattice("ising", (3, 5)), T, method="exact")
    check(res, torus_ising(3, 5, T))
    k = kaufman_thermo(3, 5, T)
    np.testing.assert_allclose(res.log_Z, k["log_Z"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res.specific_heat, k["specific_heat"], rtol=0, atol=TOL)


def test_periodic_chain_ground_states_and_gap():
    # ring of L ferro bonds: E0 = -L J (2 states); first excitation = two domain walls:
    # E1 - E0 = 4J, degeneracy 2 * C(L, 2) = L (L - 1)
    L, J = 9, 1.5
    res = ss.solve(ss.chain("ising", L, J=J), [1.0], method="exact")
    assert res.ground_energy == pytest.approx(-L * J, abs=1e-12)
    assert res.ground_degeneracy == 2
    assert res.gap == pytest.approx(4 * J, abs=1e-12)
    assert res.excited_degeneracy == L * (L - 1)


def test_antiferro_open_chain_and_field_levels():
    # J < 0 chain in a uniform field: real brute force, small n (single chunk path)
    H = ss.chain("ising", 7, J=-1.0, periodic=False, h=0.3)
    T = np.array([0.3, 1.0, 4.0])
    u = np.ones((7, 1))
    res = ss.solve(H, T, method="exact", direction=[1.0])
    check(res, brute(H, T, u), proj=True)


# ----------------------------------------------------------------------------- real couplings
@pytest.mark.parametrize("lengths", [None, "random"])
def test_sk_real_energies_two_pass_matches_brute_force(lengths):
    # T = 0.02 takes the one-exponential-per-state branch, the others the doubling branch
    N = 13
    m = None if lengths is None else np.random.default_rng(9).uniform(0.5, 1.5, N)
    H = ss.sherrington_kirkpatrick(N, seed=4, h=0.2)
    H = ss.Hamiltonian(H.W, spin="ising", h=H.h, lengths=m)
    T = np.array([0.02, 0.2, 0.7, 1.5, 5.0])
    u = np.ones((N, 1))
    ref = brute(H, T, u)
    res = ss.solve(H, T, method="exact")           # direction defaults to the field
    check(res, ref, proj=True)
    assert res.meta["enumeration"] == "gray code, real energies, two passes"
    np.testing.assert_allclose(res.magnetization_vector[:, 0], ref["mvec"][:, 0], atol=TOL)
    E = ref["E"]
    assert res.ground_energy == pytest.approx(E.min(), abs=1e-12)
    assert res.ground_degeneracy == 1
    E1 = np.unique(E)[1]
    assert res.gap == pytest.approx(E1 - E.min(), abs=1e-12)
    np.testing.assert_allclose(H.energy(res.ground_states[0]), res.ground_energy, atol=1e-12)
    assert res.dos_count.sum() == 2 ** N and res.dos_count.size == 512
    assert res.meta["dos"].startswith("histogram")
    counts, _ = np.histogram(E, bins=512, range=(E.min(), E.max()))
    assert np.abs(res.dos_count - counts).sum() <= 2        # bin edges are float round-off apart


def test_lengths_and_frozen_sites_levels_path():
    # integer couplings with lengths 1 and 2: energies on a lattice, per-level moments path;
    # three sites frozen, per-site directions
    rng = np.random.default_rng(3)
    N = 14
    W = np.triu(rng.integers(-2, 3, (N, N)), 1).astype(float)
    frozen = np.zeros(N, bool)
    frozen[[2, 7, 11]] = True
    lengths = rng.choice([1.0, 2.0], N)
    state = lengths[:, None] * rng.choice([-1.0, 1.0], (N, 1))
    h = rng.integers(-1, 2, (N, 1)).astype(float)
    H = ss.Hamiltonian(W, M=1.0, spin="ising", h=h, lengths=lengths, frozen=frozen, state=state)
    u = rng.choice([-1.0, 0.5, 1.0], (N, 1))
    u[frozen] = 0
    T = np.array([0.5, 1.3, 4.0])
    res = ss.solve(H, T, method="exact", direction=u)
    ref = brute(H, T, u)
    check(res, ref, proj=True)
    assert res.meta["enumeration"] == "gray code, integer energies, per-level moments"
    assert res.n_free == 11
    for S in res.ground_states:
        np.testing.assert_array_equal(S[frozen], state[frozen])
        assert H.energy(S) == pytest.approx(res.ground_energy, abs=1e-12)
    assert res.ground_energy == pytest.approx(ref["E"].min(), abs=1e-12)


def test_degenerate_system_caps_ground_states():
    H = ss.Hamiltonian(np.zeros((10, 10)), spin="ising")
    res = ss.solve(H, [1.0, 2.0], method="exact", max_ground_states=5)
    assert res.ground_degeneracy == 1024 and res.gap is None
    assert res.ground_states.shape == (5, 10, 1)
    np.testing.assert_allclose(res.log_Z, 10 * np.log(2), atol=1e-12)
    assert "5 of 1024" in res.meta["ground_states_note"]


# ----------------------------------------------------------------------------- discrete
def potts_vectors(q: int) -> np.ndarray:
    a = 2 * np.pi * np.arange(q) / q
    return np.stack([np.cos(a), np.sin(a)], axis=1)


@pytest.fixture(params=[1, 9, 1024], ids=["leaf1", "leaf9", "leaf1024"])
def leaf(request, monkeypatch):
    """Leaf-block size cap of the discrete enumeration: 1 site (odometer over all others), a
    small block, or the default (here: every free site in the block)."""
    from spinsim.solvers import exact_discrete

    monkeypatch.setattr(exact_discrete, "_LEAF_STATES", request.param)
    return request.param


def test_potts_three_state_exact_levels(leaf):
    rng = np.random.default_rng(0)
    W = np.triu(rng.integers(-1, 3, (6, 6)), 1).astype(float)
    H = ss.Hamiltonian(W, M=ss.Identity(2, 1.0), spin=ss.Discrete(potts_vectors(3)), h=np.array([0.5, 0.0]))
    T = np.array([0.3, 1.0, 3.0])
    u = np.tile([1.0, 0.0], (6, 1))
    ref = brute(H, T, u)
    res = ss.solve(H, T, method="exact")
    check(res, ref, proj=True)
    np.testing.assert_allclose(res.magnetization_vector, ref["mvec"], atol=TOL)
    assert res.meta["dos"].startswith("exact distinct levels")
    E = np.round(ref["E"], 9)
    lev, cnt = np.unique(E, return_counts=True)
    np.testing.assert_allclose(res.dos_energy, lev, atol=1e-9)
    np.testing.assert_array_equal(res.dos_count, cnt)
    assert res.ground_degeneracy == cnt[0] and res.excited_degeneracy == cnt[1]
    assert res.gap == pytest.approx(lev[1] - lev[0], abs=1e-9)


@pytest.mark.parametrize("coupling", ["dense", "lowrank"])
def test_random_vectors_general_coupling_with_frozen_bath(coupling, leaf):
    rng = np.random.default_rng(7)
    N, n, K = 6, 3, 4
    V = rng.standard_normal((K, n))
    M = rng.standard_normal((n, n)) if coupling == "dense" else ss.LowRank(rng.standard_normal((n, 2)),
                                                                         rng.standard_normal((n, 2)))
    W = np.tril(np.ones((N, N)), -1) * rng.uniform(0.2, 1.0, (N, N))      # causal, non-symmetric
    frozen = np.zeros(N, bool)
    frozen[0] = True
    lengths = rng.uniform(0.5, 1.5, N)
    state = lengths[:, None] * V[rng.integers(0, K, N)]
    H = ss.Hamiltonian(W, M=M, spin=ss.Discrete(V), h=rng.standard_normal((N, n)) * 0.3,
                       lengths=lengths, frozen=frozen, state=state)
    u = rng.standard_normal((N, n))
    u[frozen] = 0
    T = np.array([0.25, 1.0, 5.0])
    ref = brute(H, T, u)
    res = ss.solve(H, T, method="exact", direction=u)
    check(res, ref, proj=True)
    np.testing.assert_allclose(res.magnetization_vector, ref["mvec"], atol=TOL)
    assert res.ground_energy == pytest.approx(ref["E"].min(), abs=1e-12)
    i0 = np.argmin(ref["E"])
    np.testing.assert_allclose(res.ground_states[0], ref["confs"][i0], atol=1e-12)


def test_pair_energies_from_factors_match_table(monkeypatch, leaf):
    # K^2 above the table cap: the kernel computes G[b, a] = X_b . Y_a on the fly
    from spinsim.solvers import exact_discrete

    rng = np.random.default_rng(2)
    V = rng.standard_normal((5, 3))
    H = ss.Hamiltonian(np.triu(rng.standard_normal((4, 4)), 1), M=rng.standard_normal((3, 3)),
                       spin=ss.Discrete(V), h=rng.standard_normal(3))
    T = np.array([0.5, 2.0])
    a = ss.solve(H, T, method="exact")
    monkeypatch.setattr(exact_discrete, "_TABLE_CAP", 1)
    b = ss.solve(H, T, method="exact")
    assert "factorisation" in b.meta["enumeration"]
    for k in ("log_Z", "energy", "specific_heat", "magnetization", "susceptibility"):
        np.testing.assert_allclose(getattr(b, k), getattr(a, k), rtol=0, atol=1e-11)


def test_probe_site_over_vocabulary_in_frozen_bath():
    # a probe (last site) over K candidate tokens in the field of a frozen bath: the Boltzmann
    # weights of the candidates are a softmax of their energies, computed here with H.energy
    rng = np.random.default_rng(11)
    N, n, K, r = 5, 16, 400, 4
    vocab = rng.standard_normal((K, n))
    A, B = rng.standard_normal((n, r)), rng.standard_normal((n, r))
    frozen = np.ones(N, bool)
    frozen[-1] = False
    state = vocab[rng.integers(0, K, N)]
    H = ss.Hamiltonian(ss.causal(N), M=ss.LowRank(A, B), spin=ss.Discrete(vocab), frozen=frozen,
                       state=state, h=rng.standard_normal(n) * 0.1)
    T = np.array([0.5, 1.0, 10.0])
    E = np.empty(K)
    for a in range(K):
        S = state.copy()
        S[-1] = vocab[a]
        E[a] = H.energy(S)
    res = ss.solve(H, T, method="exact", direction=vocab[0])
    for t, temp in enumerate(T):
        p = np.exp(-(E - E.min()) / temp)
        Z = p.sum()
        p /= Z
        assert res.log_Z[t] == pytest.approx(np.log(Z) - E.min() / temp, abs=1e-9)
        assert res.energy[t] == pytest.approx(p @ E, abs=1e-9)
        assert res.specific_heat[t] == pytest.approx(p @ (E - p @ E) ** 2 / temp ** 2, abs=1e-9)
        np.testing.assert_allclose(res.magnetization_vector[t], p @ vocab, atol=1e-10)
        assert res.magnetization[t] == pytest.approx(p @ np.linalg.norm(vocab, axis=1), abs=1e-10)
        assert res.projection[t] == pytest.approx(p @ (vocab @ vocab[0]), abs=1e-9)
    assert res.ground_energy == pytest.approx(E.min(), abs=1e-9)
    np.testing.assert_allclose(res.ground_states[0, -1], vocab[np.argmin(E)])


def test_probe_over_large_vocabulary_is_finite():
    rng = np.random.default_rng(5)
    K, n = 50_257, 128          # GPT-2 vocabulary size (bench/bench_exact.py times n = 768)
    vocab = rng.standard_normal((K, n))
    bath = rng.standard_normal((3, n))
    frozen = np.array([True, True, True, False])
    state = np.vstack([bath, vocab[:1]])
    A, B = rng.standard_normal((n, 8)) / 30, rng.standard_normal((n, 8)) / 30
    H = ss.Hamiltonian(ss.causal(4), M=ss.LowRank(A, B), spin=ss.Discrete(vocab), frozen=frozen,
                       state=state)
    res = ss.solve(H, [0.01, 1.0, 100.0], method="exact")
    assert np.all(np.isfinite(res.log_Z)) and np.all(np.isfinite(res.energy))
    phi = (bath.sum(0) @ B) @ A.T      # field of the bath on the probe (keys j < query 3)
    S = state.copy()
    S[-1] = 0.0
    E = H.energy(S) - vocab @ phi      # frozen-frozen pairs + the probe's pairs
    assert res.ground_energy == pytest.approx(E.min(), rel=1e-10)
    assert res.dos_count.sum() == K


# ----------------------------------------------------------------------------- errors, I/O
def test_heisenberg_is_refused():
    H = ss.chain("heisenberg", 4)
    with pytest.raises(ValueError, match="'heisenberg'.*continuous.*analytic.*mc"):
        ss.solve(H, 1.0, method="exact")


def test_too_many_states_refused_before_any_work(monkeypatch):
    from spinsim.solvers import exact

    def no_work(*args, **kwargs):
        raise AssertionError("enumeration set-up started before the state count was checked")

    monkeypatch.setattr(exact, "_free_problem", no_work)     # the first step of any enumeration
    H = ss.chain("ising", 31)
    with pytest.raises(ValueError, match=r"2\^31 = 2\.147e\+09 states, over max_states=1\.074e\+09"):
        ss.solve(H, 1.0, method="exact")
    with pytest.raises(ValueError, match=r"10\^9 = 1e\+09 states, over max_states=1e\+08"):
        ss.solve(ss.Hamiltonian(np.zeros((9, 9)), spin=ss.Discrete(np.eye(10))), 1.0, method="exact")
    with pytest.raises(ValueError, match=r"2\^12 = 4096 states, over max_states=1000"):
        ss.solve(ss.chain("ising", 12), 1.0, method="exact", max_states=1000)
    with pytest.raises(ValueError, match="dos_bins must be an integer >= 1, got 0"):
        ss.solve(ss.chain("ising", 4), 1.0, method="exact", dos_bins=0)


def test_result_round_trips_through_hdf5(tmp_path):
    res = ss.solve(ss.chain("ising", 8, h=0.1), [0.5, 1.0], method="exact", seed=3)
    assert res.meta["ignored_options"] == ["seed"]
    back = ss.Result.from_hdf5(res.to_hdf5(tmp_path / "exact.h5"))
    np.testing.assert_array_equal(back.log_Z, res.log_Z)
    np.testing.assert_array_equal(back.dos_count, res.dos_count)
    assert back.ground_degeneracy == res.ground_degeneracy and back.gap == res.gap


def test_two_pass_fallback_when_level_tables_are_too_large(monkeypatch):
    # integer energies but the level tables over the memory cap: the real-valued two-pass path,
    # still with the exact distinct levels as DOS
    from spinsim.solvers import exact_ising

    monkeypatch.setattr(exact_ising, "_HIST_CAP", 1)
    res = ss.solve(ss.square("ising", 4), T_GRID, method="exact")
    assert res.meta["enumeration"] == "gray code, real energies, two passes"
    check(res, torus_ising(4, 4, T_GRID))
    assert res.meta["dos"].startswith("exact distinct levels")
    assert res.dos_count.sum() == 2 ** 16 and res.dos_count[0] == 2 and res.dos_energy[0] == -32.0
    assert res.ground_degeneracy == 2 and res.gap == pytest.approx(8.0) and res.excited_degeneracy == 32
