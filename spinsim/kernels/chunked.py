"""Run an enumeration kernel's chunks on threads (the kernels are ``nogil``).

An enumeration kernel (:mod:`.enum_ising`, :mod:`.enum_ising_float`, :mod:`.enum_discrete`)
takes a chunk range ``[c0, c1)`` of its ``n_chunks`` fixed chunks and writes chunk ``c``'s
accumulators into row ``c`` of arrays the caller allocated; :func:`run_chunks` shares the
chunks among ``numba.get_num_threads()`` threads (``NUMBA_NUM_THREADS``, or
``numba.set_num_threads``) in contiguous slices. Rows are disjoint and the caller combines them
in chunk order, so results do not depend on the number of threads, bit for bit.

Why threads and not ``prange``: a ``parallel=True`` kernel compiles its loop body a second time
as a parallel ufunc, which doubled the enumeration's compile time (Numba 0.6x, one core, fresh
cache: 38 s -> 19 s for the three kinds of enumeration) for no speed a thread pool over the same
chunks does not give.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba

__all__ = ["run_chunks"]


def run_chunks(kernel: Callable, n_chunks: int, *args) -> None:
    """Call ``kernel(*args, c0, c1)`` over contiguous slices ``[c0, c1)`` of ``range(n_chunks)``,
    one slice per thread (at most ``numba.get_num_threads()`` threads, at most ``n_chunks``); in
    this thread when there is one slice. Returns when every slice is done; an exception of a
    slice is raised here."""
    n_threads = max(1, min(int(numba.get_num_threads()), int(n_chunks)))
    bounds = [(i * n_chunks // n_threads, (i + 1) * n_chunks // n_threads) for i in range(n_threads)]
    if n_threads == 1:
        kernel(*args, 0, n_chunks)
        return
    with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="spinsim-enum") as pool:
        for f in [pool.submit(kernel, *args, c0, c1) for c0, c1 in bounds]:
            f.result()
