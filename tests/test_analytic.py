"""Closed forms (``method="analytic"`` and spinsim.solvers.analytic) against independent answers:
elementary functions, scipy Bessel functions, numerical integration over the sphere (scipy
quad, Gauss-Legendre / trapezoid product rules written here), brute-force sums and explicit
Kronecker-product matrices. Tolerances are stated per test.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ellipk, i0, i1, iv

import spinsim as ss
from spinsim.solvers.analytic import (bessel_ratio, heisenberg_chain, kaufman_log_z,
                                      kaufman_thermo, level_crossing_field, log_bessel_i,
                                      log_sphere_area, mean_field, on_spin_in_field,
                                      two_candidate_log_odds)


def langevin(x: np.ndarray) -> np.ndarray:
    """coth x - 1/x; its Taylor series below 0.1 (next term < 1e-16 relative)."""
    x = np.asarray(x, float)
    small = np.abs(x) < 0.1
    out = np.empty_like(x)
    xs = x[small]
    out[small] = xs / 3 - xs ** 3 / 45 + 2 * xs ** 5 / 945 - xs ** 7 / 4725 + 2 * xs ** 9 / 93555
    xl = x[~small]
    out[~small] = 1 / np.tanh(xl) - 1 / xl
    return out


# ----------------------------------------------------------------------------- Bessel ratio
def test_bessel_ratio_n3_is_langevin():
    x = np.concatenate([-np.logspace(-4, 3, 40), np.logspace(-6, 6, 200)])
    np.testing.assert_allclose(bessel_ratio(1.5, x), langevin(x), rtol=2e-13, atol=0)


def test_bessel_ratio_n2_and_n1():
    x = np.linspace(1e-3, 600, 500)
    np.testing.assert_allclose(bessel_ratio(1.0, x), i1(x) / i0(x), rtol=1e-13)
    np.testing.assert_allclose(bessel_ratio(0.5, x), np.tanh(x), rtol=1e-14)
    assert bessel_ratio(1.0, 0.0) == 0.0 and bessel_ratio(1.0, np.inf) == 1.0


@pytest.mark.parametrize("n", [2, 3, 64, 768, 4096])
def test_bessel_ratio_large_x_asymptotics(n):
    x = np.array([100.0, 1e3, 1e4, 1e5]) * n
    R = bessel_ratio(n / 2, x)
    assert np.all(np.abs(R - (1 - (n - 1) / (2 * x))) <= n ** 2 / x ** 2)


@pytest.mark.parametrize("n", [768, 4096])
def test_bessel_ratio_huge_order_whole_range(n):
    x = np.logspace(-3, 5, 2000)
    R = bessel_ratio(n / 2, x)
    assert np.all(np.isfinite(R)) and np.all(R > 0) and np.all(R < 1)
    assert np.all(np.diff(R) > 0)
    # small-x series R = x/n (1 - x^2 / (n (n + 2)) + ...)
    s = x < 1.0
    np.testing.assert_allclose(R[s], x[s] / n * (1 - x[s] ** 2 / (n * (n + 2))), rtol=1e-8)
    # where scipy's iv is representable, the ratio matches it
    mid = (x > 20) & (x < 600)
    with np.errstate(all="ignore"):
        a, b = iv(n / 2, x[mid]), iv(n / 2 - 1, x[mid])
    ok = np.isfinite(a) & np.isfinite(b) & (a > 1e-280) & (b > 1e-280)     # no subnormals
    np.testing.assert_allclose(R[mid][ok], a[ok] / b[ok], rtol=1e-10)


def test_bessel_ratio_continued_fraction_agrees_with_ive():
    from spinsim.special import _ratio_cf

    for nu in (1.0, 1.5, 10.0, 384.0):
        x = np.array([0.1, 1.0, 30.0, 300.0, 2000.0])
        with np.errstate(all="ignore"):
            a, b = iv(nu, x), iv(nu - 1, x)
        ok = (a > 1e-280) & (b > 1e-280) & np.isfinite(a) & np.isfinite(b)
        np.testing.assert_allclose(_ratio_cf(nu, x)[ok], a[ok] / b[ok], rtol=1e-12)


def test_log_bessel_i_matches_scipy_and_series():
    x = np.array([1e-3, 0.5, 3.0, 50.0, 600.0])
    for nu in (0.0, 0.5, 2.0, 30.0):
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(log_bessel_i(nu, x), np.log(iv(nu, x)), rtol=1e-12, atol=1e-15)
    # ive underflows for nu = 383 at small x: the series takes over, continuous with ive
    nu = 383.0
    xs = np.array([1e-3, 1.0, 30.0])
    lead = nu * np.log(xs / 2) - np.sum(np.log(np.arange(1, 384)))   # (x/2)^nu / Gamma(nu+1)
    np.testing.assert_allclose(log_bessel_i(nu, xs[:1]), lead[:1], rtol=1e-12)
    a, b = log_bessel_i(nu, np.array([200.0, 200.0 * (1 + 1e-9)]))
    assert np.isfinite(a) and abs(b - a) < 1e-5
    with pytest.raises(ValueError, match="x >= 0"):
        log_bessel_i(1.0, -1.0)
    with pytest.raises(ValueError, match="nu >= 1/2, got nu=0.2"):
        bessel_ratio(0.2, 1.0)


# ----------------------------------------------------------------------------- one spin
def sphere_average_n3(kappa: float) -> dict[str, float]:
    """int over S^2 (cos theta = c) by 80-point Gauss-Legendre (exact to round-off for these
    entire integrands): Z, <c>, <c^2>."""
    c, w = np.polynomial.legendre.leggauss(80)
    f = [w @ (c ** p * np.exp(kappa * c)) for p in (0, 1, 2)]
    return {"Z": 2 * np.pi * f[0], "c1": f[1] / f[0], "c2": f[2] / f[0]}


@pytest.mark.parametrize("beta,b,m", [(2.0, 1.3, 1.1), (0.5, 0.7, 1.0), (10.0, 3.0, 0.5), (1.0, 1e-9, 1.0)])
def test_on_spin_in_field_n3_against_quadrature(beta, b, m):
    o = on_spin_in_field(3, beta, b, m)
    q = sphere_average_n3(beta * m * b)
    assert o["log_Z"] == pytest.approx(np.log(q["Z"]), rel=1e-12)
    assert o["projection"] == pytest.approx(m * q["c1"], rel=1e-10, abs=1e-15)
    assert o["energy"] == pytest.approx(-m * b * q["c1"], rel=1e-10, abs=1e-15)
    C = (beta * m * b) ** 2 * (q["c2"] - q["c1"] ** 2)          # beta^2 Var E
    assert o["heat_capacity"] == pytest.approx(C, rel=1e-8, abs=1e-15)
    assert o["parallel_second_moment"] == pytest.approx(q["c2"], rel=1e-10)
    assert o["transverse_second_moment"] == pytest.approx((1 - q["c2"]) / 2, rel=1e-10)


def test_on_spin_in_field_n2_and_n1_and_heat_capacity_derivative():
    kappa = 1.7
    Z2 = integrate.quad(lambda t: np.exp(kappa * np.cos(t)), 0, 2 * np.pi, epsrel=1e-13)[0]
    c1 = integrate.quad(lambda t: np.cos(t) * np.exp(kappa * np.cos(t)), 0, 2 * np.pi, epsrel=1e-13)[0] / Z2
    o = on_spin_in_field(2, 1.0, kappa)
    assert o["log_Z"] == pytest.approx(np.log(Z2), rel=1e-12)
    assert o["projection"] == pytest.approx(c1, rel=1e-12)
    o1 = on_spin_in_field(1, 0.8, 1.5)
    assert o1["projection"] == pytest.approx(np.tanh(1.2), rel=1e-14)
    assert o1["log_Z"] == pytest.approx(np.log(2 * np.cosh(1.2)), rel=1e-14)
    # C = d<E>/dT by central differences, n = 5
    T, dT = 0.9, 1e-5
    E = lambda t: on_spin_in_field(5, 1 / t, 2.0)["energy"]   # noqa: E731
    C_fd = (E(T + dT) - E(T - dT)) / (2 * dT)
    assert on_spin_in_field(5, 1 / T, 2.0)["heat_capacity"] == pytest.approx(C_fd, rel=1e-8)
    # huge n at small kappa: <cos> = kappa/n, C = kappa^2/n to leading order
    o = on_spin_in_field(768, 1e-3, 1.0)
    assert o["projection"] == pytest.approx(1e-3 / 768, rel=1e-6)
    assert o["heat_capacity"] == pytest.approx(1e-6 / 768, rel=1e-5)
    assert on_spin_in_field(3, 0.0, 1.0)["log_Z"] == pytest.approx(np.log(4 * np.pi), rel=1e-15)


# ----------------------------------------------------------------------------- chains
def test_heisenberg_chain_n3_closed_form():
    T = np.array([0.3, 1.0, 4.0])
    N, J = 6, 1.3
    ch = heisenberg_chain(3, T, J, N=N)
    K = J / T
    np.testing.assert_allclose(ch["log_Z"], N * np.log(4 * np.pi) + (N - 1) * np.log(np.sinh(K) / K), rtol=1e-13)
    np.testing.assert_allclose(ch["energy"], -(N - 1) * J * langevin(K), rtol=1e-13)
    np.testing.assert_allclose(ch["heat_capacity"], (N - 1) * (1 - (K / np.sinh(K)) ** 2), rtol=1e-11)


def test_heisenberg_chain_n3_two_sites_quadrature():
    for T in (0.4, 1.0, 3.0):
        K = 1.0 / T
        Z = 4 * np.pi * 2 * np.pi * integrate.quad(lambda c: np.exp(K * c), -1, 1, epsrel=1e-13)[0]
        assert heisenberg_chain(3, T, 1.0, N=2)["log_Z"][0] == pytest.approx(np.log(Z), rel=1e-12)


def _xy_chain3(J1: float, J2: float, T: float, n_grid: int = 64) -> dict[str, float]:
    """Open 3-site XY chain by the trapezoid rule on the torus of angles (spectral accuracy);
    theta_1 = 0 by rotation invariance (factor 2 pi)."""
    t = 2 * np.pi * np.arange(n_grid) / n_grid
    t2, t3 = np.meshgrid(t, t, indexing="ij")
    s = [np.stack([np.ones_like(t2), np.zeros_like(t2)]), np.stack([np.cos(t2), np.sin(t2)]),
         np.stack([np.cos(t3), np.sin(t3)])]
    E = -J1 * np.cos(t2) - J2 * np.cos(t3 - t2)
    w = np.exp(-E / T)
    dA = (2 * np.pi / n_grid) ** 2
    Z = 2 * np.pi * w.sum() * dA
    p = w / w.sum()
    e = (p * E).sum()
    Mv = s[0] + s[1] + s[2]
    m2 = (p * (Mv ** 2).sum(0)).sum() / 9
    return {"log_Z": np.log(Z), "E": e, "C": (p * (E - e) ** 2).sum() / T ** 2, "m2": m2}


def test_xy_chain_bond_dependent_against_quadrature():
    J = np.array([1.0, -0.6])
    for T in (0.5, 1.5):
        ch = heisenberg_chain(2, T, J)
        q = _xy_chain3(*J, T)
        assert ch["log_Z"][0] == pytest.approx(q["log_Z"], rel=1e-12)
        assert ch["energy"][0] == pytest.approx(q["E"], rel=1e-11)
        assert ch["heat_capacity"][0] == pytest.approx(q["C"], rel=1e-10)


def _sphere_grid(n_theta: int = 40, n_phi: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and weights of a product rule on S^2 (Gauss-Legendre in cos theta)."""
    c, wc = np.polynomial.legendre.leggauss(n_theta)
    ph = 2 * np.pi * np.arange(n_phi) / n_phi
    C, P = np.meshgrid(c, ph, indexing="ij")
    sn = np.sqrt(1 - C ** 2)
    pts = np.stack([sn * np.cos(P), sn * np.sin(P), C], axis=-1).reshape(-1, 3)
    w = (wc[:, None] * np.full(n_phi, 2 * np.pi / n_phi)[None, :]).reshape(-1)
    return pts, w


