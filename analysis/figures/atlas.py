"""Figures of a phase atlas (:mod:`spinsim.analysis.atlas_store`, summarised by
:mod:`spinsim.analysis.atlas_summary`): small multiples of every head's chi(T) per field, layer x
head maps of T_c, coupling class and ordering kind, T_c(N) with its fits, and the prediction
tests. Flagged points (error bars not reliable at the sweep cap) are drawn as red crosses and
never as part of a curve's peak; T and h in energy units (k_B = 1)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import LogLocator, NullLocator

from ..atlas_store import Atlas
from ..atlas_summary import CLASS_RULE, KIND_RULE, disorder_average
from .head_maps import head_grid
from .style import STYLE, plt, save

__all__ = ["chi_small_multiples", "atlas_maps", "tc_vs_length", "draw_tc_vs_length", "prediction_figure", "atlas_figures"]

KIND_COLOURS = {"uniform": "#1b9e77", "staggered": "#d95f02", "pinned": "#7570b3", "disordered": "#bdbdbd",
                "unresolved": "#000000", "": "white"}
CLASS_COLOURS = {"ferro": "#d73027", "antiferro": "#4575b4", "mixed": "#fee090", "": "white"}


def _layout(a: Atlas) -> tuple[int, int, list[tuple[int, int]]]:
    """Panel grid: layers x heads for model heads, else one row per 8 systems."""
    if np.all(a.layer >= 0):
        rows, cols = int(a.layer.max()) + 1, int(a.head_index.max()) + 1
        return rows, cols, [(int(l), int(h)) for l, h in zip(a.layer, a.head_index)]
    cols = min(8, len(a.heads))
    rows = -(-len(a.heads) // cols)
    return rows, cols, [divmod(i, cols) for i in range(len(a.heads))]


def chi_small_multiples(a: Atlas, stem: str | os.PathLike) -> list[Path]:
    """Every head's chi(T) at each field h (colour), largest length, sample-averaged; flagged
    points as red crosses; log y; shared T axis."""
    rows, cols, pos = _layout(a)
    last = int(np.argmax(a.lengths))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols + 1, 1.1 * rows + 1), squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        colours = plt.cm.viridis(np.linspace(0, 0.9, a.h.size))
        pad = 0.04 * (a.T.max() - a.T.min()) or 0.05 * a.T.max()
        t_lo, t_hi = a.T.min() - pad, a.T.max() + pad
        bottom: dict[int, int] = {}                   # T tick labels on each column's lowest panel only
        for r, c in pos:
            bottom[c] = max(bottom.get(c, r), r)
        for i, (r, c) in enumerate(pos):
            ax = axes[r, c]
            ax.set_axis_on()
            av = disorder_average(a, i)
            chi = av.values["susceptibility"][last]
            for k in range(a.h.size):
                ok = ~av.flagged[last, k]
                ax.plot(a.T[ok], chi[k, ok], "-", color=colours[k], lw=0.9)
                ax.plot(a.T[~ok], chi[k, ~ok], "x", color="red", ms=3, mew=0.8)
            ax.set_xlim(t_lo, t_hi)      # the same T axis everywhere (sharex costs O(panels^2) per limit change)
            ax.set_yscale("log")
            # few ticks, no minor ones: matplotlib's default log locators made the 270-panel SmolLM2
            # figure take ~2.5 minutes to lay out and save (now seconds)
            ax.yaxis.set_major_locator(LogLocator(numticks=3))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_locator(NullLocator())
            ax.tick_params(labelsize=6, length=2, labelbottom=r == bottom.get(c, r))
            ax.set_title(a.heads[i], fontsize=7, pad=1)
            if np.isfinite(a.summary.get("T_c", np.full(len(a.heads), np.nan))[i]):
                ax.axvline(a.summary["T_c"][i], color="k", lw=0.5, ls=":")
        fig.suptitle(r"susceptibility $\chi(T)$ of every head (colour: field h from "
                     f"{a.h.min():g} to {a.h.max():g}; red x: flagged; dotted: T_c)", fontsize=10)
        fig.supxlabel("temperature T (k_B = 1)", fontsize=9)
        if rows * cols <= 48:
            fig.tight_layout(rect=(0, 0, 1, 0.97))
        else:           # tight_layout over hundreds of panels costs tens of seconds: fixed margins
            fig.subplots_adjust(left=0.03, right=0.99, bottom=0.7 / (1.1 * rows + 1), top=1 - 1.0 / (1.1 * rows + 1),
                                wspace=0.45, hspace=0.55)
        return save(fig, stem)


def _categorical_grid(ax: plt.Axes, labels: np.ndarray, colours: dict[str, str], title: str, shape: tuple[int, int],
                      pos: list[tuple[int, int]]) -> None:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    names = [k for k in colours if k]
    grid = np.full(shape, len(names))
    for (r, c), lab in zip(pos, labels):
        grid[r, c] = names.index(lab) if lab in names else len(names)
    ax.imshow(grid, cmap=ListedColormap([colours[k] for k in names] + ["white"]), vmin=-0.5,
              vmax=len(names) + 0.5, aspect="auto")
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Patch(color=colours[k], label=k) for k in names], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))


def atlas_maps(a: Atlas, stem: str | os.PathLike) -> list[Path]:
    """Layer x head maps of T_c at h = 0, the coupling class and the ordering kind (model heads)."""
    rows, cols, pos = _layout(a)
    s = a.summary
    Tc = np.full((rows, cols), np.nan)
    for (r, c), v in zip(pos, s["T_c"]):
        Tc[r, c] = v
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(17, max(5, 0.28 * rows + 2)))
        head_grid(Tc, ax=axes[0], label="T_c at h = 0 (white: none in grid)", center=1.0, cmap="RdBu_r",
                  annotate=cols * rows <= 300, symmetric=False, title="T_c (red: ordered at the model's T = 1)",
                  fmt="{:.2f}")
        _categorical_grid(axes[1], np.asarray(s["coupling_class"]), CLASS_COLOURS, "coupling class", (rows, cols), pos)
        _categorical_grid(axes[2], np.asarray(s["kind"]), KIND_COLOURS, "ordering kind (h = 0, lowest unflagged T)",
                          (rows, cols), pos)
        fig.text(0.01, 0.005, f"class: {CLASS_RULE}\nkind: {KIND_RULE}", fontsize=7, va="bottom")
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        return save(fig, stem)


def tc_vs_length(a: Atlas, stem: str | os.PathLike, max_heads: int = 12) -> list[Path]:
    """T_c(N) (chi peak at h = 0, sample-averaged) with the weighted power-law fit of the summary."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        draw_tc_vs_length(ax, a, max_heads)
        fig.tight_layout()
        return save(fig, stem)


