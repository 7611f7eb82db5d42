"""The sweep schedule of one Monte Carlo run: ladder tuning stages, equilibration, measurement,
and checkpoints between chunks.

Sweeps ``0 .. discard - 1`` are discarded; the first ``sum(stages)`` of them are the tuning
stages of a tempering ladder (:mod:`spinsim.ladder`): after each stage the ladder is replaced
and the exchange statistics start afresh. After sweep ``discard`` the counters are reset
(``runner.reset_counters``) and sweeps ``discard .. discard + sweeps - 1`` are measured. Every
action due after a sweep (a new ladder, a reset) happens before the checkpoint of that sweep, so
a checkpoint at ``done`` holds the state in which sweep ``done`` starts; the counter-based
generator makes the draws of sweep ``done`` independent of how the run got there.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..checkpoint import Checkpointer
from ..ladder import acceptance_ladder, feedback_ladder

__all__ = ["run_schedule", "retune"]


def retune(runner: Any, ladder: str, n_T: int, n_chains: int) -> np.ndarray:
    """Replace the runner's ladder after a tuning stage (statistics pooled over chains) and start
    the exchange statistics afresh; returns the new sorted ladder T (n_T,)."""
    out = runner.results()
    T = 1.0 / out["beta"][:n_T]
    if ladder == "acceptance":
        sa = out["swap_acc"].reshape(n_chains, n_T).sum(0)[:-1]
        st = out["swap_tries"].reshape(n_chains, n_T).sum(0)[:-1]
        T_new = acceptance_ladder(T, sa, st)
    else:
        up = out["walkers_n_up"].reshape(n_chains, n_T).sum(0)
        down = out["walkers_n_down"].reshape(n_chains, n_T).sum(0)
        T_new = feedback_ladder(T, up, down)
    beta = 1.0 / T_new
    beta[0], beta[-1] = out["beta"][0], out["beta"][n_T - 1]   # the end points exactly as given
    runner.set_beta(np.tile(beta, n_chains))
    runner.reset_exchange_counters()
    return T_new


def run_schedule(runner: Any, *, discard: int, sweeps: int, stages: list[int], ladder: str, n_T: int,
                 n_chains: int, adapt: bool, bar: Any = None, checkpoint: Checkpointer | None = None) -> None:
    """Run the whole schedule (module docstring) on ``runner`` (a cpu or cuda Runner), resuming
    from ``checkpoint`` when it holds this run's state, saving to it between chunks of ~1 % of
    the run (not after the last: the finished run's result is the caller's to store). ``bar``: a tqdm bar to advance (or None); ``adapt``: tune the
    Metropolis step during the discarded sweeps."""
    total = discard + sweeps
    chunk = max(1, total // 100)
    stage_ends = set(np.cumsum(stages).tolist()) if stages else set()
    done = checkpoint.load(runner, total) if checkpoint is not None else 0
    if bar is not None and done:
        bar.update(done)
    while done < total:
        stop = min(x for x in (done + chunk, total, discard, *stage_ends) if x > done)
        if done < discard:
            runner.run(done, stop - done, measure_from=-1, adapt=adapt)
        else:
            runner.run(done, stop - done, measure_from=done - discard, adapt=False)
        n, done = stop - done, stop
        if done in stage_ends:
            retune(runner, ladder, n_T, n_chains)
        if done == discard:
            runner.reset_counters(discard)
        if bar is not None:
            bar.update(n)
        if checkpoint is not None and done < total:   # a finished run's result is the caller's to store
            checkpoint.maybe_save(runner, done, total)
