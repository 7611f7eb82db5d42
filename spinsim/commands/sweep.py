"""Sweep temperature T and an added field h along directions u_i, streaming into HDF5.

The field h * u_i is added to the Hamiltonian's own fields; every field value is one row (one
solve over the whole T grid). Finished rows are committed to the file one by one: interrupt at
any time (Ctrl-C, SIGTERM, kill -9) and rerun the same command to resume; the final file is the
same as an uninterrupted run's. A file written with other parameters is refused (naming the first
differing one) unless --overwrite is given. Phase boundaries go to /boundary when every row is done.

Examples:
  spinsim sweep --system ising2d --L 8 --T 1.5:3.5:12 --field 0:0.5:4 --sweeps 2000 --seed 5 --out s.h5
  spinsim sweep --system heisenberg3d --L 6 --T 0.8:2:10 --field 0:0.3:4 --algorithm overrelax --out h.h5
  spinsim sweep --model smollm2-135m --head L3H5 --prompt "The capital of France is" \\
                --T 0.2:4:32 --field 0:2:16 --out head.h5

Ranges are start:stop:count (inclusive, evenly spaced) or one number. T and h are in energy
units (k_B = 1). Exit codes: 0 done, 1 failure (message on one line), 2 bad usage, 130 interrupted
(finished rows are saved).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from ..cli import UsageError, add_common
from ..directions import resolve_direction
from ..lattices import SYSTEMS, textbook
from . import checks
from ..validation import EnergyRangeError, check_energy_range

HELP = "resumable (T, h) phase-diagram sweep of a textbook system or an attention head -> HDF5"

_ALGORITHMS = ("metropolis", "heatbath", "overrelax", "pt", "wolff")


def _seconds(text: str) -> float:
    """A finite number of seconds >= 0."""
    v = checks.finite_float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: a number of seconds >= 0")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("system (one of --system or --model)")
    src.add_argument("--system", choices=SYSTEMS, help="textbook system: " + "|".join(SYSTEMS))
    src.add_argument("--L", type=checks.int_at_least(2), default=8, help="linear size (sites for sk and 1d; default 8)")
    src.add_argument("--J", type=checks.finite_float, default=1.0, help="coupling J > 0 ferromagnetic (default 1)")
    src.add_argument("--model", help="transformer model (HF name, local folder, GGUF file or smollm2-135m)")
    src.add_argument("--head", type=checks.head_label, help="head label L{layer}H{head}, counted from 0 (with --model)")
    src.add_argument("--prompt", type=checks.nonblank, help="prompt text (with --model)")
    src.add_argument("--input", choices=("embed", "embed+pos", "residual"), default="residual",
                     help="site vectors of a head (with --model): raw embeddings, + positions, or the "
                          "normalised residual input the head sees (default)")
    src.add_argument("--rotary", choices=("exact", "drop"),
                     help="rotary (Llama-family) heads: 'exact' per-site rotary coupling, every pair's score the "
                          "model's (the default), or 'drop' the offset-0 coupling (positions ignored; declared)")
    grid = p.add_argument_group("grid")
    grid.add_argument("--T", required=True, type=checks.temperatures, help="temperatures start:stop:count, > 0 (e.g. 1.5:3.5:12)")
    grid.add_argument("--field", required=True, type=checks.fields, help="added field strengths h start:stop:count (e.g. 0:0.5:4)")
    grid.add_argument("--direction", default=None,
                      help="field direction u_i: 'prompt' (a head's prompt field x_i/|x_i|), 'field' (the "
                           "system's own field), 'top_eigenvector' (of M_s) or a comma-separated vector "
                           "'x1,x2,...' (default: 'prompt' for --model, else 'top_eigenvector')")
    sol = p.add_argument_group("solver")
    sol.add_argument("--method", choices=("mc", "exact", "analytic"), default="mc", help="solver (default mc)")
    sol.add_argument("--algorithm", choices=_ALGORITHMS, default="heatbath",
                     help="Monte Carlo algorithm (default heatbath; 'wolff' needs zero field, 'pt' tempers across T)")
    sol.add_argument("--sweeps", type=checks.int_at_least(2), default=2000, help="measured MC sweeps per chain (default 2000)")
    sol.add_argument("--discard", type=checks.int_at_least(0), default=None,
                     help="equilibration sweeps thrown away (default max(100, sweeps/4))")
    sol.add_argument("--chains", type=checks.int_at_least(1), default=4,
                     help="independent chains per temperature, their split R-hat in the file (default 4)")
    run_ = p.add_argument_group("execution")
    checks.add_executor_arguments(run_)
    run_.add_argument("--checkpoint-every", type=_seconds, default=60.0, metavar="SECONDS",
                      help="Monte Carlo: save each row's chain state every SECONDS (0: every ~1%% of the row) "
                           "beside --out, so a killed row resumes mid-row (default 60)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file instead of resuming")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)


def _direction(text: str | None) -> Any:
    if text is None or text in ("prompt", "field", "top_eigenvector"):
        return text
    try:
        v = np.array([float(x) for x in text.split(",")])
    except ValueError:
        raise UsageError(f"--direction {text!r}: allowed 'prompt', 'field', 'top_eigenvector' or a "
                         "comma-separated vector such as '1,0,0'") from None
    if not np.all(np.isfinite(v)) or not np.any(v):
        raise UsageError(f"--direction {text!r}: the vector must be finite and nonzero")
    return v


def _check_solver(args: argparse.Namespace, H: Any, fields: np.ndarray) -> None:
    """Method and algorithm against the system, before any file is written (UsageError)."""
    from ..coupling import Identity
    from ..spins import Discrete, Ising

    finite = isinstance(H.spin, (Ising, Discrete))
    if args.method == "exact" and not finite:
        raise UsageError(f"--method exact enumerates finite spin sets (ising, discrete); {H.name} has "
                         f"{H.spin.name} spins: use --method mc")
    if args.method != "mc":
        return
    if args.algorithm == "overrelax" and finite:
        raise UsageError(f"--algorithm overrelax reflects continuous spins; {H.name} has {H.spin.name} spins: use "
                         "heatbath, metropolis, pt or wolff")
    if args.algorithm == "wolff" and not (isinstance(H.M, Identity) and H.M.J > 0):
        raise UsageError(f"--algorithm wolff needs an isotropic ferromagnetic coupling (J > 0); {H.name} has "
                         f"{type(H.M).__name__}" + (f" with J = {H.M.J:g}" if isinstance(H.M, Identity) else "")
                         + ": use heatbath, metropolis or pt")
    if args.algorithm == "wolff" and (np.any(fields != 0) or np.any(H.h != 0)):
        raise UsageError("--algorithm wolff needs zero field (--field 0); use heatbath or pt for h != 0")


def head_hamiltonian(model: str, head: str, prompt: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
    """The head's Hamiltonian from ``spinsim.models.hamiltonians`` (the transformer side): every
    prompt site free (O(d_model) spins of length |x_i|), causal graph, M = scale W_Q W_K^T; the
    sweep's field axis is the prompt field h x_i/|x_i| (``--direction prompt``)."""
    from ..models.hamiltonians import head_hamiltonian as build

    H = build(model, head, prompt, **kw)
    return H, {"model_id": model, "head": head, "prompt": prompt, **kw}


