"""The prediction tests on constructed data with known answers: a perfect monotone relation is
evidence, independent data is not; layered class tables; class/sign agreement; too few heads."""
from __future__ import annotations

import numpy as np
import pytest

from spinsim.analysis.atlas_predictions import (ablation_vs_boundary, class_share_per_layer, class_vs_gap_sign,
                                                closeness_order)


@pytest.mark.slow
def test_ablation_vs_boundary_monotone_is_evidence_independent_is_not():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 2, 40)
    t = ablation_vs_boundary(np.exp(-d), d, n_resamples=999)
    assert t.statistic == pytest.approx(1.0) and t.verdict == "evidence"
    assert t.p_value == pytest.approx(1 / 1000)             # no permutation reaches rho = 1
    assert t.effect_ci[0] <= 1.0 <= t.effect_ci[1] + 1e-12
    u = ablation_vs_boundary(rng.uniform(size=40), d, n_resamples=999)
    assert u.p_value > 0.05 and u.verdict == "no evidence"
    # the opposite relation is not evidence for the one-sided prediction
    assert ablation_vs_boundary(d, d, n_resamples=999).verdict == "no evidence"
    d2 = d.copy()
    d2[:5] = np.nan
    assert ablation_vs_boundary(np.exp(-d), d2, n_resamples=99).n_left_out == 5


def test_class_share_per_layer():
    layer = np.repeat(np.arange(3), 9)
    same = np.tile(["ferro"] * 6 + ["antiferro"] * 3, 3)
    shares, t = class_share_per_layer(layer, same, n_resamples=999)
    np.testing.assert_allclose(shares["ferro"], 6 / 9)
    np.testing.assert_allclose(shares["antiferro"], 3 / 9)
    assert t.statistic == pytest.approx(0.0) and t.p_value == pytest.approx(1.0) and t.verdict == "no evidence"
    layered = np.where(layer == 0, "antiferro", "ferro")
    _, t2 = class_share_per_layer(layer, layered, n_resamples=999)
    # bias-corrected V (Bergsma 2013): 27 heads, 3 layers x 2 classes, perfect association:
    # phi^2 = 1 - 2/26, r~ = 3 - 4/26, c~ = 2 - 1/26 -> V = sqrt((24/26) / (25/26))
    assert t2.effect == pytest.approx(np.sqrt(24 / 25)) and t2.verdict == "evidence"
    assert t2.effect_ci[0] <= t2.effect <= t2.effect_ci[1]


def test_cramers_v_is_bias_corrected():
    """Independent labels in a sparse table (30 layers x 3 classes over 270 heads, as SmolLM2's):
    the plain V sits near 0.3, the corrected one near 0 (mean over 20 draws < 0.06, plain > 0.2),
    and its interval holds it."""
    from spinsim.analysis.atlas_predictions import cramers_v_corrected

    rng = np.random.default_rng(0)
    layer = np.repeat(np.arange(30), 9)
    plain, corr = [], []
    for s in range(20):
        cls = rng.choice(["ferro", "antiferro", "mixed"], layer.size, p=[0.42, 0.06, 0.52])
        t = np.array([[np.sum((layer == l) & (cls == c)) for c in ("ferro", "antiferro", "mixed")] for l in range(30)])
        e = t.sum(1, keepdims=True) * t.sum(0, keepdims=True) / t.sum()
        c2 = float(np.sum((t - e) ** 2 / e))
        plain.append(np.sqrt(c2 / (layer.size * 2)))
        corr.append(cramers_v_corrected(c2, layer.size, 30, 3))
    assert np.mean(plain) > 0.2 and np.mean(corr) < 0.06
    for seed in (0, 102, 111):     # 102, 111: draws where BCa's interval had collapsed away from V
        cls = np.random.default_rng(seed).choice(["ferro", "antiferro", "mixed"], layer.size, p=[0.42, 0.06, 0.52])
        _, t = class_share_per_layer(layer, cls, n_resamples=999)
        assert t.effect_ci[0] <= t.effect <= t.effect_ci[1], (seed, t.effect, t.effect_ci)


def test_class_vs_gap_sign():
    cls = np.array(["ferro", "antiferro"] * 10 + ["mixed"] * 3, dtype=object)
    r = np.where(cls == "ferro", 0.5, -0.4).astype(float)
    t = class_vs_gap_sign(cls, r, n_resamples=999)
    assert t.statistic == pytest.approx(1.0) and t.effect == pytest.approx(1.0) and t.verdict == "evidence"
    assert t.n == 20 and t.n_left_out == 3
    rng = np.random.default_rng(1)
    u = class_vs_gap_sign(cls, rng.standard_normal(cls.size), n_resamples=999)
    assert u.verdict == "no evidence"
    few = class_vs_gap_sign(["ferro", "antiferro"], [0.1, -0.1])
    assert np.isnan(few.p_value) and few.verdict.startswith("no evidence")


def test_closeness_order_with_censored_heads():
    """Gehan's pair rule: observed pairs by their distances; an observed head below a censored
    head's bound is closer; above it, and two censored heads, unknown."""
    K = closeness_order([0.1, 0.5, np.nan, np.nan], [np.nan, np.nan, 0.3, np.nan])
    np.testing.assert_array_equal(K, [[0, 1, 1, 0], [-1, 0, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 0]])


def _pair_rule(d, c):
    """Gehan's rule written out pair by pair (the test's own reading): +1 when i is known closer."""
    n = len(d)
    K = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if np.isfinite(d[i]) and np.isfinite(d[j]):
                K[i, j] = np.sign(d[j] - d[i])
            elif np.isfinite(d[i]) and d[i] < c[j]:
                K[i, j] = 1
            elif np.isfinite(d[j]) and d[j] < c[i]:
                K[i, j] = -1
    return K


def test_censored_heads_enter_prediction_a():
    """Four heads with a T_c (no relation among them: tau = 0) and four with their T_c beyond the
    grid (censored at 1.0, beyond every observed distance) and the smallest effects. With them:
    16 known concordant pairs of 22, tau = 8/11, and the exact permutation p (all 8! orders) of
    the pair rule; without them (dropping selects on the predictor): tau = 0, no evidence."""
    import itertools

    d = np.array([0.1, 0.2, 0.3, 0.4] + [np.nan] * 4)
    c = np.array([np.nan] * 4 + [1.0] * 4)
    e = np.array([12.0, 14.0, 11.0, 13.0, 0.1, 0.2, 0.3, 0.4])
    t = ablation_vs_boundary(e, d, n_resamples=50000, bound=c)
    assert t.statistic == pytest.approx(8 / 11) and t.n == 8 and t.n_censored == 4 and t.n_left_out == 0
    K = _pair_rule(d, c)
    ep = e[np.array(list(itertools.permutations(range(8))))]                     # every order of the effects
    taus = np.einsum("pij,ij->p", np.sign(ep[:, :, None] - ep[:, None, :]), K) / np.abs(K).sum()
    assert t.p_value == pytest.approx(np.mean(taus >= 8 / 11 - 1e-12), abs=1e-12)
    assert t.p_value < 0.05 and t.verdict == "evidence" and "(4 censored)" in t.line()
    u = ablation_vs_boundary(e, d, n_resamples=9999)
    assert u.statistic == pytest.approx(0.0) and u.n == 4 and u.n_left_out == 4 and u.n_censored == 0
    assert u.verdict.startswith("no evidence")
    nothing = ablation_vs_boundary(e, d, n_resamples=99, bound=np.full(8, np.nan))   # bound unknown: left out
    assert nothing.n == 4 and nothing.n_left_out == 4
