"""Figures (matplotlib, Agg backend; every figure is written as PNG and PDF).

* :func:`phase_diagram`: a heat map of one observable over the (T, h) grid of a sweep, with the
  phase boundaries drawn and labelled by method in a legend; :func:`phase_diagrams` draws
  chi, <|m|> and C side by side.
* :func:`observable_curves`: observables against T with error bars, one curve per field h.
* :func:`head_grid`: a layer x head heat map of a per-head value (Pearson r, a family-wise p,
  a classification score), diverging colormap centred on a reference value, cells labelled
  ``L{layer}H{head}``.
* :func:`plot_file`: every figure a spinsim HDF5 file supports (``spinsim plot``).

Axes: T in energy units (k_B = 1) on x, the added field h (energy units, along u_i) on y.
What a head's phase diagram means (SPEC section 1): small h, low T: the head's own order wins
(ferro heads: all spins along the top eigenvector of M_s, the "repetition" collapse); large h:
the prompt field wins; the boundaries mark the competition.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["STYLE", "save", "phase_diagram", "phase_diagrams", "observable_curves", "head_grid",
           "plot_sweep", "plot_result", "plot_file", "plot_files", "LABELS"]

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 11, "axes.titlesize": 12,
    "axes.labelsize": 11, "legend.fontsize": 9, "xtick.labelsize": 10, "ytick.labelsize": 10,
    "axes.grid": False, "legend.framealpha": 0.85, "pdf.fonttype": 42,
}

#: observable -> (axis label, colormap)
LABELS: dict[str, tuple[str, str]] = {
    "susceptibility": (r"susceptibility $\chi$", "viridis"),
    "magnetization": (r"magnetisation $\langle|m|\rangle$", "cividis"),
    "specific_heat": (r"specific heat $C$ per site", "magma"),
    "energy": (r"energy per site $\langle E\rangle/N$", "plasma"),
    "binder": (r"Binder cumulant $U$", "viridis"),
    "projection": (r"projection $\langle m\cdot u\rangle$", "RdBu_r"),
    "projection_susceptibility": (r"$\chi_u = N(\langle m_u^2\rangle-\langle m_u\rangle^2)/T$", "viridis"),
    "tau_int": (r"$\tau_{\rm int}$ (sweeps)", "viridis"),
}

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


def save(fig: plt.Figure, stem: str | os.PathLike, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` (creating folders) and close the figure."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = stem.with_suffix(f".{fmt}")
        fig.savefig(p, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def _edges(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    if x.size == 1:
        d = 0.5 * max(abs(x[0]), 1.0) * 0.1
        return np.array([x[0] - d, x[0] + d])
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])


def draw_boundaries(ax: plt.Axes, boundaries: Mapping[str, Mapping[str, Any]], T_range: tuple[float, float],
                    h_range: tuple[float, float]) -> None:
    """Draw boundary lines (dicts from spinsim.analysis.boundaries) on (T, h) axes."""
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
            good = ok & ~edge
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
    ``log``: logarithmic colour scale (default: for chi and tau_int when they span > 2 decades).
    Boundaries default to ``sw.boundaries``; points outside the grid are clipped.
    """
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 4.4), layout="constrained")
    Z = np.asarray(sw.data[observable], float)
    T, h = np.asarray(sw.T, float), np.asarray(sw.h, float)
    label, cmap = LABELS.get(observable, (observable, "viridis"))
    cm = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
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
    Tor, hor = np.argsort(T), np.argsort(h)
    mesh = ax.pcolormesh(_edges(T[Tor]), _edges(h[hor]), np.ma.masked_invalid(Z[np.ix_(hor, Tor)]),
                         cmap=cm, norm=norm, shading="flat", rasterized=True)
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
    draw_boundaries(ax, bnd, xr, yr)
    ax.set_xlabel(r"temperature $T$ (energy units, $k_B=1$)")
    ax.set_ylabel(r"added field $h$ along $u_i$")
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    return ax


def _system_title(sw: Any) -> str:
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
    fig.suptitle(_system_title(sw) + ("" if frac >= 1 else f"  [{100 * frac:.0f}% of rows done]"))
    return save(fig, stem) if stem is not None else fig


