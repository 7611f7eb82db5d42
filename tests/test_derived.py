"""The one definition of the derived observables and the one jackknife (spinsim.derived), against
answers worked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from spinsim.derived import binder_cumulant, derive, derived_estimates, jackknife, jackknife_error


def test_derive_from_moments_about_centres():
    """Two states with E = 10 +- 1 (total), |m| = 0.5 +- 0.5 (N = 4, n = 1, T = 2): <E> = 10, var E = 1,
    <|m|> = 0.5, var |m| = 0.25, <m^2> = 0.5, <m^4> = 0.5 -> C = var E / (T^2 N) = 1/16,
    chi = N var|m| / T = 0.5, U = 1 - 0.5 / (3 * 0.25) = 1/3; the same whatever the centres."""
    for cE, cm in ((0.0, 0.0), (10.0, 0.5), (9.0, 0.25)):
        mom = {"E": 10.0 - cE, "E2": 1.0 + (10.0 - cE) ** 2, "mabs": 0.5 - cm, "mabs2": 0.25 + (0.5 - cm) ** 2,
               "m2": 0.5, "m4": 0.5}
        d = derive(mom, 0.5, 4, 1, shift={"E": cE, "mabs": cm})
        assert d["energy"] == pytest.approx(2.5, rel=1e-15) and d["magnetization"] == pytest.approx(0.5, rel=1e-15)
        assert d["specific_heat"] == pytest.approx(1 / 16, rel=1e-14)
        assert d["susceptibility"] == pytest.approx(0.5, rel=1e-14)
        assert d["binder"] == pytest.approx(1 / 3, rel=1e-14)
        assert "projection" not in d
    assert binder_cumulant(1.0, 1.0, 3) == pytest.approx(1 - 3 / 5)       # fixed length: 2/(n+2)
    assert binder_cumulant(1.0, 5 / 3, 3) == pytest.approx(0.0)           # Gaussian in 3D: <m^4> = 5/3 <m^2>^2
    assert np.isnan(binder_cumulant(0.0, 0.0, 1))


def test_jackknife_of_a_mean_is_the_standard_error_and_of_a_square_by_hand():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    v, e = jackknife(lambda a: a, [x])
    assert v == 3.5 and e == pytest.approx(x.std(ddof=1) / 2, rel=1e-14)
    # a^2: leave-one-out means 13/3, 4, 10/3, 7/3 -> squares 169/9, 144/9, 100/9, 49/9
    r = np.array([169, 144, 100, 49]) / 9.0
    v, e = jackknife(lambda a: a * a, [x])
    assert v == 12.25 and e == pytest.approx(np.sqrt(3 / 4 * np.sum((r - r.mean()) ** 2)), rel=1e-14)
    assert jackknife_error(r) == pytest.approx(e, rel=1e-15)
    assert np.isnan(jackknife(lambda a: a, [np.array([1.0])])[1])


def test_derived_estimates_on_a_grid_match_each_point_alone():
    """Blocks over a (2, 3) grid with B = 5: each point's values and errors equal those of the
    point alone (beta broadcasting against the leave-one-out axis)."""
    rng = np.random.default_rng(1)
    blocks = {k: rng.uniform(0.5, 1.5, (2, 3, 5)) for k in ("E", "E2", "mabs", "m2", "m4", "mu", "mu2")}
    beta = np.array([[0.5, 1.0, 2.0], [0.25, 0.5, 4.0]])
    grid = derived_estimates(blocks, beta, 9, 3, shift={"E": np.full((2, 3), 100.0)})
    for i in range(2):
        for j in range(3):
            one = derived_estimates({k: v[i, j] for k, v in blocks.items()}, beta[i, j], 9, 3, shift={"E": 100.0})
            for k, v in one.items():
                assert grid[k][i, j] == pytest.approx(v, rel=1e-12), k
