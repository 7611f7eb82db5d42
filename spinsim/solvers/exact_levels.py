"""Energy levels of an exact enumeration: lattice energies, merged level tracks, density of states.

Two energies are the same level when they differ by at most ``DEGENERACY_RTOL * scale`` (scale an
upper bound of |E|, chosen by the caller). When every energy difference is an integer multiple of
one quantum q ("lattice energies", :func:`energy_quantum`) levels are exact integers and the
density of states is the exact list of distinct levels; otherwise it is a histogram.

Thermal moments (:func:`level_moments`, :func:`kernel_moments`) are returned in one form, stable
at any T > 0 and any energy scale: ``lw = log sum_states exp(-beta (E - E_0))`` (log-sum-exp),
the Boltzmann means of x = E - E_0, |m|, m_u, m^4 and signed m, and the *central* variances of
x, |m| and m_u (computed about the mean, never as <y^2> - <y>^2: no catastrophic cancellation
when |E| is large and its spread small).
"""
from __future__ import annotations

import numpy as np

__all__ = ["DEGENERACY_RTOL", "N_CHUNKS", "energy_quantum", "merge_tracks", "dos_layout", "dos_from_hist",
           "snap_levels", "level_moments", "kernel_moments",
           "ISING_DEGENERACY_RTOL"]

#: Level tolerance relative to the energy scale (an upper bound of |E|): a bound of the round-off of
#: the streaming energies (odometer: up to ~1e5 incremental updates of ~1 ulp; one probe site: a
#: dot product), with margin. Energies closer than this are one level (degeneracies, gap) and the
#: thermal weights snap energies within it of E_0 or E_1 onto that level; real splittings above it
#: are resolved (lengths from 1e-6 to 1e6 give splittings of 1e-12 of the scale).
DEGENERACY_RTOL = 2.0 ** -36
#: the same for the real-valued Ising passes (Gray-code blocks of 32 steps from scratch: ~64 ulp)
ISING_DEGENERACY_RTOL = 2.0 ** -44
N_CHUNKS = 8               # fixed, so results do not depend on the number of threads
_MAX_LEVELS = 1 << 20      # exact DOS levels for real-valued (discrete) enumeration


def energy_quantum(values: np.ndarray, max_den: int = 1000) -> float | None:
    """Largest q = vmin/d (d <= max_den) with every value an integer multiple of q to within
    64 ulp of the largest value (values within 64 ulp of the largest count as round-off zeros:
    a real term of 1e-12 of the largest, e.g. a field 0.5 next to 1e12, is kept); 1.0 when all
    values are zero; None when there is none."""
    v = np.unique(np.abs(np.asarray(values, dtype=np.float64).ravel()))
    if v.size == 0 or v[-1] == 0:
        return 1.0
    v = v[v > 64 * np.finfo(float).eps * v[-1]]      # round-off noise of values that are zero
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


def snap_levels(x: np.ndarray, tol: float, x1: float | None) -> np.ndarray:
    """x = E - E_0 with values within tol of the ground level (0) or the first excited level x1
    set to it exactly (round-off must not split a level: at low T a split of delta gives a
    spurious specific heat ~ (delta / T)^2). Same rule as the kernels' ``snap_level``."""
    y = np.where(x <= tol, 0.0, x)
    if x1 is not None:
        y = np.where(np.abs(y - x1) <= tol, x1, y)
    return y


def level_moments(x: np.ndarray, count: np.ndarray, beta: np.ndarray, m_mean: np.ndarray,
                  m_var: np.ndarray, m4: np.ndarray, m_signed: np.ndarray, u_mean: np.ndarray,
                  u_var: np.ndarray) -> dict[str, np.ndarray]:
    """Thermal moments (module docstring) from per-level data: levels at x >= 0 (n_L,) with
    ``count`` states each, and per level the mean |m|, the variance of |m| inside the level,
    mean m^4, mean signed m, mean m_u and its variance inside the level.

    Variances by the law of total variance, ``sum_l p_l (var_l + (mean_l - mean)^2)``, with the
    level probabilities ``p_l`` from log weights ``log count_l - beta x_l`` (log-sum-exp).
    Also returns ``p`` (n_T, n_L) for other per-level averages."""
    with np.errstate(divide="ignore"):
        logw = np.log(count)[None, :] - np.outer(beta, x)            # (n_T, n_L)
    top = logw.max(axis=1, keepdims=True)
    w = np.exp(logw - top)
    W = w.sum(axis=1, keepdims=True)
    p = w / W
    out = {"lw": (top + np.log(W))[:, 0], "p": p}

    def mean_var(mean_l: np.ndarray, var_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = p @ mean_l
        return mu, np.einsum("tl,tl->t", p, var_l[None, :] + (mean_l[None, :] - mu[:, None]) ** 2)

    out["xbar"], out["var"] = mean_var(x, np.zeros_like(x))
    out["m1"], out["var_m"] = mean_var(m_mean, m_var)
    out["u1"], out["var_u"] = mean_var(u_mean, u_var)
    out["m4"] = p @ m4
    out["msigned"] = p @ m_signed
    return out


def kernel_moments(acc: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Thermal moments (module docstring) from the enumeration kernels' accumulator
    (n_T, N_ACC) = [W, mean x, M2 x, mean |m|, M2 |m|, mean m_u, M2 m_u, sum m^4, sum m] with
    weights relative to exp(ref) (:func:`spinsim.kernels.enum_common.block_moments`)."""
    W = acc[:, 0]
    return {"lw": ref + np.log(W), "xbar": acc[:, 1], "var": acc[:, 2] / W, "m1": acc[:, 3],
            "var_m": acc[:, 4] / W, "u1": acc[:, 5], "var_u": acc[:, 6] / W, "m4": acc[:, 7] / W,
            "msigned": acc[:, 8] / W}
