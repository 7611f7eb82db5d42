"""The atlas machinery on systems with known answers, given as "heads" with a size axis:
the 2D Ising model (Onsager T_c from Binder crossings, within 1 %) and the Curie-Weiss complete
graph (mean-field T_c, and the Binder cumulant and its crossing against the exact finite-N
values from the binomial sum over the magnetisation)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln

from spinsim.analysis.atlas_run import FixedSystems, run_atlas
from spinsim.analysis.atlas_summary import summarize
from spinsim.analysis.boundaries import crossing
from spinsim.lattices import complete_graph, square

ONSAGER_TC = 2.0 / np.log(1.0 + np.sqrt(2.0))      # 2.269185...


@pytest.mark.slow
def test_ising2d_binder_crossing_gives_onsager_within_1_percent():
    src = FixedSystems({"ising2d": {8: square("ising", 8), 16: square("ising", 16)}})
    a = run_atlas(src, np.linspace(2.21, 2.33, 7), [0.0], sweeps=2000, max_sweeps=4000, n_chains=4,
                  algorithm="wolff", progress=False, seed=1)
    s = summarize(a)
    assert s["T_c_method"][0] == "binder"
    assert not a.flagged.any()
    assert abs(s["T_c"][0] - ONSAGER_TC) < 0.01 * ONSAGER_TC
    assert s["T_c_err"][0] < 0.01 * ONSAGER_TC
    assert s["T_mf"][0] == pytest.approx(4.0)          # z J of the square lattice
    assert s["kind"][0] == "uniform"                    # <|m|> > 0.5 at T = 2.21 < T_c


def curie_weiss_binder(N: int, T: np.ndarray) -> np.ndarray:
    """Exact U_N(T) = 1 - <m^4>/(3 <m^2>^2) of H = -(1/N) sum_{i<j} s_i s_j: the energy is
    -(M^2 - N)/(2N) for magnetisation M = 2k - N, with binom(N, k) states."""
    k = np.arange(N + 1)
    M = 2 * k - N
    m = M / N
    out = []
    for t in np.atleast_1d(T):
        lw = gammaln(N + 1) - gammaln(k + 1) - gammaln(N - k + 1) + M ** 2 / (2 * N * t)
        w = np.exp(lw - lw.max())
        w /= w.sum()
        out.append(1 - (w @ m ** 4) / (3 * (w @ m ** 2) ** 2))
    return np.array(out)


@pytest.mark.slow
def test_curie_weiss_binder_value_and_crossing_against_exact_finite_N():
    sizes = (16, 32, 64)
    T = np.linspace(0.9, 1.1, 5)
    src = FixedSystems({"cw": {N: complete_graph("ising", N) for N in sizes}})
    a = run_atlas(src, T, [0.0], sweeps=2000, max_sweeps=4000, n_chains=4, algorithm="metropolis",
                  progress=False, seed=2)
    s = summarize(a)
    # mean field of the Curie-Weiss graph: T_c = J (N - 1) / N
    np.testing.assert_allclose(a.facts["T_mf"][0, :, 0], [(N - 1) / N for N in sizes], rtol=1e-9)
    U, dU = a.values["binder"][0, :, 0, 0], a.values["binder_err"][0, :, 0, 0]
    for il, N in enumerate(sizes):
        exact = curie_weiss_binder(N, T)
        z = (U[il] - exact) / dU[il]
        assert np.all(np.abs(z) < 4), (N, z)
    # the Binder value at T_c = 1 (the largest size) within errors of the exact finite-N value
    i1 = int(np.argmin(np.abs(T - 1.0)))
    assert abs(U[-1, i1] - curie_weiss_binder(64, [1.0])[0]) < 3 * dU[-1, i1]
    # T_c from the Binder crossing of the two largest sizes against the exact curves' crossing on the
    # same grid (finite-size crossings approach T_c = 1 from below: 0.95 for 32/64)
    ref = crossing(T, curie_weiss_binder(32, T), curie_weiss_binder(64, T))
    assert s["T_c_method"][0] == "binder"
    assert abs(s["T_c"][0] - ref) < 3 * s["T_c_err"][0] + 1e-3, (s["T_c"][0], s["T_c_err"][0], ref)
    assert 0.9 < ref < 1.0


@pytest.mark.slow
def test_reweighted_chi_peak_of_a_4x4_ising_against_exact_enumeration():
    """One size: T_c is the chi peak of the MBAR-reweighted curve, within 3 errors of the maximum
    of the exact chi(T) (enumeration of the 2^16 states on a fine grid)."""
    import spinsim as ss

    H = square("ising", 4)
    a = run_atlas(FixedSystems({"ising4": {4: H}}), np.linspace(2.0, 3.6, 7), [0.0], sweeps=4000, max_sweeps=4000,
                  n_chains=2, algorithm="wolff", progress=False, seed=3)
    s = summarize(a)
    fine = np.linspace(2.0, 3.6, 1601)
    exact = fine[int(np.argmax(ss.solve(H, fine, method="exact").susceptibility))]
    assert s["T_c_method"][0] == "chi_peak_reweighted"
    assert abs(s["T_c"][0] - exact) < 3 * s["T_c_err"][0], (s["T_c"][0], s["T_c_err"][0], exact)
