"""Local fields and the exact span(A, B, h) reduction of a low-rank Hamiltonian.

``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i`` (k_B = 1; ``W[i, j]``: query i, key j),
``S_i = m_i sigma_i``. The local field on site k is
``phi_k = sum_j W_kj M S_j + sum_j W_jk M^T S_j + h_k`` (energy units), so that
``E(S_k') - E(S_k) = -(S_k' - S_k) . phi_k``.

The reduction. With ``M = A B^T`` (A, B (n, r)) every local field lies in
``V = span(A, B, h_1 .. h_N)`` (dimension d <= 2 r + N): ``M S_j = A (B^T S_j)`` and
``M^T S_j = B (A^T S_j)``, and the fields only see the projections ``B^T S_j``, ``A^T S_j`` of the
spins on V. So every fixed point of a zero-temperature quench has its free spins in V, and any
computation that needs only fields and energies can run in d dimensions instead of n (768 -> 128
for a head without fields) and be lifted back to R^n at the end, exactly. A uniformly random O(n)
unit spin is reproduced exactly in V by its projection ``g / sqrt(|g|^2 + chi2_{n-d})``,
``g ~ N(0, 1_d)`` (:func:`uniform_projection`). Identity and Dense couplings are not reduced.

Used by the ground-state search (:mod:`spinsim.solvers.ground`) and the harmonic excitations
(:mod:`spinsim.excitations`, which reduces the tangent space with :func:`span_basis` of A, B).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .hamiltonian import Dense, Hamiltonian, Heisenberg, Identity, LowRank

__all__ = ["local_fields", "coupling_fields", "apply_coupling", "coupling_factors", "coupling_norm", "coupling_kernel_arrays", "span_basis",
           "complete_basis", "Reduction", "working_space", "uniform_projection"]


# ============================================================================ fields
# The coupling M is asked through these functions only (one place that knows Identity, Dense
# and LowRank on the numpy side).
def apply_coupling(M: Any, X: np.ndarray, transpose: bool = False) -> np.ndarray:
    """Rows x_j of X (N, d) mapped by M: ``(M x_j)^T = x_j M^T`` (transpose=False) or by M^T:
    ``(M^T x_j)^T = x_j M`` (transpose=True). A low-rank M is applied through its factors."""
    if isinstance(M, Identity):
        return M.J * X
    if isinstance(M, Dense):
        return X @ (M.M if transpose else M.M.T)
    return (X @ M.A) @ M.B.T if transpose else (X @ M.B) @ M.A.T


def coupling_fields(W: Any, M: Any, h: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``Phi = (W S) M^T + (W^T S) M + h``: the local field of every site, (n_sites, d).

    W (n_sites, n_sites) dense or sparse; M an Identity, Dense or LowRank coupling on R^d;
    h (n_sites, d); S (n_sites, d) spins with lengths. A low-rank M is never densified
    (cost O(nnz(W) r + N d r)).
    """
    if isinstance(M, LowRank):             # project first: M S_j = A (B^T S_j)
        return np.asarray(W @ (S @ M.B)) @ M.A.T + np.asarray(W.T @ (S @ M.A)) @ M.B.T + h
    WS = np.asarray(W @ S)                 # row k: sum_j W_kj S_j
    WtS = np.asarray(W.T @ S)              # row k: sum_j W_jk S_j
    if isinstance(M, Identity):
        return M.J * (WS + WtS) + h
    return WS @ M.M.T + WtS @ M.M + h


def local_fields(H: Hamiltonian, S: np.ndarray) -> np.ndarray:
    """All local fields ``phi_k = sum_j W_kj M S_j + sum_j W_jk M^T S_j + h_k`` of H at the
    state S (n_sites, n_comp), lengths included: (n_sites, n_comp), energy units.

    The field of site k does not depend on S_k (W_kk = 0). Frozen sites get their field too.
    """
    return coupling_fields(H.W, H.M, H.h, np.asarray(S, dtype=np.float64))


def coupling_factors(M: Any, n_comp: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) with ``M = A B^T``: Identity -> (J 1, 1), Dense -> (M, 1), LowRank -> (A, B)."""
    if isinstance(M, Identity):
        return M.J * np.eye(n_comp), np.eye(n_comp)
    if isinstance(M, Dense):
        return M.M, np.eye(n_comp)
    return M.A, M.B


def coupling_kernel_arrays(M: Any) -> tuple[int, float, np.ndarray, np.ndarray, np.ndarray]:
    """What a kernel needs of M: ``(code, J, Mmat, A, B)`` with code 0 (Identity: J), 1 (Dense:
    Mmat (d, d)) or 2 (LowRank: A, B (d, r)); unused arrays are (1, 1) zeros."""
    one = np.zeros((1, 1))
    if isinstance(M, Identity):
        return 0, float(M.J), one, one, one
    if isinstance(M, Dense):
        return 1, 0.0, np.ascontiguousarray(M.M), one, one
    return 2, 0.0, one, M.A, M.B


def coupling_norm(M: Any) -> float:
    """Spectral norm ``||M||_2`` without densifying a low-rank M (QR of the factors)."""
    if isinstance(M, Identity):
        return abs(float(M.J))
    if isinstance(M, Dense):
        return float(np.linalg.norm(M.M, 2))
    Ra = np.linalg.qr(M.A, mode="r")
    Rb = np.linalg.qr(M.B, mode="r")
    return float(np.linalg.norm(Ra @ Rb.T, 2))


# ============================================================================ bases
def span_basis(X: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n, k) of the column span of X (n, m); singular values below
    ``s_max * max(n, m) * eps`` count as zero. (n, 0) for a zero or empty X."""
    if X.size == 0:
        return np.zeros((X.shape[0], 0))
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return np.zeros((X.shape[0], 0))
    keep = s > s[0] * max(X.shape) * np.finfo(float).eps
    return U[:, keep]


