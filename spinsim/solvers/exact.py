"""Exact enumeration: ``solve(H, T, method="exact", ...)`` for Ising and discrete spins.

``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i`` (k_B = 1). Only the free sites are
enumerated; frozen sites keep ``H.state``. Energies are *total* energies of H (frozen-frozen
pairs and fields on frozen sites included), so ``Result.ground_energy == H.energy(ground_state)``;
the per-site observables divide by the number of free sites (see :mod:`spinsim.result`).

How the states are visited (:mod:`spinsim.solvers.exact_ising`, :mod:`spinsim.solvers.exact_discrete`;
kernels in :mod:`spinsim.kernels.enumerate`):

* Ising: a Gray code over all but the 8 lowest spins, one spin flip per step at
  ``dE = -(S_k' - S_k).phi_k`` with the neighbours' fields updated incrementally; for every step
  the 2^8 states of the low spins are summed in a vectorised inner loop (their energies from a
  table plus a linear term built by doubling). If every coupling and field is an integer
  multiple of one quantum q (detected to within 64 ulp of the largest; "lattice energies"),
  energies are kept exactly in integers and one pass accumulates, per energy level, the counts
  and moments of m (a joint (E, M) histogram when all lengths are equal); all temperatures then
  follow from the levels. Otherwise two passes: the first finds E_0, E_1, the degeneracies and
  the energy range, the second accumulates ``exp(-beta (E - E_0))``-weighted sums for every T
  (~ 2^n n_T multiply-adds: the weights of a low block are products of a few exponentials).
* Discrete (K vectors per site): an odometer over the outer sites with incremental local-field
  tables; a leaf block of the first sites (up to 1024 joint states) is summed in a vectorised
  inner loop, with Boltzmann weights built as products (few exponentials per block). One free
  site (a probe over a vocabulary of any size) is a single vectorised ``V @ phi``. Two passes as
  above (cost ~ K^n (n_comp + n_T)).
* Heisenberg spins are continuous: not enumerable (use ``method="analytic"`` or ``"mc"``).

Degenerate levels: two energies are the same level when they differ by at most
``rtol * scale``, ``scale = |E_c| + sum |coupling terms| + sum |field terms|`` (an upper bound
of |E|), rtol a bound of the round-off of the streaming energies (2^-44 for real-valued Ising,
2^-36 for discrete spins; ``meta["degeneracy_tolerance"]``); finer real splittings are resolved.
With lattice energies levels are exact integers and no tolerance is needed.

Numerics at any T > 0 and energy scale: Boltzmann sums are accumulated in log space (log-sum-exp,
block by block), the specific heat and susceptibilities from variances about the mean (never
<E^2> - <E>^2), energies within the level tolerance of E_0 or E_1 count as that level (round-off
never splits a level). Temperatures whose |E|/T overflows are refused before any work
(:func:`spinsim.validation.check_energy_range`).

Density of states (``Result.dos_energy``, ``dos_count``): the exact distinct levels and their
counts when the energies lie on a lattice; otherwise a histogram of ``dos_bins`` equal bins
between E_0 and E_max (``dos_energy`` = bin centres). ``meta["dos"]`` says which.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..derived import derive
from ..directions import projection_direction
from ..hamiltonian import Hamiltonian, Heisenberg, Ising
from ..result import Result
from . import register
from .exact_discrete import solve_discrete
from .exact_ising import solve_ising
from .exact_levels import DEGENERACY_RTOL

__all__ = ["solve_exact", "MAX_STATES_ISING", "MAX_STATES_DISCRETE", "DEGENERACY_RTOL"]

MAX_STATES_ISING = 2 ** 30
MAX_STATES_DISCRETE = 10 ** 8


# ----------------------------------------------------------------------------- entry point
@register("exact")
def solve_exact(H: Hamiltonian, T: np.ndarray, *, max_states: int | float | None = None,
                dos_bins: int = 512, direction: Any = None, max_ground_states: int = 64,
                **ignored: Any) -> Result:
    """Exact thermodynamics of the free sites of H by enumerating every state.

    Parameters
    ----------
    H : Ising or discrete Hamiltonian (n_free sites free, the rest frozen at ``H.state``).
    T : (n_T,) temperatures > 0 (k_B = 1).
    max_states : refuse (ValueError, before any work) when the state count exceeds it.
        Default 2**30 for Ising, 1e8 for discrete spins.
    dos_bins : number of histogram bins of the density of states when energies are not on a
        lattice.
    direction : projection direction for ``Result.projection``, as for ``method="mc"``:
        ``"field"`` (default when h != 0), ``"top_eigenvector"``, an (n_comp,) or
        (n_sites, n_comp) array used as given (not normalised).
    max_ground_states : at most this many ground states are returned in
        ``Result.ground_states`` (n_ground, n_sites, n_comp); ``ground_degeneracy`` counts all.
    **ignored : options of other methods (``seed``, ``backend``, ...), listed in
        ``meta["ignored_options"]``.

    Returns
    -------
    Result with exact ``log_Z``, energy, specific heat, <|m|>, chi, Binder, <m> vector,
    projection (if a direction), ground energy E_0 (total), ``gap`` the level gap E_1 - E_0 (None
    when every state has the same energy), degeneracies, ground states and the density of states.
    All ``*_err`` arrays are zero.
    """
    if isinstance(H.spin, Heisenberg):
        raise ValueError(f"exact enumeration needs a finite spin set; spin kind 'heisenberg' (n_comp="
                         f"{H.n_comp}) is continuous: use method='analytic' or method='mc'")
    if isinstance(dos_bins, bool) or not isinstance(dos_bins, (int, np.integer)) or dos_bins < 1:
        raise ValueError(f"dos_bins must be an integer >= 1, got {dos_bins!r}")
    if (isinstance(max_ground_states, bool) or not isinstance(max_ground_states, (int, np.integer))
            or max_ground_states < 1):
        raise ValueError(f"max_ground_states must be an integer >= 1, got {max_ground_states!r}")
    ising = isinstance(H.spin, Ising)
    K = 2 if ising else H.spin.n_states
    n = H.n_free
    limit = (MAX_STATES_ISING if ising else MAX_STATES_DISCRETE) if max_states is None else max_states
    if (isinstance(limit, bool) or not isinstance(limit, (int, float, np.integer, np.floating))
            or not np.isfinite(limit) or limit < 1):
        raise ValueError(f"max_states must be a finite number >= 1, got {max_states!r}")
    n_states = K ** n
    if n_states > 2 ** 62:       # state codes are int64
        raise ValueError(f"exact enumeration of {n} free {H.spin.name} sites needs {K}^{n} states, beyond the "
                         "2^62 a state code can hold; use method='mc'")
    if n_states > limit:
        raise ValueError(f"exact enumeration of {n} free {H.spin.name} sites needs {K}^{n} = {n_states:.4g} "
                         f"states, over max_states={float(limit):.4g}; freeze sites, raise max_states or "
                         "use method='mc'")
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    U, u_label = projection_direction(H, direction)
    t0 = time.perf_counter()
    prob = _free_problem(H, U)
    if ising:
        out = solve_ising(H, T, prob, int(dos_bins), int(max_ground_states))
    else:
        out = solve_discrete(H, T, prob, int(dos_bins), int(max_ground_states))
    elapsed = time.perf_counter() - t0
    out["meta"].update({
        "n_states": int(n_states), "elapsed_s": round(elapsed, 6),
        "states_per_s": float(n_states / max(elapsed, 1e-12)),
        "energy_convention": "total energy of H (frozen sites included); per-site values / n_free",
        "log_Z_measure": "counting measure over the states of the free sites",
    })
    out["meta"]["warnings"] = _resolution_warnings(T, out["meta"].get("degeneracy_tolerance"))
    if ignored:
        out["meta"]["ignored_options"] = sorted(ignored)
    if u_label is not None:
        out["meta"]["projection_direction"] = u_label
    return _assemble(H, T, out, u_label is not None)


def _resolution_warnings(T: np.ndarray, tol: float | None) -> list[str]:
    """Temperatures at which float64 round-off of the energies (level tolerance tol, a few
    hundred ulp of the energy scale) is not small against T: Boltzmann weights there carry
    relative errors up to ~beta tol (levels closer than tol count as one)."""
    if not tol:
        return []
    return [f"T={t:.6g}: energies are resolved to {tol:.3g} (float64 round-off at this energy scale); "
            f"Boltzmann weights carry relative errors up to beta*{tol:.3g} = {tol / t:.2g}"
            for t in T if tol / t > 0.1]


# ----------------------------------------------------------------------------- shared set-up
def _free_problem(H: Hamiltonian, U: np.ndarray) -> dict[str, Any]:
    """The enumeration problem: free sites, the base state S0 (free sites zero) and its energy
    ``const``, the field phi0 of h and the frozen sites on each free site, W among the free
    sites, their lengths and projection directions."""
    free = np.flatnonzero(~H.frozen)
    S0 = H.state.copy() if H.state is not None else np.zeros((H.n_sites, H.n_comp))
    S0[free] = 0.0
    Wd = H.W
    Wff = (Wd[free][:, free] if sp.issparse(Wd) else sp.csr_matrix(Wd[np.ix_(free, free)]))
    return dict(free=free, S0=S0, const=float(H.energy(S0)), phi0=H.local_fields(S0)[free],
                Wff=sp.csr_matrix(Wff), mlen=H.lengths[free].copy(), U=U[free])


# ----------------------------------------------------------------------------- Result
def _assemble(H: Hamiltonian, T: np.ndarray, out: dict[str, Any], has_proj: bool) -> Result:
    N, n = H.n_free, H.n_comp
    mom = out["moments"]
    E0 = out["E0"]
    m1, u1 = mom["m1"], mom["u1"]
    # the moments about the means (exact variances; spinsim.derived: one definition of each observable)
    moments = {"E": 0.0, "E2": mom["var"], "mabs": 0.0, "mabs2": mom["var_m"], "m2": mom["var_m"] + m1 ** 2,
               "m4": mom["m4"]}
    if has_proj:
        moments.update(mu=0.0, mu2=mom["var_u"])
    d = derive(moments, 1.0 / T, N, n, shift={"E": E0 + mom["xbar"], "mabs": m1, "mu": u1})
    zeros = np.zeros(T.size)
    meta = dict(out["meta"])
    if out["n0"] > out["ground_states"].shape[0]:
        meta["ground_states_note"] = (f"{out['ground_states'].shape[0]} of {out['n0']} ground states "
                                      "stored (max_ground_states)")
    return Result(
        T=T, energy=d["energy"], energy_err=zeros.copy(),
        specific_heat=d["specific_heat"], specific_heat_err=zeros.copy(),
        magnetization=d["magnetization"], magnetization_err=zeros.copy(),
        susceptibility=d["susceptibility"], susceptibility_err=zeros.copy(),
        binder=d["binder"], binder_err=zeros.copy(), method="exact", backend="cpu",
        n_sites=H.n_sites, n_free=N, n_comp=n,
        magnetization_vector=out["mvec"],
        projection=d.get("projection"),
        projection_err=zeros.copy() if has_proj else None,
        projection_susceptibility=d.get("projection_susceptibility"),
        projection_susceptibility_err=zeros.copy() if has_proj else None,
        log_Z=mom["lw"] - E0 / T,
        ground_energy=float(E0), gap=None if out["E1"] is None else float(out["E1"] - E0),
        ground_degeneracy=int(out["n0"]), excited_degeneracy=int(out["n1"]),
        ground_states=out["ground_states"], dos_energy=np.asarray(out["dos_energy"]),
        dos_count=np.asarray(out["dos_count"]), meta=meta,
    )
