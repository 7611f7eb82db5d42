"""The atlas file: its layout, the in-memory :class:`Atlas`, the commit and the reader.

An atlas holds the (T, h) phase diagrams of many systems ("heads") at once, each over a context
``length`` and a quenched ``sample`` of contexts (one length and one sample when the atlas runs
on one prompt). Every array is over named dimension scales (HDF5 file format 2, :mod:`spinsim.io`;
xarray and h5py read it without spinsim)::

    /                       root attrs: spinsim_version, spinsim_format, spinsim_kind = "atlas",
                            command_line, created, conventions (sign of H, k_B = 1, head naming),
                            seed, model_id, prompt, normalisation, the solver options, ...
    /atlas                  attrs: fingerprint (JSON), n_done, n_rows, complete, row_seeding,
                            adapt_rule (the sweep-doubling rule, in words)
    /atlas/head (head)      head labels L{layer}H{head} (or a system's name), a dimension scale
    /atlas/layer, /atlas/head_index (head)   layer and head numbers (-1 for non-model systems)
    /atlas/length (length)  context length N (tokens, = free sites of a head) or lattice size
    /atlas/sample (sample)  index of the quenched context sample
    /atlas/h (h), /atlas/T (T)    added field strength along u_i and temperature (k_B = 1)
    /atlas/component        index scale of the spin components
    /atlas/done (head, length, sample, h)       completion mask (1 = row finished and stored)
    /atlas/sweeps (head, length, sample, h)     largest measured sweeps per chain of the row's points
    /atlas/point_sweeps (head, length, sample, h, T)  measured sweeps per chain each point needed
                                                (the doubling rule, analysis.atlas_adapt)
    /atlas/flagged (head, length, sample, h, T) 1 = still too short at the cap (short-run rule or
                                                split R-hat): never part of a boundary
    /atlas/<obs>, <obs>_err (head, length, sample, h, T)  every observable of spinsim.schema a
                            row returns (energy ... rhat), with units, symbol and definition
    /atlas/order_vector (head, length, sample, component)  mean magnetisation vector <m> at the
                            lowest T of the row at h = 0 (averaged over chains: Z2-related chains cancel)
    /atlas/T_mf, lambda_max, lambda_min, spin_length (head, length, sample)   mean-field T_c at
                            h = 0, the extreme eigenvalues of M_s, the mean spin length (:func:`spinsim.solvers.mean_field.mean_field`)
    /atlas/mf_direction (head, length, sample, component)   top eigenvector of M_s (the mean-field
                            ordering direction)
    /atlas/direction_overlap, direction_overlap_err (head, length, sample, T)   at h = 0: the mean
                            over chains of |m_c . v| / |m_c| (m_c a chain's mean moment, v the top
                            eigenvector of M_s) and its standard error over chains
    /atlas/context (length, sample)   the context of each (length, sample): JSON token ids / text
    /bins/sweeps_<n>/...    every row's binned series (bin means, E_shift, thinned samples), by
                            the sweep writer (spinsim.bins.Bins.write_group) over (row, T), one group
                            per number of measured sweeps (:mod:`.atlas_bins`); Atlas.row reads a
                            row back with them, as a sweep's row
    /summary                per-head results written by the caller (spinsim.analysis.atlas_summary),
                            over its own scales /summary/head, length, h (SUMMARY_DIMS; every
                            other array over head)

Commits: the whole file is rewritten through :func:`spinsim.atomic.atomic_h5` (temporary
sibling, fsync, ``os.replace``), so an interruption at any instant (``kill -9`` included) leaves the
file of the last commit; a rerun computes only the rows not marked done.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spinsim import schema
from spinsim.atomic import atomic_h5
from spinsim.io import (InconsistentFileError, SpinsimFileError, check_dims, from_attr, open_spinsim,
                        read_observables, write_axis, write_observables, write_values)
from spinsim.phase.store import write_run_header
from spinsim.bins import Bins
from spinsim.result import Result
from spinsim.schema import H_UNITS, T_UNITS

from .atlas_bins import BINS_GROUP, read_bins, write_bins

__all__ = ["FACTS", "FACTS_T", "Atlas", "write_atlas", "commit", "read_atlas", "GRID_DIMS", "ROW_DIMS", "ROW_SEEDING"]

#: dims of a row (one solve over T) and of an observable
ROW_DIMS = ("head", "length", "sample", "h")
GRID_DIMS = ROW_DIMS + ("T",)
#: per-system mean-field numbers (name -> (units, long name)), computed once per system
FACTS = {"T_mf": ("energy (k_B = 1)", "mean-field T_c at zero added field"),
         "lambda_max": ("energy", "largest eigenvalue of M_s (bond-weighted mean coupling, symmetric part)"),
         "lambda_min": ("energy", "smallest eigenvalue of M_s (bond-weighted mean coupling, symmetric part)"),
         "spin_length": ("spin length", "mean spin length |x_i| over the free sites"),
         "T_peak_rw": ("energy (k_B = 1)", "chi peak at the smallest |h| on the MBAR-reweighted curve (NaN: none)"),
         "T_peak_rw_err": ("energy (k_B = 1)", "jackknife error of T_peak_rw"),
         "n_sites": ("sites", "number of sites of the system"),
         "n_free": ("sites", "number of free (not frozen) sites: the per-site normalisation of the observables")}
#: per-system numbers over the temperature grid, from the row at h = 0 (name -> (units, long name))
FACTS_T = {"direction_overlap": ("dimensionless", "mean over chains of |m_c . v| / (|m_c| |v|): each chain's mean "
                                                  "moment m_c against the top eigenvector v of M_s (Z2-invariant)"),
           "direction_overlap_err": ("dimensionless", "standard error of direction_overlap over the chains")}
#: dimensions of the per-head summary arrays that are not over head alone
SUMMARY_DIMS = {"T_c_length": ("head", "length"), "T_c_length_err": ("head", "length"),
                "boundary_T": ("head", "h"), "boundary_T_err": ("head", "h"), "boundary_at_edge": ("head", "h")}
#: the dimension scales of /summary (not summary arrays)
SUMMARY_SCALES = ("head", "length", "h")
ROW_SEEDING = ("row r = flat index over (head, length, sample, h): seed, replica_offset = r * n_T * "
               "n_chains (independent streams for every row of every head); a whole row doubled reruns with "
               "the same; the rerun of a row's flagged temperatures at doubling level L (analysis.atlas_adapt) "
               "uses seed point_seed(seed, r, L) = SeedSequence([seed, r, L]) (63 bits), replica_offset 0, "
               "replicas in the order of the rerun temperatures")


@dataclass(eq=False)
class Atlas:
    """Many (T, h) diagrams over (head, length, sample) (layout in the module docstring).

    ``values[name]`` is (n_head, n_length, n_sample, n_h, n_T); ``done`` and ``sweeps`` are
    (n_head, n_length, n_sample, n_h); ``flagged`` and ``point_sweeps`` have the grid shape. ``contexts`` holds one
    JSON string per (length, sample). ``summary`` maps a name to a per-head array (written in
    ``/summary`` with its units in ``summary_units``).
    """

    heads: list[str]
    layer: np.ndarray
    head_index: np.ndarray
    lengths: np.ndarray
    n_samples: int
    T: np.ndarray
    h: np.ndarray
    n_comp: int
    fingerprint: list = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    done: np.ndarray | None = None
    sweeps: np.ndarray | None = None
    flagged: np.ndarray | None = None
    point_sweeps: np.ndarray | None = None
    order_vector: np.ndarray | None = None
    contexts: np.ndarray | None = None
    facts: dict[str, np.ndarray] = field(default_factory=dict)
    mf_direction: np.ndarray | None = None
    summary: dict[str, np.ndarray] = field(default_factory=dict)
    summary_units: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    row_bins: dict[int, Bins] = field(default_factory=dict)   # flat row index -> the row's Bins over T

    def __post_init__(self) -> None:
        self.layer = np.asarray(self.layer, np.int64)
        self.head_index = np.asarray(self.head_index, np.int64)
        self.lengths = np.asarray(self.lengths, np.int64)
        self.T = np.asarray(self.T, np.float64)
        self.h = np.asarray(self.h, np.float64)
        rows = self.row_shape
        if self.done is None:
            self.done = np.zeros(rows, bool)
        if self.sweeps is None:
            self.sweeps = np.zeros(rows, np.int64)
        if self.flagged is None:
            self.flagged = np.zeros(rows + (self.T.size,), bool)
        if self.point_sweeps is None:      # files written before point-by-point doubling: the row's sweeps
            self.point_sweeps = np.repeat(np.asarray(self.sweeps, np.int64)[..., None], self.T.size, axis=-1)
        if self.order_vector is None:
            self.order_vector = np.full(rows[:3] + (self.n_comp,), np.nan)
        if self.mf_direction is None:
            self.mf_direction = np.full(rows[:3] + (self.n_comp,), np.nan)
        for name in FACTS:
            self.facts.setdefault(name, np.full(rows[:3], np.nan))
        for name in FACTS_T:
            self.facts.setdefault(name, np.full(rows[:3] + (self.T.size,), np.nan))
        if self.contexts is None:
            self.contexts = np.full((self.lengths.size, self.n_samples), "", dtype=object)

    @property
    def row_shape(self) -> tuple[int, int, int, int]:
        return (len(self.heads), self.lengths.size, int(self.n_samples), self.h.size)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.row_shape + (self.T.size,)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def row_index(self, i_head: int, i_len: int, i_sample: int, k: int) -> int:
        """Flat row index (the row's seed offset, :data:`ROW_SEEDING`)."""
        return int(np.ravel_multi_index((i_head, i_len, i_sample, k), self.row_shape))

    def head_position(self, label: str) -> int:
        """Index of head ``label``; KeyError naming the heads present."""
        try:
            return self.heads.index(label)
        except ValueError:
            raise KeyError(f"head {label!r} not in this atlas; present: {', '.join(self.heads[:12])}"
                           + (" ..." if len(self.heads) > 12 else "")) from None

    def store_row(self, key: tuple[int, int, int, int], row: dict[str, Any]) -> None:
        """Put one row result (:func:`spinsim.analysis.atlas_run.run_atlas_task`) at ``key``."""
        schema.put_row(self.values, self.grid_shape, key, row)
        if isinstance(row.get("bins"), Bins):
            self.row_bins[self.row_index(*key)] = row["bins"]
        self.sweeps[key] = int(row["sweeps"])
        self.point_sweeps[key] = np.asarray(row.get("point_sweeps", row["sweeps"]), np.int64)
        self.flagged[key] = np.asarray(row["flagged"], bool)
        if row.get("order_vector") is not None:
            self.order_vector[key[:3]] = row["order_vector"]
        if row.get("mf_direction") is not None:
            self.mf_direction[key[:3]] = row["mf_direction"]
            for name in FACTS:
                self.facts[name][key[:3]] = row[name]
            for name in FACTS_T:
                if row.get(name) is not None:
                    self.facts[name][key[:3]] = row[name]
        self.done[key] = True

    def info_lines(self) -> list[str]:
        """A few lines for ``spinsim info``: completion, grid, flagged points, the summary's T_c
        and kinds when present."""
        n_rows, n_done = self.done.size, int(self.done.sum())
        lines = [f"atlas: {n_done} of {n_rows} rows done ({100 * n_done / max(n_rows, 1):.0f}%)"
                 + ("" if self.complete else "  -> rerun the same command to resume"),
                 f"  grid: {len(self.heads)} heads x lengths {self.lengths.tolist()} x {self.n_samples} samples x "
                 f"h {self.h.min():.4g}..{self.h.max():.4g} ({self.h.size}) x T {self.T.min():.4g}..{self.T.max():.4g} "
                 f"({self.T.size}); {int(self.flagged.sum())} points flagged at the sweep cap",
                 f"  bins: {len(self.row_bins)} of {n_done} done rows keep their binned series (Atlas.row for "
                 "rebinning and reweighting)"]
        s = self.summary
        if "T_c" in s:
            found = np.isfinite(np.asarray(s["T_c"], float))
            kinds = {k: int(np.sum(np.asarray(s["kind"]) == k)) for k in np.unique(np.asarray(s["kind"])) if k}
            lines.append(f"  summary: T_c at h = 0 for {int(found.sum())} of {found.size} heads; kinds {kinds}")
        return lines

    def row(self, head: int | str, i_len: int = 0, i_sample: int = 0, k: int = 0) -> Result:
        """Row (head, length, sample, h index k) as a :class:`spinsim.Result` over T with its bins
        (None for a row not done or stored without them), read as a sweep's row is
        (:meth:`spinsim.phase.SweepResult.row`): e.g. ``Reweighting(atlas.row("L3H5", k=0))``.
        ``meta``: head, length, sample, h, done, sweeps, point_sweeps (n_T,), flagged (n_T,)."""
        i = self.head_position(head) if isinstance(head, str) else int(head)
        key = (i, int(i_len), int(i_sample), int(k))
        n_free = self.facts["n_free"][key[:3]]
        n_sites = self.facts["n_sites"][key[:3]]
        return Result(self.T, "mc", n_comp=self.n_comp, n_free=int(n_free) if np.isfinite(n_free) else 0,
                      n_sites=int(n_sites) if np.isfinite(n_sites) else 0, bins=self.row_bins.get(self.row_index(*key)),
                      meta={"head": self.heads[i], "length": int(self.lengths[key[1]]), "sample": key[2],
                            "h": float(self.h[key[3]]), "done": bool(self.done[key]), "sweeps": int(self.sweeps[key]),
                            "point_sweeps": self.point_sweeps[key], "flagged": self.flagged[key]},
                      **{name: v[key] for name, v in self.values.items()})

    def sweep(self, head: int | str, i_len: int = 0, i_sample: int = 0) -> Result:
        """One system's diagram as a :class:`spinsim.Result` over (h, T) (``done`` per row;
        ``meta["flagged"]`` and ``meta["point_sweeps"]`` (n_h, n_T), ``meta["sweeps"]`` (n_h,))."""
        i = self.head_position(head) if isinstance(head, str) else int(head)
        sl = (i, i_len, i_sample)
        return Result(self.T, "mc", h=self.h, done=self.done[sl], n_comp=self.n_comp,
                      meta={"flagged": self.flagged[sl], "sweeps": self.sweeps[sl],
                            "point_sweeps": self.point_sweeps[sl], "head": self.heads[i],
                            "length": int(self.lengths[i_len]), "sample": int(i_sample)},
                      **{k: v[sl] for k, v in self.values.items()})


def write_atlas(f: h5py.Group, a: Atlas) -> None:
    """Write the atlas (layout in the module docstring) into an open file."""
    g = write_run_header(f, "atlas", a.attrs, a.fingerprint, a.done, a.complete, ROW_SEEDING)
    write_axis(g, "head", np.array(a.heads, dtype=object), "label", "head L{layer}H{head} (or system name)")
    write_axis(g, "length", a.lengths, "tokens (sites)", "context length N")
    write_axis(g, "sample", np.arange(a.n_samples), "index", "quenched context sample")
    write_axis(g, "h", a.h, H_UNITS, "added field strength h along u_i")
    write_axis(g, "T", a.T, T_UNITS, "temperature")
    write_axis(g, "component", np.arange(a.n_comp), "index", "spin component")
    write_values(g, "layer", a.layer, ("head",), "index", "layer (from 0; -1: not a model head)")
    write_values(g, "head_index", a.head_index, ("head",), "index", "head within its layer (from 0; -1: not a model head)")
    write_values(g, "done", a.done.astype(np.uint8), ROW_DIMS, "flag", "completion mask: 1 = row finished and stored",
                 dtype="bool")
    write_values(g, "sweeps", a.sweeps, ROW_DIMS, "sweeps", "largest measured sweeps per chain of the row's points")
    write_values(g, "point_sweeps", a.point_sweeps, GRID_DIMS, "sweeps", "measured sweeps per chain the point needed")
    write_values(g, "flagged", a.flagged.astype(np.uint8), GRID_DIMS, "flag",
                 "1 = error bars not reliable at the sweep cap (short-run rule or split R-hat)", dtype="bool")
    write_observables(g, a.values, GRID_DIMS)
    write_values(g, "order_vector", a.order_vector, ("head", "length", "sample", "component"), "spin length",
                 "mean magnetisation vector <m> at the lowest T of the row with the smallest |h|")
    write_values(g, "mf_direction", a.mf_direction, ("head", "length", "sample", "component"), "dimensionless",
                 "top eigenvector of M_s: the mean-field ordering direction")
    for name, (units, long_name) in FACTS.items():
        write_values(g, name, a.facts[name], ("head", "length", "sample"), units, long_name)
    for name, (units, long_name) in FACTS_T.items():
        write_values(g, name, a.facts[name], ("head", "length", "sample", "T"), units, long_name)
    write_values(g, "context", np.asarray(a.contexts, dtype=object), ("length", "sample"), "",
                 "the context of each (length, sample): JSON {tokens, text}")
    write_bins(f, a.T, a.row_bins, a.sweeps)
    if a.summary:
        _write_summary(f.create_group("summary"), a)


def _write_summary(s: h5py.Group, a: Atlas) -> None:
    """``/summary``: its own dimension scales (head, length, h: a netCDF group of its own) and
    every summary array over them (:data:`SUMMARY_DIMS`; others over head)."""
    s.attrs["long_name"] = "per-head summary (spinsim.analysis.atlas_summary)"
    write_axis(s, "head", np.array(a.heads, dtype=object), "label", "head L{layer}H{head} (or system name)")
    write_axis(s, "length", a.lengths, "tokens (sites)", "context length N")
    write_axis(s, "h", a.h, H_UNITS, "added field strength h along u_i")
    for name, v in a.summary.items():
        arr = np.asarray(v)
        dims = SUMMARY_DIMS.get(name, ("head",))
        if arr.ndim != len(dims):
            raise ValueError(f"summary {name!r} has {arr.ndim} dimensions; allowed: {', '.join(dims)} "
                             "(spinsim.analysis.atlas_store.SUMMARY_DIMS)")
        flag = arr.dtype == bool
        write_values(s, name, arr.astype(np.uint8) if flag else arr, dims, a.summary_units.get(name, ""),
                     name.replace("_", " "), dtype="bool" if flag else None)


def commit(path: Path, a: Atlas) -> None:
    """Replace ``path`` with the whole atlas, atomically and durably."""
    with atomic_h5(path, libver="latest") as f:
        write_atlas(f, a)


def read_atlas(path: str | os.PathLike) -> Atlas:
    """Read an atlas file (complete or not). Raises SpinsimFileError (foreign file, not an atlas)
    or InconsistentFileError (a damaged one), each on one line."""
    path = Path(path)
    with open_spinsim(path) as f:
        if "atlas" not in f:
            raise SpinsimFileError(f"{path}: a spinsim {from_attr(f.attrs.get('spinsim_kind'))!r} file, not an "
                                   "atlas (no /atlas group)")
        g = f["atlas"]
        try:
            heads = [x.decode() if isinstance(x, bytes) else str(x) for x in g["head"][()]]
            ctx = np.array([[x.decode() if isinstance(x, bytes) else str(x) for x in r] for r in g["context"][()]],
                           dtype=object)
            a = Atlas(heads, g["layer"][()], g["head_index"][()], g["length"][()], int(g["sample"].shape[0]),
                      g["T"][()], g["h"][()], int(g["component"].shape[0]),
                      fingerprint=[tuple(x) for x in json.loads(from_attr(g.attrs["fingerprint"]))],
                      attrs={k: from_attr(v) for k, v in f.attrs.items()}, values=read_observables(g),
                      done=g["done"][()].astype(bool), sweeps=g["sweeps"][()].astype(np.int64),
                      flagged=g["flagged"][()].astype(bool), order_vector=g["order_vector"][()],
                      contexts=ctx, path=path, mf_direction=g["mf_direction"][()],
                      facts={k: g[k][()] for k in (*FACTS, *FACTS_T) if k in g},
                      point_sweeps=g["point_sweeps"][()].astype(np.int64) if "point_sweeps" in g else None)
            check_dims(g, "atlas")
            for b in (f[BINS_GROUP].values() if BINS_GROUP in f else ()):
                check_dims(b, "atlas bins")
            a.row_bins = read_bins(f)
            if "summary" in f:
                check_dims(f["summary"], "atlas summary")
                for k, d in f["summary"].items():
                    if k in SUMMARY_SCALES:
                        continue
                    v = d[()]
                    if from_attr(d.attrs.get("dtype")) == "bool":
                        v = v.astype(bool)
                    elif v.dtype.kind == "O":
                        v = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in v], dtype=object)
                    a.summary[k] = v
                    a.summary_units[k] = from_attr(d.attrs.get("units", ""))
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise InconsistentFileError(f"{path}: damaged atlas ({type(exc).__name__}: {exc})") from None
    for name, v in a.values.items():
        if v.shape != a.grid_shape:
            raise InconsistentFileError(f"{path}: inconsistent atlas: /atlas/{name} has shape {v.shape}, the "
                                        f"grid gives {a.grid_shape} ({', '.join(GRID_DIMS)})")
    return a
