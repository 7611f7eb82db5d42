"""Numba's CUDA simulator without its busy wait: for the ``NUMBA_ENABLE_CUDASIM=1`` subprocesses of
tests/test_cuda.py and tests/test_reduced_cuda.py.

The simulator runs each CUDA thread of a block as a Python thread while the launching thread polls
them in a loop (``BlockManager.run``: which threads wait at ``syncthreads``, which are still
alive) without ever releasing the GIL of its own accord, so the block's threads only run when
the interpreter's switch interval (5 ms) takes the GIL from the poller: half the CPU or more
went to polling. :func:`yield_while_polling` makes the poller give the GIL up once per thread per
round (``time.sleep(0)`` in ``BlockThread.is_alive``, which only that loop calls). The simulated
threads run the same code in the same order at every ``syncthreads``: the chains are the same;
the check_tiny_ising_matches_enumeration run took 12.8 s of CPU before, 4.4 s after.
"""
from __future__ import annotations

import time


def yield_while_polling() -> None:
    """Patch the simulator's BlockThread.is_alive to sleep(0) first (no-op without the simulator)."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        return
    try:
        from numba.cuda.simulator.kernel import BlockThread
    except ImportError:                     # another simulator layout: leave it as it is
        return
    is_alive = BlockThread.is_alive

    def is_alive_after_yield(self):
        time.sleep(0)
        return is_alive(self)

    BlockThread.is_alive = is_alive_after_yield
