"""Per-head summary of an atlas: T_c with its error, mean-field T_c, ordering kind and direction,
the boundary line in (T, h), and where the model itself sits (T = 1, h = 0).

Rules (stated here, in the file's ``/summary`` attributes and in the figures):

* **Disorder average** over the quenched samples of a length: the mean of each observable, with
  error ``std / sqrt(n_samples)`` over samples (thermal and sample-to-sample spread together) when
  there are several samples, the thermal (jackknife) error for one. A temperature flagged in any
  sample (its error bars not reliable at the sweep cap, :mod:`.atlas_run`) is flagged in the
  average and left out of every estimate below.
* **T_c at h = 0** (the row of the smallest |h|): with two or more lengths, the Binder crossing of
  the two largest lengths whose averaged U(T) cross on the grid (:func:`~spinsim.analysis.boundaries.binder_crossings`,
  resampling error; method ``"binder"``); otherwise the susceptibility peak of the largest length
  on its MBAR-reweighted curve from the unflagged temperatures (one sample; jackknife error;
  method ``"chi_peak_reweighted"``, :func:`spinsim.analysis.atlas_run.reweighted_peak`), else on
  the raw grid (:func:`~spinsim.analysis.boundaries.susceptibility_peak`: parabola through the
  maximum and its two grid neighbours; method ``"chi_peak"``). A raw maximum on the grid's edge
  (of its unflagged points) gives no T_c (NaN, method ``"none"``, ``at_edge``), whatever the
  reweighted curve says (MBAR extrapolates a maximum just inside the last interval); so does a
  maximum with a flagged grid neighbour (not resolved: a parabola across the gap is not a peak).
  The raw peak's error is the spread over resampled chi values in quadrature with the grid's
  resolution ``(T_{i+1} - T_{i-1}) / (2 sqrt 12)`` (a vertex inside one grid interval is known
  only as well as the peak is a parabola: on the demo's x1.82 grid the resampling alone gave
  SmolLM2's L7H4 1.78 +- 0.08 where a fine sweep of the same head peaks at 2.14). The same rule
  gives the boundary line's T(h).
* **Mean-field T_c** and the spectrum of M_s (bond-weighted mean coupling) per system, averaged
  over samples. **Coupling class** (:func:`spinsim.models.heads.classify_spectrum`, band 0.1):
  ``ferro`` when lambda_max >= |lambda_min|, ``antiferro`` otherwise, ``mixed`` when
  |lambda_max + lambda_min| <= 0.1 (lambda_max - lambda_min).
* **Ordering kind** at the lowest unflagged grid T, largest length, from the Monte Carlo with
  ``q = <|m|> / mean_i |x_i|`` (a common direction) and ``q_u = <m.u> / mean_i |x_i|`` (each spin
  along its own token): ``uniform`` when q >= 0.5 at h = 0 (spontaneous order); else ``pinned``
  when the prompt field pins the spins, read from the field rows: q_u >= 0.5 and q_u >= q at the
  smallest h > 0 of the grid (``pin_h``, ``q_field``, ``q_u_field``; never pinned without an
  h > 0 row); else ``disordered`` when that h = 0 temperature is above the mean-field T_c (no order
  possible there); else ``staggered`` (ordered, with no net moment: antiferro or glassy). ``q``
  and ``q_u`` are the h = 0 values. **Ordering direction**
  (same point): ``direction_overlap`` the mean over chains of |m_c.v| / |m_c| of each chain's mean
  moment m_c with the top eigenvector v of M_s (per chain, so chains ordered along +v and -v do
  not cancel; :func:`chain_overlap`), ``direction_overlap_err`` its standard error over chains
  (one sample) or over samples (several, the disorder-average rule).
* **Boundary line**: for every h, the chi peak in T of the largest length's averaged chi
  (flagged points left out; edge peaks NaN).
* **T_c(N)**: the chi peak at h = 0 of every length (``T_c_length``) and, with two lengths or
  more, the weighted fits of :func:`spinsim.analysis.atlas_contexts.tc_scaling` (``tc_log_slope``
  and ``tc_log_intercept`` of a + b ln N, ``tc_power`` and ``tc_power_intercept`` of exp(c) N^p,
  slopes with errors and chi^2/dof; the T_c(N) figure draws these fits).
* **Where the model sits**: T = 1 at h = 0; ``model_side`` ``ordered`` when T_c > 1, else
  ``disordered``; ``model_distance`` = |ln T_c| (0 on the boundary). A head whose chi peak sits on
  the grid's edge (its T_c beyond the grid) has no distance but ``model_distance_bound``, the
  distance it is known to exceed: min(ln(1/T_min), ln T_max) when the grid holds T = 1, else 0
  (a right-censored distance, for prediction (a)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spinsim.models.heads import classify_spectrum

from .atlas_contexts import tc_scaling
from .atlas_store import Atlas
from .boundaries import binder_crossings, susceptibility_peak

__all__ = ["disorder_average", "summarize", "chain_overlap", "SUMMARY_UNITS", "KIND_RULE", "CLASS_BAND", "Averaged"]

CLASS_BAND = 0.1
KIND_RULE = ("largest length, lowest unflagged T of each row; q = <|m|>/mean|x_i|, q_u = <m.u>/mean|x_i|: uniform "
             "if q >= 0.5 at h = 0; else pinned if q_u >= 0.5 and q_u >= q at the smallest h > 0 of the grid (the "
             "prompt field pins the spins to their tokens; no h > 0 row: never pinned); else disordered if the "
             "h = 0 point's T > T_mf; else staggered; unresolved if every T at h = 0 is flagged")
CLASS_RULE = (f"spectrum of M_s: ferro if lambda_max >= |lambda_min|, antiferro otherwise, mixed if "
              f"|lambda_max + lambda_min| <= {CLASS_BAND} (lambda_max - lambda_min)")

SUMMARY_UNITS = {"T_c": "energy (k_B = 1)", "T_c_err": "energy (k_B = 1)", "T_c_method": "", "T_c_at_edge": "flag",
                 "T_mf": "energy (k_B = 1)", "lambda_max": "energy", "lambda_min": "energy", "coupling_class": "",
                 "ferro_index": "dimensionless", "kind": "", "q": "dimensionless", "q_u": "dimensionless",
                 "pin_h": "energy", "q_field": "dimensionless", "q_u_field": "dimensionless",
                 "direction_overlap": "dimensionless", "direction_overlap_err": "dimensionless", "boundary_T": "energy (k_B = 1)",
                 "boundary_T_err": "energy (k_B = 1)", "boundary_at_edge": "flag", "model_side": "",
                 "model_distance": "dimensionless", "model_distance_bound": "dimensionless", "T_c_length": "energy (k_B = 1)",
                 "T_c_length_err": "energy (k_B = 1)", "n_flagged": "points", "tc_log_slope": "energy",
                 "tc_log_slope_err": "energy", "tc_log_slope_chi2": "dimensionless", "tc_power": "dimensionless",
                 "tc_power_err": "dimensionless", "tc_power_chi2": "dimensionless",
                 "tc_log_intercept": "energy (k_B = 1)", "tc_power_intercept": "ln(energy)"}


@dataclass
class Averaged:
    """Disorder averages of one head: ``values[name]`` (n_length, n_h, n_T) with ``<name>_err``,
    ``flagged`` (n_length, n_h, n_T)."""

    values: dict[str, np.ndarray]
    flagged: np.ndarray


def disorder_average(a: Atlas, i: int) -> Averaged:
    """Sample averages of head i (rule in the module docstring)."""
    out: dict[str, np.ndarray] = {}
    n_s = int(a.n_samples)
    for name, v in a.values.items():
        if name.endswith("_err"):
            continue
        x = v[i]                                           # (length, sample, h, T)
        out[name] = _nanmean(x, axis=1) if n_s > 1 else x[:, 0]
        err = a.values.get(name + "_err")
        if n_s > 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name + "_err"] = np.nanstd(x, axis=1, ddof=1) / np.sqrt(n_s)
        elif err is not None:
            out[name + "_err"] = err[i][:, 0]
    return Averaged(out, a.flagged[i].any(axis=1) | ~a.done[i].all(axis=1)[..., None])


def chain_overlap(m_chains: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    """Overlap of each chain's ordering with the direction v, averaged over chains.

    m_chains : (..., n_chains, n_comp) each chain's mean moment m_c (spin-length units); v :
    (n_comp,) the direction (any length). Returns (mean, err), each (...): the mean over chains of
    ``|m_c . v| / (|m_c| |v|)`` (in [0, 1]; 1 = ordered along +-v) and its standard error over
    chains (``std(ddof=1) / sqrt(n)``; NaN with fewer than two chains). Per chain, so chains in
    Z2-related states (m and -m) do not cancel as they do in the chain-averaged <m>. Chains with
    m_c = 0 are left out (NaN where every chain is). Raises ValueError for mismatched components."""
    m = np.asarray(m_chains, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if m.ndim < 2 or v.ndim != 1 or m.shape[-1] != v.size:
        raise ValueError(f"m_chains must be (..., n_chains, n_comp) and v (n_comp,), got {m.shape} and {v.shape}")
    nm = np.linalg.norm(m, axis=-1) * max(float(np.linalg.norm(v)), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        o = np.where(nm > 0, np.abs(m @ v) / nm, np.nan)
        n = np.sum(np.isfinite(o), axis=-1)
        mean = _nanmean(o, axis=-1)
        dev = np.where(np.isfinite(o), o - mean[..., None], 0.0)
        err = np.where(n > 1, np.sqrt(np.sum(dev ** 2, axis=-1) / np.maximum(n - 1, 1) / np.maximum(n, 1)), np.nan)
    return mean, err


def _nanmean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (silently) where every entry is NaN (rows not run)."""
    x = np.asarray(x, float)
    n = np.sum(np.isfinite(x), axis=axis)
    tot = np.nansum(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, tot / np.maximum(n, 1), np.nan)