def observable_curves(sw: Any, stem: str | os.PathLike | None = None,
                      observables: Sequence[str] = ("energy", "specific_heat", "magnetization", "susceptibility"),
                      max_curves: int = 8) -> plt.Figure | list[Path]:
    """Observables against T with one-sigma error bars, one curve per field h (at most
    ``max_curves``, evenly picked). ``sw`` may also be a :class:`spinsim.Result` (one curve)."""
    with plt.rc_context(STYLE):
        T = np.asarray(sw.T, float)
        if hasattr(sw, "data"):
            h = np.asarray(sw.h, float)
            rows = [k for k in range(h.size) if sw.done[k]]
            if len(rows) > max_curves:
                picked = {rows[int(round(i))] for i in np.linspace(0, len(rows) - 1, max_curves - 1)}
                picked.add(min(rows, key=lambda k: abs(h[k])))      # always show the smallest |h|
                rows = sorted(picked, key=lambda k: h[k])
            get = lambda name, k: np.asarray(sw.data[name][k], float) if name in sw.data else None  # noqa: E731
            curves = [(f"h = {h[k]:.3g}", k) for k in rows]
            cmap = plt.get_cmap("viridis")
            colors = [cmap(x) for x in np.linspace(0.0, 0.9, max(len(curves), 1))]
        else:
            get = lambda name, k: None if getattr(sw, name, None) is None else np.asarray(getattr(sw, name), float)  # noqa: E731
            curves = [(f"{sw.method}/{sw.backend}", 0)]
            colors = ["C0"]
        obs = [o for o in observables if get(o, curves[0][1] if curves else 0) is not None] if curves else []
        ncol = 2 if len(obs) > 1 else 1
        nrow = int(np.ceil(len(obs) / ncol)) or 1
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.6 * nrow), layout="constrained",
                                 squeeze=False)
        order = np.argsort(T)
        for ax, o in zip(axes.flat, obs):
            for (lab, k), c in zip(curves, colors):
                y, e = get(o, k), get(o + "_err", k)
                if y is None:
                    continue
                ax.errorbar(T[order], y[order], yerr=None if e is None else np.nan_to_num(e[order]), color=c,
                            marker="o", ms=3.5, lw=1.3, capsize=2.5, label=lab)
            ax.set_xlabel(r"temperature $T$ ($k_B=1$)")
            ax.set_ylabel(LABELS.get(o, (o,))[0])
        for ax in list(axes.flat)[len(obs):]:
            ax.set_visible(False)
        if curves and obs:
            axes.flat[0].legend(fontsize=8, ncol=2 if len(curves) > 4 else 1)
        fig.suptitle(_system_title(sw) if hasattr(sw, "data") else f"{sw.method} result, n_free = {sw.n_free}")
        return save(fig, stem) if stem is not None else fig


