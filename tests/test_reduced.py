"""The reduced spin space Monte Carlo (spinsim/reduced_space.py, kernels/moves.py, kernels/hidden.py)
against exact answers and against the full-space chain.

Exact references: the von Mises-Fisher law of one O(n) spin (Bessel ratios from scipy.special.ive,
the density (1 - x^2)^((n - 3)/2) e^{kappa x} integrated numerically) and independent spins drawn
by scipy.stats.vonmises_fisher. Monte Carlo comparisons: within K standard errors at a fixed seed.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

import spinsim as ss
from spinsim.coupling import SiteLowRank
from spinsim.kernels.moves import heatbath_continuous, metropolis_accept, propose_continuous
from spinsim.kernels.rng import replica_key, visit_seed
from spinsim.reduced_space import NotReducibleError, reduced_space

K = 4.0
OBS = ("energy", "magnetization", "susceptibility", "binder", "projection")


def bessel_ratio(n: int, x: float) -> float:
    """<sigma . b_hat> of an O(n) spin in a field: I_{n/2}(x) / I_{n/2-1}(x)."""
    return float(special.ive(n / 2, x) / special.ive(n / 2 - 1, x))


def head_like(N: int, n: int, r: int, seed: int, field: float = 20.0, graph: str = "causal",
              scale: float = 0.3) -> ss.Hamiltonian:
    """A head-like system: causal complete graph, random rank-r coupling (entries N(0, scale^2):
    aligned pairs couple with ~scale^2 n), per-site fields of strength ``field`` along random
    "token" directions (outside span(A, B)), lengths in [0.6, 1.4]."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, r)) * scale
    B = rng.standard_normal((n, r)) * scale
    X = rng.standard_normal((N, n))
    h = field * X / np.linalg.norm(X, axis=1, keepdims=True)
    W = np.tril(np.ones((N, N)), -1) if graph == "causal" else np.zeros((N, N))
    return ss.Hamiltonian(W, M=ss.LowRank(A, B), h=h, spin=ss.Heisenberg(n), lengths=rng.uniform(0.6, 1.4, N))


def zscores(a: ss.Result, b: ss.Result, names=OBS) -> dict[str, np.ndarray]:
    """(a - b) / sqrt(err_a^2 + err_b^2) per observable. The two runs must use different seeds:
    with one seed a reduced and a full chain start alike and share Wood's draws (the same w at
    the same concentration), so their difference is too small (12-seed std of z ~0.6)."""
    return {o: (getattr(a, o) - getattr(b, o)) / np.hypot(getattr(a, o + "_err"), getattr(b, o + "_err"))
            for o in names}


# ----------------------------------------------------------------------------- the normal draws
def test_gauss_vector_is_standard_normal():
    """rng.gauss_vector (ziggurat, tail and wedges from a sub-stream): 200,000 normals of one
    visit against N(0, 1): Kolmogorov-Smirnov p > 1e-3, the tail beyond the ziggurat's r = 3.4426
    within 4 sigma of its exact count, and equal draws for equal (visit, index)."""
    from spinsim.kernels.rng import ZIG_R, gauss_vector
    vs = visit_seed(replica_key(5, 0), 3, 1, 4)
    g = np.empty(200_000)
    assert gauss_vector(vs, 7, g) == 200_007
    assert stats.kstest(g, "norm").pvalue > 1e-3
    p_tail = 2 * stats.norm.sf(ZIG_R)
    n_tail = np.sum(np.abs(g) > ZIG_R)
    assert abs(n_tail - g.size * p_tail) < 4 * np.sqrt(g.size * p_tail)
    h = np.empty(10)
    gauss_vector(vs, 7 + 5, h)
    np.testing.assert_array_equal(h, g[5:15])


