"""Phase-boundary lines from reweighted curves (:mod:`spinsim.reweighting`), row by row of a sweep.

Where a sweep row holds Monte Carlo samples (:mod:`spinsim.bins`), its chi(T) and U_L(T) are
continuous curves (MBAR over the row's temperature grid) and the peak or crossing is located on
them, with a jackknife error, instead of on the raw grid (where short runs make peaks jump
between grid points). Rows without samples, or where reweighting refuses (the trusted overlap
range leaves gaps or does not cover the grid), keep the raw-grid estimate; ``Boundary.reweighted``
says which rows are which. Used by :mod:`spinsim.analysis.boundaries` (``chi_peak``,
``binder_crossing_L*``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from spinsim.reweighting import NoCrossingError, NoPeakError, ReweightError, Reweighting, binder_crossing
from spinsim.result import Boundary

__all__ = ["has_samples", "reweighted_peak_line", "reweighted_binder_line"]


def has_samples(sw: Any) -> bool:
    """True when the sweep (or result) carries samples to reweight."""
    b = getattr(sw, "bins", None)
    return b is not None and b.has_samples


def _fit(sw: Any, k: int) -> Reweighting | None:
    """The row's reweighting, or None when the row is not done, has no samples or the trusted
    range is not one interval covering the row's temperature grid."""
    if sw.done is not None and not sw.done[k]:
        return None
    try:
        rw = Reweighting(sw, row=k)
    except ReweightError:           # no samples, NaN samples, MBAR without a solution
        return None
    if len(rw.trusted) != 1 or not (rw.trusted[0][0] <= sw.T.min() and sw.T.max() <= rw.trusted[0][1]):
        return None
    return rw


def reweighted_peak_line(sw: Any, grid_line: Boundary, observable: str = "susceptibility") -> Boundary:
    """``grid_line`` (:func:`spinsim.analysis.boundaries.susceptibility_peak_line` of the same
    sweep) with every row that reweights replaced by the maximum of the reweighted curve over
    the row's T grid: T +- jackknife error, the height, ``at_edge`` when the maximum sits on the
    grid's edge (then T and its error are NaN: the row has no peak inside the grid, whatever the
    raw grid suggested)."""
    T, Te = grid_line.T.copy(), grid_line.T_err.copy()
    top, edge = grid_line.chi_max.copy(), grid_line.at_edge.copy()
    used = np.zeros(T.size, bool)
    lo, hi = float(sw.T.min()), float(sw.T.max())
    for k in range(T.size):
        rw = _fit(sw, k)
        if rw is None:
            continue
        used[k] = True
        try:
            p = rw.peak(observable, T_range=(lo, hi))
        except NoPeakError:                # the reweighted maximum is on the edge: no peak T
            T[k], Te[k], edge[k] = np.nan, np.nan, True
            continue
        T[k], Te[k], top[k], edge[k] = p.T.value, p.T.error, p.value.value, False
    return Boundary(param="h", h=grid_line.h, T=T, T_err=Te, chi_max=top, at_edge=edge, reweighted=used,
                    observable=observable,
                    method=f"{observable} peak in T at fixed h on the reweighted curve (MBAR over the row's T "
                           "grid, jackknife error over time blocks); rows with reweighted = 0: "
                           + grid_line.method,
                    description=grid_line.description)


def reweighted_binder_line(family: Mapping[int, Any], L1: int, L2: int, grid_line: Boundary,
                           fields: str = "all") -> Boundary:
    """``grid_line`` (the raw-grid crossing line of sizes L1, L2) with every row where both sizes
    reweight replaced by the crossing of the reweighted Binder cumulants inside the T grid
    (:func:`spinsim.reweighting.binder_crossing`; NaN where they do not cross)."""
    a, b = family[L1], family[L2]
    T, Te = grid_line.T.copy(), grid_line.T_err.copy()
    used = np.zeros(T.size, bool)
    lo, hi = float(a.T.min()), float(a.T.max())
    for k in range(T.size):
        if fields == "zero" and a.h[k] != 0:
            continue
        ra, rb = _fit(a, k), _fit(b, k)
        if ra is None or rb is None:
            continue
        used[k] = True
        try:
            est = binder_crossing(ra, rb, T_range=(lo, hi))
            T[k], Te[k] = est.value, est.error
        except NoCrossingError:
            T[k], Te[k] = np.nan, np.nan
    return Boundary(param="h", h=grid_line.h, T=T, T_err=Te, sizes=grid_line.sizes, reweighted=used,
                    method=f"Binder cumulant crossing U_L{L1}(T) = U_L{L2}(T) at fixed h on reweighted curves "
                           "(MBAR per size and row, jackknife errors added in quadrature); rows with "
                           "reweighted = 0: " + grid_line.method,
                    description=grid_line.description)
