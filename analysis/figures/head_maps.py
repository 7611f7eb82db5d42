"""Layer x head heat maps of a per-head value (:func:`head_grid`): Pearson r, a family-wise p,
a classification score; diverging colormap centred on a reference value, cells labelled
``L{layer}H{head}``."""
from __future__ import annotations

from typing import Any

import numpy as np

from spinsim.models.heads import head_label

from .style import plt

__all__ = ["head_grid"]

def head_grid(values: Any, ax: plt.Axes | None = None, label: str = "value", center: float | None = 0.0,
              cmap: str = "RdBu_r", annotate: bool = True, mark: Any = None, mark_label: str = "survives",
              vmin: float | None = None, vmax: float | None = None, fmt: str = "{:.2f}",
              title: str | None = None, symmetric: bool = True, annot: Any = None,
              legend: bool = True) -> plt.Axes:
    """Layer x head heat map of a per-head value, shape (n_layers, n_heads), layer 0 at the top.

    Diverging ``cmap`` centred on ``center`` (None: plain linear scale). ``symmetric``: the same
    range on both sides of the centre (right for r around 0); ``symmetric=False`` stretches each
    side to its own data extreme (for a family-wise p pass ``-log10(p)`` with
    ``center=-log10(0.05)``, or p itself with ``center=0.05``). Each cell shows its head label
    ``L{layer}H{head}`` and, with ``annotate``, the value. ``mark`` (bool, same shape) outlines
    cells, e.g. heads that survive a family-wise correction. ``annot`` (same shape) gives the
    numbers printed in the cells instead of ``values`` (e.g. p when the colour shows -log10 p).
    ``legend``: a legend for ``mark`` below the figure (outside the cells); False leaves it to the
    caller (several panels: one legend for all).
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
                txt = head_label(i, j) + ("" if not np.isfinite(a) else "\n" + fmt.format(a))
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
        if not first and legend:
            fig = ax.figure
            if fig.get_layout_engine() is not None:
                fig.legend(*ax.get_legend_handles_labels(), loc="outside lower left", fontsize=8, frameon=False)
            else:
                ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return ax
