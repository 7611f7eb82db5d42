"""The one atomic writer of spinsim's HDF5 files (:func:`atomic_h5`) and its safety rules.

A file is built in memory (HDF5 on a ``BytesIO``), closed, and only then written to disk:

1. the space it needs is known exactly (the size of the closed image) and checked against the
   free space of the target's filesystem before a byte is written (:class:`DiskFullError`);
2. the bytes go to the hidden sibling ``.<name>.tmp-<pid>-<thread>``, which is fsync'ed and moved over
   the target with ``os.replace`` (atomic on POSIX); the folder is fsync'ed;
3. HDF5 never touches the disk, so a full disk or a file-size limit (EFBIG) is one ``OSError``
   from ``os.write`` (no HDF5 error stack, no crash in the HDF5 library), and a file written by
   spinsim is never left with HDF5's "open for write" flag (it is closed before it is written);
4. SIGINT and SIGTERM are held back while the file is built and written and delivered right
   after (the run stops then, with the file complete): an interrupt can never be swallowed inside
   the HDF5 library nor leave a half-written temporary behind;
5. temporaries of writers that are gone (the PID in the name is not alive) are removed before
   each write (:func:`remove_stale_temps`), so a killed run's temporary does not outlive the
   next run.

Paths written by this process are recorded in :data:`written` (the command line says truthfully
what was saved when it is interrupted).

Test hook: ``SPINSIM_KILL_AT="<point>:<k>"`` kills this process with SIGKILL at the k-th atomic
write (counted from 1 in this process) at ``point``: ``built`` (image in memory, nothing on disk),
``half`` (half the temporary written), ``written`` (temporary complete and fsync'ed, not yet
moved) or ``replaced`` (moved, folder not yet fsync'ed). ``"<point>:<k>:INT"`` (or ``TERM``) sends
that signal instead: the write completes, then the interrupt is delivered.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

import h5py

from .io import SpinsimFileError
from .limits import format_bytes

__all__ = ["DiskFullError", "atomic_h5", "remove_stale_temps", "written", "deferred_signals",
           "format_bytes"]

#: paths (absolute) that this process has written completely through :func:`atomic_h5`
written: set[str] = set()

_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_count = 0


class DiskFullError(SpinsimFileError, OSError):
    """The file does not fit: no space left, a quota, or a file-size limit (EFBIG). The
    previous file at the path is unchanged."""


def _tmp_name(path: Path) -> Path:
    # pid and thread: two threads of one process never share (or remove) each other's temporary
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries ``.<name>.tmp-<pid>-<thread>`` of :func:`atomic_h5` for ``path`` whose
    process is gone; returns the removed paths. Temporaries of live processes stay."""
    path = Path(path)
    removed = []
    for p in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(p.name.split(".tmp-", 1)[1].split("-", 1)[0])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue        # this process's own temporaries belong to writers still running
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM for the block; the first one that arrived is delivered (to
    the handlers in place before) right after it. Outside the main thread: no effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        pending.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except BaseException:
        # the block failed: restore the handlers and let its own error propagate (a held-back
        # Ctrl-C raised here would replace the real error; the run is stopping anyway)
        for s, h in old.items():
            signal.signal(s, h)
        raise
    for s, h in old.items():
        signal.signal(s, h)
    if pending:
        signal.raise_signal(pending[0])


def _kill_point(point: str) -> None:
    spec = os.environ.get("SPINSIM_KILL_AT")
    if not spec:
        return
    where, _, rest = spec.partition(":")
    k, _, sig = rest.partition(":")
    if where == point and _count == int(k or 1):
        os.kill(os.getpid(), getattr(signal, f"SIG{sig}") if sig else signal.SIGKILL)


def _space_error(path: Path, need: int, free: int | None, exc: OSError | None = None) -> DiskFullError:
    before = "the previous file is unchanged" if path.exists() else "nothing was written"
    if exc is not None:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        return DiskFullError(f"{path}: cannot write it ({why}): it needs {format_bytes(need)}"
                             + (f", {format_bytes(free)} free there" if free is not None else "")
                             + f"; {before}")
    return DiskFullError(f"{path}: not enough disk space: writing it needs {format_bytes(need)}, "
                         f"{format_bytes(free or 0)} free in {path.parent}; {before}")


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _write_file(tmp: Path, data: memoryview) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        n, half, pos, halfway = len(data), len(data) // 2, 0, False
        while pos < n:
            end = min(n, pos + (1 << 22))
            if pos < half < end:
                end = half
            pos += os.write(fd, data[pos:end])
            if pos >= half and not halfway:
                halfway = True
                _kill_point("half")
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, libver: str | None = None) -> Iterator[h5py.File]:
    """Write a whole HDF5 file atomically and durably (the only writer of spinsim's files).

    Yields an h5py File (in memory) to fill; when the block ends the closed image is written to
    ``.<name>.tmp-<pid>-<thread>``, fsync'ed and moved over ``path`` (module docstring). An exception, an
    interrupt or a kill at any instant leaves ``path`` as it was. Raises :class:`DiskFullError`
    (naming the file and the bytes needed) when the image does not fit; the folder is created.
    """
    global _count
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    # signals are held back over the build too: h5py's in-memory driver calls back into Python,
    # where a KeyboardInterrupt can be lost inside the HDF5 library (the caller's block only
    # fills an image from finished results, so the delay is short)
    with deferred_signals():
        _count += 1
        remove_stale_temps(path)
        buf = io.BytesIO()
        with h5py.File(buf, "w", libver=libver) as f:
            yield f
        data = buf.getbuffer()
        _kill_point("built")
        free = _free_bytes(path.parent)
        if free is not None and free < len(data):
            raise _space_error(path, len(data), free)
        try:
            try:
                _write_file(tmp, data)
            except OSError as exc:
                if exc.errno in _SPACE_ERRNOS:
                    raise _space_error(path, len(data), free, exc) from None
                raise
            _kill_point("written")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        _kill_point("replaced")
        with contextlib.suppress(OSError):      # some filesystems refuse to fsync a folder
            _fsync(path.parent)
        written.add(os.path.abspath(path))
