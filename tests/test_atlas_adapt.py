"""The atlas's sweep-doubling rule point by point (analysis/atlas_adapt.py): only flagged
temperatures are solved again, each point's numbers come from its own last run (streams named
by (seed, row, level)), and the merged row still agrees with exact enumeration."""
from __future__ import annotations

import numpy as np
import pytest

import spinsim as ss
from spinsim.analysis.atlas_adapt import ROW_KEYS, point_seed, short_run_flags, solve_adaptive, sweeps_spent
from spinsim.analysis.atlas_run import AtlasTask, run_atlas, run_atlas_task, FixedSystems
from spinsim.lattices import square
from spinsim.phase.task import compute_row

OPTS = dict(sweeps=100, discard=100, n_chains=2, algorithm="metropolis")
T6 = np.array([1.5, 2.3, 4.0])


def _discard(s: int) -> int:
    return max(100, s // 4)


def test_only_flagged_temperatures_are_solved_again():
    """6 x 6 Ising, Metropolis, 2 chains: at seed 0 the point near T_c (2.3) needs 400 sweeps, T =
    1.5 needs 200 and T = 4 passes at 100. Replaying the documented runs (the first over the
    grid with the atlas seed and row offset, then level L over the points still flagged with
    point_seed(seed, row, L)) gives every stored number bit for bit, and each point's sweeps are
    the first at which the rule passed it."""
    H, U, seed, row_index = square("ising", 6), np.ones((36, 1)), 0, 7
    row, ps, flags = solve_adaptive(H, T6, 0.0, U, seed, row_index, OPTS, 800, True, whole=False)
    assert sorted(set(ps.tolist())) == [100, 200, 400] and not flags.any()     # the rule acts point by point
    assert row["bins"] is None                       # mixed run lengths keep no bins
    first = compute_row(H, T6, 0.0, U, seed, row_index, dict(OPTS, discard=_discard(100)))
    pending = short_run_flags(first, 100, 2)
    np.testing.assert_array_equal(pending, ps > 100)
    for name in ("energy", "energy_err", "magnetization", "susceptibility", "tau_int", "rhat_pvalue"):
        np.testing.assert_array_equal(row[name][ps == 100], first[name][ps == 100], err_msg=name)
    s, level = 100, 0
    while pending.any():
        s, level = 2 * s, level + 1
        idx = np.flatnonzero(pending)
        sub = compute_row(H, T6[idx], 0.0, U, point_seed(seed, row_index, level), 0,
                          dict(OPTS, sweeps=s, discard=_discard(s)))
        done_here = ps[idx] == s
        over_T = [k for k in sub if k not in ROW_KEYS and sub[k] is not None]
        assert {"energy", "tau_int", "rhat", "rhat_pvalue", "magnetization_vector"} <= set(over_T)
        for name in over_T:                          # every per-temperature output of the rerun
            np.testing.assert_array_equal(np.asarray(row[name])[idx[done_here]], np.asarray(sub[name])[done_here],
                                          err_msg=f"{name} at level {level}")
        np.testing.assert_array_equal(short_run_flags(sub, s, 2, n_T=T6.size), ~done_here)
        pending = np.zeros_like(pending)
        pending[idx[~done_here]] = True
    assert len({point_seed(0, 7, L) for L in range(1, 5)} | {point_seed(0, 8, 1), point_seed(1, 7, 1)}) == 6


def test_point_by_point_row_agrees_with_exact_enumeration():
    """4 x 4 Ising (exact enumeration of 2^16 states), 6 temperatures, Metropolis, 2 chains,
    sweeps 100 doubled point by point up to 1600: at seed 0 the points end at 100, 200 and 400
    sweeps; every unflagged point's energy and |m| lie within 4 standard errors of the exact
    values."""
    H = square("ising", 4)
    T = np.array([1.5, 2.0, 2.3, 2.6, 3.0, 4.0])
    exact = ss.solve(H, T, method="exact")
    row, ps, flags = solve_adaptive(H, T, 0.0, np.ones((16, 1)), 0, 5, OPTS, 1600, True, whole=False)
    assert len(set(ps.tolist())) >= 2 and not flags.any()     # a mixed row: some points were rerun
    ok = ~flags
    for name in ("energy", "magnetization"):
        z = (row[name] - np.asarray(getattr(exact, name))) / row[name + "_err"]
        assert np.all(np.abs(z[ok]) < 4), (name, z, ps)


def test_rows_that_keep_bins_or_reweight_double_whole(tmp_path):
    """The h = 0 row (reweighted chi peak) and every row under bins='all' run one sweep count over
    the grid; bins='none' rows at h != 0 double point by point and store each point's sweeps,
    which the file gives back (point_sweeps over the grid; the row's sweeps their largest)."""
    from spinsim.analysis.atlas_store import read_atlas

    src = FixedSystems({"ising": {36: square("ising", 6)}})
    a = run_atlas(src, T6, [0.0, 0.05], out=tmp_path / "a.h5", progress=False, max_sweeps=800, bins="none",
                  **{k: v for k, v in OPTS.items() if k != "discard"})
    back = read_atlas(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.point_sweeps, a.point_sweeps)
    np.testing.assert_array_equal(back.sweeps, a.point_sweeps.max(axis=-1))
    np.testing.assert_array_equal(a.sweeps, a.point_sweeps.max(axis=-1))
    zero, field = a.point_sweeps[0, 0, 0, 0], a.point_sweeps[0, 0, 0, 1]
    assert len(set(zero.tolist())) == 1                         # h = 0: whole
    assert len(set(field.tolist())) > 1, field                  # h = 0.05: point by point at this seed
    task = AtlasTask(square("ising", 6), T6, 0.05, np.ones((36, 1)), 0, 1, (0, 0, 0, 1), OPTS, 800, True, False,
                     keep_bins=True)
    kept = run_atlas_task(task)
    assert len(set(kept["point_sweeps"].tolist())) == 1 and kept["bins"] is not None


def test_replica_exchange_rows_double_whole():
    """Parallel tempering couples the temperatures: a rerun of some of them alone would be another
    ladder, so an exchange row doubles as one run (the same first-run streams as a sweep row)."""
    H, U = square("ising", 6), np.ones((36, 1))
    opts = dict(OPTS, algorithm="pt", sweeps=50)     # 50 < 100 sweeps: every point flagged at first
    task = AtlasTask(H, T6, 0.05, U, 0, 3, (0, 0, 0, 1), opts, 100, True, False)
    row = run_atlas_task(task)
    np.testing.assert_array_equal(row["point_sweeps"], [100, 100, 100])
    ref = compute_row(H, T6, 0.05, U, 0, 3, dict(opts, sweeps=100, discard=100))
    np.testing.assert_array_equal(row["energy"], ref["energy"])


def test_sweeps_spent_counts_every_level():
    """Hand count: first 100 sweeps (equilibration max(100, s/4)): a point ending at 100 ran
    100 + 100; at 400 it ran 200 + 300 + 500 = 1000; at 800, 1000 + 1000 = 2000."""
    assert sweeps_spent(np.array([100]), 100) == 200
    assert sweeps_spent(np.array([400]), 100) == 1000
    assert sweeps_spent(np.array([[100, 400], [800, 100]]), 100) == 200 + 1000 + 2000 + 200
    assert sweeps_spent(np.array([200, 200]), 200, auto_discard=False, discard=50) == 2 * (200 + 50)


def test_files_without_point_sweeps_read_with_the_row_sweeps(tmp_path):
    """An atlas written before point-by-point doubling (no /atlas/point_sweeps) reads each point's
    sweeps as its row's (those rows were doubled whole)."""
    import h5py

    from spinsim.analysis.atlas_store import read_atlas

    src = FixedSystems({"ising": {9: square("ising", 3)}})
    run_atlas(src, T6, [0.0], out=tmp_path / "old.h5", progress=False, max_sweeps=200, bins="none",
              **{k: v for k, v in OPTS.items() if k != "discard"})
    with h5py.File(tmp_path / "old.h5", "a") as f:
        del f["atlas/point_sweeps"]
        f["atlas/sweeps"][...] = 200
    back = read_atlas(tmp_path / "old.h5")
    np.testing.assert_array_equal(back.point_sweeps, np.full((1, 1, 1, 1, 3), 200))
