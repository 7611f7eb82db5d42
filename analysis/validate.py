"""Analytic vs sampled candidate gaps of a probe site (issue 4 item 4, ``spinsim validate``).

A probe site over two candidate tokens A, B in the field of a frozen bath (a head's prompt)
has exactly ``log P_A / P_B = beta (E_B - E_A)`` (SPEC section 1), with ``E_a`` the total
energy when the probe takes candidate a. This module measures that log-odds three ways over a
temperature grid: the closed form from the two energies (``analytic``), exact enumeration of the
probe (``exact``) and Monte Carlo heat-bath sampling with a binning error (``mc``), and reports
the deviation of the sampled value in standard errors.

The comparison is made on the two-candidate system (the probe restricted to {A, B}), so that
``P_A + P_B = 1`` and ``P_A`` is one projection: ``m_A = <S_probe . d>`` with d chosen so that
``S_A . d = 1`` and ``S_B . d = 0``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinsim.hamiltonian import Discrete, Hamiltonian, replace
from spinsim.io import REQUIRED, atomic_h5, root_attrs, stored, to_attr, write_record, write_values
from spinsim.probe import indicator_direction, log_odds_temperatures, two_candidate_log_odds
from spinsim.solvers import solve

__all__ = ["CandidateGapValidation", "validate_candidates", "write_validation", "write_validation_group",
           "plot_validation"]

_LOG = "dimensionless (natural log)"


@dataclass
class CandidateGapValidation:
    """Log-odds log(P_A/P_B) over T: analytic, exact, Monte Carlo (+ error) and z-scores.

    T (n_T,) energy units; analytic, exact, mc, mc_err (n_T,) natural-log odds; E_A, E_B the
    probe's total energy with candidate A, B (energy units).
    """

    T: np.ndarray = stored(scale=True, units="energy (k_B = 1)", long_name="temperature", default=REQUIRED)
    E_A: float = stored(default=REQUIRED)
    E_B: float = stored(default=REQUIRED)
    analytic: np.ndarray = stored(("T",), _LOG, "beta (E_B - E_A): closed-form log P_A/P_B", default=REQUIRED)
    exact: np.ndarray = stored(("T",), _LOG, "log P_A/P_B by exact enumeration of the probe", default=REQUIRED)
    mc: np.ndarray = stored(("T",), _LOG, "log P_A/P_B from heat-bath Monte Carlo", default=REQUIRED)
    mc_err: np.ndarray = stored(("T",), _LOG, "standard error of mc (binning, delta method)", default=REQUIRED)
    labels: tuple[str, str] = stored(default=REQUIRED)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def candidate_gap(self) -> float:
        """The candidate gap E_B - E_A (energy units): > 0 means the Hamiltonian prefers A."""
        return self.E_B - self.E_A

    @property
    def gap(self) -> float:
        """:attr:`candidate_gap` under the name of its file attribute (``/validate`` attrs ``gap``)."""
        return self.candidate_gap

    @property
    def z(self) -> np.ndarray:
        """(mc - analytic) / mc_err."""
        return (self.mc - self.analytic) / self.mc_err

    def table(self) -> list[list[Any]]:
        return [[float(t), float(a), float(e), float(m), float(s), float(z)]
                for t, a, e, m, s, z in zip(self.T, self.analytic, self.exact, self.mc, self.mc_err, self.z)]

    TABLE_HEADER = ["T", "analytic b(E_B-E_A)", "exact log P_A/P_B", "MC log P_A/P_B", "MC error", "z"]


def _probe(H: Hamiltonian) -> int:
    free = np.flatnonzero(~H.frozen)
    if free.size != 1 or not isinstance(H.spin, Discrete):
        raise ValueError("validation needs a probe system: exactly one free site with discrete (candidate) spins; "
                         f"got {free.size} free sites of kind {H.spin.name!r}")
    return int(free[0])


def validate_candidates(H: Hamiltonian, T: Any = None, a: int = 0, b: int = 1, sweeps: int = 4000,
                        seed: int = 0, backend: str = "cpu",
                        labels: tuple[str, str] | None = None) -> CandidateGapValidation:
    """Compare the analytic two-candidate log-odds with exact enumeration and Monte Carlo.

    H : a probe system (one free Discrete site, frozen bath), e.g. ``head_system(...).H``.
    T : temperatures (default: 9 values from |E_B - E_A|/3 to 3|E_B - E_A|, geometric, where
        the log-odds run from about 3 down to 1/3 and both candidates are sampled).
    a, b : candidate indices in H's vocabulary.

    The candidate physics (default T, the P_A direction, the closed form) is
    :mod:`spinsim.probe`'s. Raises :class:`spinsim.probe.DegenerateCandidatesError` when
    E_A == E_B and no T is given, :class:`spinsim.probe.ParallelCandidatesError` when the two
    candidate vectors are parallel (both ValueError), ValueError for a system that is not a
    probe or a bad candidate index.
    """
    k = _probe(H)
    V = H.spin.vectors
    K = V.shape[0]
    for name, i in (("a", a), ("b", b)):
        if not 0 <= i < K:
            raise ValueError(f"candidate index {name}={i} out of range 0..{K - 1}")
    if a == b:
        raise ValueError("candidates a and b must differ")
    if labels is None:
        lab = H.spin.labels or tuple(str(i) for i in range(K))
        labels = (str(lab[a]), str(lab[b]))
    S0 = np.array(H.state, dtype=np.float64)
    S0[k] = H.lengths[k] * V[a]
    H2 = replace(H, spin=Discrete(V[[a, b]], labels=labels), state=S0)
    S = S0.copy()
    m = H2.lengths[k]
    S[k] = m * V[a]
    E_A = float(H2.energy(S))
    S[k] = m * V[b]
    E_B = float(H2.energy(S))
    T = log_odds_temperatures(E_A, E_B) if T is None else np.atleast_1d(np.asarray(T, dtype=np.float64))
    d = np.zeros((H2.n_sites, H2.n_comp))
    d[k] = indicator_direction(m * V[a], m * V[b])                      # S_A.d = 1, S_B.d = 0
    analytic = two_candidate_log_odds(E_A, E_B, T)
    ex = solve(H2, T, method="exact", direction=d)
    exact = _exact_log_odds(ex, E_A, E_B, T)
    mc = solve(H2, T, method="mc", algorithm="heatbath", sweeps=sweeps, seed=seed, backend=backend,
               direction=d, progress=False)
    p = mc.projection
    perr = mc.projection_err
    floor = 0.5 / (sweeps * int(mc.meta.get("n_chains", 1)))    # below: one candidate never sampled
    unresolved = (p < floor) | (p > 1.0 - floor)      # (p is then 0 or 1 up to rounding of S.d)
    with np.errstate(divide="ignore", invalid="ignore"):
        mlog = np.where(unresolved, np.nan, np.log(p) - np.log1p(-p))
        merr = np.where(unresolved, np.nan, perr / (p * (1 - p)))      # delta method
    meta = {"sweeps": sweeps, "seed": seed, "backend": mc.backend, "algorithm": "heatbath",
            "hamiltonian": H.name, "mc_tau_int": mc.tau_int.tolist()}
    if unresolved.any():
        meta["mc_unresolved"] = (f"MC log-odds NaN at T = {', '.join(f'{t:.4g}' for t in T[unresolved])}: one "
                                 "candidate was never sampled (|log-odds| beyond ~log(sweeps); exact and "
                                 "analytic values stand)")
    return CandidateGapValidation(T, E_A, E_B, analytic, exact, mlog, merr, labels, meta=meta)


def _exact_log_odds(ex: Any, E_A: float, E_B: float, T: np.ndarray) -> np.ndarray:
    """log P_A / P_B of the exact enumeration of a two-candidate probe, in log space from its own
    levels and counts (``dos_energy``, ``dos_count``): ``log n_A - log n_B - (E'_A - E'_B)/T``
    with E' the enumerated level nearest E_A, E_B (one level of two states: 0). Never clipped:
    at T = 1e-6 a gap of 27 gives -2.7e7, where log(p) of a probability would underflow."""
    lev = np.asarray(ex.dos_energy, dtype=np.float64)
    cnt = np.asarray(ex.dos_count, dtype=np.float64)
    iA, iB = int(np.argmin(np.abs(lev - E_A))), int(np.argmin(np.abs(lev - E_B)))
    if iA == iB:
        return np.zeros(T.size)
    return np.log(cnt[iA]) - np.log(cnt[iB]) - (lev[iA] - lev[iB]) / T


def write_validation(path: str | Path, v: CandidateGapValidation, **attrs: Any) -> Path:
    """HDF5: /validate/T (dimension scale), analytic, exact, mc, mc_err, z [T]; E_A, E_B, labels."""
    with atomic_h5(path) as f:
        for key, val in root_attrs("validate", seed=v.meta.get("seed"), **attrs).items():
            f.attrs[key] = val
        write_validation_group(f.create_group("validate"), v)
    return Path(path)


def write_validation_group(g: Any, v: CandidateGapValidation, **attrs: Any) -> None:
    """Write ``v`` into an open h5py group: T (dimension scale), analytic, exact, mc, mc_err, z [T];
    E_A, E_B, labels, gap, ``meta_<key>`` and ``attrs`` as attributes."""
    write_record(g, v)                         # the fields, as their metadata declares
    write_values(g, "z", v.z, ("T",), "standard errors", "(mc - analytic) / mc_err")
    g.attrs["gap"] = v.gap
    for key, val in v.meta.items():
        g.attrs["meta_" + key] = str(val) if isinstance(val, (list, dict)) else val
    for key, val in attrs.items():
        g.attrs[key] = to_attr(val)


def plot_validation(v: CandidateGapValidation, path: str | Path, title: str = "") -> Any:
    """Log-odds vs 1/T: the analytic line, exact points and MC points with error bars.

    Writes ``path`` (PNG) and the same stem as PDF; returns the (closed) matplotlib Figure.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    beta = 1.0 / v.T
    bb = np.linspace(0, beta.max() * 1.05, 100)
    ax.plot(bb, v.candidate_gap * bb, "-", color="k", lw=1.2, label=r"analytic $\beta(E_B-E_A)$")
    ax.plot(beta, v.exact, "o", mfc="none", color="C0", ms=8, label="exact enumeration")
    ax.errorbar(beta, v.mc, yerr=v.mc_err, fmt="s", color="C3", ms=4, capsize=2, label="Monte Carlo (heat bath)")
    ax.set_xlabel(r"$\beta = 1/T$ (1/energy)")
    ax.set_ylabel(rf"$\log P({v.labels[0]!s}) / P({v.labels[1]!s})$")
    ax.set_title(title or f"candidate gap E_B - E_A = {v.candidate_gap:.4g}")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=130)
    fig.savefig(Path(path).with_suffix(".pdf"))
    plt.close(fig)
    return fig
