"""Ground state, level gap and spin-wave spectrum of every head of a model -> HDF5 (+ figure).

For each head the free-spin Hamiltonian of one prompt (or of the positions 0..N-1) is minimised
with `solve(H, method="ground")` (quench from --restarts random starts) and the Hessian on the
product of spheres is diagonalised at the best state: Goldstone (zero-mode) count and spin-wave
gap (smallest nonzero eigenvalue). The study is compared with each head's ferro/antiferro class
(spectrum of M_s) and, given --ablation, with the head's measured zero-ablation effect.

Inputs (--input):
  residual   the normalised residual stream the head sees on --prompt (default; needs a full model)
  embed      raw token embeddings of --prompt; embed+pos: plus GPT-2's learned positions
  pos        GPT-2 positional inputs x_p = LayerNorm_1(wpe[p]), p = 0..--positions-1: no prompt,
             no token embedding, no MLP; runs on attention-only checkpoints (../shared/gpt2-small)

Examples:
  spinsim ground --model smollm2-135m --prompt "The capital of France is Paris. The capital of Germany is" \\
      --out ground.h5 --figure ground.png
  spinsim ground --model ../shared/gpt2-small --input pos --positions 32 --out gpt2_ground.h5
  spinsim gaps --model smollm2-135m --ablation zero --out gaps_abl.h5
  spinsim ground --model smollm2-135m --prompt "..." --ablation gaps_abl.h5 --out ground.h5

Output: /ground/{E0, gap, n_minima, best_hit_fraction, n_zero_modes, spin_wave_gap,
n_negative_modes, max_torque} (layer, head) with /layer, /head dimension scales; comparisons as
attributes of /ground (see spinsim.analysis.ground_study). Exit codes: 0 ok, 1 failure, 2 bad usage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import UsageError, add_common
from . import checks

HELP = "ground states, level gaps and spin-wave gaps of every head -> HDF5 (+ layer x head figure)"
INPUTS = ("residual", "embed", "embed+pos", "pos")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m",
                   help="'smollm2-135m', a local HF folder, a .gguf file, or (with --input pos) an attention-only "
                        "GPT-2 weights folder (default smollm2-135m)")
    p.add_argument("--prompt", type=checks.nonblank, help="the prompt whose tokens are the spins (required unless --input pos)")
    p.add_argument("--input", choices=INPUTS, default="residual", help="what the spins are (default residual)")
    p.add_argument("--positions", type=checks.int_at_least(1), default=32, help="number of positions N for --input pos (default 32)")
    p.add_argument("--restarts", type=checks.int_at_least(1), default=8, help="random quench starts per head (default 8)")
    p.add_argument("--modes", type=checks.int_at_least(1), default=6, help="lowest Hessian eigenvalues computed per head (default 6)")
    p.add_argument("--ablation", help="a 'spinsim gaps --ablation zero' HDF5 file: correlate its measured "
                                      "effects with the spin-wave gaps")
    p.add_argument("--figure", type=checks.figure_path, help="also write the layer x head figure (png/pdf/svg, by suffix)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_common(p)


def _load(args: argparse.Namespace):
    """(model-or-weights, HeadSet, build_H, description)."""
    from spinsim.analysis.ground_study import model_builder, positional_builder
    from spinsim.models.heads import extract_heads
    from spinsim.models.loading import load_model, load_weights

    if args.input == "pos":
        src = Path(args.model)
        if src.is_dir() and (src / "config.json").is_file():
            w = load_weights(src)           # attention-only checkpoints load this way
        else:
            w = load_model(args.model).weights
        if w.family != "gpt2":
            raise UsageError(f"--input pos needs a GPT-2 model (learned positions); {args.model} is {w.family}")
        n_max = w.get("wpe.weight").shape[0]
        if not 1 <= args.positions <= n_max:
            raise UsageError(f"--positions must be in 1..{n_max}, got {args.positions}")
        heads = extract_heads(w)
        return w, heads, positional_builder(w, heads, args.positions), f"positions 0..{args.positions - 1}"
    lm = load_model(args.model, progress=not args.quiet)
    heads = extract_heads(lm)
    return lm, heads, model_builder(lm, args.prompt, args.input, heads), repr(args.prompt)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from spinsim.analysis.ground_study import (compare_ablation, compare_ferro, ground_study, plot_ground_study,
                                               read_ablation_effect, write_ground_study)
    from spinsim.models.extract import spectra

    if args.input != "pos" and not args.prompt:
        raise UsageError(f"--input {args.input} needs --prompt (only --input pos runs without one)")
    if Path(args.out).exists() and not args.overwrite:
        raise UsageError(f"--out {args.out!r} exists; pass --overwrite to replace it")
    if args.ablation and not Path(args.ablation).is_file():
        raise UsageError(f"--ablation {args.ablation!r}: no such file")
    if args.input != "pos":                                    # before the model loads
        checks.model_heads(args.model)

    model, heads, build_H, what = _load(args)
    effect = None
    if args.ablation:                              # read before the study: a bad file fails at once
        try:
            effect = read_ablation_effect(args.ablation, "zero")
        except OSError as exc:
            raise UsageError(f"--ablation {args.ablation!r} is not a readable HDF5 file ({exc})") from None
        except ValueError as exc:
            raise UsageError(f"--ablation: {exc}") from None
        if effect.shape != (heads.n_layers, heads.n_heads):
            raise UsageError(f"--ablation {args.ablation!r} holds {effect.shape[0]} layers x {effect.shape[1]} "
                             f"heads, the model {heads.n_layers} x {heads.n_heads}: not the same model")
    model_id = getattr(model, "model_id", str(args.model))
    log = lambda s: print(f"  {s}", file=sys.stderr)  # noqa: E731
    print(f"spinsim ground: {model_id}, {heads.n_layers} x {heads.n_heads} heads, input {args.input} ({what}), "
          f"{args.restarts} restarts", file=sys.stderr)
    meta = {"model_id": model_id, "input": args.input, "prompt": args.prompt or "",
            "n_positions": args.positions if args.input == "pos" else 0}
    from spinsim.progress import per_step, progress_bar

    with progress_bar(heads.n_layers, "ground states", "layer", not args.quiet) as bar:
        gs = ground_study(heads, build_H, restarts=args.restarts, seed=args.seed, n_modes=args.modes,
                          log=per_step(bar) if not args.quiet else log, **meta)
    attrs = {}
    spec = spectra(heads)
    attrs.update(compare_ferro(gs, spec.ferro_class))
    if args.ablation:
        attrs.update(compare_ablation(gs, effect))
        attrs["ablation_file"] = str(args.ablation)
    s = gs.summary()
    write_ground_study(args.out, gs, **attrs)
    if args.figure:
        import matplotlib.pyplot as plt

        fig = plot_ground_study(gs, Path(args.figure).with_suffix(""), formats=(Path(args.figure).suffix[1:],),
                                title=f"{model_id}: {what}")
        plt.close(fig)

    print(f"heads: {s['n_heads']} ({s['n_finite_E0']} finite E0), {s['n_not_minimum']} not a local minimum, "
          f"max torque {s['max_torque']:.1e}, median best-hit fraction {s['median_best_hit_fraction']:.2f}")
    print("Goldstone counts: " + ", ".join(f"{k}: {v} heads" for k, v in s["goldstone_counts"].items()))
    print(f"spin-wave gap: median {s['median_spin_wave_gap']:.4g}, range "
          f"[{s['min_spin_wave_gap']:.4g}, {s['max_spin_wave_gap']:.4g}]")
    for c in ("ferro", "antiferro"):
        print(f"{c}: {attrs[f'n_{c}']} heads, median spin-wave gap {attrs[f'median_spin_wave_gap_{c}']:.4g}, "
              f"mean zero modes {attrs[f'mean_zero_modes_{c}']:.2f}")
    print(f"ferro vs antiferro gaps: Mann-Whitney p = {attrs['mannwhitney_p_gap']:.3g}")
    if args.ablation:
        print(f"Spearman rho(|spin-wave gap|, mean |zero-ablation shift|) = {attrs['ablation_spearman_rho']:.3f} "
              f"(p = {attrs['ablation_spearman_p']:.3g}, {attrs['ablation_n_heads']} heads)")
    print(f"spinsim ground: wrote {args.out}" + (f" and {args.figure}" if args.figure else "")
          + f" in {gs.seconds:.1f} s", file=sys.stderr)
    return 0 if np.isfinite(gs.E0).all() else 1
