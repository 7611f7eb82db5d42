"""Spin kinds of spinsim (SPEC section 1): the set each ``sigma_i`` lies in.

* :class:`Ising`: sigma = +-1 (n_comp = 1), internally the discrete set {[+1], [-1]};
* :class:`Heisenberg`: unit vectors of R^n, n >= 2 (n = 2: XY, n = 3: classic Heisenberg);
* :class:`Discrete`: one of K given vectors of R^n (token-vocabulary spins, Potts states).

A site's spin is ``S_i = m_i sigma_i`` with its length m_i > 0 (:class:`spinsim.Hamiltonian`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

__all__ = ["Ising", "Heisenberg", "Discrete", "SpinKind", "SPIN_KINDS", "spin_kind"]


@dataclass(frozen=True)
class Ising:
    """Ising spins sigma = +-1 (n_comp = 1). Internally the discrete set {[+1], [-1]}."""

    n_comp: int = 1
    name: str = "ising"

    @property
    def vectors(self) -> np.ndarray:
        """(2, 1) the two states, index 0 = +1, index 1 = -1."""
        return np.array([[1.0], [-1.0]])


@dataclass(frozen=True)
class Heisenberg:
    """O(n) spins: unit vectors in R^n, n >= 2 (n = 2: XY, n = 3: classic Heisenberg)."""

    n_comp: int = 3
    name: str = "heisenberg"

    def __post_init__(self) -> None:
        if not isinstance(self.n_comp, (int, np.integer)) or self.n_comp < 2:
            raise ValueError(f"heisenberg spins need n_comp >= 2 (an integer), got {self.n_comp!r}")


@dataclass(frozen=True, eq=False)
class Discrete:
    """Each site takes one of K given vectors in R^n (token-vocabulary spins, Potts states).

    ``vectors`` has shape (K, n_comp); row a is state a.
    """

    vectors: np.ndarray = field(default_factory=lambda: np.eye(3))
    labels: tuple[str, ...] | None = None
    name: str = "discrete"

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, dtype=np.float64)
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise ValueError(f"discrete spin vectors must have shape (K, n_comp) with K, n_comp >= 1, got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("discrete spin vectors contain NaN or infinite entries")
        object.__setattr__(self, "vectors", v)
        if self.labels is not None and len(self.labels) != v.shape[0]:
            raise ValueError(f"discrete spin labels: {len(self.labels)} labels for {v.shape[0]} vectors")

    @property
    def n_comp(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def n_states(self) -> int:
        return int(self.vectors.shape[0])


SpinKind = Union[Ising, Heisenberg, Discrete]
SPIN_KINDS = ("ising", "heisenberg", "discrete")


def spin_kind(spin: Any, n_comp: int | None = None) -> SpinKind:
    """Normalise a spin-kind specification (an instance or one of ``'ising'``, ``'heisenberg'``,
    ``'xy'``)."""
    if isinstance(spin, (Ising, Heisenberg, Discrete)):
        return spin
    if isinstance(spin, str):
        s = spin.lower()
        if s == "ising":
            return Ising()
        if s == "xy":
            return Heisenberg(2)
        if s == "heisenberg":
            return Heisenberg(3 if n_comp is None else int(n_comp))
        if s == "discrete":
            raise ValueError("spin='discrete' needs its vectors: pass spinsim.Discrete(vectors)")
    raise ValueError(f"unknown spin kind {spin!r}; allowed: 'ising', 'heisenberg', 'xy', or a "
                     "spinsim.Ising/Heisenberg/Discrete instance")