def test_single_free_heisenberg_site_in_frozen_bath_against_quadrature():
    rng = np.random.default_rng(1)
    N, n = 4, 3
    W = np.tril(rng.uniform(0.3, 1.0, (N, N)), -1)
    M = rng.standard_normal((n, n))
    frozen = np.array([True, True, False, True])
    state = rng.standard_normal((N, n))
    state /= np.linalg.norm(state, axis=1, keepdims=True)
    lengths = np.array([1.0, 2.0, 1.5, 0.7])
    state *= lengths[:, None]
    H = ss.Hamiltonian(W, M=M, spin="heisenberg", h=rng.standard_normal((N, n)) * 0.4, lengths=lengths,
                       frozen=frozen, state=state)
    u = np.array([0.3, -1.0, 0.5])
    T = np.array([0.3, 1.0, 3.0])
    res = ss.solve(H, T, method="analytic", direction=u)
    pts, w = _sphere_grid()
    E = np.empty(pts.shape[0])
    for a, sig in enumerate(pts):
        S = state.copy()
        S[2] = 1.5 * sig
        E[a] = H.energy(S)
    proj = 1.5 * pts @ u
    for t, temp in enumerate(T):
        q = w * np.exp(-(E - E.min()) / temp)
        Z = q.sum()
        p = q / Z
        e = p @ E
        assert res.log_Z[t] == pytest.approx(np.log(Z) - E.min() / temp, rel=1e-10)
        assert res.energy[t] == pytest.approx(e, rel=1e-10)
        assert res.specific_heat[t] == pytest.approx(p @ (E - e) ** 2 / temp ** 2, rel=1e-8)
        assert res.projection[t] == pytest.approx(p @ proj, rel=1e-9)
        assert res.projection_susceptibility[t] == pytest.approx((p @ proj ** 2 - (p @ proj) ** 2) / temp, rel=1e-8)
        np.testing.assert_allclose(res.magnetization_vector[t], 1.5 * (p @ pts), atol=1e-10)
    np.testing.assert_allclose(res.magnetization, 1.5)
    np.testing.assert_allclose(res.susceptibility, 0.0)
    np.testing.assert_allclose(res.binder, 2 / 5)


