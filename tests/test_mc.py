"""Monte Carlo (CPU backend) against exact and closed-form answers.

Every comparison is "within K standard errors of the run's own error bar" with a fixed seed;
the exact references are computed here independently (brute-force sums, Bessel continued
fractions, Langevin functions), not by other spinsim solvers.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import spinsim as ss

K = 4.0  # tolerance in standard errors


# ----------------------------------------------------------------------------- references
def brute_force(H: ss.Hamiltonian, T: np.ndarray, u: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Exact thermodynamics of a discrete/Ising H by listing every state of the free sites."""
    V = H.spin.vectors
    free = np.flatnonzero(~H.frozen)
    base = H.state.copy() if H.state is not None else np.zeros((H.n_sites, H.n_comp))
    E, mabs, mu = [], [], []
    for combo in itertools.product(range(V.shape[0]), repeat=free.size):
        S = base.copy()
        S[free] = V[list(combo)] * H.lengths[free, None]
        E.append(H.energy(S))
        m = S[free].sum(0) / free.size
        mabs.append(np.linalg.norm(m))
        mu.append(0.0 if u is None else float(np.sum(S[free] * u[free]) / free.size))
    E, mabs, mu = map(np.asarray, (E, mabs, mu))
    out: dict[str, list[float]] = {k: [] for k in ("e", "C", "m", "chi", "U", "mu")}
    n, N = H.n_comp, free.size
    for t in T:
        w = np.exp(-(E - E.min()) / t)
        w /= w.sum()
        e1, e2 = w @ E, w @ E ** 2
        m1, m2, m4 = w @ mabs, w @ mabs ** 2, w @ mabs ** 4
        out["e"].append(e1 / N)
        out["C"].append((e2 - e1 ** 2) / t ** 2 / N)
        out["m"].append(m1)
        out["chi"].append(N * (m2 - m1 ** 2) / t)
        out["U"].append(1 - n * m4 / ((n + 2) * m2 ** 2))
        out["mu"].append(w @ mu)
    return {k: np.asarray(v) for k, v in out.items()}


def bessel_ratio_cf(n: int, x: float) -> float:
    """I_{n/2}(x) / I_{n/2-1}(x) by backward recurrence of the continued fraction
    r_k = 1 / (2k/x + r_{k+1}) (independent of scipy's Bessel functions)."""
    nu = n / 2.0
    r = 0.0
    for k in range(int(nu) + 4000, -1, -1):
        r = 1.0 / (2.0 * (nu + k) / x + r)
    return r


def assert_within(value, err, ref, what, k=K):
    value, err, ref = map(np.atleast_1d, (value, err, ref))
    z = np.abs(value - ref) / err
    assert np.all(np.isfinite(err)) and np.all(err > 0), f"{what}: bad error bars {err}"
    assert np.all(z < k), f"{what}: MC {value} +- {err} vs exact {ref} (|z| = {z})"


ISING_4x4 = ss.lattice("ising", (4, 4))
T3 = np.array([2.0, 2.5, 3.0])


@pytest.fixture(scope="module")
def ising_exact():
    return brute_force(ISING_4x4, T3)


# ----------------------------------------------------------------------------- Ising, every algorithm
@pytest.mark.parametrize("algorithm", ["metropolis", "heatbath", "pt", "wolff"])
def test_ising_4x4_every_algorithm_matches_enumeration(algorithm, ising_exact):
    r = ss.solve(ISING_4x4, T=T3, method="mc", algorithm=algorithm, sweeps=20000, seed=11, progress=False)
    ref = ising_exact
    assert_within(r.energy, r.energy_err, ref["e"], f"{algorithm} energy")
    assert_within(r.specific_heat, r.specific_heat_err, ref["C"], f"{algorithm} C")
    assert_within(r.magnetization, r.magnetization_err, ref["m"], f"{algorithm} |m|")
    assert_within(r.susceptibility, r.susceptibility_err, ref["chi"], f"{algorithm} chi")
    assert_within(r.binder, r.binder_err, ref["U"], f"{algorithm} binder")
    assert r.n_discard > 0 and r.method == "mc" and r.backend == "cpu"
    assert np.all(r.tau_int >= 0.5)