# ----------------------------------------------------------------------------- the space itself
def test_reduced_space_frames_hold_every_site_vector_and_are_orthonormal():
    H = head_like(5, 32, 3, seed=1)
    sp = reduced_space(H, [H.h])
    assert sp is not None and sp.d == 6 and sp.k == 7 and sp.n_hidden == 25
    assert sp.residual(H.h) < 1e-12
    np.testing.assert_allclose(sp.Q.T @ sp.Q, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(sp.E.T @ sp.Q, 0, atol=1e-12)
    for Ci in sp.C:
        np.testing.assert_allclose(Ci.T @ Ci, np.eye(1), atol=1e-12)
    # the energy in visible coordinates equals the full energy for any state
    rng = np.random.default_rng(0)
    S = rng.standard_normal((5, 32))
    S *= H.lengths[:, None] / np.linalg.norm(S, axis=1, keepdims=True)
    from spinsim.reduced_space import reduced_prepared
    from spinsim.solvers.mc import prepare
    k = reduced_prepared(H, prepare(H), sp)
    x = sp.visible(S)
    Hr = ss.Hamiltonian(np.tril(np.ones((5, 5)), -1), M=ss.LowRank(k["A"], k["B"]), h=k["h"],
                        spin=ss.Heisenberg(sp.k), lengths=np.ones(5))
    assert Hr.M.bilinear(x, x)[np.tril_indices(5, -1)].sum() == pytest.approx(
        H.M.bilinear(S, S)[np.tril_indices(5, -1)].sum(), rel=1e-12)
    assert np.sum(k["h"] * x) == pytest.approx(np.sum(H.h * S), rel=1e-12)


def test_reduce_option_is_checked_and_recorded():
    H = head_like(3, 16, 2, seed=2)
    r = ss.solve(H, T=[1.0], method="mc", sweeps=20, discard=5, seed=0, progress=False)
    assert r.meta["state_space"].startswith("reduced: 5 visible")
    r = ss.solve(H, T=[1.0], method="mc", sweeps=20, discard=5, seed=0, progress=False, reduce=False)
    assert r.meta["state_space"].startswith("full: 16")
    lattice = ss.lattice("heisenberg", (3, 3))
    with pytest.raises(NotReducibleError, match="n_comp >= 5"):
        ss.solve(lattice, T=[1.0], method="mc", sweeps=20, seed=0, progress=False, reduce=True)
    with pytest.raises(ValueError, match="reduce must be"):
        ss.solve(H, T=[1.0], method="mc", sweeps=20, seed=0, progress=False, reduce="yes")
    assert ss.solve(lattice, T=[1.0], method="mc", sweeps=20, discard=5, seed=0,
                    progress=False).meta["state_space"].startswith("full")


# ----------------------------------------------------------------------------- one spin, exact
@pytest.mark.parametrize("algorithm", ["heatbath", "metropolis", "overrelax"])
def test_single_spin_n768_bessel_ratio(algorithm):
    """One O(768) spin of length 1 in a field b outside span(A, B): <S.b_hat> = I_384(b/T) /
    I_383(b/T) (k = 3 visible coordinates, 765 hidden), and |m| = 1 exactly (the hidden part is
    sampled with the exact norm)."""
    rng = np.random.default_rng(5)
    n, b = 768, 300.0
    h = np.zeros((1, n))
    h[0, 5] = b
    H = ss.Hamiltonian(np.zeros((1, 1)), M=ss.LowRank(rng.standard_normal((n, 1)), rng.standard_normal((n, 1))),
                       h=h, spin=ss.Heisenberg(n))
    T = np.array([0.5, 1.0, 3.0])
    r = ss.solve(H, T=T, method="mc", algorithm=algorithm, sweeps=6000, seed=7, progress=False)
    assert r.meta["state_space"].startswith("reduced: 3 visible")
    for t, v, e in zip(T, r.projection, r.projection_err):
        ref = bessel_ratio(n, b / t)
        assert abs(v - ref) < K * e, f"T={t}: {v} +- {e} vs {ref}"
    np.testing.assert_allclose(r.magnetization, 1.0, rtol=1e-10)


def _one_spin_chain(move_hb, n_h, kappa, n_draws, seed):
    """Visible parts (n_draws, 3) of an O(3 + n_h) spin (k = 3) in the visible field kappa e_0
    from the kernel moves: independent heat-bath draws, or a Metropolis chain (step 0.6 in R^n)
    thinned by 8. Compiled once per session (:func:`_draws`)."""
    phi = np.zeros(3)
    phi[0] = kappa
    out = np.empty((n_draws, 3))
    sig = np.zeros(3)
    sig[0] = 0.5
    new = np.empty(3)
    key = replica_key(seed, 0)
    t = 0
    for i in range(n_draws * (1 if move_hb else 8)):
        vs = visit_seed(key, i, 0, 1)
        if move_hb:
            heatbath_continuous(phi, 1.0, 1.0, vs, 0, new, n_h)
            for c in range(3):
                sig[c] = new[c]
        else:
            propose_continuous(sig, 0.6, vs, 0, new, n_h)
            dE = 0.0
            for c in range(3):
                dE -= (new[c] - sig[c]) * phi[c]
            if metropolis_accept(dE, 1.0, vs):
                for c in range(3):
                    sig[c] = new[c]
            if i % 8 != 7:
                continue
        for c in range(3):
            out[t, c] = sig[c]
        t += 1
    return out


_COMPILED = {}


def _draws(move: str, n: int, kappa: float, n_draws: int, seed: int) -> np.ndarray:
    if "f" not in _COMPILED:
        from numba import njit
        _COMPILED["f"] = njit(_one_spin_chain)
    return _COMPILED["f"](move == "heatbath", n - 3, kappa, n_draws, seed)


@pytest.mark.parametrize("move", ["heatbath", "metropolis"])
def test_one_spin_marginal_density(move):
    """The field component x = p_0 of the visible part against the exact marginal density
    (1 - x^2)^((n - 3)/2) e^{kappa x} (binned chi-square, p > 1e-3), and E|p|^2 against the exact
    E[w^2] + (k - 1)(1 - E[w^2])/(n - 1), E[w^2] = 1 - (n - 1) A_n(kappa)/kappa."""
    n, kappa = 12, 4.0
    p = _draws(move, n, kappa, 40000, seed=3)
    assert np.all(np.sum(p * p, axis=1) <= 1.0 + 1e-12)
    edges = np.linspace(-1, 1, 41)
    dens = lambda x: (1 - x * x) ** ((n - 3) / 2) * np.exp(kappa * (x - 1))   # noqa: E731
    Z = integrate.quad(dens, -1, 1)[0]
    prob = np.array([integrate.quad(dens, a, b)[0] for a, b in zip(edges[:-1], edges[1:])]) / Z
    counts, _ = np.histogram(p[:, 0], edges)
    keep = prob * len(p) > 5
    chi2 = np.sum((counts[keep] - len(p) * prob[keep]) ** 2 / (len(p) * prob[keep]))
    # Metropolis draws are correlated: thinned by 8, and the statistic compared at a looser level
    dof = keep.sum() - 1
    pval = stats.chi2.sf(chi2 / (1.0 if move == "heatbath" else 2.0), dof)
    assert pval > 1e-3, f"{move}: chi2 {chi2:.1f} for {dof} dof"
    A = bessel_ratio(n, kappa)
    w2 = 1 - (n - 1) * A / kappa
    ref = w2 + 2 * (1 - w2) / (n - 1)
    q = np.sum(p * p, axis=1)
    blocks = q[: len(q) // 100 * 100].reshape(100, -1).mean(axis=1)
    assert abs(q.mean() - ref) < K * blocks.std(ddof=1) / 10, f"{move}: E|p|^2 {q.mean()} vs {ref}"


def test_independent_spins_magnetisation_against_exact_sampler():
    """N uncoupled O(64) spins with lengths in fields along different (non-orthogonal)
    directions: the reduced chain's heat bath draws each site exactly, so <|m|>, chi and Binder
    (which need the hidden parts) must match independent draws of scipy.stats.vonmises_fisher."""
    H = head_like(5, 64, 2, seed=9, field=40.0, graph="none")
    T = 0.8
    r = ss.solve(H, T=[T], method="mc", sweeps=8000, seed=1, progress=False)
    assert r.meta["state_space"].startswith("reduced: 5 visible")
    rng = np.random.default_rng(2)
    n_draw = 8000
    S = np.zeros((n_draw, 5, 64))
    for i in range(5):
        hn = np.linalg.norm(H.h[i])
        kappa = H.lengths[i] * hn / T
        S[:, i] = H.lengths[i] * stats.vonmises_fisher(H.h[i] / hn, kappa).rvs(n_draw, random_state=rng)
    mabs = np.linalg.norm(S.mean(axis=1), axis=1)
    m_ref, m_err = mabs.mean(), mabs.std(ddof=1) / np.sqrt(n_draw)
    assert abs(r.magnetization[0] - m_ref) < K * np.hypot(r.magnetization_err[0], m_err)
    m2 = np.mean(mabs ** 2)
    chi_ref = 5 * (m2 - m_ref ** 2) / T
    chi_err = 5 / T * np.std(mabs ** 2 - 2 * m_ref * mabs, ddof=1) / np.sqrt(n_draw)
    assert abs(r.susceptibility[0] - chi_ref) < K * np.hypot(r.susceptibility_err[0], chi_err)
    mvec_ref = S.mean(axis=(0, 1))
    assert np.linalg.norm(r.magnetization_vector[0] - mvec_ref) < 0.05


# ----------------------------------------------------------------------------- reduced vs full
@pytest.mark.parametrize("algorithm", ["heatbath", "metropolis", "overrelax", "pt"])
def test_reduced_equals_full_space_small_head(algorithm):
    """A head-like system (N = 5, n = 64, rank 3, causal graph, lengths, per-site fields): every
    observable of the reduced chain within K standard errors of the full-space chain."""
    H = head_like(5, 64, 3, seed=4)
    T = np.array([0.4, 1.2])
    kw = dict(method="mc", algorithm=algorithm, sweeps=6000, seed=2, progress=False, n_chains=2)
    red = ss.solve(H, T=T, **kw)
    full = ss.solve(H, T=T, reduce=False, **{**kw, "seed": 1002})
    assert red.meta["state_space"].startswith("reduced") and full.meta["state_space"].startswith("full")
    for o, z in zscores(red, full).items():
        assert np.all(np.abs(z) < K), f"{algorithm} {o}: z = {z}"
    assert np.linalg.norm(red.magnetization_vector - full.magnetization_vector) < 0.1


def rotary_head(N: int, n: int, r: int, seed: int, field: float = 10.0) -> ss.Hamiltonian:
    """A rotary head as SiteLowRank: A_i = W_Q R_i^T, B_j = W_K R_j^T with R_p the RoPE rotation
    of position p (pairs of head components turned by p theta_q); span(A_i) = span(W_Q) for every
    i, so the reduction has d = 2r. Per-site prompt-like fields and lengths."""
    rng = np.random.default_rng(seed)
    WQ = rng.standard_normal((n, r)) * 0.3
    WK = rng.standard_normal((n, r)) * 0.3
    theta = 10000.0 ** (-np.arange(r // 2) / (r // 2))
    R = np.zeros((N, r, r))
    for p in range(N):
        for q, th in enumerate(theta):
            c, s = np.cos(p * th), np.sin(p * th)
            R[p, 2 * q:2 * q + 2, 2 * q:2 * q + 2] = [[c, -s], [s, c]]
    A = np.einsum("nr,isr->ins", WQ, R)
    B = np.einsum("nr,isr->ins", WK, R)
    X = rng.standard_normal((N, n))
    return ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=SiteLowRank(A, B), spin=ss.Heisenberg(n),
                          h=field * X / np.linalg.norm(X, axis=1, keepdims=True), lengths=rng.uniform(0.6, 1.4, N))


def test_reduced_equals_full_space_rotary_site_low_rank():
    """Position-dependent coupling (SiteLowRank, a rotary head, N = 5, n = 48, rank 4): the shared
    span of every site's factors has d = 2r = 8, so k = 9; every observable within K standard
    errors of the full-space chain."""
    H = rotary_head(5, 48, 4, seed=3)
    sp = reduced_space(H, [H.h])
    assert sp.d == 8 and sp.k == 9
    T = np.array([0.3, 1.0])
    kw = dict(method="mc", sweeps=5000, seed=4, progress=False, n_chains=2)
    red, full = ss.solve(H, T=T, **kw), ss.solve(H, T=T, reduce=False, **{**kw, "seed": kw["seed"] + 1000})
    assert red.meta["state_space"].startswith("reduced: 9 visible")
    for o, z in zscores(red, full).items():
        assert np.all(np.abs(z) < K), f"{o}: z = {z}"


def gpt2_head(layer: int, head: int, N: int, seed: int, field: float = 8.0) -> ss.Hamiltonian:
    """GPT-2 small's real W_Q W_K^T / 8 (n = 768, rank 64) on a causal graph of N sites, with
    per-site prompt-like fields along random token directions and lengths 1-3."""
    from _tiny_models import SHARED_GPT2
    if not (SHARED_GPT2 / "gpt2-small-attention.safetensors").is_file():
        pytest.skip(f"real GPT-2 small weights not present at {SHARED_GPT2}")
    from safetensors.numpy import load_file
    w = load_file(str(SHARED_GPT2 / "gpt2-small-attention.safetensors"))
    key = next(k for k in w if k.endswith(f"h.{layer}.attn.c_attn.weight"))
    c = w[key].astype(np.float64)
    WQ = c[:, head * 64:(head + 1) * 64]
    WK = c[:, 768 + head * 64:768 + (head + 1) * 64]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 768))
    return ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=ss.LowRank(WQ / 8.0, WK), spin=ss.Heisenberg(768),
                          h=field * X / np.linalg.norm(X, axis=1, keepdims=True), lengths=rng.uniform(1.0, 3.0, N))


