"""The sweep file: its layout, the in-memory :class:`SweepResult`, the lock and the commit.

File layout (HDF5 file format 2, :mod:`spinsim.io`)::

    /                      root attrs: spinsim_version, spinsim_format = 2, spinsim_kind =
                           "sweep", command_line, created, conventions (sign of H, k_B = 1, head
                           naming), seed, method, direction, solver_<option>, the Hamiltonian
                           description (hamiltonian_sha256 ...) and its provenance (model, head)
    /sweep                 attrs: fingerprint (JSON), n_done, n_rows, complete, row_seeding,
                           method, backend, seed, n_sites, n_free, n_comp
    /sweep/T  (T)          dimension scale, units "energy (k_B = 1)"
    /sweep/h  (h)          dimension scale, field strength along u (energy units)
    /sweep/component, /sweep/site      index scales
    /sweep/done (h)        completion mask (1 = row finished and stored)
    /sweep/<obs>, <obs>_err  (h, T)  every observable of spinsim.schema with an error (energy,
                           specific_heat, magnetization, susceptibility, binder, projection,
                           projection_susceptibility; NaN where not done), and those the method
                           gives without one (tau_int for MC, acceptance for Metropolis, log_Z
                           for exact); attrs units, long_name, symbol, definition / error_of
    /sweep/magnetization_vector (h, T, component)
    /sweep/direction (site, component)   the unit directions u_i
    /sweep/row_warnings (h)  JSON list of the solver's warnings per row
    /sweep/swap_acceptance (h, pair), fraction_up (h, T), round_trip_time (h), n_round_trips (h)
                           replica-exchange runs only (spinsim.phase.tempering)
    /sweep/chain, bin, sample            index scales of the binned series (Monte Carlo)
    /sweep/bin_<name> (h, T, chain, bin)   bin means (spinsim.bins: E, E2, mabs, m2, m4, mu, mu2;
                           attrs bin_length), /sweep/E_shift (h, T), /sweep/sample_<name>
                           (h, T, chain, sample) the thinned series for reweighting (E, mabs, mu);
                           NaN in rows not done; absent in files written before bins, and in an
                           unfinished sweep (beside the file until it completes, see Commits)
    /boundary/<name>       a :class:`spinsim.result.Boundary`: the line's parameter (T or h) as
                           a scale, T and h (and T_err, chi_max, at_edge) over it, attrs method,
                           param, description. Written by the caller (``add_boundaries``), e.g.
                           ``spinsim sweep`` with ``spinsim.analysis.boundaries``.

Format 1 files (spinsim 0.1.0) have the same groups (boundary units as one JSON attribute, no
symbol/definition attributes, no /sweep method attributes): :func:`read_sweep` reads them and a
resumed run rewrites them as format 2.

Commits: after each finished row the whole file is rewritten through :func:`spinsim.io.atomic_h5`
(temporary sibling, fsync, ``os.replace``, fsync of the folder), so an interruption at any
instant leaves the file as it was after the last commit. The thinned samples, the bulk of a Monte
Carlo sweep, are not rewritten with it: until the sweep is complete each finished row's samples
sit in their own file beside it, written once (:mod:`.samples`; ``/sweep`` attribute
``samples_pending``), and the commit that completes the sweep writes them all into ``/sweep``.
The output lock ``.<name>.lock`` (:mod:`spinsim.locks`) stops two processes from writing one sweep. :func:`read_sweep` checks every
dataset's shape against the grid and refuses an inconsistent file naming the dataset.
"""
from __future__ import annotations

import contextlib
import warnings
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from .. import schema
from ..io import (InconsistentFileError, SpinsimFileError, atomic_h5, from_attr, open_spinsim, to_attr, write_axis,
                  write_values)
from ..bins import Bins
from ..result import Boundary, Result
from .fingerprint import Fingerprint
from .samples import check_none_lost, lost_rows, mark_pending, merge_rows, samples_folder, write_rows
from .samples import remove as remove_samples
from .tempering import read_tempering, store_tempering, write_tempering

__all__ = ["SweepResult", "SWEEP_OBSERVABLES", "empty_state", "store_row", "commit", "lock",
           "read_sweep", "add_boundary", "add_boundaries", "write_sweep", "write_run_header"]

#: observables always stored with their errors, shape (n_h, n_T) (NaN where not given)
SWEEP_OBSERVABLES = tuple(schema.names(has_error=True))
ROW_SEEDING = "row k: seed, replica_offset = k * n_T * n_chains"