def exact_swap_acceptance(H: ss.Hamiltonian, T: np.ndarray) -> np.ndarray:
    """<min(1, exp((b_t - b_t+1)(E_t - E_t+1)))> over independent Boltzmann draws at neighbouring
    temperatures of the sorted ladder T, for an Ising H = -J sum_{i!=j} W_ij s_i s_j (all 2^N
    states listed; the stationary law of parallel tempering is the product of the marginals)."""
    W = H.W.toarray() if hasattr(H.W, "toarray") else np.asarray(H.W)
    states = np.arange(2 ** H.n_sites)
    s = 1.0 - 2.0 * ((states[:, None] >> np.arange(H.n_sites)) & 1)
    E = -H.M.J * np.einsum("si,ij,sj->s", s, W, s)
    levels, counts = np.unique(E, return_counts=True)
    P = [counts * np.exp(-(levels - levels.min()) / t) for t in T]
    P = [p / p.sum() for p in P]
    out = []
    for t in range(len(T) - 1):
        x = (1 / T[t] - 1 / T[t + 1]) * (levels[:, None] - levels[None, :])
        out.append(P[t] @ np.minimum(1.0, np.exp(x)) @ P[t + 1])
    return np.asarray(out)


def test_parallel_tempering_swaps_and_reports(ising_exact):
    """The swap acceptance of each pair equals the exact <min(1, exp(d beta d E))> (0.614 and
    0.657 here). 2000 attempts per pair: binomial standard error 0.011; the tolerance 0.05 also
    covers the correlation between successive attempts. Under the same marginals a wrong sign in the
    rule would give 0.90 / 0.88, a halved exponent 0.74 / 0.78."""
    r = ss.solve(ISING_4x4, T=T3[::-1], method="mc", algorithm="pt", sweeps=4000, seed=2, progress=False)
    assert np.allclose(r.T, T3[::-1])           # caller's order kept
    acc = np.asarray(r.meta["swap_acceptance"])
    assert acc.shape == (2,)
    ref = exact_swap_acceptance(ISING_4x4, T3)
    assert np.all(np.abs(acc - ref) < 0.05), f"swap acceptance {acc} vs exact {ref}"


# ----------------------------------------------------------------------------- discrete, low-rank, frozen
def _potts_vectors(q: int) -> np.ndarray:
    ang = 2 * np.pi * np.arange(q) / q
    return np.stack([np.cos(ang), np.sin(ang)], axis=1)


@pytest.mark.parametrize("algorithm", ["metropolis", "heatbath", "pt"])
def test_discrete_lowrank_system_matches_enumeration(algorithm):
    rng = np.random.default_rng(4)
    N, n, r = 5, 3, 2
    V = rng.standard_normal((4, n))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    W = np.tril(np.ones((N, N)), -1)                       # causal graph, as in a head
    M = ss.LowRank(rng.standard_normal((n, r)) * 0.6, rng.standard_normal((n, r)) * 0.6)
    H = ss.Hamiltonian(W, M=M, h=rng.standard_normal((N, n)) * 0.3, spin=ss.Discrete(V),
                       lengths=rng.uniform(0.5, 1.5, N))
    T = np.array([0.7, 1.5])
    u = np.broadcast_to(np.array([1.0, 0.0, 0.0]), (N, n))
    ref = brute_force(H, T, u)
    res = ss.solve(H, T=T, method="mc", algorithm=algorithm, sweeps=20000, seed=5, progress=False,
                   direction=np.array([1.0, 0.0, 0.0]))
    assert_within(res.energy, res.energy_err, ref["e"], "energy")
    assert_within(res.specific_heat, res.specific_heat_err, ref["C"], "C")
    assert_within(res.magnetization, res.magnetization_err, ref["m"], "|m|")
    assert_within(res.projection, res.projection_err, ref["mu"], "m.u")


