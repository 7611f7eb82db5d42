"""Input checks shared by every entry point: one-line errors naming the bad value."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_temperatures", "check_choice", "check_positive_int", "check_positive_float", "parse_range"]


def check_temperatures(T: Any) -> np.ndarray:
    """Return T as a 1-D float array; raise if empty, non-finite or T <= 0."""
    arr = np.atleast_1d(np.asarray(T, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"T must be a positive number or a 1-D list of them, got shape {np.shape(T)}")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ValueError(f"temperatures must be finite and > 0 (k_B = 1); got T = {float(arr[bad][0])!r}")
    return arr


def check_choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(repr, allowed))}")
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(name: str, value: Any) -> float:
    """``float(value)``; raise unless it is a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def parse_range(text: str, name: str = "range") -> np.ndarray:
    """``'start:stop:count'`` (inclusive, evenly spaced) or a single number -> 1-D array."""
    parts = str(text).split(":")
    try:
        if len(parts) == 1:
            return np.array([float(parts[0])])
        if len(parts) != 3:
            raise ValueError
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"{name} {text!r} is not 'start:stop:count' (e.g. 1.5:3.5:12) or a number") from None
    if count < 1:
        raise ValueError(f"{name} {text!r}: count must be >= 1")
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise ValueError(f"{name} {text!r}: start and stop must be finite")
    return np.linspace(start, stop, count)