class SweepResult(Result):
    """A (T, h) sweep: a :class:`spinsim.Result` over ``h`` x ``T`` with a completion mask
    ``done`` (n_h,), read the same way (``res.energy`` is (n_h, n_T); ``res["energy"]`` is an
    alias), plus what the sweep file holds besides: ``direction`` (n_sites, n_comp) the unit
    directions u_i, ``row_warnings`` (per row), ``fingerprint`` (the run's parameters),
    ``attrs`` (root attributes), ``boundaries`` (name -> :class:`Boundary`) and ``path``."""

    def __init__(self, T: Any, h: Any, *, direction: Any, fingerprint: Fingerprint,
                 attrs: Mapping[str, Any], row_warnings: list[list[str]] | None = None,
                 boundaries: Mapping[str, Boundary] | None = None, path: Path | None = None,
                 **result: Any) -> None:
        super().__init__(T, h=h, **result)
        if self.done is None:
            self.done = np.zeros(self.h.size, bool)
        self.direction = np.asarray(direction, dtype=np.float64)
        self.row_warnings = row_warnings if row_warnings is not None else [[] for _ in self.h]
        self.fingerprint = fingerprint
        self.attrs = dict(attrs)
        self.boundaries: dict[str, Boundary] = dict(boundaries or {})
        self.path = path
        self.tempering: dict[str, np.ndarray] | None = None   # exchange diagnostics (.tempering)
        self.samples_on_disk: set[int] = set()   # unfinished sweep: rows whose samples file exists (.samples)

    def row(self, k: int) -> Result:
        """Row ``k`` (the field h[k]) as a :class:`spinsim.Result` over T (``meta["h"]`` holds h);
        raises IndexError naming the number of rows."""
        if not -self.h.size <= k < self.h.size:
            raise IndexError(f"row {k} out of range: this sweep has {self.h.size} rows")
        mv = None if self.magnetization_vector is None else self.magnetization_vector[k]
        return Result(self.T, self.method, backend=self.backend, seed=self.seed, n_sites=self.n_sites,
                      n_free=self.n_free, n_comp=self.n_comp, magnetization_vector=mv,
                      meta={"h": float(self.h[k]), "done": bool(self.done[k]),
                            "warnings": list(self.row_warnings[k])},
                      bins=None if self.bins is None else self.bins.take(k),
                      **{name: v[k] for name, v in self.values.items()})

    @property
    def data(self) -> dict[str, np.ndarray]:
        """The observables by name (``values``; 0.1 sweeps were read as ``res.data[name]``)."""
        return self.values

    def params(self) -> dict[str, Any]:
        """The run's parameters (the fingerprint) by name."""
        return dict(self.fingerprint)


def empty_state(T: np.ndarray, hs: np.ndarray, U: np.ndarray, fp: Fingerprint,
                attrs: dict[str, Any], *, n_comp: int, **result: Any) -> SweepResult:
    """A sweep with no row done: NaN everywhere, ``done`` all False."""
    shape = (hs.size, T.size)
    nan = {name: np.full(shape, np.nan) for name in schema.names(has_error=True, errors=True)}
    return SweepResult(T, hs, direction=U, fingerprint=fp, attrs=attrs, n_comp=n_comp,
                       magnetization_vector=np.full(shape + (n_comp,), np.nan), **nan, **result)


def store_row(state: SweepResult, row: Mapping[str, Any]) -> None:
    """Put one :func:`spinsim.phase.task.compute_row` result into row ``field_index``."""
    k = int(row["field_index"])
    schema.put_row(state.values, state.grid_shape, k, row)
    state.magnetization_vector[k] = row["magnetization_vector"]
    if row.get("bins") is not None:
        _store_bins(state, k, row["bins"])
    if row.get("tempering") is not None:
        store_tempering(state, k, row["tempering"])
    state.row_warnings[k] = list(row.get("warnings", []))
    state.done[k] = True


