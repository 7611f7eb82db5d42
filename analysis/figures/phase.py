"""Phase diagrams: heat maps of an observable over a sweep's (T, h) grid with the phase
boundaries drawn and labelled by method (:func:`phase_diagram`, :func:`phase_diagrams`).

Axes: T in energy units (k_B = 1) on x, the added field h (energy units, along u_i) on y.
What a head's phase diagram means (SPEC section 1): small h, low T: the head's own order wins
(ferro heads: all spins along the top eigenvector of M_s, the "repetition" collapse); large h:
the prompt field wins; the boundaries mark the competition.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .style import LABELS, plt, save

__all__ = ["draw_boundaries", "phase_diagram", "phase_diagrams", "system_title"]

# boundary name -> (legend label, matplotlib style)
_BOUNDARY_STYLE: dict[str, tuple[str, dict[str, Any]]] = {
    "chi_peak": (r"$\chi$ peak in $T$ ($\pm 1\sigma$)", dict(color="white", mec="black", marker="o", ms=6, ls="-", lw=1.2)),
    "mean_field": (r"mean field $T_c^{\rm MF}(h)$", dict(color="#ff7f0e", marker="s", ms=5, ls="--", lw=2)),
    "coexistence": (r"first-order line ($h=0$, coexistence)", dict(color="#d62728", ls="-", lw=4, solid_capstyle="butt")),
    "level_crossing": (r"candidate level crossing $h^*(T)$", dict(color="#2ca02c", ls=":", lw=2.5)),
    "binder": ("Binder crossing", dict(color="#e377c2", marker="D", ms=7, ls="none", mec="black")),
}


def _label_for(name: str, line: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if name.startswith("binder_crossing"):
        lab, st = _BOUNDARY_STYLE["binder"]
        sizes = line.get("sizes")
        if sizes is not None and len(sizes) == 2:
            lab = f"Binder crossing L={int(sizes[0])}/{int(sizes[1])}"
        return lab, dict(st)
    if name in _BOUNDARY_STYLE:
        lab, st = _BOUNDARY_STYLE[name]
        if name == "level_crossing" and line.get("candidates") is not None:
            c = list(line["candidates"])
            if len(c) == 2:
                lab = f"level crossing {c[0]!s}/{c[1]!s} $h^*$"
        return lab, dict(st)
    return str(line.get("method", name))[:40], dict(color="gray", ls="-.", lw=1.5)


def _edges(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    if x.size == 1:
        d = 0.5 * max(abs(x[0]), 1.0) * 0.1
        return np.array([x[0] - d, x[0] + d])
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])


def draw_boundaries(ax: plt.Axes, boundaries: Mapping[str, Mapping[str, Any]], T_range: tuple[float, float],
                    h_range: tuple[float, float], flagged: Any = None) -> None:
    """Draw boundary lines (dicts from spinsim.analysis.boundaries) on (T, h) axes.

    ``flagged``: bool per field row (the sweep's ``row_warnings`` non-empty): chi-peak points of
    those rows are drawn as hollow grey markers, apart from the line through the reliable ones.
    """
    for name, line in boundaries.items():
        T = np.asarray(line.get("T", []), float).reshape(-1)
        h = np.asarray(line.get("h", []), float).reshape(-1)
        if T.size == 0 or h.size != T.size:
            continue
        ok = np.isfinite(T) & np.isfinite(h)
        lab, st = _label_for(name, line)
        if name == "chi_peak":
            edge = np.asarray(line.get("at_edge", np.zeros(T.size)), bool).reshape(-1)
            err = np.asarray(line.get("T_err", np.zeros(T.size)), float).reshape(-1)
            bad = np.zeros(T.size, bool) if flagged is None else np.asarray(flagged, bool).reshape(-1)
            if bad.size != T.size:
                bad = np.zeros(T.size, bool)
            good = ok & ~edge & ~bad
            if (ok & ~edge & bad).any():
                sel = ok & ~edge & bad
                ax.errorbar(T[sel], h[sel], xerr=err[sel], ls="none", marker="o", mfc="none", mec="#777777",
                            ecolor="#777777", ms=6, capsize=2, label=r"$\chi$ peak, run flagged unreliable", zorder=5)
            if good.any():
                ax.errorbar(T[good], h[good], xerr=err[good], color="black", ecolor="black", capsize=3,
                            marker="o", mfc="white", mec="black", ms=6, lw=1.2, label=lab, zorder=5)
            if (ok & edge).any():
                import matplotlib.patheffects as pe
                ax.plot(T[ok & edge], h[ok & edge], ls="none", marker="o", mfc="none", mec="white", mew=1.5,
                        ms=7, label=r"$\chi$ max at grid edge (no peak)", zorder=5,
                        path_effects=[pe.withStroke(linewidth=3, foreground="black")])
            continue
        if not ok.any():
            continue
        if ok.sum() == 1 and "marker" not in st:
            st.update(marker="*", ms=12, ls="none")
        if name == "mean_field" and ok.sum() == 1:
            st.update(ls="none", marker="*", ms=14, mec="black")
            lab = lab + " (critical point)"
        inside = ok & (T >= T_range[0]) & (T <= T_range[1]) & (h >= h_range[0]) & (h <= h_range[1])
        if not inside.any():   # say where it is rather than silently dropping it
            i = int(np.flatnonzero(ok)[0])
            lab = lab + f": T = {T[i]:.3g}, h = {h[i]:.3g} (off scale)" if ok.sum() == 1 else lab + " (off scale)"
            ax.plot([], [], label=lab, **st)
            continue
        ax.plot(T[ok], h[ok], label=lab, zorder=4, **st)
    ax.set_xlim(*T_range)
    ax.set_ylim(*h_range)


def phase_diagram(sw: Any, observable: str = "susceptibility", ax: plt.Axes | None = None,
                  boundaries: Mapping[str, Mapping[str, Any]] | None = None, legend: bool = True,
                  title: str | None = None, log: bool | None = None) -> plt.Axes:
    """Heat map of ``observable`` over the sweep's (T, h) grid, boundaries on top.

    ``sw``: a :class:`spinsim.phase.SweepResult`. Rows not yet computed are hatched grey.
    Points whose split R-hat exceeds :data:`spinsim.observables.RHAT_WARN` (the sweep's per-point
    convergence flag) are marked with a cross and left out of the colour scale, so that one
    unconverged cell cannot set it (values beyond the scale take its end colours).
    ``log``: logarithmic colour scale (default: for chi and tau_int when they span > 2 decades).
    Boundaries default to ``sw.boundaries``; points outside the grid are clipped.
    """
    from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm

    from spinsim.observables import RHAT_WARN

    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 4.4), layout="constrained")
    Z = np.asarray(sw.data[observable], float)
    T, h = np.asarray(sw.T, float), np.asarray(sw.h, float)
    label, cmap = LABELS.get(observable, (observable, "viridis"))
    cm = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
    rhat = np.asarray(sw.data["rhat"], float) if "rhat" in sw.data else np.full(Z.shape, np.nan)
    flagged = np.isfinite(Z) & (np.nan_to_num(rhat, nan=1.0) > RHAT_WARN)
    finite = Z[np.isfinite(Z) & ~flagged]
    if finite.size == 0:
        finite = Z[np.isfinite(Z)]
    norm = None
    if finite.size:
        if log is None:
            log = observable in ("susceptibility", "projection_susceptibility", "tau_int") and \
                finite.min() > 0 and finite.max() / finite.min() > 100
        if log and finite.min() > 0:
            norm = LogNorm(vmin=finite.min(), vmax=finite.max())
        elif cmap == "RdBu_r" and finite.min() < 0 < finite.max():
            norm = TwoSlopeNorm(vcenter=0.0, vmin=finite.min(), vmax=finite.max())
        else:
            norm = Normalize(vmin=finite.min(), vmax=finite.max())
    Tor, hor = np.argsort(T), np.argsort(h)
    mesh = ax.pcolormesh(_edges(T[Tor]), _edges(h[hor]), np.ma.masked_invalid(Z[np.ix_(hor, Tor)]),
                         cmap=cm, norm=norm, shading="flat", rasterized=True)
    if flagged.any():
        Tc, hc = np.meshgrid(T, h)
        ax.plot(Tc[flagged], hc[flagged], "x", color="#d62728", ms=5, mew=1.0, zorder=3,
                label=f"point not converged (split R-hat > {RHAT_WARN:g}; outside the colour scale)")
    if not np.all(getattr(sw, "done", np.ones(h.size, bool))):
        for k in np.flatnonzero(~np.asarray(sw.done, bool)):
            eh = _edges(h[hor])
            j = int(np.flatnonzero(hor == k)[0])
            ax.fill_between(_edges(T[Tor])[[0, -1]], eh[j], eh[j + 1], facecolor="none", hatch="//",
                            edgecolor="#888888", lw=0)
    plt.colorbar(mesh, ax=ax, label=label, pad=0.02)
    xr = (_edges(T[Tor])[0], _edges(T[Tor])[-1])
    yr = (_edges(h[hor])[0], _edges(h[hor])[-1])
    bnd = boundaries if boundaries is not None else getattr(sw, "boundaries", {}) or {}
    warn = getattr(sw, "row_warnings", None)
    flagged = None if warn is None else np.array([bool(w) for w in warn])
    draw_boundaries(ax, bnd, xr, yr, flagged=flagged)
    ax.set_xlabel(r"temperature $T$ (energy units, $k_B=1$)")
    ax.set_ylabel(r"added field $h$ along $u_i$")
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:       # below the axes, never over the data
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    return ax


def system_title(sw: Any) -> str:
    a = getattr(sw, "attrs", {}) or {}
    if a.get("head"):
        model = os.path.basename(str(a.get("model_id", "")).rstrip("/")) or "model"
        parts = [f"{model} head {a['head']}" + (f" ({a['input_mode']} inputs)" if a.get("input_mode") else "")]
        if a.get("prompt"):
            p = str(a["prompt"])
            parts.append(repr(p if len(p) <= 40 else p[:37] + "..."))
    else:
        parts = [str(a.get("hamiltonian_name") or "sweep")]
    if a.get("method"):
        alg = a.get("solver_algorithm")
        parts.append(f"{a['method']}{'/' + str(alg) if alg else ''}")
    return ", ".join(parts)


def phase_diagrams(sw: Any, stem: str | os.PathLike | None = None,
                   observables: Sequence[str] = ("susceptibility", "magnetization", "specific_heat")) -> plt.Figure | list[Path]:
    """chi, <|m|>, C heat maps side by side (boundaries on each; one shared legend below).

    With ``stem`` the figure is saved as PNG + PDF and the paths returned; else the Figure.
    """
    obs = [o for o in observables if o in sw.data]
    fig, axes = plt.subplots(1, len(obs), figsize=(5.0 * len(obs), 4.3), layout="constrained", squeeze=False)
    for ax, o in zip(axes[0], obs):
        phase_diagram(sw, o, ax=ax, legend=False, title=LABELS.get(o, (o,))[0])
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 3), fontsize=9)
    frac = getattr(sw, "fraction_done", 1.0)
    fig.suptitle(system_title(sw) + ("" if frac >= 1 else f"  [{100 * frac:.0f}% of rows done]"))
    return save(fig, stem) if stem is not None else fig
