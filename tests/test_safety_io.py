"""Issue 15 items 1-3 and 6: one writer per output, atomic writes, interrupts, a full disk, and the
HDF5 failures told apart. Real processes hold locks and files; kills happen at chosen write points
through the SPINSIM_KILL_AT hook of spinsim.atomic (no sleeping on timings)."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spinsim.atomic import DiskFullError, atomic_h5
from spinsim.cli import main
from spinsim.h5diag import (FileInUseError, NotHDF5Error, TruncatedFileError, WriterCrashedError)
from spinsim.io import InconsistentFileError, SpinsimFileError, open_spinsim
from spinsim.locks import OutputLockedError, hold, lock_path

SWEEP = ["sweep", "--system", "ising1d", "--L", "3", "--method", "exact", "--T", "1:2:3", "--field", "0:0.5:3",
         "--no-progress"]


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


class Holder:
    """A separate process that holds spinsim's output lock of ``path`` until told to stop."""

    def __init__(self, path: Path) -> None:
        self.p = _python("import sys; from spinsim.locks import hold\n"
                         f"with hold({str(path)!r}):\n    print('held', flush=True); sys.stdin.readline()")
        assert self.p.stdout.readline().strip() == "held", self.p.stderr.read()

    def stop(self) -> None:
        try:
            self.p.communicate("\n", timeout=60)
        finally:
            if self.p.poll() is None:        # never outlives the test
                self.p.kill()
                self.p.wait()


# ----------------------------------------------------------------------------- 1. one writer
def test_the_lock_file_is_never_deleted_and_a_refused_run_names_the_holder(tmp_path):
    out = tmp_path / "s.h5"
    with hold(out):
        ino = lock_path(out).stat().st_ino
    assert lock_path(out).stat().st_ino == ino           # kept on release: no split into two inodes
    h = Holder(out)
    try:
        for _ in range(2):                               # a refused run leaves the lock in place
            with pytest.raises(OutputLockedError, match=f"another process is writing.*process {h.p.pid} "):
                with hold(out):
                    pass
            assert lock_path(out).stat().st_ino == ino
    finally:
        h.stop()
    with hold(out):                                      # free again once the holder is gone
        assert lock_path(out).stat().st_ino == ino


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    out = tmp_path / "s.h5"
    with hold(out), hold(out):
        pass
    with hold(out):
        pass


@pytest.mark.parametrize("cmd", [
    SWEEP,
    ["gaps", "--model", "nonexistent-dir/"],
    ["extract", "--model", "nonexistent-dir/"],
    ["ground", "--model", "nonexistent-dir/", "--prompt", "a b"],
    ["ablate", "--model", "nonexistent-dir/"],
    ["validate", "--model", "nonexistent-dir/", "--head", "L0H0", "--prompt", "a b", "--correct", "c",
     "--wrong", "d"],
    ["demo", "--model", "nonexistent-dir/"],
], ids=lambda c: c[0])
def test_a_second_writer_of_any_command_is_refused_naming_the_first(tmp_path, capsys, cmd):
    out = tmp_path / ("out" if cmd[0] == "demo" else "o.h5")
    h = Holder(out)
    try:
        rc = main(cmd + ["--out", str(out), "--overwrite"] if cmd[0] in ("sweep", "gaps", "extract", "ground",
                                                                       "ablate") else cmd + ["--out", str(out)])
    finally:
        h.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert "another process is writing" in err[0] and f"process {h.p.pid}" in err[0]
    assert not out.exists()


# ----------------------------------------------------------------------------- 2. interrupts, kills
@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt in this process (pytest-xdist workers ignore SIGINT)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _sigint_default() -> None:
    # children of a pytest-xdist worker inherit SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: a real Ctrl-C reaches a command with the default disposition
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_a_file_is_written_stops_after_it_is_complete(tmp_path, sigint_raises):
    p = tmp_path / "a.h5"
    with pytest.raises(KeyboardInterrupt):
        with atomic_h5(p) as f:
            f["x"] = np.arange(3)
            os.kill(os.getpid(), signal.SIGINT)
            f["y"] = np.arange(4)                        # the write goes on to the end
    with h5py.File(p, "r") as f:
        assert f["y"][()].tolist() == [0, 1, 2, 3]
    assert not list(tmp_path.glob(".a.h5.tmp-*"))


