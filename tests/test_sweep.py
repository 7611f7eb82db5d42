"""(T, h) sweeps: file layout, row independence, resume after interruption (in-process and a real
SIGKILL), refusal of mismatched resumes, crash safety of commits, and the 2D Ising picture."""
from __future__ import annotations

import fcntl
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import spinsim as ss
from spinsim.io import SpinsimFileError
from spinsim.phase import (SWEEP_OBSERVABLES, SweepMismatchError, compute_row, read_sweep,
                           resolve_direction, serial_executor, solver_options, sweep)
from spinsim.phase import run as run_mod
from spinsim.phase import store as store_mod

TC_ONSAGER = 2.0 / np.log(1.0 + np.sqrt(2.0))
T3 = np.array([1.5, 2.5, 3.5])
H3 = np.array([0.0, 0.2, 0.4])
FAST = dict(sweeps=200, algorithm="heatbath", progress=False, estimate=False)


def small() -> ss.Hamiltonian:
    return ss.lattice("ising", (4, 4))


def datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def assert_same_data(a: Path, b: Path) -> None:
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    for k in da:
        x, y = da[k], db[k]
        if x.dtype.kind in "fc":
            np.testing.assert_array_equal(x, y, err_msg=k)      # NaN == NaN, bit-identical values
        else:
            assert np.array_equal(x, y), k


# ----------------------------------------------------------------------------- layout
def test_file_layout_and_round_trip(tmp_path):
    out = tmp_path / "s.h5"
    res = sweep(small(), T3, H3, out=out, seed=3, **FAST)
    assert res.complete and res.done.all()
    with h5py.File(out, "r") as f:
        for k in ("spinsim_version", "command_line", "seed", "sign_convention", "k_B", "head_naming",
                  "hamiltonian_sha256", "method", "solver_sweeps", "created"):
            assert k in f.attrs, k
        assert f.attrs["spinsim_kind"] == "sweep"
        g = f["sweep"]
        assert g["T"].is_scale and g["h"].is_scale
        assert g["T"].attrs["units"] and g["h"].attrs["units"]
        for name in SWEEP_OBSERVABLES:
            assert g[name].shape == (3, 3) and g[name + "_err"].shape == (3, 3)
            assert [d.label for d in g[name].dims] == ["h", "T"]
            assert g[name].dims[1][0] == g["T"]
        assert g["tau_int"].shape == (3, 3)
        assert list(g["done"][()]) == [1, 1, 1]
        assert "boundary" not in f          # the engine computes no boundaries (the caller does)
    back = read_sweep(out)
    assert isinstance(back, ss.Result) and back.dims == ("h", "T")
    assert sorted(back.data) == sorted(res.data)
    for k, v in res.data.items():
        np.testing.assert_array_equal(back.data[k], v)
        np.testing.assert_array_equal(getattr(back, k), back[k])      # res["x"] is res.x
    assert back.method == "mc" and back.seed == 3 and back.n_free == 16


def test_added_field_matches_direct_solve():
    """Row k is exactly solve(H with h_k u added): checked with exact enumeration."""
    H = ss.lattice("ising", (3, 3))
    res = sweep(H, T3, H3, method="exact", progress=False)
    for k, hv in enumerate(H3):
        ref = ss.solve(ss.replace(H, h=np.full((9, 1), hv)), T3, method="exact", direction=np.ones(1))
        np.testing.assert_allclose(res.energy[k], ref.energy, rtol=1e-12)
        np.testing.assert_allclose(res.projection[k], ref.projection, rtol=1e-12, atol=1e-14)


def test_a_row_of_a_sweep_is_the_result_of_that_field():
    """``res.row(k)`` is a Result over T equal to solving H with h_k u added (exact, rtol 1e-12)."""
    H = ss.lattice("ising", (3, 3))
    res = sweep(H, T3, H3, method="exact", progress=False)
    r = res.row(2)
    ref = ss.solve(ss.replace(H, h=np.full((9, 1), H3[2])), T3, method="exact", direction=np.ones(1))
    assert isinstance(r, ss.Result) and r.dims == ("T",) and r.meta["h"] == H3[2]
    for name in ref.array_names():
        np.testing.assert_allclose(getattr(r, name), getattr(ref, name), rtol=1e-12, atol=1e-15, err_msg=name)
    with pytest.raises(IndexError, match="row 3 out of range: this sweep has 3 rows"):
        res.row(3)


