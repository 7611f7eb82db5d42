"""Candidate physics of a probe site, written once: energies, candidate gaps, log-odds, h*.

A *probe* is one free site k of H in the field of a bath (the other sites, frozen at
``H.state`` or at a given ``bath``). ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i``
(k_B = 1) is linear in S_k (W_kk = 0), so with the probe's local field phi_k (which does not
depend on S_k) the total energy with the probe at the spin S_a is

    E_a = E_ref - (S_a - S_ref) . phi_k

for any reference spin S_ref and ``E_ref`` the total energy with the probe at S_ref (frozen
pairs included, as ``method="exact"`` reports energies). Candidate a is a unit vector v_a; the
probe takes ``S_a = m_k v_a``.

Words (one meaning each): the *candidate gap* ``E_B - E_A`` between the two lowest candidates
(or any pair); the *level gap* ``E_1 - E_0`` of a whole system is something else
(``Result.gap``), and so is the *spin-wave gap* (:mod:`spinsim.excitations`).

* :func:`candidate_energies`, :func:`candidate_gaps`: energies of K candidates of the probe.
* :func:`two_candidate_log_odds`: ``log P_A / P_B = beta (E_B - E_A)`` for the probe restricted
  to {A, B} (SPEC section 1).
* :func:`crossing_field`, :func:`level_crossing_field`: with an added field h along u,
  ``E_X(h) = E_X - h p_X`` (``p_X = u . S_X``), and the levels of A and B cross at
  ``h* = (E_A - E_B) / (p_A - p_B)``.
* :func:`log_odds_temperatures`, :func:`indicator_direction`: the temperature grid where the
  log-odds are measurable and the direction whose projection is P_A.

Errors are typed: :class:`DegenerateCandidatesError` (candidate gap E_B - E_A = 0 where it sets the scale),
:class:`NoLevelCrossingError` (p_A == p_B), :class:`ParallelCandidatesError` (S_A parallel to
S_B): all subclasses of ValueError.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .hamiltonian import Discrete, Hamiltonian, Heisenberg

__all__ = ["DegenerateCandidatesError", "NoLevelCrossingError", "ParallelCandidatesError",
           "probe_site", "candidate_energies", "CandidateGaps", "candidate_gaps", "two_candidate_log_odds",
           "crossing_field", "level_crossing_field", "log_odds_temperatures", "indicator_direction"]


class DegenerateCandidatesError(ValueError):
    """The two candidates have the same energy (candidate gap 0) where a nonzero gap is needed."""


class NoLevelCrossingError(ValueError):
    """The candidates have the same projection on the field direction: their levels never cross."""


class ParallelCandidatesError(ValueError):
    """The candidate spins are parallel: no projection tells their probabilities apart."""


def probe_site(H: Hamiltonian) -> int:
    """The single free site of H; ValueError naming the count when H has not exactly one."""
    free = np.flatnonzero(~H.frozen)
    if free.size != 1:
        raise ValueError(f"a probe system needs exactly one free (probe) site, H has {free.size}")
    return int(free[0])


def candidate_energies(H: Hamiltonian, spins: Any, probe: int | None = None, bath: Any = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Total energies of H with the probe site at each of the candidate spins.

    spins (K, n_comp): the probe's spins S_a, lengths included; probe: the site (default the
    single free site of H); bath (n_sites, n_comp): the other spins (default ``H.state``; the
    probe's own entry is ignored). Returns ``(E, phi)``: E (K,) total energies
    ``E_a = E_ref - (S_a - S_0) . phi`` (E_ref with the probe at S_0 = spins[0]), and phi
    (n_comp,) the probe's local field. Exact: one local field and one energy evaluation.
    """
    k = probe_site(H) if probe is None else int(probe)
    if not 0 <= k < H.n_sites:
        raise ValueError(f"probe site {probe!r} out of range 0..{H.n_sites - 1}")
    src = bath if bath is not None else H.state
    if src is None:
        S = np.zeros((H.n_sites, H.n_comp))
    else:
        S = np.array(src, dtype=np.float64)
        if S.shape != (H.n_sites, H.n_comp):
            raise ValueError(f"bath must have shape ({H.n_sites}, {H.n_comp}), got {S.shape}")
    X = np.asarray(spins, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != H.n_comp:
        raise ValueError(f"candidate spins must have shape (K, {H.n_comp}), got {X.shape}")
    S[k] = X[0]
    E_ref = float(H.energy(S))
    phi = H.local_field(S, k)          # independent of S_k (W_kk = 0)
    return E_ref - (X - X[0]) @ phi, phi


@dataclass
class CandidateGaps:
    """Energies of the candidate states of one probe site in the field of the frozen rest.

    ``energies[a]`` (K,) = total energy of H with the probe at ``m_k * vectors[a]``;
    ``order`` candidates by ascending energy; ``best`` = A, ``second`` = B;
    ``candidate_gap = E_B - E_A >= 0`` (also readable as ``gap``); ``field`` (n_comp,) the probe's
    local field phi_k, so that ``E_b - E_a = m_k phi_k . (v_a - v_b)`` (the paper's logit gap
    with the context field in the role of N0, SPEC section 0).
    """

    site: int
    energies: np.ndarray
    vectors: np.ndarray
    labels: tuple[str, ...] | None
    order: np.ndarray
    best: int
    second: int
    candidate_gap: float
    field: np.ndarray

    @property
    def gap(self) -> float:
        """The candidate gap ``E_B - E_A`` (name kept from version 0.1)."""
        return self.candidate_gap

    def index(self, a: Any) -> int:
        """Candidate index of a label or an index; ValueError when unknown or out of range."""
        if isinstance(a, str):
            if self.labels is None or a not in self.labels:
                raise ValueError(f"unknown candidate {a!r}; labels: {self.labels}")
            return self.labels.index(a)
        i = int(a)
        if not 0 <= i < self.energies.size:
            raise ValueError(f"candidate index {a!r} out of range 0..{self.energies.size - 1}")
        return i

    def pair_gap(self, a: Any, b: Any) -> float:
        """Candidate gap ``E_b - E_a`` for candidates a, b (indices or labels): > 0 when a is favoured."""
        return float(self.energies[self.index(b)] - self.energies[self.index(a)])


def candidate_gaps(H: Hamiltonian, vectors: Any = None, labels: Any = None) -> CandidateGaps:
    """Candidate energies and gaps of the single free (probe) site of H.

    H must have exactly one free site; the others are frozen at ``H.state``. ``vectors``
    (K, n_comp) unit candidate directions (the probe takes ``m_k v_a``): default the
    vocabulary of a Discrete/Ising H (needed for Heisenberg H). K >= 2. Exact: one local field.
    Raises ValueError for a bad probe system, shapes or labels.
    """
    k = probe_site(H)
    if vectors is None:
        if isinstance(H.spin, Heisenberg):
            raise ValueError("candidate_gaps on heisenberg spins needs vectors=(K, n_comp) candidates")
        V = H.spin.vectors
        if labels is None and isinstance(H.spin, Discrete):
            labels = H.spin.labels
    else:
        V = np.asarray(vectors, dtype=np.float64)
        if V.ndim != 2 or V.shape[1] != H.n_comp:
            raise ValueError(f"vectors must have shape (K, {H.n_comp}), got {V.shape}")
    if V.shape[0] < 2:
        raise ValueError(f"candidate_gaps needs K >= 2 candidates, got {V.shape[0]}")
    if labels is not None:
        labels = tuple(str(x) for x in labels)
        if len(labels) != V.shape[0]:
            raise ValueError(f"{len(labels)} labels for {V.shape[0]} candidates")
    E, phi = candidate_energies(H, H.lengths[k] * V, probe=k)
    order = np.argsort(E, kind="stable")
    return CandidateGaps(site=k, energies=E, vectors=V, labels=labels, order=order,
                         best=int(order[0]), second=int(order[1]),
                         candidate_gap=float(E[order[1]] - E[order[0]]), field=phi)


def two_candidate_log_odds(E_A: Any, E_B: Any, T: Any) -> np.ndarray:
    """``log P_A / P_B = beta (E_B - E_A)`` for a spin restricted to the candidates {A, B}.

    Energies in energy units, T > 0 (k_B = 1); broadcasts. ValueError for T <= 0.
    """
    T = np.asarray(T, dtype=np.float64)
    if np.any(T <= 0):
        raise ValueError(f"temperatures must be > 0, got {T!r}")
    return (np.asarray(E_B, dtype=np.float64) - np.asarray(E_A, dtype=np.float64)) / T


def crossing_field(E_A: Any, E_B: Any, p_A: Any, p_B: Any) -> np.ndarray:
    """Level-crossing field ``h* = (E_A - E_B) / (p_A - p_B)`` of candidates A and B, broadcast
    over arrays; NaN where ``p_A == p_B`` (the levels never cross, or always coincide).

    With an added field h along u, ``E_X(h) = E_X - h p_X`` (``p_X = u . S_X``): for h > h* the
    candidate with the larger projection is lower. At h* the log-odds ``beta (E_B(h) - E_A(h))``
    vanish at every T (a first-order line in the (T, h) plane for a quenched bath).
    """
    EA, EB, pA, pB = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (E_A, E_B, p_A, p_B)))
    dp = pA - pB
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dp != 0, (EA - EB) / np.where(dp != 0, dp, 1.0), np.nan)


