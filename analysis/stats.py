"""Per-head correlation statistics and their family-wise corrections.

For K heads (columns of ``theory``, shape (P, K)) and one empirical vector ``actual`` (P,):

* Pearson r and its two-sided p-value (t = r sqrt((P-2)/(1-r^2)), Student t with P-2 dof, as
  scipy.stats.pearsonr); Spearman rho (Pearson r of ranks, average ranks for ties) with the same
  t approximation (as scipy.stats.spearmanr).
* Bonferroni: p * K (capped at 1). Benjamini-Hochberg: step-up adjusted q-values (FDR).
* Permutation max-|r| family-wise p (Westfall-Young single step): permute the prompts of
  ``actual`` n_perm times (the same permutation for every head, so the heads' dependence is
  kept), recompute r for every head at once as one matrix product of standardised arrays, and
  take ``fwer_p_k = (1 + #{perm: max_k' |r_perm,k'| >= |r_k|}) / (1 + n_perm)``.

A head whose theory is constant over prompts has r = nan and p = 1.
"""
from __future__ import annotations

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


def _p_from_r(r: np.ndarray, n: int) -> np.ndarray:
    r = np.clip(r, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r * r, 0.0))
    p = 2.0 * _st.t.sf(np.abs(t), n - 2)
    return np.where(np.isnan(r), 1.0, p)


def pearson(theory: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r (K,) and two-sided p (K,) of every column of theory (P, K) with actual (P,)."""
    theory = np.asarray(theory, np.float64)
    if theory.ndim == 1:
        theory = theory[:, None]
    n = theory.shape[0]
    if n < 3:
        raise ValueError(f"correlations need at least 3 prompts, got {n}")
    Zt, const = _standardise(theory)
    za, ca = _standardise(np.asarray(actual, np.float64)[:, None])
    r = (Zt.T @ za[:, 0])
    r = np.where(const | ca[0], np.nan, np.clip(r, -1.0, 1.0))
    return r, _p_from_r(r, n)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks along axis 0 (ties share their mean rank)."""
    return _st.rankdata(np.asarray(x, np.float64), axis=0)


def spearman(theory: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho (K,) and two-sided p (K,) (t approximation, as scipy.stats.spearmanr)."""
    theory = np.asarray(theory, np.float64)
    if theory.ndim == 1:
        theory = theory[:, None]
    return pearson(rankdata(theory), rankdata(np.asarray(actual, np.float64)))


def bonferroni(p: np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted p-values min(1, p * K) over all K entries (any shape)."""
    p = np.asarray(p, np.float64)
    return np.minimum(1.0, p * p.size)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) over all entries (any shape)."""
    p = np.asarray(p, np.float64)
    flat = p.ravel()
    K = flat.size
    order = np.argsort(flat)
    q = flat[order] * K / np.arange(1, K + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(K)
    out[order] = np.minimum(q, 1.0)
    return out.reshape(p.shape)


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
