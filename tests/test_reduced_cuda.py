"""The reduced spin space on the CUDA backend: the same chain as the CPU (simulator; a real GPU
when present), as tests/test_cuda.py does for the full space.

``python tests/test_reduced_cuda.py CHECK`` runs the function ``CHECK`` (plain asserts) in a
process with ``NUMBA_ENABLE_CUDASIM=1`` set before numba.cuda is imported. A reduced chain runs the
cooperative path (per-site moves with hidden components split over the block: rtol 1e-9, block sums
add in another order than the CPU) or, for k <= 4 visible coordinates, the moves on thread 0.
The measurement (hidden parts drawn from the measurement slot) runs on thread 0: the same draws.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

RTOL = 1e-9


def _reduced_runners(H, T, algorithm, sweeps, *, exchange=False, seed=3, discard=3, **launch):
    """The same reduced chain on the CPU and the CUDA Runner."""
    from spinsim.kernels import cpu, cuda as ck
    from spinsim.reduced_space import state_space
    from spinsim.solvers.mc import _ALG_CODE, initial_state, prepare

    k, space = state_space(H, prepare(H, "field"), True)
    R = len(T)
    S, X = initial_state(H, R, "random", seed)
    S = space.visible(S)
    beta = 1.0 / np.asarray(T, float)
    out = []
    for engine, extra in ((cpu, {}), (ck, launch)):
        run = engine.Runner(S, X, beta, seed, np.arange(R), k, algorithm=algorithm,
                            alg_code=_ALG_CODE[algorithm], n_overrelax=2, exchange=exchange,
                            n_T=R, delta=0.5, resync=3, n_meas=sweeps)
        run.run(0, discard, -1, adapt=algorithm == "metropolis")
        run.reset_counters(discard)
        run.run(discard, sweeps, 0, adapt=False)
        out.append(run.results())
    return out, space


def _assert_same_reduced_chain(H, T, algorithm, sweeps, what, **kw):
    (a, b), space = _reduced_runners(H, T, algorithm, sweeps, **kw)
    assert space.n_hidden > 0
    for key in ("E", "mabs", "mu", "msum", "S", "delta"):
        np.testing.assert_allclose(b[key], a[key], rtol=RTOL, atol=RTOL, err_msg=f"{what}: {key}")
    for key in ("acc", "tries", "swap_acc", "swap_tries"):
        np.testing.assert_array_equal(b[key], a[key], err_msg=f"{what}: {key}")
    assert np.ptp(a["E"]) > 0 and np.ptp(a["mabs"]) > 0, f"{what}: the chain did not move"


def _system(N=3, n=9, r=2, seed=6):
    import spinsim as ss
    rng = np.random.default_rng(seed)
    M = ss.LowRank(rng.standard_normal((n, r)), rng.standard_normal((n, r)))
    return ss.Hamiltonian(np.tril(rng.random((N, N)), -1), M=M, h=rng.standard_normal((N, n)),
                          spin=ss.Heisenberg(n), lengths=rng.uniform(0.5, 1.5, N))


def check_reduced_cooperative_moves():
    """k = 5 visible of n = 9 (4 hidden): cooperative Metropolis, heat bath, over-relaxation, PT."""
    H = _system()
    for alg in ("metropolis", "heatbath", "overrelax"):
        _assert_same_reduced_chain(H, [0.5, 2.0], alg, 4, f"reduced k=5 {alg}", threads_per_block=2)
    _assert_same_reduced_chain(H, [0.8, 1.0, 1.2], "pt", 4, "reduced pt", exchange=True, threads_per_block=4)


def check_reduced_thread0_moves():
    """k = 3 visible of n = 9 (rank 1): moves by site.site_update on thread 0 with n_h = 6."""
    H = _system(r=1)
    for alg in ("metropolis", "heatbath"):
        _assert_same_reduced_chain(H, [0.7], alg, 4, f"reduced k=3 {alg}", threads_per_block=2)


def check_reduced_solve_backend_cuda_equals_cpu():
    import spinsim as ss
    H = _system()
    kw = dict(T=[0.6, 1.5], method="mc", algorithm="heatbath", sweeps=30, discard=5, seed=2, progress=False,
              n_chains=1)
    a = ss.solve(H, backend="cpu", **kw)
    b = ss.solve(H, backend="cuda", **kw)
    assert a.meta["state_space"].startswith("reduced") and b.meta["state_space"] == a.meta["state_space"]
    for name in ("energy", "magnetization", "susceptibility", "binder", "projection", "magnetization_vector"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=RTOL, err_msg=name)


# ----------------------------------------------------------------------------- pytest side
CHECKS = ["check_reduced_cooperative_moves", "check_reduced_thread0_moves",
          "check_reduced_solve_backend_cuda_equals_cpu"]


@functools.lru_cache(maxsize=None)
def _gpu_present() -> bool:
    """Asked once per process (a subprocess importing numba.cuda, ~0.7 s of CPU)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    try:
        out = subprocess.run([sys.executable, "-c", "from numba import cuda; print(int(cuda.is_available()))"],
                             env=env, capture_output=True, text=True, timeout=120)
        return out.stdout.strip().endswith("1")
    except Exception:
        return False


@pytest.mark.parametrize("mode", ["sim", "gpu"])
@pytest.mark.parametrize("name", CHECKS)
def test_reduced_cuda_chain_equals_cpu_chain(name, mode):
    env = dict(os.environ)
    if mode == "sim":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        if not _gpu_present():
            pytest.skip("no CUDA GPU on this machine (the simulator run covers it)")
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    proc = subprocess.run([sys.executable, __file__, name], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{name} [{mode}] failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


if __name__ == "__main__":
    from _cudasim import yield_while_polling

    yield_while_polling()           # the simulator's poller hands the GIL to the block's threads
    globals()[sys.argv[1]]()
    print(f"{sys.argv[1]}: ok")
