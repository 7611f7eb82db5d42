"""analysis.validate: analytic two-candidate log-odds == exact enumeration, MC within 4 sigma."""
import numpy as np
import pytest

import spinsim as ss
from spinsim.probe import DegenerateCandidatesError, ParallelCandidatesError
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
    assert abs(v.candidate_gap - (H.energy(S) - EA)) < 1e-12
    p = write_validation(tmp_path / "v.h5", v)
    import h5py
    with h5py.File(p) as f:
        assert f["validate/mc"].dims[0][0].name == "/validate/T" and f["validate"].attrs["gap"] == v.candidate_gap
    fig = plot_validation(v, tmp_path / "v.png")
    assert (tmp_path / "v.png").is_file() and (tmp_path / "v.pdf").is_file()
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith(r"$\beta = 1/T$") and "P(x) / P(z)" in ax.get_ylabel()
    assert f"{v.candidate_gap:.4g}" in ax.get_title()
    line, exact = ax.lines[0], ax.lines[1]
    bb = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), (v.E_B - v.E_A) * bb, rtol=1e-12)   # the analytic line
    assert bb.max() >= 1 / v.T.min()                                 # covers every temperature
    np.testing.assert_allclose(exact.get_xdata(), 1 / v.T, rtol=1e-12)
    np.testing.assert_allclose(exact.get_ydata(), v.exact, rtol=1e-12)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        r"analytic $\beta(E_B-E_A)$", "exact enumeration", "Monte Carlo (heat bath)"]


def test_validation_needs_a_probe():
    with pytest.raises(ValueError, match="exactly one free site"):
        validate_candidates(ss.lattice("ising", 4))
    with pytest.raises(ValueError, match="candidate index b=9 out of range 0..3"):
        validate_candidates(_probe_system(), b=9)


def test_indistinguishable_candidates_raise_typed_errors():
    """Degenerate (E_A == E_B) and parallel candidates raise their own types (callers catch the
    type: the demo skips such prompts)."""
    H = _probe_system()
    V = H.spin.vectors.copy()
    V[2] = V[1]                                           # the same vector: equal energies
    Hd = ss.replace(H, spin=ss.Discrete(V, labels=tuple("wxyz")))
    with pytest.raises(DegenerateCandidatesError, match=r"degenerate \(E_A == E_B\)"):
        validate_candidates(Hd, a=1, b=2)
    V = H.spin.vectors.copy()
    V[2] = -2.0 * V[1]                                    # parallel, different energies
    Hp = ss.replace(H, spin=ss.Discrete(V, labels=tuple("wxyz")))
    with pytest.raises(ParallelCandidatesError, match="parallel"):
        validate_candidates(Hp, a=1, b=2)


def test_log_odds_at_very_low_temperature_are_not_clipped():
    """T = 1e-6: the exact log-odds equal the analytic beta (E_B - E_A) (|value| ~ 1e6-1e7, rtol
    1e-9), not a probability clipped at 1e-300 (-690.8); the MC column is NaN (one candidate
    never sampled), said in meta, never a finite wrong value."""
    H = _probe_system()
    v = validate_candidates(H, T=[1e-6, 2.0], a=1, b=3, sweeps=200, seed=2)
    assert abs(v.analytic[0]) > 1e4
    np.testing.assert_allclose(v.exact, v.analytic, rtol=1e-9)
    assert np.isnan(v.mc[0]) and np.isnan(v.mc_err[0])
    assert np.isfinite(v.mc[1])
    assert "1e-06" in v.meta["mc_unresolved"]
