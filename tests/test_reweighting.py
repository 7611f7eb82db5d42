"""Histogram reweighting (issue 13 item 2): single- and multi-histogram (MBAR) curves between the
simulated temperatures against exact enumeration (4x4 Ising, a small 3-state Potts system),
peaks and Binder crossings against exact ones, the trusted range and its refusals."""
from __future__ import annotations

import numpy as np
import pytest

import spinsim as ss
from spinsim.reweighting import (NoCrossingError, NoPeakError, NoSamplesError, OutsideOverlapError,
                                 Reweighting, binder_crossing, peak, trusted_range)

K_SIGMA = 4.0                                      # Monte Carlo agreement: within 4 standard errors
NAMES = ("energy", "specific_heat", "magnetization", "susceptibility", "binder")
T_LADDER = np.array([1.9, 2.2, 2.5, 2.8, 3.1])


def _mc(H, T, seed, sweeps=3000, **kw):
    return ss.solve(H, T=np.asarray(T, float), method="mc", sweeps=sweeps, seed=seed, n_chains=2, **kw)


@pytest.fixture(scope="module")
def ising4():
    H = ss.square("ising", 4)
    return H, _mc(H, T_LADDER, seed=5)


def _exact_max(H, name, lo=1.9, hi=3.1):
    """T of the exact maximum of ``name``: one enumeration on a 0.002 grid, refined by a parabola
    through the top three points (error ~1e-6, far below the Monte Carlo errors)."""
    T = np.linspace(lo, hi, 601)
    y = getattr(ss.solve(H, T=T, method="exact"), name)
    i = int(np.argmax(y))
    a, b, _ = np.polyfit(T[i - 1:i + 2], y[i - 1:i + 2], 2)
    return -b / (2 * a), float(np.max(y))


def _agree(rw_res, ex, names=NAMES):
    for name in names:
        v, e, x = getattr(rw_res, name), getattr(rw_res, name + "_err"), getattr(ex, name)
        assert np.all(e > 0), name
        assert np.all(np.abs(v - x) < K_SIGMA * e), (name, v, x, e)


def test_mbar_curves_between_grid_points_match_enumeration(ising4):
    H, res = ising4
    T = np.array([2.05, 2.35, 2.65, 2.95])
    rw = ss.reweight(res, T)
    assert rw.meta["reweighting"] == "MBAR (pymbar)" and rw.meta["n_jackknife"] == 16
    _agree(rw, ss.solve(H, T=T, method="exact"))


def test_single_histogram_matches_enumeration_near_its_run(ising4):
    H, res = ising4
    one = Reweighting(res, points=[2])                # the T = 2.5 run alone
    lo, hi = one.trusted[0]
    assert lo < 2.5 < hi and (lo, hi) != trusted_range(res)
    T = np.array([2.5 - 0.4 * (2.5 - lo), 2.5 + 0.4 * (hi - 2.5)])
    rw = one.curves(T)
    assert rw.meta["reweighting"] == "single histogram"
    _agree(rw, ss.solve(H, T=T, method="exact"))
    with pytest.raises(OutsideOverlapError, match="outside the trusted reweighting range") as exc:
        one.curves([hi * 1.05])
    assert exc.value.trusted == one.trusted


def test_peaks_match_the_exact_maxima(ising4):
    H, res = ising4
    rw = Reweighting(res)
    for name in ("specific_heat", "susceptibility"):
        exact, top = _exact_max(H, name)
        p = peak(rw, name)
        assert p.T.error > 0 and abs(p.T.value - exact) < K_SIGMA * p.T.error, (name, p, exact)
        assert abs(p.value.value - top) < K_SIGMA * p.value.error
    with pytest.raises(NoPeakError, match="no interior maximum"):
        rw.peak("energy")                              # monotonic: the maximum is on the edge


@pytest.mark.slow
def test_binder_crossing_matches_enumeration():
    H3, H4 = ss.square("ising", 3), ss.square("ising", 4)
    T = np.array([1.9, 2.1, 2.3, 2.5])
    r3, r4 = _mc(H3, T, seed=1, sweeps=6000), _mc(H4, T, seed=2, sweeps=6000)

    grid = np.linspace(1.9, 2.5, 301)
    dU = ss.solve(H3, T=grid, method="exact").binder - ss.solve(H4, T=grid, method="exact").binder
    i = int(np.flatnonzero(np.sign(dU[:-1]) != np.sign(dU[1:]))[0])   # ~2.2: U_3 and U_4 cross once here
    exact = grid[i] - dU[i] * (grid[i + 1] - grid[i]) / (dU[i + 1] - dU[i])    # linear on a 0.002 grid
    est = binder_crossing(r3, r4, T_range=(1.9, 2.5))
    assert est.error > 0 and abs(est.value - exact) < K_SIGMA * est.error, (est, exact)
    with pytest.raises(NoCrossingError):
        binder_crossing(r3, r4, T_range=(2.3, 2.5))


def test_potts_system_matches_enumeration():
    """A small discrete system: 3-state Potts vectors on a 6-site ring with a field."""
    V = np.array([[1.0, 0.0], [-0.5, np.sqrt(3) / 2], [-0.5, -np.sqrt(3) / 2]])
    base = ss.lattice("ising", 6)
    h = np.tile([0.3, 0.1], (6, 1))
    H = ss.Hamiltonian(base.W, spin=ss.Discrete(V), h=h)
    res = _mc(H, [0.6, 0.9, 1.2], seed=7, sweeps=4000)
    T = np.array([0.75, 1.05])
    _agree(ss.reweight(res, T), ss.solve(H, T=T, method="exact"),
           names=("energy", "specific_heat", "magnetization", "susceptibility", "projection"))