def _store_bins(state: SweepResult, k: int, b: Bins) -> None:
    """Row k's bins (a :class:`spinsim.bins.Bins` over T) into the sweep's (h, T, ...) bins, made
    on the first row that has them (NaN in the other rows). Raises ValueError when the row's bins
    do not fit those of the rows before (another number of chains, bins or samples)."""
    if state.bins is None:
        def nan(v: np.ndarray) -> np.ndarray:
            return np.full((state.h.size,) + v.shape, np.nan)

        state.bins = Bins({n: nan(v) for n, v in b.bins.items()}, nan(b.E_shift), b.bin_length,
                          {n: nan(v) for n, v in b.samples.items()}, b.sample_stride, b.samples_per_bin)
    sb = state.bins
    if (sb.bins["E"].shape[1:] != b.bins["E"].shape or sb.bin_length != b.bin_length
            or set(sb.samples) != set(b.samples)
            or any(sb.samples[n].shape[1:] != v.shape for n, v in b.samples.items())):
        raise ValueError(f"row {k}: its bins {b.bins['E'].shape} of {b.bin_length} sweeps do not fit the "
                         f"sweep's {sb.bins['E'].shape[1:]} of {sb.bin_length}")
    for n, v in b.bins.items():
        sb.bins[n][k] = v
    for n, v in b.samples.items():
        sb.samples[n][k] = v
    sb.E_shift[k] = b.E_shift


# ----------------------------------------------------------------------------- file I/O
def write_run_header(f: h5py.Group, name: str, attrs: dict[str, Any], fingerprint: Any, done: np.ndarray,
                     complete: bool, row_seeding: str) -> h5py.Group:
    """The part every row-wise resumable file (sweep, atlas) shares: the run's attributes on ``f``,
    and a new group ``name`` holding the fingerprint (JSON), the progress (``n_done``, ``n_rows``,
    ``complete``) and the row-seeding rule. Returns the group."""
    for k, v in attrs.items():
        f.attrs[k] = to_attr(v)
    g = f.create_group(name)
    g.attrs["fingerprint"] = json.dumps(fingerprint)
    g.attrs["n_done"] = int(np.sum(done))
    g.attrs["n_rows"] = int(np.size(done))
    g.attrs["complete"] = np.bool_(complete)
    g.attrs["row_seeding"] = row_seeding
    return g


def write_sweep(f: h5py.Group, state: SweepResult, pending: Path | None = None) -> None:
    """Write the sweep (layout in the module docstring) into an open file or group: its attributes
    on ``f``, ``f/sweep`` and ``f/boundary`` (e.g. the ``/phase`` group of a demo's study.h5).
    ``pending``: the path of the sweep file whose samples are kept beside it, not written here
    (an unfinished sweep, :mod:`.samples`)."""
    g = write_run_header(f, "sweep", state.attrs, state.fingerprint, state.done, state.complete, ROW_SEEDING)
    state.write_group(g, samples=pending is None)
    if pending is not None:
        mark_pending(g, pending, state.bins)
    if "site" not in g:
        write_axis(g, "site", np.arange(state.direction.shape[0]), "index", "site")
    write_values(g, "direction", state.direction, ("site", "component"), "dimensionless",
                 "unit direction u_i of the added field h u_i (0 on frozen sites)",
                 label=state.attrs.get("direction", ""))
    write_values(g, "row_warnings", np.array([json.dumps(w) for w in state.row_warnings], dtype=object),
                 ("h",), "", "solver warnings per row (JSON list)")
    write_tempering(g, state)
    if state.boundaries:
        b = f.create_group("boundary")
        b.attrs["long_name"] = "phase boundaries, each labelled by its method"
        for name, line in state.boundaries.items():
            line.write_group(b.create_group(name))


def commit(path: Path, state: SweepResult) -> None:
    """Replace ``path`` with the state, atomically and durably (:func:`io.atomic_h5`). An
    unfinished sweep with samples keeps them beside the file, each row's written once
    (:mod:`.samples`); the commit that completes the sweep writes them all into it and removes
    the folder."""
    pending = not state.complete and state.bins is not None and state.bins.has_samples
    check_none_lost(path, state.bins, state.done, state.samples_on_disk)
    if pending:
        write_rows(path, state.bins, state.done, state.samples_on_disk)
    with atomic_h5(path, libver="latest") as f:
        write_sweep(f, state, *((path,) if pending else ()))
    if not pending:
        remove_samples(path)
        state.samples_on_disk.clear()


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """Hold the output lock of ``path`` (:func:`spinsim.locks.hold`: ``.<name>.lock``, flock
    through filelock, never deleted) while writing it; a second writer is refused with
    :class:`~spinsim.locks.OutputLockedError` (a SpinsimFileError) naming the holder."""
    from ..locks import hold

    with hold(path, "this sweep"):
        yield