def test_open_chain_solver_matches_closed_form_and_quadrature():
    H = ss.chain("xy", 3, J=1.0, periodic=False)
    T = np.array([0.5, 1.5])
    res = ss.solve(H, T, method="analytic", direction=[1.0, 0.0])
    for t, temp in enumerate(T):
        q = _xy_chain3(1.0, 1.0, temp)
        assert res.log_Z[t] == pytest.approx(q["log_Z"], rel=1e-12)
        assert res.energy[t] == pytest.approx(q["E"] / 3, rel=1e-11)
        assert res.specific_heat[t] == pytest.approx(q["C"] / 3, rel=1e-10)
        assert res.meta["mean_m2"][t] == pytest.approx(q["m2"], rel=1e-11)
        # <m_x^2> = <|m|^2> / n by isotropy; projection <m_x> = 0
        assert res.projection_susceptibility[t] == pytest.approx(3 * q["m2"] / 2 / temp, rel=1e-11)
    assert np.all(np.isnan(res.magnetization))
    assert res.meta["not_available"] == ["magnetization", "susceptibility", "binder"]
    np.testing.assert_array_equal(res.projection, 0.0)
    # any site order along the path, bond weights and lengths
    W = np.zeros((4, 4))
    W[2, 0], W[0, 3], W[3, 1] = 1.0, 0.5, -2.0
    H2 = ss.Hamiltonian(W, M=ss.Identity(3, 1.2), spin="heisenberg", lengths=[1.0, 2.0, 1.0, 0.5])
    r2 = ss.solve(H2, T, method="analytic")
    Jb = 1.2 * np.array([1.0 * 1.0 * 1.0, 0.5 * 1.0 * 0.5, -2.0 * 0.5 * 2.0])
    ch = heisenberg_chain(3, T, Jb)
    np.testing.assert_allclose(r2.energy, ch["energy"] / 4, rtol=1e-14)


