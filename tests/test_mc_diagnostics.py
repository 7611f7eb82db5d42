"""Monte Carlo at the extremes (issue 16 item 3): Ising Metropolis at T = 1e6, Wolff with
single-site clusters, the short-run warning rule on a chain with a known tau_int, centred
variances, and the rank-normalised split R-hat against ArviZ."""
from __future__ import annotations

import numpy as np
import pytest

import spinsim as ss

from spinsim.observables import (MIN_MEAS, MIN_TAU_MULTIPLE, rhat_pvalue, split_rhat, run_warnings,
                                 thermodynamics)


def _ar1(rng: np.random.Generator, rho: float, n_chains: int, n: int) -> np.ndarray:
    """Stationary AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) eps_t (unit variance):
    a Markov chain with tau_int = (1 + rho) / (2 (1 - rho)) exactly."""
    x = np.empty((n_chains, n))
    x[:, 0] = rng.standard_normal(n_chains)
    eps = rng.standard_normal((n_chains, n)) * np.sqrt(1 - rho * rho)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + eps[:, t]
    return x


def _short_warned(x: np.ndarray) -> tuple[bool, float, float]:
    th = thermodynamics(E=x, mabs=np.abs(x), mu=x, T=1.0, n_free=1, n_comp=1)
    w = run_warnings(th, x.shape[0], 1.0)
    return any("run too short" in s for s in w), th.estimates["energy_err"], th.tau_int


def test_short_runs_are_warned_every_time_on_a_known_tau_int():
    """AR(1) with rho = 0.8 (tau_int = 4.5 sweeps): 64 measurements are 14 tau_int, under the
    rule's 50 (and under its 100 measurements: 2 of 100 runs estimate tau_int < 1.3): all 100
    runs must warn (before: 99 of 100 gave no warning while their error bars
    were 10-30 % too small). Long runs (20,000 = 4,400 tau_int) warn in at most 3 of 100 and
    their mean error bar is within 10 % of the true sqrt(2 tau var / n)."""
    rng = np.random.default_rng(16)
    rho = 0.8
    tau = (1 + rho) / (2 * (1 - rho))
    assert 64 < MIN_TAU_MULTIPLE * tau and 64 < MIN_MEAS
    short = [_short_warned(_ar1(rng, rho, 1, 64))[0] for _ in range(100)]
    assert sum(short) == 100
    long = [_short_warned(_ar1(rng, rho, 1, 20000)) for _ in range(100)]
    assert sum(w for w, _, _ in long) <= 3
    true_err = np.sqrt(2 * tau / 20000)
    assert abs(np.mean([e for _, e, _ in long]) / true_err - 1) < 0.10
    assert abs(np.mean([t for _, _, t in long]) / tau - 1) < 0.10


def test_variances_are_centred_no_cancellation_at_huge_energies():
    """E = 1e12 + unit noise: C = var(E)/T^2 to 1e-6 (before: 0 +- 1e10); a constant E = 1e150:
    C exactly 0 (before: 5e285)."""
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((2, 4000))
    E = 1e12 + noise
    m = np.abs(rng.standard_normal((2, 4000)))
    th = thermodynamics(E, m, m, T=1.0, n_free=1, n_comp=1)
    np.testing.assert_allclose(th.estimates["specific_heat"], np.var(noise), rtol=1e-3)
    assert th.estimates["specific_heat_err"] < 0.1
    const = np.full((2, 1000), 1e150)
    th = thermodynamics(const, m[:, :1000], m[:, :1000], T=0.5, n_free=4, n_comp=1)
    assert th.estimates["specific_heat"] == 0.0 and th.estimates["specific_heat_err"] == 0.0
    assert th.estimates["energy"] == 1e150 / 4


@pytest.mark.parametrize("case, want", [
    ("shifted", 1.012294726177771), ("walks", 1.385421455738746), ("exponential", 1.0050814023418049)])
