"""Energy levels of an exact enumeration: lattice energies, merged level tracks, density of states.

Two energies are the same level when they differ by at most ``DEGENERACY_RTOL * scale`` (scale an
upper bound of |E|, chosen by the caller). When every energy difference is an integer multiple of
one quantum q ("lattice energies", :func:`energy_quantum`) levels are exact integers and the
density of states is the exact list of distinct levels; otherwise it is a histogram.
"""
from __future__ import annotations

import numpy as np

__all__ = ["DEGENERACY_RTOL", "N_CHUNKS", "energy_quantum", "merge_tracks", "dos_layout", "dos_from_hist"]

DEGENERACY_RTOL = 1e-9
N_CHUNKS = 8               # fixed, so results do not depend on the number of threads
_MAX_LEVELS = 1 << 20      # exact DOS levels for real-valued (discrete) enumeration


def energy_quantum(values: np.ndarray, max_den: int = 1000) -> float | None:
    """Largest q = vmin/d (d <= max_den) with every value an integer multiple of q to within
    64 ulp of the largest value (values below 1e-12 of the largest count as round-off zeros);
    1.0 when all values are zero; None when there is none."""
    v = np.unique(np.abs(np.asarray(values, dtype=np.float64).ravel()))
    if v.size == 0 or v[-1] == 0:
        return 1.0
    v = v[v > 1e-12 * v[-1]]            # round-off noise of values that are zero
    if v.size == 0:
        return 1.0
    vmin = v[0]
    tol = 64 * np.finfo(float).eps * v[-1]
    probe = v[np.linspace(0, v.size - 1, min(v.size, 64)).astype(int)]   # cheap first screen
    for d in range(1, max_den + 1):
        q = vmin / d
        for vals in (probe, v):
            r = vals / q
            if not np.all(np.abs(r - np.rint(r)) * q <= max(tol, 64 * np.finfo(float).eps * q)):
                break
        else:
            return float(q)
    return None


def merge_tracks(stats: np.ndarray, codes: np.ndarray, tol: float, cap: int
                 ) -> tuple[float, int, float | None, int, float, float, np.ndarray]:
    """Combine per-chunk [e0, n0, e1, n1, emin, emax] into global E0, n0, E1, n1, range, codes."""
    cands = []
    for st in stats:
        if st[1] > 0:
            cands.append((st[0], st[1]))
        if st[3] > 0:
            cands.append((st[2], st[3]))
    cands.sort()
    levels: list[list[float]] = []
    for e, c in cands:
        if levels and e <= levels[-1][0] + tol:
            levels[-1][1] += c
        else:
            levels.append([e, c])
    E0, n0 = levels[0]
    E1, n1 = (levels[1] if len(levels) > 1 else (None, 0))
    keep = []
    for c, st in enumerate(stats):
        if st[1] > 0 and st[0] <= E0 + tol:
            keep.extend(codes[c, :int(min(st[1], cap))].tolist())
    return (float(E0), int(n0), None if E1 is None else float(E1), int(n1),
            float(stats[:, 4].min()), float(stats[:, 5].max()), np.asarray(keep[:cap], dtype=np.int64))


def dos_layout(E0: float, Emax: float, q: float | None, n_bins: int
               ) -> tuple[float, float, float, int, bool]:
    """(lo, inv_w, off, n_bins, exact) for the kernels' ``floor((E - lo) inv_w + off)``."""
    if q is not None:
        n_lev = int(round((Emax - E0) / q)) + 1
        if n_lev <= _MAX_LEVELS:
            return E0, 1.0 / q, 0.5, n_lev, True
    if Emax > E0:
        return E0, n_bins / (Emax - E0), 0.0, n_bins, False
    return E0, 0.0, 0.0, 1, False


def dos_from_hist(hist: np.ndarray, E0: float, Emax: float, inv_w: float, exact: bool,
                  q: float | None, n_bins: int) -> tuple[np.ndarray, np.ndarray, str]:
    """DOS (levels or bin centres, counts, description) from the histogram of the kernels."""
    if exact:
        lev = np.flatnonzero(hist)
        return E0 + q * lev, hist[lev].astype(np.float64), (
            f"exact distinct levels (energies on a lattice of spacing q={q:.12g})")
    if inv_w == 0.0:
        return np.array([E0]), hist.astype(np.float64), "one level (every state has the same energy)"
    width = (Emax - E0) / n_bins
    centres = E0 + (np.arange(n_bins) + 0.5) * width
    return centres, hist.astype(np.float64), (
        f"histogram: {n_bins} equal bins of width {width:.6g} from E_0 to E_max; "
        "dos_energy are bin centres (energies not on a lattice)")
