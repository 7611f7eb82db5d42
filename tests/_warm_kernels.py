"""Compile spinsim's disk-cached Numba kernels once, before the pytest-xdist workers start.

``python tests/_warm_kernels.py GROUP`` runs small solves that compile one group of kernels into
Numba's on-disk cache (``cache=True``: ``spinsim/kernels/__pycache__``, or ``NUMBA_CACHE_DIR``).
tests/conftest.py runs the groups in parallel subprocesses when ``make test`` starts its workers:
without it every worker compiles the same kernels at the same time (the Monte Carlo loop alone
takes minutes of CPU on a fresh clone), because both start with the long tests that need them.
A warm cache makes each group a load of a few seconds. The solves are tiny and their results
are not checked here (the tests do that).
"""
from __future__ import annotations

import sys
import time

import numpy as np


def _mc() -> None:
    """The local-update loop (run_local: every coupling code, algorithm and spin kind share one
    compiled signature), replica exchange, the re-synchronisation, then Wolff (whose heat-bath
    sweep is run_local again: in this process, so that no other group compiles it too)."""
    import spinsim as ss
    H = ss.square("heisenberg", 3)
    ss.solve(H, [1.0, 2.0], method="mc", sweeps=20, n_chains=1, progress=False, seed=1, exchange=True)
    ss.solve(ss.square("ising", 3), [2.0], method="mc", algorithm="wolff", sweeps=20, n_chains=1,
             progress=False, seed=1)


def _rest() -> None:
    """Exact enumeration (Ising, continuous, discrete) and the ground-state quench/anneal (one
    signature for every coupling and spin kind: solvers.ground passes read-only arrays)."""
    import spinsim as ss
    ss.solve(ss.chain("ising", 6), [1.0], method="exact")
    ss.solve(ss.chain("ising", 6, h=0.3), [1.0], method="exact")
    V = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    Hd = ss.Hamiltonian(np.triu(np.ones((4, 4)), 1), M=ss.Identity(2, 1.0), spin=ss.Discrete(V))
    ss.solve(Hd, [1.0], method="exact")
    Hh = ss.square("heisenberg", 3)         # the quench and the anneal: one compiled signature each
    ss.solve(Hh, method="ground", restarts=2, seed=1, anneal={"sweeps": 10})
    Hsk = ss.sherrington_kirkpatrick(6, seed=2, h=0.05)          # Ising spins with a real-valued field
    ss.solve(Hsk, [1.0], method="exact")
    ss.solve(Hsk, method="ground", restarts=2, seed=1)


GROUPS = {"mc": _mc, "rest": _rest}


def main(group: str) -> None:
    t0 = time.perf_counter()
    try:
        GROUPS[group]()
    except Exception as exc:            # a warm-up failure must not hide the tests' own report
        print(f"warm-up {group}: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1)
    print(f"warm-up {group}: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1])