def head_grid(values: Any, ax: plt.Axes | None = None, label: str = "value", center: float | None = 0.0,
              cmap: str = "RdBu_r", annotate: bool = True, mark: Any = None, mark_label: str = "survives",
              vmin: float | None = None, vmax: float | None = None, fmt: str = "{:.2f}",
              title: str | None = None, symmetric: bool = True, annot: Any = None) -> plt.Axes:
    """Layer x head heat map of a per-head value, shape (n_layers, n_heads), layer 0 at the top.

    Diverging ``cmap`` centred on ``center`` (None: plain linear scale). ``symmetric``: the same
    range on both sides of the centre (right for r around 0); ``symmetric=False`` stretches each
    side to its own data extreme (for a family-wise p pass ``-log10(p)`` with
    ``center=-log10(0.05)``, or p itself with ``center=0.05``). Each cell shows its head label
    ``L{layer}H{head}`` and, with ``annotate``, the value. ``mark`` (bool, same shape) outlines
    cells, e.g. heads that survive a family-wise correction. ``annot`` (same shape) gives the
    numbers printed in the cells instead of ``values`` (e.g. p when the colour shows -log10 p).
    """
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.patches import Rectangle

    V = np.asarray(values, float)
    if V.ndim != 2:
        raise ValueError(f"head_grid values must have shape (n_layers, n_heads), got {V.shape}")
    n_layers, n_heads = V.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.5, 0.62 * n_heads + 2.0), max(3.0, 0.42 * n_layers + 1.4)),
                             layout="constrained")
    fin = V[np.isfinite(V)]
    lo = vmin if vmin is not None else (float(fin.min()) if fin.size else 0.0)
    hi = vmax if vmax is not None else (float(fin.max()) if fin.size else 1.0)
    if center is not None and symmetric:
        span = max(abs(hi - center), abs(center - lo), 1e-12)
        norm = TwoSlopeNorm(vcenter=center, vmin=center - span if vmin is None else lo,
                            vmax=center + span if vmax is None else hi)
    elif center is not None:
        eps = 1e-9 * max(1.0, abs(center))
        norm = TwoSlopeNorm(vcenter=center, vmin=min(lo, center - eps), vmax=max(hi, center + eps))
    else:
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    cm = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(V), cmap=cm, norm=norm, aspect="auto", interpolation="nearest")
    plt.colorbar(im, ax=ax, label=label, pad=0.02)
    ax.set_xticks(range(n_heads), [f"H{j}" for j in range(n_heads)])
    ax.set_yticks(range(n_layers), [f"L{i}" for i in range(n_layers)])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    small = n_heads > 16 or n_layers > 32
    fs = 5.5 if small else 7
    shown = V if annot is None else np.asarray(annot, float)
    if annotate and not (n_heads * n_layers > 600):
        for i in range(n_layers):
            for j in range(n_heads):
                v = V[i, j]
                rgba = cm(norm(v)) if np.isfinite(v) else (0.87, 0.87, 0.87, 1)
                lum = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                a = shown[i, j]
                txt = _head_label(i, j) + ("" if not np.isfinite(a) else "\n" + fmt.format(a))
                ax.text(j, i, txt, ha="center", va="center", fontsize=fs,
                        color="white" if lum < 0.5 else "black")
    if mark is not None:
        Mk = np.asarray(mark, bool)
        first = True
        for i, j in zip(*np.nonzero(Mk)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=3.2,
                                   label=mark_label if first else None))
            ax.add_patch(Rectangle((j - 0.44, i - 0.44), 0.88, 0.88, fill=False, ec="#ffd700", lw=1.4))
            first = False
        if not first:
            fig = ax.figure
            if fig.get_layout_engine() is not None and len(fig.axes) <= 2:
                fig.legend(*ax.get_legend_handles_labels(), loc="outside lower left", fontsize=8, frameon=False)
            else:
                ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def _head_label(layer: int, head: int) -> str:
    try:   # the transformer side owns the one labelling function once it exists
        from spinsim.models.heads import head_label
        return head_label(layer, head)
    except Exception:
        return f"L{layer}H{head}"


# ----------------------------------------------------------------------------- files
def plot_sweep(sw: Any, outdir: str | os.PathLike, stem: str = "sweep") -> list[Path]:
    """Phase diagrams (chi, <|m|>, C) and observable-vs-T curves of a sweep."""
    out = Path(outdir)
    with plt.rc_context(STYLE):
        paths = phase_diagrams(sw, out / f"{stem}_phase_diagram")
        if "projection" in sw.data and np.any(np.isfinite(sw.data["projection"])):
            paths += phase_diagrams(sw, out / f"{stem}_phase_diagram_projection",
                                    observables=("projection", "projection_susceptibility", "binder"))
        paths += observable_curves(sw, out / f"{stem}_curves")
    return paths


def plot_result(res: Any, outdir: str | os.PathLike, stem: str = "result") -> list[Path]:
    return observable_curves(res, Path(outdir) / f"{stem}_curves")


def _plot_head_grids(path: Path, heads: list[tuple[str, np.ndarray, str]], outdir: Path) -> list[Path]:
    """One layer x head grid per dataset. Probabilities (units 'probability' or names *_p, *_q)
    are drawn as -log10 p, white at p = 0.05; correlations (r, rho) diverge around 0 with the heads
    whose family-wise p (``fwer_p`` beside them) is below 0.05 outlined; other values use a
    sequential scale."""
    written: list[Path] = []
    by_group: dict[str, dict[str, np.ndarray]] = {}
    for name, V, _ in heads:
        grp, _, leaf = name.rpartition("/")
        by_group.setdefault(grp, {})[leaf] = V
    for name, V, units in heads:
        grp, _, leaf = name.rpartition("/")
        V = np.asarray(V, float)
        kw: dict[str, Any] = {"label": leaf}
        is_p = units == "probability" or leaf.endswith(("_p", "_q")) or leaf in ("p", "q")
        if is_p:
            kw.update(label=f"{leaf} (log scale; white at 0.05)", center=-np.log10(0.05), symmetric=False,
                      cmap="RdBu_r", annot=V, fmt="{:.2g}")
            V = -np.log10(np.clip(V, 1e-300, 1.0))
        elif leaf.endswith(("_r", "_rho")) or leaf in ("r", "rho"):
            kw.update(center=0.0, cmap="RdBu_r")
            fw = by_group.get(grp, {}).get("fwer_p")
            if fw is not None and np.shape(fw) == V.shape:
                kw.update(mark=np.asarray(fw) < 0.05, mark_label="family-wise p < 0.05 (permutation max-|r|)")
        else:
            kw.update(center=None, cmap="viridis")
        with plt.rc_context(STYLE):
            ax = head_grid(V, title=f"{path.stem}: {name}", **kw)
            if is_p:                                   # colour bar ticks as p values
                cb = ax.images[0].colorbar
                ps = np.array([1.0, 0.3, 0.1, 0.05, 0.01, 1e-3, 1e-4, 1e-6])
                lo, hi = cb.norm.vmin, cb.norm.vmax
                ticks = [(-np.log10(q), f"{q:g}") for q in ps if lo <= -np.log10(q) <= hi]
                if ticks:
                    cb.set_ticks([t for t, _ in ticks], labels=[lab for _, lab in ticks])
            written += save(ax.figure, outdir / f"{path.stem}_{name.replace('/', '_')}")
    return written


