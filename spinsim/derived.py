"""The observables derived from moments (:func:`derive`), and the jackknife (:func:`jackknife`,
:func:`jackknife_error`): each written once, used by the Monte Carlo estimators
(:mod:`spinsim.observables`), the binned series (:mod:`spinsim.bins`), histogram reweighting
(:mod:`spinsim.reweighting`) and exact enumeration (:mod:`spinsim.solvers.exact`).

Definitions (:mod:`spinsim.schema`; k_B = 1, E the total energy, m per free site, N free sites,
n spin components, beta = 1/T)::

    energy                     <E> / N
    specific_heat              beta^2 (<E^2> - <E>^2) / N
    magnetization              <|m|>
    susceptibility             beta N (<|m|^2> - <|m|>^2)
    binder                     1 - n <|m|^4> / ((n + 2) <|m|^2>^2)      (Binder 1981; NaN where <|m|^2> = 0)
    projection                 <m.u>
    projection_susceptibility  beta N (<(m.u)^2> - <m.u>^2)

Moments are taken about a centre (``shift``) so that no variance cancels catastrophically (E ~
1e12 with a spread ~ 1): the first and second moments of E, |m| and m.u are those of ``x - c``
and the centre is added back to the means only. Variances do not depend on the centre, and the
jackknife errors of the means are computed without it (adding c ~ 1e12 to each replicate would
round their spread away).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["MOMENTS", "derive", "binder_cumulant", "jackknife", "jackknife_error", "derived_estimates"]

#: the moments :func:`derive` reads (means over one set of samples; ``E``, ``mabs``, ``mu`` and
#: their squares about the centres ``shift[name]``, ``m2`` and ``m4`` about 0): name -> meaning
MOMENTS = {
    "E": "<E - c_E>", "E2": "<(E - c_E)^2>",
    "mabs": "<|m| - c_m>", "mabs2": "<(|m| - c_m)^2> (when absent: m2, for c_m = 0)",
    "m2": "<|m|^2>", "m4": "<|m|^4>",
    "mu": "<m.u - c_u>", "mu2": "<(m.u - c_u)^2>",
}


def binder_cumulant(m2: Any, m4: Any, n_comp: float) -> np.ndarray:
    """U = 1 - n <|m|^4> / ((n + 2) <|m|^2>^2) for n-component spins: 0 for a Gaussian
    (disordered) magnetisation vector, 2/(n + 2) for one of fixed length (ordered; 2/3 for
    Ising); NaN where <|m|^2> = 0. Arrays broadcast."""
    m2, m4 = np.asarray(m2, dtype=np.float64), np.asarray(m4, dtype=np.float64)
    n = float(n_comp)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m2 > 0, 1.0 - n * m4 / ((n + 2.0) * m2 * m2), np.nan)


def derive(mom: Mapping[str, Any], beta: Any, n_free: float, n_comp: float,
           shift: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The observables (module docstring) whose moments ``mom`` holds (:data:`MOMENTS`; the
    others are left out), at inverse temperature ``beta``. The susceptibility reads ``mabs2``,
    or ``m2`` when ``mabs2`` is absent (right only for moments of |m| about 0).

    Every moment, ``beta`` and each ``shift[name]`` (centre of ``E``, ``mabs``, ``mu``; 0 when
    absent) broadcast together: per-point arrays, or jackknife replicates with a leading block
    axis against a grid-shaped beta. Returns arrays by schema name."""
    shift = shift or {}
    beta = np.asarray(beta, dtype=np.float64)
    N = float(n_free)
    out: dict[str, np.ndarray] = {}
    if "E" in mom:
        e = mom["E"]
        out["energy"] = (shift.get("E", 0.0) + e) / N
        if "E2" in mom:
            out["specific_heat"] = beta * (beta * (mom["E2"] - e * e)) / N
    if "mabs" in mom:
        m = mom["mabs"]
        out["magnetization"] = shift.get("mabs", 0.0) + m
        m2 = mom.get("mabs2", mom.get("m2"))
        if m2 is not None:
            out["susceptibility"] = beta * N * (m2 - m * m)
    if "m2" in mom and "m4" in mom:
        out["binder"] = binder_cumulant(mom["m2"], mom["m4"], n_comp)
    if "mu" in mom:
        u = mom["mu"]
        out["projection"] = shift.get("mu", 0.0) + u
        if "mu2" in mom:
            out["projection_susceptibility"] = beta * N * (mom["mu2"] - u * u)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def jackknife_error(replicates: Any, axis: int = 0) -> np.ndarray:
    """Jackknife standard error from J leave-one-out replicates along ``axis``:
    ``sqrt((J - 1)/J sum_j (x_j - mean x)^2)`` (Efron & Stein 1981); NaN for J < 2."""
    x = np.asarray(replicates, dtype=np.float64)
    J = x.shape[axis]
    if J < 2:
        return np.full(tuple(np.delete(x.shape, axis)), np.nan)
    d = x - x.mean(axis=axis, keepdims=True)
    return np.sqrt((J - 1) / J * np.sum(d * d, axis=axis))


def jackknife(fn: Callable[..., Any], blocks: Sequence[np.ndarray]) -> tuple[Any, Any]:
    """Value and jackknife error of ``fn(*means)``, ``means`` the means of the per-block arrays
    ``blocks`` (each with its B blocks along the last axis, other axes a grid). The value comes
    from all blocks; the error from the B leave-one-out means (:func:`jackknife_error`), passed
    to ``fn`` with the block axis first, so that a grid-shaped parameter inside ``fn``
    broadcasts against both. ``fn`` returns an array or a dict of arrays; so does the result
    (errors NaN for B < 2). Scalars come back as floats."""
    parts = [np.asarray(b, dtype=np.float64) for b in blocks]
    B = parts[0].shape[-1]
    tot = [p.sum(axis=-1) for p in parts]
    value = fn(*[t / B for t in tot])
    if B >= 2:
        loo = fn(*[(t[None] - np.moveaxis(p, -1, 0)) / (B - 1) for t, p in zip(tot, parts)])
    one = isinstance(value, Mapping)
    vals = value if one else {"": value}
    errs = {k: (jackknife_error(loo[k] if one else loo) if B >= 2 else np.full(np.shape(v), np.nan))
            for k, v in vals.items()}
    vals = {k: _plain(v) for k, v in vals.items()}
    errs = {k: _plain(v) for k, v in errs.items()}
    return (vals, errs) if one else (vals[""], errs[""])


def _plain(x: Any) -> Any:
    a = np.asarray(x, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def derived_estimates(blocks: Mapping[str, np.ndarray], beta: Any, n_free: float, n_comp: float,
                      shift: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every observable :func:`derive` gives from the per-block means ``blocks`` (:data:`MOMENTS`
    by name, B blocks along the last axis), with its jackknife error under ``<name>_err``. The
    centres ``shift`` enter the values only (module docstring: the errors are taken without
    them). Values are floats for one point, else arrays of the grid shape."""
    keys = list(blocks)
    parts = [np.asarray(blocks[k], dtype=np.float64) for k in keys]
    B = parts[0].shape[-1]
    value = derive({k: p.sum(axis=-1) / B for k, p in zip(keys, parts)}, beta, n_free, n_comp, shift)
    _, err = jackknife(lambda *m: derive(dict(zip(keys, m)), beta, n_free, n_comp), parts)
    out: dict[str, Any] = {}
    for name, v in value.items():
        out[name], out[name + "_err"] = _plain(v), err[name]
    return out
