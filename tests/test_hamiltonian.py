"""spinsim.hamiltonian: energy, local field and dE against explicit sums."""
import numpy as np
import pytest

import spinsim as ss


def _explicit_energy(W, M, h, S):
    N = S.shape[0]
    return -sum(W[i, j] * S[i] @ M @ S[j] for i in range(N) for j in range(N) if i != j) - np.sum(h * S)


@pytest.mark.parametrize("coupling", ["identity", "dense", "lowrank"])
def test_energy_field_and_delta_energy(coupling):
    rng = np.random.default_rng(1)
    N, n = 6, 4
    W = rng.standard_normal((N, N))
    np.fill_diagonal(W, 0)
    A, B = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    M = {"identity": ss.Identity(n, 0.7), "dense": ss.Dense(rng.standard_normal((n, n))),
         "lowrank": ss.LowRank(A, B)}[coupling]
    h = rng.standard_normal((N, n))
    H = ss.Hamiltonian(W, M=M, h=h, spin=ss.Heisenberg(n), lengths=rng.uniform(0.5, 2, N))
    S = H.random_state(rng)
    Md = H.M_dense
    assert abs(H.energy(S) - _explicit_energy(W, Md, h, S)) < 1e-10
    for k in range(N):
        phi = H.local_field(S, k)
        # E is linear in S_k: phi_k = -dE/dS_k exactly
        grad = np.array([(_explicit_energy(W, Md, h, S + np.outer(np.eye(N)[k], e)) - H.energy(S)) for e in np.eye(n)])
        np.testing.assert_allclose(-grad, phi, atol=1e-9)
        new = rng.standard_normal(n)
        S2 = S.copy()
        S2[k] = new
        assert abs(H.delta_energy(S, k, new) - (H.energy(S2) - H.energy(S))) < 1e-10


def test_symmetric_part_and_describe_hash():
    M = np.array([[1.0, 2.0], [0.0, 3.0]])
    H = ss.Hamiltonian(np.triu(np.ones((3, 3)), 1), M=M, spin="xy")
    np.testing.assert_allclose(H.M_sym, [[1, 1], [1, 3]])
    d1 = H.describe()["hamiltonian_sha256"]
    d2 = ss.replace(H, h=np.array([0.1, 0])).describe()["hamiltonian_sha256"]
    assert d1 != d2 and H.describe()["n_comp"] == 2


def test_frozen_sites_need_state_and_all_frozen_is_refused():
    with pytest.raises(ValueError, match="frozen sites need their fixed values"):
        ss.Hamiltonian(np.zeros((2, 2)), spin="xy", frozen=[True, False])
    with pytest.raises(ValueError, match="every site is frozen"):
        ss.Hamiltonian(np.zeros((2, 2)), spin="xy", frozen=[True, True], state=[[1, 0], [1, 0]])
    with pytest.raises(ValueError, match=r"W\[1, 1\] = 2.0"):
        ss.Hamiltonian(np.diag([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"lengths\[0\] = -1.0"):
        ss.Hamiltonian(np.zeros((2, 2)), spin="xy", lengths=[-1.0, 1.0])
