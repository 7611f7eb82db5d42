"""The atlas's predictions on a model: the per-head inputs from the study (logit-gap correlations
and ablation effects on a prompt set) and the three tests of :mod:`.atlas_predictions`.

* ``gap_r``: each head's Pearson r over the prompts between dL_theory and dL_actual in the
  corrected mode (:func:`spinsim.analysis.study.run_gap_study`, ``GapMode.corrected()``).
* ``ablation_effect``: the mean over prompts of |measured shift| of dL_actual when the head's output
  slice is zeroed (:func:`spinsim.analysis.ablation.ablation_study`, mode ``zero``).

Results go into the atlas's ``/summary`` (``gap_r``, ``ablation_effect`` per head) and the
root attribute ``predictions`` (JSON: every test's numbers and verdict) by :func:`add_predictions`.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from .atlas_predictions import PredictionTest, ablation_vs_boundary, class_share_per_layer, class_vs_gap_sign
from .atlas_store import Atlas

__all__ = ["prediction_inputs", "run_predictions", "add_predictions"]


def prediction_inputs(lm: Any, a: Atlas, prompts: str = "paper20", n_perm: int = 1000, seed: int = 0,
                      progress: Any = None) -> dict[str, np.ndarray]:
    """``{"gap_r": (n_head,), "ablation_effect": (n_head,)}`` for the atlas's heads (module docstring)."""
    from spinsim.models.heads import extract_heads

    from .ablation import ablation_study
    from .gaps import GapMode
    from .prompts import load_prompts, tokenize_items
    from .study import run_gap_study

    items = tokenize_items(load_prompts(prompts), lm.encode)
    gs = run_gap_study(lm, items, [GapMode.corrected()], n_perm=n_perm, seed=seed)
    r = np.asarray(gs.results[0].stats.pearson_r, float).reshape(gs.n_layers, gs.n_heads)
    pairs = [(int(l), int(h)) for l, h in zip(a.layer, a.head_index)]
    abl = ablation_study(lm, extract_heads(lm.weights), items, which=pairs, modes=("zero",), progress=progress)
    shift = np.abs(np.asarray(abl.measured[0], float))                    # (prompt, layer, head)
    with np.errstate(invalid="ignore"):
        effect = np.array([np.nanmean(shift[:, l, h]) for l, h in pairs])
    return {"gap_r": np.array([r[l, h] for l, h in pairs]), "ablation_effect": effect}


def run_predictions(a: Atlas, inputs: dict[str, np.ndarray], seed: int = 0,
                    n_resamples: int = 9999) -> tuple[dict[str, PredictionTest], dict[str, np.ndarray]]:
    """The three tests on a summarised atlas (``a.summary`` from
    :func:`spinsim.analysis.atlas_summary.summarize`) and the per-layer share table: ``a`` (heads
    with their T_c beyond the grid censored at the edge, ``model_distance_bound``), ``a_uncensored``
    (the same test on the heads with a T_c in the grid only), ``b``, ``c``."""
    s = a.summary
    bound = s.get("model_distance_bound")
    tests = {"a": ablation_vs_boundary(inputs["ablation_effect"], s["model_distance"], n_resamples, seed,
                                       bound=bound)}
    t = ablation_vs_boundary(inputs["ablation_effect"], s["model_distance"], n_resamples, seed)
    tests["a_uncensored"] = dataclasses.replace(t, name=t.name + "_uncensored",
                                                question=t.question + " (heads with a T_c in the grid only)")
    shares, tests["b"] = class_share_per_layer(a.layer, s["coupling_class"], n_resamples, seed)
    tests["c"] = class_vs_gap_sign(s["coupling_class"], inputs["gap_r"], n_resamples, seed)
    return tests, shares


def add_predictions(a: Atlas, inputs: dict[str, np.ndarray], tests: dict[str, PredictionTest]) -> None:
    """Store the inputs per head in ``a.summary`` and the tests as the ``predictions`` attribute."""
    a.summary.update(inputs)
    a.summary_units.update(gap_r="dimensionless", ablation_effect="logits")
    a.attrs["predictions"] = json.dumps({k: t.as_dict() for k, t in tests.items()})
