"""HDF5 conventions shared by every spinsim file (SPEC section 6), and the one generic writer.

File format 2 (spinsim >= 0.2; root attribute ``spinsim_format = 2``):

* Root attributes: ``spinsim_version``, ``spinsim_format``, ``spinsim_kind`` (what the file
  holds), ``command_line``, ``created``, ``sign_convention``, ``k_B``, ``head_naming`` and any run
  parameters.
* Every coordinate is an HDF5 dimension scale with ``units`` and ``long_name`` attributes; every
  dataset carries ``units``, ``long_name`` and ``dims`` (its axis names) with the scales attached.
* Observables (:mod:`spinsim.schema`) sit next to their errors: ``chi`` and ``chi_err``; a value
  carries ``symbol`` and ``definition``, an error ``error_of = "<name>"``.
* Dataclasses declare how they are stored in their field metadata (:func:`stored`):
  :func:`write_record` / :func:`read_record` write and read any of them (``Result``,
  ``Boundary``); fields without ``dims`` become attributes.

Format 1 (spinsim 0.1.0, no ``spinsim_format`` attribute) has the same layout without the
``symbol``/``definition``/``error_of`` attributes and with boundary units in one JSON attribute;
its readers here still read it. A file of a newer format is refused naming its version.

Writes never leave a corrupt file: :func:`atomic_h5` (:mod:`spinsim.atomic`) is the one atomic
writer (built in memory, space checked, a temporary sibling, fsync, ``os.replace``, fsync of the
folder); incremental writers (sweeps) commit the whole file through it after each point and keep
a completion mask. A file that cannot be opened is diagnosed (:mod:`spinsim.h5diag`): in use,
left flagged by a crashed writer, truncated, or not HDF5.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import h5py
import numpy as np

from ._version import __version__

from . import schema

__all__ = ["SpinsimFileError", "FileFormatError", "InconsistentFileError", "DiskFullError", "FILE_FORMAT", "CONVENTIONS", "root_attrs",
           "atomic_h5", "remove_stale_temps", "open_spinsim", "file_format", "write_axis",
           "write_values", "write_observables", "read_observables", "stored", "REQUIRED", "write_record",
           "read_record", "to_attr", "from_attr", "check_dims"]

#: the layout version written by this spinsim (module docstring); 1 = spinsim 0.1.0
FILE_FORMAT = 2

CONVENTIONS = {
    "sign_convention": "H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i",
    "k_B": 1.0,
    "energy_units": "coupling units (k_B = 1, T in the same units)",
    "head_naming": "L{layer}H{head}, layer and head counted from 0 (TransformerLens)",
    "pair_convention": "W[i, j]: i is the query, j the key",
}


class SpinsimFileError(Exception):
    """A file that is not spinsim's, is truncated, or does not match the requested run."""


class FileFormatError(SpinsimFileError):
    """A spinsim file of a format this version does not read."""


class InconsistentFileError(SpinsimFileError):
    """A readable spinsim file whose contents do not fit together (the message names the dataset)."""


from .atomic import DiskFullError, atomic_h5, remove_stale_temps  # noqa: E402  (they raise the errors above)


def to_attr(v: Any) -> Any:
    """Convert a Python value to something h5py stores as an attribute (None -> 'None')."""
    if v is None:
        return "None"
    if isinstance(v, (bool, np.bool_)):
        return np.bool_(v)
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return np.array(v, dtype=h5py.string_dtype())
    if isinstance(v, (dict,)):
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
        "spinsim_format": FILE_FORMAT,
        "spinsim_kind": kind,
        "command_line": " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    attrs.update(CONVENTIONS)
    attrs.update(params)
    return {k: to_attr(v) for k, v in attrs.items()}


def file_format(f: h5py.File) -> int:
    """The layout version of an open spinsim file (1 for spinsim 0.1.0 files)."""
    return int(from_attr(f.attrs.get("spinsim_format", 1)))


