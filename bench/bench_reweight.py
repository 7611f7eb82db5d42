"""Cost of the binned series and of multi-histogram reweighting (issue 13, "Speed").

1. Bins: one Monte Carlo run (2D Ising, heat bath) with the time spent building the bins
   (:func:`spinsim.bins.bin_series`, timed inside the same run) and the extra time of writing
   them (the same result written with and without bins), each as a ratio to the run's own
   Monte Carlo time (``meta["elapsed_s"]``). Target: under 5 %.
2. MBAR on a 64-temperature ladder: one run of 64 temperatures, then the time of one pymbar
   solve (the free energies), of the whole fit (that solve, 16 warm-started jackknife solves and
   the trusted-range scan) and of the curves at 256 temperatures with errors. Target: under 2 s.

Usage: python bench/bench_reweight.py [--L 16] [--sweeps 4000] [--only bins|mbar]
       [--out bench/results/reweight.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import spinsim as ss
import spinsim.solvers.mc as mc
from spinsim.mbar import solve
from spinsim.threads import one_blas_thread
from spinsim.reweighting import Reweighting


def bins_cost(L: int, sweeps: int) -> dict[str, float]:
    H = ss.square("ising", L)
    T = np.linspace(2.0, 2.8, 16)
    ss.solve(H, T=T[:2], method="mc", sweeps=50, n_chains=1)            # compile outside the timing
    spent = [0.0]
    inner = mc.bin_series

    def timed(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        spent[0] += time.perf_counter() - t
        return out

    mc.bin_series = timed
    try:
        res = ss.solve(H, T=T, method="mc", sweeps=sweeps, n_chains=4, seed=1)
    finally:
        mc.bin_series = inner
    mc_s = float(res.meta["elapsed_s"])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res.to_hdf5(Path(tmp) / "with.h5")
        with_bins = time.perf_counter() - t
        bins, res.bins = res.bins, None
        t = time.perf_counter()
        res.to_hdf5(Path(tmp) / "without.h5")
        without = time.perf_counter() - t
        res.bins = bins
        size = [(Path(tmp) / n).stat().st_size for n in ("with.h5", "without.h5")]
    return {"mc_s": mc_s, "binning_s": spent[0], "write_extra_s": with_bins - without,
            "binning_ratio": spent[0] / mc_s, "write_ratio": (with_bins - without) / mc_s,
            "total_ratio": (spent[0] + with_bins - without) / mc_s, "file_bytes_with": size[0],
            "file_bytes_without": size[1], "n_T": T.size, "n_chains": 4, "sweeps": sweeps, "L": L}


def mbar_64(L: int, sweeps: int) -> dict[str, float]:
    H = ss.square("ising", L)
    T = np.linspace(2.1, 2.7, 64)
    res = ss.solve(H, T=T, method="mc", sweeps=sweeps, n_chains=1, seed=2)
    rw0 = Reweighting(res, n_jackknife=2)                 # data as the fit sees it (and pymbar imported)
    fit = np.concatenate([np.flatnonzero(rw0.state == k)[:256] for k in range(T.size)])
    with one_blas_thread():
        t = time.perf_counter()
        solve(rw0.E[fit], rw0.beta_k, rw0.state[fit], None)
        solve_s = time.perf_counter() - t
    t = time.perf_counter()
    rw = Reweighting(res)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    rw.curves(np.linspace(2.15, 2.65, 256))
    curves_s = time.perf_counter() - t
    t = time.perf_counter()
    rw.peak("susceptibility", T_range=(2.15, 2.65))
    peak_s = time.perf_counter() - t
    return {"n_T": T.size, "samples_per_T": int(rw.N_k[0]), "mbar_samples_per_T": 256, "L": L,
            "mbar_solve_s": solve_s, "fit_with_16_jackknife_s": fit_s, "curves_256T_s": curves_s, "chi_peak_s": peak_s,
            "trusted": rw.trusted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--sweeps", type=int, default=4000)
    ap.add_argument("--out", default="bench/results/reweight.json")
    ap.add_argument("--only", choices=("bins", "mbar"), default=None)
    a = ap.parse_args()
    out = {}
    if a.only in (None, "bins"):
        out["bins"] = bins_cost(a.L, a.sweeps)
    if a.only in (None, "mbar"):
        out["mbar_64"] = mbar_64(a.L, a.sweeps // 2)
    print(json.dumps(out, indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
