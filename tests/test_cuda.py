"""CUDA backend: the same chains as the CPU, exact answers, and a clear error without a GPU.

``NUMBA_ENABLE_CUDASIM=1`` must be set before ``numba.cuda`` is first imported, so every
simulator check runs in a fresh subprocess: ``python tests/test_cuda.py CHECK`` runs the function
``CHECK`` below (plain asserts) with the simulator on. When this machine has a real CUDA GPU the
same checks run once more on it (``[gpu]``), without the simulator.

Chain equality: the same seed gives the same draws (counter RNG keyed by seed, replica, sweep,
site) and both backends run the same site physics (``kernels/site.py``, IEEE arithmetic):

* serial path (lattices: identity coupling, n <= 4; one thread runs ``site.sweep_schedule``): on
  the simulator the final spins, the measured series and every counter equal the CPU's **bit for
  bit**. On a real GPU NVVM contracts a * b + c into fused multiply-adds, so there they agree to
  rtol 1e-9.
* cooperative path (heads, or ``cooperative=True``): rtol 1e-9, because block sums (norms, dot
  products, dE, E, m.u) and the chunked rank projections add in another order than the CPU's
  sequential loops (one rounding per addition, ~1e-16 relative each, over a few short chains).

The simulator runs each CUDA thread as a Python thread: systems and sweep counts are tiny.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

RTOL = 1e-9
K_SIGMA = 4.0


# ----------------------------------------------------------------------------- helpers (subprocess)
def _runners(H, T, algorithm, sweeps, *, exchange=False, n_chains=1, seed=3, discard=3, h_rep=None,
             **launch):
    """The same chain on the CPU and the CUDA Runner (discard with adaptation, then measure)."""
    from spinsim.kernels import cpu, cuda as ck
    from spinsim.solvers.mc import _ALG_CODE, initial_state, prepare

    k = prepare(H)
    n_T = len(T)
    R = n_T * n_chains
    S, X = initial_state(H, R, "random", seed)
    beta = np.tile(1.0 / np.asarray(T, float), n_chains)
    out = []
    for engine, extra in ((cpu, {}), (ck, launch)):
        run = engine.Runner(S, X, beta, seed, np.arange(R), k, algorithm=algorithm,
                            alg_code=_ALG_CODE[algorithm], n_overrelax=2, exchange=exchange,
                            n_T=n_T, delta=0.5, resync=3, n_meas=sweeps, h_rep=h_rep, **extra)
        run.run(0, discard, -1, adapt=algorithm == "metropolis")
        run.reset_counters(discard)
        half = sweeps // 2          # two chunks: state carries over between launches
        run.run(discard, half, 0, adapt=False)
        run.run(discard + half, sweeps - half, half, adapt=False)
        out.append(run.results())
    return out


def _assert_same_chain(H, T, algorithm, sweeps, what, **kw):
    from spinsim.kernels import cuda as ck
    a, b = _runners(H, T, algorithm, sweeps, **kw)
    from spinsim.solvers.mc import prepare
    k = prepare(H)
    serial = not ck.plan(H.n_comp, k["code"], 1, kw.get("threads_per_block"),
                         kw.get("cooperative"))["coop"]
    for key in ("E", "mabs", "mu", "msum", "S", "delta"):
        if serial and ck.SIMULATOR:     # the serial path on the simulator: bit for bit
            np.testing.assert_array_equal(b[key], a[key], err_msg=f"{what}: {key} (serial path)")
        else:
            np.testing.assert_allclose(b[key], a[key], rtol=RTOL, atol=RTOL, err_msg=f"{what}: {key}")
    for key in ("acc", "tries", "swap_acc", "swap_tries", "beta") + tuple(k for k in a if k.startswith("walkers_")):
        np.testing.assert_array_equal(b[key], a[key], err_msg=f"{what}: {key}")
    assert np.ptp(a["E"]) > 0, f"{what}: the chain did not move"
    if kw.get("exchange"):
        assert a["swap_acc"].sum() > 0, f"{what}: no replica swap happened"


def _lowrank_discrete(N=4, n=3, K=4, r=2, seed=4):
    import spinsim as ss
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((K, n))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    M = ss.LowRank(rng.standard_normal((n, r)) * 0.6, rng.standard_normal((n, r)) * 0.6)
    return ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=M, h=rng.standard_normal((N, n)) * 0.3,
                          spin=ss.Discrete(V), lengths=rng.uniform(0.5, 1.5, N))


def _lowrank_heisenberg(N=3, n=6, r=2, seed=2):
    import spinsim as ss
    rng = np.random.default_rng(seed)
    M = ss.LowRank(rng.standard_normal((n, r)), rng.standard_normal((n, r)))
    return ss.Hamiltonian(np.tril(rng.random((N, N)), -1), M=M, h=rng.standard_normal((N, n)),
                          spin=ss.Heisenberg(n), lengths=rng.uniform(0.5, 1.5, N))


def _site_lowrank(N=3, n=3, r=2, K=3, seed=5):
    """A position-dependent SiteLowRank system (M_ij = A_i B_j^T): discrete spins (K states) for
    n <= 4, O(n) spins otherwise."""
    import spinsim as ss
    rng = np.random.default_rng(seed)
    from spinsim.coupling import SiteLowRank
    M = SiteLowRank(rng.standard_normal((N, n, r)) * 0.6, rng.standard_normal((N, n, r)) * 0.6)
    if n <= 4:
        V = rng.standard_normal((K, n))
        spin = ss.Discrete(V / np.linalg.norm(V, axis=1, keepdims=True))
    else:
        spin = ss.Heisenberg(n)
    return ss.Hamiltonian(rng.random((N, N)) * (1 - np.eye(N)), M=M, h=rng.standard_normal((N, n)) * 0.3,
                          spin=spin, lengths=rng.uniform(0.5, 1.5, N))


def brute_force(H, T):
    """<E>/N and <|m|> of a discrete/Ising H by listing every state (as in tests/test_mc.py)."""
    V = H.spin.vectors
    E, mabs = [], []
    for combo in itertools.product(range(V.shape[0]), repeat=H.n_sites):
        S = V[list(combo)] * H.lengths[:, None]
        E.append(H.energy(S))
        mabs.append(np.linalg.norm(S.mean(0)))
    E, mabs = np.asarray(E), np.asarray(mabs)
    e, m = [], []
    for t in T:
        w = np.exp(-(E - E.min()) / t)
        w /= w.sum()
        e.append(w @ E / H.n_sites)
        m.append(w @ mabs)
    return np.asarray(e), np.asarray(m)


# ----------------------------------------------------------------------------- checks (subprocess)
def check_ising_heatbath_and_metropolis_exchange():
    import spinsim as ss
    H = ss.lattice("ising", (3, 3))
    _assert_same_chain(H, [1.5, 3.0], "heatbath", 10, "ising heatbath")
    _assert_same_chain(H, [1.5, 2.2, 3.0], "metropolis", 10, "ising metropolis+exchange", exchange=True)


def check_state_restored_on_the_device_continues_the_cpu_chain():
    """A CUDA runner's state (chains, walkers, counters, series) copied out and loaded into a
    fresh CUDA runner continues exactly as the CPU chain (a checkpoint on the GPU)."""
    import spinsim as ss
    from spinsim.kernels import cpu, cuda as ck
    from spinsim.solvers.mc import _ALG_CODE, initial_state, prepare
    H = ss.lattice("ising", (3, 3))
    k = prepare(H)
    T = np.array([1.5, 2.2, 3.0])
    S, X = initial_state(H, 3, "random", 3)
    make = lambda engine: engine.Runner(S, X, 1.0 / T, 3, np.arange(3), k, algorithm="pt",   # noqa: E731
                                        alg_code=_ALG_CODE["pt"], n_overrelax=1, exchange=True, n_T=3,
                                        delta=0.5, resync=3, n_meas=8)
    ref = make(cpu)
    ref.run(0, 4, -1, adapt=False)
    ref.reset_counters(4)
    ref.run(4, 8, 0, adapt=False)
    first = make(ck)
    first.run(0, 4, -1, adapt=False)
    first.reset_counters(4)
    first.run(4, 3, 0, adapt=False)
    second = make(ck)
    second.load_state(first.state())
    second.run(7, 5, 3, adapt=False)
    a, b = ref.results(), second.results()
    for key in a:
        np.testing.assert_array_equal(b[key], a[key], err_msg=f"restored state: {key}")


def check_heisenberg_lattice_every_local_algorithm():
    import spinsim as ss
    H = ss.lattice("heisenberg", (3, 3))
    for alg in ("metropolis", "heatbath", "overrelax"):
        _assert_same_chain(H, [0.5, 2.0], alg, 8, f"heisenberg n=3 {alg}")
    _assert_same_chain(H, [0.9, 1.0, 1.1], "pt", 6, "heisenberg n=3 pt", exchange=True)


def check_heisenberg_lattice_cooperative_path():
    import spinsim as ss
    H = ss.lattice("heisenberg", (2, 2))
    _assert_same_chain(H, [0.5, 2.0], "heatbath", 5, "heisenberg n=3 cooperative", cooperative=True,
                       threads_per_block=2)


def check_discrete_lowrank_shared_and_global_factors():
    H = _lowrank_discrete()
    _assert_same_chain(H, [0.7, 1.5], "heatbath", 6, "discrete low-rank heatbath (shared factors)",
                       threads_per_block=2, shared_factors=True)
    _assert_same_chain(H, [0.7, 1.5], "metropolis", 6, "discrete low-rank metropolis+exchange "
                       "(global factors)", exchange=True, threads_per_block=2, shared_factors=False)


def check_lowrank_heisenberg_big_n_paths():
    """n = 6 > 4: cooperative Gaussian proposals, vMF heat bath and reflections."""
    H = _lowrank_heisenberg()
    for alg in ("metropolis", "heatbath", "overrelax"):
        _assert_same_chain(H, [0.5, 2.0], alg, 4, f"low-rank n=6 {alg}", threads_per_block=2)
    # rank projections split into component chunks (8 threads > rank 2: 4 chunks per rank index)
    _assert_same_chain(H, [0.7], "heatbath", 3, "chunked rank projections", threads_per_block=8)
    # workspaces in global memory (what n > ~1000 uses)
    _assert_same_chain(H, [0.7], "metropolis", 3, "global workspaces", threads_per_block=2,
                       shared_work=False, shared_factors=False)
    # more rank indices than threads (rank 4, 2 threads)
    _assert_same_chain(_lowrank_heisenberg(r=4), [0.7], "heatbath", 3, "rank > threads", threads_per_block=2)


def check_site_lowrank_every_path():
    """SiteLowRank (code 3): the serial path bit for bit (the CPU's sweep on thread 0), the
    cooperative one (per-site factor sets shared or global, rank sums per thread, chunked refresh
    of the moved site's projections) to rtol; replica exchange swaps the projections too."""
    Hd = _site_lowrank()
    _assert_same_chain(Hd, [0.7, 1.5], "heatbath", 6, "site low-rank discrete heatbath (serial)",
                       cooperative=False)
    _assert_same_chain(Hd, [0.7, 1.0, 1.5], "metropolis", 6, "site low-rank discrete metropolis+exchange "
                       "(serial)", exchange=True, cooperative=False)
    _assert_same_chain(Hd, [0.7, 1.5], "heatbath", 5, "site low-rank discrete heatbath (shared factors)",
                       threads_per_block=2, shared_factors=True)
    Hc = _site_lowrank(n=6)
    _assert_same_chain(Hc, [0.5, 2.0], "overrelax", 3, "site low-rank n=6 overrelax (serial)",
                       cooperative=False)
    for alg in ("metropolis", "heatbath"):
        _assert_same_chain(Hc, [0.5, 2.0], alg, 3, f"site low-rank n=6 {alg} (global factors)",
                           threads_per_block=2, shared_factors=False)
    _assert_same_chain(Hc, [0.7, 0.9], "pt", 3, "site low-rank n=6 pt, chunked refresh", exchange=True,
                       threads_per_block=8)


def check_per_replica_fields():
    """h_rep (R, N, n): a (T, h) grid in one launch, exchange along T at equal h."""
    import spinsim as ss
    H = ss.lattice("ising", (2, 3))
    T = [1.5, 3.0]
    h = np.array([0.0, 0.5, -1.0])                       # 3 fields x 2 temperatures
    h_rep = np.repeat(h, len(T))[:, None, None] * np.ones((1, H.n_sites, 1))
    _assert_same_chain(H, T, "heatbath", 8, "per-replica fields", n_chains=3, h_rep=h_rep,
                       exchange=True)
    from spinsim.kernels import cuda as ck
    from spinsim.solvers.mc import initial_state, prepare
    S, X = initial_state(H, 6, "random", 1)
    bad = h_rep.copy()
    bad[1] += 0.1                                        # differs along a chain
    try:
        ck.Runner(S, X, np.ones(6), 1, np.arange(6), prepare(H), algorithm="pt", alg_code=1,
                  n_overrelax=1, exchange=True, n_T=2, delta=0.5, resync=0, n_meas=2, h_rep=bad)
    except ValueError as e:
        assert "equal along each chain" in str(e), e
    else:
        raise AssertionError("h_rep varying along an exchange chain was accepted")


def check_solve_backend_cuda_equals_cpu():
    """The whole solve() path: backend='cuda' gives the CPU's numbers."""
    import spinsim as ss
    H = ss.lattice("ising", (2, 3))
    kw = dict(T=[1.5, 3.0], method="mc", algorithm="pt", sweeps=60, discard=10, seed=5, progress=False)
    a = ss.solve(H, backend="cpu", **kw)
    b = ss.solve(H, backend="cuda", **kw)
    assert b.backend == "cuda"
    from spinsim.kernels import cuda as ck
    for name in ("energy", "energy_err", "magnetization", "susceptibility", "binder"):
        if ck.SIMULATOR:                # serial path (Ising lattice): bit for bit
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
        else:
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=RTOL, err_msg=name)
    assert a.meta["swap_acceptance"] == b.meta["swap_acceptance"]
    try:
        ss.solve(H, backend="cuda", **{**kw, "algorithm": "wolff"})
    except ValueError as e:
        assert "algorithm 'wolff' is CPU-only; use backend='cpu'" in str(e), e
    else:
        raise AssertionError("wolff on cuda was accepted")


def check_ising_matches_enumeration():
    import spinsim as ss
    H = ss.lattice("ising", (2, 3))
    T = np.array([1.5, 3.0])
    e, m = brute_force(H, T)
    r = ss.solve(H, T=T, method="mc", backend="cuda", sweeps=1500, discard=100, seed=11, progress=False,
                 n_chains=1)
    for what, val, err, ref in (("energy", r.energy, r.energy_err, e),
                                ("|m|", r.magnetization, r.magnetization_err, m)):
        z = np.abs(val - ref) / err
        assert np.all(err > 0) and np.all(z < K_SIGMA), f"{what}: {val} +- {err} vs exact {ref}"


def check_tiny_ising_matches_enumeration():
    """Fast version: 2 x 2 periodic Ising (16 states), one temperature."""
    import spinsim as ss
    H = ss.lattice("ising", (2, 2))
    T = np.array([2.0])
    e, m = brute_force(H, T)
    r = ss.solve(H, T=T, method="mc", backend="cuda", sweeps=800, discard=50, seed=4, progress=False)
    for what, val, err, ref in (("energy", r.energy, r.energy_err, e),
                                ("|m|", r.magnetization, r.magnetization_err, m)):
        z = np.abs(val - ref) / err
        assert np.all(err > 0) and np.all(z < K_SIGMA), f"{what}: {val} +- {err} vs exact {ref}"


def check_discrete_lowrank_matches_enumeration():
    """Cooperative path (low-rank field by the block) against enumeration."""
    import spinsim as ss
    H = _lowrank_discrete(N=3, K=3)
    T = np.array([1.0])
    e, m = brute_force(H, T)
    r = ss.solve(H, T=T, method="mc", backend="cuda", sweeps=500, discard=50, seed=2, progress=False,
                 n_chains=1)
    for what, val, err, ref in (("energy", r.energy, r.energy_err, e),
                                ("|m|", r.magnetization, r.magnetization_err, m)):
        z = np.abs(val - ref) / err
        assert np.all(err > 0) and np.all(z < K_SIGMA), f"{what}: {val} +- {err} vs exact {ref}"


def check_kernels_compile_to_sm90_ptx():
    """Every CUDA kernel compiles to sm_90 PTX with NVVM (what a real GPU would run; no GPU
    needed). Without a GPU Numba's device-function compile asks the absent device for its compute
    capability, so a stand-in answers (9, 0)."""
    import types

    import numba.cuda.dispatcher as disp
    from numba import cuda, typeof

    from spinsim.kernels.arrays import Chains, from_prepared, walkers
    from spinsim.kernels.cuda import kernels as K
    from spinsim.solvers.mc import prepare
    if not cuda.is_available():
        disp.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
    H = _lowrank_heisenberg(N=4, n=8, r=2)
    g, cp, st = from_prepared(prepare(H))
    R, N, n, r = 2, H.n_sites, H.n_comp, 2
    z, i = np.zeros, np.int64(0)
    ch = Chains(z((R, N, n)), z((R, N), np.int64), z(R), z((R, n)), z(R), z((R, N, r)), z((R, N, r)))
    out = (z((R, 3)), z((R, 3)), z((R, 3)), z((R, n)))
    cnt = z(R, np.int64)
    from spinsim.kernels.hidden import Hidden
    hid, mscr = Hidden(i, i, z((N, 2, 1))), z((R, n + 2))
    sweeps = (ch, z(R), z(R), cnt, cnt, np.uint64(1), cnt, i, i, i, i, True, g, cp, st, z((1, N, n)),
              i, out, i, True, z((R, 5)), z((R, 1)), True, True, hid, mscr)
    from spinsim.kernels._jit import no_ir_inlining
    for kernel, args in ((K._k_sweeps_coop, sweeps), (K._k_sweeps_serial, sweeps),
                         (K._k_resync, (ch, g, cp, st, z((1, N, n)), z((R, 5)), True)),
                         (K._k_exchange, (ch, z(R), np.uint64(1), cnt, i, i, cnt, cnt, out, i, st, hid,
                                          mscr, walkers(R)))):
        with no_ir_inlining():                  # as a launch compiles them (spinsim.kernels._jit)
            ptx, _ = cuda.compile_ptx(kernel.py_func, tuple(typeof(a) for a in args), cc=(9, 0))
        assert ".entry" in ptx and "sm_90" in ptx, kernel


# ----------------------------------------------------------------------------- pytest side
def _gpu_present() -> bool:
    code = "from numba import cuda; print(int(cuda.is_available()))"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        return out.stdout.strip().endswith("1")
    except Exception:
        return False


_GPU = None


def _run_check(name: str, mode: str) -> None:
    global _GPU
    env = dict(os.environ)
    if mode == "sim":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        if _GPU is None:
            _GPU = _gpu_present()
        if not _GPU:
            pytest.skip("no CUDA GPU on this machine (the simulator run covers it)")
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    proc = subprocess.run([sys.executable, __file__, name], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{name} [{mode}] failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


FAST = ["check_ising_heatbath_and_metropolis_exchange", "check_state_restored_on_the_device_continues_the_cpu_chain",
        "check_heisenberg_lattice_every_local_algorithm",
        "check_heisenberg_lattice_cooperative_path", "check_discrete_lowrank_shared_and_global_factors",
        "check_lowrank_heisenberg_big_n_paths", "check_site_lowrank_every_path", "check_per_replica_fields",
        "check_solve_backend_cuda_equals_cpu"]
EXACT = ["check_tiny_ising_matches_enumeration"]
SLOW = ["check_ising_matches_enumeration", "check_discrete_lowrank_matches_enumeration"]


@pytest.mark.parametrize("mode", ["sim", "gpu"])
@pytest.mark.parametrize("name", FAST)
def test_cuda_chain_equals_cpu_chain(name, mode):
    _run_check(name, mode)


@pytest.mark.parametrize("mode", ["sim", "gpu"])
@pytest.mark.parametrize("name", EXACT)
def test_cuda_matches_enumeration(name, mode):
    _run_check(name, mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sim", "gpu"])
@pytest.mark.parametrize("name", SLOW)
def test_cuda_matches_enumeration_longer(name, mode):
    _run_check(name, mode)


def _nvvm_present() -> bool:
    try:
        from numba.cuda.cudadrv import nvvm
        return bool(nvvm.is_available())
    except Exception:
        return False


@pytest.mark.slow
def test_kernels_compile_to_ptx():
    """numba-cuda accepts every construct the kernels use (grouped namedtuple arguments, shared
    physics compiled for the GPU, strided views): checked by compiling to PTX, ~25 s of CPU."""
    if not _nvvm_present():
        pytest.skip("NVVM (CUDA toolkit) not installed")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, __file__, "check_kernels_compile_to_sm90_ptx"], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def test_cuda_backend_without_gpu_is_a_clear_error():
    import spinsim as ss
    from numba import config, cuda
    if config.ENABLE_CUDASIM or cuda.is_available():
        pytest.skip("a GPU (or the simulator) is available in this process")
    H = ss.lattice("ising", 4)
    with pytest.raises(RuntimeError, match=r"^backend 'cuda' needs a CUDA GPU \(numba\.cuda\.is_available\(\) "
                                           r"is False\); use backend='cpu' or 'auto'$"):
        ss.solve(H, T=1.0, method="mc", backend="cuda", progress=False)
    r = ss.solve(H, T=1.0, method="mc", backend="auto", sweeps=10, progress=False)
    assert r.backend == "cpu"


if __name__ == "__main__":
    from _cudasim import yield_while_polling

    yield_while_polling()           # the simulator's poller hands the GIL to the block's threads
    globals()[sys.argv[1]]()
    print(f"{sys.argv[1]}: ok")
