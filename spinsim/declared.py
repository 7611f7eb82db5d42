"""Data a :class:`spinsim.Hamiltonian` declares and owns (SPEC section 1; issue 10).

* Arrays: the Hamiltonian keeps read-only C-contiguous copies of W, h, lengths, frozen, state and
  its axes (:func:`readonly`, :func:`readonly_sparse`), so neither the caller's later writes to
  its inputs nor ``H.h[0] = ...`` can change the physics or the hash that guards resumes; a
  pickle round trip (sweep rows shipped to Dask workers) restores them read-only
  (:func:`freeze_loaded`).
* ``axes``: named per-site directions, name -> (n_sites, n_comp) finite array (e.g. ``"prompt"``,
  the prompt field of a head), validated by :func:`check_axes`.
* ``provenance``: where H comes from, str keys -> str/bool/int/float (model id, head label,
  weights hash ...), validated by :func:`check_provenance`.
Both are :class:`FrozenMap` (a read-only, picklable mapping).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import scipy.sparse as sp

from .coupling import check_finite as _check_finite

__all__ = ["FrozenMap", "FrozenHamiltonianError", "readonly", "readonly_sparse", "freeze_loaded",
           "check_axes", "check_provenance", "DESCRIBE_KEYS"]


def readonly(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of x that cannot be written (the Hamiltonian owns its arrays: a caller
    changing its own input afterwards, or writing ``H.h[0] = ...``, cannot change the physics)."""
    a = np.array(x, copy=True, order="C")
    a.flags.writeable = False
    return a


def freeze_loaded(v: Any) -> Any:
    """An unpickled value as the Hamiltonian holds it: arrays (dense or CSR) read-only again."""
    if isinstance(v, np.ndarray):
        v.flags.writeable = False
    elif sp.issparse(v):
        for arr in (v.data, v.indices, v.indptr):
            arr.flags.writeable = False
    elif isinstance(v, tuple):
        for x in v:
            freeze_loaded(x)
    return v


def readonly_sparse(W: sp.csr_matrix) -> sp.csr_matrix:
    """W (a CSR matrix the Hamiltonian owns) with its data and index arrays made read-only."""
    for arr in (W.data, W.indices, W.indptr):
        arr.flags.writeable = False
    return W


class FrozenHamiltonianError(AttributeError):
    """Raised on assigning or deleting an attribute of a constructed :class:`Hamiltonian`."""


class FrozenMap(Mapping):
    """A read-only mapping (picklable, unlike ``types.MappingProxyType``)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenMap is read-only")

    def __getstate__(self) -> dict[str, Any]:
        return self._data

    def __setstate__(self, state: dict[str, Any]) -> None:
        # arrays come back from a pickle writable: read-only again, as check_axes made them
        object.__setattr__(self, "_data", {k: freeze_loaded(v) for k, v in dict(state).items()})

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


# describe() keys and the built-in direction names that provenance keys / axis names may not take
DESCRIBE_KEYS = ("hamiltonian_name", "spin_kind", "n_sites", "n_comp", "n_free", "coupling", "axes",
                  "hamiltonian_sha256", "sign_convention")
_RESERVED_AXES = ("field", "top_eigenvector")
_PROVENANCE_TYPES = (str, bool, int, float, np.integer, np.floating, np.bool_)


def check_axes(axes: Mapping[str, Any] | None, n_sites: int, n_comp: int) -> FrozenMap:
    """Validate named per-site directions: name -> (n_sites, n_comp) finite arrays (read-only copies)."""
    if axes is None:
        return FrozenMap()
    if not isinstance(axes, Mapping):
        raise ValueError(f"axes must be a mapping name -> (n_sites, n_comp) array, got {type(axes).__name__}")
    out = {}
    for name, arr in axes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"axis names must be non-empty strings, got {name!r}")
        if name in _RESERVED_AXES:
            raise ValueError(f"axis name {name!r} is reserved for a built-in direction; reserved: "
                             f"{', '.join(map(repr, _RESERVED_AXES))}")
        U = np.array(arr, dtype=np.float64)
        if U.shape != (n_sites, n_comp):
            raise ValueError(f"axis {name!r} must have shape ({n_sites}, {n_comp}) (n_sites, n_comp), got {U.shape}")
        _check_finite(U, f"axis {name!r}")
        U.setflags(write=False)
        out[name] = U
    return FrozenMap(out)


def check_provenance(provenance: Mapping[str, Any] | None) -> FrozenMap:
    """Validate provenance: str keys -> JSON scalars (str, bool, int, float), HDF5-attribute friendly."""
    if provenance is None:
        return FrozenMap()
    if not isinstance(provenance, Mapping):
        raise ValueError(f"provenance must be a mapping name -> str/bool/int/float, got {type(provenance).__name__}")
    out: dict[str, Any] = {}
    for key, val in provenance.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"provenance keys must be non-empty strings, got {key!r}")
        if key in DESCRIBE_KEYS:
            raise ValueError(f"provenance key {key!r} would shadow a describe() entry; taken: {', '.join(DESCRIBE_KEYS)}")
        if not isinstance(val, _PROVENANCE_TYPES):
            raise ValueError(f"provenance[{key!r}] must be a str, bool, int or float (JSON scalar), "
                             f"got {type(val).__name__}")
        if isinstance(val, (np.bool_, bool)):
            val = bool(val)
        elif isinstance(val, (np.integer, int)):
            val = int(val)
        elif isinstance(val, (np.floating, float)):
            val = float(val)
        out[key] = val
    return FrozenMap(out)


# --------------------------------------------------------------------------- Hamiltonian
