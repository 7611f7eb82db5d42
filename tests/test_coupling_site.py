"""SiteLowRank (position-dependent M_ij = A_i B_j^T) against explicit per-pair sums."""
import numpy as np
import pytest

import spinsim as ss
from spinsim.coupling import LowRank, SiteLowRank


def _random(N=5, n=7, r=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, n, r)), rng.normal(size=(N, n, r)), rng.normal(size=(N, n)), rng.normal(size=(N, N))


def test_pair_energy_and_fields_match_explicit_pair_sums():
    A, B, S, W = _random()
    np.fill_diagonal(W, 0.0)
    M = SiteLowRank(A, B)
    N = S.shape[0]
    G = np.array([[S[i] @ A[i] @ B[j].T @ S[j] for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(M.bilinear(S, S), G, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M.pair_energy(W, S), np.sum(W * G), rtol=1e-12)
    # phi_k = d/dS_k of sum_ij W_ij S_i^T M_ij S_j, written out pair by pair
    phi = np.array([sum(W[k, j] * A[k] @ B[j].T @ S[j] + W[j, k] * B[k] @ A[j].T @ S[j] for j in range(N))
                    for k in range(N)])
    np.testing.assert_allclose(M.local_fields(W, S), phi, rtol=1e-12, atol=1e-12)
    for k in range(N):
        np.testing.assert_allclose(M.local_field(W, S, k), phi[k], rtol=1e-12, atol=1e-12)


def test_equal_sites_reduce_to_lowrank():
    A, B, S, W = _random()
    np.fill_diagonal(W, 0.0)
    N = S.shape[0]
    site = SiteLowRank(np.broadcast_to(A[0], A.shape), np.broadcast_to(B[0], B.shape))
    plain = LowRank(A[0], B[0])
    np.testing.assert_allclose(site.local_fields(W, S), plain.local_fields(W, S), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(site.pair_energy(W, S), plain.pair_energy(W, S), rtol=1e-12)
    H1 = ss.Hamiltonian(W, M=site, h=S[::-1])
    H2 = ss.Hamiltonian(W, M=plain, h=S[::-1])
    assert H1.energy(S) == pytest.approx(H2.energy(S), rel=1e-12)
    # same energies, different couplings: a sweep file of one must not resume the other
    assert H1.describe()["hamiltonian_sha256"] != H2.describe()["hamiltonian_sha256"]
    assert H1.describe()["coupling"] == "SiteLowRank" and N == H1.n_sites


def test_restrict_is_exact_inside_the_span_and_per_site_bases():
    A, B, S, W = _random(N=4, n=9, r=2)
    np.fill_diagonal(W, 0.0)
    M = SiteLowRank(A, B)
    rng = np.random.default_rng(3)
    U = np.linalg.qr(rng.normal(size=(9, 5)))[0]
    x = rng.normal(size=(4, 5))
    np.testing.assert_allclose(M.restrict(U).pair_energy(W, x), M.pair_energy(W, x @ U.T), rtol=1e-12)
    Us = np.stack([np.linalg.qr(rng.normal(size=(9, 5)))[0] for _ in range(4)])
    Sfull = np.einsum("ind,id->in", Us, x)
    np.testing.assert_allclose(M.restrict(Us).pair_energy(W, x), M.pair_energy(W, Sfull), rtol=1e-12)
    assert M.spectral_norm() >= max(np.linalg.norm(A[i] @ B[j].T, 2) for i in range(4) for j in range(4)) - 1e-12


def test_refusals_name_the_problem():
    A, B, S, W = _random()
    M = SiteLowRank(A, B)
    for call in (lambda: M.apply(S), lambda: M.apply_T(S), M.factors, M.dense):
        with pytest.raises(TypeError, match="position-dependent"):
            call()
    with pytest.raises(ValueError, match=r"\(n_sites, n_comp, rank\)"):
        SiteLowRank(A[0], B[0])
    with pytest.raises(ValueError, match="non-finite"):
        SiteLowRank(np.where(A > 1, np.nan, A), B)
    W6 = np.ones((6, 6)) - np.eye(6)
    with pytest.raises(ValueError, match="written for 5 sites but W has 6"):
        ss.Hamiltonian(W6, M=M)
    assert M.A.flags.writeable is False
    An, Bn = M.span_factors()
    assert An.shape == (7, 15) and np.allclose(An[:, 3:6], A[1])
