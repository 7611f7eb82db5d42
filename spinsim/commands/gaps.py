"""Logit-gap study: does each head's spin-bath context field predict the model's preference for the
correct over the wrong continuation? For every head and prompt, dL_theory (the head's context
field N0 read against the two answers) against dL_actual (the full model), with Pearson r and
Spearman rho per head, Bonferroni, Benjamini-Hochberg and a permutation max-|r| family-wise p.

By default both modes run and go into one file:
  paper      the published computation: raw token embeddings, the column slice of GPT-2's c_proj,
             first sub-tokens, no biases, no final norm (Llama family: the same with the correct
             rows, the only output map there is; no rotary on raw embeddings);
  corrected  the normalised residual input the head really sees, the correct rows, full answers
             (teacher-forced log-probabilities; the theory reads each answer token at the position
             that predicts it), exact biases, the final norm linearised at the model's own stream.
Giving --input/--o-slice/--candidates/--biases/--final-norm runs one 'custom' mode that starts
from --mode (default: paper when --input embed, else corrected) and changes what you give.

Examples:
  spinsim gaps --model smollm2-135m --prompts data/prompts/paper20.tsv --out gaps.h5
  spinsim gaps --model ./gpt2 --input embed --o-slice paper --candidates first --out paper.h5
  spinsim gaps --prompts paper20 --ablation zero --out gaps_ablation.h5

Prompt files are TSV lines prompt<TAB>correct<TAB>wrong (answers without the leading space).
Output layout: /gaps/theory (prompt, layer, head), /gaps/actual (prompt), /stats/* (layer, head)
for the first mode, /<mode>/... for each mode, /spectrum, /ablation (see spinsim.analysis.study).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..cli import UsageError, add_common
from . import checks

HELP = "per-head logit-gap study (paper and corrected modes) with family-wise statistics -> HDF5"


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m",
                   help="model: 'smollm2-135m' (embedded), a local HF folder, a .gguf file or a hub name "
                        "(default smollm2-135m)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--prompts", default="paper20",
                   help="TSV prompt<TAB>correct<TAB>wrong, or a shipped set name (default paper20: "
                        "data/prompts/paper20.tsv)")
    p.add_argument("--mode", choices=("both", "paper", "corrected"), default=None,
                   help="preset(s) to run (default both; with any option below: one custom mode from corrected)")
    p.add_argument("--input", choices=("embed", "embed+pos", "residual"), help="spin vectors of the tokens")
    p.add_argument("--o-slice", dest="o_slice", choices=("paper", "correct"),
                   help="GPT-2 output map: paper (columns of c_proj) or correct (rows)")
    p.add_argument("--candidates", choices=("first", "first-differing", "full"),
                   help="first sub-token (items whose answers share their first token are excluded and counted), "
                        "the first differing token, or full answers")
    p.add_argument("--biases", choices=("exact", "drop"), help="query/key/value biases kept or dropped")
    p.add_argument("--final-norm", dest="final_norm", choices=("none", "linear"),
                   help="read N0 directly (none) or through the final norm linearised (linear)")
    p.add_argument("--permutations", type=checks.int_at_least(1), default=10_000,
                   help="prompt permutations for the family-wise p (default 10000)")
    p.add_argument("--alpha", type=checks.open_unit, default=0.05, help="significance level for the survivor lists (default 0.05)")
    p.add_argument("--ablation", choices=("none", "zero", "mean", "both"), default="none",
                   help="also ablate every head (first sub-token gap) and compare with its direct "
                        "contribution (default none; see 'spinsim ablate')")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="where the per-head ablations run: here (default) or on a Dask cluster (--scheduler)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    add_common(p)


def resolve_modes(args: argparse.Namespace, family: str) -> list:
    from spinsim.analysis.gaps import GapMode

    overrides = {k: getattr(args, k) for k in ("input", "o_slice", "candidates", "biases", "final_norm")
                 if getattr(args, k, None) is not None}
    if overrides:
        if args.mode == "both":
            raise UsageError("--mode both cannot be combined with --input/--o-slice/--candidates/--biases/"
                             "--final-norm (they define one custom mode)")
        paper_base = args.mode == "paper" or (args.mode is None and overrides.get("input") == "embed")
        base = GapMode.paper(family) if paper_base else GapMode.corrected()
        mode = base.with_(name="custom", **overrides)
        try:
            return [mode.for_family(family)]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.mode in (None, "both"):
        return [GapMode.corrected(), GapMode.paper(family)]
    return [GapMode.paper(family) if args.mode == "paper" else GapMode.corrected()]


def check_out(path: str, overwrite: bool) -> None:
    if Path(path).exists() and not overwrite:
        raise UsageError(f"--out {path!r} exists; pass --overwrite to replace it")


def run(args: argparse.Namespace) -> int:
    from spinsim.models.loading import load_model

    check_out(args.out, args.overwrite)
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if args.executor == "local" and args.scheduler:
        raise UsageError("--scheduler is only meaningful with --executor dask")
    items = checks.prompt_items(args.prompts)              # before the model loads: one line, exit 2
    info = checks.model_heads(args.model)
    if info is not None:
        tok = checks.early_tokenizer(args.model)          # cheap where the tokenizer is on disk
        modes = resolve_modes(args, info.family)
        if tok is not None:
            checks.enough_items(checks.tokenized(items, tok), modes, tok)
    t0 = time.perf_counter()
    lm = load_model(args.model, progress=not args.quiet)
    t_load = time.perf_counter() - t0
    modes = resolve_modes(args, lm.family)
    titems = checks.tokenized(items, lm)

    from spinsim.analysis.study import TooFewItemsError, run_gap_study, summary_lines, write_gap_study
    from spinsim.models.extract import spectra

    log = lambda s: print(f"  {s}", file=sys.stderr)  # noqa: E731
    print(f"spinsim gaps: {lm.model_id} ({lm.family}, loaded in {t_load:.1f} s), {len(titems)} prompts, "
          f"modes {', '.join(m.name for m in modes)}", file=sys.stderr)
    heads_by_slice: dict = {}
    try:
        gs = run_gap_study(lm, titems, modes, n_perm=args.permutations, seed=args.seed, heads=heads_by_slice,
                           log=log)
    except TooFewItemsError as exc:
        raise UsageError(f"--prompts: {exc}") from None
    gs.timings["load"] = t_load
    t = time.perf_counter()
    heads_correct = heads_by_slice.get("correct")
    if heads_correct is None:
        from spinsim.models.heads import extract_heads
        heads_correct = heads_by_slice["correct"] = extract_heads(lm, "correct")
    gs.spectra = spectra(heads_correct)
    gs.timings["spectra"] = time.perf_counter() - t
    if args.ablation != "none":
        from spinsim.analysis.ablation import ablation_study
        t = time.perf_counter()
        amodes = ("zero", "mean") if args.ablation == "both" else (args.ablation,)
        if args.executor == "dask":
            from spinsim.analysis.distributed import ablation_distributed, run_ablation_task
            from spinsim.executors import make_executor

            ex = make_executor("dask", run_ablation_task, scheduler=args.scheduler)
            all_heads = [(l, h) for l in range(heads_correct.n_layers) for h in range(heads_correct.n_heads)]
            gs.ablation = ablation_distributed(args.model, items, all_heads, amodes, "first", ex, n_chunks=16)
        else:
            from spinsim.progress import per_step, progress_bar

            with progress_bar(heads_correct.n_layers * len(amodes), "ablation", "layer", not args.quiet) as bar:
                gs.ablation = ablation_study(lm, heads_correct, titems, None, amodes, "first", progress=per_step(bar))
        gs.timings["ablation"] = time.perf_counter() - t
    write_gap_study(args.out, lm, gs, alpha=args.alpha, seed=args.seed, prompts_file=str(args.prompts))
    for line in summary_lines(gs, args.alpha):
        print(line)
    tot = sum(gs.timings.values())
    print(f"spinsim gaps: wrote {args.out} in {tot:.1f} s ("
          + ", ".join(f"{k} {v:.1f}" for k, v in gs.timings.items()) + ")", file=sys.stderr)
    return 0
