"""Analytic vs sampled candidate gaps of one head on one prompt.

A probe site over the two answers (correct A, wrong B) sits in the frozen field of the prompt
(the head's residual inputs by default). The closed form log P_A/P_B = beta (E_B - E_A) is
compared with exact enumeration of the probe and with heat-bath Monte Carlo over a temperature
grid; the table shows the Monte Carlo deviation in standard errors.

examples:
  spinsim validate --model smollm2-135m --head L3H5 \\
                   --prompt "The opposite of hot is" --correct cold --wrong warm --out v.h5
  spinsim validate --model ./my-gpt2-folder --head L0H1 --prompt "A dog says woof. A cat says" \\
                   --correct meow --wrong moo --T 0.1:2:8 --sweeps 8000 --out v.h5 --figure v.png
"""
from __future__ import annotations

import argparse
import sys

from spinsim.cli import UsageError, add_common

from . import checks

HELP = "analytic vs exact vs sampled candidate log-odds for a head's probe site -> HDF5 (+ figure)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m", help="HF name, local folder, GGUF file or smollm2-135m (default)")
    p.add_argument("--head", required=True, type=checks.head_label, help="head label L{layer}H{head}, counted from 0")
    p.add_argument("--prompt", required=True, type=checks.nonblank, help="prompt text")
    p.add_argument("--correct", required=True, type=checks.answer_text, help="candidate A, without its leading space: tokenised together with "
                   "the prompt, its first token after the prompt is the probe's state A")
    p.add_argument("--wrong", required=True, type=checks.answer_text, help="candidate B")
    p.add_argument("--first-differing", action="store_true",
                   help="when the answers start with the same token (e.g. a bare space before digits), compare "
                        "their first differing token; the shared prefix joins the prompt (default: refuse)")
    p.add_argument("--input", choices=("embed", "embed+pos", "residual"), default="residual",
                   help="site vectors: raw embeddings (the paper), +positions, or the residual input (default)")
    p.add_argument("--biases", choices=("exact", "drop"), default="exact", help="query/key biases (default exact)")
    p.add_argument("--T", default=None, type=checks.temperatures, help="temperatures start:stop:count (default: |E_B-E_A| x [1/3 .. 3], 9 points)")
    p.add_argument("--sweeps", type=checks.int_at_least(10), default=4000, help="Monte Carlo samples (default 4000)")
    p.add_argument("--figure", default=None, type=checks.figure_path,
                   help="also write the figure here (.png, .pdf or .svg; a PDF copy is written beside it)")
    add_common(p, out_default=None)


def run(args: argparse.Namespace) -> int:
    from spinsim.analysis.report import fmt
    from spinsim.analysis.validate import CandidateGapValidation, plot_validation, validate_candidates, write_validation
    from spinsim.models.hamiltonians import head_system
    from spinsim.models.heads import parse_head
    from spinsim.models.loading import load_model

    checks.answers(args.correct, args.wrong)                # before the model loads: one line, exit 2
    checks.device(args.device)
    info = checks.model_heads(args.model)
    checks.head_range(args.head, info)
    tok = checks.early_tokenizer(args.model)                 # cheap where the tokenizer is on disk
    if tok is not None:
        checks.probe_answers(tok, args.prompt, args.correct, args.wrong, args.first_differing)
    backend = "cpu" if args.device == "auto" else args.device
    lm = load_model(args.model)
    if info is None:                                          # a hub model: its config is known now
        try:
            parse_head(args.head, lm.config.num_hidden_layers, lm.config.num_attention_heads)
        except ValueError as exc:
            raise UsageError(f"--head: {exc}") from None
    checks.probe_answers(lm.tokenizer, args.prompt, args.correct, args.wrong, args.first_differing)
    system = head_system(lm, args.head, args.prompt, input=args.input, biases=args.biases,
                         candidates=[args.correct, args.wrong], first_differing=args.first_differing)
    v = validate_candidates(system.H, args.T, sweeps=args.sweeps, seed=args.seed, backend=backend,
                            labels=(args.correct, args.wrong))
    k = len(system.tokens) - len(lm.encode(args.prompt))        # > 0: the answers' shared prefix joined the bath
    write_validation(args.out, v, model_id=lm.model_id, weights_sha256=lm.weights_sha256, head=args.head,
                     prompt=args.prompt, correct=args.correct, wrong=args.wrong, input_mode=args.input,
                     biases=args.biases, candidate_token_ids=[int(c) for c in system.candidates],
                     answer_token_index=k, answer_tokens="the tokens after the prompt in prompt + ' ' + answer")
    if k:
        print(f"the answers share their first {k} token(s): compared at their first differing token "
              f"({', '.join(repr(x) for x in system.H.spin.labels)})")
    if args.figure:
        plot_validation(v, args.figure, title=f"{args.head}: {args.correct!r} vs {args.wrong!r}")
    print(f"{args.head} on {args.prompt!r}: E_A({args.correct}) = {v.E_A:.6g}, E_B({args.wrong}) = {v.E_B:.6g}, "
          f"candidate gap E_B - E_A = {v.candidate_gap:.6g}")
    print("  ".join(f"{h:>18}" for h in CandidateGapValidation.TABLE_HEADER))
    for row in v.table():
        print("  ".join(f"{fmt(x, 5):>18}" for x in row))
    worst = float(max(abs(v.z)))
    print(f"max |z| = {worst:.2f} (Monte Carlo vs closed form, in standard errors); wrote {args.out}", file=sys.stderr)
    return 0
