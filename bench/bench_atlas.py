"""The SmolLM2 phase atlas (issue 12): wall time of every head's (T, h) diagram on one prompt, the
sweeps each point actually needed (doubling rule of spinsim.analysis.atlas_adapt), the projection
to the issue's 270 heads x 16 T x 8 h grid, and the Dask speed-up on 2 local workers.

Two parts (both write into bench/results/atlas.json, merged):

* ``--part full``: ``--heads`` (default all) on the prompt, grid ``--T`` x ``--field``, into
  ``--out`` (resumable: rerun to continue; the projection assumes a fresh file), rows here or on
  ``--workers`` spawned processes, then the per-head summary; reports wall time, seconds
  per row, the histograms of sweeps per point and per row (largest), the share of flagged points, and the projection
  ``seconds per (row x T) * 270 * 8 * 16``.
* ``--part dask``: ``--dask-heads`` heads run serially (Numba on every core) and on a LocalCluster
  of 1 and 2 worker processes (1 thread each); speed-up 1 -> 2 workers and serial -> 2 workers.

Usage: python bench/bench_atlas.py --part full [--T 0.25:2.5:10 --field 0:1.5:3 --sweeps 100 --max-sweeps 200]
       python bench/bench_atlas.py --part dask [--dask-heads 4]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPT = "The capital of France is Paris. The capital of Germany is"
RESULTS = Path("bench/results/atlas.json")


def _grid(text: str) -> np.ndarray:
    a, b, n = text.split(":")
    return np.linspace(float(a), float(b), int(n))


def _source(lm, heads):
    from spinsim.analysis.atlas_heads import ModelHeads

    return ModelHeads(lm, heads, [[lm.encode(PROMPT)]])


def _warm() -> int:
    import spinsim as ss
    ss.solve(ss.lattice("ising", (4, 4)), T=[2.0], method="mc", sweeps=10, discard=1, progress=False)
    return os.getpid()


def _warm_worker(_: int) -> int:
    return _warm()


def full(a: argparse.Namespace, lm) -> dict:
    from spinsim.analysis.atlas_adapt import sweeps_spent
    from spinsim.analysis.atlas_run import run_atlas
    from spinsim.analysis.atlas_store import commit
    from spinsim.analysis.atlas_summary import summarize

    T, hs = _grid(a.T), _grid(a.field)
    src = _source(lm, a.heads)
    pool = None
    if a.workers > 0:       # worker processes with one Numba and one BLAS thread each (spawned: own runtime)
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing

        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"
        pool = ProcessPoolExecutor(a.workers, mp_context=multiprocessing.get_context("spawn"))
        list(pool.map(_warm_worker, range(a.workers)))      # import and load the Numba cache before timing
    t0 = time.perf_counter()
    try:
        at = run_atlas(src, T, hs, out=a.out, sweeps=a.sweeps, max_sweeps=a.max_sweeps, n_chains=a.chains,
                       progress=True, attrs={"prompt": PROMPT, "model_id": lm.model_id}, executor=pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    wall = time.perf_counter() - t0
    summarize(at)
    commit(at.path, at)
    n_rows = int(at.done.size)
    per_row_T = wall / max(n_rows * T.size, 1)
    sweeps, counts = np.unique(at.sweeps, return_counts=True)
    psweeps, pcounts = np.unique(at.point_sweeps, return_counts=True)
    return {"heads": len(at.heads), "n_T": int(T.size), "n_h": int(hs.size), "rows": n_rows,
            "sweeps_first": a.sweeps, "sweeps_cap": a.max_sweeps, "chains": a.chains,
            "executor": f"{a.workers} worker processes" if a.workers else "local (this process)",
            "wall_s_this_run": wall, "s_per_row": wall / n_rows,
            "rows_by_largest_sweeps": {str(int(s)): int(c) for s, c in zip(sweeps, counts)},
            "points_by_sweeps": {str(int(s)): int(c) for s, c in zip(psweeps, pcounts)},
            "sweeps_spent_per_chain": sweeps_spent(at.point_sweeps, a.sweeps),
            "sweeps_of_the_first_pass": sweeps_spent(np.full(at.point_sweeps.shape, a.sweeps), a.sweeps),
            "flagged_points_fraction": float(at.flagged.mean()),
            "projected_270x16x8_s": per_row_T * 270 * 8 * 16, "out": str(a.out)}


def dask(a: argparse.Namespace, lm) -> dict:
    from distributed import Client, LocalCluster

    from spinsim.analysis.atlas_run import run_atlas, run_atlas_task
    from spinsim.executors import dask_executor
    from spinsim.models.heads import all_head_labels

    heads = all_head_labels(30, 9)[:: 270 // a.dask_heads][: a.dask_heads]
    src = _source(lm, heads)
    T, hs = _grid(a.T), _grid(a.field)
    kw = dict(sweeps=a.sweeps, max_sweeps=a.sweeps, n_chains=a.chains, progress=False)
    res: dict = {"dask_heads": heads}

    def timed(executor=None) -> float:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            run_atlas(src, T, hs, out=Path(d) / "a.h5", executor=executor, **kw)
            return time.perf_counter() - t

    _warm()
    res["serial_s"] = timed()
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40, env={"NUMBA_NUM_THREADS": "1"}) as lc, Client(lc) as c:
            c.run(_warm)
            res[f"dask_{n}_workers_s"] = timed(dask_executor(run_atlas_task, client=c))
    res["speedup_1_to_2_workers"] = res["dask_1_workers_s"] / res["dask_2_workers_s"]
    res["speedup_serial_to_2_workers"] = res["serial_s"] / res["dask_2_workers_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("full", "dask"), required=True)
    ap.add_argument("--heads", default="all")
    ap.add_argument("--T", default="0.25:2.5:10")
    ap.add_argument("--field", default="0:1.5:3")
    ap.add_argument("--sweeps", type=int, default=100)
    ap.add_argument("--max-sweeps", type=int, default=200)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0,
                    help="--part full: rows on this many spawned worker processes (1 Numba thread each); 0: here")
    ap.add_argument("--dask-heads", type=int, default=4)
    ap.add_argument("--out", default="bench/results/atlas_smollm2.h5")
    a = ap.parse_args()
    if a.heads != "all":
        a.heads = a.heads.split(",")
    from spinsim.models.loading import load_model

    lm = load_model("smollm2-135m")
    res = full(a, lm) if a.part == "full" else dask(a, lm)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    old[a.part] = res
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old, indent=2))
    for k, v in res.items():
        print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")


if __name__ == "__main__":
    main()
