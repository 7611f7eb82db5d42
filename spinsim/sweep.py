"""Resumable (T, h) sweeps: ``ss.sweep(H, T, fields, direction=..., out="s.h5")``.

A sweep solves ``H(h) = H - h sum_i u_i . S_i`` (the field ``h * u_i`` is *added* to H's own
fields ``H.h``) for every field strength h of ``fields`` over the whole temperature grid ``T``
(k_B = 1; T and h in the coupling's energy units). The unit of work is one **row**: one field
value, one :func:`spinsim.solve` call over all of T (so parallel tempering runs across T). Row
``k`` is seeded with ``seed`` and ``replica_offset = k * n_T * n_chains``: its chains are
independent of the other rows and identical whichever rows ran before, in which process, in
which order.

Directions ``u_i`` (unit vectors per site; zero on frozen sites):

* ``"field"``: H's own field direction ``h_i/|h_i|``;
* ``"prompt"``: a head's prompt directions ``x_i/|x_i|`` (``H.prompt_directions``, set by
  ``spinsim.models.hamiltonians``): the prompt field of SPEC section 1;
* ``"top_eigenvector"``: the top eigenvector of ``M_s = (M + M^T)/2`` on every site (sign fixed
  so its largest component is positive; for Ising spins simply ``+1``);
* an (n_comp,) vector (e.g. a candidate token's vector), the same on every site;
* an (n_sites, n_comp) array, one direction per site (rows are normalised; zero rows get no field).
Default: ``"prompt"`` for a head (H has ``prompt_directions``), else ``"field"`` when H has a
field, else ``"top_eigenvector"``.

File layout (HDF5, SPEC section 6)::

    /                      root attrs: spinsim_version, spinsim_kind = "sweep", command_line,
                           created, conventions (sign of H, k_B = 1, head naming), seed, method,
                           the solver options, the Hamiltonian description (hamiltonian_sha256 ...)
    /sweep/T  (T)          dimension scale, units "energy (k_B = 1)"
    /sweep/h  (h)          dimension scale, field strength along u (energy units)
    /sweep/done (h)        completion mask (1 = row finished and stored)
    /sweep/<obs>, <obs>_err  (h, T)  energy, specific_heat, magnetization, susceptibility, binder,
                           projection, projection_susceptibility (NaN where not done)
    /sweep/tau_int (h, T)  [acceptance (h, T) for Metropolis]
    /sweep/magnetization_vector (h, T, component)
    /sweep/direction (site, component)   the unit directions u_i
    /sweep/row_warnings (h)  JSON list of the solver's warnings per row
    /boundary/<name>/...   phase boundaries (analysis.boundaries), attrs ``method``, ``units``

Interruption safety (copy-on-write commits): the file at ``out`` is only ever replaced whole.
After each finished row the complete file (all finished rows, the mask) is written to a hidden
sibling ``.<name>.tmp-<pid>``, fsync'ed, and moved over ``out`` with ``os.replace`` (atomic on
POSIX), then the directory is fsync'ed. A Ctrl-C, SIGTERM or ``kill -9`` at any instant leaves
``out`` as it was after the last commit (a valid file) plus, at worst, a stale temporary that the
next run removes. Rerunning the same command reads the finished rows, computes only the missing
ones, and - since rows do not depend on one another - ends with the same data as one
uninterrupted run. The cost is one rewrite per row (O(file size): ~n_h * n_T * 20 floats, plus
the magnetisation vectors), small next to a row of Monte Carlo. A lock file
``.<name>.lock`` (``flock``) stops two processes from writing one sweep.

Resuming into a file written with different parameters is refused naming the first differing
parameter (order: kind, hamiltonian_sha256, method, T, h, direction, seed, backend, solver
options); ``overwrite=True`` starts afresh.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np

from ._version import __version__
from .directions import resolve_direction
from .hamiltonian import Discrete, Hamiltonian, Ising, replace
from .io import SpinsimFileError, from_attr, open_spinsim, root_attrs, to_attr, write_axis, write_values
from .result import OBSERVABLES
from .validation import check_choice, check_temperatures

__all__ = ["sweep", "compute_row", "run_task", "RowTask", "serial_executor", "SweepResult",
           "read_sweep", "resolve_direction", "add_boundary", "SweepMismatchError",
           "SWEEP_OBSERVABLES", "estimate_row_seconds"]

#: observables stored with their errors, shape (n_h, n_T)
SWEEP_OBSERVABLES = ("energy", "specific_heat", "magnetization", "susceptibility", "binder",
                     "projection", "projection_susceptibility")
_EXTRA = ("tau_int", "acceptance")          # stored without errors (when the solver gives them)
_METHODS = ("mc", "exact", "analytic")
_LONG_HOUR = 3600.0


class SweepMismatchError(SpinsimFileError):
    """An existing sweep file was written with different parameters."""


def _sha(*arrays: np.ndarray) -> str:
    hsh = hashlib.sha256()
    for a in arrays:
        hsh.update(np.ascontiguousarray(a).tobytes())
    return hsh.hexdigest()


# ----------------------------------------------------------------------------- one row
@dataclass(frozen=True)
class RowTask:
    """Everything one row needs (picklable: can be shipped to a worker)."""

    H: Hamiltonian
    T: np.ndarray
    h_value: float
    direction: np.ndarray        # (n_sites, n_comp) unit directions u_i
    seed: int
    field_index: int
    method: str
    solve_kwargs: dict


def compute_row(H: Hamiltonian, T: np.ndarray, h_value: float, direction: np.ndarray, seed: int,
                field_index: int, solve_kwargs: dict, method: str = "mc") -> dict[str, Any]:
    """Solve ``H`` with the field ``h_value * u_i`` added, over the temperature grid T.

    A pure function of its arguments (safe to run on any worker, any number of times): the
    Monte Carlo chains use ``seed`` and replica ids offset by ``field_index * n_T * n_chains``.
    Returns ``{"field_index": k, "<obs>": (n_T,), "<obs>_err": (n_T,), "tau_int": (n_T,),
    "magnetization_vector": (n_T, n_comp), "warnings": [str], "elapsed_s": float}`` (NaN where
    the method does not provide a quantity).
    """
    from .solvers import solve

    T = np.asarray(T, dtype=np.float64)
    U = np.asarray(direction, dtype=np.float64)
    Hk = replace(H, h=H.h + float(h_value) * U)
    kw = dict(solve_kwargs)
    if method == "mc":
        n_chains = int(kw.get("n_chains", 1))
        kw.update(seed=int(seed), replica_offset=int(field_index) * T.size * n_chains, progress=False)
    t0 = time.perf_counter()
    res = solve(Hk, T, method=method, direction=U, **kw)
    out: dict[str, Any] = {"field_index": int(field_index), "elapsed_s": time.perf_counter() - t0}
    nan = np.full(T.size, np.nan)
    for name in SWEEP_OBSERVABLES:
        v = getattr(res, name)
        e = getattr(res, name + "_err")
        out[name] = nan.copy() if v is None else np.asarray(v, dtype=np.float64)
        out[name + "_err"] = nan.copy() if e is None else np.asarray(e, dtype=np.float64)
    for name in _EXTRA:
        v = getattr(res, name)
        out[name] = None if v is None else np.asarray(v, dtype=np.float64)
    mv = res.magnetization_vector
    out["magnetization_vector"] = (np.full((T.size, H.n_comp), np.nan) if mv is None
                                   else np.asarray(mv, dtype=np.float64).reshape(T.size, H.n_comp))
    out["warnings"] = [str(w) for w in res.meta.get("warnings", [])]
    return out


def run_task(task: RowTask) -> dict[str, Any]:
    """``compute_row`` on a :class:`RowTask` (a top-level function, for executors)."""
    return compute_row(task.H, task.T, task.h_value, task.direction, task.seed, task.field_index,
                       task.solve_kwargs, task.method)


def serial_executor(tasks: Sequence[RowTask]) -> Iterator[dict[str, Any]]:
    """The default executor: run the row tasks one after the other, yielding each result.

    An executor is any callable ``executor(tasks) -> iterable of compute_row results`` yielding
    results as they finish, in any order (each carries its ``field_index``). A Dask executor::

        def dask_executor(tasks):
            futures = client.map(spinsim.sweep.run_task, tasks)
            for fut in distributed.as_completed(futures):
                yield fut.result()
    """
    for task in tasks:
        yield run_task(task)


# ----------------------------------------------------------------------------- the result
@dataclass
class SweepResult:
    """A (T, h) sweep in memory (what the file holds). Arrays are (n_h, n_T) over (h, T)."""

    T: np.ndarray
    h: np.ndarray
    data: dict[str, np.ndarray]            # <obs>, <obs>_err, tau_int[, acceptance]
    magnetization_vector: np.ndarray       # (n_h, n_T, n_comp)
    done: np.ndarray                       # (n_h,) bool
    direction: np.ndarray                  # (n_sites, n_comp)
    row_warnings: list[list[str]]
    fingerprint: list[tuple[str, Any]]
    attrs: dict[str, Any]                  # root attributes
    boundaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    @property
    def fraction_done(self) -> float:
        return float(self.done.mean()) if self.done.size else 0.0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def params(self) -> dict[str, Any]:
        return dict(self.fingerprint)


def _empty_state(T: np.ndarray, hs: np.ndarray, n_comp: int, U: np.ndarray,
                 fingerprint: list[tuple[str, Any]], attrs: dict[str, Any]) -> SweepResult:
    shape = (hs.size, T.size)
    data = {}
    for name in SWEEP_OBSERVABLES:
        data[name] = np.full(shape, np.nan)
        data[name + "_err"] = np.full(shape, np.nan)
    data["tau_int"] = np.full(shape, np.nan)
    return SweepResult(T=T, h=hs, data=data, magnetization_vector=np.full(shape + (n_comp,), np.nan),
                       done=np.zeros(hs.size, bool), direction=U, row_warnings=[[] for _ in hs],
                       fingerprint=fingerprint, attrs=attrs)


def _store_row(state: SweepResult, row: dict[str, Any]) -> None:
    k = int(row["field_index"])
    for name in SWEEP_OBSERVABLES:
        state.data[name][k] = row[name]
        state.data[name + "_err"][k] = row[name + "_err"]
    for name in _EXTRA:
        if row.get(name) is not None:
            if name not in state.data:
                state.data[name] = np.full((state.h.size, state.T.size), np.nan)
            state.data[name][k] = row[name]
    state.magnetization_vector[k] = row["magnetization_vector"]
    state.row_warnings[k] = list(row.get("warnings", []))
    state.done[k] = True


# ----------------------------------------------------------------------------- file I/O
def _write_state(f: h5py.File, state: SweepResult) -> None:
    for k, v in state.attrs.items():
        f.attrs[k] = to_attr(v)
    g = f.create_group("sweep")
    g.attrs["fingerprint"] = json.dumps(state.fingerprint)
    g.attrs["n_done"] = int(state.done.sum())
    g.attrs["n_rows"] = int(state.done.size)
    g.attrs["complete"] = np.bool_(state.complete)
    g.attrs["row_seeding"] = "row k: seed, replica_offset = k * n_T * n_chains"
    write_axis(g, "T", state.T, "energy (k_B = 1)", "temperature")
    write_axis(g, "h", state.h, "energy (field strength along u_i)", "added field strength h")
    n_comp = state.magnetization_vector.shape[-1]
    write_axis(g, "component", np.arange(n_comp), "index", "spin component")
    write_axis(g, "site", np.arange(state.direction.shape[0]), "index", "site")
    write_values(g, "done", state.done.astype(np.uint8), ("h",), "flag",
                 "completion mask: 1 = row finished and stored")
    for name in list(SWEEP_OBSERVABLES) + [x for x in _EXTRA if x in state.data]:
        units, long = OBSERVABLES[name]
        write_values(g, name, state.data[name], ("h", "T"), units, long)
        if name + "_err" in state.data:
            write_values(g, name + "_err", state.data[name + "_err"], ("h", "T"), units,
                         f"standard error of {name}")
    write_values(g, "magnetization_vector", state.magnetization_vector, ("h", "T", "component"),
                 "spin length", "mean magnetisation vector <m>")
    write_values(g, "direction", state.direction, ("site", "component"), "dimensionless",
                 "unit direction u_i of the added field h u_i (0 on frozen sites)",
                 label=state.attrs.get("direction", ""))
    d = g.create_dataset("row_warnings", data=np.array([json.dumps(w) for w in state.row_warnings],
                                                        dtype=h5py.string_dtype()))
    d.attrs["long_name"] = "solver warnings per row (JSON list)"
    d.dims[0].attach_scale(g["h"])
    if state.boundaries:
        b = f.create_group("boundary")
        b.attrs["long_name"] = "phase boundaries, each labelled by its method"
        for name, line in state.boundaries.items():
            _write_boundary(b.create_group(name), line)


def _write_boundary(g: h5py.Group, line: dict[str, Any]) -> None:
    """A boundary line: numeric arrays become datasets (attached to the ``param`` axis); strings,
    lists and tuples become attributes."""
    param = line.get("param")
    arrays = {k: np.asarray(v) for k, v in line.items()
              if isinstance(v, np.ndarray) and v.dtype.kind in "fiub"}
    units = line.get("units", {}) if isinstance(line.get("units"), dict) else {}
    if param in arrays:
        write_axis(g, param, arrays[param].astype(np.float64), units.get(param, ""), param)
    for k, v in arrays.items():
        if k == param:
            continue
        if v.dtype == bool:
            v = v.astype(np.uint8)
        d = g.create_dataset(k, data=v)
        d.attrs["units"] = units.get(k, "")
        if param in arrays and v.ndim == 1 and v.shape == arrays[param].shape:
            d.dims[0].attach_scale(g[param])
            d.dims[0].label = param
    for k, v in line.items():
        if k in arrays:
            continue
        if isinstance(v, (list, tuple)) and not all(isinstance(x, str) for x in v):
            v = np.asarray(v)
        g.attrs[k] = to_attr(v)


def _read_boundary(g: h5py.Group) -> dict[str, Any]:
    line: dict[str, Any] = {k: from_attr(v) for k, v in g.attrs.items()}
    if isinstance(line.get("units"), str) and line["units"].startswith("{"):
        line["units"] = json.loads(line["units"])
    for k, d in g.items():
        line[k] = d[()]
    return line


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _commit(path: Path, state: SweepResult) -> None:
    """Write the whole state to a temporary sibling, fsync, and atomically replace ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w", libver="latest") as f:
            _write_state(f, state)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _clean_stale_temps(path: Path) -> None:
    for p in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            with contextlib.suppress(OSError):
                p.unlink()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    lock = path.with_name(f".{path.name}.lock")
    fh = open(lock, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SpinsimFileError(f"{path}: another process is writing this sweep (lock {lock.name} held); "
                                   "wait for it or use another --out") from None
        yield
    finally:
        fh.close()
        with contextlib.suppress(OSError):
            lock.unlink()


def read_sweep(path: str | os.PathLike) -> SweepResult:
    """Read a sweep file (complete or not) into a :class:`SweepResult`."""
    path = Path(path)
    with open_spinsim(path) as f:
        if "sweep" not in f:
            raise SpinsimFileError(f"{path}: a spinsim {from_attr(f.attrs.get('spinsim_kind'))!r} file, "
                                   "not a sweep (no /sweep group)")
        try:
            g = f["sweep"]
            T = g["T"][()]
            hs = g["h"][()]
            data = {}
            for name in list(SWEEP_OBSERVABLES) + list(_EXTRA):
                if name in g:
                    data[name] = g[name][()]
                if name + "_err" in g:
                    data[name + "_err"] = g[name + "_err"][()]
            fp = [tuple(x) for x in json.loads(from_attr(g.attrs["fingerprint"]))]
            state = SweepResult(
                T=T, h=hs, data=data, magnetization_vector=g["magnetization_vector"][()],
                done=g["done"][()].astype(bool), direction=g["direction"][()],
                row_warnings=[json.loads(from_attr(x)) for x in g["row_warnings"][()]],
                fingerprint=fp, attrs={k: from_attr(v) for k, v in f.attrs.items()}, path=path)
            if "boundary" in f:
                state.boundaries = {k: _read_boundary(v) for k, v in f["boundary"].items()}
        except (KeyError, OSError, ValueError) as exc:
            raise SpinsimFileError(f"{path}: damaged sweep file ({type(exc).__name__}: {exc}); "
                                   "rerun with --overwrite") from None
    return state


def add_boundary(path: str | os.PathLike, name: str, line: dict[str, Any]) -> None:
    """Add (or replace) ``/boundary/<name>`` in a sweep file, with the same atomic rewrite."""
    path = Path(path)
    with _lock(path):
        state = read_sweep(path)
        state.boundaries[name] = line
        _commit(path, state)


# ----------------------------------------------------------------------------- parameters
def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return {"array_sha256": _sha(v.astype(np.float64)), "shape": list(v.shape)}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _solver_options(method: str, kw: dict[str, Any]) -> dict[str, Any]:
    """The solver options with their defaults filled in (so omitting a default changes nothing);
    ``"auto"`` backend resolved, ``discard=None`` resolved to its default."""
    if method != "mc":
        return dict(sorted(kw.items()))
    from .solvers.mc import ALGORITHMS, cuda_available, solve_mc

    sig = inspect.signature(solve_mc)
    skip = {"H", "T", "seed", "direction", "progress", "replica_offset"}
    opts = {k: p.default for k, p in sig.parameters.items() if k not in skip and p.default is not p.empty}
    unknown = sorted(set(kw) - set(opts))
    if unknown:
        raise ValueError(f"unknown Monte Carlo option {unknown[0]!r}; allowed: {', '.join(sorted(opts))}")
    opts.update(kw)
    check_choice("algorithm", opts["algorithm"], ALGORITHMS)
    if opts.get("backend") == "auto":
        opts["backend"] = "cuda" if cuda_available() else "cpu"
    if opts.get("discard") is None and isinstance(opts.get("sweeps"), (int, np.integer)):
        opts["discard"] = max(100, int(opts["sweeps"]) // 4)
    return dict(sorted(opts.items()))


def _fingerprint(H: Hamiltonian, T: np.ndarray, hs: np.ndarray, U: np.ndarray, method: str,
                 seed: int, opts: dict[str, Any]) -> list[tuple[str, Any]]:
    fp: list[tuple[str, Any]] = [
        ("spinsim_kind", "sweep"),
        ("hamiltonian_sha256", H.describe()["hamiltonian_sha256"]),
        ("method", method),
        ("T", [float(x) for x in T]),
        ("h", [float(x) for x in hs]),
        ("direction", _sha(U)),
        ("seed", int(seed)),
    ]
    fp += [(k, _jsonable(v)) for k, v in opts.items()]
    return fp


def _describe_value(name: str, v: Any) -> str:
    if name in ("T", "h") and isinstance(v, list):
        return f"{len(v)} points {v[0]:g}..{v[-1]:g}" if v else "no points"
    return repr(v)


def _first_difference(old: list[tuple[str, Any]], new: list[tuple[str, Any]]) -> str | None:
    """``"'name' differs (file has X, this run Y)"`` for the first differing parameter, or None."""
    o, n = dict(old), dict(new)
    for name, value in new:
        if name not in o:
            return f"{name!r} differs (not in the file; this run {_describe_value(name, value)})"
        if o[name] != value:
            if name in ("T", "h") and len(o[name]) == len(value):
                i = next(i for i, (a, b) in enumerate(zip(o[name], value)) if a != b)
                return f"{name!r} differs (point {i}: file has {o[name][i]!r}, this run {value[i]!r})"
            return (f"{name!r} differs (file has {_describe_value(name, o[name])}, "
                    f"this run {_describe_value(name, value)})")
    for name, value in old:
        if name not in n:
            return f"{name!r} differs (file has {_describe_value(name, value)}, not set in this run)"
    return None


# ----------------------------------------------------------------------------- cost estimate
def estimate_row_seconds(H: Hamiltonian, T: np.ndarray, U: np.ndarray, h_value: float,
                         method: str, opts: dict[str, Any], seed: int) -> float | None:
    """Seconds one row should take, from a timing probe (Monte Carlo only; None otherwise).

    Two short runs (4 and 12 measured sweeps, no equilibration) give the time per sweep free of
    compilation and fixed overheads; a row costs ``(sweeps + discard)`` of them.
    """
    if method != "mc":
        return None
    import warnings

    kw = dict(opts)
    kw.update(discard=0, progress=False)
    Hk = replace(H, h=H.h + float(h_value) * U)
    from .solvers import solve
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in (4, 12):
            kw["sweeps"] = s
            t0 = time.perf_counter()
            solve(Hk, T, method="mc", seed=seed, direction=U, **kw)
            times.append(time.perf_counter() - t0)
    per_sweep = max((times[1] - times[0]) / 8.0, times[1] / 12.0 * 0.5, 1e-9)
    return per_sweep * (int(opts.get("sweeps", 2000)) + int(opts.get("discard") or 0))


def _fmt_duration(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


# ----------------------------------------------------------------------------- signals
@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a sweep runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the sweep
def sweep(H: Hamiltonian, T: Any, fields: Any, direction: Any = None, method: str = "mc", *,
          out: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True,
          seed: int = 0, executor: Callable[[Sequence[RowTask]], Iterable[dict]] | None = None,
          boundaries: bool = True, candidates: dict[str, Any] | None = None,
          estimate: bool = True, attrs: dict[str, Any] | None = None,
          **solve_kwargs: Any) -> SweepResult:
    """Sweep temperature and an added field: ``H(h) = H - h sum_i u_i . S_i`` on the T x h grid.

    Parameters
    ----------
    H : the Hamiltonian (its own fields ``H.h`` stay; ``h u_i`` is added on top).
    T : (n_T,) temperatures > 0 (k_B = 1). fields : (n_h,) added field strengths h (any sign).
    direction : ``"prompt"`` (a head's x_i/|x_i|), ``"field"``, ``"top_eigenvector"``, an (n_comp,)
        or (n_sites, n_comp) array (see module docstring); also the projection direction of
        ``projection``.
    method : ``"mc"`` (default), ``"exact"`` or ``"analytic"``.
    out : HDF5 path; rows stream into it and a rerun resumes (module docstring). None: memory only.
    overwrite : start afresh even if ``out`` holds another sweep.
    progress : progress bar with ETA on stderr (a resumed run and a long-run warning are announced
        on stderr regardless).
    seed : Monte Carlo seed; row k uses ``replica_offset = k * n_T * n_chains``.
    executor : ``executor(tasks) -> iterable of row results`` (default :func:`serial_executor`).
    boundaries : compute the phase boundaries (analysis.boundaries) when every row is done.
    candidates : ``{"probe": site, "A": S_A, "B": S_B, "labels": (a, b), "bath": S (optional)}``
        adds the candidate level-crossing line h*(T) to the boundaries.
    estimate : time a short probe first and warn when the run would take more than an hour.
    attrs : extra root attributes (e.g. model id, head, prompt).
    **solve_kwargs : solver options (``algorithm``, ``sweeps``, ``discard``, ``backend``, ...).

    Returns
    -------
    SweepResult : arrays (n_h, n_T) with errors, the completion mask and the boundaries.
    """
    if not isinstance(H, Hamiltonian):
        raise TypeError(f"sweep() needs a spinsim.Hamiltonian, got {type(H).__name__}")
    check_choice("method", method, _METHODS)
    T = check_temperatures(T)
    hs = np.atleast_1d(np.asarray(fields, dtype=np.float64))
    if hs.ndim != 1 or hs.size == 0:
        raise ValueError(f"fields must be a number or a 1-D list of them, got shape {np.shape(fields)}")
    if not np.all(np.isfinite(hs)):
        raise ValueError(f"field strengths must be finite; got h = {float(hs[~np.isfinite(hs)][0])!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    for bad in ("seed", "direction", "replica_offset", "progress"):
        if bad in solve_kwargs:
            raise ValueError(f"sweep() sets {bad!r} itself (per row); do not pass it as a solver option")
    U, u_label = resolve_direction(H, direction)
    opts = _solver_options(method, solve_kwargs)
    fp = _fingerprint(H, T, hs, U, method, int(seed), opts)
    meta = getattr(H, "meta", None)
    head_meta = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))} \
        if isinstance(meta, dict) else {}
    params: dict[str, Any] = {"seed": int(seed), "method": method, "direction": u_label,
                              "row_seeding": "row k: seed, replica_offset = k * n_T * n_chains"}
    params.update({f"solver_{k}": json.dumps(_jsonable(v)) if isinstance(v, (np.ndarray, list, tuple)) else v
                   for k, v in opts.items()})
    params.update(H.describe())
    params.update(head_meta)
    params.update(attrs or {})
    run_attrs = root_attrs("sweep", **params)
    path = Path(out) if out is not None else None
    ctx = _lock(path) if path is not None else contextlib.nullcontext()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with ctx:
        state = None
        if path is not None:
            _clean_stale_temps(path)
            if path.exists() and not overwrite:
                state = _resume_state(path, fp)
                run_attrs["created"] = state.attrs.get("created", run_attrs["created"])
                state.attrs = run_attrs
                _say(f"spinsim sweep: resuming {path}: {int(state.done.sum())} of {hs.size} field rows "
                     "already done", not state.complete)
        fresh = state is None
        if fresh:
            state = _empty_state(T, hs, H.n_comp, U, fp, run_attrs)
        state.path = path
        pending = [k for k in range(hs.size) if not state.done[k]]
        if pending and estimate:   # also checks the solver options before a file is written
            _warn_if_long(H, T, U, hs[pending[0]], method, opts, int(seed), len(pending), progress)
        if fresh and path is not None:
            _commit(path, state)
        if pending:
            _run_rows(H, T, hs, U, method, opts, int(seed), pending, state, path, executor, progress)
        if boundaries and state.complete and not state.boundaries:
            from spinsim.analysis.boundaries import sweep_boundaries   # later stage, loaded on demand
            state.boundaries = sweep_boundaries(state, H=H, candidates=candidates)
            if path is not None:
                _commit(path, state)
    return state


def _resume_state(path: Path, fp: list[tuple[str, Any]]) -> SweepResult:
    try:
        old = read_sweep(path)
    except SpinsimFileError as exc:
        raise SpinsimFileError(f"cannot resume: {exc}; use --overwrite (overwrite=True) to replace it") from None
    diff = _first_difference(old.fingerprint, fp)
    if diff is not None:
        raise SweepMismatchError(f"{path}: cannot resume: parameter {diff}; "
                                 "use --overwrite (overwrite=True) to start afresh")
    return old


def _warn_if_long(H: Hamiltonian, T: np.ndarray, U: np.ndarray, h0: float, method: str,
                  opts: dict[str, Any], seed: int, n_rows: int, progress: bool) -> float | None:
    row_s = estimate_row_seconds(H, T, U, h0, method, opts, seed)
    if row_s is None:
        return None
    total = row_s * n_rows
    if total > _LONG_HOUR:
        print(f"spinsim sweep: warning: estimated run time {_fmt_duration(total)} ({n_rows} rows x "
              f"~{_fmt_duration(row_s)}, from a timing probe); interrupt at any time and rerun the same "
              "command to resume", file=sys.stderr, flush=True)
    return total


def _run_rows(H: Hamiltonian, T: np.ndarray, hs: np.ndarray, U: np.ndarray, method: str,
              opts: dict[str, Any], seed: int, pending: list[int], state: SweepResult,
              path: Path | None, executor: Callable | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    solve_kwargs = dict(opts)
    tasks = [RowTask(H=H, T=T, h_value=float(hs[k]), direction=U, seed=seed, field_index=k,
                     method=method, solve_kwargs=solve_kwargs) for k in pending]
    run = executor or serial_executor
    n_done0 = int(state.done.sum())
    with _sigterm_as_interrupt(), tqdm(total=hs.size, initial=n_done0, desc="sweep", unit="row",
                                       disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        for row in run(tasks):
            _store_row(state, row)
            if path is not None:
                _commit(path, state)
            bar.set_postfix_str(f"h={hs[int(row['field_index'])]:.4g}", refresh=False)
            bar.update(1)
