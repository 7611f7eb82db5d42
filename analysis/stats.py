"""Per-head correlation statistics and their family-wise corrections.

For K heads (columns of ``theory``, shape (P, K)) and one empirical vector ``actual`` (P,):

* Pearson r and its two-sided p-value (``scipy.stats.pearsonr``: t = r sqrt((P-2)/(1-r^2)),
  Student t with P-2 dof); Spearman rho with the same t approximation (``scipy.stats.spearmanr``,
  average ranks for ties); both vectorised over the heads.
* Bonferroni: p * K (capped at 1). Benjamini-Hochberg: step-up adjusted q-values (FDR),
  ``scipy.stats.false_discovery_control``.
* Permutation max-|r| family-wise p (Westfall-Young single step): permute the prompts of
  ``actual`` n_perm times (the same permutation for every head, so the heads' dependence is
  kept), recompute r for every head at once as one matrix product of standardised arrays, and
  take ``fwer_p_k = (1 + #{perm: max_k' |r_perm,k'| >= |r_k|}) / (1 + n_perm)``.

A head whose theory is constant over prompts has r = nan and p = 1.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

__all__ = ["pearson", "spearman", "bonferroni", "benjamini_hochberg", "permutation_fwer", "HeadStats",
           "head_stats", "rankdata"]


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns centred and scaled to unit norm; second value: mask of constant columns."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(0)
    nrm = np.sqrt((xc ** 2).sum(0))
    const = ~(nrm > 1e-12 * np.maximum(1.0, np.abs(x).max(0)))
    return xc / np.where(const, 1.0, nrm), const


def _columns(theory: np.ndarray) -> np.ndarray:
    theory = np.asarray(theory, np.float64)
    return theory[:, None] if theory.ndim == 1 else theory


def _masked(r: np.ndarray, p: np.ndarray, const: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, p) as float arrays (K,) with constant columns set to (nan, 1)."""
    r, p = np.atleast_1d(np.asarray(r, np.float64)), np.atleast_1d(np.asarray(p, np.float64))
    return np.where(const, np.nan, r), np.where(const, 1.0, p)


def _constant_columns(theory: np.ndarray, actual: np.ndarray) -> np.ndarray:
    n = theory.shape[0]
    if n < 3:
        raise ValueError(f"correlations need at least 3 prompts, got {n}")
    return _standardise(theory)[1] | _standardise(np.asarray(actual, np.float64)[:, None])[1][0]


def pearson(theory: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r (K,) and two-sided p (K,) of every column of theory (P, K) with actual (P,)
    (:func:`scipy.stats.pearsonr`, vectorised over the heads). A column or ``actual`` constant to
    1e-12 of its scale gives r = nan, p = 1. Raises ValueError for fewer than 3 prompts."""
    theory = _columns(theory)
    const = _constant_columns(theory, actual)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _st.ConstantInputWarning)
        with np.errstate(invalid="ignore", divide="ignore"):
            res = _st.pearsonr(theory, np.asarray(actual, np.float64)[:, None], axis=0)
    return _masked(res.statistic, res.pvalue, const)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks along axis 0 (ties share their mean rank)."""
    return _st.rankdata(np.asarray(x, np.float64), axis=0)


def spearman(theory: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho (K,) and two-sided p (K,) (:func:`scipy.stats.spearmanr`: average ranks for
    ties, Student t with P - 2 dof). Constant columns as in :func:`pearson`."""
    theory = _columns(theory)
    const = _constant_columns(theory, actual)
    actual = np.asarray(actual, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _st.ConstantInputWarning)
        with np.errstate(invalid="ignore", divide="ignore"):
            res = _st.spearmanr(theory, actual[:, None], axis=0)
    rho, p = np.asarray(res.statistic), np.asarray(res.pvalue)
    if rho.ndim == 2:                                   # K > 1: the last row of the (K+1)^2 matrix
        rho, p = rho[-1, :-1], p[-1, :-1]
    return _masked(rho, p, const)


def bonferroni(p: np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted p-values min(1, p * K) over all K entries (any shape)."""
    p = np.asarray(p, np.float64)
    return np.minimum(1.0, p * p.size)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) over all entries (any shape):
    :func:`scipy.stats.false_discovery_control` with ``method="bh"`` over the flattened array."""
    p = np.asarray(p, np.float64)
    return _st.false_discovery_control(p.ravel(), method="bh").reshape(p.shape)


def permutation_fwer(theory: np.ndarray, actual: np.ndarray, n_perm: int = 10_000, seed: int = 0,
                     chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Family-wise p (K,) from the permutation distribution of max_k |r_k| (see module docstring).

    Returns ``(fwer_p, max_abs_r_null)`` with the null maxima (n_perm,). Deterministic in ``seed``.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    theory = np.asarray(theory, np.float64)
    if theory.ndim == 1:
        theory = theory[:, None]
    Zt, const = _standardise(theory)
    za, _ = _standardise(np.asarray(actual, np.float64)[:, None])
    za = za[:, 0]
    r_obs = np.abs(Zt.T @ za)
    r_obs[const] = np.nan
    rng = np.random.default_rng(seed)
    P = za.size
    null = np.empty(n_perm)
    for start in range(0, n_perm, chunk):
        m = min(chunk, n_perm - start)
        perms = np.argsort(rng.random((m, P)), axis=1)                  # m independent permutations
        R = za[perms] @ Zt                                              # (m, K): every head at once
        R[:, const] = 0.0
        null[start:start + m] = np.abs(R).max(1)
    null_sorted = np.sort(null)
    # count of null maxima >= |r_obs| (tolerance for ties in floating point)
    ge = n_perm - np.searchsorted(null_sorted, r_obs - 1e-12, side="left")
    p = (1.0 + ge) / (1.0 + n_perm)
    return np.where(np.isnan(r_obs), 1.0, p), null


@dataclass
class HeadStats:
    """Statistics over K heads (arrays (K,), reshape to (n_layers, n_heads) as needed)."""

    pearson_r: np.ndarray
    pearson_p: np.ndarray
    spearman_rho: np.ndarray
    spearman_p: np.ndarray
    bonferroni_p: np.ndarray
    bh_q: np.ndarray
    fwer_p: np.ndarray
    null_max_abs_r: np.ndarray
    n_perm: int
    n_prompts: int

    def survivors(self, alpha: float = 0.05) -> dict[str, np.ndarray]:
        """Indices of heads significant at ``alpha`` after each correction (and uncorrected)."""
        return {"uncorrected": np.flatnonzero(self.pearson_p < alpha),
                "bonferroni": np.flatnonzero(self.bonferroni_p < alpha),
                "bh": np.flatnonzero(self.bh_q < alpha),
                "permutation": np.flatnonzero(self.fwer_p < alpha)}


def head_stats(theory: np.ndarray, actual: np.ndarray, n_perm: int = 10_000, seed: int = 0) -> HeadStats:
    """All statistics for theory (P, K) against actual (P,)."""
    r, p = pearson(theory, actual)
    rho, ps = spearman(theory, actual)
    fw, null = permutation_fwer(theory, actual, n_perm, seed)
    return HeadStats(r, p, rho, ps, bonferroni(p), benjamini_hochberg(p), fw, null, int(n_perm),
                     int(np.asarray(actual).size))
