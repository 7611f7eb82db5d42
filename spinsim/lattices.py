"""Textbook systems as :class:`~spinsim.hamiltonian.Hamiltonian` objects.

Each bond is stored once (``W[i, j] = J`` for one orientation), so that
``H = -J sum_<ij> S_i . S_j`` with every nearest-neighbour pair counted once.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from .coupling import Identity, as_coupling
from .hamiltonian import Hamiltonian
from .limits import check_memory
from .spins import spin_kind

__all__ = ["lattice", "chain", "square", "cubic", "complete_graph", "sherrington_kirkpatrick",
           "causal", "SYSTEMS", "textbook"]


def _site_index(coord: Sequence[int], shape: Sequence[int]) -> int:
    return int(np.ravel_multi_index(tuple(coord), tuple(shape)))


def _is_int(x: Any) -> bool:
    """An integer (Python or numpy), not a bool and not a float such as 2.7 (or 2.0)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_J(J: Any) -> None:
    if isinstance(J, bool) or not isinstance(J, (int, float, np.integer, np.floating)) or not np.isfinite(J):
        raise ValueError(f"coupling J must be a finite real number, got {J!r}")


def _check_size(name: str, N: Any, minimum: int) -> int:
    if not _is_int(N) or N < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {N!r}")
    return int(N)


#: peak bytes per bond and per site while a lattice is built (Python index lists, COO and CSR
#: arrays, the Hamiltonian's owned copy and its symmetric structure): an upper-side estimate
_BYTES_PER_BOND, _BYTES_PER_SITE = 200, 200
#: N x N float64 arrays alive at the peak of complete_graph / sherrington_kirkpatrick
_DENSE_COPIES_COMPLETE, _DENSE_COPIES_SK = 3, 4


def _check_lattice_memory(shape: tuple[int, ...]) -> None:
    """Refuse a lattice whose construction would not fit in memory (:mod:`spinsim.limits`)."""
    d = len(shape)
    n_sites = 1
    for s in shape:
        n_sites *= s                                     # Python ints: no overflow for (1e5, 1e5, 1e5)
    per_site = _BYTES_PER_BOND * d + _BYTES_PER_SITE

    def largest(avail: int) -> str:
        n_max = avail // per_site
        return f"about {n_max:.3g} sites (L <= {int(n_max ** (1.0 / d))} per side in {d} dimension{'s' * (d > 1)})"
    check_memory(f"lattice {shape} ({n_sites:.3g} sites)", float(n_sites) * per_site, largest)


def _check_dense_memory(what: str, N: int, copies: int) -> None:
    """Refuse an all-to-all system whose dense N x N couplings would not fit in memory."""
    per = 8 * copies
    check_memory(f"{what} with N = {N} sites (dense {N} x {N} couplings)", float(N) ** 2 * per,
                 lambda avail: f"N <= {int((avail / per) ** 0.5)}")


def lattice(kind: Any, shape: int | Sequence[int], J: float = 1.0, periodic: bool = True,
            h: Any = None, n_comp: int | None = None, name: str | None = None) -> Hamiltonian:
    """Hypercubic lattice (chain, square, cubic, ...) with nearest-neighbour coupling J.

    ``H = -J sum_<ij> S_i . S_j - sum_i h . S_i``; J > 0 is ferromagnetic. ``shape`` is an int
    (chain) or a tuple (L1, L2[, L3]); sites are numbered in C order. With ``periodic=True`` a
    dimension of length 2 gets one bond, not two (no double counting); length 1 gets none.
    """
    dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    if not dims or any(not _is_int(s) or s < 1 for s in dims):
        raise ValueError(f"lattice shape must be positive integers, got {shape!r}")
    shape = tuple(int(s) for s in dims)
    _check_J(J)
    _check_lattice_memory(shape)
    spin = spin_kind(kind, n_comp)
    N = int(np.prod(shape))
    rows, cols = [], []
    for coord in itertools.product(*[range(s) for s in shape]):
        i = _site_index(coord, shape)
        for d, L in enumerate(shape):
            c = list(coord)
            if coord[d] + 1 < L:
                c[d] += 1
            elif periodic and L > 2:
                c[d] = 0
            else:
                continue
            rows.append(i)
            cols.append(_site_index(c, shape))
    W = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(N, N))
    dims = {1: "chain", 2: "square", 3: "cubic"}.get(len(shape), f"{len(shape)}d")
    label = name or f"{spin.name}_{dims}_{'x'.join(map(str, shape))}{'_pbc' if periodic else '_obc'}"
    return Hamiltonian(W, M=Identity(spin.n_comp, float(J)), h=h, spin=spin, name=label)


