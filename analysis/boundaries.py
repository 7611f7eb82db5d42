"""Phase boundaries from sampled or exact observables, each labelled by its method.

* :func:`binder_crossings`: T where the Binder cumulants of two sizes cross (finite-size
  scaling estimate of T_c), with an error from resampling the curves within their errors.
* :func:`susceptibility_peak`: T (or h) of the maximum of chi along a line, refined by a parabola
  through the top three points, with an error from resampling.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["binder_crossings", "susceptibility_peak", "crossing"]


def crossing(x: np.ndarray, y1: np.ndarray, y2: np.ndarray) -> float:
    """First x where y1 - y2 changes sign (linear interpolation); NaN when none."""
    d = np.asarray(y1, float) - np.asarray(y2, float)
    s = np.sign(d)
    idx = np.flatnonzero(s[:-1] * s[1:] < 0)
    if idx.size == 0:
        exact = np.flatnonzero(d == 0)
        return float(x[exact[0]]) if exact.size else float("nan")
    i = idx[0]
    return float(x[i] - d[i] * (x[i + 1] - x[i]) / (d[i + 1] - d[i]))


def binder_crossings(curves: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
                     n_resample: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Crossings of U_L(T) for consecutive sizes.

    ``curves``: ``{L: (T, U, U_err)}`` on a common increasing T grid. Returns one dict per pair
    ``(L1, L2)`` with ``T`` (the crossing), ``T_err`` (std over resampled curves U + err * z),
    ``method = "binder crossing L1/L2"``. Pairs whose curves do not cross are omitted.
    """
    sizes = sorted(curves)
    rng = np.random.default_rng(seed)
    out = []
    for L1, L2 in zip(sizes[:-1], sizes[1:]):
        T1, U1, e1 = (np.asarray(a, float) for a in curves[L1])
        T2, U2, e2 = (np.asarray(a, float) for a in curves[L2])
        if T1.shape != T2.shape or not np.allclose(T1, T2):
            raise ValueError(f"Binder curves for L={L1} and L={L2} must share one T grid")
        order = np.argsort(T1)
        T, U1, U2, e1, e2 = T1[order], U1[order], U2[order], e1[order], e2[order]
        tc = crossing(T, U1, U2)
        if not np.isfinite(tc):
            continue
        samples = [crossing(T, U1 + e1 * rng.standard_normal(T.size), U2 + e2 * rng.standard_normal(T.size))
                   for _ in range(n_resample)]
        samples = np.asarray(samples)
        samples = samples[np.isfinite(samples)]
        out.append({"L": (L1, L2), "T": tc, "T_err": float(samples.std()) if samples.size > 1 else float("nan"),
                    "method": f"binder crossing L={L1}/{L2}"})
    return out


def _parabola_peak(x: np.ndarray, y: np.ndarray) -> float:
    i = int(np.nanargmax(y))
    if i == 0 or i == len(x) - 1:
        return float(x[i])
    xs, ys = x[i - 1:i + 2], y[i - 1:i + 2]
    a, b, _ = np.polyfit(xs, ys, 2)
    if a >= 0:
        return float(x[i])
    return float(np.clip(-b / (2 * a), xs[0], xs[-1]))


def susceptibility_peak(x: np.ndarray, chi: np.ndarray, chi_err: np.ndarray | None = None,
                        n_resample: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Location of the maximum of chi(x) (parabolic refinement), with a resampling error.

    Returns ``{"x": x*, "x_err": ..., "chi_max": ..., "at_edge": bool, "method": "chi peak"}``;
    ``at_edge`` means the maximum sits on the grid's edge (no interior peak: not a boundary).
    """
    x = np.asarray(x, float)
    chi = np.asarray(chi, float)
    order = np.argsort(x)
    x, chi = x[order], chi[order]
    err = np.zeros_like(chi) if chi_err is None else np.asarray(chi_err, float)[order]
    xp = _parabola_peak(x, chi)
    rng = np.random.default_rng(seed)
    if np.any(err > 0):
        s = np.array([_parabola_peak(x, chi + err * rng.standard_normal(x.size)) for _ in range(n_resample)])
        xerr = float(s.std())
    else:
        xerr = 0.0
    i = int(np.nanargmax(chi))
    return {"x": xp, "x_err": xerr, "chi_max": float(chi[i]), "at_edge": i in (0, x.size - 1),
            "method": "susceptibility peak"}
