"""Issue 13 item 3: tuned tempering ladders (spinsim.ladder) and the tempering diagnostics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erfc

import spinsim as ss
from spinsim.ladder import acceptance_ladder, feedback_ladder, round_trip_time, tuning_stages


def test_equal_acceptance_ladder_of_a_constant_heat_capacity_is_geometric():
    """With a constant heat capacity C the energy width is sigma_E = T sqrt(C), so the swap
    acceptance depends on T_{i+1}/T_i only (here the Gaussian-histogram law erfc(sqrt(C) ln
    (T_{i+1}/T_i) / 2)): equal acceptances mean a geometric ladder. From a linear start the
    tuning converges to it (rtol 1e-6)."""
    T = np.linspace(0.5, 5.0, 8)
    n = np.full(7, 10 ** 9)
    for _ in range(10):
        A = erfc(np.sqrt(2.0) * np.log(T[1:] / T[:-1]) / 2)
        T = acceptance_ladder(T, A * n, n)
    np.testing.assert_allclose(T, np.geomspace(0.5, 5.0, 8), rtol=1e-6)


def _exact_swap_acceptance(T: np.ndarray, E: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Mean Metropolis exchange acceptance of each neighbouring pair of the ladder T, from the
    exact density of states g(E): sum_{E, E'} P_i(E) P_{i+1}(E') min(1, exp((b_i - b_{i+1})(E - E')))."""
    b = 1.0 / np.asarray(T)
    lw = np.log(g)[None, :] - b[:, None] * E[None, :]
    P = np.exp(lw - lw.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dE = E[:, None] - E[None, :]
    return np.array([P[i] @ np.exp(np.minimum((b[i] - b[i + 1]) * dE, 0.0)) @ P[i + 1] for i in range(b.size - 1)])


def test_equal_acceptance_ladder_of_an_exactly_enumerated_ising_lattice():
    """4x4 Ising (not Gaussian: 15 energy levels, a gap above the ground state): fed the exact swap
    acceptances from enumeration (independent of spinsim.ladder), the tuning reaches a ladder
    whose exact acceptances are equal (spread < 1e-9; the linear start spreads 0.33..0.88), end
    points kept."""
    H = ss.lattice("ising", (4, 4))
    ex = ss.solve(H, [1.0], method="exact")
    E, g = ex.dos_energy, np.asarray(ex.dos_count, dtype=np.float64)
    assert g.sum() == 2 ** 16
    T = np.linspace(1.0, 6.0, 6)
    a = _exact_swap_acceptance(T, E, g)
    assert np.ptp(a) > 0.5, a
    n = np.full(a.size, 1e15)
    for _ in range(15):
        T = acceptance_ladder(T, _exact_swap_acceptance(T, E, g) * n, n)
    a = _exact_swap_acceptance(T, E, g)
    assert np.ptp(a) < 1e-9, a
    assert T[0] == 1.0 and T[-1] == 6.0 and np.all(np.diff(T) > 0)


def test_feedback_ladder_follows_the_walker_current():
    """Katzgraber et al. 2006: equal sqrt|df| per interval. f linear over the ladder is the fixed
    point; f dropping in one interval (a bottleneck) pulls the temperatures into it."""
    T = np.array([1.0, 1.5, 2.0, 2.5, 3.0])
    f = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(feedback_ladder(T, 1000 * f, 1000 * (1 - f)), T, rtol=1e-12)
    f = np.array([1.0, 0.97, 0.03, 0.01, 0.0])            # the walkers stall between 1.5 and 2.0
    new = feedback_ladder(T, 1000 * f, 1000 * (1 - f))
    assert new[0] == 1.0 and new[-1] == 3.0 and np.all(np.diff(new) > 0)
    assert np.sum((new > 1.5) & (new < 2.0)) >= 2, new   # two inner points inside the bottleneck
    # worked by hand: |df| = (1, 9, 9, 1)/20 gives the weights sqrt|df| ~ (1, 3, 3, 1), total 8; the
    # quarters 2, 4, 6 fall 1/3 into [2, 3], at 3, and 2/3 into [3, 4] (linear inside an interval)
    T = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    f = np.array([1.0, 0.95, 0.5, 0.05, 0.0])
    np.testing.assert_allclose(feedback_ladder(T, 1000 * f, 1000 * (1 - f)), [1.0, 7 / 3, 3.0, 11 / 3, 5.0],
                               rtol=1e-12)
    assert feedback_ladder(T, np.zeros(5), np.zeros(5)).tolist() == T.tolist()   # nothing learnt yet


def test_stages_and_bad_options():
    assert tuning_stages(20) == [] and tuning_stages(100) == [16, 34]
    st = tuning_stages(2000)
    assert sum(st) == 1000 and all(b >= 2 * a for a, b in zip(st, st[1:]))
    assert round_trip_time(np.array([2, 0]), np.array([30, 0])) == (15.0, 2)
    assert np.isnan(round_trip_time(np.zeros(2), np.zeros(2))[0])
    one = ss.solve(ss.lattice("ising", 4), [1.0], method="mc", algorithm="pt", sweeps=100, n_chains=1, progress=False)
    assert one.meta["n_round_trips"] == 0 and np.isnan(one.meta["round_trip_time"])
    assert not any("round trip" in w for w in one.meta["warnings"])
    H = ss.lattice("ising", 4)
    with pytest.raises(ValueError, match=r"ladder must be one of \['fixed', 'acceptance', 'feedback'\], got 'tuned'"):
        ss.solve(H, [1.0, 2.0, 3.0], method="mc", algorithm="pt", ladder="tuned")
    with pytest.raises(ValueError, match="use algorithm='pt' or exchange=True"):
        ss.solve(H, [1.0, 2.0, 3.0], method="mc", algorithm="heatbath", ladder="feedback")
    with pytest.raises(ValueError, match="at least 3 temperatures, got 2"):
        ss.solve(H, [1.0, 2.0], method="mc", algorithm="pt", ladder="acceptance")
    with pytest.raises(ValueError, match="ladder='feedback' needs distinct temperatures"):
        ss.solve(H, [1.0, 2.0, 1.0], method="mc", algorithm="pt", ladder="feedback")
    with pytest.raises(ValueError, match="a sweep's rows share one T grid"):
        ss.sweep(H, [1.0, 2.0, 3.0], [0.0], method="mc", algorithm="pt", ladder="feedback", progress=False)


def test_round_trips_of_walkers_that_always_swap():
    """At equal temperatures every swap is accepted (x = 0): the walkers then move by the
    deterministic odd-even transposition pattern, and each returns to T_1 after visiting T_M
    every 2 n_T sweeps exactly."""
    H = ss.lattice("ising", 4)
    res = ss.solve(H, [1.0] * 4, method="mc", algorithm="pt", sweeps=200, discard=100, n_chains=1, seed=2,
                   progress=False)
    assert res.meta["swap_acceptance"] == [1.0, 1.0, 1.0]
    assert res.meta["round_trip_time"] == 8.0 and res.meta["n_round_trips"] >= 4 * (200 // 8 - 1)
    assert res.meta["fraction_up"][0] == 1.0 and res.meta["fraction_up"][-1] == 0.0


def test_a_tuned_ladder_evens_out_the_swap_acceptance():
    """4x4 Ising across T_c ~ 2.27 with a linear ladder 1.2 ... 6: the fixed ladder's acceptances
    spread widely (the high-T pairs swap easily, those around T_c do not); tuned for equal
    acceptance they lie within a third of their mean, the end points stay, and the result,
    meta and file report the tuned ladder."""
    H = ss.lattice("ising", (4, 4))
    T = np.linspace(1.2, 6.0, 6)
    kw = dict(method="mc", algorithm="pt", sweeps=2000, discard=2000, n_chains=1, seed=4, progress=False)
    fixed = ss.solve(H, T, **kw)
    tuned = ss.solve(H, T, ladder="acceptance", **kw)
    a0, a1 = np.array(fixed.meta["swap_acceptance"]), np.array(tuned.meta["swap_acceptance"])
    assert a0.max() - a0.min() > 0.3, a0
    assert a1.max() - a1.min() < a1.mean() / 3, a1
    lad = np.array(tuned.meta["ladder"])
    assert lad[0] == 1.2 and lad[-1] == 6.0 and np.all(np.diff(lad) > 0)
    assert tuned.T.tolist() == lad.tolist() and tuned.meta["ladder_initial"] == T.tolist()
    assert tuned.meta["ladder_tuning"] == "acceptance" and sum(tuned.meta["ladder_stages"]) == 1000
    assert tuned.meta["n_round_trips"] > 0 and np.isfinite(tuned.meta["round_trip_time"])
    feedback = ss.solve(H, T, ladder="feedback", **kw)
    assert feedback.meta["ladder"][0] == 1.2 and np.all(np.diff(feedback.meta["ladder"]) > 0)
    assert feedback.meta["fraction_up"][0] == 1.0 and feedback.meta["fraction_up"][-1] == 0.0


def test_the_file_reports_the_ladder(tmp_path):
    H = ss.lattice("ising", 6)
    res = ss.solve(H, [0.8, 1.6, 3.2], method="mc", algorithm="pt", ladder="feedback", sweeps=200,
                   n_chains=1, seed=1, progress=False)
    back = ss.Result.from_hdf5(res.to_hdf5(tmp_path / "r.h5"))
    for key in ("ladder", "ladder_initial", "swap_acceptance", "fraction_up", "round_trip_time",
                "n_round_trips", "ladder_tuning"):
        assert back.meta[key] == res.meta[key] or (key == "round_trip_time" and np.isnan(res.meta[key])), key
    assert back.T.tolist() == res.meta["ladder"]


def test_a_tempering_sweep_file_holds_each_rows_exchange_diagnostics(tmp_path):
    """Per row: swap acceptance per pair, f(T) (1 at the lowest T, 0 at the highest, in the file's
    T order), round-trip time and count, equal to the row's own solve; dims for h5py/xarray."""
    import h5py
    H = ss.lattice("ising", 6)
    T = [2.0, 0.8, 1.3]                       # unsorted on purpose
    out = tmp_path / "s.h5"
    kw = dict(method="mc", algorithm="pt", sweeps=300, n_chains=1, progress=False)
    res = ss.sweep(H, T, [0.0, 0.4], out=out, seed=2, estimate=False, **kw)
    back = ss.read_sweep(out)
    row0 = ss.solve(H, T, seed=2, replica_offset=0, direction=back.direction, **kw)
    tp = back.tempering
    assert tp["swap_acceptance"].shape == (2, 2) and tp["fraction_up"].shape == (2, 3)
    np.testing.assert_array_equal(tp["swap_acceptance"][0], row0.meta["swap_acceptance"])
    assert tp["round_trip_time"][0] == row0.meta["round_trip_time"] and tp["n_round_trips"][0] == row0.meta["n_round_trips"]
    assert tp["fraction_up"][:, 1].tolist() == [1.0, 1.0] and tp["fraction_up"][:, 0].tolist() == [0.0, 0.0]
    assert res.tempering["n_round_trips"].tolist() == tp["n_round_trips"].tolist()
    with h5py.File(out) as f:
        assert [d.label for d in f["sweep/swap_acceptance"].dims] == ["h", "pair"]
        assert f["sweep/round_trip_time"].attrs["units"] == "sweeps"
