"""CPU Monte Carlo throughput (issue 2 'Speed'): single-site updates per second per core.

Systems, all at T = 1 with one replica on one thread (NUMBA_NUM_THREADS=1 is set below):
  1. 3D Heisenberg (n = 3), L = 16 periodic: spinsim Metropolis and over-relaxation(+heat bath),
     a plain-NumPy checkerboard Metropolis reference, and the Rust package `spinmc` (Metropolis,
     same lattice and sweep count) when installed (`pip install spinmc`).
  2. A head-sized dense system: complete causal graph N = 64, n = 768, rank-64 LowRank coupling,
     heat bath and Metropolis, against the single-core floating-point bound of one update
     (the full-space path, ``reduce=False``).
  3. The reduced spin space (issue 11): the same head system and a SmolLM2-sized one (N = 32,
     n = 576, rank 64), heat bath, reduced (``reduce=True``: k = 2r visible coordinates per site,
     k = 2r + 1 with per-site prompt-like fields) against the full-space path in the same run.

Usage: python bench/bench_mc.py [--sweeps 200] [--out bench/results/mc.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import spinsim as ss  # noqa: E402


def spinsim_rate(H: ss.Hamiltonian, algorithm: str, sweeps: int, **kw) -> float:
    """Single-site updates per second of one chain (``n_chains=1``: since 0451dba ``solve`` runs 4
    chains by default, and a rate that timed 4 chains but counted one read 4x too low). The
    warm-up is the timed call itself: a 2-sweep warm-up skipped the first real run's one-time
    costs (scipy.stats imported by split R-hat: ~0.3 s, a sixth of a 500-sweep lattice row)."""
    kw.setdefault("n_chains", 1)
    ss.solve(H, T=[1.0], method="mc", algorithm=algorithm, sweeps=sweeps, discard=1, seed=1, progress=False, **kw)
    t = time.perf_counter()
    ss.solve(H, T=[1.0], method="mc", algorithm=algorithm, sweeps=sweeps, discard=1, seed=1, progress=False, **kw)
    dt = time.perf_counter() - t
    factor = 1 + kw.get("n_overrelax", 1) if algorithm == "overrelax" else 1
    return factor * (sweeps + 1) * H.n_free / dt


def numpy_heisenberg_metropolis(L: int, sweeps: int, beta: float = 1.0, delta: float = 0.7, seed: int = 0) -> float:
    """Plain-NumPy reference: checkerboard Metropolis on the periodic L^3 Heisenberg lattice."""
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((L, L, L, 3))
    S /= np.linalg.norm(S, axis=-1, keepdims=True)
    x, y, z = np.indices((L, L, L))
    masks = [((x + y + z) % 2 == p) for p in (0, 1)]
    t = time.perf_counter()
    for _ in range(sweeps):
        for mask in masks:
            nb = sum(np.roll(S, s, axis=a) for a in range(3) for s in (1, -1))
            prop = S + delta * rng.standard_normal(S.shape)
            prop /= np.linalg.norm(prop, axis=-1, keepdims=True)
            dE = -np.sum((prop - S) * nb, axis=-1)
            acc = mask & (rng.random(dE.shape) < np.exp(-beta * np.maximum(dE, 0)))
            S = np.where(acc[..., None], prop, S)
    return sweeps * L ** 3 / (time.perf_counter() - t)


def spinmc_rate(L: int, sweeps: int) -> float | None:
    """The Rust package spinmc on the same lattice (Metropolis, 1 thread), in a subprocess."""
    code = f"""
import time, spinmc
s = spinmc.Spinmc()
s.set_structure([[1.0,0,0],[0,1.0,0],[0,0,1.0]], [[0.0,0.0,0.0]])
s.set_grid(({L},{L},{L}), 1, [1.0], (True, True, True))
s.add_exchange(1.0, neighbor_order=1)
s.set_simulation('random', 'heisenberg', 1, {sweeps}, 'metropolis', 1, [1.0])
s.set_output(outfile=r'{tempfile.gettempdir()}/spinmc_bench.txt', group_magnetization=False, group_susceptibility=False, group_magnetization_abs=False, group_susceptibility_abs=False)
t = time.perf_counter(); s.run(); print(time.perf_counter() - t)
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    except Exception:
        return None
    if out.returncode != 0:
        print("spinmc failed:", out.stderr.strip().splitlines()[-1:] if out.stderr else "")
        return None
    dt = float(out.stdout.strip().splitlines()[-1])
    return (sweeps + 1) * L ** 3 / dt


