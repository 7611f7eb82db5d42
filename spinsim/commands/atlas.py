"""The phase atlas: every selected head's (T, h) phase diagram in one resumable HDF5 file.

Each head on the prompt is the SPEC section 1 spin system (every token a free O(d_model) spin,
the exact rotary coupling of Llama-family heads, the prompt field h x_i/|x_i| as the field axis),
run by Monte Carlo in the exact reduced spin space. One row (head, h) is one solve over the T
grid; a temperature's sweeps are doubled (that temperature alone solved again; the whole row for the
h = 0 row, rows that keep bins and --algorithm pt) while the short-run rule or split R-hat flags it,
up to --max-sweeps (points still flagged are stored as flagged and never used for a boundary). At
the end the per-head summary (T_c with its error, mean-field T_c, coupling class, ordering kind,
boundary line, where the model sits at T = 1, h = 0) goes to /summary; rules in the file.

Interrupt at any time (Ctrl-C, SIGTERM, kill -9) and rerun the same command to resume: finished
rows are kept (the file is committed every few seconds) and the final file holds the same
numbers as one uninterrupted run.

Examples:
  spinsim atlas --model smollm2-135m --prompt "The capital of France is Paris. The capital of Germany is" \\
                --T 0.3:3:16 --field 0:1.5:8 --heads all --out atlas.h5
  spinsim atlas --model smollm2-135m --prompt "..." --heads L3H5,L0H0 --T 0.5:4:8 --field 0:1:3 --out a.h5
  spinsim atlas --heads L3H5 --lengths 8,16,32 --samples 4 --normalisation kac --T 0.1:2:12 --field 0 --out n.h5

With --lengths, every head runs on a quenched ensemble of contexts (--samples token sequences
sampled from the model at --seed, or windows of --contexts-file), disorder averages with errors
and T_c(N) with its fits (a + b ln N, N^p) go to /summary; the normalisation is declared.

Ranges are start:stop:count (inclusive, evenly spaced) or one number; T and h in energy units
(k_B = 1). Exit codes: 0 done, 1 failure, 2 bad usage, 130 interrupted (finished rows saved).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from ..cli import UsageError, add_common
from . import checks

HELP = "phase atlas: every head's (T, h) phase diagram on a prompt, resumable -> HDF5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("model")
    src.add_argument("--model", default="smollm2-135m",
                     help="transformer model (HF name, local folder, GGUF file or smollm2-135m; default)")
    src.add_argument("--prompt", type=checks.nonblank,
                     help="prompt text: the context of every head (without --lengths), or the start text of "
                          "sampled contexts for a model without a BOS token")
    src.add_argument("--heads", type=checks.head_list, default="all",
                     help="'all' (default) or comma-separated labels L{layer}H{head}, counted from 0")
    src.add_argument("--input", choices=("embed", "embed+pos", "residual"), default="residual",
                     help="site vectors: raw embeddings, + positions, or the normalised residual input (default)")
    src.add_argument("--rotary", choices=("exact", "drop"), default=None,
                     help="rotary heads: 'exact' per-site coupling (default) or 'drop' the offset-0 coupling")
    ctx = p.add_argument_group("context length as an axis (a quenched ensemble of contexts)")
    ctx.add_argument("--lengths", type=_lengths, help="context lengths N in tokens, comma-separated (e.g. 8,16,32,64)")
    ctx.add_argument("--samples", type=checks.int_at_least(1), default=4,
                     help="contexts per length (default 4): token sequences sampled from the model at --seed "
                          "(sample s seeded seed + s; the lengths of a sample are nested prefixes)")
    ctx.add_argument("--contexts-file", help="read the contexts from this text file instead (windows of its "
                                             "tokens at seeded random offsets)")
    ctx.add_argument("--normalisation", choices=("plain", "kac"), default="plain",
                     help="bonds as the model's scores ('plain', default) or divided by N - 1 ('kac')")
    grid = p.add_argument_group("grid")
    grid.add_argument("--T", required=True, type=checks.temperatures, help="temperatures start:stop:count, > 0")
    grid.add_argument("--field", required=True, type=checks.fields,
                      help="prompt-field strengths h start:stop:count (include 0 for T_c)")
    sol = p.add_argument_group("Monte Carlo")
    sol.add_argument("--sweeps", type=checks.int_at_least(20), default=200,
                     help="first try's measured sweeps per chain (default 200)")
    sol.add_argument("--max-sweeps", type=checks.int_at_least(20), default=1600,
                     help="cap of the sweep doubling (default 1600)")
    sol.add_argument("--chains", type=checks.int_at_least(1), default=2,
                     help="independent chains per temperature, for split R-hat (default 2)")
    sol.add_argument("--algorithm", choices=("heatbath", "metropolis", "overrelax", "pt"), default="heatbath",
                     help="Monte Carlo algorithm (default heatbath)")
    run_ = p.add_argument_group("execution")
    checks.add_executor_arguments(run_)
    run_.add_argument("--bins", choices=("zero", "all", "none"), default="zero",
                      help="which rows keep their binned series for later rebinning or reweighting: the h = 0 "
                           "rows (default), all (a 270-head x 8-field atlas: ~0.6 GB) or none; rows that keep "
                           "them double their sweeps whole, not point by point (other numbers, more sweeps)")
    rep = p.add_argument_group("figures and the prediction tests")
    rep.add_argument("--figures", help="write the atlas figures (PNG + PDF) into this folder")
    rep.add_argument("--predictions", action="store_true",
                     help="test the spin-bath predictions (ablation effect vs distance to the boundary, class share "
                          "per layer, class vs sign of the logit-gap r) on the --prompts set; results in the file")
    rep.add_argument("--prompts", default="paper20",
                     help="prompt set of the prediction tests (a TSV or a shipped name; default paper20)")
    rep.add_argument("--permutations", type=checks.int_at_least(99), default=9999,
                     help="permutations of each prediction test (default 9999)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file instead of resuming")
    add_common(p)


def _lengths(text: str) -> list[int]:
    try:
        out = [int(x) for x in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers (e.g. 8,16,32)") from None
    if any(x < 2 for x in out) or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"{text!r}: lengths must be distinct integers >= 2")
    return sorted(out)


def _contexts(args: argparse.Namespace, lm: Any) -> list[list[list[int]]]:
    """The contexts [i_length][i_sample]: the prompt, or the ensemble of --lengths."""
    from ..analysis.atlas_contexts import file_contexts, model_contexts

    if args.lengths is None:
        tokens = lm.encode(args.prompt)
        if not tokens:
            raise UsageError(f"--prompt {args.prompt!r} tokenises to nothing")
        return [[tokens]]
    try:
        if args.contexts_file:
            with open(args.contexts_file, encoding="utf-8") as fh:
                return file_contexts(lm, fh.read(), args.lengths, args.samples, seed=args.seed)
        return model_contexts(lm, args.lengths, args.samples, seed=args.seed, start=args.prompt)
    except ValueError as exc:
        raise UsageError(f"--lengths: {exc}") from None


def run(args: argparse.Namespace) -> int:
    if args.prompt is None and args.lengths is None:
        raise UsageError("give --prompt TEXT, or --lengths N1,N2,... for an ensemble of contexts")
    if args.contexts_file and args.lengths is None:
        raise UsageError("--contexts-file goes with --lengths")
    if args.contexts_file:
        from pathlib import Path
        if not Path(args.contexts_file).is_file():
            raise UsageError(f"--contexts-file {args.contexts_file!r}: no such file")
    if args.predictions:
        checks.prompt_items(args.prompts)                        # before the model loads: one line, exit 2
    if args.max_sweeps < args.sweeps:
        raise UsageError(f"--max-sweeps {args.max_sweeps} is below --sweeps {args.sweeps}")
    if not np.any(np.asarray(args.field) == 0.0):
        raise UsageError(f"--field must include 0 (T_c, the ordering kind and the model's point are read at h = 0); "
                         f"got {', '.join(f'{h:g}' for h in np.atleast_1d(args.field))}")
    checks.device(args.device)
    info = checks.model_heads(args.model)
    checks.head_range(args.heads, info, opt="--heads")             # before the model loads
    from ..analysis.atlas_run import run_atlas_task
    executor = checks.executor(args.executor, args.scheduler, run_atlas_task)
    from ..analysis.atlas_heads import ModelHeads
    from ..analysis.atlas_run import AtlasMismatchError, run_atlas
    from ..analysis.atlas_store import commit
    from ..analysis.atlas_summary import summarize
    from ..locks import hold
    from ..models.loading import load_model

    from ..analysis.atlas_contexts import NORMALISATIONS

    lm = load_model(args.model, progress=not args.quiet)
    rot = "auto" if args.rotary is None else args.rotary
    source = ModelHeads(lm, args.heads, _contexts(args, lm), input=args.input, rotary=rot,
                        normalisation=args.normalisation)
    where = ("prompt" if args.lengths is None else f"file {args.contexts_file}" if args.contexts_file
             else f"sampled from the model at temperature 1 after BOS, sample s seeded {args.seed} + s")
    attrs: dict[str, Any] = {"model_id": lm.model_id, "weights_sha256": lm.weights_sha256,
                             "prompt": args.prompt or "", "contexts": where, "input": args.input, "rotary": rot,
                             "normalisation": NORMALISATIONS[args.normalisation]}
    try:
        a = run_atlas(source, args.T, args.field, out=args.out, seed=args.seed, sweeps=args.sweeps,
                      max_sweeps=args.max_sweeps, executor=executor, progress=not args.quiet,
                      overwrite=args.overwrite, attrs=attrs, n_chains=args.chains, algorithm=args.algorithm,
                      backend=args.device, reduce=None, bins=args.bins)
    except AtlasMismatchError as exc:
        raise UsageError(str(exc)) from None
    s = summarize(a, seed=args.seed)
    tests = None
    if args.predictions:
        from ..analysis.atlas_study import add_predictions, prediction_inputs, run_predictions
        inputs = prediction_inputs(lm, a, prompts=args.prompts, seed=args.seed)
        tests, shares = run_predictions(a, inputs, seed=args.seed, n_resamples=args.permutations)
        add_predictions(a, inputs, tests)
    with hold(args.out, "this atlas"):
        commit(a.path, a)
    if args.figures:
        from ..analysis.figures.atlas import atlas_figures, prediction_figure
        atlas_figures(a, args.figures)
        if tests is not None:
            prediction_figure(a, inputs, tests, shares, f"{args.figures}/atlas_predictions")
    _print_summary(a, s)
    for t in (tests or {}).values():
        print("  " + t.line(), file=sys.stderr)
    return 0


def _print_summary(a: Any, s: dict[str, np.ndarray]) -> None:
    n = len(a.heads)
    found = np.isfinite(s["T_c"])
    kinds = {k: int(np.sum(s["kind"] == k)) for k in ("uniform", "staggered", "pinned", "disordered")}
    classes = {k: int(np.sum(s["coupling_class"] == k)) for k in ("ferro", "antiferro", "mixed")}
    ens = f" x {a.lengths.size} lengths x {a.n_samples} samples" if a.lengths.size * a.n_samples > 1 else ""
    print(f"spinsim atlas: wrote {a.path} ({n} heads{ens} x {a.h.size} fields x {a.T.size} temperatures; "
          f"{int(a.flagged.sum())} points flagged at the sweep cap)", file=sys.stderr)
    print(f"  T_c at h = 0 found for {int(found.sum())} of {n} heads; ordered at the model's T = 1: "
          f"{int(np.sum(s['model_side'] == 'ordered'))}; kinds {kinds}; coupling classes {classes}", file=sys.stderr)
    for i in range(min(n, 12)):
        tc = f"{s['T_c'][i]:.3f} +- {s['T_c_err'][i]:.3f} ({s['T_c_method'][i]})" if found[i] else "none in grid"
        print(f"  {a.heads[i]}: T_c {tc}, T_mf {s['T_mf'][i]:.3f}, {s['coupling_class'][i]}, {s['kind'][i]}",
              file=sys.stderr)
    if n > 12:
        print(f"  ... ({n - 12} more heads in /summary)", file=sys.stderr)
