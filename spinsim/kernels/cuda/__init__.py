"""CUDA Monte Carlo backend (Numba CUDA): one thread block per replica.

Same algorithms, same random numbers and the same site physics as :mod:`spinsim.kernels.cpu`
(the functions of :mod:`..field`, :mod:`..moves`, :mod:`..site`, :mod:`..rng` are compiled for
the GPU from the same source). Layout: :mod:`.plan` (launch shapes, shared-memory budget),
:mod:`.block` (the block's cooperative pieces), :mod:`.kernels` (the kernels), :mod:`.runner`
(device state between calls).

Without a GPU (and without ``NUMBA_ENABLE_CUDASIM=1``) the :class:`Runner` raises a one-line
``RuntimeError``. Wolff is CPU-only.
"""
from __future__ import annotations

import warnings

from .plan import SHARED_BYTES, SIMULATOR, plan

if SIMULATOR:   # the simulator runs the uint64 hash in NumPy scalars, which warn on wrap-around
    warnings.filterwarnings("ignore", message="overflow encountered in scalar", category=RuntimeWarning)

from .runner import Runner, available  # noqa: E402

__all__ = ["Runner", "available", "SIMULATOR", "SHARED_BYTES", "plan"]
