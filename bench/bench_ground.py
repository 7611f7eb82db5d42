"""Benchmark: ground state of a head-sized system with ``method="ground"`` (issue 7).

System: N = 32 sites, n = 768 components, rank-64 coupling ``M = A B^T`` with ``A = W_Q / sqrt(64)``,
``B = W_K``, W_Q, W_K ~ N(0, 1/n) (seed 0), causal graph ``W_ij = 1`` for j < i, spin lengths
uniform in [1, 10], no field; 64 restarts, tol 1e-12, adaptive over-relaxation. Target: < 2 s on
one core. Also times the excitation spectrum (lowest 16 modes) of the best state.

Run: ``.venv/bin/python bench/bench_ground.py`` (NUMBA_NUM_THREADS and the BLAS thread counts are set to 1
here if unset). Writes ``bench/results/ground.json``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")      # one core (set before numpy/numba load)

import numpy as np  # noqa: E402

import spinsim as ss  # noqa: E402
from spinsim.solvers.ground import excitations  # noqa: E402

N_SITES, N_COMP, RANK, RESTARTS, REPEATS = 32, 768, 64, 64, 5
TARGET_S = 2.0


def head_system(seed: int = 0) -> ss.Hamiltonian:
    rng = np.random.default_rng(seed)
    W_Q = rng.standard_normal((N_COMP, RANK)) / np.sqrt(N_COMP)
    W_K = rng.standard_normal((N_COMP, RANK)) / np.sqrt(N_COMP)
    lengths = rng.uniform(1.0, 10.0, N_SITES)
    return ss.Hamiltonian(ss.causal(N_SITES), M=ss.LowRank(W_Q / np.sqrt(RANK), W_K),
                          spin=ss.Heisenberg(N_COMP), lengths=lengths, name="bench_head")


def main() -> dict:
    H = head_system()
    t0 = time.perf_counter()
    res = ss.solve(H, method="ground", restarts=RESTARTS, seed=0)      # includes JIT / cache load
    warm = time.perf_counter() - t0
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        res = ss.solve(H, method="ground", restarts=RESTARTS, seed=0)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ex = excitations(H, res.ground_states[0], n_modes=16)
    t_ex = time.perf_counter() - t0
    out = {
        "benchmark": "ground_state_head",
        "system": {"n_sites": N_SITES, "n_comp": N_COMP, "rank": RANK, "graph": "causal",
                   "lengths": "uniform(1, 10)", "restarts": RESTARTS},
        "seconds_best": min(times), "seconds_median": float(np.median(times)), "seconds_all": times,
        "seconds_first_call": warm, "target_seconds": TARGET_S, "pass": min(times) < TARGET_S,
        "ground_energy": res.ground_energy, "n_minima": res.meta["n_minima"],
        "best_hit_fraction": res.meta["best_hit_fraction"], "n_converged": res.meta["n_converged"],
        "sweeps_mean": res.meta["sweeps_mean"], "sweeps_max": res.meta["sweeps_max"],
        "working_dim": res.meta["working_dim"],
        "excitations_seconds": t_ex, "excitations_method": ex.method, "n_reduced": ex.n_reduced,
        "lowest_modes": [float(x) for x in ex.eigenvalues[:4]], "n_zero_modes": ex.n_zero_modes,
        "spin_wave_gap": ex.spin_wave_gap,
        "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS"), "machine": platform.machine(),
        "processor": platform.processor(), "python": platform.python_version(),
        "spinsim": ss.__version__,
    }
    path = Path(__file__).resolve().parent / "results" / "ground.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"ground state N={N_SITES} n={N_COMP} rank={RANK}, {RESTARTS} restarts: "
          f"best {min(times):.3f} s, median {np.median(times):.3f} s (target < {TARGET_S} s: "
          f"{'PASS' if out['pass'] else 'FAIL'}); first call {warm:.2f} s")
    print(f"  E0 = {res.ground_energy:.10g}, {res.meta['n_minima']} distinct minima, best hit "
          f"{res.meta['best_hit_fraction']:.2f}, sweeps mean {res.meta['sweeps_mean']:.1f} "
          f"max {res.meta['sweeps_max']}, working dim {res.meta['working_dim']}")
    print(f"  excitations: {t_ex:.3f} s ({ex.method}, reduced dim {ex.n_reduced}), lowest "
          f"{ex.eigenvalues[:3]}, zero modes {ex.n_zero_modes}, gap {ex.spin_wave_gap:.6g}")
    print(f"  -> {path}")
    return out


if __name__ == "__main__":
    main()
