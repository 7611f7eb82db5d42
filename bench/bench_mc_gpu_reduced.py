"""CUDA throughput of the reduced spin space (issue 11 item 3) against the full-space CUDA path,
on one launch of many replicas.

System: the head-sized batch (N = 64 sites on the causal graph, O(768) spins, rank-64 LowRank
coupling, per-site prompt-like fields of strength 1 and lengths 0.5-2), heat bath, 32 temperatures
x 8 chains = 256 replicas in one launch. Rate = replicas x sweeps x sites / wall time (single-site
updates per second; state on the device, launch and copies included, the first compiling call
excluded). Reduced: k = 2r + 1 = 129 visible coordinates per site instead of 768.

Usage: python bench/bench_mc_gpu_reduced.py [--sweeps 20] [--out bench/results/mc_gpu_reduced.json]
Without a CUDA GPU the rates are reported as not measured.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import spinsim as ss
from spinsim.solvers.mc import cuda_available


def system(N: int = 64, n: int = 768, r: int = 64, seed: int = 0) -> ss.Hamiltonian:
    rng = np.random.default_rng(seed)
    M = ss.LowRank(rng.standard_normal((n, r)) / 8, rng.standard_normal((n, r)) / 8)
    X = rng.standard_normal((N, n))
    return ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=M, spin=ss.Heisenberg(n),
                          h=X / np.linalg.norm(X, axis=1, keepdims=True), lengths=rng.uniform(0.5, 2.0, N))


def rate(H: ss.Hamiltonian, reduce: bool, sweeps: int, n_T: int, n_chains: int) -> float:
    kw = dict(method="mc", backend="cuda", algorithm="heatbath", seed=1, progress=False, reduce=reduce,
              n_chains=n_chains, discard=1)
    T = np.geomspace(0.1, 5.0, n_T)
    ss.solve(H, T=T, sweeps=2, **kw)                       # compile
    t = time.perf_counter()
    ss.solve(H, T=T, sweeps=sweeps, **kw)
    return n_T * n_chains * (sweeps + 1) * H.n_free / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweeps", type=int, default=20)
    ap.add_argument("--n-T", type=int, default=32)
    ap.add_argument("--n-chains", type=int, default=8)
    ap.add_argument("--out", default="bench/results/mc_gpu_reduced.json")
    a = ap.parse_args()
    res: dict[str, object] = {"replicas": a.n_T * a.n_chains, "sweeps": a.sweeps}
    H = system()
    if cuda_available():
        res["cuda_reduced_updates_per_s"] = rate(H, True, a.sweeps, a.n_T, a.n_chains)
        res["cuda_full_updates_per_s"] = rate(H, False, max(2, a.sweeps // 4), a.n_T, a.n_chains)
        res["cuda_reduced_speedup"] = res["cuda_reduced_updates_per_s"] / res["cuda_full_updates_per_s"]
    else:
        res["cuda"] = "not measured: no CUDA GPU visible to Numba"
    for k, v in res.items():
        print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
