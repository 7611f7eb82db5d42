"""Issue 13 item 5: checkpoints inside a Monte Carlo run. A run stopped at any moment resumes from
its last checkpoint (chains, walkers, ladder, counters, measured series) and ends bit-identical to
an uninterrupted run: in process (an interruption right after the k-th save), and for a sweep
killed with SIGKILL through the SPINSIM_KILL_AT hook and at random moments."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import spinsim as ss
from spinsim.io import InconsistentFileError
from spinsim.checkpoint import CheckpointMismatchError, Checkpointer, describe_params, first_difference


class Stop(Exception):
    pass


def _stop_after_saves(monkeypatch, k: int) -> None:
    """Make the k-th checkpoint save the last thing the run does (as if killed right after it)."""
    real = Checkpointer.save
    count = [0]

    def save(self, runner, done, total):
        real(self, runner, done, total)
        count[0] += 1
        if count[0] == k:
            raise Stop(done)
    monkeypatch.setattr(Checkpointer, "save", save)


def _same_result(a, b) -> None:
    assert np.array_equal(a.T, b.T)
    assert a.values.keys() == b.values.keys()
    for name in a.values:
        assert a.values[name].tobytes() == b.values[name].tobytes(), name
    assert a.magnetization_vector.tobytes() == b.magnetization_vector.tobytes()
    drop = {"elapsed_s", "updates_per_s"}
    assert {k: v for k, v in a.meta.items() if k not in drop} == {k: v for k, v in b.meta.items() if k not in drop}


CASES = {
    # tempering with a tuned ladder: walkers, ladder stages and swap counters carried over
    "pt_feedback": (lambda: ss.lattice("ising", 6), dict(algorithm="pt", ladder="feedback", T=[0.8, 1.5, 2.5, 4.0])),
    # Metropolis on continuous spins: the adapted steps; two chains
    "metropolis_xy": (lambda: ss.lattice("xy", 4), dict(algorithm="metropolis", n_chains=2, T=[0.7, 1.4])),
    # Wolff: the cluster counts fixed at the end of equilibration
    "wolff": (lambda: ss.lattice("ising", 8), dict(algorithm="wolff", T=[1.0, 2.0])),
}


#: (case, k): the k-th save ends the first run: in the tuning stages, the adapting equilibration,
#: and the measurement
STOPS = [("pt_feedback", 12), ("metropolis_xy", 20), ("wolff", 60)]


@pytest.mark.parametrize("case,k", STOPS)
def test_a_run_stopped_after_a_checkpoint_resumes_bit_identical(tmp_path, monkeypatch, case, k):
    make, kw = CASES[case]
    H = make()
    kw = dict(kw)
    T = np.asarray(kw.pop("T"))
    kw.setdefault("n_chains", 1)
    common = dict(method="mc", sweeps=200, discard=100, seed=5, progress=False, **kw)
    ref = ss.solve(H, T, **common)
    ck = tmp_path / "c.h5"
    with monkeypatch.context() as m:
        _stop_after_saves(m, k)
        with pytest.raises(Stop):
            ss.solve(H, T, checkpoint=ck, checkpoint_interval=0, **common)
    with h5py.File(ck) as f:
        assert 0 < int(f.attrs["done"]) < 300
    res = ss.solve(H, T, checkpoint=ck, checkpoint_interval=3600, **common)
    _same_result(res, ref)
    again = ss.solve(H, T, checkpoint=ck, **common)      # from the checkpoint left: the same result
    _same_result(again, ref)


def _column_of_bytes(path: Path, changed: np.ndarray) -> set[tuple[str, int]]:
    """(dataset, column) of each changed byte offset of a series file; ('outside', -1) for a byte
    outside every dataset (the file's structure)."""
    out = set()
    with h5py.File(path) as f:
        spans = {name: (f[name].id.get_offset(), f[name].shape) for name in f}
    for pos in changed.tolist():
        for name, (off, (R, n)) in spans.items():
            if off <= pos < off + R * n * 8:
                out.add((name, (pos - off) // 8 % n))
                break
        else:
            out.add(("outside", -1))
    return out


def test_saves_append_only_the_newly_measured_columns_and_none_at_the_end(tmp_path, monkeypatch):
    """Every save after the series file is made writes into it, in place, only the columns measured
    since the previous save (each byte that changes belongs to one of them); the state file holds
    no series; no save comes after the last sweep."""
    H = ss.lattice("ising", 4)
    ck = tmp_path / "c.h5"
    ser = ck.with_name("c.h5.series")
    seen = []
    real = Checkpointer.save

    def save(self, runner, done, total):
        real(self, runner, done, total)
        with h5py.File(ck) as f:
            measured = int(f.attrs["measured"])
            assert not set(f["state"]) & {"out_E", "out_mabs", "out_mu"} and "out_msum" in f["state"]
        seen.append((done, total, measured, ser.stat().st_ino if ser.exists() else None,
                     ser.read_bytes() if ser.exists() else None))
    monkeypatch.setattr(Checkpointer, "save", save)
    ss.solve(H, [1.0, 2.0], method="mc", sweeps=200, discard=100, seed=3, n_chains=1, progress=False,
             checkpoint=ck, checkpoint_interval=0)
    assert max(d for d, *_ in seen) < 300 and all(t == 300 for _, t, *_ in seen)
    assert all(m == max(0, d - 100) for d, _, m, *_ in seen)
    made = [s for s in seen if s[3] is not None]
    assert made[0][2] > 0 and all(s[2] == 0 for s in seen[:len(seen) - len(made)])   # made once measuring began
    assert len({s[3] for s in made}) == 1                 # never replaced: the same file throughout
    for (_, _, m0, _, b0), (_, _, m1, _, b1) in zip(made, made[1:]):
        changed = np.flatnonzero(np.frombuffer(b0, np.uint8) != np.frombuffer(b1, np.uint8))
        cols = _column_of_bytes(ser, changed)
        assert cols and all(name in ("out_E", "out_mabs", "out_mu") and m0 <= c < m1 for name, c in cols), cols


def _stopped_ising_run(tmp_path, monkeypatch, seed: int, k: int):
    """A 4x4 Ising run at T = 1, 2 stopped right after its k-th save (every ~1 %): returns the
    Hamiltonian, the solve options, the uninterrupted result and the checkpoint path."""
    H = ss.lattice("ising", 4)
    common = dict(method="mc", sweeps=200, discard=100, seed=seed, n_chains=1, progress=False)
    ref = ss.solve(H, [1.0, 2.0], **common)
    ck = tmp_path / "c.h5"
    with monkeypatch.context() as m:
        _stop_after_saves(m, k)
        with pytest.raises(Stop):
            ss.solve(H, [1.0, 2.0], checkpoint=ck, checkpoint_interval=0, **common)
    return H, common, ref, ck


def test_columns_beyond_the_saved_ones_are_ignored_and_a_lost_series_file_is_named(tmp_path, monkeypatch):
    """A kill while columns are written leaves them beyond the saved 'measured': garbage there does
    not reach the resumed result (bit-identical to an uninterrupted run). Without its series file
    a checkpoint inside the measurement is refused, naming what to do."""
    H, common, ref, ck = _stopped_ising_run(tmp_path, monkeypatch, seed=5, k=60)
    with h5py.File(ck) as f:
        measured = int(f.attrs["measured"])
    assert 0 < measured < 200
    with h5py.File(ck.with_name("c.h5.series"), "r+") as f:
        for name in f:
            f[name][:, measured:] = np.nan
    _same_result(ss.solve(H, [1.0, 2.0], checkpoint=ck, checkpoint_interval=3600, **common), ref)
    ck.with_name("c.h5.series").unlink()
    with pytest.raises(InconsistentFileError, match=f"{ck}: its measured series cannot be read .*delete the "
                       "checkpoint"):
        ss.solve(H, [1.0, 2.0], checkpoint=ck, **common)


def test_a_checkpoint_of_another_run_is_refused_naming_the_parameter(tmp_path):
    """The refusal names the first parameter that differs with its stored and requested value."""
    H = ss.lattice("ising", 4)
    ck = tmp_path / "c.h5"
    kw = dict(method="mc", discard=100, n_chains=1, progress=False, checkpoint=ck)
    ss.solve(H, [1.0, 2.0], sweeps=200, seed=1, checkpoint_interval=0, **kw)
    how = "rerun with the same parameters, or delete the checkpoint"
    with pytest.raises(CheckpointMismatchError, match=f"{ck}: checkpoint was written with seed=1, this run asks "
                       f"for seed=2; {how}"):
        ss.solve(H, [1.0, 2.0], sweeps=200, seed=2, **kw)
    with pytest.raises(CheckpointMismatchError, match="checkpoint was written with sweeps=200, this run asks for "
                       "sweeps=400;"):
        ss.solve(H, [1.0, 2.0], sweeps=400, seed=1, **kw)
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint was written with T=\[1.0, 2.0\], this run asks "
                       r"for T=\[1.0, 2.5\];"):
        ss.solve(H, [1.0, 2.5], sweeps=200, seed=1, **kw)
    with pytest.raises(ValueError, match="checkpoint interval must be a number of seconds >= 0, got -1"):
        ss.solve(H, [1.0], method="mc", sweeps=100, n_chains=1, checkpoint=tmp_path / "d.h5", checkpoint_interval=-1)


def test_a_refusal_names_large_arrays_by_shape_and_says_when_the_file_records_no_parameters(tmp_path):
    big = describe_params(T=np.linspace(1.0, 2.0, 40), sweeps=10)
    other = describe_params(T=np.linspace(1.0, 2.1, 40), sweeps=10)
    assert "values" not in big["T"]
    assert first_difference(big, other).startswith("with T=an array of shape (40,) (sha256 ")
    assert first_difference(big, describe_params(T=np.linspace(1.0, 2.0, 40), sweeps=10)) is None
    assert first_difference(big, describe_params(T=np.linspace(1.0, 2.0, 40))) == (
        "with sweeps=10, this run does not set sweeps")
    assert first_difference(describe_params(sweeps=10), big).startswith("without T, this run asks for T=an array")
    ck = tmp_path / "c.h5"
    Checkpointer(ck, "id-a").save(_Dummy(), 1, 5)        # no parameters recorded (as before they were)
    with pytest.raises(CheckpointMismatchError, match="written with other parameters \\(this checkpoint does not "
                       "record which\\)"):
        Checkpointer(ck, "id-b", params=other).load(_Dummy(), 5)


class _Dummy:
    """A runner with one array of state."""

    def state(self):
        return {"x": np.arange(3.0)}

    def load_state(self, saved):
        pass


# ----------------------------------------------------------------------------- killed sweeps
_SWEEP = """
import sys, numpy as np, spinsim as ss
H = ss.lattice("ising", 6)
ss.sweep(H, [0.8, 1.4, 2.2, 3.5], [0.0, 0.3], out=sys.argv[1], method="mc", algorithm="pt",
         sweeps=int(sys.argv[2]), seed=3, n_chains=1, progress=False, estimate=False,
         checkpoint_interval=float(sys.argv[3]))
"""


def _sweep(out: Path, sweeps: int, env: dict | None = None, interval: float = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _SWEEP, str(out), str(sweeps), str(interval)], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=600)


def _start_sweep(out: Path, sweeps: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SWEEP, str(out), str(sweeps), "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _datasets(path: Path) -> dict[str, bytes]:
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda n, d: out.__setitem__(n, d[()].tobytes() if d.dtype.kind != "O" else
                                                  repr(d[()].tolist()).encode()) if isinstance(d, h5py.Dataset) else None)
        out["attrs"] = repr({k: v for k, v in f["sweep"].attrs.items()}).encode()
    return out


def _checkpoints(out: Path) -> list[tuple[str, int, int]]:
    folder = out.with_name(f".{out.name}.checkpoints")
    found = []
    for p in sorted(folder.glob("row-*.h5")):
        with h5py.File(p) as f:
            found.append((p.name, int(f.attrs["done"]), int(f.attrs["total"])))
    return found


def _resume_and_compare(out: Path, ref: Path, sweeps: int, require_mid: bool = True) -> None:
    """Rerun the killed sweep; it must announce the mid-row resume and end equal to ``ref``."""
    mid = [c for c in _checkpoints(out) if 0 < c[1] < c[2]]
    assert mid or not require_mid, "the kill left no checkpoint inside a row"
    p = _sweep(out, sweeps, interval=3600)        # the resumed run: no more checkpoints than needed
    assert p.returncode == 0, p.stderr
    for name, done, total in mid:
        assert f"row {name[4:-3]} resumes from its checkpoint at sweep {done} of {total}" in p.stderr, p.stderr
    assert _datasets(out) == _datasets(ref)
    assert not out.with_name(f".{out.name}.checkpoints").exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """reference(sweeps): the sweep file of an uninterrupted run without checkpoints (made once)."""
    d = tmp_path_factory.mktemp("ref")
    made: dict[int, Path] = {}

    def get(sweeps: int) -> Path:
        if sweeps not in made:
            ref = d / f"ref{sweeps}.h5"
            ss.sweep(ss.lattice("ising", 6), [0.8, 1.4, 2.2, 3.5], [0.0, 0.3], out=ref, method="mc",
                     algorithm="pt", sweeps=sweeps, seed=3, n_chains=1, progress=False, estimate=False,
                     checkpoint_interval=None)
            made[sweeps] = ref
        return made[sweeps]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["half:70", "written:150"])
