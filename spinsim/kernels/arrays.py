"""The grouped arrays the kernels take (namedtuples: Numba passes them to CPU and CUDA kernels).

Shapes: N sites, n spin components, r coupling rank, R replicas, K discrete states.

* ``Graph(ptr, idx, w_out, w_in)``: neighbour lists (:meth:`Hamiltonian.neighbours`); for site k
  the entries ``e in ptr[k]:ptr[k+1]`` give ``j = idx[e]``, ``w_out[e] = W_kj``, ``w_in[e] = W_jk``.
* ``Coupling(code, J, M, A, B, AT, BT)``: ``M = J 1`` (code ``IDENTITY``), dense ``M`` (n, n)
  (``DENSE``) or ``M = A B^T`` with A, B (n, r) and their transposes AT, BT (r, n) (``LOWRANK``);
  unused arrays are (1, 1) placeholders.
* ``Sites(free, lengths, kind, V, U)``: free sites (n_free,) int64 in sweep order, spin lengths
  m (N,), spin kind (``KIND_CONTINUOUS`` / ``KIND_DISCRETE``), allowed unit vectors V (K, n)
  (a (1, n) placeholder for continuous spins), projection directions U (N, n).
* ``Chains(S, X, E, mvec, mu)``: spins S (R, N, n) with lengths, discrete indices X (R, N),
  energies E (R,), magnetisation per free site mvec (R, n), projection on U mu (R,).
* ``Work(a, b, ra, rb, phi, sig, new, logw)``: one replica's scratch vectors: neighbour sums
  a, b (n,), rank sums ra, rb (r,), field phi (n,), current and proposed unit spins sig, new (n,),
  discrete log-weights logw (K,).
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

IDENTITY, DENSE, LOWRANK = 0, 1, 2
KIND_CONTINUOUS, KIND_DISCRETE = 0, 1

Graph = namedtuple("Graph", "ptr idx w_out w_in")
Coupling = namedtuple("Coupling", "code J M A B AT BT")
Sites = namedtuple("Sites", "free lengths kind V U")
Chains = namedtuple("Chains", "S X E mvec mu")
Work = namedtuple("Work", "a b ra rb phi sig new logw")


def _c(x: Any, dtype=np.float64) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=dtype)


def coupling(code: int, J: float, M: np.ndarray, A: np.ndarray, B: np.ndarray) -> Coupling:
    """Coupling tuple with contiguous float64 arrays and the transposed factors."""
    return Coupling(np.int64(code), np.float64(J), _c(M), _c(A), _c(B), _c(np.asarray(A).T),
                    _c(np.asarray(B).T))


def from_prepared(k: dict) -> tuple[Graph, Coupling, Sites]:
    """The tuples of a ``solvers.mc.prepare`` dictionary."""
    g = Graph(_c(k["ptr"], np.int64), _c(k["idx"], np.int64), _c(k["w_out"]), _c(k["w_in"]))
    cp = coupling(k["code"], k["J"], k["Mmat"], k["A"], k["B"])
    st = Sites(_c(k["free"], np.int64), _c(k["lengths"]), np.int64(k["kind"]), _c(k["V"]), _c(k["U"]))
    return g, cp, st


def work(R: int, n: int, r: int, K: int) -> Work:
    """Scratch for R replicas (each field (R, ...); ``Work(*(f[i] for f in w))`` is replica i)."""
    e = np.empty
    return Work(e((R, n)), e((R, n)), e((R, r)), e((R, r)), e((R, n)), e((R, n)), e((R, n)),
                e((R, max(K, 1))))
