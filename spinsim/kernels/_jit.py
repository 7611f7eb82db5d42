"""The one compile policy of the kernels (anchor: HDembinski/numba-stats ``_util.py``).

* :func:`physics` marks a plain-Python function as kernel physics: it stays callable from Python
  (the CUDA simulator runs it as is) and is compiled into whichever jitted caller uses it, CPU
  (``njit``) or CUDA (``cuda.jit``), through Numba's target-agnostic overload machinery
  (``register_jitable``). One source, no ``exec``, no per-target copies.
* :data:`cpu` / :data:`cpu_parallel` compile the CPU loops (cached on disk).
* :func:`cuda_kernel` / :func:`cuda_device` compile the CUDA loops (imported lazily so that the
  CPU backend never initialises CUDA).

Floating point: IEEE semantics everywhere (``fastmath`` off: no "no NaN / no inf" assumptions, no
reassociation, no contraction into FMA), so that the CPU and the CUDA simulator compute the same
bits. The O(n r) loops are written in element-wise order (see :mod:`.field`) so that LLVM
vectorises them without reassociation.
"""
from __future__ import annotations

from typing import Callable

from numba import njit
from numba.extending import register_jitable

__all__ = ["physics", "cpu", "cpu_parallel", "cuda_kernel", "cuda_device", "FASTMATH"]

FASTMATH = False

physics: Callable = register_jitable

cpu = njit(cache=True, fastmath=FASTMATH)
cpu_parallel = njit(cache=True, parallel=True, fastmath=FASTMATH)


def cuda_kernel(**options) -> Callable:
    """``numba.cuda.jit`` for a kernel with the policy's floating-point options (``options``:
    e.g. ``max_registers``)."""
    from numba import cuda
    return cuda.jit(fastmath=FASTMATH, **options)


def cuda_device(fn: Callable) -> Callable:
    """``numba.cuda.jit(device=True)`` for CUDA-only helpers (block reductions, cooperative
    loops); physics shared with the CPU uses :func:`physics` instead."""
    from numba import cuda
    return cuda.jit(device=True, fastmath=FASTMATH)(fn)
