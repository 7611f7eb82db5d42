"""Resumable (T, h) sweeps: ``ss.sweep(H, T, fields, direction=..., out="s.h5")``.

A sweep solves ``H(h) = H - h sum_i u_i . S_i`` (the field ``h * u_i`` is *added* to H's own
fields ``H.h``) for every field strength h of ``fields`` over the whole temperature grid ``T``
(k_B = 1; T and h in the coupling's energy units). The unit of work is one **row**: one field
value, one :func:`spinsim.solve` call over all of T (so parallel tempering runs across T). Row
``k`` is seeded with ``seed`` and ``replica_offset = k * n_T * n_chains``: its chains are
independent of the other rows and identical whichever rows ran before, in which process, in
which order.

Directions ``u_i`` (unit vectors per site; zero on frozen sites; :mod:`spinsim.directions`):
``"field"`` (H's own field direction), ``"prompt"`` (a head's prompt directions x_i/|x_i|, the
axis ``H.axes["prompt"]``), ``"top_eigenvector"`` of ``M_s = (M + M^T)/2``, an (n_comp,) vector
for every site, or an (n_sites, n_comp) array. Default: ``"prompt"`` when ``"prompt" in H.axes``,
else ``"field"`` when H has a field, else ``"top_eigenvector"``.

Interruption safety: the file at ``out`` is only ever replaced whole (:mod:`.store`). A Ctrl-C,
SIGTERM or ``kill -9`` at any instant leaves ``out`` as it was after the last finished row;
rerunning the same command computes only the missing rows and ends with the same data as one
uninterrupted run. Resuming into a file written with other parameters is refused naming the
first differing one (:mod:`.fingerprint`); ``overwrite=True`` starts afresh.

Modules: :mod:`.task` (one row, for executors), :mod:`.fingerprint` (run parameters),
:mod:`.store` (file layout, :class:`SweepResult`, lock, commit), :mod:`.run` (:func:`sweep`).
Phase boundaries are computed by the caller (``spinsim.analysis.boundaries``) and stored with
:func:`add_boundaries`.
"""
from ..directions import resolve_direction
from .fingerprint import solver_options
from .run import SweepMismatchError, estimate_row_seconds, sweep
from .store import SWEEP_OBSERVABLES, SweepResult, add_boundaries, add_boundary, read_sweep
from .task import RowTask, compute_row, run_task, serial_executor

__all__ = ["sweep", "compute_row", "run_task", "RowTask", "serial_executor", "SweepResult",
           "read_sweep", "resolve_direction", "add_boundary", "add_boundaries",
           "SweepMismatchError", "SWEEP_OBSERVABLES", "estimate_row_seconds", "solver_options"]
