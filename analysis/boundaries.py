"""Phase boundaries from sampled or exact observables, each labelled by its method.

* :func:`binder_crossings`: T where the Binder cumulants of two sizes cross (finite-size
  scaling estimate of T_c), with an error from resampling the curves within their errors.
* :func:`susceptibility_peak`: T (or h) of the maximum of chi along a line, refined by a parabola
  through the top three points, with an error from resampling.

Lines over a (T, h) sweep (each a :class:`spinsim.result.Boundary` labelled by ``method``, stored
in the sweep file's ``/boundary/<name>`` by :func:`add_sweep_boundaries`):

* :func:`susceptibility_peak_line`: chi peak in T for every h, resampling error, edge flags (on
  reweighted curves where the sweep holds Monte Carlo samples: :mod:`.reweighted_lines`);
* :func:`binder_crossing_line`: Binder crossings across a size family, for every h;
* :func:`mean_field_line`: T_c^MF(h) from the mean-field stability of the paramagnetic branch
  (at h = 0: ``c lambda_max`` of the coupling, i.e. the spectrum of M_s);
* :func:`level_crossing_line`: the candidate level-crossing line h*(T) = (E_A - E_B)/(p_A - p_B);
* :func:`coexistence_line`: the h = 0 first-order line of a field-flip symmetric system;
* :func:`sweep_boundaries`: all of those a single sweep supports;
* :func:`add_sweep_boundaries`: compute them for a finished sweep and store them in its file.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from spinsim.directions import resolve_direction
from spinsim.probe import candidate_energies as probe_energies, crossing_field
from spinsim.result import Boundary
from spinsim.solvers.mean_field import critical_temperatures, field_along_order, mean_field_T_c

from .reweighted_lines import has_samples, reweighted_binder_line, reweighted_peak_line

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


def _parabola_peaks(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """For each row of Y (m, n) over the sorted grid x (n,): the vertex of the parabola through
    the maximum (NaN ignored) and its two neighbours, clipped to them; the grid point itself at
    an edge or where that parabola opens upwards; NaN where a neighbour is NaN. ValueError for
    an all-NaN row. (Closed form of the three-point np.polyfit, vectorised over rows.)"""
    Y = np.asarray(Y, float)
    filled = np.where(np.isnan(Y), -np.inf, Y)
    if np.any(np.all(np.isnan(Y), axis=1)):
        raise ValueError("All-NaN slice encountered")
    i = np.argmax(filled, axis=1)
    out = x[i].astype(float)
    inner = (i > 0) & (i < x.size - 1)
    if not inner.any():
        return out
    j = i[inner]
    rows = np.flatnonzero(inner)
    x0, x1, x2 = x[j - 1], x[j], x[j + 1]
    y0, y1, y2 = Y[rows, j - 1], Y[rows, j], Y[rows, j + 1]
    s01 = (y1 - y0) / (x1 - x0)
    a = ((y2 - y1) / (x2 - x1) - s01) / (x2 - x0)
    b = s01 - a * (x0 + x1)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.clip(-b / (2 * a), x0, x2)
    out[rows] = np.where(np.isnan(a), np.nan, np.where(a < 0, v, x1))    # a NaN neighbour: NaN, as np.polyfit gave
    return out


def _parabola_peak(x: np.ndarray, y: np.ndarray) -> float:
    return float(_parabola_peaks(x, np.asarray(y, float)[None, :])[0])


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
        # one (n_resample, n) draw: the same numbers, row by row, as n_resample draws of n
        s = _parabola_peaks(x, chi + err * rng.standard_normal((n_resample, x.size)))
        xerr = float(s.std())
    else:
        xerr = 0.0
    i = int(np.nanargmax(chi))
    return {"x": xp, "x_err": xerr, "chi_max": float(chi[i]), "at_edge": i in (0, x.size - 1),
            "method": "susceptibility peak"}


# ============================================================================= lines over a sweep
#
# A boundary *line* is a spinsim.result.Boundary: T and h over the line's parameter ``param``,
# optional T_err, chi_max, at_edge, the ``method`` that produced it and a ``description``;
# units come from the Boundary's field metadata.

__all__ += ["field_along_order", "susceptibility_peak_line", "binder_crossing_line", "mean_field_line", "mean_field_T_c",
            "candidate_energies", "level_crossing_line", "coexistence_line", "sweep_boundaries",
            "add_sweep_boundaries"]


def susceptibility_peak_line(T: np.ndarray, h: np.ndarray, chi: np.ndarray, chi_err: np.ndarray | None = None,
                             n_resample: int = 1000, seed: int = 0,
                             observable: str = "susceptibility") -> Boundary:
    """For every field h, the temperature of the maximum of chi(T) (see :func:`susceptibility_peak`).

    ``chi``, ``chi_err``: (n_h, n_T) over the grid ``h`` x ``T``. The error ``T_err`` is the spread
    of the refined peak over ``n_resample`` curves redrawn as chi + chi_err * z (chi_err is the
    jackknife error over bins of each point; z standard normal). ``at_edge[k]`` flags a maximum on
    the first or last temperature (no interior peak: not a boundary point). Rows that are all NaN
    (not yet computed) give NaN. Returns a :class:`Boundary` parametrised by ``h``.
    """
    T = np.asarray(T, float)
    h = np.asarray(h, float)
    chi = np.atleast_2d(np.asarray(chi, float))
    err = None if chi_err is None else np.atleast_2d(np.asarray(chi_err, float))
    n_h = h.size
    Tp, Te, cm = np.full(n_h, np.nan), np.full(n_h, np.nan), np.full(n_h, np.nan)
    edge = np.zeros(n_h, bool)
    for k in range(n_h):
        row = chi[k]
        if not np.any(np.isfinite(row)):
            continue
        e = None if err is None else np.nan_to_num(err[k], nan=0.0)
        pk = susceptibility_peak(T, np.nan_to_num(row, nan=-np.inf), e, n_resample=n_resample, seed=seed + k)
        Tp[k], Te[k], cm[k], edge[k] = pk["x"], pk["x_err"], pk["chi_max"], pk["at_edge"]
    return Boundary(param="h", h=h, T=Tp, T_err=Te, chi_max=cm, at_edge=edge,
                    method=f"{observable} peak in T at fixed h (parabola through the top 3 points; "
                           f"error: {n_resample} resamples within the jackknife errors)",
                    observable=observable,
                    description="T of the maximum of chi(T) for each h; at_edge = 1: maximum on the "
                                "grid edge, no interior peak")


def binder_crossing_line(family: Mapping[int, Any], n_resample: int = 500, seed: int = 0,
                         fields: str = "all", reweight: bool = True) -> dict[str, Boundary]:
    """Binder-cumulant crossings across a size family, for every field h of a common grid.

    ``family``: ``{L: sweep}`` with each sweep a :class:`spinsim.phase.SweepResult` (or any
    :class:`spinsim.Result` over (h, T) with ``binder`` and ``binder_err`` of shape (n_h, n_T)) on
    one shared (T, h) grid. For each consecutive size pair (L1, L2) and each h the crossing of
    U_L1(T) and U_L2(T) (:func:`binder_crossings`); NaN where the curves do not cross (a field
    along the order parameter smooths the transition away, and the curves of two sizes may still
    cross there as a crossover: pass ``fields="zero"`` to keep only h = 0 rows, as for a
    field-flip symmetric system such as Ising). Where both sweeps hold Monte Carlo samples and
    ``reweight`` is True, the crossing of the reweighted curves replaces the grid one row by row
    (:func:`spinsim.analysis.reweighted_lines.reweighted_binder_line`; ``line.reweighted``).
    Returns ``{"binder_crossing_L{L1}_{L2}": line}`` (lines parametrised by ``h``).
    """
    sizes = sorted(family)
    if len(sizes) < 2:
        raise ValueError(f"Binder crossings need at least two sizes, got {sizes}")
    ref = family[sizes[0]]
    for L in sizes[1:]:
        s = family[L]
        if s.T.shape != ref.T.shape or not np.allclose(s.T, ref.T) or s.h.shape != ref.h.shape \
                or not np.allclose(s.h, ref.h):
            raise ValueError(f"sweeps for L={sizes[0]} and L={L} must share one (T, h) grid")
    if fields not in ("all", "zero"):
        raise ValueError(f"fields must be 'all' or 'zero', got {fields!r}")
    out = {}
    for L1, L2 in zip(sizes[:-1], sizes[1:]):
        Tc, Te = np.full(ref.h.size, np.nan), np.full(ref.h.size, np.nan)
        for k in range(ref.h.size):
            if fields == "zero" and ref.h[k] != 0:
                continue
            curves = {L: (family[L].T, family[L].binder[k], family[L].binder_err[k])
                      for L in (L1, L2)}
            if any(not np.all(np.isfinite(c[1])) for c in curves.values()):
                continue
            c = binder_crossings(curves, n_resample=n_resample, seed=seed + k)
            if c:
                Tc[k], Te[k] = c[0]["T"], c[0]["T_err"]
        line = Boundary(
            param="h", h=np.asarray(ref.h, float), T=Tc, T_err=Te, sizes=[int(L1), int(L2)],
            method=f"Binder cumulant crossing U_L{L1}(T) = U_L{L2}(T) at fixed h (finite-size scaling)",
            description="NaN where the curves of the two sizes do not cross on the grid")
        if reweight and has_samples(family[L1]) and has_samples(family[L2]):
            line = reweighted_binder_line(family, L1, L2, line, fields)
        out[f"binder_crossing_L{L1}_{L2}"] = line
    return out


# ----------------------------------------------------------------------------- mean field
# The physics and numerics live in spinsim.solvers.mean_field; here they become boundary lines.
def mean_field_line(H: Any, h: Any, direction: Any = None, T_min: float | None = None,
                    n_scan: int = 24, rtol: float = 1e-6) -> Boundary:
    """Mean-field critical line T_c^MF(h) of H with the field ``h u_i`` added, as a boundary line.

    The largest T with ``beta lambda_max(D^{1/2} K D^{1/2}) = 1`` on the paramagnetic branch,
    from :func:`spinsim.solvers.mean_field.critical_temperatures` (derivation, numerics and the
    meaning of ``T_min``, ``n_scan``, ``rtol`` there). At h = 0 with no other field this is
    :func:`mean_field_T_c`; a field along the order parameter (:func:`field_along_order`) gives
    only the critical point at h = 0. Returns a :class:`Boundary` parametrised by ``h`` (T NaN: no
    instability above the lowest temperature scanned).
    """
    hs = np.atleast_1d(np.asarray(h, float))
    Tc, T_lo = critical_temperatures(H, hs, direction, T_min=T_min, n_scan=n_scan, rtol=rtol)
    return _mf_dict(hs, Tc, T_lo)


def _mf_dict(hs: np.ndarray, Tc: np.ndarray, T_lo: float | None) -> Boundary:
    return Boundary(param="h", h=hs, T=Tc,
                    method="mean field: largest T with beta lambda_max(D^1/2 K D^1/2) = 1 on the "
                           "paramagnetic branch (K = W' (x) M + W'^T (x) M^T; at h = 0: c lambda_max(K))",
                    description="NaN: the field-polarised mean-field state stays stable down to "
                                f"T = {T_lo if T_lo is not None else 0:.4g} (no transition in this field)")


# ----------------------------------------------------------------------------- candidates
def candidate_energies(H: Any, probe: int, S_A: Any, S_B: Any, direction: Any = None,
                       bath: Any = None) -> dict[str, float]:
    """Energies of a probe site in state A or B in the field of a quenched bath, and their
    projections on the added-field direction: ``{"E_A", "E_B", "p_A", "p_B"}``.

    ``E_X`` is the total energy with the probe at S_X (:func:`spinsim.probe.candidate_energies`,
    the physics written once); ``p_X = S_X . u_probe``. The bath is ``bath`` (n_sites, n_comp) or
    H.state. S_A, S_B: (n_comp,) spins, lengths included. ValueError for a probe out of range or a
    missing bath.
    """
    if bath is None and H.state is None:
        raise ValueError(f"candidate level crossing needs a bath state of shape ({H.n_sites}, {H.n_comp}): "
                         "pass bath= or give H a state")
    if not 0 <= int(probe) < H.n_sites:
        raise ValueError(f"probe site {probe!r} out of range 0..{H.n_sites - 1}")
    S_A, S_B = np.asarray(S_A, float), np.asarray(S_B, float)
    E, _ = probe_energies(H, np.stack([S_A, S_B]), probe=int(probe), bath=bath)
    U, _ = resolve_direction(H, direction)
    u = U[int(probe)]
    return {"E_A": float(E[0]), "E_B": float(E[1]), "p_A": float(S_A @ u), "p_B": float(S_B @ u)}


def level_crossing_line(T: Any, E_A: Any, E_B: Any, p_A: Any, p_B: Any,
                        labels: tuple[str, str] = ("A", "B")) -> Boundary:
    """Candidate level-crossing line h*(T): the field where the probe's ground state switches
    between candidates A and B, ``h* = (E_A - E_B) / (p_A - p_B)``
    (:func:`spinsim.probe.crossing_field`; NaN where p_A == p_B, the levels never cross).

    The energies may be arrays over T (bath-averaged energies of an annealed bath) or numbers (a
    quenched bath: h* is the same at every T, and there the log-odds ``beta (E_B(h) - E_A(h))``
    vanish at every T: a first-order line). Parametrised by ``T``.
    """
    T = np.atleast_1d(np.asarray(T, float))
    hstar = np.broadcast_to(crossing_field(E_A, E_B, p_A, p_B), T.shape).astype(float).copy()
    return Boundary(param="T", T=T, h=hstar, candidates=list(labels),
                    method="candidate level crossing h* = (E_A - E_B)/(p_A - p_B) (probe site, "
                           "quenched bath)",
                    description=f"ground state of the probe switches between {labels[0]!r} and "
                                f"{labels[1]!r}")


def coexistence_line(T_low: float, T_end: float, T_end_err: float = float("nan"),
                     method: str = "") -> Boundary:
    """The first-order (coexistence) line at h = 0 from ``T_low`` up to the critical end point
    ``T_end``: for a field-flip symmetric system (no field of its own) the magnetisation along u
    jumps from -|m| to +|m| as h crosses 0 in the ordered phase. Parametrised by ``T``."""
    return Boundary(param="T", T=np.array([T_low, T_end]), h=np.zeros(2), T_end_err=float(T_end_err),
                    method=method or "coexistence at h = 0 (field-flip symmetry), ending at the h = 0 "
                                     "chi peak",
                    description="first-order line: <m.u> jumps sign across h = 0 below the critical point")


def sweep_boundaries(sw: Any, H: Any = None, candidates: Mapping[str, Any] | None = None,
                     n_resample: int = 1000, mean_field_max_size: int = 10_000,
                     reweight: bool = True) -> dict[str, Boundary]:
    """Every boundary a single sweep supports, by name (what :func:`add_sweep_boundaries` stores).

    ``sw``: a :class:`spinsim.phase.SweepResult` (or a :class:`spinsim.Result` over (h, T) with a
    ``direction`` (n_sites, n_comp)).

    * ``chi_peak``: :func:`susceptibility_peak_line` of ``susceptibility`` over T at each h; where
      the sweep holds Monte Carlo samples (and ``reweight``), the peak of the reweighted chi(T)
      row by row (:func:`spinsim.analysis.reweighted_lines.reweighted_peak_line`);
    * ``mean_field``: :func:`mean_field_line` when H is given; for ``n_free * n_comp >
      mean_field_max_size`` only its h = 0 point (the spectrum of the coupling; needs H without a
      field of its own), the rest NaN;
    * ``coexistence``: :func:`coexistence_line` when the field couples to the order parameter
      (:func:`field_along_order`), the h grid spans 0 and the h = 0 chi peak is interior;
    * ``level_crossing``: :func:`level_crossing_line` when ``candidates`` = ``{"probe": k,
      "A": S_A, "B": S_B, "labels": (a, b), "bath": S}`` is given.
    Binder crossings need a size family: :func:`binder_crossing_line`.
    """
    out: dict[str, Boundary] = {}
    T, h = np.asarray(sw.T, float), np.asarray(sw.h, float)
    chi = susceptibility_peak_line(T, h, sw.susceptibility, sw.susceptibility_err, n_resample=n_resample)
    if reweight and has_samples(sw):
        chi = reweighted_peak_line(sw, chi)
    out["chi_peak"] = chi
    if H is None:
        return out
    size = H.n_free * H.n_comp
    try:
        if size <= mean_field_max_size:
            out["mean_field"] = mean_field_line(H, h, sw.direction if np.any(sw.direction) else None,
                                                T_min=0.5 * float(T.min()))
        else:   # the h = 0 point only: T_c from the spectrum (M_s and the graph)
            own_field = bool(np.any(H.h[~H.frozen] != 0))
            Tc0 = float("nan") if own_field else mean_field_T_c(H)
            line = _mf_dict(h, np.where(h == 0, Tc0, np.nan).astype(float), None)
            line.description = (f"only h = 0 computed (N n = {size} > {mean_field_max_size}: the "
                                   "continuation in T is too costly here; call mean_field_line directly)")
            out["mean_field"] = line
    except TypeError as exc:      # a position-dependent coupling (SiteLowRank): no single M to linearise
        out["mean_field"] = Boundary(param="h", h=h, T=np.full(h.size, np.nan),
                                     method="mean field (not available for this coupling)", description=str(exc))
    except (ValueError, np.linalg.LinAlgError, ArithmeticError) as exc:   # pragma: no cover
        out["mean_field"] = Boundary(param="h", h=h, T=np.full(h.size, np.nan),
                                     method="mean field (failed)", description=str(exc))
    zero = np.flatnonzero(np.isclose(h, 0.0, atol=1e-12 * max(1.0, float(np.abs(h).max()))))
    if zero.size and h.min() <= 0 <= h.max() and field_along_order(H, sw.direction):
        k = int(zero[0])
        if np.isfinite(chi.T[k]) and not chi.at_edge[k]:
            out["coexistence"] = coexistence_line(float(T.min()), float(chi.T[k]), float(chi.T_err[k]))
    if candidates:
        e = candidate_energies(H, candidates["probe"], candidates["A"], candidates["B"],
                               sw.direction, candidates.get("bath"))
        out["level_crossing"] = level_crossing_line(T, e["E_A"], e["E_B"], e["p_A"], e["p_B"],
                                                    tuple(candidates.get("labels", ("A", "B"))))
    return out


def add_sweep_boundaries(sw: Any, H: Any, candidates: Mapping[str, Any] | None = None,
                         **kw: Any) -> dict[str, Boundary]:
    """Compute :func:`sweep_boundaries` for a finished sweep, keep them on ``sw.boundaries`` and,
    when the sweep has a file (``sw.path``), store them there (``/boundary/<name>``, through the
    phase store's locked atomic rewrite). Returns the lines. Raises ValueError for a sweep with
    unfinished rows (naming how many)."""
    from spinsim.phase import add_boundaries

    if not sw.complete:
        raise ValueError(f"phase boundaries need every row: {int(sw.done.sum())} of {sw.done.size} done")
    lines = sweep_boundaries(sw, H=H, candidates=candidates, **kw)
    sw.boundaries = {**sw.boundaries, **lines}
    if getattr(sw, "path", None) is not None:
        add_boundaries(sw.path, lines)
    return lines