def _peak(T: np.ndarray, chi: np.ndarray, err: np.ndarray, bad: np.ndarray, seed: int) -> tuple[float, float, bool]:
    """(T_peak, error, at_edge) of chi over the grid T (sorted or not) without its ``bad`` points
    (the rule of the module docstring)."""
    order = np.argsort(T)
    T, chi, err, keep = T[order], chi[order], err[order], (~bad & np.isfinite(chi))[order]
    if keep.sum() < 3:
        return float("nan"), float("nan"), False
    ok = np.flatnonzero(keep)
    i = int(ok[np.argmax(chi[ok])])
    if i in (ok[0], ok[-1]):                      # maximum on the edge of the unflagged points
        return float("nan"), float("nan"), True
    if not (keep[i - 1] and keep[i + 1]):         # a flagged neighbour: the peak is not resolved
        return float("nan"), float("nan"), False
    three = slice(i - 1, i + 2)
    pk = susceptibility_peak(T[three], chi[three], np.nan_to_num(err[three]), n_resample=400, seed=seed)
    grid = (T[i + 1] - T[i - 1]) / (2.0 * np.sqrt(12.0))     # the grid's resolution (module docstring)
    return float(pk["x"]), float(np.hypot(pk["x_err"], grid)), False


def _binder_T_c(T: np.ndarray, av: Averaged, k0: int, lengths: np.ndarray) -> tuple[float, float]:
    U, Ue = av.values.get("binder"), av.values.get("binder_err")
    if U is None or lengths.size < 2:
        return float("nan"), float("nan")
    order = np.argsort(lengths)
    for a_, b_ in reversed(list(zip(order[:-1], order[1:]))):      # largest pair first
        keep = ~(av.flagged[a_, k0] | av.flagged[b_, k0])
        if keep.sum() < 2:
            continue
        c = binder_crossings({int(lengths[a_]): (T[keep], U[a_, k0, keep], Ue[a_, k0, keep]),
                              int(lengths[b_]): (T[keep], U[b_, k0, keep], Ue[b_, k0, keep])}, n_resample=400)
        if c:
            return float(c[0]["T"]), float(c[0]["T_err"])
    return float("nan"), float("nan")


