"""Histogram reweighting of Monte Carlo results to temperatures between (and near) the simulated ones.

Public surface (what the phase-boundary code and ``spinsim atlas`` call)::

    ss.reweight(source, T=...)                    -> Result over T (E, C, |m|, chi, U, m.u, chi_u + errors)
    ss.reweighting.peak(source, "susceptibility") -> Peak(observable, T=Estimate, value=Estimate)
    ss.reweighting.binder_crossing(src_1, src_2)   -> Estimate (T where U_1 = U_2)
    ss.reweighting.trusted_range(source)           -> (T_lo, T_hi)
    ss.Reweighting(source)                         the fitted object (all of the above, fitted once)

``source``: a Monte Carlo :class:`spinsim.Result` over T with bins (:mod:`spinsim.bins`), a
sweep (:class:`spinsim.phase.SweepResult`, with ``h=`` or ``row=``), or the path of a file holding
either. ``points``: the indices of the simulated temperatures to use (default all: multi-histogram;
one index: single-histogram reweighting of that run).

Method. The thinned samples E_n, |m|_n, (m.u)_n of every chosen temperature T_k (N_k samples
each) are combined by the multistate Bennett acceptance ratio (MBAR; Shirts & Chodera, J. Chem.
Phys. 129, 124105 (2008); for K = 1 the single-histogram method of Ferrenberg & Swendsen, PRL 61,
2635 (1988)) with pymbar's solver for the free energies f_k; then at any beta

    <A>_beta = sum_n w_n A_n / sum_n w_n,  w_n = exp(-beta E_n) / sum_k N_k exp(f_k - beta_k E_n),

and C, chi, U, chi_u follow from those moments by :func:`spinsim.derived.derive` (k_B = 1, E total,
m per site). The energy includes the run's fields, so a sweep row reweights in T at its own h.

Errors: jackknife over ``n_jackknife`` (default 16) time blocks: block j holds the same stretch
of bins of every chain at every temperature (so correlations between tempering replicas are
left out together), and each leave-one-out replicate re-solves MBAR (warm-started). The bins
are >= ~4 tau_int long when the run is long enough (:mod:`spinsim.observables`' warnings say
when not), so the blocks are nearly independent.

Trusted range: where the Kish effective number of samples ``(sum w)^2 / sum w^2`` is at least
``min_overlap`` (default 0.25) times the fewest samples of one simulated temperature. For one
Gaussian energy histogram that is ``|beta - beta_k| sigma_E <= sqrt(ln 4) ~ 1.18``; between
temperatures whose histograms do not overlap it drops and the gap is excluded. Outside it every
call raises :class:`OutsideOverlapError` naming the trusted interval(s).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from . import schema
from .bins import NoBinsError
from .derived import derive, jackknife_error
from .mbar import ReweightError, log_denominator, logsumexp, overlap, solve
from .threads import one_blas_thread
from .result import Result

__all__ = ["Reweighting", "reweight", "peak", "binder_crossing", "trusted_range", "Estimate", "Peak",
           "ReweightError", "NoSamplesError", "OutsideOverlapError", "NoPeakError", "NoCrossingError",
           "DEFAULT_JACKKNIFE", "DEFAULT_MIN_OVERLAP", "DEFAULT_MBAR_SAMPLES", "DEFAULT_MAX_SAMPLES"]

DEFAULT_JACKKNIFE = 16
DEFAULT_MIN_OVERLAP = 0.25
#: most samples per temperature that MBAR's free energies are solved from (expectations use all)
DEFAULT_MBAR_SAMPLES = 256
#: most samples per temperature (chains pooled) that the expectations use (every stride-th)
DEFAULT_MAX_SAMPLES = 1024
_SCAN = 64                     # grid points of the coarse scans (trusted range, peaks, crossings)


class NoSamplesError(ReweightError, NoBinsError):
    """The source holds no samples to reweight (exact/analytic result, or a file written before bins)."""


class OutsideOverlapError(ReweightError):
    """A temperature outside the range where the sampled histograms overlap (``trusted``: intervals)."""

    def __init__(self, message: str, trusted: list[tuple[float, float]]) -> None:
        super().__init__(message)
        self.trusted = trusted


class NoPeakError(ReweightError):
    """The curve's maximum sits on the edge of the searched (trusted) range: no interior peak."""


