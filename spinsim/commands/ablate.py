"""Ablate heads and compare the measured shift of the model's logit gap with the shift the head's
direct contribution predicts. A forward pre-hook on the attention output projection (GPT-2
attn.c_proj, Llama o_proj) sets the head's d_head slice of its input to zero (--mode zero) or to
the head's mean output over every token of every prompt (--mode mean). Measured: dL_actual(ablated)
- dL_actual(clean) per head and prompt; predicted: the head's output change read through the
final norm linearised at the clean run (first order, direct path only).

With --paper-test (GPT-2 style): the paper's test on "Lions are carnivores. Cows are"
(herbivores vs omnivores) for the given --heads (default L3H5,L0H0), printed as a table.

Examples:
  spinsim ablate --model smollm2-135m --heads all --prompts paper20 --out ablate.h5
  spinsim ablate --model ./gpt2 --heads L3H5,L0H0 --prompts data/prompts/paper20.tsv --out ablate.h5 --mode zero
  spinsim ablate --model ./gpt2 --paper-test --out lions.h5

Output (every dataset with units, a long name and its dimension scales): /prompt, /layer, /head
scales; /prompts/text, correct, wrong and token counts (prompt); /ablation/clean (prompt),
/ablation/<mode>/measured and predicted (prompt, layer, head), /ablation/<mode>/per_prompt_r
(prompt); attributes pooled_r, head_mean_r (spinsim.analysis.study.write_ablation).
"""
from __future__ import annotations

import argparse
import sys

from ..cli import UsageError, add_common
from . import checks
from .gaps import add_model_args, check_out

HELP = "zero/mean head ablations: measured vs predicted shift of the logit gap -> HDF5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--heads", default=None, type=checks.head_list, help="comma-separated labels L{layer}H{head}, or 'all' "
                   "(default all; with --paper-test: L3H5,L0H0)")
    p.add_argument("--prompts", default="paper20", help="prompt TSV or shipped set name (default paper20)")
    p.add_argument("--mode", choices=("zero", "mean", "both"), default="both", help="ablation kind (default both)")
    p.add_argument("--candidates", choices=("first", "first-differing", "full"), default="first",
                   help="gap: first sub-token logit gap (default; items whose answers share their first token are "
                        "excluded and counted), the first differing token's, or the full teacher-forced log-prob gap")
    p.add_argument("--paper-test", action="store_true",
                   help="run the paper's Lions/Cows test (herbivores vs omnivores) instead of --prompts")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from spinsim.analysis.ablation import LIONS_COWS, ablation_study
    from spinsim.analysis.study import write_ablation, write_prompts, write_scales
    from spinsim.io import atomic_h5, root_attrs
    from spinsim.models.heads import extract_heads, head_label
    from spinsim.models.loading import load_model

    check_out(args.out, args.overwrite)
    modes = ("zero", "mean") if args.mode == "both" else (args.mode,)
    if args.paper_test and "mean" in modes:
        modes = ("zero",) if args.mode == "both" else modes
        if args.mode == "mean":
            raise UsageError("--paper-test is a zero ablation on one prompt (a mean over one prompt is its own "
                             "output); use --mode zero")
    items = [LIONS_COWS] if args.paper_test else checks.prompt_items(args.prompts)
    spec = args.heads or (["L3H5", "L0H0"] if args.paper_test else "all")
    checks.head_range(spec, checks.model_heads(args.model), "--heads")   # before the model loads
    tok = checks.early_tokenizer(args.model)
    if tok is not None:
        checks.tokenized(items, tok)
    lm = load_model(args.model, progress=not args.quiet)
    heads = extract_heads(lm, "correct")
    which = checks.head_range(spec, heads, "--heads")
    titems = checks.tokenized(items, lm)
    from spinsim.progress import per_step, progress_bar

    n_layers = len({l for l, _ in which}) if which else heads.n_layers      # progress: once per layer ablated
    with progress_bar(n_layers * len(modes), "ablation", "layer", not args.quiet) as bar:
        res = ablation_study(lm, heads, titems, which, modes, args.candidates, progress=per_step(bar))
    with atomic_h5(args.out) as f:
        for k, v in root_attrs("ablation", model_id=lm.model_id, weights_sha256=lm.weights_sha256,
                               family=lm.family, candidates_mode=args.candidates, ablation_modes=list(modes),
                               prompts_file="paper:Lions/Cows" if args.paper_test else str(args.prompts),
                               seed=args.seed).items():
            f.attrs[k] = v
        write_scales(f, len(titems), heads.n_layers, heads.n_heads)
        write_prompts(f, titems)
        write_ablation(f, res)
    unit = "nats" if args.candidates == "full" else "logits"
    if args.paper_test or len(which) <= 12:
        print(f"{'head':>7} {'mode':>5} {'prompt':>6} {'clean gap':>10} {'shift':>10} {'predicted':>10}")
        for mi, m in enumerate(modes):
            for l, h in which:
                for p in range(len(titems)):
                    print(f"{head_label(l, h):>7} {m:>5} {p:>6} {res.clean[p]:>10.4f} "
                          f"{res.measured[mi, p, l, h]:>+10.4f} "
                          f"{res.predicted[mi, p, l, h]:>+10.4f}")
    if res.excluded:
        print(f"{len(res.excluded)} of {len(titems)} items excluded (candidates {args.candidates}; "
              "--candidates first-differing compares the first differing token):")
        for _, why in res.excluded:
            print(f"  excluded {why}")
    fmt = lambda r: "n/a (fewer than 3 points)" if r != r else f"{r:.3f}"  # noqa: E731
    for m, c in res.correlations().items():
        print(f"[{m}] measured vs predicted shift ({unit}): pooled r = {fmt(c['pooled'])}, "
              f"head-mean r = {fmt(c['head_mean'])}")
    print(f"spinsim ablate: wrote {args.out} ({len(which)} heads x {len(titems)} prompts, modes {', '.join(modes)})",
          file=sys.stderr)
    return 0
