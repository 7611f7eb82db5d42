"""The tempering diagnostics of a sweep's rows (replica exchange runs): per row, the swap
acceptance of each neighbouring temperature pair, the fraction of "up" walkers f(T), the mean
round-trip time and the number of round trips (:func:`spinsim.ladder.tempering_report`).

Layout in ``/sweep`` (written only when a row ran with exchange; NaN in rows not done)::

    pair (pair)                          index scale: pair t is (T_t, T_t+1) of the sorted T
    swap_acceptance (h, pair)            accepted / tried swaps
    fraction_up (h, T)                   f(T) (Katzgraber et al. 2006), T in the file's order
    round_trip_time (h)                  mean sweeps of a walker T_min -> T_max -> T_min
    n_round_trips (h)                    completed round trips (all chains)
"""
from __future__ import annotations

from typing import Any, Mapping

import h5py
import numpy as np

from ..io import write_axis, write_values

__all__ = ["row_tempering", "store_tempering", "write_tempering", "read_tempering", "NAMES"]

#: name -> (dims, units, long name)
NAMES = {
    "swap_acceptance": (("h", "pair"), "fraction", "replica-exchange acceptance of the pair (T_t, T_t+1), sorted T"),
    "fraction_up": (("h", "T"), "fraction", "fraction of walkers last at the lowest T (Katzgraber et al. 2006)"),
    "round_trip_time": (("h",), "sweeps", "mean replica round-trip time T_min -> T_max -> T_min"),
    "n_round_trips": (("h",), "count", "completed replica round trips (all chains)"),
}


def row_tempering(meta: Mapping[str, Any], T: np.ndarray) -> dict[str, np.ndarray] | None:
    """A solve result's tempering diagnostics (its ``meta``) as arrays, f(T) in the order of T;
    None without replica exchange."""
    if "round_trip_time" not in meta:
        return None
    order = np.argsort(T)
    f = np.empty(T.size)
    f[order] = np.asarray(meta["fraction_up"], dtype=np.float64)
    return {"swap_acceptance": np.asarray(meta["swap_acceptance"], dtype=np.float64), "fraction_up": f,
            "round_trip_time": np.float64(meta["round_trip_time"]),
            "n_round_trips": np.float64(meta["n_round_trips"])}


def store_tempering(state: Any, k: int, row: Mapping[str, np.ndarray]) -> None:
    """Row k's diagnostics into ``state.tempering`` (made, NaN elsewhere, on the first row)."""
    n_h, n_T = state.grid_shape
    if getattr(state, "tempering", None) is None:
        shapes = {"swap_acceptance": (n_h, max(n_T - 1, 0)), "fraction_up": (n_h, n_T),
                  "round_trip_time": (n_h,), "n_round_trips": (n_h,)}
        state.tempering = {name: np.full(shape, np.nan) for name, shape in shapes.items()}
    for name, v in row.items():
        state.tempering[name][k] = v


def write_tempering(g: h5py.Group, state: Any) -> None:
    """Write ``state.tempering`` (if any) into the ``/sweep`` group (layout above)."""
    tp = getattr(state, "tempering", None)
    if not tp:
        return
    write_axis(g, "pair", np.arange(tp["swap_acceptance"].shape[1]), "index",
               "neighbouring temperature pair (T_t, T_t+1) of the sorted T")
    for name, (dims, units, long_name) in NAMES.items():
        write_values(g, name, tp[name], dims, units, long_name)


def read_tempering(g: h5py.Group) -> dict[str, np.ndarray] | None:
    """The diagnostics stored in a ``/sweep`` group, or None (no exchange, or an older file)."""
    if "round_trip_time" not in g:
        return None
    return {name: g[name][()] for name in NAMES}
