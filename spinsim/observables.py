"""Estimators with honest error bars for Monte Carlo time series (pure numpy).

* ``tau_int``: integrated autocorrelation time by Sokal's automatic windowing (window M, the
  smallest with M >= c * tau_int(M), c = 6), in units of the measurement interval (sweeps).
* Errors of means come from binning: blocks longer than ~4 tau_int are nearly independent and
  their spread gives the standard error (equal to sqrt(2 tau_int var / n) when tau_int is right).
* Derived quantities (C, chi, Binder) use the jackknife over the same blocks
  (:mod:`spinsim.derived`: the one definition of each and the one jackknife). Variances are
  formed from series centred on their mean first (``<(E - c)^2> - <E - c>^2``, c the mean): no
  catastrophic cancellation when |E| is large and its spread small (E ~ 1e12 with var ~ 1, or a
  constant E ~ 1e150 whose C is exactly 0).
* Reliability (:func:`run_warnings`): a run is too short for its error bars when it is shorter
  than ``MIN_TAU_MULTIPLE = 50`` tau_int per chain (Sokal's rule: the windowed tau_int estimate,
  and with it every error bar, is biased low below that), shorter than ``MIN_MEAS = 100``
  measurements per chain (the window of ~6 tau_int cannot be resolved: even a tau_int of 1-2
  reads as 0.5 in some runs of 64), or when its blocks are shorter than ``4 tau_int`` (blocks are
  then correlated and the error is underestimated).
* Convergence across chains: the rank-normalised split R-hat of Vehtari, Gelman, Simpson,
  Carpenter & Buerkner, Bayesian Analysis 16, 667 (2021) (:func:`split_rhat`; as ArviZ and NetKet
  report it), warning when it exceeds ``RHAT_WARN = 1.01``. That threshold assumes a large
  effective sample (Vehtari et al. pair it with ESS > 400 over >= 4 chains); for short runs
  split R-hat's own sampling noise exceeds it, so a decision to run longer uses
  :func:`rhat_pvalue`, the probability of an R-hat this large from stationary chains.

Every function takes time series shaped (n_chains, n_meas) for one temperature.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from . import schema
from .derived import derived_estimates, jackknife

__all__ = ["tau_int", "block_means", "jackknife", "Thermo", "thermodynamics", "split_rhat", "rhat_pvalue",
           "run_warnings", "MIN_TAU_MULTIPLE", "MIN_MEAS", "MIN_BLOCKS", "RHAT_WARN"]

#: Sokal's rule: a run of fewer than this many tau_int (per chain) gives unreliable error bars
MIN_TAU_MULTIPLE = 50.0
#: fewest measurements per chain from which tau_int (and so an error bar) can be estimated
MIN_MEAS = 100
#: fewest blocks (pooled over chains) that the binning error uses
MIN_BLOCKS = 16
#: split R-hat above this flags chains that disagree (Vehtari et al. 2021 recommend 1.01)
RHAT_WARN = 1.01


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


@dataclass
class Thermo:
    """Estimates at one temperature: ``estimates`` maps every observable of
    :data:`spinsim.schema.OBSERVABLES` that has an error to its value, ``<name>_err`` to its
    standard error, and ``tau_int`` (sweeps); definitions in :mod:`spinsim.schema`."""

    estimates: dict[str, float]
    n_blocks: int
    drift_sigma: float
    block_len: int = 0
    n_meas: int = 0
    #: probability that stationary chains give R-hats this large (:func:`rhat_pvalue`, each of
    #: E's, |m|'s and m_u's split R-hat with its own series' tau_int; the smallest; NaN below 8
    #: measurements)
    rhat_pvalue: float = float("nan")

    @property
    def tau_int(self) -> float:
        return self.estimates["tau_int"]


def thermodynamics(E: np.ndarray, mabs: np.ndarray, mu: np.ndarray, T: float, n_free: int,
                   n_comp: int, min_blocks: int = MIN_BLOCKS, max_blocks: int = 64) -> Thermo:
    """Estimates from time series at one temperature.

    E: total energy (n_chains, n_meas); mabs: |m| per free site; mu: projection m.u.
    Block length ``max(ceil(4 tau_int), n_meas // max_blocks)`` with tau_int the largest of the
    series' tau_int; at least ``min_blocks`` blocks (pooled over chains) are used even if that
    makes blocks shorter than 4 tau (the error is then underestimated: :func:`run_warnings`
    says so). ``estimates["rhat"]`` is the split R-hat of :func:`split_rhat`, the largest of
    E's, |m|'s and m_u's (m_u tells apart states related by a symmetry, e.g. +-u, that share E
    and |m|).
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
    # centred series: variances without cancellation (the centre c is added back to the means)
    cE, cm, cu = float(np.mean(E)), float(np.mean(mabs)), float(np.mean(mu))
    dE, dm, du = E - cE, mabs - cm, mu - cu
    bE = block_means(dE, block_len)
    bE2 = block_means(dE ** 2, block_len)
    bm = block_means(dm, block_len)
    bm2 = block_means(dm ** 2, block_len)
    bm_2 = block_means(mabs ** 2, block_len)
    bm4 = block_means(mabs ** 4, block_len)
    bu = block_means(du, block_len)
    bu2 = block_means(du ** 2, block_len)
    B = bE.size
    # energy, C, |m|, chi, U, m.u, chi_u with jackknife errors (one definition: spinsim.derived)
    moments = {"E": bE, "E2": bE2, "mabs": bm, "mabs2": bm2, "m2": bm_2, "m4": bm4, "mu": bu, "mu2": bu2}
    derived = derived_estimates(moments, beta, N, n, shift={"E": cE, "mabs": cm, "mu": cu})
    est: dict[str, float] = {k: derived[k] for k in schema.names(has_error=True, errors=True)}   # schema order
    est["tau_int"] = float(tau)
    rhats = (split_rhat(E), split_rhat(mabs), split_rhat(mu))
    est["rhat"] = max(rhats)
    # each R-hat against its own series' tau_int (m_u can decorrelate far more slowly than E and
    # |m|: sector flips of a symmetric system): the smallest p-value of the three
    if n_meas >= 8:
        ps = [rhat_pvalue(r, n_meas, n_chains, t) for r, t in zip(rhats, (taus[0], taus[1], tau_int(mu)))]
        ps = [float(p) for p in ps if np.isfinite(p)]
        rhat_p = min(ps) if ps else float("nan")
    else:
        rhat_p = float("nan")
    def sem(b: np.ndarray) -> float:
        return float(b.std(ddof=1) / np.sqrt(b.size)) if b.size > 1 else float("nan")

    # drift: first vs second half of the measured series, in units of the combined error
    half = n_meas // 2
    if half >= 2 * block_len and B > 1:
        a = block_means(dE[:, :half], block_len)
        b = block_means(dE[:, half:], block_len)
        se = np.hypot(sem(a), sem(b))
        drift = float(abs(a.mean() - b.mean()) / se) if se > 0 else 0.0
    else:
        drift = float("nan")
    return Thermo(est, int(B), drift, int(block_len), int(n_meas), rhat_p)


