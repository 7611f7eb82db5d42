"""Typed errors of the analysis layer: callers catch the type, never match the message.

Each is a :class:`ValueError` (bad input for the computation asked), so the CLI's one-line error
handling applies unchanged.
"""
from __future__ import annotations

__all__ = ["CandidatesError", "DegenerateCandidatesError", "ParallelCandidatesError", "NotAProbeError"]


class CandidatesError(ValueError):
    """Two candidates whose probabilities cannot be compared on this system."""


class DegenerateCandidatesError(CandidatesError):
    """The candidates have the same energy (E_A == E_B): no natural temperature scale."""


class ParallelCandidatesError(CandidatesError):
    """The candidate vectors are parallel: no projection tells their probabilities apart."""


class NotAProbeError(ValueError):
    """A system that is not a probe (exactly one free site with discrete candidate spins)."""