def draw_tc_vs_length(ax: plt.Axes, a: Atlas, max_heads: int = 12) -> None:
    """T_c(N) of up to ``max_heads`` heads with their errors, and for each the line of the fit the
    summary reports: ``T_c = exp(tc_power_intercept) N^tc_power`` (the weighted least-squares fit of
    :func:`spinsim.analysis.atlas_contexts.tc_scaling`, the same parameters; legend p +- its error)."""
    s = a.summary
    N = a.lengths.astype(float)
    idx = [i for i in range(len(a.heads)) if np.isfinite(s["T_c_length"][i]).sum() >= 1][:max_heads]
    xs = np.geomspace(N.min(), N.max(), 50)
    for j, i in enumerate(idx):
        col = plt.cm.tab10(j % 10)
        ax.errorbar(N, s["T_c_length"][i], yerr=s["T_c_length_err"][i], fmt="o", color=col, ms=4,
                    label=f"{a.heads[i]}: p = {s['tc_power'][i]:.2f} +- {s['tc_power_err'][i]:.2f}")
        p, c = s["tc_power"][i], s.get("tc_power_intercept", np.full(len(a.heads), np.nan))[i]
        if np.isfinite(p) and np.isfinite(c):
            ax.plot(xs, np.exp(c) * xs ** p, "-", color=col, lw=0.8, gid=f"fit {a.heads[i]}")
    ax.set_xscale("log")
    ax.set_xlabel("context length N (tokens)")
    ax.set_ylabel("T_c (chi peak at h = 0)")
    ax.set_title(f"T_c(N) with the weighted fit exp(c) N^p, normalisation: {a.attrs.get('normalisation', 'plain')}",
                 fontsize=10)
    if idx:
        ax.legend(fontsize=7)