class NoCrossingError(ReweightError):
    """The two Binder curves do not cross inside their common trusted range."""


@dataclass(frozen=True)
class Estimate:
    """A value with one standard error; unpacks as ``value, error = est``."""

    value: float
    error: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.value, self.error))

    def __str__(self) -> str:
        return f"{self.value:.6g} ± {self.error:.2g}"


@dataclass(frozen=True)
class Peak:
    """Position ``T`` and height ``value`` of a maximum of a reweighted curve, each with its error."""

    observable: str
    T: Estimate
    value: Estimate


_MOMENTS = ("E", "E2", "m", "m2", "m4", "u", "u2")


class Reweighting:
    """MBAR (or single-histogram) reweighting of one Monte Carlo run over T, fitted once.

    Parameters: ``source`` (module docstring), ``h`` / ``row`` (a sweep's row, by field value or
    index), ``points`` (indices of the simulated temperatures to use), ``n_jackknife`` (time
    blocks for the errors, at most the number of bins), ``min_overlap`` (trusted-range threshold),
    ``mbar_samples`` (samples per temperature that the free energies f_k are solved from, every
    stride-th) and ``max_samples`` (samples per temperature, chains pooled, that the expectations
    use: the stored ones thinned to at most that many; samples closer than tau_int add little).

    Raises :class:`NoSamplesError` for a source without samples, ValueError for a sweep without
    ``h``/``row`` (naming its fields) or bad points, :class:`ReweightError` for a row not done.
    Attributes: ``T_sampled`` (K,), ``f`` (K,) MBAR free energies (beta_k F_k, shifted energies),
    ``trusted`` (list of (T_lo, T_hi)), ``overlap`` (K, K) pymbar's overlap matrix (K > 1).
    """

    def __init__(self, source: Any, *, h: float | None = None, row: int | None = None,
                 points: Sequence[int] | None = None, n_jackknife: int = DEFAULT_JACKKNIFE,
                 min_overlap: float = DEFAULT_MIN_OVERLAP, mbar_samples: int = DEFAULT_MBAR_SAMPLES,
                 max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        res = _as_result(source, h, row)
        b = res.bins
        if b is None or not b.has_samples:
            raise NoSamplesError(f"this {res.method or 'result'} result holds no Monte Carlo samples to "
                                 "reweight (exact/analytic results and files written before bins have none)")
        K_all = res.T.size
        idx = np.arange(K_all) if points is None else np.asarray(points, dtype=np.int64).ravel()
        if idx.size == 0 or np.any((idx < 0) | (idx >= K_all)) or np.unique(idx).size != idx.size:
            raise ValueError(f"points must be distinct indices in 0..{K_all - 1}, got {points!r}")
        if not 0 < min_overlap < 1:
            raise ValueError(f"min_overlap must be in (0, 1), got {min_overlap!r}")
        self.T_sampled = res.T[idx].astype(np.float64)
        self.beta_k = 1.0 / self.T_sampled
        self.n_free, self.n_comp, self.min_overlap = res.n_free, res.n_comp, float(min_overlap)
        n_chains, n_s = b.samples["E"].shape[-2:]
        thin = max(1, -(-n_chains * n_s // int(max_samples)))        # at most max_samples per T
        E, m, u = (b.samples[k][idx][..., ::thin] for k in ("E", "mabs", "mu"))   # (K, chain, sample)
        if not (np.all(np.isfinite(E)) and np.all(np.isfinite(m))):
            raise ReweightError("the chosen temperatures hold NaN samples (a sweep row not done?)")
        bin_of = (np.arange(n_s) // b.samples_per_bin)[::thin]
        K, n_chains, n_s = E.shape
        n_bins = b.n_bins
        n_jack = int(min(max(2, n_jackknife), n_bins))
        block = np.broadcast_to((bin_of * n_jack) // n_bins, E.shape).ravel()
        self.state = np.broadcast_to(np.arange(K)[:, None, None], E.shape).ravel()
        self.E0 = float(np.mean(E))
        self.E = E.ravel() - self.E0                    # shifted: beta E of order sigma_E / T
        self.cols = _columns(self.E, m.ravel(), np.nan_to_num(u.ravel()))
        self.has_projection = "projection" in res.values and bool(np.all(np.isfinite(u)))
        self.N_k = np.full(K, n_chains * n_s, dtype=np.float64)
        # MBAR's f_k from at most mbar_samples per temperature (every stride-th of each chain)
        stride = max(1, -(-n_chains * n_s // int(mbar_samples)))
        fit = np.broadcast_to((np.arange(n_s) % stride) == 0, E.shape).ravel()
        with one_blas_thread():
            self.f = solve(self.E[fit], self.beta_k, self.state[fit], None)
            self.logD = log_denominator(self.E, self.beta_k, self.N_k, self.f)
            self.reps = []                                   # (mask, logD) per leave-one-out block
            for j in range(n_jack):
                keep = block != j
                Nk = np.bincount(self.state[keep], minlength=K).astype(np.float64)
                f = solve(self.E[keep & fit], self.beta_k, self.state[keep & fit], self.f)
                self.reps.append((keep, log_denominator(self.E[keep], self.beta_k, Nk, f)))
            self.overlap = overlap(self.E, self.beta_k, self.N_k, self.f, self.logD) if K > 1 else np.ones((1, 1))
            self.trusted = self._trusted_intervals()

    # ------------------------------------------------------------------ moments
    def _moments(self, beta: np.ndarray, rep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Weighted means of the columns (G, 7) and the effective sample numbers (G,) at beta (G,)."""
        keep, logD = (slice(None), self.logD) if rep is None else self.reps[rep]
        logw = -beta[:, None] * self.E[keep][None, :] - logD[None, :]
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        W = w.sum(axis=1)
        ess = W ** 2 / np.einsum("gn,gn->g", w, w)
        return np.einsum("gn,nc->gc", w, self.cols[keep]) / W[:, None], ess     # (no BLAS threads)

    def _ess(self, beta: np.ndarray) -> np.ndarray:
        """Kish effective sample numbers (sum w)^2 / sum w^2 at beta (G,), all samples."""
        logw = -beta[:, None] * self.E[None, :] - self.logD[None, :]
        return np.exp(2.0 * logsumexp(logw, axis=1) - logsumexp(2.0 * logw, axis=1))

    def _observables(self, T: np.ndarray, rep: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        beta = 1.0 / T
        mom, ess = self._moments(beta, rep)
        moments = dict(zip(_COLUMNS, mom.T))
        if not self.has_projection:
            del moments["mu"], moments["mu2"]
        return derive(moments, beta, self.n_free, self.n_comp, shift={"E": self.E0}), ess

    def _trusted_intervals(self) -> list[tuple[float, float]]:
        """Intervals of T where the effective sample number >= min_overlap * min N_k (docstring)."""
        need = self.min_overlap * self.N_k.min()
        lo, hi = self.beta_k.min(), self.beta_k.max()
        width = 4.0 / max(np.sqrt(np.mean(self.E ** 2)), 1e-300)      # a few 1/sigma_E beyond the ends
        betas = np.linspace(max(lo - width, lo / 4), hi + width, 4 * _SCAN)
        ok = self._ess(betas) >= need
        if not ok.any():
            return []
        out = []
        edges = np.flatnonzero(np.diff(ok.astype(int)))
        starts = [0] + list(edges + 1)
        for s in starts:
            if not ok[s]:
                continue
            e = s
            while e + 1 < ok.size and ok[e + 1]:
                e += 1
            b_lo = self._edge(betas[s - 1], betas[s], need) if s > 0 else betas[s]
            b_hi = self._edge(betas[e], betas[e + 1], need) if e + 1 < ok.size else betas[e]
            out.append((float(1.0 / b_hi), float(1.0 / b_lo)))
        return sorted(out)

    def _edge(self, b_out: float, b_in: float, need: float) -> float:
        g = lambda b: float(self._ess(np.array([b]))[0] - need)    # noqa: E731
        try:
            return float(brentq(g, b_out, b_in, xtol=1e-9 * abs(b_in)))
        except ValueError:
            return b_in

    def check(self, T: Any) -> np.ndarray:
        """T as a float array, or :class:`OutsideOverlapError` for any T outside the trusted range."""
        T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        if not np.all(np.isfinite(T) & (T > 0)):
            raise ValueError(f"temperatures must be finite and > 0, got {T[~(np.isfinite(T) & (T > 0))][0]!r}")
        inside = np.zeros(T.size, bool)
        for lo, hi in self.trusted:
            inside |= (T >= lo * (1 - 1e-12)) & (T <= hi * (1 + 1e-12))
        if not inside.all():
            bad = T[~inside][0]
            raise OutsideOverlapError(f"T = {bad:.6g} is outside the trusted reweighting range "
                                      f"{_describe(self.trusted)} (effective samples below {self.min_overlap:g} x "
                                      f"{self.N_k.min():.0f}): simulate nearer that temperature", self.trusted)
        return T

    # ------------------------------------------------------------------ public
    def curves(self, T: Any) -> Result:
        """The reweighted observables at T (n_T,) with jackknife errors, as a :class:`Result`
        (``meta``: trusted range, effective samples, the sampled temperatures, method)."""
        T = self.check(T)
        val, ess = self._observables(T)
        reps = [self._observables(T, j)[0] for j in range(len(self.reps))]
        J = len(reps)
        values: dict[str, np.ndarray] = {}
        for k, v in val.items():
            values[k] = v
            values[k + schema.ERR] = jackknife_error(np.stack([x[k] for x in reps]))
        meta = {"reweighting": "MBAR (pymbar)" if self.T_sampled.size > 1 else "single histogram",
                "T_sampled": self.T_sampled.tolist(), "trusted_range": [list(x) for x in self.trusted],
                "effective_samples": ess.tolist(), "n_jackknife": J}
        return Result(T=T, method="mc-reweighted", n_free=self.n_free, n_comp=self.n_comp,
                      n_sites=self.n_free, meta=meta, **values)

    def curve(self, observable: str, T: Any, rep: int | None = None) -> np.ndarray:
        """One observable at T (no errors; ``rep``: a jackknife replicate)."""
        schema.observable(observable)
        out = self._observables(self.check(T), rep)[0]
        if observable not in out:
            raise ReweightError(f"{observable!r} cannot be reweighted; available: {', '.join(out)}")
        return out[observable]

    def peak(self, observable: str = "susceptibility", T_range: tuple[float, float] | None = None) -> Peak:
        """The maximum of the reweighted ``observable`` inside the trusted range (or ``T_range``
        within it): T_peak and the height, each +- its jackknife error. Raises
        :class:`NoPeakError` when the maximum sits on the searched range's edge."""
        lo, hi = self._range(T_range)
        T0, v0 = self._argmax(observable, lo, hi, None, edge_error=True)
        reps = np.array([self._argmax(observable, lo, hi, j, edge_error=False) for j in range(len(self.reps))])
        return Peak(observable, Estimate(T0, _jack_err(reps[:, 0])), Estimate(v0, _jack_err(reps[:, 1])))

    def _range(self, T_range: tuple[float, float] | None) -> tuple[float, float]:
        """The searched interval: the trusted range (one interval), or ``T_range`` checked inside it."""
        if T_range is None:
            if len(self.trusted) != 1:
                raise OutsideOverlapError(f"the trusted range is not one interval ({_describe(self.trusted)}): "
                                          "pass T_range inside one of them", self.trusted)
            return self.trusted[0]
        lo, hi = sorted(float(x) for x in T_range)
        self.check(np.linspace(lo, hi, _SCAN))
        return lo, hi

    def _argmax(self, observable: str, lo: float, hi: float, rep: int | None,
                edge_error: bool) -> tuple[float, float]:
        grid = np.linspace(lo, hi, _SCAN)
        y = self._observables(grid, rep)[0][observable]
        i = int(np.nanargmax(y))
        if i in (0, grid.size - 1):
            if edge_error:
                raise NoPeakError(f"{observable} has no interior maximum in T = {lo:.6g}..{hi:.6g} (largest at "
                                  f"T = {grid[i]:.6g}, the edge of the {'trusted ' if rep is None else ''}range)")
            return float(grid[i]), float(y[i])
        f = lambda t: -float(self._observables(np.array([t]), rep)[0][observable][0])   # noqa: E731
        r = minimize_scalar(f, bounds=(grid[i - 1], grid[i + 1]), method="bounded",
                            options={"xatol": 1e-9 * grid[i]})
        return float(r.x), float(-r.fun)


#: the moments (spinsim.derived.MOMENTS) that the weighted means are taken of, column by column:
#: E about E0, |m| and m.u about 0
_COLUMNS = ("E", "E2", "mabs", "m2", "m4", "mu", "mu2")


def _columns(E: np.ndarray, m: np.ndarray, u: np.ndarray) -> np.ndarray:
    m2 = m * m
    return np.stack([E, E * E, m, m2, m2 * m2, u, u * u], axis=1)


def _jack_err(x: np.ndarray) -> float:
    return float(jackknife_error(x))


def _describe(intervals: list[tuple[float, float]]) -> str:
    return " and ".join(f"T = {a:.6g}..{b:.6g}" for a, b in intervals) if intervals else "(empty)"


def _as_result(source: Any, h: float | None, row: int | None) -> Result:
    """A Result over T from a Result, a sweep (with h or row) or a file path."""
    if isinstance(source, (str, os.PathLike)):
        from .io import from_attr, open_spinsim
        with open_spinsim(source) as f:
            kind = from_attr(f.attrs.get("spinsim_kind"))
        if kind == "sweep":
            from .phase import read_sweep
            source = read_sweep(source)
        else:
            source = Result.from_hdf5(source)
    if not isinstance(source, Result):
        raise TypeError(f"source must be a spinsim Result, sweep or file path, got {type(source).__name__}")
    if source.h is None:
        if h is not None or row is not None:
            raise ValueError("h= and row= select a sweep's row; this result is over T only")
        return source
    if (h is None) == (row is None):
        raise ValueError(f"a sweep has {source.h.size} rows: pass h= (one of {source.h.tolist()}) or row=")
    if row is None:
        hit = np.flatnonzero(np.isclose(source.h, float(h), rtol=1e-12, atol=1e-12))
        if hit.size == 0:
            raise ValueError(f"h = {h!r} is not a field of this sweep; fields: {source.h.tolist()}")
        row = int(hit[0])
    if not -source.h.size <= int(row) < source.h.size:
        raise ValueError(f"row {row} out of range: this sweep has {source.h.size} rows")
    k = int(row)
    if source.done is not None and not source.done[k]:
        raise ReweightError(f"row {k} (h = {source.h[k]:g}) of this sweep is not done")
    return Result(source.T, source.method, n_sites=source.n_sites, n_free=source.n_free, n_comp=source.n_comp,
                  meta={"h": float(source.h[k])}, bins=None if source.bins is None else source.bins.take(k),
                  **{name: v[k] for name, v in source.values.items()})


def reweight(source: Any, T: Any, **kw: Any) -> Result:
    """Reweighted observables at T with jackknife errors (:class:`Reweighting` options in ``kw``);
    raises :class:`OutsideOverlapError` for a T outside the trusted range."""
    return Reweighting(source, **kw).curves(T)


def peak(source: Any, observable: str = "susceptibility", T_range: tuple[float, float] | None = None,
         **kw: Any) -> Peak:
    """T_peak +- error and the height of the reweighted ``observable`` (:meth:`Reweighting.peak`)."""
    return (source if isinstance(source, Reweighting) else Reweighting(source, **kw)).peak(observable, T_range)


def trusted_range(source: Any, **kw: Any) -> tuple[float, float]:
    """(T_lo, T_hi) of the trusted reweighting range; :class:`OutsideOverlapError` when the
    histograms leave gaps (several intervals: see :attr:`Reweighting.trusted`)."""
    rw = source if isinstance(source, Reweighting) else Reweighting(source, **kw)
    if len(rw.trusted) != 1:
        raise OutsideOverlapError(f"the trusted range is {_describe(rw.trusted)}, not one interval", rw.trusted)
    return rw.trusted[0]


def binder_crossing(source_1: Any, source_2: Any, T_range: tuple[float, float] | None = None,
                    **kw: Any) -> Estimate:
    """T where the reweighted Binder cumulants of two sizes cross, +- its error (jackknife of each
    run with the other held fixed, added in quadrature: the runs are independent). Searches the
    common trusted range (or ``T_range`` inside it); the lowest crossing is returned. Raises
    :class:`NoCrossingError` when the curves, or any jackknife replicate of them, do not cross
    there (an error from the replicates that cross would be too small), :class:`OutsideOverlapError`
    when the trusted ranges do not overlap."""
    a, b = (s if isinstance(s, Reweighting) else Reweighting(s, **kw) for s in (source_1, source_2))
    lo_a, hi_a = a._range(T_range) if T_range is not None else trusted_range(a)
    lo_b, hi_b = b._range(T_range) if T_range is not None else trusted_range(b)
    lo, hi = max(lo_a, lo_b), min(hi_a, hi_b)
    if not lo < hi:
        raise OutsideOverlapError(f"the trusted ranges T = {lo_a:.6g}..{hi_a:.6g} and {lo_b:.6g}..{hi_b:.6g} "
                                  "do not overlap", [(lo_a, hi_a), (lo_b, hi_b)])

    def cross(ra: int | None, rb: int | None, required: bool) -> float:
        grid = np.linspace(lo, hi, _SCAN)
        d = a._observables(grid, ra)[0]["binder"] - b._observables(grid, rb)[0]["binder"]
        s = np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) <= 0)
        if s.size == 0:
            if required:
                raise NoCrossingError(f"the Binder cumulants do not cross in T = {lo:.6g}..{hi:.6g}")
            return float("nan")
        i = int(s[0])
        g = lambda t: float(a._observables(np.array([t]), ra)[0]["binder"][0]      # noqa: E731
                            - b._observables(np.array([t]), rb)[0]["binder"][0])
        return float(brentq(g, grid[i], grid[i + 1], xtol=1e-12)) if d[i] != 0 else float(grid[i])

    T0 = cross(None, None, True)
    ea = np.array([cross(j, None, False) for j in range(len(a.reps))])
    eb = np.array([cross(None, j, False) for j in range(len(b.reps))])
    lost = int((~np.isfinite(ea)).sum() + (~np.isfinite(eb)).sum())
    if lost:                                 # dropping them would shrink the error: refuse instead
        raise NoCrossingError(f"the Binder cumulants cross at T = {T0:.6g}, but {lost} of {ea.size + eb.size} "
                              f"jackknife replicates do not cross in T = {lo:.6g}..{hi:.6g}: the crossing is "
                              "not resolved (run longer)")
    return Estimate(T0, float(np.hypot(_jack_err(ea), _jack_err(eb))))