def summarize(a: Atlas, seed: int = 0) -> dict[str, np.ndarray]:
    """The per-head summary (rules in the module docstring): a dict of arrays over heads (and
    ``T_c_length`` (head, length), ``boundary_*`` (head, h)); also stored in ``a.summary``."""
    n_head, n_len = len(a.heads), a.lengths.size
    k0 = int(np.argmin(np.abs(a.h)))
    last = int(np.argmax(a.lengths))
    s: dict[str, Any] = {k: np.full(n_head, np.nan) for k in
                         ("T_c", "T_c_err", "T_mf", "lambda_max", "lambda_min", "ferro_index", "q", "q_u",
                          "direction_overlap", "direction_overlap_err", "pin_h", "q_field", "q_u_field",
                          "model_distance", "model_distance_bound", "tc_log_slope", "tc_log_slope_err",
                          "tc_log_slope_chi2", "tc_log_intercept", "tc_power", "tc_power_err", "tc_power_chi2",
                          "tc_power_intercept")}
    s.update(T_c_method=np.full(n_head, "none", dtype=object), T_c_at_edge=np.zeros(n_head, bool),
             coupling_class=np.full(n_head, "", dtype=object), kind=np.full(n_head, "", dtype=object),
             model_side=np.full(n_head, "", dtype=object), boundary_T=np.full((n_head, a.h.size), np.nan),
             boundary_T_err=np.full((n_head, a.h.size), np.nan), boundary_at_edge=np.zeros((n_head, a.h.size), bool),
             T_c_length=np.full((n_head, n_len), np.nan), T_c_length_err=np.full((n_head, n_len), np.nan),
             n_flagged=np.zeros(n_head, np.int64))
    for i in range(n_head):
        if not a.done[i].any():
            continue
        av = disorder_average(a, i)
        s["n_flagged"][i] = int(a.flagged[i].sum())
        chi, chie = av.values["susceptibility"], av.values["susceptibility_err"]
        for il in range(n_len):
            s["T_c_length"][i, il], s["T_c_length_err"][i, il], _ = _peak(a.T, chi[il, k0], chie[il, k0],
                                                                         av.flagged[il, k0], seed + il)
        if n_len >= 2:
            fit = tc_scaling(a.lengths, s["T_c_length"][i], s["T_c_length_err"][i])
            for k in ("log_slope", "log_slope_err", "log_slope_chi2", "log_intercept", "power", "power_err",
                      "power_chi2", "power_intercept"):
                s["tc_" + k][i] = fit[k]
        tc, te = _binder_T_c(a.T, av, k0, a.lengths)
        if np.isfinite(tc):
            s["T_c"][i], s["T_c_err"][i], s["T_c_method"][i] = tc, te, "binder"
        else:
            tc, te, edge = _peak(a.T, chi[last, k0], chie[last, k0], av.flagged[last, k0], seed)
            s["T_c_at_edge"][i] = edge
            rw, rwe = a.facts["T_peak_rw"][i, last, 0], a.facts["T_peak_rw_err"][i, last, 0]
            if edge or not np.isfinite(tc):     # beyond the grid's edge, or not resolved: whatever MBAR says
                pass
            elif a.n_samples == 1 and np.isfinite(rw) and np.isfinite(rwe):
                s["T_c"][i], s["T_c_err"][i], s["T_c_method"][i] = rw, rwe, "chi_peak_reweighted"
            elif np.isfinite(tc):
                s["T_c"][i], s["T_c_err"][i], s["T_c_method"][i] = tc, te, "chi_peak"
        for k in range(a.h.size):
            s["boundary_T"][i, k], s["boundary_T_err"][i, k], s["boundary_at_edge"][i, k] = _peak(
                a.T, chi[last, k], chie[last, k], av.flagged[last, k], seed + 1000 + k)
        for name in ("T_mf", "lambda_max", "lambda_min"):
            s[name][i] = float(_nanmean(a.facts[name][i, last]))
        if np.isfinite(s["lambda_max"][i]):
            lam = np.array([s["lambda_max"][i], s["lambda_min"][i]])
            s["coupling_class"][i], _ = classify_spectrum(lam, band=CLASS_BAND)
            s["ferro_index"][i] = float(lam.sum() / max(np.abs(lam).sum(), 1e-300))
        _ordering(a, av, i, last, k0, s)
        if np.isfinite(s["T_c"][i]):
            s["model_side"][i] = "ordered" if s["T_c"][i] > 1.0 else "disordered"
            s["model_distance"][i] = abs(float(np.log(s["T_c"][i])))
        else:
            s["model_side"][i] = "no T_c in grid"
            if s["T_c_at_edge"][i]:                    # T_c beyond the grid: |ln T_c| > the edge's
                s["model_distance_bound"][i] = _edge_distance(a.T)
    a.summary.update(s)
    a.summary_units.update(SUMMARY_UNITS)
    a.attrs.update(summary_kind_rule=KIND_RULE, summary_class_rule=CLASS_RULE,
                   summary_T_c_rule="Binder crossing of the two largest lengths, else the chi peak of the largest "
                                    "length (MBAR-reweighted with one sample, else on the raw grid); flagged points "
                                    "left out; edge peaks give no T_c")
    return s