def test_dense_coupling_potts_matches_enumeration():
    N = 6
    M = np.array([[1.0, 0.4], [-0.2, 0.7]])
    H = ss.Hamiltonian(ss.lattice("xy", N).W, M=M, spin=ss.Discrete(_potts_vectors(3)))
    T = np.array([0.5, 1.2])
    ref = brute_force(H, T)
    res = ss.solve(H, T=T, method="mc", sweeps=20000, seed=8, progress=False)
    assert_within(res.energy, res.energy_err, ref["e"], "energy")
    assert_within(res.binder, res.binder_err, ref["U"], "binder")


def test_probe_site_in_frozen_bath_is_the_attention_softmax():
    """One free discrete site (a probe over candidate tokens) in the field of a frozen bath:
    P(a) = softmax_a(beta m v_a . phi), exactly the attention / logit picture."""
    rng = np.random.default_rng(0)
    N, n = 4, 5
    cand = rng.standard_normal((3, n))
    state = rng.standard_normal((N, n))
    W = np.zeros((N, N))
    W[N - 1, :N - 1] = 1.0                                   # the probe (last site) is the query
    A, B = rng.standard_normal((n, 2)) * 0.5, rng.standard_normal((n, 2)) * 0.5
    frozen = np.array([True] * (N - 1) + [False])
    state[-1] = cand[0]
    H = ss.Hamiltonian(W, M=ss.LowRank(A, B), spin=ss.Discrete(cand), frozen=frozen, state=state)
    phi = A @ (B.T @ state[:-1].sum(0))
    T = np.array([0.8, 2.0])
    res = ss.solve(H, T=T, method="mc", sweeps=20000, seed=9, progress=False, direction=cand[1])
    for i, t in enumerate(T):
        logits = cand @ phi / t
        p = np.exp(logits - logits.max())
        p /= p.sum()
        ref_proj = p @ (cand @ cand[1])
        assert_within(res.projection[i], res.projection_err[i], ref_proj, f"probe T={t}")


# ----------------------------------------------------------------------------- continuous spins
@pytest.mark.parametrize("n", [2, 3, 64, 768])
@pytest.mark.parametrize("algorithm", ["heatbath", "metropolis"])
def test_on_spin_in_field_matches_bessel_ratio(n, algorithm):
    """<S.b_hat> = m I_{n/2}(beta m b) / I_{n/2-1}(beta m b) for an O(n) spin of length m."""
    b, m = (3.0 if n < 64 else 40.0), 1.5
    h = np.zeros(n)
    h[0] = b
    H = ss.Hamiltonian(np.zeros((1, 1)), M=ss.Identity(n, 1.0), h=h, spin=ss.Heisenberg(n), lengths=[m])
    T = np.array([0.5, 2.0, 8.0])
    res = ss.solve(H, T=T, method="mc", algorithm=algorithm, sweeps=12000, seed=3, progress=False)
    ref = np.array([m * bessel_ratio_cf(n, m * b / t) for t in T])
    assert_within(res.projection, res.projection_err, ref, f"n={n} {algorithm}")


@pytest.mark.parametrize("algorithm", ["heatbath", "metropolis", "overrelax", "pt", "wolff"])
def test_open_heisenberg_chain_matches_langevin(algorithm):
    """Open chain, H = -J sum S_i.S_{i+1}: <E> = -(N-1) J L(beta J), C = (N-1)(1 - (x/sinh x)^2)."""
    N, J = 8, 1.0
    H = ss.lattice("heisenberg", N, J=J, periodic=False)
    T = np.array([0.3, 1.0, 3.0])
    res = ss.solve(H, T=T, method="mc", algorithm=algorithm, sweeps=15000, seed=5, progress=False)
    x = J / T
    e_ref = -(N - 1) * J * (1 / np.tanh(x) - 1 / x) / N
    c_ref = (N - 1) * (1 - (x / np.sinh(x)) ** 2) / N
    assert_within(res.energy, res.energy_err, e_ref, f"{algorithm} energy")
    assert_within(res.specific_heat, res.specific_heat_err, c_ref, f"{algorithm} C")


