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


def own_factors(coupling: "Coupling", A: np.ndarray, B: np.ndarray) -> None:
    """Check the factors finite (ValueError naming the first bad entry) and store read-only
    C-contiguous copies as ``coupling.A``, ``coupling.B`` (frozen dataclasses: LowRank, SiteLowRank)."""
    for name, x in (("A", A), ("B", B)):
        check_finite(x, f"coupling factor {name}")
        x = np.ascontiguousarray(x)
        x.flags.writeable = False
        object.__setattr__(coupling, name, x)


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
        own_factors(self, A, B)

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


from .site_coupling import SiteLowRank  # noqa: E402  (defined apart: the position-dependent coupling)
