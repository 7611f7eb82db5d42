"""Parallel-tempering temperature ladders: tuning during equilibration, and the diagnostics.

A ladder is the sorted temperature set T_1 < ... < T_M of one tempering chain (k_B = 1). Tuning
keeps M and the end points T_1, T_M and moves the inner temperatures; it runs during the first
half of the discarded sweeps, in stages of doubling length (:func:`tuning_stages`), each stage
measuring the exchange statistics at the current ladder and then replacing it:

* ``"acceptance"``: equal swap acceptance between neighbours. For nearly Gaussian energy
  histograms the mean acceptance of the pair (i, i+1) is ``A_i ~ erfc(d_i)`` with the
  thermodynamic distance ``d_i ~ (beta_i - beta_{i+1}) sigma_E / 2`` (Kofke 2002, J. Chem. Phys.
  117, 6911; Rathore, Chopra & de Pablo 2005, J. Chem. Phys. 122, 024111). Each interval's
  distance is estimated as ``erfcinv(A_i)`` and the new ladder spaces it equally (linear in beta
  inside each old interval): equal distances give equal acceptances.
* ``"feedback"``: the feedback-optimised ladder of Katzgraber, Trebst, Huse & Troyer 2006 (J.
  Stat. Mech. P03018). Each walker (a configuration travelling along the ladder) is labelled
  "up" after visiting T_1 and "down" after visiting T_M; ``f(T_i) = n_up / (n_up + n_down)`` at
  each temperature. The round-trip rate is maximal when f falls linearly over the ladder, which
  the density ``eta(T) ~ sqrt(|df/dT| / dT)`` achieves (their Eq. 7): piecewise constant over the
  old intervals, the weight of interval i is ``eta_i dT_i = sqrt(|f_{i+1} - f_i|)``, and the new
  ladder spaces it equally (linear in T inside each old interval).

Diagnostics (every tempering run, tuned or not): swap acceptance of each neighbouring pair,
``f(T)``, and the round-trip time: the mean number of sweeps a walker takes from T_1 to T_M and
back (:func:`round_trip_time`).
"""
from __future__ import annotations

import numpy as np
from scipy.special import erfcinv

__all__ = ["LADDERS", "check_ladder_option", "tuning_stages", "acceptance_ladder",
           "feedback_ladder", "fraction_up", "round_trip_time", "equal_weight_nodes", "tempering_report"]

#: the ``ladder`` option of ``solve(..., method="mc")``: "fixed" keeps the given temperatures
LADDERS = ("fixed", "acceptance", "feedback")

#: shortest tuning stage in sweeps (each pair is tried every other sweep)
MIN_STAGE = 16
#: at most this many tuning stages
MAX_STAGES = 6


def check_ladder_option(ladder: str, exchange: bool, n_T: int) -> str:
    """The ``ladder`` option checked: one of :data:`LADDERS`; a tuned ladder needs replica
    exchange and at least three temperatures (the end points stay). Raises ValueError naming the
    bad value and what is allowed."""
    if ladder not in LADDERS:
        raise ValueError(f"ladder must be one of {list(LADDERS)}, got {ladder!r}")
    if ladder != "fixed":
        if not exchange:
            raise ValueError(f"ladder={ladder!r} tunes a replica-exchange ladder: use algorithm='pt' or "
                             "exchange=True (or ladder='fixed')")
        if n_T < 3:
            raise ValueError(f"ladder={ladder!r} moves the inner temperatures and keeps the end points: "
                             f"it needs at least 3 temperatures, got {n_T}")
    return ladder


def tuning_stages(discard: int) -> list[int]:
    """Lengths (sweeps) of the tuning stages in the first half of ``discard`` equilibration
    sweeps: doubling lengths ``b, 2b, 4b, ...`` (b >= :data:`MIN_STAGE`, at most
    :data:`MAX_STAGES`), the last one taking what is left of ``discard // 2``; ``[]`` when
    ``discard // 2 < MIN_STAGE`` (too short to tune)."""
    budget = int(discard) // 2
    if budget < MIN_STAGE:
        return []
    n = 1
    while n < MAX_STAGES and MIN_STAGE * (2 ** (n + 1) - 1) <= budget:
        n += 1
    base = budget // (2 ** n - 1)
    stages = [base * 2 ** k for k in range(n)]
    stages[-1] += budget - sum(stages)
    return stages


