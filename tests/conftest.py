"""Test-session set-up shared by every test file.

Threads: ``make test`` runs the suite on ``pytest-xdist`` workers (``-n 2``). Each worker gets an
equal share of the cores for Numba's ``parallel=True`` kernels, and BLAS/OpenMP (numpy, scipy,
torch) run one thread: the tests' matrices are small, and a multi-threaded OpenBLAS on a busy
machine spins so long that one ground-state study over GPT-2's 144 heads took 17 minutes instead
of 30 seconds. Every subprocess a test starts (CLI runs, CUDA-simulator checks, Dask workers)
inherits these settings. Variables already set by the caller win. This runs before any test
module imports numba, numpy or torch (they read these variables once, at import).
"""
from __future__ import annotations

import os

_WORKERS = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
os.environ.setdefault("NUMBA_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def pytest_collection_modifyitems(config, items):
    """Run the tests marked ``slow`` first (in their collected order), then the rest.

    With ``make test``'s ``-n 2 --maxschedchunk 2`` the two workers take the long tests while
    the many short ones fill the gaps at the end, instead of one worker finishing a long test
    alone after the other has run out of work. The order is a stable sort, the same on every
    worker (pytest-xdist requires identical collections).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