def test_frozen_neighbours_and_lengths_act_as_a_field():
    """A free XY spin between two frozen spins sees phi = J (m_0 s_0 + m_2 s_2): Bessel ratio."""
    W = np.zeros((3, 3))
    W[0, 1] = W[1, 2] = 1.0
    state = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 0.5]])
    H = ss.Hamiltonian(W, M=ss.Identity(2, 0.8), spin="xy", lengths=[2.0, 1.0, 0.5],
                       frozen=[True, False, True], state=state)
    phi = 0.8 * (state[0] + state[2])
    T = np.array([0.4, 1.5])
    res = ss.solve(H, T=T, method="mc", sweeps=12000, seed=1, progress=False, direction=phi / np.linalg.norm(phi))
    ref = [bessel_ratio_cf(2, np.linalg.norm(phi) / t) for t in T]
    assert_within(res.projection, res.projection_err, ref, "frozen-bath field")


# ----------------------------------------------------------------------------- reproducibility and I/O
def test_same_seed_same_chain_and_chunking_does_not_matter():
    H = ss.lattice("heisenberg", (3, 3))
    a = ss.solve(H, T=[1.0, 2.0], method="mc", sweeps=300, seed=42, progress=False)
    b = ss.solve(H, T=[1.0, 2.0], method="mc", sweeps=300, seed=42, progress=False)
    c = ss.solve(H, T=[1.0, 2.0], method="mc", sweeps=300, seed=43, progress=False)
    assert np.array_equal(a.energy, b.energy) and np.array_equal(a.magnetization, b.magnetization)
    assert not np.array_equal(a.energy, c.energy)
    # the same chain run in other chunk sizes gives bit-identical time series
    from spinsim.kernels import cpu
    from spinsim.solvers.mc import initial_state, prepare
    k = prepare(H)
    S, X = initial_state(H, 2, "random", 7)
    outs = []
    for chunks in ([150, 150], [1] * 10 + [290]):
        run = cpu.Runner(S, X, np.array([1.0, 0.5]), 7, np.arange(2), k, algorithm="heatbath",
                         alg_code=1, n_overrelax=1, exchange=False, n_T=2, delta=0.5, resync=64,
                         n_meas=300)
        done = 0
        for c_ in chunks:
            run.run(done, c_, measure_from=done, adapt=False)
            done += c_
        outs.append(run.results()["E"].copy())
    assert np.array_equal(outs[0], outs[1])


def test_energy_tracking_matches_full_recomputation():
    """The kernels track E through dE = -(S'-S).phi; the final state's E must equal H.energy."""
    rng = np.random.default_rng(2)
    n = 16
    H = ss.Hamiltonian(np.tril(rng.random((6, 6)), -1), M=ss.LowRank(rng.standard_normal((n, 4)),
                       rng.standard_normal((n, 4))), h=rng.standard_normal((6, n)), spin=ss.Heisenberg(n))
    from spinsim.kernels import cpu
    from spinsim.solvers.mc import initial_state, prepare
    k = prepare(H)
    S, X = initial_state(H, 3, "random", 1)
    run = cpu.Runner(S, X, np.array([0.5, 1.0, 3.0]), 1, np.arange(3), k, algorithm="metropolis",
                     alg_code=0, n_overrelax=1, exchange=False, n_T=3, delta=0.5, resync=0, n_meas=63)
    run.run(0, 63, measure_from=0, adapt=False)
    for r in range(3):
        assert abs(run.E[r] - H.energy(run.S[r])) < 1e-9 * max(1.0, abs(run.E[r]))
        H.check_state(run.S[r])