def chain(kind: Any, L: int, **kw: Any) -> Hamiltonian:
    return lattice(kind, (L,), **kw)


def square(kind: Any, L: int, **kw: Any) -> Hamiltonian:
    return lattice(kind, (L, L), **kw)


def cubic(kind: Any, L: int, **kw: Any) -> Hamiltonian:
    return lattice(kind, (L, L, L), **kw)


def complete_graph(kind: Any, N: int, J: float = 1.0, M: Any = None, h: Any = None,
                   n_comp: int | None = None, normalize: bool = True) -> Hamiltonian:
    """All-to-all graph, each pair once: ``H = -(J/N) sum_{i<j} S_i^T M S_j`` (Curie-Weiss when
    ``normalize``: for isotropic M = 1 and unit O(n) spins the mean-field T_c is
    J (N - 1) / (N n), -> J / n for large N). ``n_comp`` defaults to M's size."""
    N = _check_size("complete graph: N (sites)", N, 2)
    _check_J(J)
    _check_dense_memory("complete graph", N, _DENSE_COPIES_COMPLETE)
    if n_comp is None and M is not None and not np.isscalar(M):     # a coupling or matrix fixes n
        n_comp = as_coupling(M, 0).n_comp
    spin = spin_kind(kind, n_comp)
    w = J / N if normalize else J
    W = np.triu(np.full((N, N), w), k=1)
    return Hamiltonian(W, M=M if M is not None else Identity(spin.n_comp, 1.0), h=h, spin=spin,
                       name=f"{spin.name}_complete_{N}")


def sherrington_kirkpatrick(N: int, seed: int = 0, J: float = 1.0, kind: Any = "ising",
                            h: Any = None) -> Hamiltonian:
    """SK spin glass: ``W_ij ~ Normal(0, J^2 / N)`` for i < j (each pair once), seeded."""
    N = _check_size("SK model: N (sites)", N, 2)
    _check_J(J)
    _check_dense_memory("SK model", N, _DENSE_COPIES_SK)
    rng = np.random.default_rng(seed)
    W = np.triu(rng.standard_normal((N, N)) * J / np.sqrt(N), k=1)
    spin = spin_kind(kind)
    return Hamiltonian(W, M=Identity(spin.n_comp, 1.0), h=h, spin=spin, name=f"sk_{N}_seed{seed}")


def causal(N: int, include_self: bool = False) -> np.ndarray:
    """The causal graph of a head: ``W[i, j] = 1`` for key j < i (query i). Self-attention (j = i)
    is a single-site term and is not part of W (it enters as a field; see models.heads)."""
    N = _check_size("causal graph: N (sites)", N, 1)
    del include_self
    return np.tril(np.ones((N, N)), k=-1)


SYSTEMS = ("ising1d", "ising2d", "ising3d", "xy2d", "heisenberg1d", "heisenberg2d", "heisenberg3d", "sk")


def textbook(system: str, L: int, J: float = 1.0, seed: int = 0) -> Hamiltonian:
    """The CLI's ``--system`` names: ising1d|ising2d|ising3d|xy2d|heisenberg{1,2,3}d|sk."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; allowed: {', '.join(SYSTEMS)}")
    if not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"--L must be an integer >= 2, got {L!r}")
    if system == "sk":
        return sherrington_kirkpatrick(L, seed=seed, J=J)
    kind = {"ising": "ising", "xy": "xy", "heisenberg": "heisenberg"}[system[:-2]]
    d = int(system[-2])
    return lattice(kind, (L,) * d, J=J)
