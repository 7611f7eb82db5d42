"""Ground states and level gaps by quench: ``solve(H, method="ground", ...)``.

``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i`` (k_B = 1; ``W[i, j]``: query i, key j),
``S_i = m_i sigma_i``. Energies are *total* energies of H (frozen sites included), as in
``method="exact"``, so ``Result.ground_energy == H.energy(Result.ground_states[0])``.

Search (:func:`find_minima`)
    Zero-temperature quench from ``restarts`` random starts: sites are swept in order and each
    free spin is set to its exact single-site minimiser (``S_k = m_k phi_k / |phi_k|`` for O(n)
    spins, the best of the K vectors for discrete/Ising ones), local fields maintained
    incrementally (:mod:`spinsim.kernels.quench`), until a sweep moves no spin by more than
    ``tol`` (``max_k |sigma_k' - sigma_k|``; discrete: no spin changes) or ``max_iter`` sweeps.
    Restart q draws its start from ``numpy.random.default_rng([seed, q])``: adding restarts
    never changes the earlier ones, so the best energy is non-increasing in ``restarts`` and
    reproducible. Optional annealing (``anneal=True`` or a dict) runs heat-bath sweeps on a
    geometric cooling schedule before the quench of every restart.

Exact dimensional reduction (low-rank M)
    The quench runs in the working space ``span(A, B, h_1..h_N)`` of :mod:`spinsim.reduction`
    (d <= 2 r + N dimensions instead of n). A uniform start in R^n is reproduced exactly by its
    projection on that space, and the fields only ever see that projection; so the search is
    the R^n quench itself, not an approximation. States are lifted back to R^n at the end.

Distinct minima
    Two end states are one minimum when their energies agree within
    ``energy_tol * sum_k m_k |phi_k|`` (the energy scale of the best state) and, for O(n) spins,
    their Gram matrices ``sigma_i . sigma_j`` (all sites) agree to ``overlap_tol`` entrywise:
    the Gram matrix is invariant under every global orthogonal map, so states related by the
    O(n) rotations of an isotropic H (a Goldstone manifold) or by ``S -> -S`` count once.
    Discrete/Ising states are compared exactly (identical configurations; no symmetry
    folding), so their ``ground_degeneracy`` counts states as ``method="exact"`` does.

Level gap
    ``Result.gap`` is the *level gap* between the two lowest distinct energy levels of the local
    minima found (not the exact first excited state of a discrete system: that need not be a
    local minimum; ``meta["gap_kind"]``). Candidate gaps of a probe site are
    :func:`spinsim.probe.candidate_gaps`; the spin-wave gap and Goldstone count of a state are
    :func:`spinsim.excitations.excitations` (``n_modes > 0`` puts them in ``meta``).

Zero temperature in a Result
    ``T = [0.0]``; ``energy = [E_0 / n_free]`` and ``magnetization = [|m|]`` of the best state
    (``m = sum_free S_i / n_free``), both with error 0 (they are values of one state, not
    estimates); ``specific_heat``, ``susceptibility``, ``binder`` and their errors are NaN (not
    computed: thermal quantities); ``meta["zero_temperature"] = True``.

For code written against version 0.1 this module keeps ``local_fields(H, S)`` (now
``H.local_fields(S)``) and re-exports ``excitations``/``Excitations`` (:mod:`spinsim.excitations`)
and ``candidate_gaps``/``CandidateGaps`` (:mod:`spinsim.probe`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..declared import readonly
from ..excitations import Excitations, excitations
from ..hamiltonian import Hamiltonian, Heisenberg
from ..kernels import quench as kern
from ..kernels.arrays import factor_sets
from ..probe import CandidateGaps, candidate_gaps
from ..reduction import Reduction, uniform_projection, working_space
from ..result import Result
from ..validation import check_positive_float, check_positive_int
from . import register

__all__ = ["solve_ground", "find_minima", "Minima",
           # re-exported from their own modules (version 0.1 names)
           "excitations", "Excitations", "candidate_gaps", "CandidateGaps", "local_fields"]

_ANNEAL_KEYS = ("sweeps", "T_hi", "T_lo")


# ============================================================================ helpers
def local_fields(H: Hamiltonian, S: np.ndarray) -> np.ndarray:
    """All local fields of H at S (n_sites, n_comp): ``H.local_fields(S)`` (version 0.1 name)."""
    return H.local_fields(S)


def _kernel_args(H: Hamiltonian, red: Reduction) -> tuple:
    """Arguments of the quench/anneal kernels after (S, sidx): coupling mode and arrays in the
    working space, fields, lengths, free sites, neighbour lists, discrete vectors."""
    ka = red.M.kernel_arrays()       # codes 0/1/2/3 = kern.MODE_IDENTITY/DENSE/LOWRANK/SITE_LOWRANK
    mode, J, Mm = ka.code, ka.J, ka.Mmat
    A, B = factor_sets(mode, *((ka.SA, ka.SB) if mode == kern.MODE_SITE_LOWRANK else (ka.A, ka.B)))
    ptr, nbr, w_out, w_in = H.neighbours()
    sites = np.flatnonzero(~H.frozen).astype(np.int64)
    f, i = np.float64, np.int64
    # every input read-only (declared.readonly): Numba compiles one signature per read-only flag
    # of each array, and the Hamiltonian's own arrays are frozen while placeholders and derived
    # arrays were not (two compiles of the quench and the anneal, ~15 s of CPU each)
    return (i(mode), f(J), *(readonly(np.asarray(a, f)) for a in (Mm, A, B, red.h, H.lengths)),
            *(readonly(np.asarray(a, i)) for a in (sites, ptr, nbr)),
            *(readonly(np.asarray(a, f)) for a in (w_out, w_in, red.V)))


def _initial(H: Hamiltonian, red: Reduction, seed: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Start of restart q: (S (N, d), sidx (N,)) from ``default_rng([seed, q])``."""
    rng = np.random.default_rng([seed, q])
    N = H.n_sites
    sidx = np.zeros(N, np.int64)
    if isinstance(H.spin, Heisenberg):
        S = uniform_projection(rng, N, H.n_comp, red.d)
    else:
        sidx = rng.integers(0, red.V.shape[0], N).astype(np.int64)
        S = red.V[sidx].copy()
    S *= H.lengths[:, None]
    S[H.frozen] = red.S_frozen[H.frozen]
    return S, sidx


