"""Scaling of a sweep over Dask local workers (issue 6), and the executor's per-row overhead.

Runs the same 2D Ising sweep (rows = field values) three ways: the local serial executor, a
LocalCluster with 1 worker process, and one with 2 worker processes (1 thread each, Numba pinned
to 1 thread), and reports wall times, the speed-up 1 -> 2 workers and the per-row overhead
(dask with 1 worker - serial) / n_rows. Numba compilation is warmed up first in every process.

Usage: python bench/bench_dask.py [--L 16] [--rows 8] [--sweeps 3000]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ["NUMBA_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

import spinsim as ss  # noqa: E402
from spinsim.executors import dask_executor  # noqa: E402
from spinsim.phase import run_task, sweep  # noqa: E402


def _warm() -> int:
    ss.solve(ss.lattice("ising", (4, 4)), T=[2.0], method="mc", sweeps=10, discard=1, progress=False)
    return os.getpid()


def timed_sweep(H, T, fields, kw, executor=None) -> float:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        sweep(H, T, fields, out=Path(d) / "s.h5", seed=1, progress=False, executor=executor,
              estimate=False, boundaries=False, **kw)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--sweeps", type=int, default=3000)
    ap.add_argument("--out", default="bench/results/dask.json")
    a = ap.parse_args()
    from distributed import Client, LocalCluster

    H = ss.lattice("ising", (a.L, a.L))
    T = np.linspace(2.0, 2.6, 4)
    fields = np.linspace(0.0, 0.5, a.rows)
    kw = dict(algorithm="heatbath", sweeps=a.sweeps, discard=200, backend="cpu")
    _warm()
    res: dict[str, float] = {"rows": a.rows, "L": a.L, "sweeps": a.sweeps}
    res["serial_s"] = timed_sweep(H, T, fields, kw)
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40, env={"NUMBA_NUM_THREADS": "1"}) as lc, Client(lc) as c:
            c.run(_warm)
            res[f"dask_{n}_workers_s"] = timed_sweep(H, T, fields, kw, dask_executor(run_task, client=c))
    res["speedup_1_to_2_workers"] = res["dask_1_workers_s"] / res["dask_2_workers_s"]
    res["overhead_per_row_s"] = (res["dask_1_workers_s"] - res["serial_s"]) / a.rows
    res["row_compute_s"] = res["serial_s"] / a.rows
    for k, v in res.items():
        print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