def level_crossing_field(E_A: float, E_B: float, p_A: float, p_B: float) -> float:
    """Field strength h* where the energies of candidates A and B cross (:func:`crossing_field`
    for numbers). Raises :class:`NoLevelCrossingError` when ``p_A == p_B``."""
    if p_A == p_B:
        raise NoLevelCrossingError(f"no level crossing: both candidates have the same projection p = {p_A!r}")
    return float(crossing_field(E_A, E_B, p_A, p_B))


def log_odds_temperatures(E_A: float, E_B: float, n_T: int = 9) -> np.ndarray:
    """n_T temperatures, geometric from |E_B - E_A|/3 to 3 |E_B - E_A|: there the two-candidate
    log-odds run from about 3 down to 1/3, so both candidates are sampled. Raises
    :class:`DegenerateCandidatesError` when E_A == E_B (no scale)."""
    candidate_gap = float(E_B) - float(E_A)
    if candidate_gap == 0:
        raise DegenerateCandidatesError("the two candidates are degenerate (E_A == E_B): give T explicitly")
    return abs(candidate_gap) * np.geomspace(1 / 3, 3, int(n_T))


def indicator_direction(S_A: Any, S_B: Any, atol: float = 1e-8) -> np.ndarray:
    """A direction d (n_comp,) with ``S_A . d = 1`` and ``S_B . d = 0`` (minimum norm), so that
    for a probe restricted to {A, B} the projection ``<S . d>`` is P_A. Raises
    :class:`ParallelCandidatesError` when no such d exists (S_A parallel to S_B)."""
    X = np.vstack([np.asarray(S_A, dtype=np.float64), np.asarray(S_B, dtype=np.float64)])
    d = np.linalg.pinv(X) @ np.array([1.0, 0.0])
    if not np.allclose(X @ d, [1.0, 0.0], atol=atol):
        raise ParallelCandidatesError("candidate vectors A and B are parallel: their probabilities cannot "
                                      "be told apart")
    return d
