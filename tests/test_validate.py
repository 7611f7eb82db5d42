"""analysis.validate: analytic two-candidate log-odds == exact enumeration, MC within 4 sigma."""
import numpy as np
import pytest

import spinsim as ss
from spinsim.analysis.validate import plot_validation, validate_candidates, write_validation


def _probe_system(seed=0, K=4, n=6, N=5):
    rng = np.random.default_rng(seed)
    state = rng.standard_normal((N + 1, n))
    W = np.zeros((N + 1, N + 1))
    W[:N, :N] = np.tril(np.ones((N, N)), -1)
    W[N, :N] = 1.0
    V = rng.standard_normal((K, n))
    state[N] = V[0]
    frozen = np.r_[np.ones(N, bool), False]
    M = ss.LowRank(rng.standard_normal((n, 3)) * 0.4, rng.standard_normal((n, 3)) * 0.4)
    return ss.Hamiltonian(W, M=M, h=rng.standard_normal((N + 1, n)) * 0.1, spin=ss.Discrete(V, labels=tuple("wxyz")),
                          frozen=frozen, state=state)


def test_analytic_equals_exact_and_mc_within_4_sigma(tmp_path):
    H = _probe_system()
    v = validate_candidates(H, a=1, b=3, sweeps=4000, seed=2)
    assert v.labels == ("x", "z")
    np.testing.assert_allclose(v.exact, v.analytic, rtol=1e-10, atol=1e-10)
    assert np.all(np.abs(v.z) < 4), v.z
    # the gap is the energy difference of the two candidate states, independently
    S = H.state.copy()
    S[-1] = H.spin.vectors[1]
    EA = H.energy(S)
    S[-1] = H.spin.vectors[3]
    assert abs(v.gap - (H.energy(S) - EA)) < 1e-12
    p = write_validation(tmp_path / "v.h5", v)
    import h5py
    with h5py.File(p) as f:
        assert f["validate/mc"].dims[0][0].name == "/validate/T" and f["validate"].attrs["gap"] == v.gap
    plot_validation(v, tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 10_000


def test_validation_needs_a_probe():
    with pytest.raises(ValueError, match="exactly one free site"):
        validate_candidates(ss.lattice("ising", 4))
    with pytest.raises(ValueError, match="candidate index b=9 out of range 0..3"):
        validate_candidates(_probe_system(), b=9)
