"""Spin-space couplings ``M`` of ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i``.

Every coupling is an object that does its own algebra, so callers never switch on its type:

* :class:`Identity` ``M = J 1``; :class:`Dense` a general (n_comp, n_comp) matrix;
  :class:`LowRank` ``M = A B^T`` with A, B (n_comp, rank), never densified in hot paths;
  :class:`SiteLowRank` a position-dependent low-rank coupling, ``M_ij = A_i B_j^T`` for the pair
  (query i, key j) with per-site factors A, B (n_sites, n_comp, rank): a rotary (RoPE) head, where
  ``A_i = scale W_Q R_i^T`` and ``B_j = W_K R_j^T`` (R_p the rotation of position p), so that
  ``S_i^T A_i B_j^T S_j`` is the model's pre-softmax score of every pair at every offset.

Conventions (rows are spins): X has shape (..., n_comp), one spin per row.

* ``apply(X)``   maps each row x to ``(M x)^T = x M^T``;  ``W @ M.apply(S)`` is
  ``sum_j W_kj M S_j`` (site k as query).
* ``apply_T(X)`` maps each row x to ``(M^T x)^T = x M``; ``W.T @ M.apply_T(S)`` is
  ``sum_j W_jk M^T S_j`` (site k as key).
* ``bilinear(X, Y)[i, j] = x_i^T M y_j`` (the pair energy matrix when X = Y = S).
* ``factors()`` = (A, B) with ``M = A B^T`` (Identity: (J 1, 1); Dense: (M, 1)): the spin
  directions that couple lie in span(A, B), the basis of the exact reduction.

The graph-level methods ``local_fields(W, S)``, ``local_field(W, S, k)`` and
``pair_energy(W, S)`` are written here on top of ``apply``/``apply_T``; a coupling that depends
on the sites' positions (the offset i - j of a rotary head) overrides them, since it cannot be
written as one matrix between all pairs. The Numba kernels take :class:`CouplingArrays`
(``kernel_arrays()``).
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import namedtuple
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

__all__ = ["Coupling", "Identity", "Dense", "LowRank", "SiteLowRank", "CouplingArrays", "as_coupling",
           "check_finite", "real_array", "CODE_IDENTITY", "CODE_DENSE", "CODE_LOWRANK", "CODE_SITE_LOWRANK"]

CODE_IDENTITY, CODE_DENSE, CODE_LOWRANK, CODE_SITE_LOWRANK = 0, 1, 2, 3

CouplingArrays = namedtuple("CouplingArrays", "code J Mmat A B SA SB")
CouplingArrays.__doc__ = """What the Numba kernels take for M: ``code`` (0 Identity, 1 Dense, 2 LowRank,
3 SiteLowRank), ``J`` (float, Identity), ``Mmat`` (n_comp, n_comp) (Dense), ``A``, ``B``
(n_comp, rank) (LowRank), ``SA``, ``SB`` (n_sites, n_comp, rank) (SiteLowRank: ``M_ij = SA[i] SB[j]^T``);
unused arrays are (1, 1) or (1, 1, 1) zeros, every array float64 and C-contiguous."""

_DUMMY = np.zeros((1, 1))
_DUMMY.setflags(write=False)
_DUMMY3 = np.zeros((1, 1, 1))
_DUMMY3.setflags(write=False)


def real_array(x: Any, what: str) -> np.ndarray:
    """``x`` as a float64 array; ValueError naming ``what`` for complex values (never cast to their
    real part silently), strings or other non-numbers."""
    a = np.asarray(x)
    if np.iscomplexobj(a):
        raise ValueError(f"{what} is complex (dtype {a.dtype}); spinsim's Hamiltonians are real: pass real "
                         "numbers (take .real yourself if the imaginary part is meant to be dropped)")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold real numbers, got dtype {a.dtype} ({np.ravel(a)[:1].tolist()!r}...)")
    return np.array(a, dtype=np.float64)


def check_finite(x: np.ndarray, what: str) -> None:
    """Raise ValueError naming the first non-finite entry of x (its value and index)."""
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{what} has a non-finite entry {float(x[tuple(bad)])!r} at index {tuple(int(b) for b in bad)}")


class Coupling(ABC):
    """The spin-space coupling M (see module docstring for every convention)."""

    code: ClassVar[int]

    n_comp: int            # number of spin components n (M is n x n): a field or a property

    #: number of sites a position-dependent coupling is written for (None: the same M for every pair)
    n_sites: ClassVar[int | None] = None

    @abstractmethod
    def apply(self, X: np.ndarray) -> np.ndarray:
        """Rows x -> x M^T (= (M x)^T); X (..., n_comp) -> (..., n_comp)."""

    @abstractmethod
    def apply_T(self, X: np.ndarray) -> np.ndarray:
        """Rows x -> x M (= (M^T x)^T); X (..., n_comp) -> (..., n_comp)."""

    @abstractmethod
    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, B), each (n_comp, r), with ``M = A B^T``."""

    @abstractmethod
    def dense(self) -> np.ndarray:
        """M as an (n_comp, n_comp) array (analysis only, not hot loops)."""

    @abstractmethod
    def restrict(self, basis: np.ndarray) -> "Coupling":
        """``basis^T M basis``: the coupling between spins written in the orthonormal columns of
        ``basis`` (n_comp, d); exact for spins inside span(basis) (see :meth:`factors`)."""

    @abstractmethod
    def spectral_norm(self) -> float:
        """``||M||_2`` (largest singular value), without densifying a low-rank M."""

    @abstractmethod
    def kernel_arrays(self) -> CouplingArrays:
        """The arrays the Numba kernels take (:class:`CouplingArrays`)."""

    @abstractmethod
    def _hash_bytes(self) -> list[bytes]:
        """The bytes that identify M in :meth:`hash_update` (stable across versions)."""

    # ------------------------------------------------------------------ derived, overridable
    def bilinear(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``G[i, j] = x_i^T M y_j`` for X (N, n_comp), Y (P, n_comp): (N, P)."""
        return X @ self.apply(Y).T

    def pair_energy_matrix(self, S: np.ndarray) -> np.ndarray:
        """``G[i, j] = S_i^T M S_j`` for one configuration S (n_sites, n_comp)."""
        return self.bilinear(S, S)

    def pair_energy(self, W: Any, S: np.ndarray) -> float:
        """``sum_{i, j} W_ij S_i^T M S_j`` (W (n_sites, n_sites) array or sparse, zero diagonal)."""
        G = self.pair_energy_matrix(S)
        return float(W.multiply(G).sum()) if sp.issparse(W) else float(np.sum(W * G))

    def local_fields(self, W: Any, S: np.ndarray) -> np.ndarray:
        """Coupling part of every local field, ``sum_j W_kj M S_j + sum_j W_jk M^T S_j``: (n_sites, n_comp)."""
        return np.asarray(W @ self.apply(S)) + np.asarray(W.T @ self.apply_T(S))

    def local_field(self, W: Any, S: np.ndarray, k: int) -> np.ndarray:
        """Coupling part of site k's local field (n_comp,), reading only row and column k of W."""
        row = W.getrow(k).toarray().ravel() if sp.issparse(W) else W[k]
        col = W.getcol(k).toarray().ravel() if sp.issparse(W) else W[:, k]
        return self.apply(row @ S) + self.apply_T(col @ S)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a coupling owns read-only arrays; numpy restores pickled arrays writable
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            object.__setattr__(self, key, value)

    def hash_update(self, hsh: "hashlib._Hash") -> None:
        """Feed M's identifying bytes into a hashlib object (for ``Hamiltonian.describe``)."""
        for b in self._hash_bytes():
            hsh.update(b)


@dataclass(frozen=True)
class Identity(Coupling):
    """Isotropic coupling ``M = J * 1`` (n_comp x n_comp)."""

    n_comp: int
    J: float = 1.0
    code: ClassVar[int] = CODE_IDENTITY

    def __post_init__(self) -> None:
        if isinstance(self.n_comp, bool) or not isinstance(self.n_comp, (int, np.integer)) or self.n_comp < 1:
            raise ValueError(f"Identity coupling needs an integer n_comp >= 1, got {self.n_comp!r}")
        if isinstance(self.J, bool) or not isinstance(self.J, (int, float, np.integer, np.floating)):
            raise ValueError(f"coupling J must be a real number, got {self.J!r} ({type(self.J).__name__})")
        if not np.isfinite(self.J):
            raise ValueError(f"coupling J must be finite, got {self.J!r}")
        object.__setattr__(self, "n_comp", int(self.n_comp))
        object.__setattr__(self, "J", float(self.J))

    def apply(self, X: np.ndarray) -> np.ndarray:
        return self.J * X

    def apply_T(self, X: np.ndarray) -> np.ndarray:
        return self.J * X

    def bilinear(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return self.J * (X @ Y.T)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.J * np.eye(self.n_comp), np.eye(self.n_comp)

    def dense(self) -> np.ndarray:
        return self.J * np.eye(self.n_comp)

    def restrict(self, basis: np.ndarray) -> Coupling:
        return Identity(int(np.shape(basis)[1]), self.J)

    def spectral_norm(self) -> float:
        return abs(self.J)

    def kernel_arrays(self) -> CouplingArrays:
        return CouplingArrays(self.code, self.J, _DUMMY, _DUMMY, _DUMMY, _DUMMY3, _DUMMY3)

    def _hash_bytes(self) -> list[bytes]:
        return [np.float64(self.J).tobytes()]


@dataclass(frozen=True, eq=False)
class Dense(Coupling):
    """A general (not necessarily symmetric) n_comp x n_comp coupling matrix ``M``."""

    M: np.ndarray
    code: ClassVar[int] = CODE_DENSE

    def __post_init__(self) -> None:
        M = real_array(self.M, "coupling M")
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError(f"dense coupling M must be square (n_comp, n_comp), got shape {M.shape}")
        check_finite(M, "coupling M")
        M = np.ascontiguousarray(M)
        M.flags.writeable = False
        object.__setattr__(self, "M", M)

    @property
    def n_comp(self) -> int:
        return int(self.M.shape[0])

    def apply(self, X: np.ndarray) -> np.ndarray:
        return X @ self.M.T

    def apply_T(self, X: np.ndarray) -> np.ndarray:
        return X @ self.M

    def bilinear(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return X @ self.M @ Y.T

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.M, np.eye(self.n_comp)

    def dense(self) -> np.ndarray:
        return self.M

    def restrict(self, basis: np.ndarray) -> Coupling:
        return Dense(basis.T @ self.M @ basis)

    def spectral_norm(self) -> float:
        return float(np.linalg.norm(self.M, 2))

    def kernel_arrays(self) -> CouplingArrays:
        return CouplingArrays(self.code, 0.0, self.M, _DUMMY, _DUMMY, _DUMMY3, _DUMMY3)

    def _hash_bytes(self) -> list[bytes]:
        return [self.M.tobytes()]


@dataclass(frozen=True, eq=False)
class LowRank(Coupling):
    """Low-rank coupling ``M = A @ B.T`` with A, B of shape (n_comp, rank).

    For a head, ``A = W_Q * scale`` and ``B = W_K`` so that ``x_q M x_k^T`` is the attention
    score of query x_q on key x_k.
    """

    A: np.ndarray
    B: np.ndarray
    code: ClassVar[int] = CODE_LOWRANK

    def __post_init__(self) -> None:
        A = real_array(self.A, "coupling factor A")
        B = real_array(self.B, "coupling factor B")
        if A.ndim != 2 or A.shape != B.shape:
            raise ValueError(f"low-rank factors A, B must both be (n_comp, rank), got {A.shape} and {B.shape}")
        check_finite(A, "coupling factor A")
        check_finite(B, "coupling factor B")
        A, B = np.ascontiguousarray(A), np.ascontiguousarray(B)
        A.flags.writeable = False
        B.flags.writeable = False
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)

    @property
    def n_comp(self) -> int:
        return int(self.A.shape[0])

    @property
    def rank(self) -> int:
        return int(self.A.shape[1])

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X @ self.B) @ self.A.T

    def apply_T(self, X: np.ndarray) -> np.ndarray:
        return (X @ self.A) @ self.B.T

    def bilinear(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return (X @ self.A) @ (Y @ self.B).T

    def local_fields(self, W: Any, S: np.ndarray) -> np.ndarray:
        # project first, M S_j = A (B^T S_j): cost O(nnz(W) r + N n r), M never formed
        return np.asarray(W @ (S @ self.B)) @ self.A.T + np.asarray(W.T @ (S @ self.A)) @ self.B.T

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.A, self.B

    def dense(self) -> np.ndarray:
        return self.A @ self.B.T

    def restrict(self, basis: np.ndarray) -> Coupling:
        return LowRank(basis.T @ self.A, basis.T @ self.B)

    def spectral_norm(self) -> float:
        Ra = np.linalg.qr(self.A, mode="r")
        Rb = np.linalg.qr(self.B, mode="r")
        return float(np.linalg.norm(Ra @ Rb.T, 2))

    def kernel_arrays(self) -> CouplingArrays:
        return CouplingArrays(self.code, 0.0, _DUMMY, self.A, self.B, _DUMMY3, _DUMMY3)

    def _hash_bytes(self) -> list[bytes]:
        # tagged with the kind and the rank: untagged, A = (n, r) and B = (n, r) with 2 r = n give
        # the same bytes as a Dense n x n M (e.g. Dense([[1, 2], [3, 4]]) and
        # LowRank([[1], [2]], [[3], [4]]), whose M are different), so a sweep could resume a file
        # of other physics. Identity and Dense keep their 0.1 bytes (their files still resume).
        return [b"LowRank", np.int64(self.rank).tobytes(), self.A.tobytes(), self.B.tobytes()]


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
        check_finite(A, "coupling factor A")
        check_finite(B, "coupling factor B")
        A, B = np.ascontiguousarray(A), np.ascontiguousarray(B)
        A.flags.writeable = False
        B.flags.writeable = False
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)

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
        S = self._sites(S, "S")
        return np.einsum("inr,in->ir", self.A, S), np.einsum("inr,in->ir", self.B, S)

    def bilinear(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``G[i, j] = x_i^T A_i B_j^T y_j`` for X, Y (n_sites, n_comp): (n_sites, n_sites)."""
        Qx, _ = self.projections(self._sites(X, "X"))
        _, Py = self.projections(self._sites(Y, "Y"))
        return Qx @ Py.T

    def local_fields(self, W: Any, S: np.ndarray) -> np.ndarray:
        Q, P = self.projections(S)
        return (np.einsum("inr,ir->in", self.A, np.asarray(W @ P))
                + np.einsum("inr,ir->in", self.B, np.asarray(W.T @ Q)))

    def local_field(self, W: Any, S: np.ndarray, k: int) -> np.ndarray:
        Q, P = self.projections(S)
        row = W.getrow(k).toarray().ravel() if sp.issparse(W) else W[k]
        col = W.getcol(k).toarray().ravel() if sp.issparse(W) else W[:, k]
        return self.A[k] @ (row @ P) + self.B[k] @ (col @ Q)

    def restrict(self, basis: np.ndarray) -> Coupling:
        """``basis^T A_i``, ``basis^T B_i`` for one basis (n_comp, d) shared by every site, or a
        per-site basis (n_sites, n_comp, d) (site i's spin written in the columns of basis[i])."""
        U = np.asarray(basis, dtype=np.float64)
        if U.ndim == 2:
            return SiteLowRank(np.einsum("nd,inr->idr", U, self.A), np.einsum("nd,inr->idr", U, self.B))
        if U.ndim == 3 and U.shape[:2] == (self.n_sites, self.n_comp):
            return SiteLowRank(np.einsum("ind,inr->idr", U, self.A), np.einsum("ind,inr->idr", U, self.B))
        raise ValueError(f"basis must be (n_comp, d) or (n_sites, n_comp, d) with n_sites={self.n_sites}, "
                         f"n_comp={self.n_comp}; got shape {U.shape}")

    def spectral_norm(self) -> float:
        """An upper bound of ``max_{i, j} ||A_i B_j^T||_2``: ``max_i ||A_i||_2 max_j ||B_j||_2`` (the
        largest pair coupling cannot exceed it; used for energy scales and convergence bounds)."""
        na = max(float(np.linalg.norm(a, 2)) for a in self.A)
        nb = max(float(np.linalg.norm(b, 2)) for b in self.B)
        return na * nb

    def kernel_arrays(self) -> CouplingArrays:
        return CouplingArrays(self.code, 0.0, _DUMMY, _DUMMY, _DUMMY, self.A, self.B)

    def _hash_bytes(self) -> list[bytes]:
        return [b"SiteLowRank", np.asarray(self.A.shape, np.int64).tobytes(), self.A.tobytes(), self.B.tobytes()]


def as_coupling(M: Any, n_comp: int) -> Coupling:
    """Normalise a coupling specification: a :class:`Coupling` (returned as is), a float J
    (``Identity(n_comp, J)``) or an (n, n) array (``Dense``). Raises ValueError otherwise."""
    if isinstance(M, Coupling):
        return M
    if isinstance(M, (int, float, np.integer, np.floating)) and not isinstance(M, bool):
        return Identity(int(n_comp), float(M))
    if isinstance(M, (np.ndarray, list, tuple)):
        return Dense(real_array(M, "coupling M"))
    raise ValueError(f"unknown coupling {type(M).__name__}; allowed: float J, (n, n) array, "
                     "Identity, Dense, LowRank, SiteLowRank")
