"""Checkpoints inside one Monte Carlo run: the chain state at intervals, so a killed run resumes
mid-run and ends bit-identical to an uninterrupted one.

What is saved (an HDF5 file of kind ``"checkpoint"``, written whole by the atomic writer
:func:`spinsim.atomic.atomic_h5`, so a kill at any instant leaves the previous checkpoint):

* ``/state/chains/<S, X, E, mvec, mu, P, Q>``: spins, discrete indices, the tracked energies,
  magnetisations and low-rank projections of every replica (the tracked values, not recomputed:
  recomputing would round differently);
* ``/state/walkers/<...>``: the replica-to-temperature map (walker at each slot) and the walkers'
  directions and round trips (:class:`spinsim.kernels.arrays.Walkers`);
* ``/state/beta``: the (possibly tuned) ladder; ``delta`` (Metropolis steps), acceptance and
  swap counters, Wolff cluster counts;
* ``/state/out_*``: the measured series and accumulators so far;
* attributes ``done`` (sweeps completed, every action due at that sweep included), ``total``,
  ``identity`` (sha256 of everything that determines the chains: Hamiltonian, temperatures,
  seed, replica ids, every solver option) and the usual root attributes.

No random-number state needs saving: every draw is keyed by (seed, replica, sweep, slot)
(:mod:`spinsim.kernels.rng`), so resuming at sweep ``done`` draws exactly the numbers the
uninterrupted run draws from there, none replayed and none skipped.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .io import SpinsimFileError, atomic_h5, from_attr, open_spinsim, root_attrs

__all__ = ["Checkpointer", "CheckpointMismatchError", "run_identity", "describe_params", "first_difference", "KIND"]

KIND = "checkpoint"

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
    """``"sweeps=200, this run asks for sweeps=400"`` for the first parameter (in the requested
    order, then those only stored) whose stored and requested values differ (both as
    :func:`describe_params` gives them), or None when they agree."""
    for name in [*requested, *(k for k in stored if k not in requested)]:
        a, b = stored.get(name, _MISSING), requested.get(name, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict) and "sha256" in a and "sha256" in b:
            same = {k: a[k] for k in ("sha256", "shape", "dtype")} == {k: b.get(k) for k in ("sha256", "shape", "dtype")}
        else:
            same = a == b
        if not same:
            was = "without it" if a is _MISSING else f"{name}={_show(a)}"
            now = f"without {name}" if b is _MISSING else f"{name}={_show(b)}"
            return f"{was}, this run asks for {now}"
    return None


_MISSING = object()


class Checkpointer:
    """Saves a runner's state (``runner.state()`` / ``runner.load_state()``) to ``path`` at most
    every ``interval_s`` seconds (0: at every call of :meth:`maybe_save`), and restores it.

    Raises :class:`CheckpointMismatchError` from :meth:`load` when ``path`` holds another run's
    checkpoint, SpinsimFileError when it is not a checkpoint, ValueError for a bad interval."""

    def __init__(self, path: str | os.PathLike, identity: str, interval_s: float = 60.0,
                 params: dict[str, Any] | None = None) -> None:
        if not (isinstance(interval_s, (int, float)) and np.isfinite(interval_s) and interval_s >= 0):
            raise ValueError(f"checkpoint interval must be a number of seconds >= 0, got {interval_s!r}")
        self.path = Path(path)
        self.identity = identity
        self.params = params      # describe_params(...) of the run: named in a refusal
        self.interval_s = float(interval_s)
        self._last = time.monotonic()

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
            saved: dict[str, np.ndarray] = {}
            f["state"].visititems(lambda name, d: saved.__setitem__(name, d[()]) if hasattr(d, "shape") else None)
        runner.load_state(saved)
        return done

    def _refusal(self, stored: str | None) -> str:
        """The message of a checkpoint written with other parameters, naming the first that differs."""
        diff = None
        if stored is not None and self.params is not None:
            with contextlib.suppress(ValueError, TypeError):
                diff = first_difference(json.loads(stored), self.params)
        if diff is None:          # a checkpoint written before parameters were stored in it
            diff = "other parameters (this checkpoint does not record which)"
        return f"{self.path}: checkpoint was written with {diff}; {_HOW}"

    def maybe_save(self, runner: Any, done: int, total: int, force: bool = False) -> bool:
        """Save when ``interval_s`` has passed since the last save (or ``force``); returns
        whether it saved."""
        if not force and time.monotonic() - self._last < self.interval_s:
            return False
        self.save(runner, done, total)
        return True

    def save(self, runner: Any, done: int, total: int) -> None:
        """Write the state after ``done`` sweeps (atomically: the previous checkpoint stays whole
        until the new one has replaced it)."""
        state = runner.state()
        with atomic_h5(self.path) as f:
            extra = {} if self.params is None else {"params": json.dumps(self.params)}
            for k, v in root_attrs(KIND, identity=self.identity, done=int(done), total=int(total), **extra).items():
                f.attrs[k] = v
            g = f.create_group("state")
            g.attrs["long_name"] = "Monte Carlo chain state after 'done' sweeps (spinsim.checkpoint)"
            for name, a in state.items():
                g.create_dataset(name, data=a)
        self._last = time.monotonic()
