"""Benchmark: exact enumeration throughput (states per second) of ``method="exact"``.

Systems (N = 24 free Ising spins, 2^24 = 16.8M states, unless stated):

* ``lattice_6x4``: periodic 6 x 4 Ising ferromagnet, J = 1 (integer energies: one pass, joint
  (E, M) histogram, every T from the histogram);
* ``sk_pm1``: complete graph with random couplings +-1 (integer energies);
* ``sk_gauss``: Sherrington-Kirkpatrick, Gaussian couplings (seed 1; real energies: two passes),
  with 1 and with 16 temperatures;
* ``lattice_7x4``: N = 28 (268M states), integer path, 16 temperatures;
* ``potts3_14``: 3-state Potts vectors on a random integer graph, 14 sites (4.8M states);
* ``probe_vocab``: one probe site over a 50257-token vocabulary, n = 768, rank-64 coupling.

Timing: one warm-up call (JIT / cache load), then the best of ``REPEATS`` calls of
``ss.solve(H, T, method="exact")`` (set-up, enumeration and the Result included). Uses all the
threads Numba is given (``NUMBA_NUM_THREADS``; default: every core). Target (issue): >= 5e8
states/s for the N = 24 Ising systems.

Run: ``.venv/bin/python bench/bench_exact.py``. Writes ``bench/results/exact.json``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

import spinsim as ss

REPEATS = 3
TARGET = 5e8


def systems() -> list[tuple[str, ss.Hamiltonian, np.ndarray]]:
    rng = np.random.default_rng(1)
    T1 = np.array([2.0])
    T16 = np.linspace(0.5, 5.0, 16)
    pm = np.triu(np.sign(rng.standard_normal((24, 24))), 1)
    a = 2 * np.pi * np.arange(3) / 3
    potts = ss.Hamiltonian(np.triu(rng.integers(-1, 3, (14, 14)), 1).astype(float), M=ss.Identity(2, 1.0),
                           spin=ss.Discrete(np.stack([np.cos(a), np.sin(a)], axis=1)))
    vocab = rng.standard_normal((50257, 768)) / np.sqrt(768)
    bath = vocab[rng.integers(0, 50257, 8)]
    A, B = rng.standard_normal((768, 64)) / 8, rng.standard_normal((768, 64)) / 8
    frozen = np.ones(9, bool)
    frozen[-1] = False
    probe = ss.Hamiltonian(ss.causal(9), M=ss.LowRank(A, B), spin=ss.Discrete(vocab), frozen=frozen,
                           state=np.vstack([bath, vocab[:1]]))
    return [
        ("lattice_6x4", ss.lattice("ising", (6, 4)), T1),
        ("lattice_6x4_16T", ss.lattice("ising", (6, 4)), T16),
        ("sk_pm1", ss.Hamiltonian(pm, spin="ising"), T1),
        ("sk_gauss", ss.sherrington_kirkpatrick(24, seed=1), T1),
        ("sk_gauss_16T", ss.sherrington_kirkpatrick(24, seed=1), T16),
        ("lattice_7x4", ss.lattice("ising", (7, 4)), T16),
        ("potts3_14", potts, T1),
        ("probe_vocab", probe, T16),
    ]


def main() -> dict:
    rows = []
    for name, H, T in systems():
        t0 = time.perf_counter()
        ss.solve(H, T, method="exact")
        first = time.perf_counter() - t0
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            res = ss.solve(H, T, method="exact")
            times.append(time.perf_counter() - t0)
        n_states = res.meta["n_states"]
        rate = n_states / min(times)
        rows.append({"system": name, "n_free": H.n_free, "n_states": n_states, "n_T": int(T.size),
                     "path": res.meta["enumeration"], "seconds_best": min(times),
                     "seconds_first_call": first, "states_per_s": rate,
                     "ground_energy": res.ground_energy, "ground_degeneracy": res.ground_degeneracy})
        print(f"{name:>16}: {n_states:>11d} states, n_T={T.size:>2d}  {min(times) * 1e3:9.2f} ms  "
              f"{rate:9.3g} states/s   [{res.meta['enumeration']}]", flush=True)
    for r in rows:
        r["meets_target"] = bool(r["states_per_s"] >= TARGET) if r["n_free"] == 24 else None
    ising24 = [r for r in rows if r["n_free"] == 24]
    out = {
        "benchmark": "exact_enumeration",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "numba": numba.__version__},
        "target_states_per_s": TARGET,
        "pass": all(r["meets_target"] for r in ising24),
        "results": rows,
    }
    met = [r["system"] for r in ising24 if r["meets_target"]]
    missed = [r["system"] for r in ising24 if not r["meets_target"]]
    print(f"N = 24 Ising on {numba.get_num_threads()} thread(s), target {TARGET:.0e} states/s: met by "
          f"{', '.join(met) or 'none'}; missed by {', '.join(missed) or 'none'}")
    path = Path(__file__).resolve().parent / "results" / "exact.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