def test_rows_do_not_depend_on_order_or_company(tmp_path):
    H = small()
    a = sweep(H, T3, H3, seed=9, **FAST)
    b = sweep(H, T3, H3, seed=9, executor=lambda tasks: serial_executor(list(tasks)[::-1]), **FAST)
    for k in a.data:
        np.testing.assert_array_equal(a.data[k], b.data[k])
    U, _ = resolve_direction(H, None)
    opts = solver_options("mc", dict(sweeps=200, algorithm="heatbath"))
    row = compute_row(H, T3, H3[2], U, 9, 2, opts)
    np.testing.assert_array_equal(row["susceptibility"], a.data["susceptibility"][2])


def test_directions():
    H = ss.lattice("heisenberg", (3,), h=np.array([0.0, 0.0, 2.0]))
    U, label = resolve_direction(H, "field")
    np.testing.assert_allclose(U, np.tile([0, 0, 1.0], (3, 1)))
    U, _ = resolve_direction(H, np.array([3.0, 4.0, 0.0]))
    np.testing.assert_allclose(U[0], [0.6, 0.8, 0.0])
    with pytest.raises(ValueError, match="direction 'field' needs"):
        resolve_direction(ss.lattice("heisenberg", (3,)), "field")
    with pytest.raises(ValueError, match=r"unknown direction 'up'.*allowed"):
        resolve_direction(H, "up")
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(3, 3\), got \(2,\)"):
        resolve_direction(H, [1.0, 0.0])


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="T = -1.0"):
        sweep(small(), [-1.0, 2.0], H3, **FAST)
    with pytest.raises(ValueError, match="h = nan"):
        sweep(small(), T3, [0.0, np.nan], **FAST)
    with pytest.raises(ValueError, match="unknown Monte Carlo option 'sweep'"):
        sweep(small(), T3, H3, sweep=10, progress=False)
    with pytest.raises(ValueError, match="unknown method 'mcmc'"):
        sweep(small(), T3, H3, method="mcmc")


# ----------------------------------------------------------------------------- resume
class Interrupt:
    """An executor that stops (like Ctrl-C) after ``n`` rows, recording what it was asked to run."""

    def __init__(self, n: int | None = None) -> None:
        self.n, self.asked = n, []

    def __call__(self, tasks):
        self.asked = [t.field_index for t in tasks]
        for i, row in enumerate(serial_executor(tasks)):
            if self.n is not None and i == self.n:
                raise KeyboardInterrupt
            yield row


def test_interrupted_sweep_resumes_without_recomputing(tmp_path):
    H, hs = small(), np.linspace(0, 0.5, 5)
    ref = tmp_path / "ref.h5"
    sweep(H, T3, hs, out=ref, seed=4, **FAST)
    out = tmp_path / "s.h5"
    with pytest.raises(KeyboardInterrupt):
        sweep(H, T3, hs, out=out, seed=4, executor=Interrupt(2), **FAST)
    part = read_sweep(out)
    assert list(part.done) == [True, True, False, False, False] and not part.boundaries
    again = Interrupt()
    sweep(H, T3, hs, out=out, seed=4, executor=again, **FAST)
    assert again.asked == [2, 3, 4]                       # finished rows are not recomputed
    assert_same_data(out, ref)
    nothing = Interrupt()
    sweep(H, T3, hs, out=out, seed=4, executor=nothing, **FAST)   # complete: nothing to do
    assert nothing.asked == []
    assert_same_data(out, ref)


@pytest.mark.parametrize("change, name", [
    (dict(seed=5), "'seed'"),
    (dict(T=np.array([1.5, 2.5, 3.6])), "'T' differs (point 2"),
    (dict(fields=np.array([0.0, 0.2])), "'h'"),
    (dict(sweeps=300), "'sweeps'"),
    (dict(algorithm="metropolis"), "'algorithm'"),
    (dict(H=ss.lattice("ising", (4, 4), J=1.5)), "'hamiltonian_sha256'"),
    (dict(direction=np.array([-1.0])), "'direction'"),
    (dict(method="exact"), "'method'"),
])
def test_mismatched_resume_is_refused_naming_the_parameter(tmp_path, change, name):
    out = tmp_path / "s.h5"
    base = dict(H=small(), T=T3, fields=H3, seed=4, **FAST)
    sweep(out=out, **base)
    kw = {**base, **change}
    if kw.get("method") == "exact":
        kw = {k: v for k, v in kw.items() if k not in ("sweeps", "algorithm")}
    with pytest.raises(SweepMismatchError, match=f"cannot resume: parameter {re.escape(name)}.*--overwrite"):
        sweep(out=out, **kw)
    res = sweep(out=out, overwrite=True, **kw)                          # overwrite starts afresh
    assert res.complete and read_sweep(out).params()["seed"] == kw["seed"]