def _lift(H: Hamiltonian, red: Reduction, S: np.ndarray, sidx: np.ndarray) -> np.ndarray:
    """Working-space state -> (N, n) state in R^n (frozen sites: exactly ``H.state``)."""
    if isinstance(H.spin, Heisenberg):
        out = red.lift(S)
    else:
        out = H.spin.vectors[sidx] * H.lengths[:, None]
    if H.frozen.any():
        out[H.frozen] = H.state[H.frozen]
    return out


def _anneal_schedule(H: Hamiltonian, anneal: Any) -> dict[str, float] | None:
    """Parse ``anneal``: False/None (off), True (defaults) or a dict with sweeps, T_hi, T_lo."""
    if anneal is None or anneal is False:
        return None
    if anneal is True:
        anneal = {}
    if not isinstance(anneal, dict):
        raise ValueError(f"anneal must be True, False or a dict with keys {_ANNEAL_KEYS}, got {anneal!r}")
    bad = [k for k in anneal if k not in _ANNEAL_KEYS]
    if bad:
        raise ValueError(f"unknown anneal option {bad[0]!r}; allowed: {', '.join(_ANNEAL_KEYS)}")
    scale = _field_scale(H)
    out = {"sweeps": check_positive_int("anneal['sweeps']", anneal.get("sweeps", 200), 1),
           "T_hi": check_positive_float("anneal['T_hi']", anneal.get("T_hi", scale)),
           "T_lo": check_positive_float("anneal['T_lo']", anneal.get("T_lo", 1e-3 * scale))}
    if out["T_lo"] > out["T_hi"]:
        raise ValueError(f"anneal needs T_lo <= T_hi, got T_lo={out['T_lo']!r} > T_hi={out['T_hi']!r}")
    return out


def _field_scale(H: Hamiltonian) -> float:
    """Typical single-site energy: mean_free m_k (sum_j (|W_kj|+|W_jk|) m_j ||M|| + |h_k|)."""
    Wa = abs(H.W)
    deg = np.asarray(Wa @ H.lengths).reshape(-1) + np.asarray(Wa.T @ H.lengths).reshape(-1)
    s = H.lengths * (deg * H.M.spectral_norm() + np.linalg.norm(H.h, axis=1))
    s = s[~H.frozen]
    v = float(np.mean(s)) if s.size else 0.0
    return v if v > 0 else 1.0


