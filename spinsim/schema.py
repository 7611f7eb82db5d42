"""The one list of observables and coordinates that every result, file and figure iterates.

Each :class:`Observable` names a per-temperature estimate: its symbol (LaTeX, for figures), its
units (k_B = 1, energies in the coupling's units), a long name, and whether it comes with a
standard error ``<name>_err`` (one standard error; 0 for exact and analytic results). Every
consumer iterates :data:`OBSERVABLES`: the Monte Carlo estimators (``spinsim.observables``), the
assembly of a Monte Carlo result (``spinsim.solvers.mc``), :class:`spinsim.Result`, the HDF5
writer (``spinsim.io``), the sweep store (``spinsim.phase``) and figure labels (:func:`label`).

Definitions (n_free free sites, n = n_comp spin components,
``m = (1/n_free) sum_{free i} S_i``, ``m_u = (1/n_free) sum_{free i} S_i . u_i``):

====================  =========================================================
energy                <E> / n_free
specific_heat         (<E^2> - <E>^2) / (T^2 n_free)
magnetization         <|m|>
susceptibility        n_free (<|m|^2> - <|m|>^2) / T
binder                1 - n <|m|^4> / ((n + 2) <|m|^2>^2)
projection            <m_u>
projection_susc.      n_free (<m_u^2> - <m_u>^2) / T
log_Z                 ln Z (exact and analytic only)
acceptance            accepted / proposed local moves (Metropolis only)
tau_int               integrated autocorrelation time of E, in sweeps (MC only)
rhat                  rank-normalised split R-hat over chains, the largest of E's,
                      |m|'s and m_u's (Vehtari et al. 2021; MC only; > 1.01: chains disagree)
====================  =========================================================

Coordinates (:data:`AXES`): ``T`` (temperature), ``h`` (added field strength along u_i),
``component``, ``site``. A result over T has arrays of shape (n_T,); a sweep over h x T has
(n_h, n_T) and a completion mask ``done`` over h.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["Observable", "Axis", "OBSERVABLES", "AXES", "ERR", "observable", "names", "label", "put_row",
           "UnknownObservableError"]

#: suffix of an observable's standard error
ERR = "_err"


class UnknownObservableError(KeyError):
    """A name that is not in :data:`OBSERVABLES`."""

    def __str__(self) -> str:   # KeyError quotes its argument; say what is allowed instead
        return str(self.args[0])


@dataclass(frozen=True)
class Observable:
    """One per-temperature estimate (see the module docstring for its definition)."""

    name: str
    symbol: str          # LaTeX, e.g. r"$\chi$"
    units: str
    long_name: str
    has_error: bool
    definition: str = ""  # the estimator, as in the module docstring


@dataclass(frozen=True)
class Axis:
    """One coordinate (an HDF5 dimension scale)."""

    name: str
    symbol: str
    units: str
    long_name: str


T_UNITS = "energy (k_B = 1)"
H_UNITS = "energy (field strength along u_i)"

OBSERVABLES: tuple[Observable, ...] = (
    Observable("energy", r"$\langle E\rangle/N$", "energy per site", "energy per site", True,
               "<E>/N"),
    Observable("specific_heat", r"$C$", "1 per site (k_B = 1)", "specific heat per site", True,
               "(<E^2>-<E>^2)/(T^2 N)"),
    Observable("magnetization", r"$\langle|m|\rangle$", "spin length", "magnetisation", True,
               "<|m|>"),
    Observable("susceptibility", r"$\chi$", "1/energy", "susceptibility", True,
               "N(<|m|^2>-<|m|>^2)/T"),
    Observable("binder", r"$U$", "dimensionless", "Binder cumulant", True,
               "1 - n<|m|^4>/((n+2)<|m|^2>^2)"),
    Observable("projection", r"$\langle m\cdot u\rangle$", "spin length", "projection on u", True,
               "<m.u>"),
    Observable("projection_susceptibility", r"$\chi_u$", "1/energy", "projection susceptibility",
               True, "N(<m_u^2>-<m_u>^2)/T"),
    Observable("log_Z", r"$\ln Z$", "dimensionless", "log partition function", False, "ln Z"),
    Observable("acceptance", r"$A$", "fraction", "acceptance rate", False,
               "accepted / proposed local moves"),
    Observable("tau_int", r"$\tau_{\rm int}$", "sweeps", "autocorrelation time", False,
               "integrated autocorrelation time of E"),
    Observable("rhat", r"$\hat R$", "dimensionless", "split R-hat across chains", False,
               "rank-normalised split R-hat (Vehtari et al. 2021), max over E, |m| and m_u"),
)

AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("T", "$T$", T_UNITS, "temperature"),
    Axis("h", "$h$", H_UNITS, "added field strength h along u_i"),
    Axis("component", "$a$", "index", "spin component"),
    Axis("site", "$i$", "index", "site"),
)}

_BY_NAME = {o.name: o for o in OBSERVABLES}


def observable(name: str) -> Observable:
    """The :class:`Observable` called ``name`` (an error name ``x_err`` gives ``x`` when ``x``
    has a standard error).

    Raises :class:`UnknownObservableError` naming the allowed names (also for ``x_err`` of an
    observable without error, e.g. ``log_Z_err``).
    """
    base = name[:-len(ERR)] if name.endswith(ERR) and name[:-len(ERR)] in _BY_NAME else name
    if base != name and not _BY_NAME[base].has_error:
        raise UnknownObservableError(f"unknown observable {name!r}: {base} has no standard error; "
                                     f"errors exist for: {', '.join(names(has_error=True))}")
    try:
        return _BY_NAME[base]
    except KeyError:
        raise UnknownObservableError(f"unknown observable {name!r}; allowed: "
                                     f"{', '.join(_BY_NAME)} (and <name>{ERR})") from None


def names(has_error: bool | None = None, errors: bool = False) -> list[str]:
    """Observable names in schema order; ``has_error`` filters; ``errors=True`` adds each
    ``<name>_err`` right after its value (for observables that have one)."""
    out: list[str] = []
    for o in OBSERVABLES:
        if has_error is not None and o.has_error != has_error:
            continue
        out.append(o.name)
        if errors and o.has_error:
            out.append(o.name + ERR)
    return out


def put_row(values: dict[str, Any], grid_shape: tuple[int, ...], key: Any, row: Mapping[str, Any]) -> None:
    """Put one solved row's observables (``row[name]`` over T, every name of :func:`names` with
    errors that the row holds and is not None) into ``values[name]`` at ``key``; an array missing
    from ``values`` is made, NaN-filled, of ``grid_shape`` (the sweep's and the atlas's rows)."""
    for name in names(errors=True):
        if row.get(name) is None:
            continue
        if name not in values:
            values[name] = np.full(grid_shape, np.nan)
        values[name][key] = row[name]


def label(name: str) -> str:
    """Axis label for a figure: long name, then the symbol, e.g.
    ``label("susceptibility") == r"susceptibility $\\chi$"``; coordinates too (``label("T")``)."""
    if name in AXES:
        a = AXES[name]
        return f"{a.long_name} {a.symbol} ({a.units})"
    o = observable(name)
    text = f"{o.long_name} {o.symbol}"
    return f"standard error of {text}" if name.endswith(ERR) and o.has_error else text