def complete_basis(U: np.ndarray, k: int) -> np.ndarray:
    """Extend the orthonormal columns of U (n, d) to k <= n columns with standard directions
    (Gram-Schmidt; a direction whose remainder has norm <= 1e-6 is skipped)."""
    n = U.shape[0]
    cols = [U[:, i] for i in range(U.shape[1])]
    for e in np.eye(n):
        if len(cols) >= k:
            break
        v = e - sum((c @ e) * c for c in cols) if cols else e.copy()
        nv = np.linalg.norm(v)
        if nv > 1e-6:
            cols.append(v / nv)
    return np.stack(cols, axis=1)


# ============================================================================ the reduction
@dataclass(frozen=True)
class Reduction:
    """H written in its working space of dimension d (see the module docstring).

    basis (n_comp, d) orthonormal, or None when nothing is reduced (d = n_comp);
    M the coupling on the working space (H.M itself, or ``LowRank(basis^T A, basis^T B)``);
    h (n_sites, d) fields; V (K, d) the allowed unit vectors of discrete spins ((0, d) for
    O(n) spins); S_frozen (n_sites, d) the frozen spins (zeros on free sites).
    """

    basis: np.ndarray | None
    M: Any
    h: np.ndarray
    V: np.ndarray
    S_frozen: np.ndarray

    @property
    def d(self) -> int:
        """Working dimension."""
        return int(self.h.shape[1])

    def fields(self, W: Any, S: np.ndarray) -> np.ndarray:
        """Local fields (n_sites, d) of the working-space state S (n_sites, d); exact, since the
        fields only see the projections of the spins on the working space."""
        return coupling_fields(W, self.M, self.h, S)

    def lift(self, S: np.ndarray) -> np.ndarray:
        """Working-space vectors (..., d) -> R^n (..., n_comp)."""
        return np.array(S, dtype=np.float64) if self.basis is None else S @ self.basis.T


def working_space(H: Hamiltonian, enabled: bool = True) -> Reduction:
    """The working space of H: ``span(A, B, h_1..h_N)`` for a low-rank coupling (when
    ``enabled``), at least 2-dimensional for O(n) spins (completed with standard directions),
    and never larger than n_comp (then no basis: R^n itself)."""
    n = H.n_comp
    M = H.M
    basis = None
    if isinstance(M, LowRank) and enabled:
        U = span_basis(np.concatenate([M.A, M.B, H.h.T], axis=1))
        d = max(U.shape[1], min(n, 2))          # O(n) spins need >= 2 working dimensions
        if d < n:
            basis = complete_basis(U, d) if U.shape[1] < d else U
    if basis is None:
        Mw, h = M, H.h
        V = np.zeros((0, n)) if isinstance(H.spin, Heisenberg) else H.spin.vectors
    else:
        Mw = LowRank(np.ascontiguousarray(basis.T @ M.A), np.ascontiguousarray(basis.T @ M.B))
        h = H.h @ basis
        V = np.zeros((0, basis.shape[1])) if isinstance(H.spin, Heisenberg) else H.spin.vectors @ basis
    S_frozen = np.zeros((H.n_sites, h.shape[1]))
    if H.frozen.any():
        st = H.state if basis is None else H.state @ basis
        S_frozen[H.frozen] = st[H.frozen]
    return Reduction(basis=basis, M=Mw, h=np.ascontiguousarray(h), V=np.ascontiguousarray(V),
                     S_frozen=S_frozen)


def uniform_projection(rng: np.random.Generator, n_sites: int, n_comp: int, d: int) -> np.ndarray:
    """Projections (n_sites, d) on a d-dimensional subspace of independent uniform unit vectors
    of R^n: ``g / sqrt(|g|^2 + chi2_{n-d})``, g ~ N(0, 1_d) (exact in distribution; the draw
    order is g then the chi-square, so a seed reproduces the same starts)."""
    g = rng.standard_normal((n_sites, d))
    rest = rng.chisquare(n_comp - d, n_sites) if n_comp > d else np.zeros(n_sites)
    return g / np.sqrt(np.sum(g * g, axis=1) + rest)[:, None]
