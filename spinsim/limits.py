"""Limits checked before allocating: estimate the memory a request needs and refuse it up front.

:func:`check_memory` compares an estimate with the memory this machine has available
(``MemAvailable`` of /proc/meminfo, else physical pages; the environment variable
``SPINSIM_MEMORY_LIMIT``, e.g. ``"8G"``, lowers it) and raises :class:`ResourceLimitError`
naming the limit, what was asked and the largest request that fits. Estimates are upper-side
(what the builders hold at their peak), so a refusal means the request would not have fitted.
"""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["ResourceLimitError", "available_memory", "check_memory", "format_bytes"]


class ResourceLimitError(ValueError):
    """A request that would need more memory (or time) than this machine has."""


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'`` (binary units)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} PiB"


def _parse_size(text: str) -> int:
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if t[-1:] in "KMGT" else t) * mult)
    except ValueError:
        raise ValueError(f"SPINSIM_MEMORY_LIMIT={text!r}: give bytes or a size such as '8G'") from None


def available_memory() -> int:
    """Bytes of memory available to a new allocation (module docstring)."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 2 ** 63
    cap = os.environ.get("SPINSIM_MEMORY_LIMIT")
    return min(avail, _parse_size(cap)) if cap else avail


def check_memory(what: str, need: float, largest: Callable[[int], str]) -> None:
    """Refuse ``what`` when its estimated peak ``need`` (bytes) exceeds :func:`available_memory`.

    ``largest(avail)`` describes the largest request that fits in ``avail`` bytes (e.g. "L <= 9800").
    Raises :class:`ResourceLimitError` (a ValueError) with one line.
    """
    avail = available_memory()
    if need > avail:
        raise ResourceLimitError(f"{what} needs about {format_bytes(need)} of memory (estimated before "
                                 f"allocating), more than the {format_bytes(avail)} available; the largest that "
                                 f"fits: {largest(avail)}")