def test_refusals(ising4, tmp_path):
    H, res = ising4
    with pytest.raises(NoSamplesError, match="no Monte Carlo samples"):
        ss.reweight(ss.solve(H, T=T_LADDER, method="exact"), [2.0])
    with pytest.raises(OutsideOverlapError, match="T = 0.5 is outside"):
        ss.reweight(res, [0.5])
    sw = ss.sweep(ss.square("ising", 3), T=[2.0, 2.4], fields=[0.0, 0.3], out=tmp_path / "s.h5",
                  sweeps=200, n_chains=1, progress=False)
    with pytest.raises(ValueError, match="pass h="):
        ss.reweight(sw, [2.2])
    with pytest.raises(ValueError, match="not a field of this sweep"):
        ss.reweight(sw, [2.2], h=0.7)
    from_file = ss.reweight(tmp_path / "s.h5", [2.2], h=0.3)
    np.testing.assert_allclose(from_file.energy, ss.reweight(sw, [2.2], row=1).energy)


@pytest.mark.slow
def test_sweep_chi_peak_line_uses_reweighted_curves(tmp_path):
    """The phase-boundary code takes the chi peak from reweighted curves where a sweep row has
    samples: against the exact maximum of chi(T) at each field (4x4 Ising, field along +z)."""
    from spinsim.analysis.boundaries import add_sweep_boundaries

    H = ss.square("ising", 4)
    sw = ss.sweep(H, T=T_LADDER, fields=[0.0, 0.2], direction=np.ones(1), out=tmp_path / "s.h5", sweeps=3000,
                  n_chains=2, seed=3, progress=False)
    line = add_sweep_boundaries(sw, H, n_resample=50)["chi_peak"]
    assert line.reweighted.tolist() == [True, True] and "reweighted curve" in line.method
    for k, h in enumerate((0.0, 0.2)):
        exact, _ = _exact_max(ss.replace(H, h=H.h + h), "susceptibility")
        assert abs(line.T[k] - exact) < K_SIGMA * line.T_err[k], (h, line.T[k], line.T_err[k], exact)
    back = ss.read_sweep(tmp_path / "s.h5").boundaries["chi_peak"]
    assert back.reweighted.tolist() == [True, True]
    np.testing.assert_array_equal(back.T_err, line.T_err)


def test_tempering_ladder_reweights(ising4):
    """Multi-histogram reweighting of a parallel-tempering run (samples per temperature slot)."""
    H, _ = ising4
    res = _mc(H, T_LADDER, seed=9, algorithm="pt")
    T = np.array([2.05, 2.65])
    _agree(ss.reweight(res, T), ss.solve(H, T=T, method="exact"))


@pytest.mark.slow
def test_binder_crossing_line_of_sweeps_uses_reweighted_curves():
    """binder_crossing_line on a size family of sweeps with samples: the zero-field crossing of
    U_3 and U_4 from reweighted curves, against enumeration."""
    from spinsim.analysis.boundaries import binder_crossing_line

    T = np.array([1.9, 2.1, 2.3, 2.5])
    fam = {L: ss.sweep(ss.square("ising", L), T=T, fields=[0.0], direction=np.ones(1), sweeps=6000,
                       n_chains=2, seed=L, progress=False) for L in (3, 4)}
    line = binder_crossing_line(fam, fields="zero")["binder_crossing_L3_4"]
    grid = np.linspace(1.9, 2.5, 301)
    dU = (ss.solve(ss.square("ising", 3), T=grid, method="exact").binder
          - ss.solve(ss.square("ising", 4), T=grid, method="exact").binder)
    i = int(np.flatnonzero(np.sign(dU[:-1]) != np.sign(dU[1:]))[0])
    exact = grid[i] - dU[i] * (grid[i + 1] - grid[i]) / (dU[i + 1] - dU[i])
    assert line.reweighted.tolist() == [True] and "reweighted" in line.method
    assert abs(line.T[0] - exact) < K_SIGMA * line.T_err[0], (line.T, line.T_err, exact)


def test_an_unconverged_mbar_solution_is_refused_not_used(monkeypatch):
    """pymbar returns its best iterate with only a logged warning when its solvers stop short:
    spinsim checks the MBAR gradient itself and refuses (here: the adaptive solver alone, one
    iteration, from a deliberately wrong start)."""
    from spinsim import mbar

    rng = np.random.default_rng(3)
    beta = np.array([1.0, 0.8, 0.6])
    E = np.concatenate([rng.normal(-10.0 + 4.0 * k, 1.5, 400) for k in range(3)])
    state = np.repeat(np.arange(3), 400)
    f = mbar.solve(E, beta, state, None)                         # the converged answer exists
    assert np.all(np.isfinite(f)) and f[0] == 0.0
    monkeypatch.setattr(mbar, "_PROTOCOL_COLD", (dict(method="adaptive", options=dict(min_sc_iter=0)),))
    monkeypatch.setattr(mbar, "_MAX_ITER", 1)
    monkeypatch.setattr(mbar, "_newton", lambda *a, **k: None)
    with pytest.raises(mbar.ReweightError, match=r"^MBAR did not converge for T = 1\.\.1\.66667 \(3 temperatures\)"):
        mbar.solve(E, beta, state, None)