def head_flop_bound(N: int, n: int, r: int, ghz: float, simd_fma: int) -> tuple[float, float]:
    """Flops of one full-space update with the kept per-site projections (rank sums over N-1
    neighbours: 2 (N-1) r FMA; phi = A ra + B rb: 2 n r; refresh of the moved site's P_k = B^T S_k,
    Q_k = A^T S_k: 2 n r) and the single-core peak in flop/s. (Before the projections were kept:
    2 (N-1) n + 4 n r FMA, the neighbour sums in all n components.)"""
    fma = 2 * (N - 1) * r + 4 * n * r
    return 2.0 * fma, ghz * 1e9 * simd_fma * 2


def head_system(N: int, n: int, r: int, fields: bool, seed: int = 0) -> ss.Hamiltonian:
    """Causal complete graph, rank-r LowRank coupling (entries N(0, 1/64)); with ``fields``:
    per-site prompt-like fields (strength 1 along random token directions) and lengths 0.5-2."""
    rng = np.random.default_rng(seed)
    M = ss.LowRank(rng.standard_normal((n, r)) / 8, rng.standard_normal((n, r)) / 8)
    kw = {}
    if fields:
        X = rng.standard_normal((N, n))
        kw = dict(h=X / np.linalg.norm(X, axis=1, keepdims=True), lengths=rng.uniform(0.5, 2.0, N))
    return ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=M, spin=ss.Heisenberg(n), **kw)


def reduced_rows(sweeps: int) -> dict[str, float]:
    """Reduced vs full-space heat bath on head-sized systems (rates and their ratio, same run)."""
    out: dict[str, float] = {}
    for name, (N, n, r) in (("head_N64_n768_r64", (64, 768, 64)), ("smollm2_N32_n576_r64", (32, 576, 64))):
        for fields in (False, True):
            H = head_system(N, n, r, fields)
            tag = name + ("_fields" if fields else "")
            full = spinsim_rate(H, "heatbath", 20, reduce=False)
            red = spinsim_rate(H, "heatbath", max(20, sweeps), reduce=True)
            out[f"{tag}_heatbath_full"] = full
            out[f"{tag}_heatbath_reduced"] = red
            out[f"{tag}_reduced_speedup"] = red / full
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--out", default="bench/results/mc.json")
    a = ap.parse_args()
    res: dict[str, float | str | None] = {}
    H = ss.lattice("heisenberg", (a.L,) * 3)
    res["heisenberg3d_metropolis"] = spinsim_rate(H, "metropolis", a.sweeps)
    res["heisenberg3d_overrelax"] = spinsim_rate(H, "overrelax", a.sweeps, n_overrelax=1)
    res["heisenberg3d_heatbath"] = spinsim_rate(H, "heatbath", a.sweeps)
    res["numpy_reference_metropolis"] = numpy_heisenberg_metropolis(a.L, max(10, a.sweeps // 10))
    res["spinmc_metropolis"] = spinmc_rate(a.L, a.sweeps)
    rng = np.random.default_rng(0)
    N, n, r = 64, 768, 64
    Hh = ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=ss.LowRank(rng.standard_normal((n, r)) / 8,
                        rng.standard_normal((n, r)) / 8), spin=ss.Heisenberg(n))
    res["head_N64_n768_r64_heatbath"] = spinsim_rate(Hh, "heatbath", 20, reduce=False)
    res["head_N64_n768_r64_metropolis"] = spinsim_rate(Hh, "metropolis", 20, reduce=False)
    res.update(reduced_rows(a.sweeps))
    flops, peak = head_flop_bound(N, n, r, ghz=2.45, simd_fma=8)  # AVX2: 2 x (vmul + vadd) x 4 doubles
    res["head_flops_per_update"] = flops
    res["head_bound_updates_per_s"] = peak / flops
    res["head_bound_assumption"] = ("AMD EPYC (Zen 3) ~2.45 GHz, AVX2, IEEE (no FMA contraction): 2 vmul + 2 vadd "
                                    "x 4 doubles = 16 flop/cycle = 39 Gflop/s per core")
    res["ratio_spinsim_over_numpy"] = res["heisenberg3d_metropolis"] / res["numpy_reference_metropolis"]
    if res["spinmc_metropolis"]:
        res["ratio_spinsim_over_spinmc"] = res["heisenberg3d_metropolis"] / res["spinmc_metropolis"]
    res["head_fraction_of_bound"] = res["head_N64_n768_r64_heatbath"] / res["head_bound_updates_per_s"]
    for k, v in res.items():
        print(f"{k:36s} {v:.4g}" if isinstance(v, float) else f"{k:36s} {v}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
