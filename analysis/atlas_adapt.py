"""How long an atlas point runs: the sweep-doubling rule (:data:`ADAPT_RULE`), point by point.

A row (one system, one field h, the temperature grid) is first solved at ``sweeps`` measured
sweeps per chain. A temperature is **flagged** (:func:`short_run_flags`) when it has fewer than
``MIN_TAU_MULTIPLE`` tau_int or ``MIN_MEAS`` measured sweeps per chain, or a split R-hat larger
than stationary chains give (:func:`spinsim.observables.rhat_pvalue` below ``RHAT_ALPHA`` over
the row's ``RHAT_TESTS n_T`` tests, Bonferroni). Each flagged temperature is solved again with
twice the sweeps (and the equilibration scaled with them), alone: the others keep their run
(:func:`solve_adaptive`), until none is flagged or the next doubling would pass ``max_sweeps``.
Points still flagged at the cap stay flagged: figures show them as such and no boundary uses
them. The sweeps each point needed are stored (``/atlas/point_sweeps``).

Rows that keep their binned series (:mod:`spinsim.bins`: one bin length per row), the row whose
chi peak is reweighted (h = 0: MBAR over the row's samples) and rows that exchange replicas
between temperatures are doubled whole, as one run over the grid.

Streams: the first run of a row uses the atlas seed with replica ids offset by the row's flat
index (:func:`spinsim.phase.compute_row`); the rerun of a row's flagged points at doubling
``level`` uses the seed :func:`point_seed` ``(seed, row, level)`` (:class:`numpy.random.SeedSequence`),
so every point rerun draws chains of its own, and a point is a pure function of (seed, row, grid,
the rule's inputs). A row doubled whole reruns with the atlas seed and row offset, as before: its
longer run begins with the shorter run's draws (counter-based generator), so its R-hat retest is
correlated with the first; both are valid estimates at their sweeps.

Whole rows reran the unflagged temperatures too: on 8 SmolLM2 heads x 16 T x 4 h a doubled row had
1-3 of its 16 temperatures flagged, and rerunning only those needs 2.15x less Monte Carlo for the
same rule (BENCHMARKS.md, "Where a row's time goes").
"""
from __future__ import annotations

from typing import Any

import numpy as np

from spinsim.hamiltonian import Hamiltonian
from spinsim.observables import MIN_MEAS, MIN_TAU_MULTIPLE, rhat_pvalue
from spinsim.phase.task import compute_row
from spinsim.solvers.mc import DEFAULT_CHAINS

__all__ = ["ADAPT_RULE", "RHAT_ALPHA", "RHAT_TESTS", "ROW_KEYS", "short_run_flags", "solve_adaptive", "point_seed",
           "sweeps_spent"]

#: family-wise false-alarm rate of the row's R-hat tests (stationary chains double a point this often per row)
RHAT_ALPHA = 0.05
#: split R-hats the row's ``rhat`` is the largest of (bulk and tail of E, |m|, m.u)
RHAT_TESTS = 6

ADAPT_RULE = (f"a temperature's measured sweeps per chain doubled (equilibration with them), that temperature "
              f"alone solved again, while it has fewer than {MIN_TAU_MULTIPLE:.0f} tau_int or {MIN_MEAS} measured "
              f"sweeps per chain, or a split R-hat that stationary chains exceed with probability < {RHAT_ALPHA} / "
              f"({RHAT_TESTS} n_T) (chi-square law of R-hat with n_e = n / (2 tau_int) per half-chain); rows that "
              f"keep their bins, reweight their chi peak (h = 0) or exchange replicas doubled whole; points still "
              f"so at the cap are flagged")


def short_run_flags(row: dict[str, Any], sweeps: int, n_chains: int = 1, n_T: int | None = None) -> np.ndarray:
    """(n_T,) bool: temperatures whose error bars the rule of :data:`ADAPT_RULE` does not trust
    (tau_int and rhat from the row, ``sweeps`` measured sweeps per chain, ``n_chains`` chains;
    NaN never flags). R-hat flags a temperature when its p-value under stationarity
    (:func:`~spinsim.observables.rhat_pvalue`) is below ``RHAT_ALPHA / (RHAT_TESTS n_T)``, with
    ``n_T`` the row's number of temperatures (default: the row's own, i.e. of ``row``; a rerun
    of some of a row's temperatures passes the row's): the row's ``rhat_pvalue`` where the solver
    gave it (E's, |m|'s and m_u's R-hat each against its own tau_int: a symmetric system's m_u
    flips sectors far more slowly than E and |m| move, and testing its R-hat against E's tau_int
    flagged the ordered points of the Curie-Weiss test), else ``rhat`` against ``tau_int``."""
    shape = np.shape(row["energy"])
    tau = np.asarray(row.get("tau_int", np.nan), float) * np.ones(shape)
    rhat = np.asarray(row.get("rhat", np.nan), float) * np.ones(shape)
    with np.errstate(invalid="ignore"):
        short = sweeps < np.maximum(MIN_TAU_MULTIPLE * np.nan_to_num(tau, nan=0.0), MIN_MEAS)
    n_tests = RHAT_TESTS * max(int(np.prod(shape)) if n_T is None else int(n_T), 1)
    if row.get("rhat_pvalue") is not None:       # each series' R-hat against its own tau_int (Monte Carlo rows)
        p = np.asarray(row["rhat_pvalue"], float) * np.ones(shape)
    elif sweeps >= 8:                            # rows without it: the largest R-hat against tau_int (of E, |m|)
        p = rhat_pvalue(rhat, sweeps, n_chains, np.nan_to_num(tau, nan=0.5))
    else:
        p = np.full(shape, np.nan)
    return np.asarray(short | (np.nan_to_num(p, nan=1.0) < RHAT_ALPHA / n_tests), bool)