def test_analytic_refuses_structures_without_closed_form():
    with pytest.raises(ValueError, match="no closed form for .*ising.*use method='exact' or 'mc'"):
        ss.solve(ss.chain("ising", 4), 1.0, method="analytic")
    with pytest.raises(ValueError, match="no closed form for .*heisenberg_chain_5_pbc"):
        ss.solve(ss.chain("heisenberg", 5), 1.0, method="analytic")
    with pytest.raises(ValueError, match="no closed form"):
        ss.solve(ss.chain("heisenberg", 5, periodic=False, h=np.array([0, 0, 0.1])), 1.0, method="analytic")


# ----------------------------------------------------------------------------- candidates
def test_two_candidate_log_odds_matches_exact_probe():
    rng = np.random.default_rng(4)
    n = 6
    cand = rng.standard_normal((2, n))
    bath = rng.standard_normal((3, n))
    H = ss.Hamiltonian(ss.causal(4), M=rng.standard_normal((n, n)), spin=ss.Discrete(cand),
                       frozen=[True, True, True, False], state=np.vstack([bath, cand[:1]]))
    E = []
    for a in range(2):
        S = H.state.copy()
        S[3] = cand[a]
        E.append(H.energy(S))
    # direction u with u.A = 1, u.B = 0 makes the projection the probability of A
    u = np.linalg.lstsq(cand, np.array([1.0, 0.0]), rcond=None)[0]
    T = np.array([2.0, 4.0, 8.0])       # moderate odds: 1 - p_A keeps its digits
    res = ss.solve(H, T, method="exact", direction=u)
    pA = res.projection
    np.testing.assert_allclose(np.log(pA / (1 - pA)), two_candidate_log_odds(E[0], E[1], T), rtol=1e-10)


