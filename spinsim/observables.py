"""Estimators with honest error bars for Monte Carlo time series (pure numpy).

* ``tau_int``: integrated autocorrelation time by Sokal's automatic windowing (window M, the
  smallest with M >= c * tau_int(M), c = 6), in units of the measurement interval (sweeps).
* Errors of means come from binning: blocks longer than ~4 tau_int are nearly independent and
  their spread gives the standard error (equal to sqrt(2 tau_int var / n) when tau_int is right).
* Derived quantities (C, chi, Binder) use the jackknife over the same blocks.

Every function takes time series shaped (n_chains, n_meas) for one temperature.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import schema

__all__ = ["tau_int", "block_means", "jackknife", "Thermo", "thermodynamics"]


#: a series whose standard deviation is below this fraction of its largest magnitude is constant
#: up to rounding (e.g. |m| = 1 of a frozen Ising chain computed as 1 or 1 + 2^-52): tau_int 1/2
FLAT_RTOL = 1e-10


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation rho(t) of a 1-D series (FFT, biased estimator); ``[1]`` for a
    series constant up to rounding (std <= ``FLAT_RTOL`` * max |x|), whose rho is noise."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 2:
        return np.ones(1)
    d = x - x.mean()
    var = np.dot(d, d) / n
    if var <= (FLAT_RTOL * np.max(np.abs(x))) ** 2:
        return np.ones(1)
    f = np.fft.rfft(d, n=2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / n
    return acf / var


def tau_int(x: np.ndarray, c: float = 6.0) -> float:
    """Integrated autocorrelation time ``1/2 + sum_{t=1}^{M} rho(t)`` with Sokal's window.

    ``x``: (n_meas,) or (n_chains, n_meas); for several chains rho is averaged. A constant
    series (up to rounding, see :func:`autocorrelation`) has tau_int = 0.5.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    rhos = [autocorrelation(row) for row in x if row.size > 1]
    if not rhos:
        return 0.5
    L = min(r.size for r in rhos)
    rho = np.mean([r[:L] for r in rhos], axis=0)
    taus = 0.5 + np.cumsum(rho[1:]) if L > 1 else np.array([0.5])
    for M in range(1, taus.size + 1):
        if M >= c * taus[M - 1]:
            return float(max(taus[M - 1], 0.5))
    return float(max(taus[-1], 0.5))


def block_means(x: np.ndarray, block_len: int) -> np.ndarray:
    """Means of consecutive blocks of ``block_len`` for every chain, pooled: (n_chains * n_blocks,).
    A tail shorter than a block is dropped (from the start, which is the least equilibrated)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_blocks = x.shape[1] // block_len
    if n_blocks < 1:
        raise ValueError(f"series of {x.shape[1]} measurements is shorter than one block ({block_len})")
    tail = x[:, x.shape[1] - n_blocks * block_len:]
    return tail.reshape(x.shape[0], n_blocks, block_len).mean(axis=2).reshape(-1)


def jackknife(fn: Callable[..., float], blocks: list[np.ndarray]) -> tuple[float, float]:
    """Value and jackknife error of ``fn(*means)`` where ``means`` are the means of the given
    per-block arrays (all of length B). Value from all blocks; error from leave-one-out."""
    B = blocks[0].size
    tot = [b.sum() for b in blocks]
    value = fn(*[t / B for t in tot])
    if B < 2:
        return float(value), float("nan")
    loo = np.array([fn(*[(t - b[i]) / (B - 1) for t, b in zip(tot, blocks)]) for i in range(B)])
    err = np.sqrt((B - 1) / B * np.sum((loo - loo.mean()) ** 2))
    return float(value), float(err)


@dataclass
class Thermo:
    """Estimates at one temperature: ``estimates`` maps every observable of
    :data:`spinsim.schema.OBSERVABLES` that has an error to its value, ``<name>_err`` to its
    standard error, and ``tau_int`` (sweeps); definitions in :mod:`spinsim.schema`."""

    estimates: dict[str, float]
    n_blocks: int
    drift_sigma: float

    @property
    def tau_int(self) -> float:
        return self.estimates["tau_int"]


def thermodynamics(E: np.ndarray, mabs: np.ndarray, mu: np.ndarray, T: float, n_free: int,
                   n_comp: int, min_blocks: int = 16, max_blocks: int = 64) -> Thermo:
    """Estimates from time series at one temperature.

    E: total energy (n_chains, n_meas); mabs: |m| per free site; mu: projection m.u.
    Block length ``max(ceil(4 tau_int), n_meas // max_blocks)`` with tau_int the largest of the
    series' tau_int; at least ``min_blocks`` blocks (pooled over chains) are used even if that
    makes blocks shorter than 4 tau (the error is then underestimated: ``drift_sigma`` and
    ``n_blocks`` let the caller warn).
    """
    E = np.atleast_2d(E)
    mabs = np.atleast_2d(mabs)
    mu = np.atleast_2d(mu)
    n_chains, n_meas = E.shape
    beta = 1.0 / T
    N = float(n_free)
    n = float(n_comp)
    taus = [tau_int(E), tau_int(mabs), tau_int(mabs ** 2)]
    tau = max(t for t in taus if np.isfinite(t))
    block_len = max(int(np.ceil(4 * tau)), n_meas // max_blocks, 1)
    per_chain = -(-min_blocks // n_chains)          # blocks needed per chain (ceil)
    block_len = max(1, min(block_len, n_meas // per_chain if n_meas >= per_chain else 1))
    bE = block_means(E, block_len)
    bE2 = block_means(E ** 2, block_len)
    bm = block_means(mabs, block_len)
    bm2 = block_means(mabs ** 2, block_len)
    bm4 = block_means(mabs ** 4, block_len)
    bu = block_means(mu, block_len)
    bu2 = block_means(mu ** 2, block_len)
    B = bE.size

    def sem(b: np.ndarray) -> float:
        return float(b.std(ddof=1) / np.sqrt(b.size)) if b.size > 1 else float("nan")

    def binder(m2: float, m4: float) -> float:
        return 1.0 - n * m4 / ((n + 2.0) * m2 * m2) if m2 > 0 else float("nan")

    estimators: dict[str, Callable[[], tuple[float, float]]] = {
        "energy": lambda: (float(bE.mean() / N), sem(bE) / N),
        "specific_heat": lambda: jackknife(lambda a, a2: beta ** 2 * (a2 - a * a) / N, [bE, bE2]),
        "magnetization": lambda: (float(bm.mean()), sem(bm)),
        "susceptibility": lambda: jackknife(lambda m, m2: beta * N * (m2 - m * m), [bm, bm2]),
        "binder": lambda: jackknife(binder, [bm2, bm4]),
        "projection": lambda: (float(bu.mean()), sem(bu)),
        "projection_susceptibility": lambda: jackknife(lambda u, u2: beta * N * (u2 - u * u), [bu, bu2]),
    }
    est: dict[str, float] = {}
    for o in schema.OBSERVABLES:
        if o.has_error:          # every observable with an error has an estimator here
            est[o.name], est[o.name + schema.ERR] = estimators[o.name]()
    est["tau_int"] = float(tau)
    # drift: first vs second half of the measured series, in units of the combined error
    half = n_meas // 2
    if half >= 2 * block_len and B > 1:
        a = block_means(E[:, :half], block_len)
        b = block_means(E[:, half:], block_len)
        se = np.hypot(sem(a), sem(b))
        drift = float(abs(a.mean() - b.mean()) / se) if se > 0 else 0.0
    else:
        drift = float("nan")
    return Thermo(est, int(B), drift)
