"""Numba's disk cache of the kernels, valid for one version of all the kernel sources.

Numba checks a cached function against the modification time and size of the one file that
defines it (``numba.core.caching``: the index's source stamp), but the kernels inline physics
from other files: ``cpu.run_local`` compiles the sweep of :mod:`.site`, the fields of
:mod:`.field`, the moves of :mod:`.moves` and the draws of :mod:`.rng` into its machine code. An
edit of ``site.py`` alone therefore left the old ``run_local`` in use from the cache: a stale
kernel without a word (found on 1 Dec, when two speed experiments on ``site.py`` measured the
code they had replaced). :func:`drop_stale_cache` keeps a digest of every source file of this
package beside the cache files and removes the cache files (``*.nbi``, ``*.nbc``) of the
kernels' folder when the digest differs. It runs when the package is imported, before any kernel
is loaded. An unwritable cache folder is left alone (Numba then cannot write there either; see
:mod:`spinsim._numba_cache`).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from numba import njit

__all__ = ["MARKER", "source_digest", "cache_folder", "drop_stale_cache"]

#: the digest file, in the kernels' cache folder
MARKER = "spinsim-kernel-sources.sha256"


def source_digest(root: Path | None = None) -> str:
    """SHA-256 over the relative path and bytes of every ``.py`` file under ``root`` (default:
    this package), in sorted order."""
    root = Path(__file__).resolve().parent if root is None else Path(root)
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _probe() -> int:
    return 0


def cache_folder() -> Path | None:
    """The folder where Numba caches this package's kernels (beside the sources, the user-wide
    cache or ``NUMBA_CACHE_DIR``), as Numba's own locator finds it; None when none is usable."""
    try:
        return Path(njit(cache=True)(_probe)._cache._cache_path)
    except Exception:  # noqa: BLE001 - no locator (read-only everywhere) or a Numba without these internals
        return None


def drop_stale_cache() -> bool:
    """Remove the kernels' cached machine code if it was compiled from other sources (module
    docstring); record the present digest. Returns True when files were removed."""
    folder = cache_folder()
    if folder is None:
        return False
    digest = source_digest()
    marker = folder / MARKER
    try:
        if marker.read_text() == digest:
            return False
    except OSError:
        pass
    removed = False
    try:
        for f in list(folder.glob("*.nbi")) + list(folder.glob("*.nbc")):
            f.unlink(missing_ok=True)
            removed = True
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".digest-")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, marker)
    except OSError:
        pass
    return removed