def equal_weight_nodes(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Nodes x' (same count and end points as x) that split the total weight into equal parts,
    for a weight spread uniformly over each interval [x_i, x_{i+1}] (w (n - 1,) >= 0, not all 0).

    x (n,) strictly monotone; returns x' (n,) monotone in the same sense, x'_0 = x_0, x'_-1 = x_-1."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (x.size - 1,) or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ValueError(f"interval weights must be {x.size - 1} finite values >= 0, not all 0; got {w}")
    cum = np.concatenate([[0.0], np.cumsum(w)])
    target = np.linspace(0.0, cum[-1], x.size)
    out = np.interp(target, cum, x) if np.all(np.diff(cum) > 0) else _interp_flat(target, cum, x)
    out[0], out[-1] = x[0], x[-1]
    return out


def _interp_flat(target: np.ndarray, cum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """np.interp for a non-decreasing ``cum`` with flat stretches (zero-weight intervals)."""
    out = np.empty_like(target)
    for k, c in enumerate(target):
        i = min(int(np.searchsorted(cum, c, side="right")) - 1, cum.size - 2)
        while i > 0 and cum[i + 1] == cum[i]:
            i -= 1
        span = cum[i + 1] - cum[i]
        out[k] = x[i] if span <= 0 else x[i] + (c - cum[i]) / span * (x[i + 1] - x[i])
    return out


def _floor(w: np.ndarray, rel: float = 0.02) -> np.ndarray:
    """Interval weights kept above ``rel`` of their mean, so no interval collapses to a point
    on noisy statistics (the ladder stays strictly increasing)."""
    return np.maximum(w, rel * float(np.mean(w)))


def acceptance_ladder(T: np.ndarray, swap_acc: np.ndarray, swap_tries: np.ndarray) -> np.ndarray:
    """The equal-acceptance ladder (module docstring) from the accepted and tried swaps of each
    neighbouring pair (i, i+1) of the sorted ladder T (M,): swap_acc, swap_tries (M - 1,).

    Acceptances are kept inside [1/(2 n), 1 - 1/(2 n)] (n tries) so that erfcinv stays finite.
    Returns the new sorted ladder (M,), same end points. Raises ValueError for pairs never tried."""
    T = np.asarray(T, dtype=np.float64)
    n = np.asarray(swap_tries, dtype=np.float64)
    if np.any(n <= 0):
        raise ValueError(f"every neighbouring pair needs swap attempts to tune the ladder; tries = {n.tolist()}")
    a = np.clip(np.asarray(swap_acc, dtype=np.float64) / n, 0.5 / n, 1.0 - 0.5 / n)
    beta = 1.0 / T
    d = erfcinv(a)                                  # thermodynamic distance of each interval
    return 1.0 / equal_weight_nodes(beta, _floor(d))


def fraction_up(n_up: np.ndarray, n_down: np.ndarray) -> np.ndarray:
    """f(T_i) = n_up / (n_up + n_down) per temperature (NaN where no labelled walker came)."""
    up = np.asarray(n_up, dtype=np.float64)
    tot = up + np.asarray(n_down, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, up / np.where(tot > 0, tot, 1.0), np.nan)


def feedback_ladder(T: np.ndarray, n_up: np.ndarray, n_down: np.ndarray) -> np.ndarray:
    """The feedback-optimised ladder (module docstring; Katzgraber et al. 2006) from the walker
    histograms n_up, n_down (M,) at the sorted ladder T (M,). f is 1 at T_1 and 0 at T_M by
    construction; temperatures no labelled walker reached are interpolated. Returns the new
    sorted ladder (M,), same end points (T itself when no walker has been labelled yet)."""
    T = np.asarray(T, dtype=np.float64)
    f = fraction_up(n_up, n_down)
    f[0], f[-1] = 1.0, 0.0
    ok = np.isfinite(f)
    f = np.interp(T, T[ok], f[ok])
    w = np.sqrt(np.abs(np.diff(f)))
    if not np.any(w > 0):
        return T.copy()
    return equal_weight_nodes(T, _floor(w))


def round_trip_time(n_trips: np.ndarray, trip_sum: np.ndarray) -> tuple[float, int]:
    """(mean round-trip time in sweeps, number of round trips) over the walkers' completed trips
    T_1 -> T_M -> T_1; the time is NaN when none was completed."""
    n = int(np.sum(n_trips))
    return (float(np.sum(trip_sum)) / n if n > 0 else float("nan")), n


def tempering_report(out: dict[str, np.ndarray], T: np.ndarray, n_chains: int, sweeps: int) -> tuple[dict, list[str]]:
    """The tempering diagnostics of a run's measured sweeps from the runner's ``results()`` and
    its sorted ladder T (n_T,): ``ladder`` (T), ``swap_acceptance`` of each neighbouring pair,
    ``fraction_up`` f(T) (NaN where no labelled walker came), ``round_trip_time`` (sweeps, NaN
    without a completed trip) and ``n_round_trips``, pooled over chains; and a warning when no
    walker completed a round trip (the ladder does not mix across its whole range)."""
    T = np.asarray(T, dtype=np.float64)
    n_T = T.size
    st = out["swap_tries"].reshape(n_chains, n_T).sum(0)[:-1]
    sa = out["swap_acc"].reshape(n_chains, n_T).sum(0)[:-1]
    f = fraction_up(out["walkers_n_up"].reshape(n_chains, n_T).sum(0),
                    out["walkers_n_down"].reshape(n_chains, n_T).sum(0))
    rt, n_rt = round_trip_time(out["walkers_n_trips"], out["walkers_trip_sum"])
    if n_T < 2:                       # one temperature: no exchange, no round trips
        f, rt, n_rt = np.full(n_T, np.nan), float("nan"), 0
    meta = {"ladder": T.tolist(), "swap_acceptance": (sa / np.maximum(st, 1)).tolist(),
            "fraction_up": f.tolist(), "round_trip_time": rt, "n_round_trips": n_rt}
    warnings = []
    if n_rt == 0 and n_T > 1:
        warnings.append(f"no replica completed a round trip T = {T[0]:g} -> {T[-1]:g} -> {T[0]:g} in "
                        f"{sweeps} measured sweeps: the tempering ladder does not mix across its range "
                        "(more temperatures, ladder='feedback' or 'acceptance', or longer runs)")
    return meta, warnings
