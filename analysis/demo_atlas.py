"""The demo's phase atlas: every head's (T, h) diagram on the demo's first prompt, at a quick grid.

``spinsim demo`` surveys the phases of every head with :func:`spinsim.analysis.atlas_run.run_atlas`
(the machinery of ``spinsim atlas``): each head on the prompt is the SPEC section 1 spin system
(every token a free O(d_model) spin of length |x_i|, the exact rotary coupling of Llama-family
heads, the prompt field h x_i/|x_i| as the field axis), heat bath in the exact reduced spin space,
one chain per temperature, a temperature's sweeps doubled once while the short-run rule or split
R-hat flags it (:data:`~spinsim.analysis.atlas_run.ADAPT_RULE`; none with ``--quick``). The grid
(:data:`GRID`, :data:`GRID_QUICK`) brackets the model's own point T = 1 at h = 0 (T_c, the ordering
kind, the model's side). No field row: a field that pins the spins to their tokens is of the scale of
each head's own couplings (h ~ 85-425 for SmolLM2's L7H4 on the demo prompt, against 1.5 tried
first, which changed chi by 0.5 %), so the field direction is the single head's (T, h) diagram and
``spinsim atlas --field``. Written to
``out/atlas.h5`` row by row (resumable after Ctrl-C or kill -9), summarised per head
(:func:`~spinsim.analysis.atlas_summary.summarize`), drawn as small multiples of chi(T) and
layer x head maps of T_c, coupling class and ordering kind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

__all__ = ["AtlasGrid", "GRID", "GRID_QUICK", "demo_atlas", "atlas_blocks"]


class AtlasGrid(NamedTuple):
    """The demo atlas's grid: temperatures T (n_T,) and prompt fields h (n_h,) in energy units
    (k_B = 1), the first try's measured sweeps per chain and the doubling's cap."""

    T: np.ndarray
    h: np.ndarray
    sweeps: int
    max_sweeps: int


#: the default demo: 6 T (log-spaced 0.25 .. 5: on SmolLM2's prompt a grid 0.25 .. 2.5 held only
#: 73 of the 270 heads' chi peaks) at h = 0, 100 measured sweeps per chain doubled at most once
GRID = AtlasGrid(np.geomspace(0.25, 5.0, 6), np.array([0.0]), 100, 200)
#: ``--quick``: 4 T at h = 0, 100 sweeps, no doubling (flagged points stay flagged, and are shown so)
GRID_QUICK = AtlasGrid(np.geomspace(0.25, 5.0, 4), np.array([0.0]), 100, 100)


def demo_atlas(lm: Any, prompt: str, out: Path, settings: Any, log: Callable[[str], None] | None = None) -> tuple[Any, dict[str, str]]:
    """Run (or resume) the atlas of every head of ``lm`` on ``prompt`` into ``out/atlas.h5``,
    summarise it and draw its figures into ``out``. ``settings``: the demo's
    :class:`~spinsim.analysis.demo.DemoSettings` (seed, quick, device, executor, progress).

    Returns (the :class:`~spinsim.analysis.atlas_store.Atlas` with its summary, figures: name ->
    PNG path). Raises :class:`~spinsim.analysis.atlas_run.AtlasMismatchError` when ``atlas.h5``
    holds an atlas with other parameters (the demo's own parameter check runs first)."""
    from spinsim.locks import hold

    from .atlas_heads import ModelHeads
    from .atlas_run import run_atlas, run_atlas_task
    from .atlas_store import commit
    from .atlas_summary import summarize
    from .figures.atlas import atlas_figures

    T, h, sweeps, cap = GRID_QUICK if settings.quick else GRID
    executor = None
    if settings.executor == "dask":
        from spinsim.executors import make_executor
        executor = make_executor("dask", run_atlas_task, scheduler=settings.scheduler)
    tokens = lm.encode(prompt)
    source = ModelHeads(lm, "all", [[tokens]])
    path = out / "atlas.h5"
    a = run_atlas(source, T, h, out=path, seed=settings.seed, sweeps=sweeps, max_sweeps=cap, executor=executor,
                  progress=settings.progress, attrs={"model_id": lm.model_id, "weights_sha256": lm.weights_sha256,
                                                     "prompt": prompt, "contexts": "prompt", "input": "residual",
                                                     "rotary": "auto", "written_by": "spinsim demo"},
                  n_chains=1, algorithm="heatbath", backend=settings.device, reduce=None,
                  bins="none")   # no binned series: at 6 T x1.82 apart the histograms do not overlap for MBAR
    summarize(a, seed=settings.seed)
    with hold(path, "this atlas"):
        commit(path, a)
    figs = {p.stem: p.name for p in atlas_figures(a, out) if p.suffix == ".png"}     # relative to out, as the report's
    if log is not None:
        log(f"atlas: {len(a.heads)} heads x {a.h.size} fields x {a.T.size} temperatures -> {path}")
    return a, figs


def atlas_blocks(a: Any, figures: dict[str, str]) -> list[Any]:
    """The report section of the demo's atlas (``write_report`` blocks): what was run, what it
    found per head (T_c, ordering kind, coupling class, the model's side at T = 1), the flagged
    points, and the figures."""
    from .atlas_summary import CLASS_RULE, KIND_RULE

    s = a.summary
    n = len(a.heads)
    found = np.isfinite(np.asarray(s["T_c"], float))
    kinds = {k: int(np.sum(s["kind"] == k)) for k in ("uniform", "staggered", "pinned", "disordered", "unresolved")}
    classes = {k: int(np.sum(s["coupling_class"] == k)) for k in ("ferro", "antiferro", "mixed")}
    ordered = int(np.sum(s["model_side"] == "ordered"))
    flagged, points = int(a.flagged.sum()), int(a.flagged.size)
    sw = np.asarray(a.point_sweeps)[a.done]
    by_sweeps = ", ".join(f"{int(np.sum(sw == v))} at {int(v)}" for v in np.unique(sw))
    tc = np.asarray(s["T_c"], float)[found]
    edge = int(np.sum(np.asarray(s["T_c_at_edge"], bool) & ~found))
    other = n - int(found.sum()) - edge
    text = [
        f"Every head ({n}) on the first prompt, as a spin system of {int(np.nanmax(a.facts['n_free']))} free spins "
        f"(the exact rotary coupling for rotary heads), heat bath in the exact reduced spin space, one chain per "
        f"point, on a quick grid of {a.T.size} temperatures ({a.T.min():g} to {a.T.max():g}, energy units, k_B = 1) "
        f"at prompt field h = {', '.join(f'{x:g}' for x in a.h)} (a field that pins the spins to their tokens is of "
        "the scale of each head's couplings: see the single head's (T, h) diagram below). Points by measured sweeps "
        f"per chain: {by_sweeps} (a point's sweeps are doubled while its tau_int or split R-hat says the run is too "
        f"short; the rule in words is the file's `adapt_rule` attribute). {flagged} of {points} points "
        f"({100 * flagged / max(points, 1):.0f} %) are still flagged at the cap: drawn as red crosses, left out of "
        "every T_c and boundary. `spinsim atlas` runs finer grids and longer chains (README).",
        f"- T_c at h = 0 found inside the grid for **{int(found.sum())} of {n}** heads"
        + (f" (median {np.median(tc):.2f}, range {tc.min():.2f} to {tc.max():.2f})" if tc.size else "")
        + f"; at the model's own point (T = 1, h = 0) **{ordered}** of them are on the ordered side. "
        f"{edge} heads have no T_c in the grid because their chi still rises at its edge (for the top edge: T_c "
        f"above {a.T.max():g}, so they too are ordered at T = 1)"
        + (f"; {other} have no unflagged peak to read (a flagged point at or next to it)" if other else "") + ".\n"
        f"- ordering kind at the lowest unflagged T: " + ", ".join(f"{k} {v}" for k, v in kinds.items() if v)
        + f" (rule: {KIND_RULE}).\n"
        f"- coupling class: " + ", ".join(f"{k} {v}" for k, v in classes.items()) + f" (rule: {CLASS_RULE}).",
    ]
    blocks: list[Any] = list(text)
    if "atlas_maps" in figures:
        blocks.append({"figure": figures["atlas_maps"], "caption": "Layer x head maps: T_c at h = 0 (grey: none in "
                       "the grid), coupling class, ordering kind. The atlas file is atlas.h5 (/atlas, /summary)."})
    blocks.append({"figure": figures["atlas_chi"], "caption": "Susceptibility chi(T) of every head at each prompt "
                   "field of the grid, log scale; red x: flagged points; dotted: T_c."})
    return blocks
