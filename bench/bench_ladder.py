"""Tuned tempering ladders (issue 13 item 3): round-trip time, swap acceptances and f(T) of a
fixed linear ladder against the equal-acceptance and feedback-optimised ladders (spinsim.ladder).

2D Ising L = 8 (T_c ~ 2.27 in the infinite system), 8 temperatures 1.5 .. 5.0, heat bath plus
exchange after every sweep, 2 chains x 20000 measured sweeps after 8000 discarded (the tuning
stages use the first 4000). A shorter round-trip time T_min -> T_max -> T_min is the figure of
merit of a ladder (Katzgraber et al. 2006).

Usage: python bench/bench_ladder.py [--L 8] [--sweeps 20000] [--out bench/results/ladder.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import spinsim as ss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--sweeps", type=int, default=20000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ladder.json"))
    args = ap.parse_args()
    H = ss.square("ising", args.L)
    T = np.linspace(1.5, 5.0, 8)
    rows = {}
    for ladder in ("fixed", "acceptance", "feedback"):
        r = ss.solve(H, T, method="mc", algorithm="pt", sweeps=args.sweeps, discard=8000, n_chains=2, seed=3,
                     ladder=ladder, progress=False)
        rows[ladder] = {k: r.meta[k] for k in ("ladder", "swap_acceptance", "fraction_up", "round_trip_time",
                                                "n_round_trips")}
        m = rows[ladder]
        print(f"{ladder:10s} round trip {m['round_trip_time']:7.1f} sweeps ({m['n_round_trips']} trips), "
              f"swap acceptance {min(m['swap_acceptance']):.2f}..{max(m['swap_acceptance']):.2f}, "
              f"ladder {np.round(m['ladder'], 3).tolist()}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(L=args.L, sweeps=args.sweeps, rows=rows), indent=1))


if __name__ == "__main__":
    main()
