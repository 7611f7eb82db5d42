"""Observables against temperature with error bars, one curve per field (:func:`observable_curves`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .phase import system_title
from .style import LABELS, STYLE, plt, save

__all__ = ["observable_curves"]

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
        fig.suptitle(system_title(sw) if hasattr(sw, "data") else f"{sw.method} result, n_free = {sw.n_free}")
        return save(fig, stem) if stem is not None else fig
