"""Run an atlas: every system's (T, h) diagram in one resumable file (:func:`run_atlas`).

The unit of work is one **row**: one system (head, context length, context sample) and one field
value h, solved over the whole temperature grid by :func:`spinsim.phase.compute_row` (the same
row a ``spinsim sweep`` runs), with the field ``h u_i`` added along the system's direction (a
head's prompt axis x_i/|x_i|, else its field or the top eigenvector of M_s). Rows run on any
executor (:mod:`spinsim.executors`: here, a ``concurrent.futures`` pool, a Dask client).

**Runs long enough.** Each temperature of a row runs until the short-run rule and its split
R-hat test trust it, doubling its sweeps point by point up to ``max_sweeps``
(:mod:`.atlas_adapt`, :data:`ADAPT_RULE`). (A fixed R-hat threshold of 1.01 sits inside split
R-hat's own noise at these run lengths: on the SmolLM2 grid with one chain, 313 of 316 rows
doubled to the cap on it, with a median flagged R-hat of 1.015.) Points still flagged at the cap
are stored as flagged: figures show them as such and no boundary uses them. The sweeps each
point needed are stored (``point_sweeps``), and each row's largest (``sweeps``).

**Bins.** By default the rows at h = 0 (the ones the summary reweights) keep their binned series
(bin means and the thinned samples of :mod:`spinsim.bins`, stored as a sweep stores them,
:mod:`.atlas_bins`), so such a row can be rebinned or reweighted later
(``Reweighting(atlas.row(...))``); ``bins="all"`` (``--bins all``) keeps every row's (a SmolLM2
atlas of 270 heads x 16 T x 8 h with 2 chains: ~590 MB instead of ~3 MB, and as much memory),
``bins="none"`` none.

**Interruption.** The file is replaced whole (:mod:`.atlas_store`) at most every
``commit_every`` seconds (default: 2 s or 10 x the last commit's duration, whichever is longer,
so that a large file is not rewritten more than ~10 % of the time) and at the end (and when
interrupted): a ``kill -9`` loses at most the rows of that interval, never the file; a rerun computes the missing rows only. Every row is
a pure function of its arguments (its replica ids are offset by its flat row index), so a resumed
atlas holds the same numbers as an uninterrupted one. A file written with other parameters is
refused naming the first differing one (``overwrite=True`` starts afresh).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from spinsim.directions import resolve_direction
from spinsim.hamiltonian import Hamiltonian
from spinsim.interrupts import sigterm_as_interrupt
from spinsim.io import remove_stale_temps, root_attrs
from spinsim.phase.fingerprint import jsonable, solver_options
from spinsim.phase.run import SweepMismatchError, resume_file
from spinsim.solvers.mean_field import mean_field
from spinsim.validation import check_temperatures

from .atlas_adapt import ADAPT_RULE, RHAT_ALPHA, RHAT_TESTS, short_run_flags, solve_adaptive
from .atlas_store import Atlas, commit, read_atlas
from .atlas_summary import chain_overlap

__all__ = ["AtlasTask", "SystemSource", "FixedSystems", "run_atlas", "run_atlas_task", "short_run_flags",
           "ADAPT_RULE", "RHAT_ALPHA", "RHAT_TESTS", "AtlasMismatchError"]

class AtlasMismatchError(SweepMismatchError):
    """An existing atlas file was written with different parameters."""


class SystemSource(Protocol):
    """Where an atlas's systems come from (a model's heads, or given Hamiltonians).

    ``heads`` labels (n_head,), ``layer`` and ``head_index`` (n_head,) (-1 when not a model head),
    ``lengths`` (n_length,), ``n_samples``, ``contexts`` (n_length, n_samples) JSON strings;
    ``identity()`` the (name, JSON value) pairs that fix the systems (fingerprint);
    ``build(i)`` head i's systems ``[i_length][i_sample] -> (H, u)`` with u (n_sites, n_comp)."""

    heads: list[str]
    layer: np.ndarray
    head_index: np.ndarray
    lengths: np.ndarray
    n_samples: int
    contexts: np.ndarray
    n_comp: int

    def identity(self) -> list[tuple[str, Any]]: ...

    def build(self, i: int) -> list[list[tuple[Hamiltonian, np.ndarray]]]: ...


