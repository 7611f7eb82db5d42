"""One BLAS thread for spinsim's dense products (threadpoolctl, a dependency).

Every product spinsim hands to BLAS is small (sites x d_model, rank x rank, samples x
temperatures), and its heavy work runs in Numba or in parallel rows. On a busy 2-core machine
OpenBLAS's spinning threads then only contend: a SmolLM2 ground-state study of 3 heads took 78 s
with the default threads and 7 s with one; a 576 x 1536 QR 1.43 s instead of 0.19 s.
"""
from __future__ import annotations

from typing import Any

__all__ = ["one_blas_thread"]


def one_blas_thread() -> Any:
    """A context manager under which BLAS (OpenBLAS, MKL, BLIS) runs one thread; restored on exit."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
