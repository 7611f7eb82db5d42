"""Benchmark: the whole SmolLM2 logit-gap study (270 heads x 20 prompts, paper and corrected modes,
10,000 permutations), model loading included. Target: < 3 minutes on 2 CPU cores.

    .venv/bin/python bench/bench_study.py [--ablation zero|mean|both] [--threads 2] [--out bench/results/study.h5]

Prints a timing breakdown and the headline numbers, and writes bench/results/bench_study.json.
Ablation (270 heads x 20 prompts of extra forward passes through the layers after each head) is
not part of the target; ``--ablation`` times it separately.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 180.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", default=str(REPO / "data" / "prompts" / "paper20.tsv"))
    ap.add_argument("--permutations", type=int, default=10_000)
    ap.add_argument("--ablation", choices=("none", "zero", "mean", "both"), default="none")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the target machine)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "study.h5"))
    args = ap.parse_args()

    t_start = time.perf_counter()
    import torch
    torch.set_num_threads(args.threads)
    from spinsim.analysis.gaps import GapMode
    from spinsim.analysis.prompts import load_prompts, tokenize_items
    from spinsim.analysis.study import run_gap_study, summary_lines, write_gap_study
    from spinsim.models.extract import spectra
    from spinsim.models.loading import load_model
    t_import = time.perf_counter() - t_start

    t = time.perf_counter()
    lm = load_model(args.model)
    t_load = time.perf_counter() - t
    items = tokenize_items(load_prompts(args.prompts), lm.encode)
    modes = [GapMode.corrected(), GapMode.paper(lm.family)]
    heads: dict = {}
    gs = run_gap_study(lm, items, modes, n_perm=args.permutations, seed=0, heads=heads)
    t = time.perf_counter()
    gs.spectra = spectra(heads["correct"])
    gs.timings["spectra"] = time.perf_counter() - t
    t = time.perf_counter()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_gap_study(args.out, lm, gs, seed=0, prompts_file=args.prompts)
    gs.timings["write"] = time.perf_counter() - t
    breakdown = {"imports": t_import, "load_model": t_load, **gs.timings}
    total = time.perf_counter() - t_start
    if args.ablation != "none":
        from spinsim.analysis.ablation import ablation_study
        t = time.perf_counter()
        amodes = ("zero", "mean") if args.ablation == "both" else (args.ablation,)
        gs.ablation = ablation_study(lm, heads["correct"], items, None, amodes, "first")
        breakdown["ablation (not in target)"] = time.perf_counter() - t

    print(f"SmolLM2 study: {gs.n_layers * gs.n_heads} heads x {len(items)} prompts, modes "
          f"{', '.join(m.name for m in modes)}, {args.permutations} permutations, {args.threads} threads")
    for k, v in breakdown.items():
        print(f"  {k:<28} {v:7.2f} s")
    print(f"  {'total (target < 180 s)':<28} {total:7.2f} s  -> {'OK' if total < TARGET_S else 'OVER TARGET'}")
    for line in summary_lines(gs):
        print(line)
    res = {"total_s": total, "target_s": TARGET_S, "breakdown_s": breakdown, "threads": args.threads,
           "n_heads": gs.n_layers * gs.n_heads, "n_prompts": len(items), "n_perm": args.permutations}
    for r in gs.results:
        k = int(abs(r.stats.pearson_r).argmax())
        res[r.mode.name] = {"best_head": f"L{k // gs.n_heads}H{k % gs.n_heads}", "best_r": float(r.stats.pearson_r[k]),
                            "best_fwer_p": float(r.stats.fwer_p[k]),
                            "survivors": {n: len(v) for n, v in r.stats.survivors().items()}}
    if gs.ablation is not None:
        res["ablation"] = {m: {"pooled_r": c["pooled"], "head_mean_r": c["head_mean"]}
                           for m, c in gs.ablation.correlations().items()}
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "results" / "bench_study.json").write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
