"""Speed of the Monte Carlo kernels relative to another checkout, as ratios from one run.

Runs ``bench/bench_mc.py`` alternately in this checkout and in ``BASE`` (a worktree of the commit
to compare against, with its own ``.venv``), ``--rounds`` times each, and reports per spinsim row
the best rate of each side and the ratio this / base (>= 1: this checkout is faster). Alternating
and taking the best of several runs keeps the ratio meaningful on a shared, loaded machine.

Usage: python bench/bench_mc_ratio.py /work/wt-base [--rounds 5] [--sweeps 500]
       [--out bench/results/mc_ratio.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

ROWS = ("heisenberg3d_metropolis", "heisenberg3d_overrelax", "heisenberg3d_heatbath",
        "head_N64_n768_r64_heatbath", "head_N64_n768_r64_metropolis")


def bench_once(checkout: Path, sweeps: int) -> dict[str, float]:
    """One run of bench_mc.py in ``checkout`` with its own interpreter; returns its rows."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mc.json"
        subprocess.run([str(checkout / ".venv/bin/python"), "bench/bench_mc.py", "--sweeps", str(sweeps),
                        "--out", str(out)], cwd=checkout, check=True, capture_output=True, text=True)
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path, help="checkout to compare against (with .venv)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sweeps", type=int, default=500)
    ap.add_argument("--out", default="bench/results/mc_ratio.json")
    a = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    sides = {"this": here, "base": a.base.resolve()}
    best: dict[str, dict[str, float]] = {s: {} for s in sides}
    for name, path in sides.items():          # warm-up: fills each checkout's Numba cache
        bench_once(path, 2)
    for i in range(a.rounds):
        for name, path in (sides.items() if i % 2 == 0 else reversed(list(sides.items()))):
            res = bench_once(path, a.sweeps)
            for row in ROWS:
                best[name][row] = max(best[name].get(row, 0.0), float(res[row]))
    report = {row: dict(this=best["this"][row], base=best["base"][row],
                        ratio=best["this"][row] / best["base"][row]) for row in ROWS}
    for row, v in report.items():
        print(f"{row:32s} this {v['this']:.3g}  base {v['base']:.3g}  ratio {v['ratio']:.3f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(base=str(sides["base"]), rounds=a.rounds, sweeps=a.sweeps,
                                           rows=report), indent=2))


if __name__ == "__main__":
    main()
