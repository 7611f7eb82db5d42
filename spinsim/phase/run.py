"""Run a resumable (T, h) sweep: :func:`sweep` (``spinsim.sweep``)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from time import perf_counter
from typing import Any, Callable

import numpy as np

from ..checkpoint import remove_checkpoint
from ..directions import resolve_direction
from ..hamiltonian import Hamiltonian, replace
from ..interrupts import sigterm_as_interrupt
from ..io import InconsistentFileError, SpinsimFileError, remove_stale_temps, root_attrs
from ..validation import check_choice, check_energy_range, check_temperatures
from .fingerprint import Fingerprint, first_difference, fingerprint, jsonable, solver_options
from .samples import check_none_lost, remove as remove_samples
from .store import ROW_SEEDING, SweepResult, commit, empty_state, lock, read_sweep, store_row
from .task import RowTask, run_task

__all__ = ["sweep", "SweepMismatchError", "NonFiniteRowError", "estimate_row_seconds", "resume_file"]

_METHODS = ("mc", "exact", "analytic")
_LONG_HOUR = 3600.0


class SweepMismatchError(SpinsimFileError):
    """An existing sweep file was written with different parameters."""


class NonFiniteRowError(ArithmeticError):
    """A solver returned a non-finite energy for a row: the row is not stored or marked done."""


def _check_row_finite(row: dict, hs: np.ndarray) -> None:
    """A row is stored (and marked done) only when its energies are finite numbers."""
    E = np.asarray(row.get("energy"), dtype=np.float64)
    if not np.all(np.isfinite(E)):
        k = int(row["field_index"])
        bad = float(E[~np.isfinite(E)][0])
        raise NonFiniteRowError(f"row h = {hs[k]!r}: the solver returned a non-finite energy ({bad!r}); the row "
                                "is not marked done (energies must stay below 1e300 in float64)")


def sweep(H: Hamiltonian, T: Any, fields: Any, direction: Any = None, method: str = "mc", *,
          out: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True,
          seed: int = 0, executor: Any = None,
          estimate: bool = True, attrs: dict[str, Any] | None = None,
          checkpoint_interval: float | None = 60.0, **solve_kwargs: Any) -> SweepResult:
    """Sweep temperature and an added field: ``H(h) = H - h sum_i u_i . S_i`` on the T x h grid.

    Parameters
    ----------
    H : the Hamiltonian (its own fields ``H.h`` stay; ``h u_i`` is added on top).
    T : (n_T,) temperatures > 0 (k_B = 1). fields : (n_h,) added field strengths h (any sign).
    direction : ``"prompt"`` (a head's x_i/|x_i|), ``"field"``, ``"top_eigenvector"``, an (n_comp,)
        or (n_sites, n_comp) array (see :mod:`spinsim.phase`); also the projection direction of
        ``projection``.
    method : ``"mc"`` (default), ``"exact"`` or ``"analytic"``.
    out : HDF5 path; rows stream into it and a rerun resumes (:mod:`spinsim.phase.store`).
        None: memory only.
    overwrite : start afresh even if ``out`` holds another sweep.
    progress : progress bar with ETA on stderr (a resumed run and a long-run warning are announced
        on stderr regardless).
    seed : Monte Carlo seed; row k uses ``replica_offset = k * n_T * n_chains``.
    executor : where the rows run: None (here, one after the other), a
        ``concurrent.futures.Executor``, a Dask ``distributed.Client``, or a runner
        ``runner(tasks) -> iterable of row results`` (:func:`spinsim.executors.as_runner`).
    estimate : time a short probe first and warn when the run would take more than an hour.
    attrs : extra root attributes (e.g. model id, head, prompt).
    checkpoint_interval : Monte Carlo with ``out``: each row saves its chain state about every
        this many seconds (0: every ~1 % of the row) into ``.<out name>.checkpoints/row-<k>.h5``
        (and its measured series into ``row-<k>.h5.series``) beside ``out`` (:mod:`spinsim.checkpoint`), so an interrupted or killed row resumes
        mid-row, bit-identical to an uninterrupted run; a row's checkpoint is deleted once the
        row is stored, the folder once the sweep is complete. None: no checkpoints. With an
        executor on other machines the workers write the checkpoints at that same path: use a
        shared filesystem, or None.
    **solve_kwargs : solver options (``algorithm``, ``sweeps``, ``discard``, ``backend``, ...).

    Phase boundaries are not computed here (the engine does not import analysis): call
    ``spinsim.analysis.boundaries.add_sweep_boundaries(res, H)``, which computes them and
    stores them in the file (as ``spinsim sweep`` does).

    Returns
    -------
    SweepResult : a :class:`spinsim.Result` over (h, T) with errors and the completion mask.

    Raises
    ------
    ValueError for bad grids, seeds and options (naming the value); SweepMismatchError when
    ``out`` holds a sweep with other parameters; SpinsimFileError for a foreign, damaged or
    locked ``out``; TypeError for the 0.1 options ``boundaries``/``candidates``.
    """
    if not isinstance(H, Hamiltonian):
        raise TypeError(f"sweep() needs a spinsim.Hamiltonian, got {type(H).__name__}")
    for gone in ("boundaries", "candidates"):
        if gone in solve_kwargs:
            raise TypeError(f"sweep() no longer takes {gone!r}: phase boundaries are computed by the "
                            "caller, spinsim.analysis.boundaries.add_sweep_boundaries(res, H, candidates)")
    check_choice("method", method, _METHODS)
    T = check_temperatures(T)
    hs = np.atleast_1d(np.asarray(fields, dtype=np.float64))
    if hs.ndim != 1 or hs.size == 0:
        raise ValueError(f"fields must be a number or a 1-D list of them, got shape {np.shape(fields)}")
    if not np.all(np.isfinite(hs)):
        raise ValueError(f"field strengths must be finite; got h = {float(hs[~np.isfinite(hs)][0])!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    for bad in ("seed", "direction", "replica_offset", "progress", "checkpoint"):
        if bad in solve_kwargs:
            raise ValueError(f"sweep() sets {bad!r} itself (per row); do not pass it as a solver option")
    U, u_label = resolve_direction(H, direction)
    check_energy_range(H, T, float(np.max(np.abs(hs))), U)     # before any file is touched
    opts = solver_options(method, solve_kwargs)
    if opts.get("ladder", "fixed") != "fixed":
        raise ValueError(f"ladder={opts['ladder']!r} is not a sweep option: a tuned ladder would give each field "
                         "row its own temperatures, and a sweep's rows share one T grid; tune once with "
                         "spinsim.solve(H, T, method='mc', algorithm='pt', ladder=...) and sweep over res.T")
    if checkpoint_interval is not None and not (isinstance(checkpoint_interval, (int, float))
                                                and np.isfinite(checkpoint_interval) and checkpoint_interval >= 0):
        raise ValueError(f"checkpoint_interval must be None or a number of seconds >= 0, got {checkpoint_interval!r}")
    fp = fingerprint(H, T, hs, U, method, int(seed), opts)
    run_attrs = root_attrs("sweep", **_root_params(H, method, int(seed), u_label, opts, attrs))
    path = Path(out) if out is not None else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_folder(path) if path is not None and method == "mc" and checkpoint_interval is not None else None
    with lock(path) if path is not None else contextlib.nullcontext():
        state = None
        if path is not None:
            remove_stale_temps(path)
            if path.exists() and not overwrite:
                state = resume_file(path, read_sweep, fp, attrs=attrs)
                check_none_lost(path, state.bins, state.done, state.samples_on_disk)     # before any new row
                run_attrs["created"] = state.attrs.get("created", run_attrs["created"])
                state.attrs = run_attrs
                _say(f"spinsim sweep: resuming {path}: {int(state.done.sum())} of {hs.size} field rows "
                     "already done", not state.complete)
        fresh = state is None
        if fresh and path is not None:
            remove_samples(path)          # a stale folder of samples (.samples) of an earlier run
        if ckpt is not None:
            _clean_checkpoints(ckpt, None if fresh else state.done)
        if fresh:
            state = empty_state(T, hs, U, fp, run_attrs, method=method, seed=int(seed),
                                backend=str(opts.get("backend", "cpu")), n_sites=H.n_sites,
                                n_free=H.n_free, n_comp=H.n_comp)
        state.path = path
        pending = [k for k in range(hs.size) if not state.done[k]]
        if pending and estimate:   # also checks the solver options before a file is written
            _warn_if_long(H, T, U, hs[pending[0]], method, opts, int(seed), len(pending))
        if fresh and path is not None:
            commit(path, state)
        if pending:
            try:
                _run_rows(H, T, hs, U, method, opts, int(seed), pending, state, path, executor, progress,
                          ckpt, checkpoint_interval)
            except BaseException:
                if fresh and path is not None and not state.done.any() and not _has_checkpoints(ckpt):
                    path.unlink(missing_ok=True)   # nothing finished: no empty file to block the corrected rerun
                raise
        if ckpt is not None and state.complete:
            shutil.rmtree(ckpt, ignore_errors=True)
    return state


# ----------------------------------------------------------------------------- row checkpoints
def checkpoint_folder(path: Path) -> Path:
    """The folder of a sweep file's row checkpoints: ``.<name>.checkpoints`` beside it."""
    return path.with_name(f".{path.name}.checkpoints")


def _row_checkpoint(folder: Path, k: int) -> Path:
    return folder / f"row-{k}.h5"


def _has_checkpoints(folder: Path | None) -> bool:
    return folder is not None and folder.is_dir() and any(folder.glob("row-*.h5"))


def _clean_checkpoints(folder: Path, done: np.ndarray | None) -> None:
    """A fresh sweep (``done`` None) starts without checkpoints; a resumed one drops those of rows
    already stored (left by a run stopped between storing a row and deleting its checkpoint)."""
    if done is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for k in np.flatnonzero(done):
        remove_checkpoint(_row_checkpoint(folder, int(k)))


def _announce_checkpoints(folder: Path, pending: list[int], progress: bool) -> None:
    from ..checkpoint import KIND
    from ..io import open_spinsim

    for k in pending:
        p = _row_checkpoint(folder, k)
        if p.exists():
            with contextlib.suppress(SpinsimFileError, KeyError):
                with open_spinsim(p, kind=KIND) as f:
                    _say(f"spinsim sweep: row {k} resumes from its checkpoint at sweep {int(f.attrs['done'])} "
                         f"of {int(f.attrs['total'])}", progress)


def _root_params(H: Hamiltonian, method: str, seed: int, u_label: str, opts: dict[str, Any],
                 attrs: dict[str, Any] | None) -> dict[str, Any]:
    head_meta = dict(H.provenance)   # also in H.describe(); named here so files always carry it
    params: dict[str, Any] = {"seed": seed, "method": method, "direction": u_label,
                              "row_seeding": ROW_SEEDING}
    params.update({f"solver_{k}": json.dumps(jsonable(v)) if isinstance(v, (np.ndarray, list, tuple)) else v
                   for k, v in opts.items()})
    params.update(H.describe())
    params.update(head_meta)
    params.update(attrs or {})
    return params


def resume_file(path: Path, read: Callable[[Path], Any], fp: Fingerprint, *, what: str = "sweep",
                attrs: dict[str, Any] | None = None, mismatch: type[SweepMismatchError] | None = None) -> Any:
    """The run stored in ``path`` (read by ``read``: :func:`read_sweep`, an atlas reader ...) if its
    fingerprint is ``fp``; otherwise a one-line refusal that says how to go on and never advises
    discarding finished rows without saying so. ``what`` names the content in the messages;
    ``attrs`` (the run's root attributes) name the caller's parameter behind a changed
    Hamiltonian. Raises ``mismatch`` (default :class:`SweepMismatchError`) for another run's file,
    :class:`~spinsim.io.InconsistentFileError` or :class:`~spinsim.io.SpinsimFileError` for one
    that cannot be read (FileInUseError and WriterCrashedError as they are)."""
    from ..h5diag import FileInUseError, NotHDF5Error, WriterCrashedError

    try:
        old = read(path)
    except (FileInUseError, WriterCrashedError):
        raise                                   # their messages say how to go on; the data may be whole
    except NotHDF5Error as exc:
        raise SpinsimFileError(f"cannot resume: {exc}; it holds no {what}: move it away or use --overwrite "
                               "(overwrite=True) to replace it") from None
    except InconsistentFileError as exc:
        raise InconsistentFileError(f"cannot resume: {exc}; it may hold finished rows: move it aside and "
                                    "rerun (--overwrite would discard them)") from None
    except SpinsimFileError as exc:
        raise SpinsimFileError(f"cannot resume: {exc}; move it aside and rerun, or use --overwrite "
                               "(overwrite=True) to replace it") from None
    diff = first_difference([tuple(x) for x in old.fingerprint], [tuple(x) for x in fp])
    if diff is not None and diff.startswith("'hamiltonian_sha256'"):
        # a changed system: name the caller's parameter that changed it (--L, --J, --prompt ...)
        for k, v in (attrs or {}).items():
            if k in old.attrs and old.attrs[k] != v and not isinstance(v, (np.ndarray, list, tuple, dict)):
                diff = f"{k!r} differs (file has {old.attrs[k]!r}, this run {v!r})"
                break
    if diff is not None:
        n = int(old.done.sum())
        raise (mismatch or SweepMismatchError)(
            f"{path}: cannot resume: parameter {diff}; it holds {n} finished row{'' if n == 1 else 's'} of another "
            f"{'run' if what == 'sweep' else what}: choose another --out, or use --overwrite (overwrite=True) to "
            "discard them")
    return old


# ----------------------------------------------------------------------------- cost estimate
def estimate_row_seconds(H: Hamiltonian, T: np.ndarray, U: np.ndarray, h_value: float,
                         method: str, opts: dict[str, Any], seed: int) -> float | None:
    """Seconds one row should take, from a timing probe (Monte Carlo only; None otherwise).

    Two short runs (4 and 12 measured sweeps, no equilibration) give the time per sweep free of
    compilation and fixed overheads, ``(t_12 - t_4) / 8``, floored at ``t_12 / 24`` (half the
    plain average, against noisy timings); a row costs ``(sweeps + discard)`` of them.
    """
    if method != "mc":
        return None
    import warnings

    from ..solvers import solve

    kw = dict(opts)
    kw.update(discard=0, progress=False)
    Hk = replace(H, h=H.h + float(h_value) * U)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in (4, 12):
            kw["sweeps"] = s
            t0 = perf_counter()
            solve(Hk, T, method="mc", seed=seed, direction=U, **kw)
            times.append(perf_counter() - t0)
    per_sweep = max((times[1] - times[0]) / 8.0, times[1] / 12.0 * 0.5, 1e-9)
    return per_sweep * (int(opts.get("sweeps", 2000)) + int(opts.get("discard") or 0))


def _fmt_duration(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def _warn_if_long(H: Hamiltonian, T: np.ndarray, U: np.ndarray, h0: float, method: str,
                  opts: dict[str, Any], seed: int, n_rows: int) -> float | None:
    row_s = estimate_row_seconds(H, T, U, h0, method, opts, seed)
    if row_s is None:
        return None
    total = row_s * n_rows
    if total > _LONG_HOUR:
        print(f"spinsim sweep: warning: estimated run time {_fmt_duration(total)} ({n_rows} rows x "
              f"~{_fmt_duration(row_s)}, from a timing probe); interrupt at any time and rerun the same "
              "command to resume", file=sys.stderr, flush=True)
    return total


# ----------------------------------------------------------------------------- running rows
def _say(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _run_rows(H: Hamiltonian, T: np.ndarray, hs: np.ndarray, U: np.ndarray, method: str,
              opts: dict[str, Any], seed: int, pending: list[int], state: SweepResult,
              path: Path | None, executor: Any, progress: bool, ckpt: Path | None = None,
              checkpoint_interval: float | None = None) -> None:
    from tqdm.auto import tqdm

    from ..executors import as_runner

    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        _announce_checkpoints(ckpt, pending, True)
    tasks = [RowTask(H=H, T=T, h_value=float(hs[k]), direction=U, seed=seed, field_index=k,
                     method=method, solve_kwargs=dict(opts),
                     checkpoint=None if ckpt is None else str(_row_checkpoint(ckpt, k)),
                     checkpoint_interval=60.0 if checkpoint_interval is None else float(checkpoint_interval))
             for k in pending]
    run = as_runner(executor, run_task)
    n_done0 = int(state.done.sum())
    with sigterm_as_interrupt(), tqdm(total=hs.size, initial=n_done0, desc="sweep", unit="row",
                                       disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        for row in run(tasks):
            _check_row_finite(row, hs)
            store_row(state, row)
            if path is not None:
                commit(path, state)
            if ckpt is not None:
                remove_checkpoint(_row_checkpoint(ckpt, int(row["field_index"])))
            bar.set_postfix_str(f"h={hs[int(row['field_index'])]:.4g}", refresh=False)
            bar.update(1)