def test_level_crossing_field():
    rng = np.random.default_rng(8)
    cand = rng.standard_normal((2, 3))
    H0 = ss.Hamiltonian(ss.causal(3), M=rng.standard_normal((3, 3)), spin=ss.Discrete(cand),
                        frozen=[True, True, False], state=np.vstack([rng.standard_normal((2, 3)), cand[:1]]))
    u = np.array([1.0, 0.0, 0.0])

    def E(a: int, h: float) -> float:
        S = H0.state.copy()
        S[2] = cand[a]
        return float(H0.energy(S) - h * u @ cand[a])

    hs = level_crossing_field(E(0, 0), E(1, 0), u @ cand[0], u @ cand[1])
    assert E(0, hs) == pytest.approx(E(1, hs), abs=1e-12)
    with pytest.raises(ValueError, match="same projection"):
        level_crossing_field(0.0, 1.0, 0.5, 0.5)


# ----------------------------------------------------------------------------- mean field
@pytest.mark.parametrize("kind,n", [("ising", 1), ("xy", 2), ("heisenberg", 3)])
def test_mean_field_curie_weiss(kind, n):
    N, J = 12, 2.0
    mf = mean_field(ss.complete_graph(kind, N, J=J))
    assert mf.T_c == pytest.approx(J * (N - 1) / (N * n), rel=1e-12)
    assert mf.T_c_separable == pytest.approx(mf.T_c, rel=1e-12)
    assert mf.ferro_energy == pytest.approx(-(J / N) * N * (N - 1) / 2, rel=1e-12)
    assert mf.response == pytest.approx(1 / n)


