"""The one compile policy of the kernels (anchor: HDembinski/numba-stats ``_util.py``).

* :func:`physics` (light functions: a few flops per component) and :func:`physics_call` (functions
  with O(n r) or O(n deg) loops) compile kernel physics once, from one source, for every target:
  they are Numba ``njit`` dispatchers, which CPU loops call (``physics`` inlined at the Numba IR
  level) and which CUDA kernels call as device functions (numba-cuda compiles a ``@jit``
  function called from a kernel for the GPU). No ``exec``, no per-target copies. Inlining the
  light functions matters on the CPU (an out-of-line call passes every array with its reference
  count: 6x slower lattice fields); inlining the heavy ones only bloats the loops, and costs
  compile time: each inlined call deep-copies the callee's Numba IR and nested inlining multiplies
  it, so the scalar-only random draws with inner calls (gamma / chi-square / paired normals, Wood's
  w of the von Mises-Fisher draw) are ``physics_call`` (out of line: no arrays, so no reference
  counts): the CPU compile of the Monte Carlo loop 54 s -> 36 s of one
  core, rates unchanged within the 10 % noise of a loaded machine. CUDA kernels
  compile with that IR inlining switched off (:func:`no_ir_inlining`): each inlined call deep-
  copies the callee's Numba IR, nested calls multiply it, and that copying was ~75 % of a CUDA
  kernel's compile (PTX of every kernel: 95 s -> 23 s of one core); a device function carries no
  reference counts, and NVVM inlines device functions in its own optimiser.
* :data:`cpu` / :data:`cpu_parallel` compile the CPU loops (cached on disk).
* :func:`cuda_kernel` / :func:`cuda_device` compile CUDA kernels and CUDA-only helpers (imported
  lazily so that the CPU backend never initialises CUDA).

Floating point: IEEE semantics everywhere (``fastmath`` off: no "no NaN / no inf" assumptions, no
reassociation, no contraction into FMA), so that the CPU and the CUDA simulator compute the same
bits. The O(n r) loops are written in element-wise order (see :mod:`.field`) so that LLVM
vectorises them without reassociation.

Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the simulated kernels are plain Python and
call the physics with simulator arrays, which compiled code cannot take: there, a physics
dispatcher called *from Python* runs its Python function (calls from compiled CPU code are
unaffected).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from numba import config, njit

__all__ = ["physics", "physics_call", "cpu", "cpu_parallel", "cuda_kernel", "cuda_device",
           "no_ir_inlining", "FASTMATH"]

FASTMATH = False

ERROR_MODEL = "numpy"   # x / 0 gives inf or nan as on the GPU, no Python exception branch per division

cpu = njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
cpu_parallel = njit(cache=True, parallel=True, fastmath=FASTMATH, error_model=ERROR_MODEL)


def _python_when_called_from_python(dispatcher):
    """Simulator only: make ``dispatcher(...)`` from Python run the Python function."""
    base = type(dispatcher)
    sim = _SIM_CLASSES.get(base)
    if sim is None:
        sim = type(f"Simulated{base.__name__}", (base,),
                   {"__call__": lambda self, *a, **kw: self.py_func(*a, **kw)})
        _SIM_CLASSES[base] = sim
    dispatcher.__class__ = sim
    return dispatcher


_SIM_CLASSES: dict = {}


#: the dispatchers compiled with Numba IR inlining (``physics``): switched off for CUDA compiles
_INLINED: list = []


def _policy(**options) -> Callable:
    def deco(fn: Callable) -> Callable:
        d = njit(fastmath=FASTMATH, error_model=ERROR_MODEL, **options)(fn)
        if options.get("inline") == "always":
            _INLINED.append(d)
        return _python_when_called_from_python(d) if config.ENABLE_CUDASIM else d
    return deco


physics: Callable = _policy(inline="always")
physics_call: Callable = _policy()


@contextlib.contextmanager
def no_ir_inlining() -> Iterator[None]:
    """Within: calls of :func:`physics` functions compile as ordinary calls (no Numba IR
    inlining), as every CUDA kernel compile does (module docstring); restored afterwards. Holds
    Numba's compiler lock meanwhile (other threads' compiles wait)."""
    from numba.core.compiler_lock import global_compiler_lock

    # Numba's (re-entrant) compiler lock, held throughout: no compile in another thread can read
    # the switched option, and contexts of two threads cannot interleave their save / restore
    with global_compiler_lock:
        saved = [d.targetoptions.get("inline") for d in _INLINED]
        for d in _INLINED:
            d.targetoptions["inline"] = "never"
        try:
            yield
        finally:
            for d, v in zip(_INLINED, saved):
                d.targetoptions["inline"] = v


def cuda_kernel(**options) -> Callable:
    """``numba.cuda.jit`` for a kernel with the policy's floating-point options (``options``:
    e.g. ``max_registers``), compiled (at its first launch with new argument types) under
    :func:`no_ir_inlining`."""
    from numba import cuda

    def deco(fn: Callable) -> Callable:
        k = cuda.jit(fastmath=FASTMATH, **options)(fn)
        if not config.ENABLE_CUDASIM:
            compile_ = k.compile

            def compile_without_ir_inlining(sig):
                with no_ir_inlining():
                    return compile_(sig)
            k.compile = compile_without_ir_inlining
        return k
    return deco


def cuda_device(fn: Callable) -> Callable:
    """``numba.cuda.jit(device=True)`` for CUDA-only helpers (block reductions, cooperative
    loops); physics shared with the CPU uses :func:`physics` instead."""
    from numba import cuda
    return cuda.jit(device=True, fastmath=FASTMATH)(fn)
