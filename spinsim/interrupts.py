"""SIGTERM as Ctrl-C for long resumable runs (sweeps, atlases).

A run that commits its finished rows in a ``finally`` block saves them on KeyboardInterrupt; a
``kill`` (SIGTERM, the default signal of ``kill``, batch schedulers and container stops) would end
the process without running it. :func:`sigterm_as_interrupt` turns SIGTERM into KeyboardInterrupt
for the block, so both stop the same way (exit 130 from the CLI, finished rows on disk).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["sigterm_as_interrupt"]


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Raise KeyboardInterrupt on SIGTERM inside the block; the previous handler is restored on
    leaving it. Outside the main thread (where Python cannot set handlers): no effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