def test_mean_field_ferro_energy_is_exact_ground_state():
    H = ss.complete_graph("ising", 10, J=1.0)
    mf = mean_field(H)
    ex = ss.solve(H, 1.0, method="exact")
    assert mf.ferro_energy == pytest.approx(ex.ground_energy, rel=1e-12)
    # general M: E = -(sum W) u^T M_s u with u the top eigenvector of M_s
    rng = np.random.default_rng(0)
    M = rng.standard_normal((4, 4))
    H = ss.Hamiltonian(ss.causal(5) * 0.3, M=M, spin="heisenberg")
    mf = mean_field(H)
    Ms = (M + M.T) / 2
    lam = np.linalg.eigvalsh(Ms)[-1]
    assert mf.ferro_energy == pytest.approx(-(0.3 * 10) * lam, rel=1e-12)
    assert mf.ferro_direction @ Ms @ mf.ferro_direction == pytest.approx(lam, rel=1e-12)


def _kron_tc(W: np.ndarray, M: np.ndarray, c: float) -> float:
    L = np.kron(W, M) + np.kron(W.T, M.T)
    return c * np.linalg.eigvalsh(L)[-1]


def test_mean_field_tc_general_coupling_against_kron_and_iteration():
    rng = np.random.default_rng(3)
    N, n = 6, 3
    W = ss.causal(N) * rng.uniform(0.5, 1.0, (N, N))
    M = np.eye(n) + 0.4 * rng.standard_normal((n, n))
    H = ss.Hamiltonian(W, M=M, spin="heisenberg")
    mf = mean_field(H)
    assert mf.T_c == pytest.approx(_kron_tc(W, M, 1 / n), rel=1e-12)

    def iterate(T: float) -> float:
        """Damped mean-field iteration <S_i> = R_{n/2}(beta |phi_i|) phi_i/|phi_i| from a small seed."""
        X = 1e-3 * rng.standard_normal((N, n))
        for _ in range(4000):
            Phi = W @ X @ M.T + W.T @ X @ M
            nr = np.linalg.norm(Phi, axis=1, keepdims=True)
            X = 0.5 * X + 0.5 * bessel_ratio(n / 2, nr / T) * Phi / np.where(nr > 0, nr, 1)
        return float(np.abs(X).max())

    assert iterate(0.9 * mf.T_c) > 0.05
    assert iterate(1.1 * mf.T_c) < 1e-8


def test_mean_field_large_operator_uses_iterative_eigensolver():
    rng = np.random.default_rng(6)
    N, n, r = 20, 80, 4          # N n = 1600 > 1500: the LinearOperator / eigsh branch
    A, B = rng.standard_normal((n, r)) / 4, rng.standard_normal((n, r)) / 4
    W = ss.causal(N) / N
    H = ss.Hamiltonian(W, M=ss.LowRank(A, B), spin="heisenberg", lengths=rng.uniform(0.5, 2, N))
    mf = mean_field(H)
    m = H.lengths
    assert mf.T_c == pytest.approx(_kron_tc(W * np.outer(m, m), A @ B.T, 1 / n), rel=1e-8)


def test_mean_field_discrete_potts():
    a = 2 * np.pi * np.arange(3) / 3
    V = np.stack([np.cos(a), np.sin(a)], axis=1)
    H = ss.Hamiltonian(np.triu(np.ones((5, 5)), 1), M=ss.Identity(2, 1.0), spin=ss.Discrete(V))
    mf = mean_field(H)
    assert mf.response == pytest.approx(0.5)          # <V V^T> over the 3 states = 1/2
    assert mf.T_c == pytest.approx(0.5 * 4, rel=1e-12)
    with pytest.raises(ValueError, match="zero-mean discrete vectors"):
        mean_field(ss.Hamiltonian(np.triu(np.ones((3, 3)), 1), M=ss.Identity(2, 1.0), spin=ss.Discrete(V + 1)))


