"""The grouped arrays the kernels take (namedtuples: Numba passes them to CPU and CUDA kernels).

Shapes: N sites, n spin components, r coupling rank, R replicas, K discrete states, F factor sets
(1 for a site-independent ``LowRank``, N for a position-dependent ``SiteLowRank``).

* ``Graph(ptr, idx, w_out, w_in)``: neighbour lists (:meth:`Hamiltonian.neighbours`); for site k
  the entries ``e in ptr[k]:ptr[k+1]`` give ``j = idx[e]``, ``w_out[e] = W_kj``, ``w_in[e] = W_jk``.
* ``Coupling(code, J, M, A, B, AT, BT)``: ``M = J 1`` (code ``IDENTITY``), dense ``M`` (n, n)
  (``DENSE``), or the low-rank factors (``LOWRANK``: ``M = A B^T``; ``SITE_LOWRANK``:
  ``M_ij = A_i B_j^T``) as A, B (F, n, r) and their transposes AT, BT (F, r, n); site k uses the
  factor set :func:`fac` (k, or 0 when F = 1). Unused arrays are (1, 1) / (1, 1, 1) placeholders.
* ``Sites(free, lengths, kind, V, U, n_hidden)``: free sites (n_free,) int64 in sweep order, spin
  lengths m (N,), spin kind (``KIND_CONTINUOUS`` / ``KIND_DISCRETE``), allowed unit vectors V
  (K, n) (a (1, n) placeholder for continuous spins), projection directions U (N, n), and the
  hidden components per site of a reduced state (int64; 0 for the full space: S (R, N, n) are
  then whole spins; > 0: S holds the visible parts, :mod:`spinsim.reduced_space`).
* ``Chains(S, X, E, mvec, mu, P, Q)``: spins S (R, N, n) with lengths, discrete indices X (R, N),
  energies E (R,), magnetisation per free site mvec (R, n), projection on U mu (R,), and for the
  low-rank codes the per-site projections ``P_j = B_j^T S_j``, ``Q_j = A_j^T S_j`` (R, N, r),
  kept equal to their definition after every accepted move ((R, 1, 1) placeholders otherwise).
* ``Walkers(walker, direction, last_start, n_trips, trip_sum, n_up, n_down)`` (R,) int64 each:
  the replica-exchange bookkeeping. ``walker[r]`` is the walker (configuration, labelled by the
  slot it started in) now at slot r, swapped with the configurations; per walker w:
  ``direction[w]`` +1 after visiting the lowest temperature of its chain, -1 after the highest,
  0 before either, ``last_start[w]`` the sweep it last left the lowest temperature having come
  from the highest (-1: never), ``n_trips[w]``, ``trip_sum[w]`` its completed round trips
  (lowest -> highest -> lowest) and their summed durations in sweeps; per slot ``n_up[r]``,
  ``n_down[r]``: sweeps the slot held a walker of direction +1 / -1 (Katzgraber et al. 2006).
* ``Work(a, b, ra, rb, phi, sig, new, logw)``: one replica's scratch vectors: neighbour sums
  a, b (n,), rank sums ra, rb (r,), field phi (n,), current and proposed unit spins sig, new (n,),
  discrete log-weights logw (K,).
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

IDENTITY, DENSE, LOWRANK, SITE_LOWRANK = 0, 1, 2, 3
KIND_CONTINUOUS, KIND_DISCRETE = 0, 1

Graph = namedtuple("Graph", "ptr idx w_out w_in")
Coupling = namedtuple("Coupling", "code J M A B AT BT")
Sites = namedtuple("Sites", "free lengths kind V U n_hidden")
Chains = namedtuple("Chains", "S X E mvec mu P Q")
Work = namedtuple("Work", "a b ra rb phi sig new logw")
Walkers = namedtuple("Walkers", "walker direction last_start n_trips trip_sum n_up n_down")


def _c(x: Any, dtype=np.float64) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=dtype)


def factor_sets(code: int, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The factors as (F, n, r) stacks: LowRank (n, r) -> (1, n, r); SiteLowRank (N, n, r) kept;
    placeholders of the other codes -> (1, 1, 1)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if code == SITE_LOWRANK:
        return A, B
    if code == LOWRANK:
        return A[None], B[None]
    return np.zeros((1, 1, 1)), np.zeros((1, 1, 1))


def coupling(code: int, J: float, M: np.ndarray, A: np.ndarray, B: np.ndarray) -> Coupling:
    """Coupling tuple with contiguous float64 arrays: A, B as given by :func:`factor_sets` (2-D
    for LowRank, 3-D for SiteLowRank) stacked to (F, n, r), and their transposes (F, r, n)."""
    A3, B3 = factor_sets(code, A, B)
    return Coupling(np.int64(code), np.float64(J), _c(M), _c(A3), _c(B3),
                    _c(A3.transpose(0, 2, 1)), _c(B3.transpose(0, 2, 1)))


def rank(cp: Coupling) -> int:
    """Width of the per-site projections P, Q: r for the low-rank codes, else 1."""
    return int(cp.A.shape[2]) if int(cp.code) >= LOWRANK else 1


def chains(S: np.ndarray, X: np.ndarray, cp: Coupling) -> Chains:
    """Fresh Chains for the spins S (R, N, n) (copied) and indices X (R, N): E, mvec, mu zero and
    P, Q (R, N, r) (low rank) to be filled by the first resynchronisation."""
    R, N, n = S.shape
    lr = int(cp.code) >= LOWRANK
    rk = rank(cp)
    return Chains(np.array(S, dtype=np.float64, order="C"), np.array(X, dtype=np.int64, order="C"),
                  np.zeros(R), np.zeros((R, n)), np.zeros(R), np.zeros((R, N if lr else 1, rk)),
                  np.zeros((R, N if lr else 1, rk)))


def from_prepared(k: dict) -> tuple[Graph, Coupling, Sites]:
    """The tuples of a ``solvers.mc.prepare`` dictionary (SiteLowRank factors from ``SA``, ``SB``)."""
    g = Graph(_c(k["ptr"], np.int64), _c(k["idx"], np.int64), _c(k["w_out"]), _c(k["w_in"]))
    code = int(k["code"])
    if code == SITE_LOWRANK:
        cp = coupling(code, k["J"], k["Mmat"], k["SA"], k["SB"])
    else:
        cp = coupling(code, k["J"], k["Mmat"], k["A"], k["B"])
    st = Sites(_c(k["free"], np.int64), _c(k["lengths"]), np.int64(k["kind"]), _c(k["V"]), _c(k["U"]),
               np.int64(k.get("n_hidden", 0)))
    return g, cp, st


def work(R: int, n: int, r: int, K: int) -> Work:
    """Scratch for R replicas (each field (R, ...); ``Work(*(f[i] for f in w))`` is replica i)."""
    e = np.empty
    return Work(e((R, n)), e((R, n)), e((R, r)), e((R, r)), e((R, n)), e((R, n)), e((R, n)),
                e((R, max(K, 1))))


def walkers(R: int) -> Walkers:
    """Fresh replica-exchange bookkeeping for R slots: walker r at slot r, nothing visited."""
    z = lambda: np.zeros(R, dtype=np.int64)   # noqa: E731
    return Walkers(np.arange(R, dtype=np.int64), z(), np.full(R, -1, dtype=np.int64), z(), z(), z(), z())