def prediction_figure(a: Atlas, inputs: dict[str, np.ndarray], tests: dict[str, Any], shares: dict[str, np.ndarray],
                      stem: str | os.PathLike) -> list[Path]:
    """The three prediction tests: (a) ablation effect vs closeness to the boundary, (b) class
    shares per layer, (c) class vs sign of the logit-gap correlation; each panel titled with its
    effect size, permutation p and verdict."""
    s = a.summary
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
        ax = axes[0]
        ok = np.isfinite(s["model_distance"]) & np.isfinite(inputs["ablation_effect"])
        ax.scatter(s["model_distance"][ok], inputs["ablation_effect"][ok], s=10, c="k", label="T_c in the grid")
        bound = np.asarray(s.get("model_distance_bound", np.full(ok.size, np.nan)), float)
        cen = ~ok & np.isfinite(bound) & np.isfinite(inputs["ablation_effect"])
        if cen.any():
            ax.scatter(bound[cen], inputs["ablation_effect"][cen], s=18, marker=">", c="grey",
                       label=f"T_c beyond the grid ({int(cen.sum())}, censored: distance > the edge's)")
            ax.legend(fontsize=7)
        ax.set_xlabel(r"distance of T = 1 from the head's T_c, $|\ln T_c|$")
        ax.set_ylabel("mean |ablation shift| of the logit gap")
        ax.set_title(_title("(a)", tests["a"]), fontsize=9)
        ax = axes[1]
        bottom = np.zeros(shares["layer"].size)
        for c in ("ferro", "antiferro", "mixed"):
            ax.bar(shares["layer"], shares[c], bottom=bottom, color=CLASS_COLOURS[c], label=c)
            bottom += shares[c]
        ax.set_xlabel("layer")
        ax.set_ylabel("share of heads")
        ax.legend(fontsize=7)
        ax.set_title(_title("(b)", tests["b"]), fontsize=9)
        ax = axes[2]
        cls = np.asarray(s["coupling_class"])
        for j, c in enumerate(("ferro", "antiferro", "mixed")):
            r = inputs["gap_r"][cls == c]
            ax.scatter(np.full(r.size, j) + np.linspace(-0.2, 0.2, max(r.size, 1))[:r.size], r, s=10,
                       color=CLASS_COLOURS[c])
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks([0, 1, 2], ["ferro", "antiferro", "mixed"])
        ax.set_ylabel("logit-gap Pearson r (corrected mode)")
        ax.set_title(_title("(c)", tests["c"]), fontsize=9)
        fig.tight_layout()
        return save(fig, stem)


def _title(tag: str, t: Any) -> str:
    cen = f" ({t.n_censored} censored)" if getattr(t, "n_censored", 0) else ""
    return (f"{tag} {t.effect_name} = {t.effect:.2f} [{t.effect_ci[0]:.2f}, {t.effect_ci[1]:.2f}], "
            f"p = {t.p_value:.3g}, n = {t.n}{cen}\n{t.verdict}")


def atlas_figures(a: Atlas, out: str | os.PathLike) -> list[Path]:
    """Every atlas figure that the file supports into the folder ``out`` (head labels, the maps
    when the systems are model heads, T_c(N) with two lengths or more)."""
    out = Path(out)
    paths = chi_small_multiples(a, out / "atlas_chi")
    if a.summary and np.all(a.layer >= 0):
        paths += atlas_maps(a, out / "atlas_maps")
    if a.summary and a.lengths.size >= 2:
        paths += tc_vs_length(a, out / "atlas_tc_length")
    return paths

