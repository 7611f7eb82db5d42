"""Numba's disk cache of the kernels, keyed on all the kernel sources and not on one file.

Numba checks a cached function against a hash of the one file that defines it (the source stamp
of ``numba.core.caching``), but the kernels inline physics from other files: ``cpu.run_local``
compiles the sweep of :mod:`.site`, the fields of :mod:`.field`, the moves of :mod:`.moves` and the
draws of :mod:`.rng` into its machine code. An edit of ``site.py`` alone therefore left the old
``run_local`` in use from the cache: a stale kernel without a word (found on 1 Dec, when two
speed experiments on ``site.py`` measured the code they had replaced).

:func:`install` puts cache locators in front of Numba's own for the files of this package: the
same folders (beside the sources, ``NUMBA_CACHE_DIR`` or the user-wide cache) and the same checks,
with the source stamp extended by :func:`source_digest` of every source file of the package, taken
when the process imported it (the sources its kernels are compiled from). An entry saved by a
process that imported other sources (a run still going across an edit, another version sharing
``NUMBA_CACHE_DIR``) then never loads: Numba recompiles and overwrites it. Files outside this
package keep Numba's locators unchanged.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from numba.core import caching

__all__ = ["source_digest", "install", "ROOT"]

#: the package whose files get the digest stamp (this folder)
ROOT = Path(__file__).resolve().parent
_DIGEST: str | None = None


def source_digest(root: Path | None = None) -> str:
    """SHA-256 over the relative path and bytes of every ``.py`` file under ``root`` (default:
    this package), in sorted order."""
    root = ROOT if root is None else Path(root)
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _under_root(py_file: str) -> bool:
    try:
        Path(py_file).resolve().relative_to(ROOT)
        return True
    except (OSError, ValueError):
        return False


def _digest_locator(base: type) -> type:
    """``base`` (a Numba locator class) for this package's files, with the digest in the stamp."""

    class Locator(base):
        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not _under_root(py_file):
                return None                      # not a kernel file: Numba's own locators decide
            return super().from_function(py_func, py_file)

        def get_source_stamp(self) -> Any:
            return (super().get_source_stamp(), _DIGEST)

    Locator.__name__ = Locator.__qualname__ = f"KernelSources{base.__name__}"
    return Locator


def install() -> None:
    """Key the kernels' cache entries on :func:`source_digest` (module docstring); idempotent.
    Must run before the kernel modules create their dispatchers (``spinsim.kernels`` does it on
    import)."""
    global _DIGEST
    if _DIGEST is not None:
        return
    _DIGEST = source_digest()
    classes = caching.CacheImpl._locator_classes
    ours = [_digest_locator(c) for c in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                                         caching.UserWideCacheLocator)]
    classes[:0] = ours
