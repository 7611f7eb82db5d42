"""Head ablations split into independent chunks of heads for an executor (issue 6).

Ablating every head one at a time is the slow part of a logit-gap study (one forward pass per
head, mode and prompt). Each chunk is a pure task: a worker loads the model once (memoised per
process), ablates its heads on the shipped prompt items and returns the arrays; the client
merges the chunks into one :class:`~spinsim.analysis.ablation.AblationResult` and alone writes
the file. Forward passes are deterministic for a given thread count; workers with another
torch thread count than the client agree with a local run to float32 rounding (~1e-6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["AblationTask", "run_ablation_task", "ablation_distributed"]

_MODELS: dict[str, Any] = {}


@dataclass(frozen=True)
class AblationTask:
    model: str                              # a --model spec the worker can load
    items: tuple                            # PromptItem records (shipped, no shared filesystem needed)
    heads: tuple[tuple[int, int], ...]      # (layer, head) to ablate, one at a time
    modes: tuple[str, ...]
    candidates: str


def run_ablation_task(task: AblationTask) -> Any:
    """Ablate ``task.heads`` (top-level, picklable: runs on any worker)."""
    from spinsim.analysis.ablation import ablation_study
    from spinsim.analysis.prompts import tokenize_items
    from spinsim.models.heads import extract_heads
    from spinsim.models.loading import load_model

    if task.model not in _MODELS:
        _MODELS[task.model] = load_model(task.model)
    lm = _MODELS[task.model]
    titems = tokenize_items(list(task.items), lm.encode)
    return ablation_study(lm, extract_heads(lm, "correct"), titems, list(task.heads), task.modes, task.candidates)


def ablation_distributed(model: str, items: Sequence[Any], heads: Sequence[tuple[int, int]],
                         modes: Sequence[str], candidates: str,
                         executor: Any, n_chunks: int = 8) -> Any:
    """Ablate ``heads`` in ``n_chunks`` tasks on ``executor`` (a ``concurrent.futures.Executor``, a
    Dask ``Client``, a runner callable or None: :func:`spinsim.executors.as_runner`) and merge the
    results."""
    from spinsim.executors import as_runner

    heads = [tuple(map(int, h)) for h in heads]
    if not heads:
        raise ValueError("no heads to ablate")
    n_chunks = max(1, min(int(n_chunks), len(heads)))
    chunks = [tuple(map(tuple, c)) for c in np.array_split(np.asarray(heads), n_chunks) if len(c)]
    tasks = [AblationTask(model, tuple(items), c, tuple(modes), candidates) for c in chunks]
    merged = None
    for res in as_runner(executor, run_ablation_task)(tasks):
        if merged is None:
            merged = res
            merged.heads = list(heads)
            continue
        for arr_m, arr_r in ((merged.measured, res.measured), (merged.predicted, res.predicted)):
            fill = np.isfinite(arr_r)
            arr_m[fill] = arr_r[fill]
        if not np.array_equal(merged.clean, res.clean, equal_nan=True):     # NaN: an excluded item
            raise RuntimeError("workers disagree on the clean logit gaps (different model weights?)")
    return merged
