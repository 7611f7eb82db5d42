"""HDF5 conventions shared by every spinsim file (SPEC section 6).

* Root attributes: ``spinsim_version``, ``spinsim_kind`` (what the file holds), ``command_line``,
  ``created``, ``sign_convention``, ``k_B``, ``head_naming`` and any run parameters.
* Every axis is an HDF5 dimension scale with ``units`` and ``long_name`` attributes; values sit
  next to their errors (``chi``, ``chi_err``).
* Writes never leave a corrupt file: whole files are written to a temporary sibling and renamed
  atomically; incremental writers (sweeps) flush after each point and keep a completion mask.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from ._version import __version__

__all__ = ["SpinsimFileError", "CONVENTIONS", "root_attrs", "atomic_h5", "open_spinsim",
           "write_axis", "write_values", "to_attr", "from_attr"]

CONVENTIONS = {
    "sign_convention": "H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i",
    "k_B": 1.0,
    "energy_units": "coupling units (k_B = 1, T in the same units)",
    "head_naming": "L{layer}H{head}, layer and head counted from 0 (TransformerLens)",
    "pair_convention": "W[i, j]: i is the query, j the key",
}


class SpinsimFileError(Exception):
    """A file that is not spinsim's, is truncated, or does not match the requested run."""


def to_attr(v: Any) -> Any:
    """Convert a Python value to something h5py stores as an attribute (None -> 'None')."""
    if v is None:
        return "None"
    if isinstance(v, (bool, np.bool_)):
        return np.bool_(v)
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return np.array(v, dtype=h5py.string_dtype())
    if isinstance(v, (dict,)):
        import json
        return json.dumps(v, sort_keys=True, default=str)
    return v


def from_attr(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v == "None":
        return None
    if isinstance(v, np.ndarray) and v.dtype.kind in "OSU":
        return [x.decode() if isinstance(x, bytes) else str(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def root_attrs(kind: str, **params: Any) -> dict[str, Any]:
    """Standard root attributes for a spinsim file of the given kind."""
    attrs: dict[str, Any] = {
        "spinsim_version": __version__,
        "spinsim_kind": kind,
        "command_line": " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    attrs.update(CONVENTIONS)
    attrs.update(params)
    return {k: to_attr(v) for k, v in attrs.items()}


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Write a whole HDF5 file atomically: into ``path.tmp-<pid>``, then ``os.replace``.

    An exception (or a kill) leaves any existing file at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def open_spinsim(path: str | os.PathLike, mode: str = "r", kind: str | None = None) -> h5py.File:
    """Open a spinsim HDF5 file, or raise :class:`SpinsimFileError` with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise SpinsimFileError(f"{p}: no such file")
    try:
        f = h5py.File(p, mode)
    except OSError as exc:
        raise SpinsimFileError(f"{p}: not a readable HDF5 file (truncated or not HDF5): {exc.__class__.__name__}") from None
    if "spinsim_version" not in f.attrs:
        f.close()
        raise SpinsimFileError(f"{p}: an HDF5 file, but not written by spinsim (no 'spinsim_version' attribute)")
    if kind is not None and from_attr(f.attrs.get("spinsim_kind")) != kind:
        got = from_attr(f.attrs.get("spinsim_kind"))
        f.close()
        raise SpinsimFileError(f"{p}: holds spinsim {got!r} data, expected {kind!r}")
    return f


def write_axis(g: h5py.Group, name: str, values: Any, units: str, long_name: str) -> h5py.Dataset:
    """Create a 1-D dimension scale ``name`` with units and a long name."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OU":
        arr = np.array([str(x) for x in arr], dtype=h5py.string_dtype())
    d = g.create_dataset(name, data=arr)
    d.make_scale(name)
    d.attrs["units"] = units
    d.attrs["long_name"] = long_name
    return d


def write_values(g: h5py.Group, name: str, values: Any, dims: tuple[str, ...], units: str,
                 long_name: str, **attrs: Any) -> h5py.Dataset:
    """Create a dataset and attach the named dimension scales (which must exist in ``g``'s file,
    looked up first in ``g`` and then at the root)."""
    d = g.create_dataset(name, data=np.asarray(values))
    d.attrs["units"] = units
    d.attrs["long_name"] = long_name
    d.attrs["dims"] = np.array(dims, dtype=h5py.string_dtype())
    for k, v in attrs.items():
        d.attrs[k] = to_attr(v)
    for i, dim in enumerate(dims):
        if dim is None:
            continue
        scale = g[dim] if dim in g else g.file[dim] if dim in g.file else None
        if scale is not None and i < d.ndim:
            d.dims[i].attach_scale(scale)
            d.dims[i].label = dim
    return d