def test_result_roundtrip_hdf5(tmp_path):
    r = ss.solve(ISING_4x4, T=[2.0, 3.0], method="mc", sweeps=500, seed=1, progress=False)
    p = r.to_hdf5(tmp_path / "r.h5")
    back = ss.Result.from_hdf5(p)
    for name in ("T", "energy", "energy_err", "susceptibility", "binder_err", "tau_int", "magnetization_vector"):
        assert np.array_equal(getattr(back, name), getattr(r, name)), name
    assert back.seed == 1 and back.method == "mc" and back.meta["algorithm"] == "heatbath"
    import h5py
    with h5py.File(p) as f:
        assert f["result/energy"].dims[0][0].name == "/result/T"
        assert f["result/T"].attrs["units"] == "energy (k_B = 1)"
        assert "sign_convention" in f.attrs and f.attrs["k_B"] == 1.0


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(T=[1.0, -1.0]), r"T = -1\.0"),
    (dict(T=[np.nan]), "finite and > 0"),
    (dict(T=1.0, algorithm="gibbs"), "unknown algorithm 'gibbs'"),
    (dict(T=1.0, backend="tpu"), "unknown backend 'tpu'"),
    (dict(T=1.0, sweeps=0), "sweeps must be an integer >= 2"),
    (dict(T=1.0, seed=-3), "seed must be an integer"),
    (dict(T=1.0, direction=np.ones(7)), r"direction array must have shape \(3,\)"),
])
def test_bad_mc_input_is_rejected_with_a_clear_message(kwargs, match):
    H = ss.lattice("heisenberg", 4)
    with pytest.raises(ValueError, match=match):
        ss.solve(H, method="mc", progress=False, **kwargs)


def test_bad_hamiltonian_input_is_rejected():
    with pytest.raises(ValueError, match="non-finite entry nan"):
        ss.Hamiltonian(np.array([[0, np.nan], [0, 0]]))
    with pytest.raises(ValueError, match="must be square"):
        ss.Hamiltonian(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown spin kind 'potts'"):
        ss.Hamiltonian(np.zeros((2, 2)), spin="potts")
    with pytest.raises(ValueError, match=r"unit vectors .* \|sigma\| = 2"):
        ss.Hamiltonian(np.zeros((2, 2)), spin="xy", state=np.array([[2.0, 0], [1, 0]]))
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        ss.solve(ss.lattice("ising", 3), T=1.0, method="magic")
    with pytest.raises(ValueError, match="'wolff' needs zero field"):
        ss.solve(ss.lattice("ising", 4, h=0.1), T=1.0, method="mc", algorithm="wolff")
    with pytest.raises(ValueError, match="'overrelax' needs continuous"):
        ss.solve(ss.lattice("ising", 4), T=1.0, method="mc", algorithm="overrelax")


# ----------------------------------------------------------------------------- finite-size scaling
@pytest.mark.slow
def test_binder_crossings_locate_onsager_tc():
    """2D Ising, L = 8, 16, 32 (Wolff): Binder crossings within 1 % of T_c = 2/ln(1+sqrt 2)."""
    from spinsim.analysis.boundaries import binder_crossings

    Tc = 2.0 / np.log(1.0 + np.sqrt(2.0))
    T = np.linspace(2.20, 2.34, 8)
    curves = {}
    for L in (8, 16, 32):
        r = ss.solve(ss.lattice("ising", (L, L)), T=T, method="mc", algorithm="wolff",
                     sweeps=6000, seed=L, progress=False, n_chains=1)
        curves[L] = r
    crossings = binder_crossings({L: (r.T, r.binder, r.binder_err) for L, r in curves.items()})
    assert len(crossings) == 2
    for c in crossings:
        assert abs(c["T"] - Tc) / Tc < 0.01, c