def _ordering(a: Atlas, av: Averaged, i: int, last: int, k0: int, s: dict[str, Any]) -> None:
    """q, q_u, kind and the direction overlap of head i (rule: :data:`KIND_RULE`; each read at the
    lowest unflagged T of its row: flagged points enter no estimate)."""
    if _lowest_unflagged(a.T, av.flagged[last, k0]) < 0:
        s["kind"][i] = "unresolved"
        return
    t_lo = _lowest_unflagged(a.T, av.flagged[last, k0])
    m_len = _mean_length(a, i, last)
    q = av.values["magnetization"][last, k0, t_lo] / m_len
    s["q"][i] = q
    if "projection" in av.values:
        s["q_u"][i] = av.values["projection"][last, k0, t_lo] / m_len
    pos = np.flatnonzero(a.h > 0)
    if pos.size and "projection" in av.values:         # the field rows: the smallest h > 0 pins or not
        k1 = int(pos[np.argmin(a.h[pos])])
        t1 = _lowest_unflagged(a.T, av.flagged[last, k1])
        if t1 >= 0:
            s["pin_h"][i] = a.h[k1]
            s["q_field"][i] = av.values["magnetization"][last, k1, t1] / m_len
            s["q_u_field"][i] = av.values["projection"][last, k1, t1] / m_len
    if q >= 0.5:
        kind = "uniform"
    elif np.isfinite(s["q_u_field"][i]) and s["q_u_field"][i] >= 0.5 and s["q_u_field"][i] >= s["q_field"][i]:
        kind = "pinned"
    elif np.isfinite(s["T_mf"][i]) and a.T[t_lo] > s["T_mf"][i]:
        kind = "disordered"
    else:
        kind = "staggered"
    s["kind"][i] = kind
    ov = a.facts["direction_overlap"][i, last, :, t_lo]               # (sample,)
    if a.n_samples > 1:
        n = int(np.isfinite(ov).sum())
        s["direction_overlap"][i] = float(_nanmean(ov))
        if n > 1:
            s["direction_overlap_err"][i] = float(np.nanstd(ov, ddof=1) / np.sqrt(n))
    else:
        s["direction_overlap"][i] = ov[0]
        s["direction_overlap_err"][i] = a.facts["direction_overlap_err"][i, last, 0, t_lo]


def _lowest_unflagged(T: np.ndarray, flagged: np.ndarray) -> int:
    """Index of the lowest temperature not flagged (-1 when every one is)."""
    ok = ~np.asarray(flagged, dtype=bool)
    return int(np.flatnonzero(ok)[np.argmin(T[ok])]) if ok.any() else -1


def _edge_distance(T: np.ndarray) -> float:
    """Smallest |ln T_c| of a T_c outside the grid [T_min, T_max]: min(ln(1/T_min), ln T_max) when
    the grid holds T = 1, else 0 (T_c could then be 1)."""
    lo, hi = float(np.min(T)), float(np.max(T))
    return min(-np.log(lo), np.log(hi)) if lo <= 1.0 <= hi else 0.0


def _mean_length(a: Atlas, i: int, il: int) -> float:
    """Mean spin length |x_i| of head i's systems at length il: the magnetisation of a fully
    aligned state (1 for unit spins or when unknown)."""
    x = float(_nanmean(a.facts["spin_length"][i, il]))
    return x if np.isfinite(x) and x > 0 else 1.0