def point_seed(seed: int, row: int, level: int) -> int:
    """Seed of the rerun of row ``row``'s flagged temperatures at doubling ``level`` (>= 1): a
    :class:`numpy.random.SeedSequence` hash of (seed, row, level), in [0, 2**63)."""
    state = np.random.SeedSequence([int(seed), int(row), int(level)]).generate_state(1, np.uint64)[0]
    return int(state) & (2 ** 63 - 1)


def solve_adaptive(H: Hamiltonian, T: np.ndarray, h_value: float, direction: np.ndarray, seed: int, row: int,
                   solve_kwargs: dict, max_sweeps: int, auto_discard: bool,
                   whole: bool) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Solve one row (:func:`spinsim.phase.compute_row` of ``H`` with ``h_value`` along
    ``direction`` over T (n_T,)) by the rule of :data:`ADAPT_RULE`; ``whole`` doubles the row as
    one run (bins, reweighting, replica exchange). ``solve_kwargs`` holds the first ``sweeps``
    and ``discard``; ``auto_discard`` re-derives the equilibration as max(100, sweeps / 4),
    else scales ``discard`` with the sweeps.

    Returns ``(row, point_sweeps, flagged)``: the compute_row result with every per-temperature
    array (observables, errors, ``rhat_pvalue``, magnetisation vectors) taken from each point's
    last run (its ``bins`` None unless the row ran whole; ``elapsed_s`` the sum; ``warnings``
    of every run), ``point_sweeps`` (n_T,) int64 measured sweeps per chain of each point,
    ``flagged`` (n_T,) bool still flagged at the cap."""
    kw = dict(solve_kwargs)
    s0, discard0 = int(kw["sweeps"]), int(kw["discard"])
    n_chains = int(kw.get("n_chains", DEFAULT_CHAINS))
    n_T = int(np.size(T))

    def run(sweeps: int, temps: np.ndarray, sd: int, index: int) -> dict[str, Any]:
        kw.update(sweeps=sweeps, discard=max(100, sweeps // 4) if auto_discard else discard0 * sweeps // s0)
        return compute_row(H, temps, h_value, direction, sd, index, kw)

    out = run(s0, T, seed, row)
    point_sweeps = np.full(n_T, s0, np.int64)
    flags = short_run_flags(out, s0, n_chains)
    sweeps, level = s0, 0
    while flags.any() and 2 * sweeps <= max_sweeps:
        sweeps, level = 2 * sweeps, level + 1
        if whole:
            out = run(sweeps, T, seed, row)
            point_sweeps[:] = sweeps
            flags = short_run_flags(out, sweeps, n_chains)
            continue
        idx = np.flatnonzero(flags)
        sub = run(sweeps, np.asarray(T)[idx], point_seed(seed, row, level), 0)
        _merge(out, sub, idx, n_T)
        point_sweeps[idx] = sweeps
        flags[idx] = short_run_flags(sub, sweeps, n_chains, n_T=n_T)
    if not whole:
        out["bins"] = None          # mixed run lengths: a row's bins have one bin length
    return out, point_sweeps, flags


#: keys of a compute_row result that are not over T (every other key is, and is merged)
ROW_KEYS = frozenset({"field_index", "elapsed_s", "warnings", "tempering", "bins"})


def _merge(out: dict[str, Any], sub: dict[str, Any], idx: np.ndarray, n_T: int) -> None:
    """Put the rerun ``sub`` of temperatures ``idx`` into the row ``out`` (in place): every key
    but :data:`ROW_KEYS` is an array over T (first axis) and is replaced at ``idx``; ValueError
    where a key is missing, None on one side only, or not over T (a new compute_row output must
    be placed in one of the two kinds). ``tempering`` and ``bins`` belong to whole rows only."""
    for name in sorted(set(out) | set(sub)):
        v, cur = sub.get(name), out.get(name)
        if name == "elapsed_s":
            out[name] = float(cur or 0.0) + float(v or 0.0)
        elif name == "warnings":
            out[name] = list(cur or []) + [f"{w} (rerun of T index {idx.tolist()})" for w in (v or [])]
        elif name in ROW_KEYS:
            continue
        elif v is None and cur is None:
            continue
        elif v is None or cur is None:
            raise ValueError(f"atlas rerun: {name!r} is None in one run only (first run: {type(cur).__name__}, "
                             f"rerun: {type(v).__name__})")
        else:
            target = np.array(cur, dtype=np.float64, copy=True)
            if target.shape[:1] != (n_T,) or np.shape(v)[:1] != (idx.size,) or target.shape[1:] != np.shape(v)[1:]:
                raise ValueError(f"atlas rerun: {name!r} has shape {np.shape(v)} for {idx.size} temperatures, "
                                 f"the row {target.shape} for {n_T}: not an array over T (ROW_KEYS lists the others)")
            target[idx] = v
            out[name] = target


def sweeps_spent(point_sweeps: np.ndarray, first: int, auto_discard: bool = True, discard: int | None = None) -> int:
    """Sweeps per chain the rule of :data:`ADAPT_RULE` ran for points that ended at
    ``point_sweeps`` (any shape) from ``first`` measured sweeps: every level a point went through,
    measured plus equilibration (max(100, s / 4) with ``auto_discard``, else ``discard`` scaled with
    s). Exact for point-by-point and whole rows alike (a whole row's points all end at its largest)."""
    ps = np.asarray(point_sweeps, np.int64)
    total, s = 0, int(first)
    while True:
        d = max(100, s // 4) if auto_discard else int(discard) * s // int(first)
        total += int(np.sum(ps >= s)) * (s + d)
        if 2 * s > max(int(ps.max(initial=0)), 0):
            return total
        s *= 2