def read_sweep(path: str | os.PathLike, group: str = "/") -> SweepResult:
    """Read a sweep file (complete or not; file format 1 or 2) into a :class:`SweepResult`;
    ``group``: where the sweep was written (:func:`write_sweep`), e.g. ``"phase"`` in a demo's
    study.h5."""
    path = Path(path)
    with open_spinsim(path) as file:
        if group not in file:
            raise SpinsimFileError(f"{path}: no group {group!r}")
        f = file[group]
        if "sweep" not in f:
            raise SpinsimFileError(f"{path}: a spinsim {from_attr(f.attrs.get('spinsim_kind'))!r} "
                                   "file, not a sweep (no /sweep group)")
        try:
            g = f["sweep"]
            _check_shapes(path, g)
            attrs = {k: from_attr(v) for k, v in f.attrs.items()}
            base = Result.read_group(g)
            state = SweepResult(
                base.T, base.h, direction=g["direction"][()],
                fingerprint=[tuple(x) for x in json.loads(from_attr(g.attrs["fingerprint"]))],
                attrs=attrs, row_warnings=[json.loads(from_attr(x)) for x in g["row_warnings"][()]],
                path=path, done=base.done, method=base.method or attrs.get("method", ""),
                backend=base.backend, seed=base.seed if "seed" in g.attrs else attrs.get("seed"),
                n_sites=base.n_sites or int(attrs.get("n_sites", 0)),
                n_free=base.n_free or int(attrs.get("n_free", 0)),
                n_comp=base.n_comp or int(attrs.get("n_comp", 0)),
                magnetization_vector=base.magnetization_vector, meta=base.meta, bins=base.bins,
                **base.values)
            state.tempering = read_tempering(g)
            state.bins, state.samples_on_disk = merge_rows(path, g, state.bins, state.done)
            lost = lost_rows(state.bins, state.done, state.samples_on_disk)
            if lost:
                warnings.warn(f"{path}: the thinned samples of finished row(s) {lost} are missing: they were kept "
                              f"beside the file in {samples_folder(path).name}/ (copy or move the two together); "
                              "those rows' estimates and bins are intact, but they cannot be reweighted, and a "
                              "resume is refused until the folder is back", RuntimeWarning, stacklevel=2)
            if "boundary" in f:
                state.boundaries = {k: Boundary.read_group(v) for k, v in f["boundary"].items()}
        except InconsistentFileError:
            raise
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise InconsistentFileError(f"{path}: damaged sweep ({type(exc).__name__}: {exc})") from None
    return state


def _check_shapes(path: Path, g: h5py.Group) -> None:
    """Every dataset of ``/sweep`` has the shape its ``dims`` give (the sizes of the h, T, site and
    component scales); raises :class:`InconsistentFileError` naming the first one that does not."""
    for need in ("T", "h", "done", "direction", "row_warnings"):
        if need not in g:
            raise InconsistentFileError(f"{path}: inconsistent sweep: dataset {g.name}/{need} is missing")
    sizes = {"T": g["T"].shape[0] if g["T"].ndim == 1 else -1, "h": g["h"].shape[0] if g["h"].ndim == 1 else -1}
    sizes["site"], sizes["component"] = (g["direction"].shape + (-1, -1))[:2]
    for axis in ("chain", "bin", "sample", "pair"):        # the binned series (spinsim.bins), exchange pairs
        if axis in g:
            sizes[axis] = g[axis].shape[0] if g[axis].ndim == 1 else -1
    for name, d in g.items():
        if not isinstance(d, h5py.Dataset) or "dims" not in d.attrs:
            continue
        dims = [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(d.attrs["dims"])]
        want = tuple(sizes.get(x, -2) for x in dims)
        if -2 in want:
            continue                                      # an axis this check does not know
        if d.shape != want:
            raise InconsistentFileError(
                f"{path}: inconsistent sweep: dataset {d.name} has shape {d.shape}, the grid gives "
                f"{want} ({', '.join(dims)})")


def add_boundaries(path: str | os.PathLike, lines: Mapping[str, Boundary]) -> SweepResult:
    """Add (or replace) ``/boundary/<name>`` for every line, with the same locked atomic rewrite;
    returns the sweep as stored. Raises TypeError for a line that is not a :class:`Boundary`."""
    for name, line in lines.items():
        if not isinstance(line, Boundary):
            raise TypeError(f"boundary {name!r} must be a spinsim.result.Boundary, got "
                            f"{type(line).__name__}")
    path = Path(path)
    with lock(path):
        state = read_sweep(path)
        state.boundaries.update(lines)
        commit(path, state)
    return state


def add_boundary(path: str | os.PathLike, name: str, line: Boundary) -> None:
    """Add (or replace) one ``/boundary/<name>`` (see :func:`add_boundaries`)."""
    add_boundaries(path, {name: line})