class FixedSystems:
    """Given Hamiltonians as an atlas's systems: ``{name: {length: H}}`` (one sample each), e.g.
    lattices of several sizes as one "head" with a size axis. Every system must have the same
    number of spin components; ``direction`` as for :func:`spinsim.sweep` (None: the default)."""

    def __init__(self, systems: dict[str, dict[int, Hamiltonian]], direction: Any = None) -> None:
        if not systems:
            raise ValueError("FixedSystems needs at least one system")
        lengths = sorted({int(L) for d in systems.values() for L in d})
        for name, d in systems.items():
            if sorted(int(L) for L in d) != lengths:
                raise ValueError(f"system {name!r} has lengths {sorted(d)}; every system needs all of {lengths}")
        comps = {H.n_comp for d in systems.values() for H in d.values()}
        if len(comps) != 1:
            raise ValueError(f"every system needs the same number of spin components, got {sorted(comps)}")
        self._systems = {k: {int(L): H for L, H in d.items()} for k, d in systems.items()}
        self._direction = direction
        self.heads = list(systems)
        self.layer = np.full(len(self.heads), -1)
        self.head_index = np.full(len(self.heads), -1)
        self.lengths = np.array(lengths, np.int64)
        self.n_samples = 1
        self.contexts = np.full((len(lengths), 1), "", dtype=object)
        self.n_comp = comps.pop()

    def identity(self) -> list[tuple[str, Any]]:
        return [("systems", {k: {str(L): H.describe()["hamiltonian_sha256"] for L, H in d.items()}
                             for k, d in self._systems.items()}),
                ("direction", jsonable(self._direction) if not isinstance(self._direction, str)
                 else self._direction)]

    def build(self, i: int) -> list[list[tuple[Hamiltonian, np.ndarray]]]:
        d = self._systems[self.heads[i]]
        return [[(d[int(L)], resolve_direction(d[int(L)], self._direction)[0])] for L in self.lengths]


# ----------------------------------------------------------------------------- one row
@dataclass(frozen=True)
class AtlasTask:
    """One row (picklable, for executors): system H, direction u, field h, grid T, its key
    (i_head, i_length, i_sample, k) and flat index ``row`` (seed offset)."""

    H: Hamiltonian
    T: np.ndarray
    h_value: float
    direction: np.ndarray
    seed: int
    row: int
    key: tuple[int, int, int, int]
    solve_kwargs: dict
    max_sweeps: int
    auto_discard: bool
    want_order: bool
    keep_bins: bool = False      # the row's binned series is stored (else dropped here)


def run_atlas_task(task: AtlasTask) -> dict[str, Any]:
    """Solve one row, doubling a temperature's sweeps while :func:`short_run_flags` flags it (up to
    ``max_sweeps``; :func:`~.atlas_adapt.solve_adaptive`). Returns the
    :func:`~spinsim.phase.compute_row` result plus ``key``, ``point_sweeps`` (n_T,) (measured
    sweeps per chain of each temperature), ``sweeps`` (their largest), ``flagged`` (n_T,)
    (still flagged at the cap), ``bins`` only when ``keep_bins``; for the row of the smallest |h|
    (``want_order``) also ``order_vector`` (<m> at the lowest T) and the system's mean-field facts
    (``T_mf``, ``lambda_max``, ``lambda_min``, ``spin_length``, ``mf_direction``,
    ``direction_overlap`` +- ``direction_overlap_err`` (n_T,) (:func:`~.atlas_summary.chain_overlap`), the reweighted
    chi peak ``T_peak_rw`` +- ``T_peak_rw_err`` (:func:`reweighted_peak`); :func:`spinsim.solvers.mean_field.mean_field`)."""
    from spinsim.threads import one_blas_thread

    with one_blas_thread():     # rows run side by side: BLAS threads only thrash
        return _run_row(task)


