"""Compile time of the kernels (the first run on a fresh install, and `make test`'s warm-up):
the present compile policy of :mod:`spinsim.kernels._jit` against the former one (every
``physics`` function and the nested scalar random draws inlined at the Numba IR level, CUDA
kernels included), measured in the same run.

Each measurement runs in a fresh subprocess with an empty Numba cache folder (NUMBA_CACHE_DIR),
one thread, and reports the CPU seconds (``time.process_time``) of:

* ``cpu_mc``: the first Monte Carlo solve of a 3D Heisenberg lattice (Metropolis; compiles the
  sweep loop, the site update, the moves, the measurements);
* ``ptx``: the compile of every CUDA kernel to sm_90 PTX with NVVM (no GPU needed; skipped where
  NVVM is not installed), as tests/test_cuda.py::test_kernels_compile_to_ptx does;

then the rates of one Heisenberg Metropolis and one reduced head heat-bath solve, so that a
cheaper compile is seen not to cost run time (the full rate table is bench/bench_mc.py's).

Usage: python bench/bench_compile.py [--out bench/results/compile.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import os, sys, time, json
os.environ["NUMBA_NUM_THREADS"] = "1"
policy, what = sys.argv[1], sys.argv[2]
import numba
from spinsim.kernels import _jit
from spinsim.kernels import moves, rng
FORMER = (rng.gauss2, rng.gamma_draw, rng.chi2_draw, moves.vmf_w)
if policy == "inline-all":                      # the former policy
    for d in FORMER:
        d.targetoptions["inline"] = "always"
out = {}
if what == "cpu_mc":
    import numpy as np, spinsim as ss
    sys.path.insert(0, "bench")
    from bench_mc import head_system
    H = ss.lattice("heisenberg", (16, 16, 16))
    t = time.process_time()
    ss.solve(H, T=[1.0], method="mc", algorithm="metropolis", sweeps=2, discard=1, seed=1, progress=False)
    out["cpu_mc_compile_s"] = time.process_time() - t
    def rate(H, alg, sweeps, **kw):
        # one chain (solve runs 4 by default since 0451dba; the rates of 30 Nov counted one chain's
        # updates over four chains' CPU time: 4x too low, their former/present ratios unaffected)
        kw.setdefault("n_chains", 1)
        ss.solve(H, T=[1.0], method="mc", algorithm=alg, sweeps=2, discard=1, seed=1, progress=False, **kw)
        best = 0.0
        for _ in range(3):
            t = time.process_time()
            ss.solve(H, T=[1.0], method="mc", algorithm=alg, sweeps=sweeps, discard=1, seed=1, progress=False, **kw)
            best = max(best, (sweeps + 1) * H.n_free / (time.process_time() - t))
        return best
    out["heisenberg3d_metropolis_per_cpu_s"] = rate(H, "metropolis", 20)
    out["head_N64_n768_r64_fields_reduced_heatbath_per_cpu_s"] = rate(head_system(64, 768, 64, True), "heatbath", 200)
else:
    sys.path.insert(0, "tests")
    import contextlib
    import test_cuda
    from numba import cuda
    if policy == "inline-all":
        _jit.no_ir_inlining = contextlib.nullcontext        # CUDA compiled with the IR inlining
    t = time.process_time()
    test_cuda.check_kernels_compile_to_sm90_ptx()
    out["ptx_compile_s"] = time.process_time() - t
print("RESULT " + json.dumps(out))
"""


def _nvvm() -> bool:
    code = "from numba.cuda.cudadrv import nvvm; nvvm.NVVM()"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0


def measure(policy: str, what: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        env.update(NUMBA_CACHE_DIR=cache, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        r = subprocess.run([sys.executable, "-c", CHILD, policy, what], env=env, capture_output=True, text=True)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode != 0 or not line:
        raise RuntimeError(f"{policy}/{what} failed:\n{r.stderr[-3000:]}")
    return json.loads(line[0][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/compile.json")
    a = ap.parse_args()
    parts = ["cpu_mc"] + (["ptx"] if _nvvm() else [])
    res: dict[str, dict] = {}
    for what in parts:
        for policy in ("present", "inline-all"):
            res.setdefault(policy, {}).update(measure(policy, what))
            print(policy, what, res[policy], flush=True)
    ratios = {k: res["inline-all"][k] / res["present"][k] for k in res["present"] if k.endswith("_s")}
    ratios.update({k: res["present"][k] / res["inline-all"][k] for k in res["present"] if k.endswith("per_cpu_s")})
    out = {"present": res["present"], "inline_all": res["inline-all"],
           "compile_speedup (former / present)": {k: v for k, v in ratios.items() if k.endswith("compile_s")},
           "rate_ratio (present / former)": {k: v for k, v in ratios.items() if k.endswith("per_cpu_s")},
           "load_average": os.getloadavg()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