# ============================================================================ search
@dataclass
class Minima:
    """Distinct local minima found by the quench (see the module docstring for "distinct").

    energies (n_minima,) total energies, ascending; counts (n_minima,) basin counts (restarts
    ending in each); first_restart (n_minima,) the lowest restart index ending there; states
    (n_minima, n_sites, n_comp) one representative each (the lowest-energy member), lengths
    included; restart_energies (restarts,); sweeps (restarts,); converged (restarts,) bool;
    best_restart the restart holding the best state (ties: the lowest index); scale the energy
    scale ``sum_free m_k |phi_k|`` of the best state (energy tolerance unit).
    """

    energies: np.ndarray
    counts: np.ndarray
    first_restart: np.ndarray
    states: np.ndarray
    restart_energies: np.ndarray
    sweeps: np.ndarray
    converged: np.ndarray
    best_restart: int
    scale: float
    energy_tol: float
    working_dim: int
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def level_tol(self) -> float:
        return self.energy_tol * self.scale

    def levels(self) -> list[tuple[float, int, list[int]]]:
        """Energy levels of the minima: [(E, number of distinct minima, their indices)], ascending."""
        out: list[tuple[float, int, list[int]]] = []
        for i, E in enumerate(self.energies):
            if out and abs(E - out[-1][0]) <= self.level_tol:
                out[-1][2].append(i)
                out[-1] = (out[-1][0], out[-1][1] + 1, out[-1][2])
            else:
                out.append((float(E), 1, [i]))
        return out

    @property
    def best_hit_fraction(self) -> float:
        """Fraction of restarts ending at the best energy (within the level tolerance)."""
        E0 = self.energies[0]
        return float(np.mean(np.abs(self.restart_energies - E0) <= self.level_tol))



def _cluster(H: Hamiltonian, E: np.ndarray, S: np.ndarray, sidx: np.ndarray, etol: float,
             overlap_tol: float) -> tuple[list[int], list[int], list[int]]:
    """Distinct minima among the end states (module docstring): restarts in ascending energy
    (stable: ties by restart index), each compared with the representatives found so far.
    Returns (representative restart, basin count, lowest restart index) per minimum."""
    order = np.argsort(E, kind="stable")
    heis = isinstance(H.spin, Heisenberg)
    free = ~H.frozen
    reps: list[int] = []
    keys: list[Any] = []
    counts: list[int] = []
    first: list[int] = []
    for q in order:
        if heis:
            sig = S[q] / H.lengths[:, None]
            key = sig @ sig.T                        # Gram matrix: invariant under O(n) maps
        else:
            key = sidx[q][free]
        hit = -1
        for c, r in enumerate(reps):
            if abs(E[q] - E[r]) > etol:
                continue
            same = (np.max(np.abs(key - keys[c])) <= overlap_tol) if heis else np.array_equal(key, keys[c])
            if same:
                hit = c
                break
        if hit < 0:
            reps.append(int(q))
            keys.append(key)
            counts.append(1)
            first.append(int(q))
        else:
            counts[hit] += 1
            first[hit] = min(first[hit], int(q))
    return reps, counts, first