def open_spinsim(path: str | os.PathLike, mode: str = "r", kind: str | None = None) -> h5py.File:
    """Open a spinsim HDF5 file, or raise :class:`SpinsimFileError` with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise SpinsimFileError(f"{p}: no such file")
    try:
        f = h5py.File(p, mode)
    except OSError as exc:
        from .h5diag import diagnose
        raise diagnose(p, exc) from None
    if "spinsim_version" not in f.attrs:
        f.close()
        raise SpinsimFileError(f"{p}: an HDF5 file, but not written by spinsim (no 'spinsim_version' attribute)")
    if kind is not None and from_attr(f.attrs.get("spinsim_kind")) != kind:
        got = from_attr(f.attrs.get("spinsim_kind"))
        f.close()
        raise SpinsimFileError(f"{p}: holds spinsim {got!r} data, expected {kind!r}")
    fmt = file_format(f)
    if fmt > FILE_FORMAT:
        version = from_attr(f.attrs.get("spinsim_version"))
        f.close()
        raise FileFormatError(f"{p}: written by spinsim {version} (file format {fmt}); this spinsim "
                              f"{__version__} reads formats 1..{FILE_FORMAT}: upgrade spinsim")
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
    arr = np.asarray(values)
    if arr.dtype.kind in "OU":                   # text: HDF5 variable-length strings
        arr = np.array(arr.astype(str), dtype=h5py.string_dtype())
    d = g.create_dataset(name, data=arr)
    d.attrs["units"] = units
    d.attrs["long_name"] = long_name
    d.attrs["dims"] = np.array(dims, dtype=h5py.string_dtype())
    for k, v in attrs.items():
        if v is not None:
            d.attrs[k] = to_attr(v)
    for i, dim in enumerate(dims):
        if dim is None:
            continue
        scale = _scale(g, dim)
        if scale is not None and i < d.ndim:
            d.dims[i].attach_scale(scale)
            d.dims[i].label = dim
    return d


def _scale(g: h5py.Group, dim: str) -> h5py.Dataset | None:
    return g[dim] if dim in g else g.file[dim] if dim in g.file else None


def check_dims(g: h5py.Group, what: str) -> None:
    """Every dataset of ``g`` with a ``dims`` attribute (:func:`write_values`) has the shape its
    dimensions give: the lengths of the 1-D datasets of ``g`` so named (a dimension without such a
    dataset in ``g`` is not checked). Raises :class:`InconsistentFileError` naming the file, the
    first dataset that does not, its shape and the expected one; ``what`` names the content."""
    sizes = {k: d.shape[0] for k, d in g.items() if isinstance(d, h5py.Dataset) and d.ndim == 1}
    for name, d in g.items():
        if not isinstance(d, h5py.Dataset) or "dims" not in d.attrs:
            continue
        dims = [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(d.attrs["dims"])]
        bad = len(dims) != d.ndim or any(n in sizes and sizes[n] != m for n, m in zip(dims, d.shape))
        if bad:
            want = tuple(sizes.get(n, "?") for n in dims)
            raise InconsistentFileError(f"{g.file.filename}: inconsistent {what}: dataset {d.name} has shape "
                                        f"{d.shape}, its dimensions ({', '.join(dims)}) give {want}")


# ----------------------------------------------------------------------------- observables
def write_observables(g: h5py.Group, values: Mapping[str, Any], dims: Sequence[str]) -> None:
    """Write every observable of :data:`spinsim.schema.OBSERVABLES` present (not None) in
    ``values`` over ``dims``, each error ``<name>_err`` next to its value (an error present
    without its value is written too: the file holds what the result holds)."""
    for o in schema.OBSERVABLES:
        if values.get(o.name) is not None:
            write_values(g, o.name, values[o.name], tuple(dims), o.units, o.long_name,
                         symbol=o.symbol, definition=o.definition)
        err = values.get(o.name + schema.ERR)     # written even without its value (as held)
        if o.has_error and err is not None:
            write_values(g, o.name + schema.ERR, err, tuple(dims), o.units,
                         f"standard error of {o.long_name}", error_of=o.name)


def read_observables(g: h5py.Group) -> dict[str, np.ndarray]:
    """The observables (and errors) stored in ``g``, by name (formats 1 and 2)."""
    return {k: g[k][()] for k in schema.names(errors=True) if k in g}


# ----------------------------------------------------------------------------- dataclasses
#: ``stored(default=REQUIRED)``: a field without a default
REQUIRED: Any = dataclasses.MISSING


def stored(dims: Sequence[str] | None = None, units: str | Callable[[Any], str] = "",
           long_name: str = "", scale: bool = False, default: Any = None) -> Any:
    """A dataclass field stored by :func:`write_record`: a dataset over ``dims`` (``"*"`` stands
    for the record's grid dims, e.g. ``("h", "T")``), a dimension scale (``scale=True``), or an
    attribute (no ``dims``). ``units`` is a string, or a function of the record returning one
    (units that depend on the run, e.g. logits or nats)."""
    md = {"dims": None if dims is None else tuple(dims), "units": units, "long_name": long_name,
          "scale": scale}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=type(default), metadata=md)
    return dataclasses.field(default=default, metadata=md)


def _dims(md: Mapping[str, Any], grid: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for d in md["dims"]:
        out.extend(grid if d == "*" else [d])
    return tuple(out)


def write_record(g: h5py.Group, obj: Any, grid: Sequence[str] = (), skip: Sequence[str] = ()) -> None:
    """Write a dataclass instance into ``g`` as its field metadata (:func:`stored`) declares:
    scales first, then datasets (units, long names, attached scales), then attributes. Fields
    that are None, or named in ``skip``, are not written; fields without metadata are skipped."""
    fs = [f for f in dataclasses.fields(obj) if f.metadata and f.name not in skip
          and getattr(obj, f.name) is not None]
    def units(md: Mapping[str, Any]) -> str:
        return md["units"](obj) if callable(md["units"]) else md["units"]

    for f in fs:
        if f.metadata["scale"]:
            v = np.asarray(getattr(obj, f.name))
            write_axis(g, f.name, v, units(f.metadata), f.metadata["long_name"])
    for f in fs:
        v = getattr(obj, f.name)
        md = f.metadata
        if md["scale"]:
            continue
        if md["dims"] is not None:
            arr = np.asarray(v)
            flag = arr.dtype == bool
            write_values(g, f.name, arr.astype(np.uint8) if flag else arr, _dims(md, grid),
                         units(md), md["long_name"], dtype="bool" if flag else None)
        else:
            g.attrs[f.name] = to_attr(v)


def read_record(cls: type, g: h5py.Group, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from a group written by :func:`write_record` (the caller
    constructs: ``cls(**read_record(cls, g))``). Missing fields keep their defaults; boolean
    arrays (stored as uint8 with ``dtype = "bool"``) come back as bool."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.metadata:
            continue
        if f.metadata["dims"] is not None or f.metadata["scale"]:
            if f.name in g:
                v = g[f.name][()]
                if from_attr(g[f.name].attrs.get("dtype")) == "bool":
                    v = v.astype(bool)
                kw[f.name] = v
        elif f.name in g.attrs:
            kw[f.name] = from_attr(g.attrs[f.name])
    kw.update(extra)
    return kw
