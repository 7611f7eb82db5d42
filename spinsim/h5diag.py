"""Why an HDF5 file cannot be opened, told apart from its bytes (not from HDF5's message wording).

:func:`diagnose` returns a :class:`~spinsim.io.SpinsimFileError` subclass with a one-line reason:

* :class:`FileInUseError`: another process holds the file open (HDF5's ``flock`` on the file is
  taken, or spinsim's output lock ``.<name>.lock`` is held: the holder is named);
* :class:`WriterCrashedError`: a valid HDF5 file whose superblock (version 2 or 3, written with
  ``libver="latest"``) still carries the "open for write" consistency flag of a writer that did
  not close it. spinsim never leaves this flag (:mod:`spinsim.atomic` writes closed images); the
  way back is HDF5's ``h5clear -s FILE`` (package hdf5-tools);
* :class:`TruncatedFileError`: the superblock says the file ends at byte E, the file is shorter;
* :class:`NotHDF5Error`: no HDF5 signature at offsets 0, 512, 1024, 2048, ...;
* otherwise a plain :class:`SpinsimFileError` "damaged HDF5 file" with HDF5's first line.

Superblock layouts: HDF5 File Format Specification version 3.0, section II.A (version 0/1:
end-of-file address after the base, free-space and ... addresses at byte 24 + 2 O (v0) or 28 + 2 O
(v1); version 2/3: consistency flags at byte 11, end-of-file address at byte 12 + 2 O).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from .io import SpinsimFileError

__all__ = ["FileInUseError", "WriterCrashedError", "TruncatedFileError", "NotHDF5Error", "diagnose",
           "superblock"]

SIGNATURE = b"\x89HDF\r\n\x1a\n"


class FileInUseError(SpinsimFileError):
    """A valid file held open for writing by another process."""


class WriterCrashedError(SpinsimFileError):
    """A valid file left flagged "open for write" by a writer that did not close it."""


class TruncatedFileError(SpinsimFileError):
    """An HDF5 file shorter than its superblock says (an interrupted copy or write)."""


class NotHDF5Error(SpinsimFileError):
    """Not an HDF5 file at all."""


def superblock(path: str | os.PathLike) -> dict | None:
    """``{"offset", "version", "flags", "eof"}`` of the file's superblock, or None when there is no
    HDF5 signature (searched at 0 and at 512 * 2^k, as the specification says)."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as fh:
        base = 0
        while base + 8 <= size:
            fh.seek(base)
            if fh.read(8) == SIGNATURE:
                head = fh.read(64)
                return _parse(base, head)
            base = 512 if base == 0 else base * 2
    return None


def _parse(base: int, head: bytes) -> dict:
    info: dict = {"offset": base, "version": head[0] if head else -1, "flags": 0, "eof": None}
    if len(head) < 16:
        return info
    v = head[0]
    if v in (2, 3):
        o = head[1]
        info["flags"] = head[3]
        start = 4 + 2 * o            # after base address and superblock-extension address
    elif v in (0, 1):
        o = head[5]
        start = 16 + (4 if v == 1 else 0) + 2 * o   # after base and free-space addresses
    else:
        return info
    if o in (2, 4, 8) and len(head) >= start + o:
        info["eof"] = int.from_bytes(head[start:start + o], "little") + base
    return info


def _locked_by_other(p: Path) -> bool:
    """True when another process holds an flock on the file (HDF5 locks files it has open)."""
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _spinsim_writer(p: Path) -> str | None:
    """The holder of spinsim's output lock on ``p`` (:mod:`spinsim.locks`) if another process holds it."""
    from .locks import holder, lock_path

    lp = lock_path(p)
    return holder(p) if lp.exists() and _locked_by_other(lp) else None


def diagnose(path: str | os.PathLike, exc: BaseException | None = None) -> SpinsimFileError:
    """The reason ``path`` could not be opened as HDF5 (module docstring), as an exception to raise."""
    p = Path(path)
    if not p.exists():
        return SpinsimFileError(f"{p}: no such file")
    sb = None
    with contextlib.suppress(OSError):
        sb = superblock(p)
    if sb is None:
        return NotHDF5Error(f"{p}: not a readable HDF5 file: not HDF5 at all (no HDF5 signature in its "
                            f"{p.stat().st_size} bytes)")
    if _locked_by_other(p):
        who = _spinsim_writer(p)
        return FileInUseError(f"{p}: in use: another process has it open for writing"
                              + (f" ({who})" if who else "")
                              + "; wait for it to close the file")
    size = p.stat().st_size
    if sb["eof"] is not None and sb["eof"] > size:
        return TruncatedFileError(f"{p}: truncated: {size} bytes of the {sb['eof']} its header announces "
                                  "(an interrupted copy or write); restore it or write it again")
    if sb["version"] in (2, 3) and sb["flags"]:
        return WriterCrashedError(f"{p}: left marked 'open for write' by a writer that did not close it "
                                  "(crashed or still running elsewhere); its data may be complete: clear the "
                                  f"flag with `h5clear -s {p}` (HDF5 tools) and retry; spinsim never leaves "
                                  "this flag")
    first = str(exc).splitlines()[0] if exc is not None and str(exc) else "unknown reason"
    return SpinsimFileError(f"{p}: damaged HDF5 file (HDF5 says: {first})")