def find_minima(H: Hamiltonian, restarts: int = 64, seed: int = 0, anneal: Any = False,
                tol: float = 1e-12, max_iter: int = 100_000, energy_tol: float = 1e-9,
                overlap_tol: float = 1e-6, reduce: bool = True, omega: Any = "auto") -> Minima:
    """Quench ``restarts`` random starts to local minima and cluster the end states.

    Parameters: restarts >= 1; seed >= 0 (restart q uses ``default_rng([seed, q])``);
    anneal False | True | {"sweeps": 200, "T_hi": scale, "T_lo": 1e-3 scale} (heat-bath cooling,
    geometric in T, before each quench; scale = :func:`_field_scale`, energy units); tol > 0
    on ``max_k |sigma_k' - sigma_k|`` per sweep; max_iter >= 1 sweeps per restart; energy_tol
    (relative to ``sum_k m_k |phi_k|``) and overlap_tol (Gram entries) define distinct minima;
    reduce: use the exact span(A, B, h) reduction for low-rank couplings; omega: over-relaxation
    of the O(n) quench, 1 (plain alignment), a float in [1, 2) or "auto" (adaptive, see below).

    Over-relaxation: the O(n) move is ``sigma_k' = x / |x|``, ``x = omega phi_k/|phi_k| - (omega-1)
    sigma_k``; for 1 <= omega < 2 sigma_k' is strictly closer in angle to phi_k than sigma_k, so
    every move still lowers the energy and the fixed points are exactly those of the plain
    quench (the basin a start falls into may differ). "auto" starts plain, measures the steady
    contraction rate per sweep near the fixed point and sets the SOR optimum
    ``omega = 2/(1 + sqrt(1 - rho))`` (Hageman-Young adaptive SOR; back to 1 if the change
    grows again): ~5x fewer sweeps on head systems.
    """
    restarts = check_positive_int("restarts", restarts, 1)
    seed = check_positive_int("seed", seed, 0)
    max_iter = check_positive_int("max_iter", max_iter, 1)
    tol = check_positive_float("tol", tol)
    energy_tol = check_positive_float("energy_tol", energy_tol)
    overlap_tol = check_positive_float("overlap_tol", overlap_tol)
    if isinstance(omega, str) and omega == "auto":
        om = 0.0
    else:
        try:
            om = float(omega)
        except (TypeError, ValueError):
            om = np.nan
        if not 1.0 <= om < 2.0:
            raise ValueError(f"omega must be 'auto' or a number in [1, 2), got {omega!r}")
    sched = _anneal_schedule(H, anneal)
    red = working_space(H, bool(reduce))
    N, d = H.n_sites, red.d
    S = np.empty((restarts, N, d))
    sidx = np.zeros((restarts, N), np.int64)
    for q in range(restarts):
        S[q], sidx[q] = _initial(H, red, seed, q)
    args = _kernel_args(H, red)
    if sched is not None:
        betas = 1.0 / np.geomspace(sched["T_hi"], sched["T_lo"], sched["sweeps"])
        kern.anneal_batch(S, sidx, *args, betas, np.int64(seed), np.int64(0))
    sweeps, conv, _ = kern.quench_batch(S, sidx, *args, float(tol), np.int64(max_iter), om)

    # energies E = -1/2 sum_k S_k . (phi_k + h_k), in the working basis (exact)
    E = np.empty(restarts)
    for q in range(restarts):
        phi = red.fields(H.W, S[q])
        E[q] = -0.5 * float(np.sum(S[q] * (phi + red.h)))
    best = int(np.argmin(E))
    phi_b = red.fields(H.W, S[best])
    free = ~H.frozen
    scale = float(np.sum(H.lengths[free] * np.linalg.norm(phi_b[free], axis=1)))
    scale = scale if scale > 0 else 1.0

    reps, counts, first = _cluster(H, E, S, sidx, energy_tol * scale, overlap_tol)
    states = np.stack([_lift(H, red, S[r], sidx[r]) for r in reps])
    energies = np.array([H.energy(s) for s in states])
    o = np.argsort(energies, kind="stable")
    return Minima(energies=energies[o], counts=np.asarray(counts)[o], first_restart=np.asarray(first)[o],
                  states=states[o], restart_energies=E, sweeps=sweeps, converged=conv,
                  best_restart=best, scale=scale, energy_tol=energy_tol, working_dim=d,
                  kind=H.spin.name,
                  meta={"anneal": sched if sched is not None else False, "tol": tol,
                        "max_iter": max_iter, "overlap_tol": overlap_tol, "seed": seed,
                        "restarts": restarts, "omega": str(omega)})


