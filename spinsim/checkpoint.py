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

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .io import SpinsimFileError, atomic_h5, from_attr, open_spinsim, root_attrs

__all__ = ["Checkpointer", "CheckpointMismatchError", "run_identity", "KIND"]

KIND = "checkpoint"


class CheckpointMismatchError(SpinsimFileError):
    """A checkpoint file written by another run (other parameters)."""


def run_identity(**params: Any) -> str:
    """sha256 of the parameters that determine a run's chains (arrays by their bytes)."""
    def enc(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            return {"sha256": hashlib.sha256(a.tobytes()).hexdigest(), "shape": list(a.shape),
                    "dtype": str(a.dtype)}
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            return v.item()
        if isinstance(v, (list, tuple)):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            return {str(k): enc(x) for k, x in sorted(v.items())}
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        return repr(v)
    text = json.dumps(enc(params), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Checkpointer:
    """Saves a runner's state (``runner.state()`` / ``runner.load_state()``) to ``path`` at most
    every ``interval_s`` seconds (0: at every call of :meth:`maybe_save`), and restores it.

    Raises :class:`CheckpointMismatchError` from :meth:`load` when ``path`` holds another run's
    checkpoint, SpinsimFileError when it is not a checkpoint, ValueError for a bad interval."""

    def __init__(self, path: str | os.PathLike, identity: str, interval_s: float = 60.0) -> None:
        if not (isinstance(interval_s, (int, float)) and np.isfinite(interval_s) and interval_s >= 0):
            raise ValueError(f"checkpoint interval must be a number of seconds >= 0, got {interval_s!r}")
        self.path = Path(path)
        self.identity = identity
        self.interval_s = float(interval_s)
        self._last = time.monotonic()

    def load(self, runner: Any, total: int) -> int:
        """Restore the saved state into ``runner``; returns the sweeps already done (0 when there
        is no checkpoint)."""
        if not self.path.exists():
            return 0
        with open_spinsim(self.path, kind=KIND) as f:
            if from_attr(f.attrs.get("identity")) != self.identity:
                raise CheckpointMismatchError(
                    f"{self.path}: a checkpoint of another run (other parameters); delete it or choose "
                    "another checkpoint path")
            done = int(f.attrs["done"])
            if int(f.attrs["total"]) != total or not 0 <= done <= total:
                raise CheckpointMismatchError(f"{self.path}: checkpoint at sweep {done} of "
                                              f"{int(f.attrs['total'])}, this run has {total} sweeps")
            saved: dict[str, np.ndarray] = {}
            f["state"].visititems(lambda name, d: saved.__setitem__(name, d[()]) if hasattr(d, "shape") else None)
        runner.load_state(saved)
        return done

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
            for k, v in root_attrs(KIND, identity=self.identity, done=int(done), total=int(total)).items():
                f.attrs[k] = v
            g = f.create_group("state")
            g.attrs["long_name"] = "Monte Carlo chain state after 'done' sweeps (spinsim.checkpoint)"
            for name, a in state.items():
                g.create_dataset(name, data=a)
        self._last = time.monotonic()