def _rhat(z: np.ndarray) -> float:
    """Potential scale reduction sqrt(var_hat / W) of chains z (n_chains, n) (Gelman et al.)."""
    n = z.shape[1]
    W = float(np.mean(np.var(z, axis=1, ddof=1)))
    B = n * float(np.var(np.mean(z, axis=1), ddof=1))
    var_hat = (n - 1) / n * W + B / n
    if W <= 0.0:
        return 1.0 if var_hat <= 0.0 else float("inf")
    return float(np.sqrt(var_hat / W))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of all of x's values pooled (x's shape), ties given their average rank: the
    values of ``scipy.stats.rankdata(x, method="average")`` (which it calls for non-finite x),
    without its per-call overhead (~0.25 ms, run 6 times per temperature by split R-hat)."""
    flat = np.ravel(x)
    if flat.size == 0 or not np.all(np.isfinite(flat)):
        from scipy.stats import rankdata
        return rankdata(flat, method="average").reshape(np.shape(x))
    order = np.argsort(flat, kind="stable")
    xs = flat[order]
    new = np.empty(flat.size, bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], flat.size)           # a tie group holds positions starts..ends-1
    r = np.empty(flat.size)
    r[order] = np.repeat(0.5 * (starts + ends + 1), ends - starts)
    return r.reshape(np.shape(x))


def _rank_normal(x: np.ndarray) -> np.ndarray:
    """Rank-normalisation: ``Phi^-1((r - 3/8) / (S + 1/4))`` of the pooled ranks r (ties averaged)."""
    from scipy.special import ndtri

    return ndtri((average_ranks(x) - 0.375) / (x.size + 0.25))


def split_rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of chains x (n_chains, n_meas) (Vehtari et al. 2021, eq. 4-6):
    each chain split in halves (the middle draw of an odd length dropped), ranks pooled over all
    draws and mapped to normal scores; the larger of the bulk R-hat (of the scores) and the tail
    R-hat (of the scores of |x - median|). 1 for chains that agree; above ~1.01 they disagree
    (unconverged, metastable). One chain gives the R-hat of its two halves. NaN for fewer than 4
    draws per half; 1.0 for a constant series."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    half = x.shape[1] // 2
    if half < 4:
        return float("nan")
    split = np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)
    if np.ptp(split) <= FLAT_RTOL * np.max(np.abs(split)):
        return 1.0
    bulk = _rhat(_rank_normal(split))
    tail = _rhat(_rank_normal(np.abs(split - np.median(split))))
    return max(bulk, tail)


def rhat_pvalue(rhat: np.ndarray | float, n_meas: int, n_chains: int, tau: np.ndarray | float) -> np.ndarray:
    """Probability that stationary, converged chains give a split R-hat at least ``rhat``.

    rhat: split R-hat(s) of :func:`split_rhat` (any shape); n_meas: measurements per chain;
    n_chains: chains (each split in halves: m = 2 n_chains sequences of n = n_meas // 2);
    tau: tau_int of the series (sweeps, :func:`tau_int` convention ``1/2 + sum rho``; broadcast
    with ``rhat``). Returns p-values of ``rhat``'s shape (NaN where rhat or tau is NaN).

    Derivation (Gelman & Rubin, Stat. Sci. 7, 457 (1992), sec. 3): with within-sequence variance
    W = sigma^2 and each sequence mean x_j of variance sigma^2 / n_e (n_e = n / (2 tau) effective
    draws), the between-sequence term B / n = var_j(x_j) (ddof 1) is sigma^2 chi^2_{m-1} /
    ((m - 1) n_e), so ``R^2 = (n - 1) / n + B / (n W)`` gives
    ``X = (m - 1) n_e (R^2 - (n - 1) / n) ~ chi^2_{m-1}`` and p = P(chi^2_{m-1} >= X). For one
    chain (m = 2) X is the square of the drift of the two halves in standard errors. It is an
    approximation: W is estimated, and the rank-normalised and tail R-hats of :func:`split_rhat`
    have their own tau (a tau larger than the series' own makes it conservative, i.e. it flags
    less; :func:`thermodynamics` passes each series' own); checked against simulated stationary
    chains in ``tests/test_mc_diagnostics.py``.
    """
    from scipy.stats import chi2

    m = 2 * int(n_chains)
    n = int(n_meas) // 2
    if n < 4 or m < 2:
        raise ValueError(f"rhat_pvalue needs >= 1 chain and >= 8 measurements per chain, got n_chains="
                         f"{n_chains}, n_meas={n_meas}")
    r = np.asarray(rhat, float)
    n_e = n / (2.0 * np.maximum(np.asarray(tau, float), 0.5))
    X = (m - 1) * n_e * (r ** 2 - (n - 1) / n)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(X), chi2.sf(np.maximum(X, 0.0), m - 1), np.nan)


def run_warnings(th: Thermo, n_chains: int, T: float) -> list[str]:
    """Warnings for estimates whose error bars are not to be trusted (rules in the module
    docstring): run shorter than ``MIN_TAU_MULTIPLE`` tau_int or ``MIN_MEAS`` sweeps per chain,
    blocks shorter than
    4 tau_int, the two halves of the run drifting apart by more than 4 sigma, split R-hat above
    ``RHAT_WARN``."""
    out = []
    tau = th.tau_int
    if th.n_meas < max(MIN_TAU_MULTIPLE * tau, MIN_MEAS) or th.block_len < 4.0 * tau:
        out.append(f"T={T:.6g}: run too short for its error bars: {th.n_meas} sweeps per chain in "
                   f"{th.n_blocks} blocks of {th.block_len} for tau_int = {tau:.1f} sweeps (rule: at least "
                   f"{MIN_TAU_MULTIPLE:.0f} tau_int and {MIN_MEAS} sweeps per chain, blocks of at least "
                   "4 tau_int; errors are underestimated): raise sweeps")
    if np.isfinite(th.drift_sigma) and th.drift_sigma > 4:
        out.append(f"T={T:.6g}: energy drifts by {th.drift_sigma:.1f} sigma between the two halves of the "
                   "measured run (not equilibrated: raise discard/sweeps or use 'pt')")
    rhat = th.estimates.get("rhat", float("nan"))
    if rhat > RHAT_WARN:                        # (NaN compares False)
        out.append(f"T={T:.6g}: split R-hat = {rhat:.3f} > {RHAT_WARN} across {n_chains} chain(s) (halves "
                   "disagree: not converged or metastable; raise sweeps/discard or use 'pt')")
    return out