def test_split_rhat_equals_arviz(case, want):
    """Reference: ArviZ 0.23.4 ``az.rhat(x, method="rank")`` on the same arrays (seed 7)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 200))
    x[1] += 0.3
    y = np.cumsum(rng.standard_normal((2, 301)), axis=1)
    z = rng.standard_exponential((3, 100))
    z[2] *= 1.5
    data = {"shifted": x, "walks": y, "exponential": z}[case]
    assert split_rhat(data) == pytest.approx(want, rel=1e-12)


def test_average_ranks_are_scipys_with_ties_and_nan():
    """The ranks behind split R-hat equal scipy.stats.rankdata(method="average") exactly: ties (an
    Ising |m| takes few values), continuous draws, a NaN (scipy's propagation), a single value."""
    from scipy.stats import rankdata

    from spinsim.observables import average_ranks

    rng = np.random.default_rng(0)
    ties = rng.integers(0, 5, (3, 40)).astype(float)
    cont = rng.normal(size=(2, 50))
    nan = cont.copy()
    nan[1, 7] = np.nan
    for x in (ties, cont, nan, np.array([[2.5]])):
        np.testing.assert_array_equal(average_ranks(x), rankdata(x, method="average").reshape(x.shape))


def test_split_rhat_flags_disagreeing_chains_and_passes_agreeing_ones():
    rng = np.random.default_rng(1)
    agree = _ar1(rng, 0.5, 4, 4000)
    assert split_rhat(agree) < 1.01
    apart = agree.copy()
    apart[0] += 0.5                          # one chain stuck half a standard deviation away
    assert split_rhat(apart) > 1.01
    th = thermodynamics(apart, np.abs(apart), apart, T=1.0, n_free=1, n_comp=1)
    assert any("split R-hat" in s for s in run_warnings(th, 4, 1.0))
    assert split_rhat(np.ones((2, 100))) == 1.0
    assert np.isnan(split_rhat(np.zeros((1, 6))))


# ----------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("n_chains,rho", [(1, 0.0), (3, 0.0), (2, 0.6)])
def test_rhat_pvalue_follows_its_chi_square_law(n_chains, rho):
    """rhat_pvalue's law (Gelman & Rubin 1992): for stationary chains with the true tau_int the
    Gelman-Rubin R-hat of the 2 n_chains half-chains gives p-values uniform on [0, 1]: KS test
    over 600 runs of 400 draws (p > 0.001), and P(p < 0.05) within 3 binomial errors of 0.05."""
    from scipy.stats import kstest
    from spinsim.observables import _rhat

    rng = np.random.default_rng(11 + n_chains)
    tau = (1 + rho) / (2 * (1 - rho))
    ps = []
    for _ in range(600):
        x = _ar1(rng, rho, n_chains, 400)
        ps.append(float(rhat_pvalue(_rhat(np.concatenate([x[:, :200], x[:, 200:]])), 400, n_chains, tau)))
    ps = np.array(ps)
    assert kstest(ps, "uniform").pvalue > 1e-3
    assert abs(np.mean(ps < 0.05) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / ps.size)
    with pytest.raises(ValueError, match="n_meas=6"):
        rhat_pvalue(1.0, 6, 1, 1.0)


def test_thermo_rhat_pvalue_tests_each_series_against_its_own_tau():
    """Stationary chains whose m_u decorrelates slowly (AR(1), rho = 0.98, tau_int ~50) while E
    and |m| are white: Thermo.rhat_pvalue (each R-hat against its own series' tau_int) is small
    (< 0.01) in at most 4 of 40 runs; the largest R-hat tested against E's tau_int (the atlas
    rule before, which flagged the ordered Curie-Weiss points) is in at least 30 of them."""
    from spinsim.observables import thermodynamics

    rng = np.random.default_rng(5)
    new, old = 0, 0
    for _ in range(40):
        E = rng.standard_normal((4, 2000))
        m = 1.0 + 0.1 * rng.standard_normal((4, 2000))
        mu = _ar1(rng, 0.98, 4, 2000)
        th = thermodynamics(E, m, mu, 1.0, 16, 3)
        new += th.rhat_pvalue < 0.01
        old += float(rhat_pvalue(th.estimates["rhat"], 2000, 4, th.tau_int)) < 0.01
    assert new <= 4 and old >= 30, (new, old)


def test_ising_metropolis_at_very_high_temperature_samples_independent_spins():
    """T = 1e6: the exact |m| is that of 8 independent spins (to ~1e-6). Before: every spin
    flipped every sweep (always-flip proposal, acceptance ~1): |m| frozen at its initial value
    with zero error. Now within 4 standard errors, and the error is not zero."""
    H = ss.chain("ising", 8)
    ref = ss.solve(H, 1e6, method="exact")
    res = ss.solve(H, 1e6, method="mc", algorithm="metropolis", sweeps=4000, seed=3, progress=False)
    err = res.magnetization_err[0]
    assert err > 0.001
    assert abs(res.magnetization[0] - ref.magnetization[0]) < 4 * err
    assert abs(res.energy[0] - ref.energy[0]) < 4 * res.energy_err[0]


@pytest.mark.parametrize("W, T", [(np.zeros((4, 4)), 1.0), (ss.chain("ising", 4).W_dense, 1e3)])
def test_wolff_with_single_site_clusters_is_ergodic(W, T):
    """Four Ising spins with zero couplings (T = 1), or a ring of 4 at T = 1e3: every Wolff
    cluster is one site, 4 clusters per sweep. |m| and E within 4 standard errors of exact
    enumeration (0.375 for independent spins). Before: a fixed even number of flips per sweep
    kept the parity of the down spins: |m| = 0.5 with zero error at zero coupling."""
    H = ss.Hamiltonian(W, M=1.0, spin="ising")
    ref = ss.solve(H, T, method="exact")
    res = ss.solve(H, T, method="mc", algorithm="wolff", sweeps=3000, seed=5, progress=False)
    assert res.meta["mean_cluster_fraction"][0] < 0.3
    assert res.magnetization_err[0] > 0.001
    assert abs(res.magnetization[0] - ref.magnetization[0]) < 4 * res.magnetization_err[0]
    assert abs(res.energy[0] - ref.energy[0]) <= 4 * res.energy_err[0]

def _metastable_head(seed: int = 0, J: float = 10.0) -> tuple[ss.Hamiltonian, np.ndarray]:
    """A small head system: N = 6 causal sites, n = 48 components, a rank-3 coupling M = A A^T
    whose top direction u orders the sites at T = 0.3 (two ordered states +-u, split by a field
    0.3 u), site lengths 0.8..1.2 and prompt fields 0.3 x_i/|x_i|; the ordered states are
    separated by a barrier ~ 15 J m^2 >> T. Returns H and u."""
    rng = np.random.default_rng(seed)
    n, N = 48, 6
    Q, _ = np.linalg.qr(rng.standard_normal((n, 3)))
    A = Q * np.sqrt(np.array([J, 0.3 * J, 0.1 * J]))
    x = rng.standard_normal((N, n))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    H = ss.Hamiltonian(ss.causal(N), M=ss.LowRank(A, A), h=0.3 * x + 0.3 * Q[:, 0], spin="heisenberg",
                       n_comp=n, lengths=rng.uniform(0.8, 1.2, N))
    return H, Q[:, 0]


def _dispersed_starts(H: ss.Hamiltonian, u: np.ndarray, n_T: int, n_chains: int) -> np.ndarray:
    """Over-dispersed starts (Gelman & Rubin): chains 0, 1 ordered along +u, chains 2, 3 along -u
    (replica chain * n_T + t)."""
    S = np.empty((n_chains * n_T, H.n_sites, H.n_comp))
    for c in range(n_chains):
        S[c * n_T:(c + 1) * n_T] = (1 if c < n_chains // 2 else -1) * H.lengths[:, None] * u[None, :]
    return S


def test_split_rhat_flags_metastable_heat_bath_chains_that_tempering_mixes():
    """Four heat-bath chains at T = 0.3 from over-dispersed starts stay in the ordered state they
    start in: each chain alone looks converged, their energies disagree, R-hat >> 1.01 and a
    warning. Parallel tempering (16 temperatures 0.3..3) mixes them: R-hat at T = 0.3 below 1.01
    and no R-hat warning there."""
    H, u = _metastable_head()
    hb = ss.solve(H, [0.3], method="mc", algorithm="heatbath", sweeps=2000, n_chains=4, seed=1, progress=False,
                  init=_dispersed_starts(H, u, 1, 4))
    assert hb.rhat[0] > 1.01
    assert any("split R-hat" in w for w in hb.meta["warnings"])
    T = np.geomspace(0.3, 3.0, 16)
    pt = ss.solve(H, T, method="mc", algorithm="pt", sweeps=4000, n_chains=4, seed=1, progress=False,
                  init=_dispersed_starts(H, u, T.size, 4))
    assert pt.rhat[0] < 1.01
    assert not any(w.startswith("T=0.3:") and "split R-hat" in w for w in pt.meta["warnings"])
