"""The atlas engine: file layout, resume (interrupt and kill -9) equal to an uninterrupted run,
refusal of another run's file, the sweep-doubling rule, and the summary's T_c on known systems."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spinsim.analysis.atlas_run import (AtlasMismatchError, AtlasTask, FixedSystems, run_atlas, run_atlas_task,
                                        short_run_flags, RHAT_ALPHA, RHAT_TESTS)
from spinsim.analysis.atlas_adapt import point_seed
from spinsim.analysis.atlas_store import read_atlas
from spinsim.lattices import square
from spinsim.observables import MIN_MEAS, MIN_TAU_MULTIPLE, RHAT_WARN
from spinsim.phase.task import compute_row

T_GRID = np.array([1.8, 2.3, 3.0])
FIELDS = np.array([0.0, 0.2])
OPTS = dict(sweeps=100, max_sweeps=200, n_chains=1, algorithm="heatbath", bins="all")


def _source() -> FixedSystems:
    return FixedSystems({"ising_a": {3: square("ising", 3), 4: square("ising", 4)},
                         "ising_b": {3: square("ising", 3, J=0.5), 4: square("ising", 4, J=0.5)}})


def _same_numbers(a, b) -> None:
    assert a.heads == b.heads
    np.testing.assert_array_equal(a.done, b.done)
    np.testing.assert_array_equal(a.sweeps, b.sweeps)
    np.testing.assert_array_equal(a.flagged, b.flagged)
    assert set(a.values) == set(b.values)
    for k in a.values:
        np.testing.assert_array_equal(a.values[k], b.values[k], err_msg=k)
    for k in a.facts:
        np.testing.assert_array_equal(a.facts[k], b.facts[k], err_msg=k)
    assert sorted(a.row_bins) == sorted(b.row_bins) == list(range(a.done.size))
    for r, x in a.row_bins.items():
        y = b.row_bins[r]
        for k in x.bins:
            np.testing.assert_array_equal(x.bins[k], y.bins[k], err_msg=f"row {r} bin_{k}")
        for k in x.samples:
            np.testing.assert_array_equal(x.samples[k], y.samples[k], err_msg=f"row {r} sample_{k}")


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    path = tmp_path_factory.mktemp("atlas") / "whole.h5"
    run_atlas(_source(), T_GRID, FIELDS, out=path, progress=False, **OPTS)
    return read_atlas(path)


def test_layout_over_head_length_sample_h_T(whole):
    a = whole
    assert a.complete and a.heads == ["ising_a", "ising_b"]
    assert a.grid_shape == (2, 2, 1, 2, 3)
    assert a.values["binder"].shape == a.grid_shape and a.values["binder_err"].shape == a.grid_shape
    assert set(np.unique(a.sweeps)) <= {100, 200}
    import h5py
    with h5py.File(a.path) as f:
        d = f["atlas/susceptibility"]
        assert [dim.label for dim in d.dims] == ["head", "length", "sample", "h", "T"]
        assert f["atlas/T"].attrs["units"] == "energy (k_B = 1)"
        assert f.attrs["spinsim_kind"] == "atlas"
    # one spin component: every chain's mean moment lies along +-v (overlap 1 per chain)
    assert a.facts["direction_overlap"].shape == (2, 2, 1, 3)
    np.testing.assert_allclose(a.facts["direction_overlap"], 1.0, atol=1e-12)
    # mean field of the square lattice: T_c = z J = 4 J
    np.testing.assert_allclose(a.facts["T_mf"][:, :, 0], [[4.0, 4.0], [2.0, 2.0]], rtol=1e-9)


def test_a_row_is_the_sweep_row_at_its_sweeps(whole):
    """Row (head 1, length 4, h = 0.2) equals the sweep engine's row at the sweeps it needed,
    with the row's own seed offset (independent streams per row)."""
    a = whole
    key = (1, 1, 0, 1)
    s = int(a.sweeps[key])
    ref = compute_row(square("ising", 4, J=0.5), T_GRID, 0.2, np.ones((16, 1)), 0, a.row_index(*key),
                      dict(sweeps=s, discard=max(100, s // 4), n_chains=1, algorithm="heatbath"))
    np.testing.assert_array_equal(a.values["energy"][key], ref["energy"])
    row = a.row(1, 1, 0, 1)                  # the atlas row with its bins, as a sweep's row
    assert row.bins is not None and row.n_free == 16 and row.meta["sweeps"] == s
    for k in ref["bins"].bins:
        np.testing.assert_array_equal(row.bins.bins[k], ref["bins"].bins[k], err_msg=k)
    for k in ref["bins"].samples:
        np.testing.assert_array_equal(row.bins.samples[k], ref["bins"].samples[k], err_msg=k)
    two = compute_row(square("ising", 3), T_GRID, 0.0, np.ones((9, 1)), 0, 0,
                      dict(sweeps=20, discard=10, n_chains=2, algorithm="heatbath"))
    assert two["chain_magnetization_vector"].shape == (3, 2, 1)      # each chain's own <m>, their mean:
    np.testing.assert_allclose(two["chain_magnetization_vector"].mean(axis=1), two["magnetization_vector"],
                               rtol=1e-12, atol=1e-15)


def test_reweighting_reads_an_atlas_row_like_a_sweep_row(whole):
    """The stored bins reweight: Reweighting(atlas.row(...)) gives the curve of the same row solved
    by the sweep engine (compute_row, same seed offset and sweeps) to the last digit, and at the
    grid's own temperatures the stored estimates within their errors."""
    from spinsim.result import Result
    from spinsim.reweighting import Reweighting

    a = whole
    key = (0, 1, 0, 0)
    s = int(a.sweeps[key])
    ref = compute_row(square("ising", 4), T_GRID, 0.0, np.ones((16, 1)), 0, a.row_index(*key),
                      dict(sweeps=s, discard=max(100, s // 4), n_chains=1, algorithm="heatbath"))
    sweep_row = Result(T_GRID, "mc", n_sites=16, n_free=16, n_comp=1, bins=ref["bins"],
                       **{k: ref[k] for k in ("energy", "energy_err")})
    T = np.array([1.9, 2.1, 2.5])
    got = Reweighting(a.row(*key)).curve("energy", T)
    np.testing.assert_array_equal(got, Reweighting(sweep_row).curve("energy", T))
    at_grid = Reweighting(a.row(*key)).curve("energy", T_GRID)
    assert np.all(np.abs(at_grid - a.values["energy"][key]) <= 3 * a.values["energy_err"][key] + 1e-9)


def test_interrupted_then_resumed_equals_uninterrupted(whole, tmp_path):
    path = tmp_path / "cut.h5"
    seen = []

    def stop_after_three(tasks):
        for t in tasks:
            if len(seen) == 3:
                raise KeyboardInterrupt
            seen.append(t.key)
            yield run_atlas_task(t)

    with pytest.raises(KeyboardInterrupt):
        run_atlas(_source(), T_GRID, FIELDS, out=path, progress=False, executor=stop_after_three,
                  commit_every=1e9, **OPTS)
    part = read_atlas(path)
    assert int(part.done.sum()) == 3          # the rows finished before the interrupt were saved
    again = run_atlas(_source(), T_GRID, FIELDS, out=path, progress=False, **OPTS)
    assert again.complete
    _same_numbers(read_atlas(path), whole)


def test_atlas_file_is_checked_and_its_summary_has_named_dims(whole, tmp_path, capsys):
    """A fresh atlas file with its /summary: every dataset described and over resolvable scales,
    `spinsim info` reads it through the atlas reader, xarray opens it with /summary over head,
    length and h by name; a /summary array of the wrong length is refused (exit 1, one line)."""
    import h5py
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from _h5layout import check_file

    from spinsim.analysis.atlas_store import commit
    from spinsim.analysis.atlas_summary import summarize
    from spinsim.cli import main

    a = read_atlas(whole.path)
    summarize(a)
    path = tmp_path / "summarised.h5"
    commit(path, a)
    check_file(path)                          # layout, `spinsim info` (exit 0) and xarray
    assert "atlas: 8 of 8 rows done (100%)" in capsys.readouterr().out
    with xr.open_datatree(str(path), engine="h5netcdf") as tree:
        s = tree["summary"]
        assert dict(s.sizes) == {"head": 2, "length": 2, "h": 2}
        assert s["T_c"].dims == ("head",) and s["T_c_length"].dims == ("head", "length")
        assert s["boundary_T"].dims == ("head", "h") and s["boundary_at_edge"].dims == ("head", "h")
        assert list(s["head"].values) == ["ising_a", "ising_b"] and list(s["length"].values) == [3, 4]
    np.testing.assert_array_equal(read_atlas(path).summary["T_c_length"], a.summary["T_c_length"])
    with h5py.File(path, "a") as f:
        del f["summary/T_mf"]
        f["summary"].create_dataset("T_mf", data=np.zeros(3)).attrs["dims"] = ["head"]
    assert main(["info", str(path)]) == 1
    assert "inconsistent atlas summary: dataset /summary/T_mf has shape (3,)" in capsys.readouterr().err


def test_bins_of_the_zero_field_rows_by_default_none_on_request(tmp_path):
    import h5py

    src = FixedSystems({"ising": {3: square("ising", 3)}})
    opts = {k: v for k, v in OPTS.items() if k != "bins"}
    a = run_atlas(src, T_GRID, [0.2, 0.0], out=tmp_path / "zero.h5", progress=False, **opts)
    assert a.complete and sorted(a.row_bins) == [a.row_index(0, 0, 0, 1)]       # h = 0 is index 1
    back = read_atlas(tmp_path / "zero.h5")
    assert back.row(0, k=1).bins is not None and back.row(0, k=0).bins is None
    path = tmp_path / "nobins.h5"
    a = run_atlas(src, T_GRID, [0.0], out=path, progress=False, **{**opts, "bins": "none"})
    assert a.complete and a.row_bins == {} and read_atlas(path).row(0).bins is None
    with h5py.File(path) as f:
        assert "bins" not in f
    with pytest.raises(ValueError, match="bins must be one of 'zero', 'all', 'none', got 'some'"):
        run_atlas(src, T_GRID, [0.0], progress=False, **{**opts, "bins": "some"})


def test_other_parameters_are_refused(whole, tmp_path):
    with pytest.raises(AtlasMismatchError, match="'T' differs"):
        run_atlas(_source(), T_GRID + 0.1, FIELDS, out=whole.path, progress=False, **OPTS)
    with pytest.raises(AtlasMismatchError, match="'systems' differs"):
        other = FixedSystems({"ising_a": {3: square("ising", 3), 4: square("ising", 4)},
                              "ising_b": {3: square("ising", 3, J=0.4), 4: square("ising", 4, J=0.4)}})
        run_atlas(other, T_GRID, FIELDS, out=whole.path, progress=False, **OPTS)


def test_short_run_rule():
    E = np.zeros(4)
    tau = np.array([1.0, 3.9, 4.1, np.nan])           # 200 sweeps: flagged above tau = 4
    rhat = np.array([1.0, np.nan, 1.0, 1.0])
    np.testing.assert_array_equal(short_run_flags({"energy": E, "tau_int": tau, "rhat": rhat}, 200),
                                  [False, False, True, False])
    assert 200 < MIN_TAU_MULTIPLE * 4.1 and MIN_MEAS <= 200
    # R-hat against its noise: 200 sweeps, one chain, tau 1 -> n_e = 50 per half; at p = a / 24
    # (a = RHAT_ALPHA, 4 temperatures x RHAT_TESTS) R^2 = 0.99 + chi2.isf(a / 24, 1) / 50
    from scipy.stats import chi2
    edge = np.sqrt(0.99 + chi2.isf(RHAT_ALPHA / (RHAT_TESTS * 4), 1) / 50)
    rhat2 = np.array([1.0, edge * 1.001, RHAT_WARN + 0.01, edge * 0.999])
    np.testing.assert_array_equal(short_run_flags({"energy": E, "tau_int": np.ones(4), "rhat": rhat2}, 200),
                                  [False, True, False, False])
    # two chains: m = 4 half-chains, chi^2 with 3 degrees of freedom
    edge2 = np.sqrt(0.99 + chi2.isf(RHAT_ALPHA / (RHAT_TESTS * 4), 3) / (3 * 50))
    np.testing.assert_array_equal(short_run_flags({"energy": E, "tau_int": np.ones(4),
                                                   "rhat": np.array([1.0, edge2 * 1.001, 1.0, edge2 * 0.999])},
                                                  200, n_chains=2), [False, True, False, False])
    assert short_run_flags({"energy": E, "tau_int": np.ones(4)}, MIN_MEAS - 1).all()


def _ar1_row(rng: np.random.Generator, n_T: int, n_chains: int, n: int, rho: float,
             drift_at: int = -1, drift: float = 0.0, production: bool = True) -> dict:
    """A row of n_T temperatures whose E, |m|, m.u series are stationary AR(1) chains with
    tau_int = (1 + rho) / (2 (1 - rho)); at ``drift_at`` E's second half is shifted by ``drift``
    standard deviations (a run that is not equilibrated). ``production``: the row carries the
    per-series ``rhat_pvalue`` a Monte Carlo row has (the rule's production path), else only
    ``rhat`` and ``tau_int`` (its fallback for rows without it)."""
    from test_mc_diagnostics import _ar1
    from spinsim.observables import thermodynamics

    th = []
    for k in range(n_T):
        E, m, u = (_ar1(rng, rho, n_chains, n) for _ in range(3))
        if k == drift_at:
            E[:, n // 2:] += drift
        th.append(thermodynamics(E=E, mabs=np.abs(m) + 1.0, mu=u, T=1.0, n_free=1, n_comp=3))
    row = {"energy": np.zeros(n_T), "tau_int": np.array([t.tau_int for t in th]),
           "rhat": np.array([t.estimates["rhat"] for t in th])}
    if production:
        row["rhat_pvalue"] = np.array([t.rhat_pvalue for t in th])
    return row


@pytest.mark.parametrize("production", [True, False])
@pytest.mark.parametrize("n_chains", [1, 2])
def test_rhat_rule_false_alarms_and_power(n_chains, production):
    """The doubling rule's R-hat test on rows whose series have a known law: stationary AR(1)
    chains (tau_int = 1.5, 200 sweeps, long enough for the tau rule) flag a row at most at the
    family-wise rate RHAT_ALPHA (100 rows of 4 temperatures: observed <= 0.12, 3 binomial
    standard errors above 0.05; the former fixed 1.01 threshold flagged nearly every such row),
    and a 1.5-sigma shift of E between the halves of one temperature's run is flagged there in
    at least 27 of 30 rows; on the production path (each series' own R-hat p-value, as Monte
    Carlo rows carry it) and on the fallback for rows without it."""
    rng = np.random.default_rng(7 + n_chains)
    alarms = [short_run_flags(_ar1_row(rng, 4, n_chains, 200, 0.5, production=production), 200, n_chains).any()
              for _ in range(100)]
    assert np.mean(alarms) <= 0.12
    hits = [short_run_flags(_ar1_row(rng, 4, n_chains, 200, 0.5, drift_at=2, drift=1.5, production=production),
                            200, n_chains)[2] for _ in range(30)]
    assert sum(hits) >= 27


def test_sweeps_double_only_when_flagged():
    """A point doubles its sweeps exactly when the shorter run was flagged: near T_c of a 6 x 6
    Ising lattice 2 chains of 100 sweeps disagree; the recorded sweeps are the first that pass
    or the cap, and the run at half the recorded sweeps (its own stream: analysis.atlas_adapt)
    was flagged."""
    H = square("ising", 6)
    opts = dict(sweeps=100, discard=100, n_chains=2, algorithm="metropolis")
    task = AtlasTask(H, np.array([2.3]), 0.0, np.ones((36, 1)), 3, 0, (0, 0, 0, 0), opts, 800, True, False)
    row = run_atlas_task(task)
    s = row["sweeps"]
    assert s in (200, 400, 800)                  # at this seed 100 sweeps are flagged: the rule acts
    assert s == 800 or not row["flagged"].any()
    if s > 100:                 # the run at half the sweeps: the first (seed 3) or a point rerun's seed
        level = int(np.log2(s // 200))
        seed = 3 if level == 0 else point_seed(3, 0, level)
        half = compute_row(H, np.array([2.3]), 0.0, np.ones((36, 1)), seed, 0,
                           dict(opts, sweeps=s // 2, discard=max(100, s // 8)))
        assert short_run_flags(half, s // 2, n_chains=2).any()


_KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_atlas import _source, T_GRID, FIELDS, OPTS
    from spinsim.analysis.atlas_run import run_atlas
    run_atlas(_source(), T_GRID, FIELDS, out={out!r}, progress=False, commit_every=0.0, **OPTS)
""")


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted(whole, tmp_path):
    out = str(tmp_path / "killed.h5")
    script = _KILL_SCRIPT.format(tests=os.path.dirname(__file__), out=out)
    env = dict(os.environ, SPINSIM_KILL_AT="replaced:4")         # SIGKILL right after the 4th commit's rename
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == -9, p.stderr[-2000:]
    part = read_atlas(out)
    assert 0 < int(part.done.sum()) < part.done.size
    run_atlas(_source(), T_GRID, FIELDS, out=out, progress=False, **OPTS)
    _same_numbers(read_atlas(out), whole)
