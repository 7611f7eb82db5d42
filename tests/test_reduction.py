"""spinsim.reduction: local fields against per-site explicit sums, and the span(A, B, h) working
space against R^n (fields and energies to 1e-12 relative)."""
from __future__ import annotations

import numpy as np
import pytest

import spinsim as ss
from spinsim.reduction import (apply_coupling, coupling_factors, coupling_kernel_arrays, coupling_norm, local_fields,
                               span_basis, uniform_projection, working_space)


@pytest.mark.parametrize("coupling", ["identity", "dense", "lowrank"])
def test_local_fields_match_explicit_sums(coupling):
    rng = np.random.default_rng(0)
    N, n = 6, 5
    M = {"identity": ss.Identity(n, 0.7), "dense": rng.standard_normal((n, n)),
         "lowrank": ss.LowRank(rng.standard_normal((n, 2)), rng.standard_normal((n, 2)))}[coupling]
    H = ss.Hamiltonian(ss.causal(N) * rng.uniform(0.5, 1, (N, N)), M=M, h=rng.standard_normal((N, n)),
                       spin=ss.Heisenberg(n))
    S = rng.standard_normal((N, n))
    Md, W = H.M_dense, H.W_dense
    ref = np.array([sum(W[k, j] * Md @ S[j] + W[j, k] * Md.T @ S[j] for j in range(N)) + H.h[k] for k in range(N)])
    np.testing.assert_allclose(local_fields(H, S), ref, rtol=1e-12, atol=1e-12)
    assert coupling_norm(H.M) == pytest.approx(np.linalg.norm(Md, 2), rel=1e-12)
    np.testing.assert_allclose(apply_coupling(H.M, S), S @ Md.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(apply_coupling(H.M, S, transpose=True), S @ Md, rtol=1e-12, atol=1e-12)
    A, B = coupling_factors(H.M, n)
    np.testing.assert_allclose(A @ B.T, Md, rtol=1e-12, atol=1e-12)
    assert coupling_kernel_arrays(H.M)[0] == {"identity": 0, "dense": 1, "lowrank": 2}[coupling]


def test_working_space_is_exact_for_states_in_the_span():
    rng = np.random.default_rng(1)
    N, n, r = 5, 40, 3
    A, B = rng.standard_normal((n, r)), rng.standard_normal((n, r))
    h = np.zeros((N, n))
    h[1] = rng.standard_normal(n)
    H = ss.Hamiltonian(ss.causal(N), M=ss.LowRank(A, B), h=h, spin=ss.Heisenberg(n))
    red = working_space(H)
    assert red.d == 2 * r + 1                           # span(A, B, h_1): 7 of 40 dimensions
    np.testing.assert_allclose(red.basis.T @ red.basis, np.eye(red.d), atol=1e-12)
    S_red = rng.standard_normal((N, red.d))
    S = red.lift(S_red)                                  # a state inside the span
    np.testing.assert_allclose(red.lift(red.fields(H.W, S_red)), local_fields(H, S), rtol=1e-12, atol=1e-12)
    # and any state: the fields see only its projection on the span
    X = rng.standard_normal((N, n))
    np.testing.assert_allclose(red.lift(red.fields(H.W, X @ red.basis)), local_fields(H, X), rtol=1e-10, atol=1e-12)
    assert working_space(H, enabled=False).basis is None
    assert span_basis(np.zeros((4, 2))).shape == (4, 0)


def test_uniform_projection_second_moment():
    # a uniform unit vector of R^n has E |P x|^2 = d / n on a d-dim subspace; 4 standard errors
    n, d, N = 30, 4, 20000
    p = uniform_projection(np.random.default_rng(3), N, n, d)
    q = np.sum(p * p, axis=1)
    assert abs(q.mean() - d / n) < 4 * q.std() / np.sqrt(N)
    assert np.all(q < 1.0)
