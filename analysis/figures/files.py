"""Every figure a spinsim HDF5 file supports (``spinsim plot``): sweeps (phase diagrams and
curves, Binder crossings across sizes), solver results (curves) and (layer, head) datasets."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .curves import observable_curves
from .head_maps import head_grid
from .phase import phase_diagrams
from .style import STYLE, plt, save

__all__ = ["plot_sweep", "plot_result", "plot_file", "plot_files"]


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