def test_reduced_equals_full_space_real_gpt2_head():
    """GPT-2 small L3H5 (real weights, n = 768, rank 64; k = 129 visible coordinates per site),
    6 sites with lengths and prompt fields: reduced vs full within K standard errors."""
    H = gpt2_head(3, 5, 6, seed=1)
    T = np.array([1.0, 4.0])
    kw = dict(method="mc", sweeps=2500, seed=6, progress=False, n_chains=2)
    red, full = ss.solve(H, T=T, **kw), ss.solve(H, T=T, reduce=False, **{**kw, "seed": kw["seed"] + 1000})
    assert red.meta["state_space"].startswith("reduced: 129 visible")
    for o, z in zscores(red, full).items():
        assert np.all(np.abs(z) < K), f"{o}: z = {z}"


@pytest.mark.slow
def test_reduced_vs_full_zscores_over_12_seeds():
    """12 seeds x (random n = 64 head, real GPT-2 L3H5 at n = 768) x 2 temperatures x 5
    observables (reduced and full with different seeds): the z-scores of reduced minus full have
    mean ~0 (|mean| < 4 / sqrt(count)) and standard deviation ~1 (within 0.7-1.4: correct error
    bars on both sides, no bias). GPT-2 at 750 sweeps (its full-space n = 768 heat bath is most
    of the test's time; at 750 sweeps its 120 z-scores alone: mean 0.03, std 1.07)."""
    zs = []
    systems = [(head_like(5, 64, 3, seed=4), np.array([0.4, 1.2]), 3000)]
    try:
        systems.append((gpt2_head(3, 5, 6, seed=1), np.array([1.0, 4.0]), 750))
    except pytest.skip.Exception:
        pass
    for H, T, sweeps in systems:
        for seed in range(12):
            kw = dict(method="mc", sweeps=sweeps, seed=100 + seed, progress=False, n_chains=2)
            red, full = ss.solve(H, T=T, **kw), ss.solve(H, T=T, reduce=False, **{**kw, "seed": kw["seed"] + 1000})
            zs += [z for v in zscores(red, full).values() for z in v]
    zs = np.asarray(zs)
    assert abs(zs.mean()) < 4 / np.sqrt(zs.size), f"mean z {zs.mean():.3f} over {zs.size}"
    print(f"12-seed z-scores: {zs.size}, mean {zs.mean():.3f}, std {zs.std():.3f}, max |z| {np.abs(zs).max():.2f}")
    assert 0.7 < zs.std() < 1.4, f"std z {zs.std():.3f} over {zs.size}"