def _run_row(task: AtlasTask) -> dict[str, Any]:
    kw = task.solve_kwargs
    exchange = bool(kw.get("exchange")) or kw.get("algorithm") == "pt"
    row, point_sweeps, flags = solve_adaptive(task.H, task.T, task.h_value, task.direction, task.seed, task.row,
                                              kw, task.max_sweeps, task.auto_discard,
                                              whole=task.want_order or task.keep_bins or exchange)
    row.update(key=task.key, sweeps=int(point_sweeps.max()), point_sweeps=point_sweeps, flagged=flags)
    cmv = row.pop("chain_magnetization_vector", None)          # used here only: not shipped back
    if task.want_order:                    # once per system: its order vector and mean-field facts
        mv = row.get("magnetization_vector")
        row["order_vector"] = None if mv is None else np.asarray(mv)[int(np.argmin(task.T))]
        mf = mean_field(task.H)
        row.update(T_mf=mf.T_c, lambda_max=float(mf.eigenvalues[0]), lambda_min=float(mf.eigenvalues[-1]),
                   mf_direction=mf.ferro_direction, spin_length=float(np.mean(task.H.lengths[~task.H.frozen])),
                   n_sites=task.H.n_sites, n_free=task.H.n_free)
        if cmv is not None:
            row["direction_overlap"], row["direction_overlap_err"] = chain_overlap(cmv, mf.ferro_direction)
        row["T_peak_rw"], row["T_peak_rw_err"] = reweighted_peak(task, row)
    if not task.keep_bins:
        row["bins"] = None                 # not stored: not shipped back either
    return row


#: unflagged temperatures on each side of the raw chi maximum that the reweighted peak uses
PEAK_WINDOW = 2


def reweighted_peak(task: AtlasTask, row: dict[str, Any]) -> tuple[float, float]:
    """T of the maximum of the row's chi(T) on its MBAR-reweighted curve (:mod:`spinsim.reweighting`)
    +- its jackknife error, from the unflagged temperatures nearest the raw chi maximum (it and
    ``PEAK_WINDOW`` on each side: the histograms that bracket the peak; far temperatures add
    nothing to the curve there but make MBAR's free energies slow and ill-conditioned: 16
    temperatures over 0.25..2.5 took ~2 s per SmolLM2 head); NaN when the row holds no samples,
    fewer than 3 unflagged temperatures, the raw maximum at the first or last of them, a trusted range that is not one interval covering them,
    or a maximum on their edge."""
    from spinsim.reweighting import ReweightError, Reweighting
    from spinsim.result import Result

    keep = np.flatnonzero(~np.asarray(row["flagged"], bool))
    if row.get("bins") is None or keep.size < 3:
        return float("nan"), float("nan")
    keep = keep[np.argsort(np.asarray(task.T, float)[keep], kind="stable")]      # neighbours in T, any grid order
    chi = np.asarray(row["susceptibility"], float)[keep]
    if not np.any(np.isfinite(chi)):
        return float("nan"), float("nan")
    p = int(np.nanargmax(chi))
    if p in (0, keep.size - 1):                 # the maximum on the edge of the unflagged grid: beyond it
        return float("nan"), float("nan")
    keep = keep[max(0, p - PEAK_WINDOW):p + PEAK_WINDOW + 1]
    if keep.size < 3:
        return float("nan"), float("nan")
    H = task.H
    res = Result(task.T, "mc", n_sites=H.n_sites, n_free=H.n_free, n_comp=H.n_comp, bins=row["bins"],
                 **{k: row[k] for k in ("energy", "energy_err", "magnetization", "magnetization_err",
                                        "susceptibility", "susceptibility_err") if row.get(k) is not None})
    lo, hi = float(task.T[keep].min()), float(task.T[keep].max())
    try:
        rw = Reweighting(res, points=keep)
        if len(rw.trusted) != 1 or not (rw.trusted[0][0] <= lo and hi <= rw.trusted[0][1]):
            return float("nan"), float("nan")
        pk = rw.peak("susceptibility", T_range=(lo, hi))
    except ReweightError:                        # no samples, no MBAR solution, a maximum on the edge
        return float("nan"), float("nan")
    return float(pk.T.value), float(pk.T.error)


