"""The position-dependent low-rank coupling :class:`SiteLowRank` (``M_ij = A_i B_j^T``): a
rotary (RoPE) head's exact pair scores at every offset. Conventions: :mod:`spinsim.coupling`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .coupling import _DUMMY, CODE_SITE_LOWRANK, Coupling, CouplingArrays, own_factors, real_array

__all__ = ["SiteLowRank"]


@dataclass(frozen=True, eq=False)
class SiteLowRank(Coupling):
    """Position-dependent low-rank coupling: the pair (query i, key j) couples through
    ``M_ij = A_i B_j^T`` with per-site factors A, B of shape (n_sites, n_comp, rank).

    ``H = -sum_{i!=j} W_ij S_i^T A_i B_j^T S_j - sum_i h_i.S_i``. With projections
    ``Q_i = A_i^T S_i`` and ``P_j = B_j^T S_j`` (rank,), the pair energy is ``Q_i . P_j`` and
    site k's coupling field is ``A_k sum_j W_kj P_j + B_k sum_j W_jk Q_j`` (cost O(nnz(W) r +
    N n r), no n x n matrix). A rotary head (RoPE, Su et al. 2021, eq. 14-16) is the case
    ``A_i = scale W_Q R_i^T``, ``B_j = W_K R_j^T``: ``q_i.k_j = x_i^T W_Q R_i^T R_j W_K^T x_j``
    depends on the offset i - j only through ``R_i^T R_j = R_{j-i}``. ``LowRank(A, B)`` is the
    case ``A_i = A``, ``B_j = B`` for every site.

    There is no single M: :meth:`apply`, :meth:`apply_T`, :meth:`factors` and :meth:`dense` raise
    TypeError naming the coupling; every graph-level quantity (local fields, pair energies,
    bilinear forms over the sites) is exact. :meth:`span_factors` gives the directions that couple.
    """

    A: np.ndarray
    B: np.ndarray
    code: ClassVar[int] = CODE_SITE_LOWRANK

    def __post_init__(self) -> None:
        A = real_array(self.A, "coupling factor A")
        B = real_array(self.B, "coupling factor B")
        if A.ndim != 3 or A.shape != B.shape:
            raise ValueError(f"per-site factors A, B must both be (n_sites, n_comp, rank), got {A.shape} and {B.shape}")
        if min(A.shape) < 1:
            raise ValueError(f"per-site factors need n_sites, n_comp, rank >= 1, got shape {A.shape}")
        own_factors(self, A, B)

    @property
    def n_sites(self) -> int:          # type: ignore[override]
        return int(self.A.shape[0])

    @property
    def n_comp(self) -> int:
        return int(self.A.shape[1])

    @property
    def rank(self) -> int:
        return int(self.A.shape[2])

    def _no_single_matrix(self, what: str) -> TypeError:
        return TypeError(f"SiteLowRank is position-dependent (M_ij = A_i B_j^T): it has no single {what}; use "
                         "local_fields / pair_energy / bilinear over the sites, or span_factors()")

    def apply(self, X: np.ndarray) -> np.ndarray:
        raise self._no_single_matrix("M to apply")

    def apply_T(self, X: np.ndarray) -> np.ndarray:
        raise self._no_single_matrix("M^T to apply")

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        raise self._no_single_matrix("factor pair (A, B)")

    def dense(self) -> np.ndarray:
        raise self._no_single_matrix("dense M")

    def span_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(A_all, B_all), each (n_comp, n_sites * rank): the columns of every site's factors, whose
        span contains every direction that couples (the basis of an exact reduction). For a
        rotary head span(A_i) = span(W_Q) for every i, so the rank of A_all is at most ``rank``."""
        N, n, r = self.A.shape
        return (np.ascontiguousarray(self.A.transpose(1, 0, 2).reshape(n, N * r)),
                np.ascontiguousarray(self.B.transpose(1, 0, 2).reshape(n, N * r)))

    def _sites(self, X: np.ndarray, what: str) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape != (self.n_sites, self.n_comp):
            raise ValueError(f"{what} must be one vector per site, shape ({self.n_sites}, {self.n_comp}), got {X.shape}")
        return X

    def projections(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Q, P), each (n_sites, rank): ``Q_i = A_i^T S_i`` (site i as query), ``P_j = B_j^T S_j``
        (site j as key); S (n_sites, n_comp)."""
        S = self._sites(S, "S")[:, None, :]           # batched BLAS (see restrict): (N, 1, n) @ (N, n, r)
        return (S @ self.A)[:, 0, :], (S @ self.B)[:, 0, :]

    def bilinear(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``G[i, j] = x_i^T A_i B_j^T y_j`` for X, Y (n_sites, n_comp): (n_sites, n_sites)."""
        Qx, _ = self.projections(self._sites(X, "X"))
        _, Py = self.projections(self._sites(Y, "Y"))
        return Qx @ Py.T

    def local_fields(self, W: Any, S: np.ndarray) -> np.ndarray:
        Q, P = self.projections(S)
        return ((self.A @ np.asarray(W @ P)[:, :, None])[:, :, 0]
                + (self.B @ np.asarray(W.T @ Q)[:, :, None])[:, :, 0])

    def local_field(self, W: Any, S: np.ndarray, k: int) -> np.ndarray:
        Q, P = self.projections(S)
        row = W.getrow(k).toarray().ravel() if sp.issparse(W) else W[k]
        col = W.getcol(k).toarray().ravel() if sp.issparse(W) else W[:, k]
        return self.A[k] @ (row @ P) + self.B[k] @ (col @ Q)

    def restrict(self, basis: np.ndarray) -> Coupling:
        """``basis^T A_i``, ``basis^T B_i`` for one basis (n_comp, d) shared by every site, or a
        per-site basis (n_sites, n_comp, d) (site i's spin written in the columns of basis[i])."""
        U = np.asarray(basis, dtype=np.float64)
        # batched BLAS products (np.einsum without optimize loops in C without BLAS: ~10x slower
        # for head-sized factors)
        if U.ndim == 2:
            return SiteLowRank(U.T @ self.A, U.T @ self.B)
        if U.ndim == 3 and U.shape[:2] == (self.n_sites, self.n_comp):
            Ut = U.transpose(0, 2, 1)
            return SiteLowRank(Ut @ self.A, Ut @ self.B)
        raise ValueError(f"basis must be (n_comp, d) or (n_sites, n_comp, d) with n_sites={self.n_sites}, "
                         f"n_comp={self.n_comp}; got shape {U.shape}")

    def spectral_norm(self) -> float:
        """An upper bound of ``max_{i, j} ||A_i B_j^T||_2``: ``max_i ||A_i||_2 max_j ||B_j||_2`` (the
        largest pair coupling cannot exceed it; used for energy scales and convergence bounds)."""
        return _max_spectral_norm(self.A) * _max_spectral_norm(self.B)

    def kernel_arrays(self) -> CouplingArrays:
        return CouplingArrays(self.code, 0.0, _DUMMY, _DUMMY, _DUMMY, self.A, self.B)

    def _hash_bytes(self) -> list[bytes]:
        return [b"SiteLowRank", np.asarray(self.A.shape, np.int64).tobytes(), self.A.tobytes(), self.B.tobytes()]


def _max_spectral_norm(X: np.ndarray) -> float:
    """``max_i ||X_i||_2`` over the sites of X (n_sites, n_comp, rank), from the rank x rank Gram
    matrices ``X_i^T X_i`` (one batched eigensolve instead of an SVD per site), rounded up by a
    relative 1e-12 so that it stays an upper bound."""
    G = X.transpose(0, 2, 1) @ X
    top = float(np.max(np.linalg.eigvalsh(G)[:, -1])) if X.shape[0] else 0.0
    return float(np.sqrt(max(top, 0.0))) * (1.0 + 1e-12)
