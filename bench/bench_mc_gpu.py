"""CUDA Monte Carlo throughput on the issue's batch, against its arithmetic / memory bound (issue 4
'Speed'), with the CPU backend on the same batch for comparison.

Batch: head-sized systems, N = 32 sites on the causal graph (W_ij = 1 for j < i), O(768) spins,
rank-64 LowRank coupling, 64 temperatures x 16 fields h * u (u the top eigenvector of M_s, added
at every site) = 1024 replicas in one launch (per-replica fields ``h_rep``, the 16 fields as 16
chains of 64 temperatures). Heat bath by default. Rate = replicas x sweeps x sites / wall time
(single-site updates per second), state on the device, launch and copies included.

The bound (written into the output) counts, per single-site update of the cooperative CUDA path:
  flops: neighbour sums 2 (N-1) n FMA, rank projections B^T a, A^T b 2 n r FMA, back-projection
         A ra + B rb 2 n r FMA (x 2 flop), plus ~10 n for the heat-bath vectors;
  bytes: the factors A, B, A^T, B^T (4 n r doubles: one block per replica re-reads them for every
         update, from L2) and the N - 1 neighbour spins (n doubles each).
against H100 SXM figures: 33.5 TFLOP/s FP64 (CUDA cores; the FP64 tensor cores are not used),
L2 ~5.5 TB/s (measured figures quoted for H100 range 5.5-7 TB/s), HBM3 3.35 TB/s.

Usage: python bench/bench_mc_gpu.py [--gpu-sweeps 20] [--cpu-sweeps 2] [--out bench/results/mc_gpu.json]
Without a CUDA GPU the CUDA rate is reported as not measured (the bound is still printed).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import spinsim as ss
from spinsim.solvers.mc import _ALG_CODE, initial_state, prepare

N_SITES, N_COMP, RANK, N_T, N_H = 32, 768, 64, 64, 16
H100 = dict(fp64_flops=33.5e12, l2_bytes=5.5e12, hbm_bytes=3.35e12)


def head_batch(seed: int = 0):
    """The Hamiltonian, temperatures (64,), fields (16,) and per-replica fields (1024, N, n)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N_COMP, RANK)) / np.sqrt(N_COMP)
    B = rng.standard_normal((N_COMP, RANK)) / np.sqrt(N_COMP)
    W = np.tril(np.ones((N_SITES, N_SITES)), -1)
    H = ss.Hamiltonian(W, M=ss.LowRank(A, B), spin=ss.Heisenberg(N_COMP))
    Ms = 0.5 * (A @ B.T + B @ A.T)
    u = np.linalg.eigh(Ms)[1][:, -1]
    T = np.geomspace(0.05, 5.0, N_T)
    h = np.linspace(0.0, 2.0, N_H)
    h_rep = np.repeat(h, N_T)[:, None, None] * u[None, None, :] * np.ones((1, N_SITES, 1))
    return H, T, h, np.ascontiguousarray(h_rep)


def bound(N: int, n: int, r: int) -> dict:
    fma = 2 * (N - 1) * n + 4 * n * r
    flops = 2 * fma + 10 * n
    bytes_l2 = 8 * (4 * n * r + (N - 1) * n)
    arith = H100["fp64_flops"] / flops
    l2 = H100["l2_bytes"] / bytes_l2
    return dict(flops_per_update=flops, l2_bytes_per_update=bytes_l2,
                fp64_bound_updates_per_s=arith, l2_bound_updates_per_s=l2,
                bound_updates_per_s=min(arith, l2),
                bound_kind="L2 traffic (factors re-read per update, one block per replica)" if l2 < arith
                else "FP64 arithmetic",
                target_updates_per_s=1e9,
                note=("1 update/ns needs %.0f TFLOP/s FP64 for this algorithm (n r = %d per update): "
                      "above the H100's 67 TFLOP/s FP64 tensor peak; reaching it needs the exact "
                      "reduction to span(A, B, u) (<= 2r+1 = %d dims) or lower precision."
                      % (1e9 * flops / 1e12, n * r, 2 * r + 1)))


