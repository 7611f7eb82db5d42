"""The state a Monte Carlo runner carries from one sweep to the next, by name (checkpoints).

Kept apart from the kernels (plain Python): :mod:`spinsim.checkpoint` saves and restores exactly
these arrays, and the CUDA runner names its device arrays the same way.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STATE_ATTRS", "SERIES", "state_arrays", "load_arrays"]

#: the Runner attributes, besides the chains, walkers and measured series, that a run carries
#: from sweep to sweep (the rest is derived from the constructor's arguments, or scratch)
STATE_ATTRS = ("beta", "delta", "acc", "tries", "swap_acc", "swap_tries", "cluster", "n_clusters")

#: the measured series among the ``out_*`` arrays, each (replicas, n_meas): column j is measured
#: sweep j, written once (a checkpoint appends them, :mod:`spinsim.checkpoint`)
SERIES = ("out_E", "out_mabs", "out_mu")


def state_arrays(runner: Any) -> dict[str, np.ndarray]:
    """The live arrays of a runner's state by name: ``chains/<field>`` (:class:`.arrays.Chains`),
    ``walkers/<field>`` (:class:`.arrays.Walkers`), :data:`STATE_ATTRS` and every measured series
    or accumulator ``out_*``."""
    d = {f"chains/{k}": v for k, v in runner.ch._asdict().items()}
    d.update({f"walkers/{k}": v for k, v in runner.wk._asdict().items()})
    d.update({k: getattr(runner, k) for k in STATE_ATTRS})
    d.update({k: v for k, v in sorted(vars(runner).items()) if k.startswith("out_")})
    return d


def load_arrays(live: dict[str, np.ndarray], saved: dict[str, np.ndarray]) -> None:
    """Copy ``saved[name]`` into each live array in place, after checking every name, shape and
    dtype (ValueError naming the first mismatch; nothing is changed then)."""
    for name, a in live.items():
        if name not in saved:
            raise ValueError(f"checkpoint state lacks {name!r}")
        b = np.asarray(saved[name])
        if b.shape != a.shape or b.dtype != a.dtype:
            raise ValueError(f"checkpoint state {name!r} has shape {b.shape} {b.dtype}, this run "
                             f"needs {a.shape} {a.dtype}")
    for name, a in live.items():
        a[...] = saved[name]
