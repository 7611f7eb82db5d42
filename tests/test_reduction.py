"""spinsim.reduction: the span(A, B, h) working space against R^n (fields to 1e-12 relative), which
couplings are reduced, and the projection of uniform starts."""
from __future__ import annotations

import numpy as np
import pytest

import spinsim as ss
from spinsim.reduction import span_basis, uniform_projection, working_space


@pytest.mark.parametrize("coupling", ["identity", "dense", "lowrank"])
def test_only_low_rank_couplings_are_reduced(coupling):
    rng = np.random.default_rng(0)
    N, n = 4, 6
    M = {"identity": ss.Identity(n, 0.7), "dense": rng.standard_normal((n, n)),
         "lowrank": ss.LowRank(rng.standard_normal((n, 2)), rng.standard_normal((n, 2)))}[coupling]
    red = working_space(ss.Hamiltonian(ss.causal(N), M=M, spin=ss.Heisenberg(n)))
    assert red.d == (4 if coupling == "lowrank" else n)          # span(A, B) of rank-2 factors: 4
    assert (red.basis is None) == (coupling != "lowrank")


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
    np.testing.assert_allclose(red.lift(red.fields(H.W, S_red)), H.local_fields(S), rtol=1e-12, atol=1e-12)
    # and any state: the fields see only its projection on the span
    X = rng.standard_normal((N, n))
    np.testing.assert_allclose(red.lift(red.fields(H.W, X @ red.basis)), H.local_fields(X), rtol=1e-10, atol=1e-12)
    assert working_space(H, enabled=False).basis is None
    assert span_basis(np.zeros((4, 2))).shape == (4, 0)


def test_uniform_projection_second_moment():
    # a uniform unit vector of R^n has E |P x|^2 = d / n on a d-dim subspace; 4 standard errors
    n, d, N = 30, 4, 20000
    p = uniform_projection(np.random.default_rng(3), N, n, d)
    q = np.sum(p * p, axis=1)
    assert abs(q.mean() - d / n) < 4 * q.std() / np.sqrt(N)
    assert np.all(q < 1.0)


def test_span_basis_full_rank_shortcut_only_when_full_beyond_doubt():
    """full_shortcut: a wide X of full row rank gives the identity (callers then use R^n); a
    rank-deficient one (and one whose smallest singular value is ~1e-6 of the largest, which
    the Gram test cannot tell from zero with confidence) goes through the SVD as without it."""
    from spinsim.reduction import span_basis

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 90))
    np.testing.assert_array_equal(span_basis(X, full_shortcut=True), np.eye(40))
    assert span_basis(X).shape == (40, 40)
    low = rng.standard_normal((40, 30)) @ rng.standard_normal((30, 90))          # rank 30
    assert span_basis(low, full_shortcut=True).shape == (40, 30)
    U, _, Vt = np.linalg.svd(X, full_matrices=False)
    s = np.ones(40)
    s[-1] = 1e-6
    near = (U * s) @ Vt                                                          # rank 40, barely
    B = span_basis(near, full_shortcut=True)
    np.testing.assert_allclose(np.abs(B.T @ span_basis(near)), np.eye(40), atol=1e-8)
    assert span_basis(X.T, full_shortcut=True).shape == (90, 40)                 # tall: no shortcut