# ============================================================================ solve()
@register("ground")
def solve_ground(H: Hamiltonian, T: Any = None, *, restarts: int = 64, seed: int = 0,
                 anneal: Any = False, tol: float = 1e-12, max_iter: int = 100_000,
                 energy_tol: float = 1e-9, overlap_tol: float = 1e-6, reduce: bool = True,
                 omega: Any = "auto", n_modes: int = 0, **ignored: Any) -> Result:
    """Ground state of H by quench from random restarts; T is ignored (zero temperature).

    See :func:`find_minima` for the search options and the module docstring for what the
    Result fields mean at T = 0. ``n_modes > 0`` (O(n) spins) also computes the lowest
    ``n_modes`` excitation energies of the best state (:func:`excitations`) into ``meta``.

    Result: ``ground_energy`` E_0 (total), ``ground_states`` (n_ground, n_sites, n_comp) one
    representative per distinct minimum at E_0, ``ground_degeneracy`` their number,
    ``gap`` the level gap E_1 - E_0 between the two lowest distinct levels of minima (None if one level was
    found), ``excited_degeneracy``; meta: ``minima_energy``, ``minima_count`` (basin counts),
    ``minima_first_restart``, ``best_hit_fraction`` (confidence), ``n_converged``, ...
    """
    unknown = [k for k in ignored if k not in ("backend", "progress")]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for method='ground'; allowed: restarts, seed, "
                         "anneal, tol, max_iter, energy_tol, overlap_tol, reduce, omega, n_modes")
    n_modes = check_positive_int("n_modes", n_modes, 0)
    if n_modes and not isinstance(H.spin, Heisenberg):
        raise ValueError(f"n_modes={n_modes}: excitation modes need heisenberg spins, not {H.spin.name!r}")
    t0 = time.perf_counter()
    mins = find_minima(H, restarts=restarts, seed=seed, anneal=anneal, tol=tol, max_iter=max_iter,
                       energy_tol=energy_tol, overlap_tol=overlap_tol, reduce=reduce, omega=omega)
    levels = mins.levels()
    E0, n0, idx0 = levels[0]
    S0 = mins.states[0]
    free = ~H.frozen
    mvec = S0[free].sum(axis=0) / H.n_free
    nan = np.array([np.nan])
    meta: dict[str, Any] = dict(H.describe())
    meta.update({
        "zero_temperature": True,
        "T_note": "T = 0: energy and magnetization of the best state (error 0); C, chi, binder not computed (NaN)",
        "restarts": int(mins.meta["restarts"]),
        "anneal": mins.meta["anneal"],
        "tol": float(mins.meta["tol"]),
        "omega": mins.meta["omega"],
        "max_iter": int(mins.meta["max_iter"]),
        "energy_tol": float(energy_tol),
        "overlap_tol": float(overlap_tol),
        "energy_scale": mins.scale,
        "working_dim": int(mins.working_dim),
        "n_converged": int(mins.converged.sum()),
        "best_restart": int(mins.best_restart),
        "best_converged": bool(mins.converged[mins.best_restart]),
        "best_hit_fraction": mins.best_hit_fraction,
        "n_minima": int(mins.energies.size),
        "minima_energy": [float(x) for x in mins.energies],
        "minima_count": [int(x) for x in mins.counts],
        "minima_first_restart": [int(x) for x in mins.first_restart],
        "sweeps_max": int(mins.sweeps.max()),
        "sweeps_mean": float(mins.sweeps.mean()),
        "gap_kind": "E_1 - E_0 between the two lowest distinct energy levels of the local minima found",
        "clustering": ("exact configurations" if not isinstance(H.spin, Heisenberg) else
                       "energy within energy_tol*energy_scale and Gram matrix sigma_i.sigma_j within "
                       "overlap_tol (one minimum up to global orthogonal maps)"),
    })
    level_gap = excited_deg = None
    if len(levels) > 1:
        level_gap = levels[1][0] - E0
        excited_deg = levels[1][1]
    if n_modes:
        meta.update(excitations(H, S0, n_modes=n_modes).as_meta())
    meta["wall_s"] = time.perf_counter() - t0
    return Result(
        T=np.array([0.0]), energy=np.array([E0 / H.n_free]), energy_err=np.array([0.0]),
        specific_heat=nan.copy(), specific_heat_err=nan.copy(),
        magnetization=np.array([np.linalg.norm(mvec)]), magnetization_err=np.array([0.0]),
        susceptibility=nan.copy(), susceptibility_err=nan.copy(), binder=nan.copy(),
        binder_err=nan.copy(), method="ground", backend="cpu", seed=int(seed),
        n_sites=H.n_sites, n_free=H.n_free, n_comp=H.n_comp, magnetization_vector=mvec[None, :],
        ground_energy=float(E0), gap=None if level_gap is None else float(level_gap), ground_degeneracy=int(n0),
        excited_degeneracy=excited_deg, ground_states=mins.states[idx0],
        n_sweeps=int(mins.sweeps.max()), n_replicas=int(mins.meta["restarts"]), meta=meta)