def make_runner(engine, H, T, h_rep, algorithm, n_meas, seed=1, **kw):
    k = prepare(H)
    R = h_rep.shape[0]
    S, X = initial_state(H, R, "random", seed)
    beta = np.tile(1.0 / T, R // T.size)
    return engine.Runner(S, X, beta, seed, np.arange(R), k, algorithm=algorithm,
                         alg_code=_ALG_CODE[algorithm], n_overrelax=1, exchange=algorithm == "pt",
                         n_T=T.size, delta=0.5, resync=64, n_meas=n_meas, h_rep=h_rep, **kw)


def rate(engine, H, T, h_rep, algorithm, sweeps, sync=lambda: None) -> float:
    run = make_runner(engine, H, T, h_rep, algorithm, sweeps + 1)
    run.run(0, 1, 0, adapt=False)          # compile + warm up
    sync()
    t = time.perf_counter()
    run.run(1, sweeps, 1, adapt=False)
    sync()
    run.results()
    return h_rep.shape[0] * sweeps * H.n_free / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu-sweeps", type=int, default=20)
    ap.add_argument("--cpu-sweeps", type=int, default=2)
    ap.add_argument("--algorithm", default="heatbath", choices=["heatbath", "metropolis", "pt"])
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mc_gpu.json"))
    args = ap.parse_args()

    H, T, h, h_rep = head_batch()
    R = h_rep.shape[0]
    b = bound(N_SITES, N_COMP, RANK)
    out: dict = dict(batch=dict(n_sites=N_SITES, n_comp=N_COMP, rank=RANK, n_T=N_T, n_h=N_H,
                                replicas=R, graph="causal", algorithm=args.algorithm),
                     bound=b, h100_assumptions=H100)
    print(f"batch: {R} replicas ({N_T} T x {N_H} h), N = {N_SITES} causal, n = {N_COMP}, rank {RANK}, "
          f"{args.algorithm}")
    print(f"per update: {b['flops_per_update'] / 1e3:.0f} kflop, {b['l2_bytes_per_update'] / 1e6:.2f} MB "
          f"from L2 (one block per replica)")
    print(f"H100 bounds: FP64 {b['fp64_bound_updates_per_s']:.3g} updates/s, L2 {b['l2_bound_updates_per_s']:.3g} "
          f"updates/s -> bound {b['bound_updates_per_s']:.3g} updates/s ({b['bound_kind']})")
    print("target 1e9 updates/s: " + b["note"])

    from spinsim.kernels import cuda as ck
    if ck.available() and not ck.SIMULATOR:
        from numba import cuda
        plan = ck.plan(N_COMP, 2, RANK)
        r_gpu = rate(ck, H, T, h_rep, args.algorithm, args.gpu_sweeps, sync=cuda.synchronize)
        dev = cuda.get_current_device()
        out["cuda"] = dict(updates_per_s=r_gpu, device=dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name),
                           plan=plan, fraction_of_bound=r_gpu / b["bound_updates_per_s"],
                           updates_per_ns=r_gpu / 1e9)
        print(f"CUDA: {r_gpu:.4g} updates/s = {r_gpu / 1e9:.3g} per ns on {out['cuda']['device']} "
              f"({r_gpu / b['bound_updates_per_s']:.2f} of the bound); plan {plan}")
    else:
        out["cuda"] = dict(updates_per_s=None, note="no CUDA GPU visible: not measured")
        print("CUDA: no GPU visible to numba (numba.cuda.is_available() is False): not measured")

    if not args.skip_cpu:
        from spinsim.kernels import cpu
        from numba import get_num_threads
        r_cpu = rate(cpu, H, T, h_rep, args.algorithm, args.cpu_sweeps)
        cores = get_num_threads()
        per_core_bound = 32e9 / b["flops_per_update"]      # bench_mc.py's 32 Gflop/s per core
        out["cpu"] = dict(updates_per_s=r_cpu, threads=cores, sweeps=args.cpu_sweeps,
                          bound_updates_per_s=cores * per_core_bound,
                          bound_assumption="32 Gflop/s FP64 per core (AVX-512 FMA at 2 GHz)")
        print(f"CPU: {r_cpu:.4g} updates/s on {cores} threads ({args.cpu_sweeps} sweeps; "
              f"flop bound {cores * per_core_bound:.3g} updates/s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