def test_an_interrupted_command_says_truthfully_what_was_saved(tmp_path, capsys, monkeypatch):
    from spinsim.models import loading

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(loading, "load_model", interrupted)
    out = tmp_path / "g.h5"
    assert main(["gaps", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"{out} was not written" in err and "saved" not in err


_WRITE_TWICE = """
import sys, numpy as np
from spinsim.atomic import atomic_h5
for k in (1, 2):
    with atomic_h5(sys.argv[1]) as f:
        f["k"] = k
        f["data"] = np.full(200_000, float(k))
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["built", "half", "written", "replaced"])
def test_a_kill_at_any_write_point_leaves_a_whole_file(tmp_path, point):
    p = tmp_path / "w.h5"
    r = subprocess.run([sys.executable, "-c", _WRITE_TWICE, str(p)], env=dict(os.environ, SPINSIM_KILL_AT=f"{point}:2"),
                       capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL
    with h5py.File(p, "r") as f:                         # the first version, or the second, whole
        k = int(f["k"][()])
        assert k == (2 if point == "replaced" else 1)
        assert np.all(f["data"][()] == k)
    temps = list(tmp_path.glob(".w.h5.tmp-*"))
    assert len(temps) == (1 if point in ("half", "written") else 0)
    r = subprocess.run([sys.executable, "-c", _WRITE_TWICE, str(p)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob(".w.h5.tmp-*"))        # the dead writer's temporary is gone


@pytest.mark.slow
def test_a_killed_sweep_commit_resumes_to_the_same_file(tmp_path):
    ref, out = tmp_path / "ref.h5", tmp_path / "s.h5"
    cli = [sys.executable, "-m", "spinsim.cli"]
    assert subprocess.run(cli + SWEEP + ["--out", str(ref)], capture_output=True, timeout=300).returncode == 0
    r = subprocess.run(cli + SWEEP + ["--out", str(out)], capture_output=True, timeout=300,
                       env=dict(os.environ, SPINSIM_KILL_AT="half:3"))
    assert r.returncode == -signal.SIGKILL and list(tmp_path.glob(".s.h5.tmp-*"))
    r = subprocess.run(cli + SWEEP + ["--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr
    with h5py.File(ref, "r") as a, h5py.File(out, "r") as b:
        for k in ("energy", "specific_heat", "magnetization", "done"):
            np.testing.assert_array_equal(a[f"sweep/{k}"][()], b[f"sweep/{k}"][()])
    assert not list(tmp_path.glob(".s.h5.tmp-*"))


# ----------------------------------------------------------------------------- 3. a full disk
def _limited(nbytes: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))


BIG = ["--T", "1:2:100", "--field", "0:1:100", "--overwrite"]


def test_a_file_size_limit_is_one_line_and_keeps_the_previous_file(tmp_path):
    """RLIMIT_FSIZE (as `ulimit -f`) makes writes past 64 KiB fail with EFBIG."""
    out = tmp_path / "s.h5"
    assert main(SWEEP + ["--out", str(out)]) == 0
    before = out.read_bytes()
    r = subprocess.run([sys.executable, "-m", "spinsim.cli"] + SWEEP[:-5] + BIG + ["--no-progress", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, preexec_fn=_limited(64 * 1024))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert str(out) in lines[0] and "File too large" in lines[0] and "it needs" in lines[0]
    assert "previous file is unchanged" in lines[0]
    assert out.read_bytes() == before
    assert not list(tmp_path.glob(".s.h5.tmp-*"))


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the RLIMIT_FSIZE test covers EFBIG)")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_full_filesystem_is_one_line_naming_the_space_needed(small_fs, capsys):
    out = small_fs / "s.h5"
    assert main(SWEEP + ["--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(SWEEP[:-5] + BIG + ["--no-progress", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not enough disk space" in err[0] and "needs" in err[0] and "free" in err[0], err
    assert out.read_bytes() == before
    with pytest.raises(DiskFullError, match="previous file is unchanged"):
        with atomic_h5(out) as f:
            f["x"] = np.zeros(300_000)


# ----------------------------------------------------------------------------- 6. HDF5 failures
def test_hdf5_failures_are_told_apart(tmp_path):
    good = tmp_path / "s.h5"
    assert main(SWEEP + ["--out", str(good)]) == 0
    text = tmp_path / "t.h5"
    text.write_text("hello\n")
    with pytest.raises(NotHDF5Error, match="no HDF5 signature"):
        open_spinsim(text)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    with pytest.raises(TruncatedFileError, match=r"truncated: \d+ bytes of the \d+"):
        open_spinsim(cut)
    flagged = tmp_path / "flag.h5"
    flagged.write_bytes(good.read_bytes())
    r = subprocess.run([sys.executable, "-c", "import h5py, os, sys; f = h5py.File(sys.argv[1], 'a', libver='latest');"
                        " f.attrs['x'] = 1; f.flush(); os._exit(0)", str(flagged)], capture_output=True, timeout=60)
    assert r.returncode == 0
    with pytest.raises(WriterCrashedError, match="h5clear -s"):
        open_spinsim(flagged)
    busy = tmp_path / "busy.h5"
    busy.write_bytes(good.read_bytes())
    p = _python("import sys, h5py\nf = h5py.File(sys.argv[1], 'a')\nprint('open', flush=True)\nsys.stdin.readline()"
                .replace("sys.argv[1]", repr(str(busy))))
    try:
        assert p.stdout.readline().strip() == "open"
        with pytest.raises(FileInUseError, match="in use"):
            open_spinsim(busy)
    finally:
        p.communicate("\n", timeout=60)


def test_an_inconsistent_sweep_names_the_dataset_and_keeps_finished_rows(tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(SWEEP + ["--out", str(out)]) == 0
    with h5py.File(out, "a") as f:                       # a complete sweep with a wrong-shaped dataset
        dims = f["sweep/energy"].attrs["dims"]
        del f["sweep/energy"]
        f["sweep/energy"] = np.zeros((3, 2))
        f["sweep/energy"].attrs["dims"] = dims
    capsys.readouterr()
    assert main(SWEEP + ["--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/sweep/energy has shape (3, 2)" in err[0] and "(3, 3)" in err[0], err
    assert "move it aside" in err[0] and "use --overwrite" not in err[0]
    with pytest.raises(InconsistentFileError):
        from spinsim.phase import read_sweep
        read_sweep(out)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["built:2:INT", "half:2:INT", "written:2:INT", "replaced:2:INT", "half:2:TERM"])
def test_ctrl_c_during_a_sweep_commit_always_stops_the_run(tmp_path, point):
    """SIGINT at each write point of the second commit (the first finished row): the commit
    completes, the run stops with exit 130 saying the rows are saved, and the file holds that row."""
    out = tmp_path / "s.h5"
    r = subprocess.run([sys.executable, "-m", "spinsim.cli"] + SWEEP + ["--out", str(out)], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, SPINSIM_KILL_AT=point),
                       preexec_fn=_sigint_default)
    assert r.returncode == 130, r.stderr
    assert "the finished rows are saved in" in r.stderr.strip().splitlines()[-1]
    with h5py.File(out, "r") as f:
        assert f["sweep/done"][()].tolist() == [1, 0, 0]
    assert not list(tmp_path.glob(".s.h5.tmp-*"))


@pytest.mark.slow
def test_a_killed_extract_leaves_no_temporary_after_a_rerun_and_a_full_disk_is_one_line(tmp_path):
    from _tiny_models import gpt2_dir
    out = tmp_path / "heads.h5"
    cmd = [sys.executable, "-m", "spinsim.cli", "extract", "--model", str(gpt2_dir()), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, timeout=300, env=dict(os.environ, SPINSIM_KILL_AT="half:1"))
    assert r.returncode == -signal.SIGKILL and list(tmp_path.glob(".heads.h5.tmp-*")) and not out.exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob(".heads.h5.tmp-*"))
    before = out.read_bytes()
    r = subprocess.run(cmd + ["--overwrite"], capture_output=True, text=True, timeout=300,
                       preexec_fn=_limited(len(before) // 2))
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(out) in last and "File too large" in last and "previous file is unchanged" in last
    assert out.read_bytes() == before


def test_a_damaged_result_file_names_the_file_and_the_problem(tmp_path):
    from spinsim import Result
    p = tmp_path / "r.h5"
    Result([1.0, 2.0], energy=[-1.0, -0.5], energy_err=[0.1, 0.1], method="exact").to_hdf5(p)
    with h5py.File(p, "a") as f:                         # energy now over 3 temperatures, T over 2
        del f["result/energy"]
        f["result/energy"] = np.zeros(3)
    with pytest.raises(InconsistentFileError, match=f"{p}: damaged result in /result"):
        from spinsim import Result as R
        R.from_hdf5(p)


def test_a_second_thread_of_the_same_process_is_refused(tmp_path):
    import threading
    out = tmp_path / "t.h5"
    errors: list[BaseException] = []
    with hold(out):
        with hold(out):             # the same thread: re-entrant
            pass

        def other() -> None:
            try:
                with hold(out):
                    pass
            except BaseException as exc:        # noqa: BLE001 - collected for the assertion
                errors.append(exc)
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(errors) == 1 and isinstance(errors[0], OutputLockedError)
    assert "another thread of this process" in str(errors[0])
    with hold(out):                 # released: free again
        pass


def test_a_failing_writer_keeps_its_own_error_when_ctrl_c_was_held_back(tmp_path, sigint_raises):
    out = tmp_path / "e.h5"
    with pytest.raises(ValueError, match="the caller's own error"):
        with atomic_h5(out) as f:
            f["x"] = np.arange(3)
            signal.raise_signal(signal.SIGINT)      # held back while the image is built
            raise ValueError("the caller's own error")
    assert not out.exists() and not list(tmp_path.glob(".e.h5.tmp-*"))