def test_a_sweep_killed_inside_a_row_resumes_to_an_identical_file(tmp_path, reference, kill_at):
    """SIGKILL in the middle of a checkpoint write (``half``: the temporary half written) or between
    the temporary and its move (``written``), inside row 0 and inside row 1."""
    out = tmp_path / "s.h5"
    p = _sweep(out, 400, env={"SPINSIM_KILL_AT": kill_at})
    assert p.returncode == -signal.SIGKILL, p.stderr
    _resume_and_compare(out, reference(400), 400)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_a_sweep_killed_at_random_moments_resumes_to_an_identical_file(tmp_path, reference, trial):
    """kill -9 at a random moment after the first checkpoint (trial 2: twice), then resume."""
    rng = np.random.default_rng(100 + trial)
    out = tmp_path / "s.h5"
    for _ in range(2 if trial == 2 else 1):
        p = _start_sweep(out, 3000)
        try:
            deadline = time.monotonic() + 600
            while not _checkpoints(out) and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(float(rng.uniform(0.0, 1.5)))
            p.send_signal(signal.SIGKILL)
        finally:
            if p.poll() is None:
                p.kill()
            _, err = p.communicate(timeout=120)
        if p.returncode != -signal.SIGKILL:    # the sweep finished before the kill: nothing to resume
            pytest.fail(f"the sweep ended (rc {p.returncode}) before it was killed: lengthen it\n{err}")
    _resume_and_compare(out, reference(3000), 3000, require_mid=False)


def test_a_checkpoint_written_before_series_files_still_resumes(tmp_path, monkeypatch):
    """A checkpoint of the former layout (the series inside /state, no 'measured' attribute) is
    resumed as it was: the result is bit-identical to an uninterrupted run."""
    H, common, ref, ck = _stopped_ising_run(tmp_path, monkeypatch, seed=7, k=50)
    series = ck.with_name("c.h5.series")
    with h5py.File(ck, "r+") as f, h5py.File(series) as s:
        n = int(f.attrs["measured"])
        for name in s:
            a = np.zeros(s[name].shape)
            a[:, :n] = s[name][:, :n]
            f["state"][name] = a
        del f.attrs["measured"]
    series.unlink()
    _same_result(ss.solve(H, [1.0, 2.0], checkpoint=ck, checkpoint_interval=3600, **common), ref)
