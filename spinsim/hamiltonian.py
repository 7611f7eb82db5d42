"""The one canonical spin Hamiltonian of spinsim (SPEC section 1).

    H(S) = - sum_{i != j} W_ij S_i^T M S_j  -  sum_i h_i . S_i ,      k_B = 1.

* ``S_i = m_i sigma_i`` is the spin of site i: ``sigma_i`` lies in the spin set of the kind
  (``ising``: +-1, n = 1; ``heisenberg``: unit vectors in R^n; ``discrete``: one of K given
  vectors) and ``m_i > 0`` is an optional site length (default 1).
* ``W`` (n_sites x n_sites, zero diagonal) is the graph. ``W[i, j]`` is the weight of the
  ordered pair (i, j): for a head, i is the *query* and j the *key*. A bond counted once is
  stored once (a lattice stores each bond in one orientation only).
* ``M`` (n_comp x n_comp) is the spin-space coupling (:mod:`spinsim.coupling`): :class:`Identity`
  (``J * 1``), :class:`Dense` or :class:`LowRank` (``M = A @ B.T``, never densified in hot
  loops); H asks it for its algebra (``apply``, ``local_fields``, ``pair_energy`` ...).
* ``h`` (n_sites x n_comp) are the fields, in energy units.

The local field on site k is ``phi_k = sum_j W_kj M S_j + sum_i W_ik M^T S_i + h_k`` and a
single-site change costs exactly ``dE = -(S_k' - S_k) . phi_k``: every solver uses this.

Frozen ("pinned") sites keep the value given in ``state`` and never move; they still act on the
free sites through W and M. That is how a probe site over candidate tokens sits in the field of a
quenched bath.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from .coupling import Coupling, Dense, Identity, LowRank, as_coupling
from .coupling import check_finite as _check_finite
from .coupling import real_array as _real
from .declared import (FrozenHamiltonianError, FrozenMap, check_axes, check_provenance,
                       freeze_loaded, readonly, readonly_sparse)
from .spins import SPIN_KINDS, Discrete, Heisenberg, Ising, SpinKind, spin_kind

__all__ = [
    "Ising", "Heisenberg", "Discrete", "SpinKind", "spin_kind",
    "Identity", "Dense", "LowRank", "Coupling",
    "Hamiltonian", "FrozenMap", "FrozenHamiltonianError", "replace",
]

_UNIT_TOL = 1e-6


class Hamiltonian:
    """``H(S) = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i`` (k_B = 1; see module docstring).

    Parameters
    ----------
    W : (n_sites, n_sites) array or scipy.sparse matrix. ``W[i, j]``: query i, key j. Zero diagonal.
    M : coupling: :class:`Identity`, :class:`Dense`, :class:`LowRank`, a float J (isotropic) or an
        (n_comp, n_comp) array. Default: ``Identity(n_comp, 1.0)``.
    h : fields, (n_comp,) applied to every site, or (n_sites, n_comp). Energy units. Default 0.
    spin : spin kind (``'ising'``, ``'heisenberg'``, ``'xy'`` or an instance).
    n_comp : number of spin components (needed for ``'heisenberg'`` unless M fixes it).
    lengths : (n_sites,) spin lengths m_i > 0 (S_i = m_i sigma_i). Default 1.
    frozen : (n_sites,) bool; frozen sites keep ``state`` and never move.
    state : (n_sites, n_comp) initial (and, for frozen sites, fixed) spins S_i (lengths included).
    name : a label (used in HDF5 metadata).
    axes : named per-site directions, ``{name: (n_sites, n_comp) array}`` (e.g. ``"prompt"``: a
        head's x_i/|x_i|, the field axis of its phase diagram); finite, stored as read-only copies,
        read by :func:`spinsim.directions.resolve_direction` (``direction=name``). Names
        ``'field'`` and ``'top_eigenvector'`` are reserved for the built-in directions.
    provenance : where H comes from, ``{key: str | bool | int | float}`` (e.g. ``model_id``,
        ``head``, ``weights_sha256``, ``input_mode``); part of :meth:`describe`, so sweep and solve
        files name the model. Keys may not shadow describe()'s own keys.

    A Hamiltonian is frozen: assigning or deleting an attribute after construction raises
    :class:`FrozenHamiltonianError`; :func:`replace` makes a changed copy (keeping ``axes``,
    ``provenance`` and ``name`` unless replaced). ``axes`` and ``provenance`` are read-only
    mappings. Raises ValueError on any invalid argument (the message names the value).
    """

    def __init__(self, W: Any, M: Any = None, h: Any = None, spin: Any = "heisenberg",
                 n_comp: int | None = None, lengths: Any = None, frozen: Any = None,
                 state: Any = None, name: str = "", axes: Mapping[str, Any] | None = None,
                 provenance: Mapping[str, Any] | None = None) -> None:
        # attributes are set through object.__setattr__ until the end (see __setattr__)
        # ---- graph
        if sp.issparse(W):
            _real(np.zeros(0, dtype=W.dtype), "graph W")
            Wc = sp.csr_matrix(W, dtype=np.float64, copy=True)   # owned: eliminate_zeros works in place
            if Wc.shape[0] != Wc.shape[1]:
                raise ValueError(f"W must be square (n_sites, n_sites), got shape {Wc.shape}")
            _check_finite(Wc.data, "graph W")
            if np.any(Wc.diagonal() != 0):
                raise ValueError("W must have a zero diagonal (no self-coupling); found W[i, i] != 0")
            Wc.eliminate_zeros()
            self.W = readonly_sparse(Wc)
        else:
            Wd = _real(W, "graph W")
            if Wd.ndim != 2 or Wd.shape[0] != Wd.shape[1]:
                raise ValueError(f"W must be square (n_sites, n_sites), got shape {Wd.shape}")
            _check_finite(Wd, "graph W")
            if np.any(np.diag(Wd) != 0):
                i = int(np.flatnonzero(np.diag(Wd))[0])
                raise ValueError(f"W must have a zero diagonal (no self-coupling); W[{i}, {i}] = {float(Wd[i, i])!r}")
            self.W = readonly(Wd)
        self.n_sites = int(self.W.shape[0])
        if self.n_sites < 1:
            raise ValueError("W must have at least one site")

        # ---- spin kind and coupling
        if isinstance(spin, (Ising, Heisenberg, Discrete)):
            n_from_spin = spin.n_comp
        elif isinstance(spin, str) and spin.lower() in ("ising", "xy"):
            n_from_spin = spin_kind(spin).n_comp
        else:
            n_from_spin = None
        n_default = n_comp or n_from_spin or (1 if spin == "ising" else 3)   # for a float J
        self.M: Coupling = as_coupling(1.0 if M is None else M, int(n_default))
        n = self.M.n_comp
        if n_comp is not None and int(n_comp) != n:
            raise ValueError(f"n_comp={n_comp} disagrees with the coupling's n_comp={n}")
        if isinstance(spin, str) and spin.lower() == "heisenberg":
            spin = Heisenberg(n)
        self.spin: SpinKind = spin_kind(spin, n)
        if self.spin.n_comp != n:
            raise ValueError(f"spin kind {self.spin.name!r} has n_comp={self.spin.n_comp} but the coupling has n_comp={n}")
        self.n_comp = n
        if self.M.n_sites is not None and self.M.n_sites != self.n_sites:
            raise ValueError(f"the coupling {type(self.M).__name__} is written for {self.M.n_sites} sites but W has "
                             f"{self.n_sites}")

        # ---- fields
        if h is None:
            hh = np.zeros((self.n_sites, n))
        else:
            hh = _real(h, "field h")
            if hh.ndim == 0:
                if n != 1:
                    raise ValueError(f"a scalar field needs n_comp = 1; give h as ({n},) or ({self.n_sites}, {n})")
                hh = np.full((self.n_sites, 1), float(hh))
            elif hh.shape == (n,):
                hh = np.broadcast_to(hh, (self.n_sites, n)).copy()
            elif hh.shape == (self.n_sites,) and n == 1:
                hh = hh.reshape(self.n_sites, 1).copy()
            elif hh.shape != (self.n_sites, n):
                raise ValueError(f"field h must have shape ({n},) or ({self.n_sites}, {n}), got {hh.shape}")
        _check_finite(hh, "field h")
        self.h = readonly(hh)

        # ---- lengths
        if lengths is None:
            self.lengths = readonly(np.ones(self.n_sites))
        else:
            m = _real(lengths, "lengths").reshape(-1)
            if m.shape != (self.n_sites,):
                raise ValueError(f"lengths must have shape ({self.n_sites},), got {np.shape(lengths)}")
            _check_finite(m, "lengths")
            if np.any(m <= 0):
                i = int(np.flatnonzero(m <= 0)[0])
                raise ValueError(f"spin lengths must be > 0; lengths[{i}] = {float(m[i])!r}")
            self.lengths = readonly(m)

        # ---- frozen mask
        if frozen is None:
            self.frozen = readonly(np.zeros(self.n_sites, dtype=bool))
        else:
            f = np.asarray(frozen, dtype=bool).reshape(-1)
            if f.shape != (self.n_sites,):
                raise ValueError(f"frozen must have shape ({self.n_sites},), got {np.shape(frozen)}")
            self.frozen = readonly(f)
        if self.frozen.all():
            raise ValueError("every site is frozen: nothing to solve")

        # ---- state
        if state is None:
            if self.frozen.any():
                raise ValueError("frozen sites need their fixed values: pass state=(n_sites, n_comp)")
            self.state = None
        else:
            s = _real(state, "state")
            if s.shape != (self.n_sites, n):
                raise ValueError(f"state must have shape ({self.n_sites}, {n}), got {s.shape}")
            _check_finite(s, "state")
            self.check_state(s, only_free=True)
            self.state = readonly(s)
        self.name = str(name)
        self.axes: FrozenMap = check_axes(axes, self.n_sites, n)
        self.provenance: FrozenMap = check_provenance(provenance)
        self._nbr = None
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_sealed", False):
            raise FrozenHamiltonianError(f"Hamiltonian is frozen: cannot set {name!r}; make a changed copy with "
                                         f"spinsim.replace(H, {name}=...)")
        object.__setattr__(self, name, value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickling (e.g. a sweep row shipped to a Dask worker): numpy restores arrays writable,
        # so they are made read-only again before the object is sealed
        for key, value in state.items():
            object.__setattr__(self, key, freeze_loaded(value))

    def __delattr__(self, name: str) -> None:
        raise FrozenHamiltonianError(f"Hamiltonian is frozen: cannot delete {name!r}")

    # ----------------------------------------------------------------- derived structure
    @property
    def n_free(self) -> int:
        """Number of free (non-frozen) sites."""
        return int(self.n_sites - self.frozen.sum())

    @property
    def W_dense(self) -> np.ndarray:
        return self.W.toarray() if sp.issparse(self.W) else self.W

    @property
    def M_dense(self) -> np.ndarray:
        """The (n_comp, n_comp) coupling matrix (densified: for analysis, not hot loops)."""
        return self.M.dense()

    @property
    def M_sym(self) -> np.ndarray:
        """``M_s = (M + M^T) / 2``: ferro order follows its top eigenvector."""
        Md = self.M_dense
        return 0.5 * (Md + Md.T)

    def neighbours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """CSR neighbour lists over the union of both orientations.

        Returns ``(ptr, idx, w_out, w_in)``: for site k, entries ``ptr[k]:ptr[k+1]`` list the
        sites j with ``W_kj != 0`` or ``W_jk != 0``, with ``w_out = W_kj`` (k as query) and
        ``w_in = W_jk`` (k as key). Then ``phi_k = M sum w_out S_j + M^T sum w_in S_j + h_k``.
        """
        if self._nbr is None:
            Wc = sp.csr_matrix(self.W) if not sp.issparse(self.W) else self.W
            Wt = Wc.T.tocsr()
            U = (abs(Wc) + abs(Wt)).tocsr()
            U.sort_indices()
            ptr = U.indptr.astype(np.int64)
            idx = U.indices.astype(np.int64)
            rows = np.repeat(np.arange(self.n_sites), np.diff(ptr))
            w_out = np.asarray(Wc[rows, idx]).reshape(-1) if idx.size else np.zeros(0)
            w_in = np.asarray(Wt[rows, idx]).reshape(-1) if idx.size else np.zeros(0)
            nbr = tuple(readonly(a) for a in (ptr, idx, w_out.astype(np.float64), w_in.astype(np.float64)))
            object.__setattr__(self, "_nbr", nbr)
        return self._nbr

    # ----------------------------------------------------------------- physics (numpy)
    def check_state(self, S: np.ndarray, only_free: bool = False) -> None:
        """Raise if S is not a valid configuration (real and finite, shape, norms / allowed vectors)."""
        S = _real(S, "spin configuration")
        if S.shape[-2:] != (self.n_sites, self.n_comp):
            raise ValueError(f"spin configuration must have shape (..., {self.n_sites}, {self.n_comp}), got {S.shape}")
        mask = ~self.frozen if only_free else np.ones(self.n_sites, bool)
        _check_finite(S[..., mask, :], "spin configuration")
        sigma = S / self.lengths[:, None]
        if isinstance(self.spin, Heisenberg):
            nrm = np.linalg.norm(sigma, axis=-1)[..., mask]
            bad = np.abs(nrm - 1.0) > _UNIT_TOL
            if np.any(bad):
                raise ValueError(f"heisenberg spins must be unit vectors (times their length); found |sigma| = "
                                 f"{nrm[bad].flat[0]:.6g}")
        else:
            V = self.spin.vectors
            d = np.min(np.linalg.norm(sigma[..., mask, None, :] - V[None, :, :], axis=-1), axis=-1)
            if np.any(d > _UNIT_TOL):
                raise ValueError(f"{self.spin.name} spins must be one of the allowed vectors; a site is "
                                 f"{d.max():.3g} away from the nearest")

    def pair_energy_matrix(self, S: np.ndarray) -> np.ndarray:
        """``G[i, j] = S_i^T M S_j`` for one configuration S (n_sites, n_comp)."""
        return self.M.pair_energy_matrix(S)

    def energy(self, S: np.ndarray) -> np.ndarray | float:
        """Total energy of configuration(s) S, shape (..., n_sites, n_comp) -> (...)."""
        S = np.asarray(S, dtype=np.float64)
        if S.ndim > 2:
            return np.array([self.energy(s) for s in S.reshape(-1, self.n_sites, self.n_comp)]).reshape(S.shape[:-2])
        return float(-self.M.pair_energy(self.W, S) - np.sum(self.h * S))

    def local_field(self, S: np.ndarray, k: int) -> np.ndarray:
        """``phi_k = sum_j W_kj M S_j + sum_i W_ik M^T S_i + h_k`` (n_comp,), energy units."""
        return self.M.local_field(self.W, S, k) + self.h[k]

    def local_fields(self, S: np.ndarray) -> np.ndarray:
        """Every local field at once, ``Phi = W S M^T + W^T S M + h`` (n_sites, n_comp); S with
        lengths. Never densifies a low-rank M (cost O(nnz(W) r + N n r))."""
        return self.M.local_fields(self.W, np.asarray(S, dtype=np.float64)) + self.h

    def delta_energy(self, S: np.ndarray, k: int, S_new_k: np.ndarray) -> float:
        """Exact energy change of setting S_k -> S_new_k: ``dE = -(S_k' - S_k) . phi_k``."""
        return float(-(np.asarray(S_new_k) - S[k]) @ self.local_field(S, k))

    def random_state(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random configuration (frozen sites from ``state``), lengths included."""
        N, n = self.n_sites, self.n_comp
        if isinstance(self.spin, Heisenberg):
            x = rng.standard_normal((N, n))
            sigma = x / np.linalg.norm(x, axis=1, keepdims=True)
        else:
            V = self.spin.vectors
            sigma = V[rng.integers(0, V.shape[0], N)]
        S = sigma * self.lengths[:, None]
        if self.frozen.any():
            S[self.frozen] = self.state[self.frozen]
        return S

    # ----------------------------------------------------------------- metadata
    def describe(self) -> dict[str, Any]:
        """Flat, HDF5-attribute friendly description: name, spin kind, sizes, coupling, the names of
        the declared ``axes`` (comma-separated), every ``provenance`` entry (e.g. ``model_id``,
        ``head``) and ``hamiltonian_sha256``, a hash of the physics only (W, M, h, lengths, frozen,
        spin vectors, state; not name, axes or provenance), used to refuse mismatched resumes."""
        import hashlib

        hsh = hashlib.sha256()
        for arr in (self.W_dense, self.h, self.lengths, self.frozen.astype(np.uint8)):
            hsh.update(np.ascontiguousarray(arr).tobytes())
        self.M.hash_update(hsh)
        if isinstance(self.spin, Discrete):
            hsh.update(self.spin.vectors.tobytes())
        if self.state is not None:
            hsh.update(self.state.tobytes())
        return {
            "hamiltonian_name": self.name,
            "spin_kind": self.spin.name,
            "n_sites": self.n_sites,
            "n_comp": self.n_comp,
            "n_free": self.n_free,
            "coupling": type(self.M).__name__,
            "axes": ",".join(self.axes),
            "hamiltonian_sha256": hsh.hexdigest(),
            "sign_convention": "H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i",
            **self.provenance,
        }

    def __repr__(self) -> str:
        return (f"Hamiltonian(name={self.name!r}, spin={self.spin.name}, n_sites={self.n_sites}, "
                f"n_comp={self.n_comp}, coupling={type(self.M).__name__}, n_free={self.n_free})")


_CONSTRUCTOR_ARGS = ("W", "M", "h", "spin", "n_comp", "lengths", "frozen", "state", "name", "axes", "provenance")


def replace(H: Hamiltonian, **changes: Any) -> Hamiltonian:
    """A copy of H with some constructor arguments replaced (``h``, ``M``, ``frozen`` ...).

    Everything not replaced is kept, the declared ``axes``, ``provenance`` and ``name``
    included. Raises ValueError naming an unknown argument (allowed: the constructor's).
    """
    bad = sorted(set(changes) - set(_CONSTRUCTOR_ARGS))
    if bad:
        raise ValueError(f"replace(): unknown argument {bad[0]!r}; allowed: {', '.join(_CONSTRUCTOR_ARGS)}")
    kw = dict(W=H.W, M=H.M, h=H.h, spin=H.spin, lengths=H.lengths, frozen=H.frozen,
              state=H.state, name=H.name, axes=H.axes, provenance=H.provenance)
    kw.update(changes)
    return Hamiltonian(**kw)
