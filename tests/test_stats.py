"""Per-head statistics and family-wise corrections."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from spinsim.analysis.stats import (benjamini_hochberg, bonferroni, head_stats, pearson, permutation_fwer,
                                    spearman)


def test_pearson_and_spearman_match_scipy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 7))
    y = X[:, 2] * 0.8 + rng.normal(size=20)
    X[3, 5] = X[4, 5]                     # a tie for the ranks
    r, p = pearson(X, y)
    rho, ps = spearman(X, y)
    for k in range(7):
        ref = st.pearsonr(X[:, k], y)
        assert r[k] == pytest.approx(ref.statistic, rel=1e-12)
        assert p[k] == pytest.approx(ref.pvalue, rel=1e-9)
        refs = st.spearmanr(X[:, k], y)
        assert rho[k] == pytest.approx(refs.statistic, rel=1e-12)
        assert ps[k] == pytest.approx(refs.pvalue, rel=1e-9)
    # a constant head: r undefined, p = 1
    X[:, 0] = 3.0
    r, p = pearson(X, y)
    assert np.isnan(r[0]) and p[0] == 1.0


def test_bonferroni_and_bh():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    np.testing.assert_allclose(bonferroni(p), np.minimum(1, p * 10))
    # step-up BH by hand
    K = p.size
    order = np.argsort(p)
    q = np.empty(K)
    running = 1.0
    for rank in range(K, 0, -1):
        k = order[rank - 1]
        running = min(running, p[k] * K / rank)
        q[k] = running
    np.testing.assert_allclose(benjamini_hochberg(p), q)
    np.testing.assert_allclose(benjamini_hochberg(p.reshape(2, 5)), q.reshape(2, 5))
    if hasattr(st, "false_discovery_control"):
        np.testing.assert_allclose(benjamini_hochberg(p), st.false_discovery_control(p, method="bh"))


def test_permutation_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 6))
    y = rng.normal(size=12)
    p_vec, null = permutation_fwer(X, y, n_perm=300, seed=4)
    # recompute the same permutations in a loop
    rng2 = np.random.default_rng(4)
    perms = np.argsort(rng2.random((300, 12)), axis=1)
    null_loop = np.array([max(abs(st.pearsonr(X[:, k], y[pm]).statistic) for k in range(6)) for pm in perms])
    np.testing.assert_allclose(null, null_loop, rtol=1e-10)
    r_obs = np.abs([st.pearsonr(X[:, k], y).statistic for k in range(6)])
    p_loop = (1 + (null_loop[None, :] >= r_obs[:, None] - 1e-12).sum(1)) / 301
    np.testing.assert_allclose(p_vec, p_loop)


def test_permutation_fwer_null_is_roughly_uniform_and_planted_head_is_found():
    rng = np.random.default_rng(7)
    n_rep, P, K = 60, 20, 144
    ps = []
    for rep in range(n_rep):
        X = rng.normal(size=(P, K))
        y = rng.normal(size=P)
        p, null = permutation_fwer(X, y, n_perm=400, seed=rep)
        ps.append(p.min())                # the family-wise p of the best head under the null
    ps = np.array(ps)
    # under the null the best head's family-wise p is ~uniform: not piling up at small values
    assert 0.3 < np.mean(ps) < 0.7
    # the largest |r| of 144 heads at n = 20 has median ~0.6 (SPEC section 0)
    assert 0.52 < np.median(null) < 0.68
    # a planted strong head survives everything
    X = rng.normal(size=(P, K))
    y = rng.normal(size=P)
    X[:, 17] = y + 0.2 * rng.normal(size=P)
    s = head_stats(X, y, n_perm=10_000, seed=1)
    assert s.fwer_p[17] == pytest.approx(1 / 10_001)
    surv = s.survivors(0.05)
    assert 17 in surv["bonferroni"] and 17 in surv["bh"] and 17 in surv["permutation"]
    assert len(surv["permutation"]) <= 3


def _fwer_within(rate: float, alpha: float) -> bool:
    """The family-wise error rate agrees with alpha to within alpha / 2 (3.6 binomial standard
    errors at 1000 repetitions: sqrt(0.05 * 0.95 / 1000) = 0.0069)."""
    return abs(rate - alpha) < 0.5 * alpha


def test_permutation_fwer_controls_the_family_wise_error_rate():
    """Under the null (y independent of every head) the max-|r| permutation p of the best head
    is <= alpha in a fraction alpha of the repetitions (exactly, for n_perm + 1 a multiple of
    1/alpha), at alpha = 0.05 and 0.10; a procedure with twice the error rate fails the check."""
    rng = np.random.default_rng(11)
    n_rep, P, K = 1000, 20, 30
    p_min = np.array([permutation_fwer(rng.normal(size=(P, K)), rng.normal(size=P), n_perm=199,
                                       seed=rep)[0].min() for rep in range(n_rep)])
    for alpha in (0.05, 0.10):
        assert _fwer_within(np.mean(p_min <= alpha), alpha), (alpha, np.mean(p_min <= alpha))
    # the same check rejects a 2x inflated family-wise error rate (p halved: rate(p/2 <= a) = 2a)
    assert not _fwer_within(np.mean(p_min / 2 <= 0.05), 0.05)


def test_errors():
    with pytest.raises(ValueError, match="at least 3 prompts, got 2"):
        pearson(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="n_perm must be >= 1, got 0"):
        permutation_fwer(np.ones((5, 2)), np.arange(5.0), n_perm=0)
