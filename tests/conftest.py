"""Test-session set-up shared by every test file.

Threads: Numba, BLAS and OpenMP (numpy, scipy, torch) run one thread in every test process.
``make test`` gets its parallelism from two ``pytest-xdist`` workers instead. The tests' systems
are tiny: a ``parallel=True`` sweep over three replicas syncs its threads once per sweep, and on a
busy machine every sync waits for a time slice (the 4x4 Ising Metropolis run of test_mc: 28.6 s
with two Numba threads, 0.2 s with one); a multi-threaded OpenBLAS spins the same way (the GPT-2
all-heads ground study: 1060 s instead of 30 s). Every subprocess a test starts (CLI runs,
CUDA-simulator checks, Dask workers) inherits these settings. Variables already set by the caller
win (the xdist controller loads this file too, before it starts the workers, so the value must
not depend on the worker count). This runs before any test module imports numba, numpy or torch
(they read these variables once, at import).
"""
from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def pytest_collection_modifyitems(config, items):
    """Run the tests marked ``slow`` first (in their collected order), then the rest.

    With ``make test``'s ``-n 2 --maxschedchunk 2`` the two workers take the long tests while
    the many short ones fill the gaps at the end, instead of one worker finishing a long test
    alone after the other has run out of work. The order is a stable sort, the same on every
    worker (pytest-xdist requires identical collections).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config):
    """Under pytest-xdist, compile the disk-cached kernels once before the workers start.

    Both workers begin with the long tests, which all need the Monte Carlo loop: without this
    each compiles it at the same time (minutes of CPU each on a fresh clone). The groups of
    tests/_warm_kernels.py run in parallel subprocesses here, in the controller only; with a warm
    cache they take seconds. ``SPINSIM_TEST_NO_WARMUP=1`` skips it.
    """
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if os.environ.get("SPINSIM_TEST_NO_WARMUP"):
        return
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(__file__).with_name("_warm_kernels.py")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(script), group], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for group in ("mc", "rest")]
    lines = [p.communicate()[0].strip().splitlines()[-1:] for p in procs]
    summary = "; ".join(line[0] for line in lines if line)
    print(f"\nNumba cache warmed in {time.perf_counter() - t0:.0f} s ({summary})", flush=True)