# ----------------------------------------------------------------------------- Kaufman
def torus_energies(L: int, M: int) -> np.ndarray:
    """Energies of all 2^(L M) states of the L x M Ising torus, J = 1 (2 L M bonds)."""
    N = L * M
    s = 1 - 2 * ((np.arange(2 ** N)[:, None] >> np.arange(N)) & 1)
    E = np.zeros(2 ** N)
    for r, c in itertools.product(range(L), range(M)):
        i = r * M + c
        E -= s[:, i] * s[:, ((r + 1) % L) * M + c] + s[:, i] * s[:, r * M + (c + 1) % M]
    return E


def test_kaufman_against_brute_force_tori():
    for L, M in [(4, 4), (3, 5), (2, 4)]:
        N = L * M
        E = torus_energies(L, M)
        for T in (0.9, 2.269185314213022, 5.0):
            w = np.exp(-(E - E.min()) / T)
            p = w / w.sum()
            k = kaufman_thermo(L, M, T)
            assert k["log_Z"][0] == pytest.approx(np.log(w.sum()) - E.min() / T, abs=1e-10)
            assert k["energy"][0] == pytest.approx(p @ E / N, abs=1e-10)
            assert k["specific_heat"][0] == pytest.approx(p @ (E - p @ E) ** 2 / (T ** 2 * N), abs=1e-10)


def test_kaufman_large_lattice_finite_and_near_onsager():
    # L = M = 256 at T -> 0 and high T: no overflow; energy near Onsager's infinite-lattice value
    T = np.array([0.5, 2.0, 2.269185314213022, 3.0, 50.0])
    k = kaufman_thermo(256, 256, T)
    assert np.all(np.isfinite(k["log_Z"])) and np.all(np.isfinite(k["specific_heat"]))
    assert k["energy"][0] == pytest.approx(-2.0, abs=1e-6)
    # off T_c the 256 x 256 torus equals Onsager's infinite lattice to exponential accuracy:
    # u = -J coth 2K [1 + (2/pi)(2 tanh^2 2K - 1) K1(k)], k = 2 sinh 2K / cosh^2 2K
    for t in (0, 1, 3, 4):
        K = 1 / T[t]
        kk = 2 * np.sinh(2 * K) / np.cosh(2 * K) ** 2
        u = -1 / np.tanh(2 * K) * (1 + 2 / np.pi * (2 * np.tanh(2 * K) ** 2 - 1) * ellipk(kk ** 2))
        assert k["energy"][t] == pytest.approx(u, abs=1e-10)
    assert k["energy"][2] == pytest.approx(-np.sqrt(2), abs=5e-3)    # u(T_c) = -sqrt(2) J, O(1/L)
    # kaufman_log_z itself (array beta) against the brute-force sum over the 2^16 states, abs 1e-10
    E = torus_energies(4, 4)
    beta = np.array([0.2, 1.0, 2.5])
    ref = np.log(np.exp(-np.outer(beta, E - E.min())).sum(axis=1)) - beta * E.min()
    np.testing.assert_allclose(kaufman_log_z(4, 4, beta), ref, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="sides >= 2; got L=1"):
        kaufman_log_z(1, 4, 1.0)
    with pytest.raises(ValueError, match="J > 0, got J=-1"):
        kaufman_log_z(4, 4, 1.0, J=-1.0)


def test_log_sphere_area():
    assert np.exp(log_sphere_area(3)) == pytest.approx(4 * np.pi)
    assert np.exp(log_sphere_area(2)) == pytest.approx(2 * np.pi)
    assert np.exp(log_sphere_area(1)) == pytest.approx(2.0)
