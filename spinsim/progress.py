"""Progress bars with ETA on stderr (tqdm), one style for every long stage of every command.

:func:`progress_bar` returns a ``tqdm`` bar (a context manager); ``enabled=False`` (the CLI's
``--quiet``) returns a disabled one, so callers never branch. :func:`per_step` adapts a bar to
the callbacks the long loops take (``ablation_study(progress=...)``, ``ground_study(log=...)``):
each call advances the bar by one step.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ["progress_bar", "per_step"]


def progress_bar(total: int, desc: str, unit: str = "step", enabled: bool = True) -> Any:
    """A tqdm bar over ``total`` steps named ``desc`` (stderr, refreshed at most twice a second)."""
    from tqdm.auto import tqdm

    return tqdm(total=int(total), desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5)


def per_step(bar: Any) -> Callable[..., None]:
    """A callback (any arguments) that advances ``bar`` by one step."""
    def step(*args: Any, **kwargs: Any) -> None:
        bar.update(1)
    return step