def _head_datasets(f: Any) -> list[tuple[str, np.ndarray, str]]:
    """Every 2-D numeric dataset whose dims are (layer, head): (name, values, units)."""
    found: list[tuple[str, np.ndarray, str]] = []

    def visit(name: str, obj: Any) -> None:
        import h5py
        if isinstance(obj, h5py.Dataset) and obj.ndim == 2 and "dims" in obj.attrs:
            dims = [d.decode() if isinstance(d, bytes) else str(d) for d in obj.attrs["dims"]]
            if dims == ["layer", "head"] and obj.dtype.kind in "fiub":
                u = obj.attrs.get("units", "")
                found.append((name, obj[()], u.decode() if isinstance(u, bytes) else str(u)))
    f.visititems(visit)
    return found


def plot_file(path: str | os.PathLike, outdir: str | os.PathLike) -> list[Path]:
    """Every figure a spinsim file supports; returns the written paths (PNG and PDF)."""
    return plot_files([path], outdir)


def _linear_size(sw: Any) -> int:
    import re
    name = str(sw.attrs.get("hamiltonian_name", ""))
    m = re.search(r"_(\d+)(?:x\d+)*(?:_|$)", name)
    return int(m.group(1)) if m else int(sw.attrs.get("n_sites", 0))


def plot_files(paths: Iterable[str | os.PathLike], outdir: str | os.PathLike) -> list[Path]:
    """Figures for several files; sweeps of one system at several sizes on one grid also get
    their Binder crossings (drawn on each phase diagram)."""
    from spinsim.io import SpinsimFileError, from_attr, open_spinsim
    from spinsim.result import Result
    from spinsim.phase import read_sweep

    from spinsim.analysis.boundaries import binder_crossing_line

    paths = [Path(p) for p in paths]
    outdir = Path(outdir)
    written: list[Path] = []
    sweeps: list[tuple[Path, Any]] = []
    for p in paths:
        with open_spinsim(p) as f:
            kind = from_attr(f.attrs.get("spinsim_kind"))
            heads = _head_datasets(f)
            has_result = "result" in f
        if kind == "sweep":
            sweeps.append((p, read_sweep(p)))
        elif has_result:
            written += plot_result(Result.from_hdf5(p), outdir, stem=p.stem)
        written += _plot_head_grids(p, heads, outdir)
        if kind != "sweep" and not has_result and not heads:
            raise SpinsimFileError(f"{p}: nothing to plot in a spinsim {kind!r} file "
                                   "(no /sweep, /result or (layer, head) datasets)")
    extra: dict[str, dict[str, Any]] = {}
    if len(sweeps) >= 2:
        fam: dict[int, Any] = {}
        for _, sw in sweeps:
            fam[_linear_size(sw)] = sw
        try:
            if len(fam) == len(sweeps) and all(sw.complete for sw in fam.values()):
                sym = all("coexistence" in sw.boundaries for sw in fam.values())
                extra = binder_crossing_line(fam, fields="zero" if sym else "all")
        except ValueError:
            extra = {}
    for p, sw in sweeps:
        if extra:
            sw.boundaries = {**sw.boundaries, **extra}
        written += plot_sweep(sw, outdir, stem=p.stem)
    return written
