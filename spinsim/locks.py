"""One writer per output: the lock every spinsim command holds for its output's whole life.

The lock of ``dir/name`` is the hidden sibling ``dir/.name.lock``, taken with ``flock`` through
`filelock <https://py-filelock.readthedocs.io>`_ (:class:`filelock.FileLock`, never the
soft-file fallback). ``flock`` belongs to the open file, so the kernel releases it when the
holder exits for any reason (kill -9 included): a lock cannot be left stale. The lock file is
never deleted (not on release, not by a refused run): deleting it would let a waiter holding the
old inode and a newcomer creating a new one both "hold" the lock. It stays as an empty-looking
hidden file of a few bytes, holding the last holder's description.

A refused writer is told who holds the lock: the holder writes its PID, host, start time and
command line into the lock file once it holds it (:class:`OutputLockedError`).

Within one process the lock is re-entrant (``spinsim sweep`` holds it from the command line and
the engine's :func:`spinsim.sweep` takes it again): a per-process count, released at zero.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Iterator

from .io import SpinsimFileError

__all__ = ["OutputLockedError", "hold", "lock_path", "holder"]


class OutputLockedError(SpinsimFileError):
    """Another process holds the output's lock (the message says who)."""


_held: dict[str, tuple[object, int, int]] = {}  # canonical lock path -> (FileLock, depth, owner thread)
_guard = threading.Lock()


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of ``path``: ``.<name>.lock`` next to it."""
    p = Path(path)
    return p.with_name(f".{p.name}.lock")


def _describe_self() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": _dt.datetime.now().isoformat(timespec="seconds"),
                       "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv else "python"})


def _write_holder(fd: int) -> None:
    """filelock's ``on_acquired``: record who holds the lock (in the lock file itself)."""
    data = _describe_self().encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def holder(path: str | os.PathLike) -> str:
    """Who holds (or last held) the lock of ``path``, in words ('unknown' when not recorded)."""
    try:
        info = json.loads(lock_path(path).read_text() or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    if not info:
        return "an unknown process"
    return (f"process {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('since', '?')} "
            f"({info.get('command', '?')})")


@contextlib.contextmanager
def hold(path: str | os.PathLike, what: str = "this output") -> Iterator[Path]:
    """Hold the lock of ``path`` (its folder is created) for the duration of the block.

    Never waits: raises :class:`OutputLockedError` (a :class:`SpinsimFileError`) naming the
    holder when another process (or another thread of this one) has it. Re-entrant within one
    thread. Yields the lock path.
    """
    from filelock import FileLock, Timeout

    lp = lock_path(path)
    lp.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(lp)
    me = threading.get_ident()
    with _guard:
        if key in _held:
            lock, depth, owner = _held[key]
            if owner != me:
                # re-entrant per thread, not per process: two threads of one process (a thread-pool
                # executor) writing one output would share its temporary and interleave bytes
                raise OutputLockedError(f"{path}: another thread of this process is writing {what}; one writer "
                                        "per output (give each task its own output)")
            _held[key] = (lock, depth + 1, owner)
        else:
            # fallback_to_soft=False: a folder without flock is an error, never a silent soft lock
            lock = FileLock(str(lp), timeout=0, thread_local=False, preserve_lock_file=True,
                            on_acquired=_write_holder, fallback_to_soft=False)
            try:
                lock.acquire(blocking=False)
            except Timeout:
                raise OutputLockedError(
                    f"{path}: another process is writing {what}: {holder(path)}; wait for it to finish or "
                    f"choose another output (the lock is {lp.name}, released when that process ends)") from None
            except NotImplementedError as exc:
                raise OutputLockedError(f"{path}: the folder's filesystem has no file locks (flock), so one writer at a "
                                        f"time cannot be guaranteed there ({exc}); write to a local folder") from None
            _held[key] = (lock, 1, me)
    try:
        yield lp
    finally:
        with _guard:
            lock, depth, owner = _held[key]
            if depth > 1:
                _held[key] = (lock, depth - 1, owner)
            else:
                del _held[key]
                lock.release()      # the file stays: see the module docstring
