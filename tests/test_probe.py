"""spinsim.probe: candidate energies, log-odds and the level-crossing field against H.energy and
the closed forms (energies to 1e-12 relative); typed errors."""
from __future__ import annotations

import numpy as np
import pytest

import spinsim as ss
from spinsim.probe import (DegenerateCandidatesError, NoLevelCrossingError, ParallelCandidatesError,
                           candidate_energies, crossing_field, indicator_direction, level_crossing_field,
                           log_odds_temperatures, two_candidate_log_odds)


def probe_system(seed: int = 0) -> ss.Hamiltonian:
    rng = np.random.default_rng(seed)
    N, n = 5, 4
    frozen = np.ones(N, bool)
    frozen[2] = False                                   # the probe sits in the middle of the bath
    lengths = rng.uniform(0.5, 2, N)
    sigma = rng.standard_normal((N, n))
    state = lengths[:, None] * sigma / np.linalg.norm(sigma, axis=1, keepdims=True)
    return ss.Hamiltonian(ss.causal(N), M=ss.LowRank(rng.standard_normal((n, 2)), rng.standard_normal((n, 2))),
                          h=rng.standard_normal((N, n)), spin=ss.Heisenberg(n), lengths=lengths,
                          frozen=frozen, state=state)


def test_candidate_energies_are_total_energies():
    H = probe_system()
    rng = np.random.default_rng(1)
    spins = rng.standard_normal((6, H.n_comp))
    E, phi = candidate_energies(H, spins)
    for a in range(6):
        S = H.state.copy()
        S[2] = spins[a]
        assert E[a] == pytest.approx(H.energy(S), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(phi, H.local_field(H.state, 2), rtol=1e-12)
    bath = H.state + 0.1                                # an explicit bath replaces H.state
    Eb, _ = candidate_energies(H, spins[:2], probe=2, bath=bath)
    S = bath.copy()
    S[2] = spins[1]
    assert Eb[1] == pytest.approx(H.energy(S), rel=1e-12)
    with pytest.raises(ValueError, match="probe site 7 out of range 0..4"):
        candidate_energies(H, spins, probe=7)
    with pytest.raises(ValueError, match=r"candidate spins must have shape \(K, 4\)"):
        candidate_energies(H, spins[:, :2])


def test_crossing_field_zeroes_the_log_odds():
    E_A, E_B, p_A, p_B = -1.0, -0.4, 0.2, 0.8
    h = crossing_field(E_A, E_B, p_A, p_B)
    assert h == pytest.approx(1.0)                      # (E_A - E_B) / (p_A - p_B) = -0.6 / -0.6
    T = np.array([0.5, 2.0])
    np.testing.assert_allclose(two_candidate_log_odds(E_A - h * p_A, E_B - h * p_B, T), 0.0, atol=1e-15)
    np.testing.assert_allclose(two_candidate_log_odds(E_A, E_B, T), 0.6 / T, rtol=1e-15)
    Es = np.array([-1.0, -0.9])
    out = crossing_field(Es, E_B, [0.2, 0.5], [0.8, 0.5])
    assert out[0] == pytest.approx((-1.0 + 0.4) / -0.6) and np.isnan(out[1])
    assert level_crossing_field(E_A, E_B, p_A, p_B) == pytest.approx(1.0)
    with pytest.raises(NoLevelCrossingError, match="same projection p = 0.5"):
        level_crossing_field(0.0, 1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        two_candidate_log_odds(0.0, 1.0, [1.0, 0.0])


def test_log_odds_temperatures_and_indicator_direction():
    T = log_odds_temperatures(-1.0, -0.7)
    np.testing.assert_allclose(T, 0.3 * np.geomspace(1 / 3, 3, 9), rtol=1e-15)
    assert 0.3 / T[0] == pytest.approx(3.0) and 0.3 / T[-1] == pytest.approx(1 / 3)
    with pytest.raises(DegenerateCandidatesError, match="degenerate"):
        log_odds_temperatures(0.5, 0.5)
    S_A, S_B = np.array([1.0, 2.0, 0.0]), np.array([0.0, 1.0, 1.0])
    d = indicator_direction(S_A, S_B)
    assert S_A @ d == pytest.approx(1.0, abs=1e-12) and S_B @ d == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ParallelCandidatesError, match="parallel"):
        indicator_direction(S_A, 2 * S_A)
    assert issubclass(ParallelCandidatesError, ValueError) and issubclass(DegenerateCandidatesError, ValueError)
