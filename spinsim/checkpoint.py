"""Checkpoints inside one Monte Carlo run: the chain state at intervals, so a killed run resumes
mid-run and ends bit-identical to an uninterrupted one.

A checkpoint is two files:

* ``<path>`` (kind ``"checkpoint"``), rewritten whole by the atomic writer
  :func:`spinsim.atomic.atomic_h5` at each save, so a kill at any instant leaves the previous one:

  - ``/state/chains/<S, X, E, mvec, mu, P, Q>``: spins, discrete indices, the tracked energies,
    magnetisations and low-rank projections of every replica (the tracked values, not
    recomputed: recomputing would round differently);
  - ``/state/walkers/<...>``: the replica-to-temperature map (walker at each slot) and the
    walkers' directions and round trips (:class:`spinsim.kernels.arrays.Walkers`);
  - ``/state/beta``: the (possibly tuned) ladder; ``delta`` (Metropolis steps), acceptance and
    swap counters, Wolff cluster counts, and the accumulators ``out_*`` that are not series;
  - attributes ``done`` (sweeps completed, every action due at that sweep included), ``total``,
    ``measured`` (columns of the measured series that belong to the state: ``done - discard``,
    clipped to the run), ``identity`` (sha256 of everything that determines the chains:
    Hamiltonian, temperatures, seed, replica ids, every solver option), ``params`` (those
    parameters as JSON, so a refusal names the one that differs) and the usual root attributes.

* ``<path>.series`` (kind ``"checkpoint-series"``): the measured series (``series``: the runner
  arrays whose column j is measured sweep j and is written once, E, |m| and m.u of every
  replica), each a contiguous dataset of its full length (replicas, measured sweeps) allocated
  when the file is made (through the atomic writer, at the first save after measuring began).
  Later saves write only the columns measured since the previous save into that allocated space
  (at the byte offsets HDF5 reports for the datasets, with ``os.pwrite``: HDF5 never opens the
  file for writing and no byte outside the datasets changes), fsync it, and only then replace
  ``<path>`` with the new ``measured``. A kill
  during that write leaves columns beyond the stored ``measured``, which a resume ignores and
  the resumed run writes again.

A save therefore writes the chain state plus the newly measured columns, not the whole series.
No random-number state needs saving: every draw is keyed by (seed, replica, sweep, slot)
(:mod:`spinsim.kernels.rng`), so resuming at sweep ``done`` draws exactly the numbers the
uninterrupted run draws from there, none replayed and none skipped. A finished run saves
nothing at its end: its result is the caller's to store (a sweep deletes the row's checkpoint
once the row is committed), and a rerun resumes from the last save.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .io import InconsistentFileError, SpinsimFileError, atomic_h5, from_attr, open_spinsim, root_attrs

__all__ = ["Checkpointer", "CheckpointMismatchError", "run_identity", "describe_params", "first_difference",
           "series_path", "remove_checkpoint", "KIND", "SERIES_KIND"]

KIND = "checkpoint"
#: the kind of a checkpoint's series file
SERIES_KIND = "checkpoint-series"

#: how to go on after a refusal
_HOW = ("rerun with the same parameters, or delete the checkpoint (spinsim sweep: --overwrite) to start afresh")


class CheckpointMismatchError(SpinsimFileError):
    """A checkpoint file written by another run; the message names the parameter that differs,
    its stored and its requested value."""


def _encode(v: Any) -> Any:
    """A parameter as JSON holds it: arrays by their sha256, shape and dtype (with their values
    when they are small, so that a refusal can show them)."""
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return {"sha256": hashlib.sha256(a.tobytes()).hexdigest(), "shape": list(a.shape), "dtype": str(a.dtype)}
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _encode(x) for k, x in sorted(v.items())}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


#: arrays of at most this many entries are shown by value when a checkpoint is refused
_SHOWN = 16


def describe_params(**params: Any) -> dict[str, Any]:
    """The run's parameters as stored in a checkpoint (attribute ``params``, JSON) to name the one
    that differs when it is refused: :func:`run_identity`'s encoding, plus the values of small
    numeric arrays under ``"values"``. The order is kept: pass the parameters a caller sets before
    those that follow from them (the initial state after the seed), so the one named is the cause."""
    out = {}
    for k, v in params.items():
        e = _encode(v)
        if isinstance(v, np.ndarray) and v.size <= _SHOWN and v.dtype.kind in "biuf":
            e["values"] = v.ravel().tolist()
        out[str(k)] = e
    return out


def run_identity(**params: Any) -> str:
    """sha256 of the parameters that determine a run's chains (arrays by their bytes)."""
    text = json.dumps(_encode(params), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _show(v: Any) -> str:
    """A stored parameter value for a message: numbers and strings as they are, a small array by
    its values, a large one by its shape and the start of its sha256."""
    if isinstance(v, dict) and "sha256" in v:
        if "values" in v:
            return repr(v["values"])
        return f"an array of shape {tuple(v['shape'])} (sha256 {v['sha256'][:12]}...)"
    return repr(v)


def first_difference(stored: dict[str, Any], requested: dict[str, Any]) -> str | None:
    """``"with sweeps=200, this run asks for sweeps=400"`` (or ``"without x, this run asks for
    x=..."``, ``"with x=..., this run does not set x"``) for the first parameter (in the requested
    order, then those only stored) whose stored and requested values differ (both as
    :func:`describe_params` gives them), or None when they agree."""
    for name in [*requested, *(k for k in stored if k not in requested)]:
        a, b = stored.get(name, _MISSING), requested.get(name, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict) and "sha256" in a and "sha256" in b:
            same = {k: a[k] for k in ("sha256", "shape", "dtype")} == {k: b.get(k) for k in ("sha256", "shape", "dtype")}
        else:
            same = a == b
        if not same:
            was = f"without {name}" if a is _MISSING else f"with {name}={_show(a)}"
            now = f"does not set {name}" if b is _MISSING else f"asks for {name}={_show(b)}"
            return f"{was}, this run {now}"
    return None


_MISSING = object()


def series_path(path: str | os.PathLike) -> Path:
    """The file of a checkpoint's measured series: ``<path>.series`` (module docstring)."""
    p = Path(path)
    return p.with_name(p.name + ".series")


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete a checkpoint and its series file (either may be absent)."""
    Path(path).unlink(missing_ok=True)
    series_path(path).unlink(missing_ok=True)


def _layout(path: Path, names: tuple[str, ...]) -> dict[str, tuple[int, np.dtype]]:
    """Byte offset and dtype of each series dataset in the series file (opened read-only): each
    must be stored contiguously and allocated. Raises ValueError otherwise."""
    out = {}
    with h5py.File(path, "r") as f:
        for name in names:
            d = f[name]
            offset = d.id.get_offset()
            if d.chunks is not None or d.compression is not None or offset is None:
                raise ValueError(f"{path}: {name} is not one contiguous allocated block")
            out[name] = (int(offset), d.dtype)
    return out


class Checkpointer:
    """Saves a runner's state (``runner.state()`` / ``runner.load_state()``) to ``path`` at most
    every ``interval_s`` seconds (0: at every call of :meth:`maybe_save`), and restores it.

    ``series``: names of the runner's state arrays (replicas, n_meas) whose column j is measured
    sweep j, written once; ``discard``: the sweeps before measuring starts. They are saved by
    appending the new columns (module docstring). ``params``: :func:`describe_params` of the run,
    named in a refusal.

    Raises :class:`CheckpointMismatchError` from :meth:`load` when ``path`` holds another run's
    checkpoint, SpinsimFileError when it is not a checkpoint, InconsistentFileError when its
    series file is missing or damaged, ValueError for a bad interval."""

    def __init__(self, path: str | os.PathLike, identity: str, interval_s: float = 60.0,
                 params: dict[str, Any] | None = None, series: tuple[str, ...] = (), discard: int = 0) -> None:
        if not (isinstance(interval_s, (int, float)) and np.isfinite(interval_s) and interval_s >= 0):
            raise ValueError(f"checkpoint interval must be a number of seconds >= 0, got {interval_s!r}")
        self.path = Path(path)
        self.identity = identity
        self.interval_s = float(interval_s)
        self.params = params      # describe_params(...) of the run: named in a refusal
        self.series = tuple(series)
        self.discard = int(discard)
        self._written: int | None = None   # columns of the series in this run's series file (None: no file yet)
        self._layout: dict[str, tuple[int, np.dtype]] = {}   # series name -> (byte offset, dtype) in that file
        self._last = time.monotonic()

    @property
    def series_path(self) -> Path:
        return series_path(self.path)

    def load(self, runner: Any, total: int) -> int:
        """Restore the saved state into ``runner``; returns the sweeps already done (0 when there
        is no checkpoint)."""
        if not self.path.exists():
            return 0
        with open_spinsim(self.path, kind=KIND) as f:
            if from_attr(f.attrs.get("identity")) != self.identity:
                raise CheckpointMismatchError(self._refusal(from_attr(f.attrs.get("params"))))
            done = int(f.attrs["done"])
            if int(f.attrs["total"]) != total or not 0 <= done <= total:
                raise CheckpointMismatchError(
                    f"{self.path}: checkpoint was written at sweep {done} of {int(f.attrs['total'])} sweeps, "
                    f"this run asks for {total} sweeps; {_HOW}")
            measured = int(f.attrs.get("measured", -1))     # -1: series inside /state (written before)
            saved: dict[str, np.ndarray] = {}
            f["state"].visititems(lambda name, d: saved.__setitem__(name, d[()]) if hasattr(d, "shape") else None)
        if measured > 0:
            saved.update(self._load_series(measured))
        elif measured == 0 and self.series:   # nothing measured yet: the series are the fresh runner's (zeros)
            live = runner.state()
            saved.update({name: live[name] for name in self.series})
        runner.load_state(saved)
        return done

    def _load_series(self, measured: int) -> dict[str, np.ndarray]:
        """The series' first ``measured`` columns from the series file, zeros after them."""
        try:
            with open_spinsim(self.series_path, kind=SERIES_KIND) as f:
                if from_attr(f.attrs.get("identity")) != self.identity:
                    raise InconsistentFileError(f"{self.series_path}: the series of another run")
                out = {}
                for name in self.series:
                    d = f[name]
                    if not 0 <= measured <= d.shape[-1]:
                        raise InconsistentFileError(f"{self.series_path}: {name} has {d.shape[-1]} columns, the "
                                                    f"checkpoint {measured}")
                    a = np.zeros(d.shape, d.dtype)
                    a[..., :measured] = d[..., :measured]
                    out[name] = a
            self._layout = _layout(self.series_path, self.series)
        except (SpinsimFileError, KeyError, OSError, ValueError) as exc:
            raise InconsistentFileError(f"{self.path}: its measured series cannot be read ({exc}); delete the "
                                        "checkpoint (spinsim sweep: --overwrite) to start afresh") from None
        self._written = measured
        return out

    def _refusal(self, stored: str | None) -> str:
        """The message of a checkpoint written with other parameters, naming the first that differs."""
        diff = None
        if stored is not None and self.params is not None:
            with contextlib.suppress(ValueError, TypeError):
                diff = first_difference(json.loads(stored), self.params)
        if diff is None:          # a checkpoint written before parameters were stored in it
            diff = "with other parameters (this checkpoint does not record which)"
        return f"{self.path}: checkpoint was written {diff}; {_HOW}"

    def maybe_save(self, runner: Any, done: int, total: int, force: bool = False) -> bool:
        """Save when ``interval_s`` has passed since the last save (or ``force``); returns
        whether it saved."""
        if not force and time.monotonic() - self._last < self.interval_s:
            return False
        self.save(runner, done, total)
        return True

    def save(self, runner: Any, done: int, total: int) -> None:
        """Write the state after ``done`` sweeps: the newly measured columns of the series into
        the series file, then the rest atomically (the previous checkpoint stays whole until the
        new one has replaced it)."""
        state = runner.state()
        measured = 0
        if self.series:
            n_meas = state[self.series[0]].shape[-1]
            measured = int(min(max(int(done) - self.discard, 0), n_meas))
            if measured > 0:
                self._save_series(state, measured)
        with atomic_h5(self.path) as f:
            extra = {} if self.params is None else {"params": json.dumps(self.params)}
            for k, v in root_attrs(KIND, identity=self.identity, done=int(done), total=int(total),
                                   measured=measured, **extra).items():
                f.attrs[k] = v
            g = f.create_group("state")
            g.attrs["long_name"] = "Monte Carlo chain state after 'done' sweeps (spinsim.checkpoint)"
            for name, a in state.items():
                if name not in self.series:
                    g.create_dataset(name, data=a)
        self._last = time.monotonic()

    def _save_series(self, state: dict[str, np.ndarray], measured: int) -> None:
        """Columns ``[written, measured)`` of each series into the series file (made whole, with
        every column so far, when this run has none yet); durable on return."""
        p = self.series_path
        if self._written is None:
            with atomic_h5(p) as f:
                for k, v in root_attrs(SERIES_KIND, identity=self.identity).items():
                    f.attrs[k] = v
                for name in self.series:        # contiguous, allocated now: later writes touch raw data only
                    d = f.create_dataset(name, data=state[name], chunks=None)
                    d.attrs["long_name"] = (f"measured series {name} (replica, measured sweep); valid up to "
                                            "the checkpoint's 'measured' column")
            self._layout = _layout(p, self.series)
        elif measured > self._written:
            a, b = self._written, measured
            fd = os.open(p, os.O_WRONLY)
            try:
                for name in self.series:
                    offset, dtype = self._layout[name]
                    x = np.ascontiguousarray(state[name], dtype=dtype)
                    n = x.shape[-1]
                    for r, row in enumerate(x.reshape(-1, n)):
                        os.pwrite(fd, row[a:b].tobytes(), offset + (r * n + a) * dtype.itemsize)
                os.fsync(fd)
            finally:
                os.close(fd)
        self._written = measured
