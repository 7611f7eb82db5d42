"""spinsim.coupling: every coupling's algebra against its explicit n x n matrix and explicit sums."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp

import spinsim as ss
from spinsim.coupling import Coupling, CouplingArrays, as_coupling

N, n, r = 7, 5, 2
RNG = np.random.default_rng(11)
A0, B0 = RNG.standard_normal((n, r)), RNG.standard_normal((n, r))
D0 = RNG.standard_normal((n, n))
EXPLICIT = {"identity": (ss.Identity(n, -0.8), -0.8 * np.eye(n)),
            "dense": (ss.Dense(D0), D0),
            "lowrank": (ss.LowRank(A0, B0), np.einsum("ik,jk->ij", A0, B0))}   # M = A B^T, entry by entry


@pytest.fixture(params=sorted(EXPLICIT))
def case(request):
    return EXPLICIT[request.param]


def test_apply_bilinear_and_factors_match_the_matrix(case):
    M, Md = case
    X, Y = RNG.standard_normal((4, n)), RNG.standard_normal((3, n))
    np.testing.assert_allclose(M.apply(X), np.array([Md @ x for x in X]), rtol=1e-12, atol=1e-12)     # rows -> (M x)^T
    np.testing.assert_allclose(M.apply_T(X), np.array([Md.T @ x for x in X]), rtol=1e-12, atol=1e-12)
    G = np.array([[x @ Md @ y for y in Y] for x in X])
    np.testing.assert_allclose(M.bilinear(X, Y), G, rtol=1e-12, atol=1e-12)
    Af, Bf = M.factors()
    np.testing.assert_allclose(Af @ Bf.T, Md, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M.dense(), Md, rtol=1e-12, atol=1e-12)
    assert M.n_comp == n and isinstance(M, Coupling)
    assert M.spectral_norm() == pytest.approx(np.linalg.svd(Md, compute_uv=False)[0], rel=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_graph_level_fields_and_energy_are_the_explicit_sums(case, sparse):
    M, Md = case
    W = RNG.standard_normal((N, N)) * (RNG.random((N, N)) < 0.6)
    np.fill_diagonal(W, 0)
    S = RNG.standard_normal((N, n))
    Wg = sp.csr_matrix(W) if sparse else W
    phi = np.array([sum(W[k, j] * Md @ S[j] + W[j, k] * Md.T @ S[j] for j in range(N)) for k in range(N)])
    np.testing.assert_allclose(M.local_fields(Wg, S), phi, rtol=1e-11, atol=1e-11)
    for k in (0, 3, N - 1):
        np.testing.assert_allclose(M.local_field(Wg, S, k), phi[k], rtol=1e-11, atol=1e-11)
    E = sum(W[i, j] * S[i] @ Md @ S[j] for i in range(N) for j in range(N))
    assert M.pair_energy(Wg, S) == pytest.approx(E, rel=1e-11)


def test_restrict_is_exact_inside_the_span_of_the_factors():
    M, Md = EXPLICIT["lowrank"]
    U, _ = np.linalg.qr(np.concatenate([A0, B0], axis=1))          # orthonormal basis of span(A, B)
    Mr = M.restrict(U)
    assert Mr.n_comp == U.shape[1]
    x, y = RNG.standard_normal((2, n))
    # spin components outside span(A, B) do not couple: x^T M y = (U^T x)^T M_r (U^T y)
    assert (U.T @ x) @ Mr.dense() @ (U.T @ y) == pytest.approx(x @ Md @ y, rel=1e-12)
    assert ss.Identity(n, 2.0).restrict(np.eye(n)[:, :2]) == ss.Identity(2, 2.0)
    np.testing.assert_allclose(ss.Dense(D0).restrict(np.eye(n)[:, :3]).dense(), D0[:3, :3])


def test_kernel_arrays():
    for name, code in (("identity", 0), ("dense", 1), ("lowrank", 2)):
        M, Md = EXPLICIT[name]
        k = M.kernel_arrays()
        assert isinstance(k, CouplingArrays) and k.code == code == M.code
        for arr in (k.Mmat, k.A, k.B):
            assert arr.dtype == np.float64 and arr.flags.c_contiguous
    ki, kd, kl = (EXPLICIT[c][0].kernel_arrays() for c in ("identity", "dense", "lowrank"))
    assert ki.J == -0.8 and ki.Mmat.shape == ki.A.shape == (1, 1)
    np.testing.assert_array_equal(kd.Mmat, D0)
    np.testing.assert_array_equal(kl.A @ kl.B.T, A0 @ B0.T)


def test_describe_hash_bytes_are_stable():
    """The hash that refuses mismatched resumes is sha256 over W, h, lengths, frozen and then
    J (Identity), M (Dense) or the tag "LowRank", the rank and A, B (LowRank): Identity and Dense
    files written by 0.1 resume; LowRank bytes are tagged since 0.2 (see test_frozen_arrays)."""
    W = np.triu(np.ones((3, 3)), 1)
    for M, tail in ((ss.Identity(2, 0.5), [np.float64(0.5).tobytes()]),
                    (ss.Dense(D0[:2, :2]), [np.ascontiguousarray(D0[:2, :2]).tobytes()]),
                    (ss.LowRank(A0[:2], B0[:2]), [b"LowRank", np.int64(A0.shape[1]).tobytes(),
                                                  np.ascontiguousarray(A0[:2]).tobytes(),
                                                  np.ascontiguousarray(B0[:2]).tobytes()])):
        H = ss.Hamiltonian(W, M=M, spin="xy")
        hsh = hashlib.sha256()
        for b in [W.tobytes(), np.zeros((3, 2)).tobytes(), np.ones(3).tobytes(), np.zeros(3, np.uint8).tobytes()] + tail:
            hsh.update(b)
        assert H.describe()["hamiltonian_sha256"] == hsh.hexdigest()


def test_as_coupling_and_checks():
    assert as_coupling(0.5, 3) == ss.Identity(3, 0.5)
    assert isinstance(as_coupling([[1.0, 2.0], [3.0, 4.0]], 0), ss.Dense)
    M = ss.LowRank(A0, B0)
    assert as_coupling(M, 0) is M
    with pytest.raises(ValueError, match="unknown coupling str"):
        as_coupling("J", 3)
    with pytest.raises(ValueError, match="coupling J must be finite"):
        ss.Identity(3, float("inf"))
    with pytest.raises(ValueError, match="integer n_comp >= 1"):
        ss.Identity(0)
    with pytest.raises(ValueError, match=r"coupling factor B has a non-finite entry nan at index \(1, 0\)"):
        ss.LowRank(A0, np.where(np.arange(n * r).reshape(n, r) == 2, np.nan, B0))
    with pytest.raises(ValueError, match="must be square"):
        ss.Dense(np.ones((2, 3)))
