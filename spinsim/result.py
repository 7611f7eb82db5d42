"""The one result type (:class:`Result`) and the phase-boundary line (:class:`Boundary`).

A :class:`Result` holds the observables of :data:`spinsim.schema.OBSERVABLES` over named
coordinates: ``T`` (shape (n_T,)) for a solve, or ``h`` x ``T`` (shape (n_h, n_T)) with a
completion mask ``done`` (n_h,) for a sweep (``spinsim.phase``). Every observable is read the
same way whatever produced it: ``res.energy``, with its standard error ``res.energy_err``;
``res["energy"]`` is an alias kept for code written against 0.1 sweeps. An observable a method
does not provide reads as None. Definitions, symbols and units: :mod:`spinsim.schema`.

Other fields: ``method``, ``backend``, ``seed``, sizes (``n_sites``, ``n_free``, ``n_comp``),
``magnetization_vector`` (grid dims, component), exact-only data (``ground_energy`` E_0 total,
``gap`` E_1 - E_0 between distinct levels, degeneracies, ``ground_states`` (state, site,
component), the density of states ``dos_energy``/``dos_count``), run lengths and ``meta`` (free
per-method details: algorithm, warnings, timings).

HDF5: :meth:`Result.write_group` stores everything through the generic writer of
:mod:`spinsim.io` (coordinates as dimension scales, units and long names from the schema and
the field metadata, errors next to values); ``meta`` entries as attributes ``meta_<key>``, dicts
and lists as JSON in ``metajson_<key>`` (so they read back as they were written).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from . import schema
from .bins import Bins, NoBinsError, estimates
from .io import (REQUIRED, InconsistentFileError, SpinsimFileError, atomic_h5, from_attr, open_spinsim, read_observables,
                 read_record, root_attrs, stored, to_attr, write_axis, write_observables,
                 write_record)
from .schema import H_UNITS, T_UNITS

__all__ = ["Result", "Boundary"]


def _arr(x: Any) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float64)


@dataclass(init=False, eq=False)
class Result:
    """Thermodynamics of one Hamiltonian over T, or over h x T (see the module docstring).

    Construct with the observables as keywords (``Result(T=T, energy=e, energy_err=de,
    method="exact", ...)``); unknown observable names raise :class:`TypeError` naming the
    allowed ones. Observable arrays are float64 of shape ``grid_shape`` (another shape raises
    ValueError naming the observable, on construction and on assignment).
    """

    T: np.ndarray = stored(scale=True, units=T_UNITS, long_name="temperature")
    h: np.ndarray | None = stored(scale=True, units=H_UNITS, long_name="added field strength h")
    done: np.ndarray | None = stored(dims=("h",), units="flag",
                                     long_name="completion mask: 1 = row finished and stored")
    values: dict[str, np.ndarray] = field(default_factory=dict)   # observables by schema name
    method: str = stored(default="")
    backend: str = stored(default="numpy")
    seed: int | None = stored()
    n_sites: int = stored(default=0)
    n_free: int = stored(default=0)
    n_comp: int = stored(default=0)
    magnetization_vector: np.ndarray | None = stored(
        dims=("*", "component"), units="spin length", long_name="mean magnetisation vector <m>")
    ground_energy: float | None = stored()                 # total energy E_0
    gap: float | None = stored()                           # E_1 - E_0 (distinct levels)
    ground_degeneracy: int | None = stored()
    excited_degeneracy: int | None = stored()
    ground_states: np.ndarray | None = stored(dims=("state", "site", "component"), units="spin",
                                              long_name="ground states S (lengths included)")
    dos_energy: np.ndarray | None = stored(scale=True, units="energy (total)",
                                           long_name="energy level")
    dos_count: np.ndarray | None = stored(
        dims=("dos_energy",), units="states",
        long_name="number of states at each energy level (density of states)")
    n_sweeps: int = stored(default=0)
    n_discard: int = stored(default=0)
    n_replicas: int = stored(default=0)
    meta: dict[str, Any] = field(default_factory=dict)
    bins: Bins | None = None            # Monte Carlo only: binned series (spinsim.bins)

    def __init__(self, T: Any, method: str = "", *, h: Any = None, done: Any = None,
                 backend: str = "numpy", seed: int | None = None, n_sites: int = 0,
                 n_free: int = 0, n_comp: int = 0, magnetization_vector: Any = None,
                 ground_energy: float | None = None, gap: float | None = None,
                 ground_degeneracy: int | None = None, excited_degeneracy: int | None = None,
                 ground_states: Any = None, dos_energy: Any = None, dos_count: Any = None,
                 n_sweeps: int = 0, n_discard: int = 0, n_replicas: int = 0,
                 meta: Mapping[str, Any] | None = None, bins: Bins | None = None,
                 **observables: Any) -> None:
        for name in observables:
            try:
                schema.observable(name)
            except KeyError as exc:
                raise TypeError(f"Result() got {exc}") from None
        object.__setattr__(self, "values", {})
        self.T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        self.h = _arr(h)
        self.done = None if done is None else np.asarray(done, dtype=bool)
        self.method, self.backend, self.seed = method, backend, seed
        self.n_sites, self.n_free, self.n_comp = n_sites, n_free, n_comp
        self.magnetization_vector = _arr(magnetization_vector)
        self.ground_energy, self.gap = ground_energy, gap
        self.ground_degeneracy, self.excited_degeneracy = ground_degeneracy, excited_degeneracy
        self.ground_states = None if ground_states is None else np.asarray(ground_states)
        self.dos_energy, self.dos_count = _arr(dos_energy), dos_count
        self.n_sweeps, self.n_discard, self.n_replicas = n_sweeps, n_discard, n_replicas
        self.meta = dict(meta or {})
        if bins is not None and bins.grid_shape != self.grid_shape:
            raise ValueError(f"bins have the grid shape {bins.grid_shape}, the result {self.grid_shape}")
        self.bins = bins
        for name in schema.names(errors=True):
            if observables.get(name) is not None:
                setattr(self, name, observables[name])

    # ------------------------------------------------------------------ access
    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the observables live in ``values``
        if name != "values" and name in _ALL_NAMES:
            return self.__dict__.get("values", {}).get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ALL_NAMES:
            if value is None:
                self.values.pop(name, None)
                return
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != self.grid_shape:
                raise ValueError(f"observable {name!r} must have the grid shape {self.grid_shape} "
                                 f"({', '.join(self.dims)}), got {arr.shape}")
            self.values[name] = arr
        else:
            object.__setattr__(self, name, value)

    def __getitem__(self, name: str) -> np.ndarray:
        """``res["energy"]``: alias of ``res.energy`` (0.1 sweeps were read this way).
        Raises KeyError naming the observables present."""
        if name not in self.values:
            raise KeyError(f"{name!r} not in this result; present: {', '.join(self.values)}")
        return self.values[name]

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the grid axes: ``("T",)`` or ``("h", "T")``."""
        return ("T",) if self.h is None else ("h", "T")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return (self.T.size,) if self.h is None else (self.h.size, self.T.size)

    @property
    def complete(self) -> bool:
        """Every row of the grid is done (always True for a result over T alone)."""
        return True if self.done is None else bool(self.done.all())

    @property
    def fraction_done(self) -> float:
        if self.done is None:
            return 1.0
        return float(self.done.mean()) if self.done.size else 0.0

    def __len__(self) -> int:
        return int(self.T.size)

    def array_names(self) -> list[str]:
        """Names of the observables present (without errors), in schema order."""
        return [n for n in schema.names() if n in self.values]

    def summary(self) -> str:
        """A human-readable table: T, E/N, C, <|m|>, chi, U with errors (a result over T)."""
        rows = [f"{self.method}/{self.backend}: {self.n_free} free sites, n_comp={self.n_comp}"
                + (f", seed={self.seed}" if self.seed is not None else "")]
        cols = ("energy", "specific_heat", "magnetization", "susceptibility", "binder")
        rows.append(f"{'T':>8} {'E/N':>22} {'C':>22} {'<|m|>':>22} {'chi':>22} {'U':>22}")
        if self.h is None:
            for i, t in enumerate(self.T):
                cells = [f"{self.values[k][i]: .6f} ± {self.values[k + '_err'][i]:.1e}"
                         if k in self.values and k + "_err" in self.values else "n/a" for k in cols]
                rows.append(f"{t:8.4f} " + " ".join(f"{c:>22}" for c in cells))
        else:
            n_done = self.h.size if self.done is None else int(self.done.sum())
            rows[-1] = f"{self.h.size} x {self.T.size} (h, T) grid, {n_done} rows done"
        if self.ground_energy is not None:
            rows.append(f"E_0 = {self.ground_energy:.10g} (degeneracy {self.ground_degeneracy})"
                        + (f", gap E_1 - E_0 = {self.gap:.10g}" if self.gap is not None else ""))
        return "\n".join(rows)

    def rebin(self, factor: int = 1) -> "Result":
        """This result with every observable that has an error recomputed from its bins merged
        ``factor`` at a time (:meth:`spinsim.bins.Bins.rebinned`), each with its jackknife error
        over the pooled (chain, bin) blocks (:func:`spinsim.bins.estimates`), at every grid point
        whose bins are all finite; a point without bins (a sweep row stored before bins existed,
        or not done) keeps the estimates it has, since nothing can recompute them. The other
        fields (tau_int, rhat, acceptance, magnetisation vector, meta) are kept; ``meta["rebin"]``
        records the factor, the bin length and ``kept``: the number of grid points whose
        estimates were kept as stored. Use it to check that errors have converged in the bin
        length (they grow until bins are longer than ~2 tau_int, then stay flat).

        Raises :class:`spinsim.bins.NoBinsError` for a result without bins (exact, analytic, or
        read from a file written before bins) or whose bins are NaN at every point, ValueError for
        a bad factor."""
        if self.bins is None:
            raise NoBinsError(f"this {self.method or 'result'} result holds no binned series (Monte Carlo "
                              "results do, except those read from files written before bins): nothing "
                              "to rebin")
        b = self.bins.rebinned(factor)
        T = self.T if self.h is None else self.T[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            fresh = estimates(b, T, self.n_free, self.n_comp)
        binned = np.all([np.isfinite(v).all(axis=(-2, -1)) for v in b.bins.values()], axis=0)
        if not binned.any():
            raise NoBinsError("no point of this result has finite bins (rows stored before bins existed, or not "
                              "done): nothing to rebin")
        new = {}
        for k, v in fresh.items():
            if k.removesuffix(schema.ERR) in self.values:
                new[k] = np.where(binned, v, self.values.get(k, np.nan))
        rebin = {"factor": int(factor), "bin_length": b.bin_length, "n_bins": b.n_bins, "n_chains": b.n_chains,
                 "kept": int(binned.size - binned.sum())}
        return self._plain(bins=b, meta={**self.meta, "rebin": rebin}, **{**self.values, **new})

    def _plain(self, **changes: Any) -> "Result":
        """A plain :class:`Result` with this one's fields, ``changes`` applied."""
        kw = dict(T=self.T, method=self.method, h=self.h, done=self.done, backend=self.backend,
                  seed=self.seed, n_sites=self.n_sites, n_free=self.n_free, n_comp=self.n_comp,
                  magnetization_vector=self.magnetization_vector, ground_energy=self.ground_energy,
                  gap=self.gap, ground_degeneracy=self.ground_degeneracy,
                  excited_degeneracy=self.excited_degeneracy, ground_states=self.ground_states,
                  dos_energy=self.dos_energy, dos_count=self.dos_count, n_sweeps=self.n_sweeps,
                  n_discard=self.n_discard, n_replicas=self.n_replicas, meta=self.meta, bins=self.bins)
        kw.update(changes)
        return Result(**kw)

    # ------------------------------------------------------------------ HDF5
    def write_group(self, g: Any, samples: bool = True) -> None:
        """Write into an open h5py group (format 2, :mod:`spinsim.io`); ``samples=False`` leaves
        out the thinned samples of the bins (:meth:`spinsim.bins.Bins.write_group`)."""
        if self.magnetization_vector is not None or self.ground_states is not None:
            n_comp = (self.magnetization_vector if self.magnetization_vector is not None
                      else self.ground_states).shape[-1]
            write_axis(g, "component", np.arange(n_comp), "index", "spin component")
        if self.ground_states is not None:         # every dimension a scale (netCDF readers)
            n_state, n_site = self.ground_states.shape[:2]
            write_axis(g, "state", np.arange(n_state), "index", "ground state (distinct minimum)")
            write_axis(g, "site", np.arange(n_site), "index", "site")
        write_record(g, self, grid=self.dims)
        write_observables(g, self.values, self.dims)
        if self.bins is not None:
            self.bins.write_group(g, self.dims, samples=samples)
        for k, v in self.meta.items():
            if isinstance(v, (dict, list, tuple)):      # any nesting, empty or ragged: as JSON
                g.attrs[_META_JSON + k] = json.dumps(v, default=_jsonable)
            else:
                g.attrs["meta_" + k] = to_attr(v)

    @classmethod
    def read_group(cls, g: Any) -> "Result":
        """Read a group written by :meth:`write_group` (formats 1 and 2)."""
        kw = read_record(cls, g)
        kw.pop("values", None)
        kw["meta"] = {k[5:]: from_attr(v) for k, v in g.attrs.items() if k.startswith("meta_")}
        kw["meta"].update({k[len(_META_JSON):]: json.loads(from_attr(v)) for k, v in g.attrs.items()
                           if k.startswith(_META_JSON)})
        return cls(**kw, bins=Bins.read_group(g), **read_observables(g))

    def to_hdf5(self, path: str | Path, **root: Any) -> Path:
        """Write this result as a self-describing spinsim file (atomically)."""
        with atomic_h5(path) as f:
            for k, v in root_attrs("result", method=self.method, backend=self.backend,
                                   seed=self.seed, **root).items():
                f.attrs[k] = v
            self.write_group(f.create_group("result"))
        return Path(path)

    @classmethod
    def from_hdf5(cls, path: str | Path, group: str = "result") -> "Result":
        with open_spinsim(path) as f:
            if group not in f:
                raise SpinsimFileError(f"{path}: no group {group!r} (groups: {', '.join(f.keys())})")
            try:
                return cls.read_group(f[group])
            except (KeyError, OSError, ValueError, TypeError) as exc:
                raise InconsistentFileError(f"{path}: damaged result in /{group} ({type(exc).__name__}: "
                                            f"{exc})") from None


_ALL_NAMES = frozenset(schema.names(errors=True))
#: attribute prefix of a ``meta`` entry stored as JSON (dicts and lists, which HDF5 attributes
#: cannot hold when nested, ragged or empty); plain values use ``meta_``
_META_JSON = "metajson_"


def _jsonable(v: Any) -> Any:
    """numpy values inside a ``meta`` dict or list, as JSON holds them."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


# ----------------------------------------------------------------------------- boundaries
@dataclass(eq=False)
class Boundary:
    """A phase-boundary line in the (T, h) plane, labelled by how it was obtained.

    ``T`` and ``h`` are (n,) arrays over the line's parameter ``param`` (``"h"``: one T per
    field, e.g. the chi peak in T at each h; ``"T"``: one h per temperature, e.g. a level
    crossing h*(T)); NaN marks points without a boundary. Units: T and h in energy units
    (k_B = 1), from the field metadata. Optional per-point arrays: ``T_err`` (one standard
    error), ``chi_max``, ``at_edge`` (maximum on the grid edge: not a boundary point),
    ``reweighted`` (the point comes from reweighted curves, :mod:`spinsim.reweighting`).
    ``line["T"]`` and ``line.get("T")`` read fields as 0.1's dict lines were read.
    """

    param: str = stored(default=REQUIRED)
    T: np.ndarray = stored(dims=("*",), units=T_UNITS, long_name="temperature on the line",
                           default=REQUIRED)
    h: np.ndarray = stored(dims=("*",), units=H_UNITS, long_name="added field on the line",
                           default=REQUIRED)
    method: str = stored(default="")
    description: str = stored(default="")
    T_err: np.ndarray | None = stored(dims=("*",), units=T_UNITS,
                                      long_name="standard error of T on the line")
    chi_max: np.ndarray | None = stored(dims=("*",), units="1/energy",
                                        long_name="maximum of the susceptibility")
    at_edge: np.ndarray | None = stored(dims=("*",), units="flag",
                                        long_name="maximum on the grid edge (no interior peak)")
    reweighted: np.ndarray | None = stored(dims=("*",), units="flag",
                                           long_name="point from reweighted curves (1) or the raw grid (0)")
    observable: str | None = stored()            # the observable whose peak this is
    sizes: list[int] | None = stored()           # (L1, L2) of a Binder crossing
    candidates: list[str] | None = stored()      # labels (A, B) of a level crossing
    T_end_err: float | None = stored()           # error of a coexistence line's end point

    def __post_init__(self) -> None:
        if self.param not in ("T", "h"):
            raise ValueError(f"Boundary param must be 'T' or 'h', got {self.param!r}")
        self.T = np.atleast_1d(np.asarray(self.T, dtype=np.float64))
        self.h = np.atleast_1d(np.asarray(self.h, dtype=np.float64))
        if self.T.shape != self.h.shape or self.T.ndim != 1:
            raise ValueError(f"Boundary T and h must be 1-D of one length, got shapes "
                             f"{self.T.shape} and {self.h.shape}")
        for k in ("T_err", "chi_max"):
            if getattr(self, k) is not None:
                setattr(self, k, np.asarray(getattr(self, k), dtype=np.float64))
        for k in ("at_edge", "reweighted"):
            if getattr(self, k) is not None:
                setattr(self, k, np.asarray(getattr(self, k)).astype(bool))
        if self.sizes is not None:
            self.sizes = [int(x) for x in self.sizes]
        if self.candidates is not None:
            self.candidates = [str(x) for x in self.candidates]

    # dict-style reads (0.1 lines were dicts)
    def _names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(f"{key!r} not set on this boundary; set: {', '.join(self._names())}")
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        v = getattr(self, key, None) if key in self._names() else None
        return default if v is None else v

    def __contains__(self, key: object) -> bool:
        return key in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def write_group(self, g: Any) -> None:
        """Write into an open h5py group: the parameter as a dimension scale, the rest over it."""
        write_axis(g, self.param, getattr(self, self.param), T_UNITS if self.param == "T"
                   else H_UNITS, "temperature" if self.param == "T" else "added field strength h")
        g.attrs["spinsim_type"] = "Boundary"
        write_record(g, self, grid=(self.param,), skip=(self.param,))

    @classmethod
    def read_group(cls, g: Any) -> "Boundary":
        """Read a group written by :meth:`write_group`, or a 0.1 boundary (a dict line)."""
        return cls(**read_record(cls, g))