def test_default_options_do_not_count_as_a_change(tmp_path):
    out = tmp_path / "s.h5"
    sweep(small(), T3, H3, out=out, seed=1, sweeps=200, progress=False, estimate=False)
    before = datasets(out)
    again = Interrupt()
    res = sweep(small(), T3, H3, out=out, seed=1, sweeps=200, algorithm="heatbath", discard=100,
                n_chains=4, backend="cpu", progress=False, estimate=False, executor=again)
    assert again.asked == [] and res.complete        # resumed as the same run: nothing recomputed
    after = datasets(out)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_foreign_or_damaged_out_file_is_refused(tmp_path):
    out = tmp_path / "s.h5"
    with h5py.File(out, "w") as f:
        f["x"] = 1
    with pytest.raises(SpinsimFileError, match="not written by spinsim.*--overwrite"):
        sweep(small(), T3, H3, out=out, **FAST)
    out.write_bytes(b"not hdf5")
    with pytest.raises(SpinsimFileError, match="not a readable HDF5 file"):
        sweep(small(), T3, H3, out=out, **FAST)
    assert sweep(small(), T3, H3, out=out, overwrite=True, **FAST).complete


def test_crash_during_a_commit_leaves_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "s.h5"
    sweep(small(), T3, H3, out=out, seed=2, **FAST)
    before = datasets(out)
    state = read_sweep(out)

    def dies_halfway(f, st):
        f.create_group("sweep")["T"] = st.T
        raise KeyboardInterrupt   # as if killed in the middle of writing the new version

    monkeypatch.setattr(store_mod, "write_sweep", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        store_mod.commit(out, state)
    after = datasets(out)
    assert sorted(after) == sorted(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    assert not list(tmp_path.glob(".s.h5.tmp-*"))


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "s.h5"
    with open(tmp_path / ".s.h5.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SpinsimFileError, match="another process is writing"):
            sweep(small(), T3, H3, out=out, **FAST)


def test_long_runs_are_announced(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_mod, "estimate_row_seconds", lambda *a, **k: 4000.0)
    sweep(small(), T3, H3, sweeps=200, progress=False)
    err = capsys.readouterr().err
    assert "warning: estimated run time 3.3 h (3 rows" in err


class FakeClock:
    """A clock that a fake solve advances by ``overhead + per_sweep * sweeps`` seconds."""

    def __init__(self, overhead: float, per_sweep: float) -> None:
        self.now, self.overhead, self.per_sweep, self.calls = 0.0, overhead, per_sweep, []

    def __call__(self) -> float:
        return self.now

    def solve(self, H, T, method, seed, direction, sweeps, discard, **kw):
        assert method == "mc" and discard == 0
        self.calls.append(sweeps)
        self.now += self.overhead + self.per_sweep * sweeps


@pytest.mark.parametrize("overhead, per_sweep, expected_per_sweep", [
    (0.05, 0.01, 0.01),             # (t12 - t4) / 8 removes the fixed overhead exactly
    (1.2, 0.01, 1.32 / 24),         # overhead dominates: floored at half the plain mean t12 / 24
])
def test_estimate_row_seconds_from_the_timing_probe(monkeypatch, overhead, per_sweep, expected_per_sweep):
    import spinsim.solvers

    clock = FakeClock(overhead, per_sweep)
    monkeypatch.setattr(run_mod, "perf_counter", clock)
    monkeypatch.setattr(spinsim.solvers, "solve", clock.solve)
    H = small()
    U, _ = resolve_direction(H, None)
    opts = solver_options("mc", dict(sweeps=400))           # discard defaults to 100
    est = run_mod.estimate_row_seconds(H, T3, U, 0.0, "mc", opts, 0)
    assert clock.calls == [4, 12]
    assert est == pytest.approx(expected_per_sweep * (400 + 100), rel=1e-12)
    assert run_mod.estimate_row_seconds(H, T3, U, 0.0, "exact", {}, 0) is None


# ----------------------------------------------------------------------------- real processes
CMD = ["sweep", "--system", "ising2d", "--L", "6", "--T", "1.5:3.5:4", "--field", "0:0.45:10",
       "--sweeps", "1500", "--seed", "5", "--no-progress"]


def _spinsim(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "spinsim.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _n_done(path: Path) -> int:
    try:
        with h5py.File(path, "r") as f:
            return int(f["sweep/done"][()].sum())
    except (OSError, KeyError):
        return 0


def _kill_after_first_row(out: Path, sig: int) -> int:
    """Start a sweep, send ``sig`` once its first row is on disk, return its exit status. The
    child never outlives the test: it is killed on any failure (a generous deadline for Numba's
    first compilation on a loaded machine; no signal sent fails the test explicitly)."""
    p = _spinsim(CMD + ["--out", str(out)])
    sent = False
    try:
        deadline = time.time() + 600
        while time.time() < deadline and p.poll() is None:
            if _n_done(out) >= 1:
                p.send_signal(sig)
                sent = True
                break
            time.sleep(0.005)
        assert sent, f"no row of the sweep finished (exit status {p.poll()}): the signal was never sent"
        p.communicate(timeout=300)
        return p.returncode
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_uninterrupted_file(tmp_path):
    ref = tmp_path / "ref.h5"
    r = _spinsim(CMD + ["--out", str(ref)])             # the reference runs beside the killed run
    out = tmp_path / "s.h5"
    rc = _kill_after_first_row(out, signal.SIGKILL)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert rc == -signal.SIGKILL
    n = _n_done(out)
    assert 1 <= n < 10, f"kill landed outside the sweep ({n} of 10 rows done)"
    again = _spinsim(CMD + ["--out", str(out)])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"resuming {out}: {n} of 10 field rows already done" in err
    assert_same_data(out, ref)
    assert not list(tmp_path.glob(".s.h5.tmp-*"))      # no temporaries left (the lock file stays: spinsim.locks)


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_resumes(tmp_path):
    out = tmp_path / "s.h5"
    rc = _kill_after_first_row(out, signal.SIGTERM)
    assert rc == 130
    assert 1 <= _n_done(out) < 10
    assert read_sweep(out).fraction_done < 1
    again = _spinsim(CMD + ["--out", str(out)])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert read_sweep(out).complete


# ----------------------------------------------------------------------------- physics
@pytest.mark.slow
def test_ising2d_phase_diagram_onsager():
    """2D Ising over T x h (pt, L = 8 and 16): chi peaks near T_c at h = 0 and moves up and
    down in height with |h|; <m.u> flips sign across h = 0 below T_c (the first-order line ending
    near T_c); the Binder crossing L = 8/16 at h = 0 lies within 2 % of Onsager's T_c."""
    from spinsim.analysis.boundaries import add_sweep_boundaries, binder_crossing_line

    T = np.linspace(2.0, 2.7, 8)
    hs = np.array([-0.1, 0.0, 0.1])
    fam = {L: sweep(ss.lattice("ising", (L, L)), T, hs, seed=L, algorithm="pt", sweeps=5000,
                    progress=False, estimate=False, n_chains=1) for L in (8, 16)}
    s16 = fam[16]
    bnd = add_sweep_boundaries(s16, ss.lattice("ising", (16, 16)))
    chi = bnd["chi_peak"]
    assert not chi.at_edge[1]
    assert abs(chi.T[1] - TC_ONSAGER) / TC_ONSAGER < 0.08                    # finite-size shift ~ 1/L
    assert chi.chi_max[1] > 1.5 * max(chi.chi_max[0], chi.chi_max[2])       # field rounds the peak
    low = 0                                                                  # T = 2.0 < T_c
    proj = s16.projection[:, low]
    assert proj[0] < -0.8 and proj[2] > 0.8                                   # jump across h = 0
    assert "coexistence" in s16.boundaries
    line = binder_crossing_line(fam, fields="zero")["binder_crossing_L8_16"]
    assert abs(line.T[1] - TC_ONSAGER) / TC_ONSAGER < 0.02, line
    assert np.isnan(line.T[0]) and np.isnan(line.T[2])


def test_the_sweep_engine_imports_no_analysis(tmp_path):
    """Dependencies point one way: a sweep written to a file (the engine) loads no module of
    spinsim.analysis (boundaries are the caller's: spinsim.analysis.boundaries)."""
    code = ("import sys, spinsim as ss\n"
            f"ss.sweep(ss.lattice('ising', (3, 3)), [1.0, 2.0], [0.0, 0.5], method='exact', "
            f"out={str(tmp_path / 's.h5')!r}, progress=False)\n"
            "print(sorted(m for m in sys.modules if m.startswith('spinsim.analysis')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert read_sweep(tmp_path / "s.h5").complete


def test_a_file_that_predates_an_option_resumes_with_the_value_it_ran_with():
    from spinsim.phase.fingerprint import first_difference
    old = [("seed", 1), ("sweeps", 200)]                        # written before n_chains and reduce existed
    assert first_difference(old, old + [("n_chains", 1), ("reduce", False)]) is None
    msg = first_difference(old, old + [("n_chains", 4)])
    assert "'n_chains' differs" in msg and "its rows ran with 1" in msg and "--chains 1" in msg
    assert "overwrite" not in msg
    assert "reduce=False" in first_difference(old, old + [("reduce", None)])
    assert "'other' differs (not in the file" in first_difference(old, old + [("other", 3)])
