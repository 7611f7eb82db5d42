"""Extract every attention head of a model into HDF5: W_Q, W_K, W_V (d_model x d_head, row
vectors: q = x W_Q + b_Q), W_O (d_head x d_model), biases, scale = 1/sqrt(d_head), rotary flag and
shared key/value head, plus the spectrum of each head's symmetric coupling M_s = (M + M^T)/2,
M = scale W_Q W_K^T, and a ferro (cooperative) / antiferro (antagonistic) classification.

Extraction is verified, not trusted: unless --no-verify, the attention probabilities recomputed
from the extracted factors and captured inputs of --verify-prompt are compared with the model's own
(output_attentions); the largest difference is printed and stored (root attribute verify_max_abs_err),
and a difference above --tolerance fails naming the head, the query row and the cause (a sliding
window, dynamic rope past the maximum positions, logit soft-capping ...). Per head the file also
holds the symmetric share ||J_s||_F^2 / ||J||_F^2 of the offset-0 coupling (/spectrum/symmetric_share).

Examples:
  spinsim extract --model smollm2-135m --out heads.h5
  spinsim extract --model ./gpt2 --o-slice paper --out heads_paper_slice.h5
  spinsim extract --model ../shared/gpt2-small --out gpt2_heads.h5     # attention-only checkpoint

A folder holding config.json and *.safetensors with only attention weights (no token embedding,
no MLP) is extracted without a forward pass (and without verification).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import UsageError, add_common
from . import checks
from .gaps import add_model_args, check_out

HELP = "extract every head's W_Q, W_K, W_V, W_O, biases and coupling spectrum -> HDF5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--o-slice", dest="o_slice", choices=("correct", "paper"), default="correct",
                   help="GPT-2 output map: correct (rows of c_proj, default) or paper (columns)")
    p.add_argument("--verify-prompt", type=checks.nonblank, default="The capital of France is Paris. The capital of Germany is",
                   help="prompt used to verify the extraction against output_attentions")
    p.add_argument("--no-verify", action="store_true", help="skip the verification forward pass")
    p.add_argument("--tolerance", type=checks.positive_float, default=1e-4,
                   help="largest allowed |recomputed - model| attention probability (default 1e-4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_common(p)


def _attention_only(path: str) -> bool:
    p = Path(path)
    if not (p.is_dir() and (p / "config.json").is_file()):
        return False
    from safetensors import safe_open
    files = sorted(p.glob("*.safetensors"))
    if not files:              # a .bin checkpoint is a full model: load_model reads it (weights_only)
        return False
    for f in files:
        with safe_open(str(f), "np") as fh:
            keys = set(fh.keys())
        if any(k.endswith("wte.weight") or k.endswith("embed_tokens.weight") for k in keys):
            return False
    return True


def run(args: argparse.Namespace) -> int:
    from spinsim.models.extract import spectra, write_heads
    from spinsim.models.heads import extract_heads
    from spinsim.models.loading import load_model, load_weights

    check_out(args.out, args.overwrite)
    checks.model_heads(args.model, need_tokenizer=not _attention_only(args.model))   # before the weights load
    attrs: dict = {}
    if _attention_only(args.model):
        w = load_weights(args.model)
        heads = extract_heads(w, args.o_slice)
        attrs["verify_max_abs_err"] = "not verified: attention-only checkpoint (no forward pass)"
    else:
        lm = load_model(args.model)
        try:
            heads = extract_heads(lm, args.o_slice)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not args.no_verify:
            from spinsim.models.capture import check_extraction, run_capture
            from spinsim.models.rope import check_attention
            ids = lm.encode(args.verify_prompt)
            if not ids:
                raise UsageError(f"--verify-prompt {args.verify_prompt!r} tokenises to nothing")
            check_attention(lm.weights.config, len(ids))     # a feature the Hamiltonian cannot hold: named
            cap = run_capture(lm, [ids], attentions=True)
            # fails naming the size, head, query row and the cause (ExtractionMismatch, one line)
            err = check_extraction(heads if args.o_slice == "correct" else extract_heads(lm, "correct"), cap,
                                   tolerance=args.tolerance)
            attrs["verify_max_abs_err"] = err
            attrs["verify_prompt"] = args.verify_prompt
            print(f"spinsim extract: attention recomputed from the factors vs the model: max |diff| = {err:.2e}",
                  file=sys.stderr)
    spec = spectra(heads)
    write_heads(args.out, heads, spec, **attrs)
    n_ferro = int((spec.ferro_class == "ferro").sum())
    print(f"spinsim extract: wrote {args.out}: {heads.n_layers} layers x {heads.n_heads} heads "
          f"({heads.family}, d_model {heads.d_model}, d_head {heads.d_head}, o-slice {heads.o_slice}); "
          f"{n_ferro} ferro, {spec.ferro_class.size - n_ferro} antiferro by spectrum", file=sys.stderr)
    return 0
