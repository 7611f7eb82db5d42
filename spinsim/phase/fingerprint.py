"""The parameters that identify a sweep: a resumed run must match the file's, or be refused
naming the first differing one (order: kind, hamiltonian_sha256, method, T, h, direction, seed,
then the solver options with their defaults filled in)."""
from __future__ import annotations

import hashlib
import inspect
from typing import Any

import numpy as np

from ..hamiltonian import Hamiltonian
from ..validation import check_choice

__all__ = ["Fingerprint", "sha256_of", "jsonable", "solver_options", "fingerprint",
           "first_difference"]

#: (name, JSON-able value) pairs, in order
Fingerprint = list[tuple[str, Any]]


def sha256_of(*arrays: np.ndarray) -> str:
    hsh = hashlib.sha256()
    for a in arrays:
        hsh.update(np.ascontiguousarray(a).tobytes())
    return hsh.hexdigest()


def jsonable(v: Any) -> Any:
    """A value as JSON can hold it (arrays by their sha256 and shape)."""
    if isinstance(v, np.ndarray):
        return {"array_sha256": sha256_of(v.astype(np.float64)), "shape": list(v.shape)}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


#: Monte Carlo options that say how a run is carried out, not what it computes (not in the
#: fingerprint; a sweep sets them itself per row)
RUN_ONLY = ("checkpoint", "checkpoint_interval")


def solver_options(method: str, kw: dict[str, Any]) -> dict[str, Any]:
    """The solver options with their defaults filled in (so omitting a default changes nothing);
    ``"auto"`` backend resolved, ``discard=None`` resolved to its default. Raises ValueError
    naming an unknown Monte Carlo option and the allowed ones."""
    if method != "mc":
        return dict(sorted(kw.items()))
    from ..solvers.mc import ALGORITHMS, cuda_available, solve_mc

    sig = inspect.signature(solve_mc)
    skip = {"H", "T", "seed", "direction", "progress", "replica_offset", *RUN_ONLY}
    opts = {k: p.default for k, p in sig.parameters.items()
            if k not in skip and p.default is not p.empty}
    unknown = sorted(set(kw) - set(opts))
    if unknown:
        raise ValueError(f"unknown Monte Carlo option {unknown[0]!r}; allowed: {', '.join(sorted(opts))}")
    opts.update(kw)
    check_choice("algorithm", opts["algorithm"], ALGORITHMS)
    if opts.get("backend") == "auto":
        opts["backend"] = "cuda" if cuda_available() else "cpu"
    if opts.get("discard") is None and isinstance(opts.get("sweeps"), (int, np.integer)):
        opts["discard"] = max(100, int(opts["sweeps"]) // 4)
    return dict(sorted(opts.items()))


def fingerprint(H: Hamiltonian, T: np.ndarray, hs: np.ndarray, U: np.ndarray, method: str,
                seed: int, opts: dict[str, Any]) -> Fingerprint:
    fp: Fingerprint = [
        ("spinsim_kind", "sweep"),
        ("hamiltonian_sha256", H.describe()["hamiltonian_sha256"]),
        ("method", method),
        ("T", [float(x) for x in T]),
        ("h", [float(x) for x in hs]),
        ("direction", sha256_of(U)),
        ("seed", int(seed)),
    ]
    fp += [(k, jsonable(v)) for k, v in opts.items()]
    return fp


def _describe_value(name: str, v: Any) -> str:
    if name in ("T", "h") and isinstance(v, list):
        return f"{len(v)} points {v[0]:g}..{v[-1]:g}" if v else "no points"
    return repr(v)


#: options whose default follows another's (``discard`` defaults to max(100, sweeps/4)): reported
#: only when nothing they follow differs, so a changed --sweeps is not reported as 'discard'
DERIVED = ("discard",)


#: solver options added after files were first written, with the value that reproduces what a
#: file written before them did (its rows ran with that value), and how to ask for it
LEGACY = {"n_chains": (1, "--chains 1 / n_chains=1"), "reduce": (False, "reduce=False"),
          "ladder": ("fixed", "ladder='fixed'")}


def first_difference(old: Fingerprint, new: Fingerprint) -> str | None:
    """``"'name' differs (file has X, this run Y)"`` for the first differing parameter (derived
    options, :data:`DERIVED`, last), or None. An option the file predates (:data:`LEGACY`) is equal
    when this run asks for the value the file's rows ran with; otherwise the message says how to
    continue the file."""
    o, n = dict(old), dict(new)
    for name, value in sorted(new, key=lambda kv: kv[0] in DERIVED):
        if name not in o and name in LEGACY:
            was, how = LEGACY[name]
            if value == was:
                continue
            return (f"{name!r} differs (the file predates this option: its rows ran with {was!r}; this run "
                    f"{_describe_value(name, value)}); to continue the file use {how}")
        if name not in o:
            return f"{name!r} differs (not in the file; this run {_describe_value(name, value)})"
        if o[name] != value:
            if name in ("T", "h") and len(o[name]) == len(value):
                i = next(i for i, (a, b) in enumerate(zip(o[name], value)) if a != b)
                return f"{name!r} differs (point {i}: file has {o[name][i]!r}, this run {value[i]!r})"
            return (f"{name!r} differs (file has {_describe_value(name, o[name])}, "
                    f"this run {_describe_value(name, value)})")
    for name, value in old:
        if name not in n:
            return f"{name!r} differs (file has {_describe_value(name, value)}, not set in this run)"
    return None