# ----------------------------------------------------------------------------- the run
def _fingerprint(source: SystemSource, T: np.ndarray, hs: np.ndarray, seed: int, max_sweeps: int,
                 opts: dict[str, Any], bins: str) -> list[tuple[str, Any]]:
    fp: list[tuple[str, Any]] = [("spinsim_kind", "atlas"), ("heads", list(source.heads)),
                                 ("lengths", [int(x) for x in source.lengths]), ("samples", int(source.n_samples))]
    fp += source.identity()
    fp += [("T", [float(x) for x in T]), ("h", [float(x) for x in hs]), ("seed", int(seed)),
           ("max_sweeps", int(max_sweeps)), ("adapt_rule", ADAPT_RULE),   # rows of another rule do not mix
           ("bins", bins)]        # rows that keep bins double whole (analysis.atlas_adapt): other numbers
    fp += [(k, jsonable(v)) for k, v in opts.items()]
    return json.loads(json.dumps(fp))            # tuples -> lists, as the file gives them back


#: which rows keep their binned series (:func:`run_atlas`'s ``bins``)
BINS_CHOICES = ("zero", "all", "none")


def run_atlas(source: SystemSource, T: Any, fields: Any, *, out: str | os.PathLike | None = None,
              seed: int = 0, sweeps: int = 200, max_sweeps: int = 1600, discard: int | None = None,
              executor: Any = None, progress: bool = True, overwrite: bool = False,
              attrs: dict[str, Any] | None = None, heads_per_batch: int = 8, commit_every: float | None = None,
              bins: str = "zero", **solve_kwargs: Any) -> Atlas:
    """Every system's (T, h) diagram (rules in the module docstring); returns the :class:`Atlas`.

    source : the systems (:class:`FixedSystems`, :class:`spinsim.analysis.atlas_heads.ModelHeads`).
    T : (n_T,) temperatures > 0; fields : (n_h,) added field strengths (energy units, k_B = 1).
    sweeps, max_sweeps : first and largest measured sweeps per chain of a row (doubling rule).
    discard : equilibration sweeps of the first try (None: max(100, sweeps/4), re-derived as
        the sweeps double; a number is scaled with the sweeps).
    executor : None, a ``concurrent.futures.Executor``, a Dask ``Client`` or a runner.
    heads_per_batch : heads whose Hamiltonians are built and queued at once (memory bound).
    commit_every : seconds between commits (0: after every row; None: the default of the module
        docstring).
    bins : which rows keep their binned series in the file: "zero" (the rows at the smallest
        |h|, default), "all" or "none" (module docstring); True / False mean "all" / "none".
    **solve_kwargs : Monte Carlo options (algorithm, n_chains, reduce, backend, ...).

    Raises ValueError (bad grid, seed, option), AtlasMismatchError (``out`` holds another atlas),
    SpinsimFileError (a foreign, damaged or locked ``out``).
    """
    from spinsim.executors import as_runner
    from spinsim.progress import progress_bar

    bins = {True: "all", False: "none"}.get(bins, bins) if isinstance(bins, bool) else bins
    if bins not in BINS_CHOICES:
        raise ValueError(f"bins must be one of {', '.join(map(repr, BINS_CHOICES))}, got {bins!r}")
    T = check_temperatures(T)
    hs = np.atleast_1d(np.asarray(fields, dtype=np.float64))
    if hs.ndim != 1 or hs.size == 0 or not np.all(np.isfinite(hs)):
        raise ValueError(f"fields must be a finite number or a 1-D list of them, got {fields!r}")
    if not np.any(hs == 0.0):
        raise ValueError("fields must include h = 0 (T_c, the ordering kind and the model's point are read at "
                         f"h = 0), got {', '.join(f'{h:g}' for h in hs)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if not isinstance(max_sweeps, (int, np.integer)) or max_sweeps < sweeps:
        raise ValueError(f"max_sweeps must be an integer >= sweeps ({sweeps}), got {max_sweeps!r}")
    opts = solver_options("mc", dict(solve_kwargs, sweeps=sweeps, discard=discard))
    fp = _fingerprint(source, T, hs, int(seed), int(max_sweeps), opts, bins)
    run_attrs = root_attrs("atlas", seed=int(seed), adapt_rule=ADAPT_RULE, max_sweeps=int(max_sweeps), bins=bins,
                           **{f"solver_{k}": v for k, v in opts.items() if v is not None}, **(attrs or {}))
    path = Path(out) if out is not None else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    from spinsim.locks import hold
    with hold(path, "this atlas") if path is not None else contextlib.nullcontext():
        a = None
        if path is not None:
            remove_stale_temps(path)
            if path.exists() and not overwrite:
                a = resume_file(path, read_atlas, fp, what="atlas", mismatch=AtlasMismatchError)
                run_attrs["created"] = a.attrs.get("created", run_attrs["created"])
                a.attrs = run_attrs
                if progress and not a.complete:
                    print(f"spinsim atlas: resuming {path}: {int(a.done.sum())} of {a.done.size} rows already done",
                          file=sys.stderr, flush=True)
        if a is None:
            a = Atlas(list(source.heads), source.layer, source.head_index, source.lengths, source.n_samples,
                      T, hs, source.n_comp, fingerprint=fp, attrs=run_attrs, contexts=source.contexts)
        a.path = path
        pending_heads = [i for i in range(len(a.heads)) if not a.done[i].all()]
        k0 = int(np.argmin(np.abs(hs)))
        run = as_runner(executor, run_atlas_task)
        last, took = time.monotonic(), 0.0
        dirty = False
        try:
            with sigterm_as_interrupt(), progress_bar(int((~a.done).sum()), "atlas", "row", progress) as bar:
                for b in range(0, len(pending_heads), max(1, int(heads_per_batch))):
                    tasks = []
                    for i in pending_heads[b:b + heads_per_batch]:
                        for il, per_len in enumerate(source.build(i)):
                            for isamp, (H, U) in enumerate(per_len):
                                tasks += [AtlasTask(H, T, float(hs[k]), U, int(seed), a.row_index(i, il, isamp, k),
                                                    (i, il, isamp, k), dict(opts), int(max_sweeps), discard is None,
                                                    k == k0, bins == "all" or (bins == "zero" and k == k0))
                                          for k in range(hs.size) if not a.done[i, il, isamp, k]]
                    for row in run(tasks):
                        _check_finite(row, a)
                        a.store_row(tuple(row["key"]), row)
                        dirty = True
                        bar.set_postfix_str(f"{a.heads[row['key'][0]]} h={hs[row['key'][3]]:.3g} "
                                            f"sweeps<={row['sweeps']}", refresh=False)
                        bar.update(1)
                        wait = max(2.0, 10 * took) if commit_every is None else commit_every
                        if path is not None and time.monotonic() - last >= wait:
                            t0 = time.monotonic()
                            commit(path, a)
                            last, dirty = time.monotonic(), False
                            took = last - t0
        finally:
            if path is not None and (dirty or not path.exists()):
                commit(path, a)
    return a


def _check_finite(row: dict[str, Any], a: Atlas) -> None:
    E = np.asarray(row.get("energy"), float)
    if not np.all(np.isfinite(E)):
        i = row["key"][0]
        raise ArithmeticError(f"atlas row {a.heads[i]} h = {a.h[row['key'][3]]!r}: the solver returned a non-finite "
                              "energy; the row is not stored")

