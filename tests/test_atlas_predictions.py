"""The prediction tests on constructed data with known answers: a perfect monotone relation is
evidence, independent data is not; layered class tables; class/sign agreement; too few heads."""
from __future__ import annotations

import numpy as np
import pytest

from spinsim.analysis.atlas_predictions import ablation_vs_boundary, class_share_per_layer, class_vs_gap_sign


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
    assert t2.effect == pytest.approx(1.0) and t2.verdict == "evidence"


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
