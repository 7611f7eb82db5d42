"""Where Numba caches spinsim's compiled kernels when the install and HOME are read-only.

The kernels compile with ``cache=True``. Numba stores the cache next to the source
(``spinsim/kernels/__pycache__``) or in the user-wide cache (``$XDG_CACHE_HOME/numba``, else
``~/.cache/numba``), and raises "cannot cache function ...: no locator available" at the first
call when neither is writable (a read-only install with a read-only HOME: containers, shared
clusters). :func:`ensure_cache_dir` runs before Numba compiles anything: when neither place is
writable and ``NUMBA_CACHE_DIR`` is unset, it points Numba at a fresh temporary folder (kernels
compile once per process, nothing is written elsewhere) and says so once (a
:class:`NumbaCacheWarning`). Set ``NUMBA_CACHE_DIR`` to a writable folder to keep the cache.
"""
from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

__all__ = ["NumbaCacheWarning", "ensure_cache_dir"]


class NumbaCacheWarning(UserWarning):
    """Compiled kernels are cached in a temporary folder (the usual places are read-only)."""


def _writable(folder: Path) -> bool:
    """True when a file can be created in ``folder`` (created if missing), as Numba checks it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def ensure_cache_dir() -> str | None:
    """Point Numba at a temporary cache folder when its usual places are read-only (module
    docstring); returns that folder, or None when nothing had to change."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    kernels = Path(__file__).resolve().parent / "kernels" / "__pycache__"
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()) / "numba"
    if _writable(kernels) or _writable(user):
        return None
    tmp = tempfile.mkdtemp(prefix="spinsim-numba-cache-")
    os.environ["NUMBA_CACHE_DIR"] = tmp
    if "numba" in sys.modules:                    # already configured from the environment
        from numba.core import config
        config.CACHE_DIR = tmp
    warnings.warn(f"spinsim: the install ({kernels.parent}) and the user cache ({user}) are read-only: compiled "
                  f"kernels are cached in {tmp} for this process only (set NUMBA_CACHE_DIR to a writable "
                  "folder to keep them)", NumbaCacheWarning, stacklevel=2)
    return tmp
