"""Input checks shared by every entry point: one-line errors naming the bad value."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_temperatures", "check_choice", "check_positive_int", "check_positive_float", "parse_range",
           "energy_bound", "check_energy_range", "ENERGY_LIMIT", "EnergyRangeError"]

#: largest |E| and |E|/T (k_B = 1) spinsim accepts: float64 overflows at 1.8e308, and sums of a few
#: hundred such terms, squares of energy differences or Boltzmann exponents need head room
ENERGY_LIMIT = 1e300


class EnergyRangeError(ValueError):
    """Energies or Boltzmann exponents |E|/T of a Hamiltonian would overflow float64."""


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


def energy_bound(H: Any, extra_field: float = 0.0, direction: Any = None) -> float:
    """An upper bound of |E(S)| over every state S of ``H`` (energy units, k_B = 1)::

        sum_{i != j} |W_ij| m_i m_j ||M||_2 v^2 + sum_i (|h_i| + |extra_field| |u_i|) m_i v

    with m_i the lengths, v the largest spin-vector norm (1 for Ising and Heisenberg spins),
    ||M||_2 the coupling's spectral norm (an upper bound) and ``direction`` (n_sites, n_comp) the
    u_i along which a sweep adds ``extra_field``. Computed without overflow (inf when it does)."""
    import scipy.sparse as sp

    m = np.asarray(H.lengths, dtype=np.float64)
    vecs = getattr(H.spin, "vectors", None)
    v = 1.0 if vecs is None else float(np.sqrt(np.max(np.einsum("ac,ac->a", vecs, vecs))))
    with np.errstate(over="ignore", invalid="ignore"):
        Wabs = abs(sp.csr_matrix(H.W))
        pair = float((Wabs @ m) @ m) * float(H.M.spectral_norm()) * v * v
        h = np.linalg.norm(np.asarray(H.h, dtype=np.float64), axis=1)
        if extra_field:
            U = np.zeros_like(np.asarray(H.h)) if direction is None else np.asarray(direction, dtype=np.float64)
            h = h + abs(float(extra_field)) * np.linalg.norm(np.broadcast_to(U, H.h.shape), axis=1)
        field = float(np.sum(h * m)) * v
        total = pair + field
    return float(total) if np.isfinite(total) else float("inf")


def check_energy_range(H: Any, T: Any = None, extra_field: float = 0.0, direction: Any = None) -> float:
    """Refuse a Hamiltonian (and temperatures) whose energies would overflow float64; return the
    energy bound of :func:`energy_bound`.

    Valid range: the bound B of |E| below ``ENERGY_LIMIT`` = 1e300 (so fields and couplings must
    keep ``sum_i |h_i| m_i + sum |W_ij| m_i m_j ||M||`` below it, e.g. ``N max|h| max m < 1e300``),
    and every temperature with ``B / T < 1e300`` (the Boltzmann exponents |E|/T finite) and
    ``1/T`` finite. Raises :class:`EnergyRangeError` (a ValueError) naming the value and the range.
    """
    B = energy_bound(H, extra_field, direction)
    if not B < ENERGY_LIMIT:
        what = f" with added field h = {extra_field!r}" if extra_field else ""
        raise EnergyRangeError(
            f"energies of {H.name or 'the Hamiltonian'}{what} reach |E| ~ {B:.3g}, beyond {ENERGY_LIMIT:.0e} "
            "(float64 overflows): fields and couplings must keep sum_i |h_i| m_i + sum_ij |W_ij| m_i m_j ||M|| "
            f"below {ENERGY_LIMIT:.0e}")
    if T is not None:
        t_min = float(np.min(np.asarray(T, dtype=np.float64)))
        floor = max(B / ENERGY_LIMIT, 1.0 / ENERGY_LIMIT)
        if t_min < floor:
            raise EnergyRangeError(
                f"T = {t_min!r} is too low for energies up to |E| ~ {B:.3g}: |E|/T and 1/T must stay below "
                f"{ENERGY_LIMIT:.0e} (float64), so T >= {floor:.3g}")
    return B
