"""Launch plan of the CUDA kernels: path, threads per block, what lives in shared memory.

Per-block workspaces (``Work`` vectors a, b, phi, sig, new (n each), ra, rb (rank each), the
rank-projection partial sums (2 max(threads, rank)) and the reduction scratch (2 threads):
``5 n + 2 rank + 2 max(threads, rank) + 2 threads`` doubles, 39 KiB for n = 768, rank 64 and 256
threads) live in dynamic shared memory while they fit in 48 KiB (the default per-block limit),
else in a global scratch row per replica. The low-rank factors A, B and their transposes
(``4 n rank`` doubles) are copied into shared memory at kernel start when they fit beside the
workspaces, else read from global memory (every block reads the same factors, so they stay in L2).
A position-dependent ``SiteLowRank`` has N such factor sets (``4 N n rank`` doubles): shared only
for small systems.
Constant memory is not used: Numba's constant arrays are compile-time constants (a recompile per
Hamiltonian) and the constant cache serialises the per-thread distinct addresses of the field
loops.
"""
from __future__ import annotations

from numba import config

from ..arrays import IDENTITY, LOWRANK, SITE_LOWRANK

SIMULATOR = bool(config.ENABLE_CUDASIM)
SHARED_BYTES = 48 * 1024          # dynamic shared memory per block without opt-in
MAX_THREADS = 8 if SIMULATOR else 256   # the simulator runs each thread as a Python thread
MAX_REGISTERS = 128   # cooperative kernel: 2 blocks of 256 threads per SM (ptxas: 255 unbounded)


def _pow2_at_most(x: int, cap: int) -> int:
    p = 1
    while p * 2 <= min(x, cap):
        p *= 2
    return p


def work_length(n_comp: int, rank: int, threads: int) -> int:
    """Doubles of one block's workspace (the layout of ``kernels._views``)."""
    return 5 * n_comp + 2 * rank + 2 * max(threads, rank) + 2 * threads


def plan(n_comp: int, code: int, rank: int, threads_per_block: int | None = None,
         cooperative: bool | None = None, shared_factors: bool | None = None,
         shared_work: bool | None = None, n_factor_sets: int = 1) -> dict:
    """Launch plan: cooperative or serial path, threads per block, what lives in shared memory.

    Serial (one thread per block, thread 0 runs ``site.sweep_schedule``, the CPU's sweep) for
    identity couplings with n_comp <= 4 (lattices), cooperative otherwise; ``cooperative`` forces
    either. ``shared_work=False`` / ``shared_factors=False`` force the global-memory placements
    that large n uses (for tests); ``None`` decides by the 48 KiB budget. ``n_factor_sets``: F of
    the factor stacks (1 for LowRank, N for SiteLowRank).

    Raises ValueError for a threads_per_block that is not a power of two in [1, 1024], or a
    forced shared placement that does not fit or does not apply."""
    coop = (not (code == IDENTITY and n_comp <= 4)) if cooperative is None else bool(cooperative)
    low = code in (LOWRANK, SITE_LOWRANK)
    rk = rank if low else 1
    if not coop:
        nt = 1
    elif threads_per_block is None:
        nt = _pow2_at_most(max(32, 2 * max(n_comp, rk)), MAX_THREADS)
    else:
        nt = int(threads_per_block)
        if nt < 1 or nt & (nt - 1) or nt > 1024:
            raise ValueError(f"threads_per_block must be a power of two in [1, 1024], got {threads_per_block!r}")
    work_len = work_length(n_comp, rk, nt)
    fac_len = 4 * int(n_factor_sets) * n_comp * rk if low else 0
    sh_work = 8 * work_len <= SHARED_BYTES
    if shared_work is not None:
        if shared_work and not sh_work:
            raise ValueError(f"shared_work=True: workspaces need {8 * work_len} bytes > {SHARED_BYTES}")
        sh_work = bool(shared_work)
    fits = sh_work and coop and low and 8 * (work_len + fac_len) <= SHARED_BYTES
    if shared_factors is None:
        sh_fac = fits
    else:
        if shared_factors and not (coop and low and sh_work):
            raise ValueError("shared_factors=True needs the cooperative path, a low-rank coupling and "
                             f"workspaces in shared memory ({8 * work_len} bytes > {SHARED_BYTES})")
        sh_fac = bool(shared_factors)
    shmem = 8 * ((work_len if sh_work else 0) + (fac_len if sh_fac else 0))
    return dict(coop=coop, threads=nt, rank=rk, work_len=work_len, sh_work=sh_work,
                sh_fac=sh_fac, shared_bytes=shmem)