def run(args: argparse.Namespace) -> int:
    if (args.system is None) == (args.model is None):
        raise UsageError("give exactly one of --system NAME or --model NAME (with --head and --prompt)")
    T, fields = args.T, args.field
    if args.method == "mc":
        checks.device(args.device)
    direction = _direction(args.direction)
    extra: dict[str, Any] = {}
    if args.system is not None:
        if args.head or args.prompt:
            raise UsageError("--head and --prompt go with --model, not --system")
        try:
            H = textbook(args.system, args.L, J=args.J, seed=args.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        extra["system"] = args.system
        extra["L"] = args.L
    else:
        if not args.head or not args.prompt:
            raise UsageError("--model needs --head L{layer}H{head} and --prompt TEXT")
        checks.head_range(args.head, checks.model_heads(args.model))       # before the model loads
        rot = {} if args.rotary is None else {"rotary": args.rotary}
        H, extra = head_hamiltonian(args.model, args.head, args.prompt, input=args.input, **rot)
    _check_solver(args, H, fields)
    kw: dict[str, Any] = {}
    if args.method == "mc":
        kw = dict(algorithm=args.algorithm, sweeps=args.sweeps, discard=args.discard, n_chains=args.chains,
                  backend=args.device)
    from ..analysis.boundaries import add_sweep_boundaries
    from ..phase import run_task, sweep
    executor = checks.executor(args.executor, args.scheduler, run_task)
    try:
        resolve_direction(H, direction)        # checked here: its errors are usage errors
    except ValueError as exc:
        raise UsageError(f"--direction: {exc}") from None
    try:                                       # energies and |E|/T finite in float64
        check_energy_range(H, T, float(np.max(np.abs(fields))), resolve_direction(H, direction)[0])
    except EnergyRangeError as exc:
        raise UsageError(f"--T/--field: {exc}") from None
    from ..phase.run import SweepMismatchError
    try:
        res = sweep(H, T, fields, direction=direction, method=args.method, out=args.out,
                    overwrite=args.overwrite, progress=not (args.no_progress or args.quiet), seed=args.seed,
                    attrs=extra, executor=executor, checkpoint_interval=args.checkpoint_every, **kw)
    except SweepMismatchError as exc:          # the arguments differ from the file's: a usage error
        raise UsageError(str(exc)) from None
    if res.complete and not res.boundaries:      # boundaries: analysis, stored through the store
        add_sweep_boundaries(res, H)
    n_warn = sum(len(w) for w in res.row_warnings)
    chi = res.boundaries.get("chi_peak")
    msg = f"spinsim sweep: wrote {args.out} ({res.h.size} fields x {res.T.size} temperatures"
    msg += f", {n_warn} solver warnings: see /sweep/row_warnings)" if n_warn else ")"
    print(msg, file=sys.stderr)
    if chi is not None:
        k = int(np.argmin(np.abs(res.h)))
        if np.isfinite(chi.T[k]):
            edge = " (at the grid edge)" if chi.at_edge[k] else ""
            print(f"  chi peak at h = {res.h[k]:.4g}: T = {chi.T[k]:.4f} +- {chi.T_err[k]:.4f}{edge}",
                  file=sys.stderr)
    return 0
