"""span_basis falls back to LAPACK's gesvd when numpy's gesdd does not converge (it did not on
GPT-2 small's L2H2 with positional fields)."""
import numpy as np

from spinsim import reduction


def test_span_basis_survives_a_gesdd_failure(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 9))         # rank 6 in 40 dimensions

    def fail(*a, **k):
        raise np.linalg.LinAlgError("SVD did not converge")
    monkeypatch.setattr(reduction.np.linalg, "svd", fail)
    U = reduction.span_basis(X)
    assert U.shape == (40, 6)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(U @ (U.T @ X), X, atol=1e-10)
