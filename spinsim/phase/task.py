"""One row of a sweep: the unit of work an executor runs (a pure, picklable function)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from .. import schema
from ..hamiltonian import Hamiltonian, replace
from .tempering import row_tempering

__all__ = ["RowTask", "compute_row", "run_task", "serial_executor"]


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
    checkpoint: str | None = None      # Monte Carlo: the row's checkpoint file (spinsim.checkpoint)
    checkpoint_interval: float = 60.0  # seconds between its saves (0: every ~1 % of the row)


def compute_row(H: Hamiltonian, T: np.ndarray, h_value: float, direction: np.ndarray, seed: int,
                field_index: int, solve_kwargs: dict, method: str = "mc", checkpoint: str | None = None,
                checkpoint_interval: float = 60.0) -> dict[str, Any]:
    """Solve ``H`` with the field ``h_value * u_i`` added, over the temperature grid T.

    A pure function of its arguments (safe to run on any worker, any number of times): the
    Monte Carlo chains use ``seed`` and replica ids offset by ``field_index * n_T * n_chains``.
    Returns ``{"field_index": k, "<obs>": (n_T,), "<obs>_err": (n_T,), ...,
    "magnetization_vector": (n_T, n_comp) (the mean over chains), "chain_magnetization_vector":
    (n_T, n_chains, n_comp) each chain's own mean (Monte Carlo; None otherwise), "warnings": [str],
    "elapsed_s": float, "bins":
    spinsim.bins.Bins over T or None}`` with every
    observable of :data:`spinsim.schema.OBSERVABLES` that has an error (NaN where the method does
    not provide it) and the others the method provides (e.g. ``tau_int``, ``log_Z``).

    ``checkpoint`` (Monte Carlo): a file where the row saves its chain state every
    ``checkpoint_interval`` seconds and from which a rerun of the row resumes, bit-identical to an
    uninterrupted row (:mod:`spinsim.checkpoint`); the caller deletes it once the row is stored.
    """
    from ..solvers import solve

    T = np.asarray(T, dtype=np.float64)
    U = np.asarray(direction, dtype=np.float64)
    Hk = replace(H, h=H.h + float(h_value) * U)
    kw = dict(solve_kwargs)
    if method == "mc":
        from ..solvers.mc import DEFAULT_CHAINS
        n_chains = int(kw.get("n_chains", DEFAULT_CHAINS))
        kw.update(seed=int(seed), replica_offset=int(field_index) * T.size * n_chains, progress=False)
        if checkpoint is not None:
            kw.update(checkpoint=checkpoint, checkpoint_interval=float(checkpoint_interval))
    t0 = time.perf_counter()
    res = solve(Hk, T, method=method, direction=U, **kw)
    out: dict[str, Any] = {"field_index": int(field_index), "elapsed_s": time.perf_counter() - t0}
    for name in schema.names(errors=True):
        v = getattr(res, name)
        if v is not None:
            out[name] = np.asarray(v, dtype=np.float64)
        elif schema.observable(name).has_error:
            out[name] = np.full(T.size, np.nan)
    mv = res.magnetization_vector
    out["magnetization_vector"] = (np.full((T.size, H.n_comp), np.nan) if mv is None
                                   else np.asarray(mv, dtype=np.float64).reshape(T.size, H.n_comp))
    cmv = getattr(res, "chain_magnetization_vector", None)          # Monte Carlo: each chain's <m>
    out["chain_magnetization_vector"] = None if cmv is None else np.asarray(cmv, dtype=np.float64)
    out["warnings"] = [str(w) for w in res.meta.get("warnings", [])]
    rp = res.meta.get("rhat_pvalue")                 # Monte Carlo: per T (spinsim.observables.Thermo)
    out["rhat_pvalue"] = None if rp is None else np.asarray(rp, dtype=np.float64)
    out["tempering"] = row_tempering(res.meta, T)   # replica exchange: swap acceptance, round trips
    out["bins"] = res.bins           # Monte Carlo: the binned series (spinsim.bins), else None
    return out


def run_task(task: RowTask) -> dict[str, Any]:
    """``compute_row`` on a :class:`RowTask` (a top-level function, for executors)."""
    return compute_row(task.H, task.T, task.h_value, task.direction, task.seed, task.field_index,
                       task.solve_kwargs, task.method, task.checkpoint, task.checkpoint_interval)


def serial_executor(tasks: Sequence[RowTask]) -> Iterator[dict[str, Any]]:
    """The default executor: run the row tasks one after the other, yielding each result.

    An executor is any callable ``executor(tasks) -> iterable of compute_row results`` yielding
    results as they finish, in any order (each carries its ``field_index``); see
    :mod:`spinsim.executors` for a Dask one.
    """
    for task in tasks:
        yield run_task(task)
