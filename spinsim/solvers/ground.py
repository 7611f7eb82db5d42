"""Ground states, energy gaps and excitation spectra: ``solve(H, method="ground", ...)``.

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
    With ``M = A B^T`` every local field lies in ``V = span(A, B, h_1..h_N)`` (dimension
    d <= 2 r + N), so every fixed point has its free spins in V and the quench runs in d
    dimensions instead of n (768 -> 128 for a head without fields). A uniform start in R^n is
    reproduced exactly: its projection on V is ``g / sqrt(|g|^2 + chi2_{n-d})`` with g ~ N(0,1_d),
    and the fields only ever see that projection; so the search is the R^n quench itself, not
    an approximation. States are lifted back to R^n at the end.

Distinct minima
    Two end states are one minimum when their energies agree within
    ``energy_tol * sum_k m_k |phi_k|`` (the energy scale of the best state) and, for O(n) spins,
    their Gram matrices ``sigma_i . sigma_j`` (all sites) agree to ``overlap_tol`` entrywise:
    the Gram matrix is invariant under every global orthogonal map, so states related by the
    O(n) rotations of an isotropic H (a Goldstone manifold) or by ``S -> -S`` count once.
    Discrete/Ising states are compared exactly (identical configurations; no symmetry
    folding), so their ``ground_degeneracy`` counts states as ``method="exact"`` does.

Gaps
    (a) ``Result.gap``: energy between the two lowest distinct *levels of local minima* found
    (not the exact first excited state of a discrete system: that need not be a local minimum;
    ``meta["gap_kind"]``). (b) :func:`candidate_gaps`: energies of the candidate vectors of a
    single free probe site in the field of the frozen bath, and ``E_B - E_A``.
    (c) :func:`excitations`: the Hessian on the tangent space of the product of spheres.

Zero temperature in a Result
    ``T = [0.0]``; ``energy = [E_0 / n_free]`` and ``magnetization = [|m|]`` of the best state
    (``m = sum_free S_i / n_free``), both with error 0 (they are values of one state, not
    estimates); ``specific_heat``, ``susceptibility``, ``binder`` and their errors are NaN (not
    computed: thermal quantities); ``meta["zero_temperature"] = True``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..hamiltonian import Dense, Discrete, Hamiltonian, Heisenberg, Identity, LowRank
from ..kernels import quench as kern
from ..result import Result
from ..validation import check_positive_int
from . import register

__all__ = ["solve_ground", "find_minima", "Minima", "excitations", "Excitations",
           "candidate_gaps", "CandidateGaps", "local_fields"]

_ANNEAL_KEYS = ("sweeps", "T_hi", "T_lo")


# ============================================================================ helpers
def local_fields(H: Hamiltonian, S: np.ndarray) -> np.ndarray:
    """All local fields ``phi_k = sum_j W_kj M S_j + sum_j W_jk M^T S_j + h_k``: (n_sites, n_comp).

    S (n_sites, n_comp) with lengths. Never densifies a low-rank M (cost O(nnz(W) r + N n r)).
    """
    W = H.W
    WS = W @ S                 # row k: sum_j W_kj S_j
    WtS = W.T @ S              # row k: sum_j W_jk S_j
    Mc = H.M
    if isinstance(Mc, Identity):
        return Mc.J * (WS + WtS) + H.h
    if isinstance(Mc, Dense):
        return WS @ Mc.M.T + WtS @ Mc.M + H.h
    return (WS @ Mc.B) @ Mc.A.T + (WtS @ Mc.A) @ Mc.B.T + H.h


def _orth(X: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n, k) of the column span of X (relative rank tolerance n eps)."""
    if X.size == 0:
        return np.zeros((X.shape[0], 0))
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return np.zeros((X.shape[0], 0))
    keep = s > s[0] * max(X.shape) * np.finfo(float).eps
    return U[:, keep]


def _complete(U: np.ndarray, k: int) -> np.ndarray:
    """Extend the orthonormal columns of U (n, d) to k columns with standard directions."""
    n = U.shape[0]
    cols = [U[:, i] for i in range(U.shape[1])]
    for e in np.eye(n):
        if len(cols) >= k:
            break
        v = e - sum((c @ e) * c for c in cols) if cols else e.copy()
        nv = np.linalg.norm(v)
        if nv > 1e-6:
            cols.append(v / nv)
    return np.stack(cols, axis=1)


@dataclass
class _Work:
    """The problem in the working basis (d dims): kernel arrays + lifting information."""

    mode: int
    J: float
    M: np.ndarray
    A: np.ndarray
    B: np.ndarray
    h: np.ndarray            # (N, d)
    V: np.ndarray            # (K, d) or (0, d)
    basis: np.ndarray | None  # (n, d) orthonormal, None = identity (d = n)
    S_frozen: np.ndarray     # (N, d) frozen spins in the working basis (zeros elsewhere)
    sites: np.ndarray        # (n_free,) int64
    nbr: tuple

    @property
    def d(self) -> int:
        return int(self.h.shape[1])


def _working_form(H: Hamiltonian, reduce: bool) -> _Work:
    n, N = H.n_comp, H.n_sites
    Mc = H.M
    basis = None
    if isinstance(Mc, LowRank) and reduce:
        U = _orth(np.concatenate([Mc.A, Mc.B, H.h.T], axis=1))
        d = max(U.shape[1], min(n, 2))          # O(n) spins need >= 2 working dimensions
        if d < n:
            basis = _complete(U, d) if U.shape[1] < d else U
    one = np.zeros((1, 1))
    if isinstance(Mc, Identity):
        mode, J, M, A, B = kern.MODE_IDENTITY, float(Mc.J), one, one, one
    elif isinstance(Mc, Dense):
        mode, J, M, A, B = kern.MODE_DENSE, 0.0, Mc.M, one, one
    else:
        mode, J, M = kern.MODE_LOWRANK, 0.0, one
        A, B = (Mc.A, Mc.B) if basis is None else (basis.T @ Mc.A, basis.T @ Mc.B)
    h = H.h if basis is None else H.h @ basis
    if isinstance(H.spin, Heisenberg):
        V = np.zeros((0, h.shape[1]))
    else:
        V = H.spin.vectors if basis is None else H.spin.vectors @ basis
    Sf = np.zeros((N, h.shape[1]))
    if H.frozen.any():
        st = H.state if basis is None else H.state @ basis
        Sf[H.frozen] = st[H.frozen]
    ptr, idx, w_out, w_in = H.neighbours()
    return _Work(mode, J, np.ascontiguousarray(M), np.ascontiguousarray(A), np.ascontiguousarray(B),
                 np.ascontiguousarray(h), np.ascontiguousarray(V), basis, Sf,
                 np.flatnonzero(~H.frozen).astype(np.int64), (ptr, idx, w_out, w_in))


def _work_fields(H: Hamiltonian, w: _Work, S: np.ndarray) -> np.ndarray:
    """Local fields in the working basis (N, d); exact (fields only see projections on V)."""
    W = H.W
    if w.mode == kern.MODE_IDENTITY:
        return w.J * (W @ S + W.T @ S) + w.h
    if w.mode == kern.MODE_DENSE:
        return (W @ S) @ w.M.T + (W.T @ S) @ w.M + w.h
    return (W @ (S @ w.B)) @ w.A.T + (W.T @ (S @ w.A)) @ w.B.T + w.h


def _initial(H: Hamiltonian, w: _Work, seed: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Start of restart q: (S (N, d), sidx (N,)) from ``default_rng([seed, q])``."""
    rng = np.random.default_rng([seed, q])
    N, d, n = H.n_sites, w.d, H.n_comp
    sidx = np.zeros(N, np.int64)
    if isinstance(H.spin, Heisenberg):
        g = rng.standard_normal((N, d))
        rest = rng.chisquare(n - d, N) if n > d else np.zeros(N)
        S = g / np.sqrt(np.sum(g * g, axis=1) + rest)[:, None]     # projection of a uniform R^n spin
    else:
        sidx = rng.integers(0, w.V.shape[0], N).astype(np.int64)
        S = w.V[sidx].copy()
    S *= H.lengths[:, None]
    S[H.frozen] = w.S_frozen[H.frozen]
    return S, sidx


def _lift(H: Hamiltonian, w: _Work, S: np.ndarray, sidx: np.ndarray) -> np.ndarray:
    """Working-basis state -> (N, n) state in R^n (frozen sites: exactly ``H.state``)."""
    if isinstance(H.spin, Heisenberg):
        out = S.copy() if w.basis is None else S @ w.basis.T
    else:
        out = H.spin.vectors[sidx] * H.lengths[:, None]
    if H.frozen.any():
        out[H.frozen] = H.state[H.frozen]
    return out


def _check_int(name: str, value: Any, minimum: int) -> int:
    return check_positive_int(name, value, minimum)


def _check_pos(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


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
    out = {"sweeps": _check_int("anneal['sweeps']", anneal.get("sweeps", 200), 1),
           "T_hi": _check_pos("anneal['T_hi']", anneal.get("T_hi", scale)),
           "T_lo": _check_pos("anneal['T_lo']", anneal.get("T_lo", 1e-3 * scale))}
    if out["T_lo"] > out["T_hi"]:
        raise ValueError(f"anneal needs T_lo <= T_hi, got T_lo={out['T_lo']!r} > T_hi={out['T_hi']!r}")
    return out


def _coupling_norm(H: Hamiltonian) -> float:
    """||M||_2 (spectral norm) without densifying a low-rank M."""
    Mc = H.M
    if isinstance(Mc, Identity):
        return abs(Mc.J)
    if isinstance(Mc, Dense):
        return float(np.linalg.norm(Mc.M, 2))
    Ra = np.linalg.qr(Mc.A, mode="r")
    Rb = np.linalg.qr(Mc.B, mode="r")
    return float(np.linalg.norm(Ra @ Rb.T, 2))


def _field_scale(H: Hamiltonian) -> float:
    """Typical single-site energy: mean_free m_k (sum_j (|W_kj|+|W_jk|) m_j ||M|| + |h_k|)."""
    Wa = abs(H.W)
    deg = np.asarray(Wa @ H.lengths).reshape(-1) + np.asarray(Wa.T @ H.lengths).reshape(-1)
    s = H.lengths * (deg * _coupling_norm(H) + np.linalg.norm(H.h, axis=1))
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
    restarts = _check_int("restarts", restarts, 1)
    seed = _check_int("seed", seed, 0)
    max_iter = _check_int("max_iter", max_iter, 1)
    tol = _check_pos("tol", tol)
    energy_tol = _check_pos("energy_tol", energy_tol)
    overlap_tol = _check_pos("overlap_tol", overlap_tol)
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
    w = _working_form(H, bool(reduce))
    N, d = H.n_sites, w.d
    S = np.empty((restarts, N, d))
    sidx = np.zeros((restarts, N), np.int64)
    for q in range(restarts):
        S[q], sidx[q] = _initial(H, w, seed, q)
    ptr, nbr, w_out, w_in = w.nbr
    args = (w.mode, w.J, w.M, w.A, w.B, w.h, H.lengths, w.sites, ptr, nbr, w_out, w_in, w.V)
    if sched is not None:
        betas = 1.0 / np.geomspace(sched["T_hi"], sched["T_lo"], sched["sweeps"])
        kern.anneal_batch(S, sidx, *args, betas, np.int64(seed), np.int64(0))
    sweeps, conv, _ = kern.quench_batch(S, sidx, *args, float(tol), np.int64(max_iter), om)

    # energies E = -1/2 sum_k S_k . (phi_k + h_k), in the working basis (exact)
    E = np.empty(restarts)
    for q in range(restarts):
        phi = _work_fields(H, w, S[q])
        E[q] = -0.5 * float(np.sum(S[q] * (phi + w.h)))
    best = int(np.argmin(E))
    phi_b = _work_fields(H, w, S[best])
    free = ~H.frozen
    scale = float(np.sum(H.lengths[free] * np.linalg.norm(phi_b[free], axis=1)))
    scale = scale if scale > 0 else 1.0
    etol = energy_tol * scale

    # cluster: ascending energy (stable: ties by restart index), greedy against representatives
    order = np.argsort(E, kind="stable")
    heis = isinstance(H.spin, Heisenberg)
    reps: list[int] = []
    keys: list[Any] = []
    counts: list[int] = []
    first: list[int] = []
    for q in order:
        if heis:
            sig = S[q] / H.lengths[:, None]
            key = sig @ sig.T
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
    states = np.stack([_lift(H, w, S[r], sidx[r]) for r in reps])
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
    ``gap`` = E_1 - E_0 between the two lowest distinct levels of minima (None if one level was
    found), ``excited_degeneracy``; meta: ``minima_energy``, ``minima_count`` (basin counts),
    ``minima_first_restart``, ``best_hit_fraction`` (confidence), ``n_converged``, ...
    """
    unknown = [k for k in ignored if k not in ("backend", "progress")]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for method='ground'; allowed: restarts, seed, "
                         "anneal, tol, max_iter, energy_tol, overlap_tol, reduce, omega, n_modes")
    n_modes = _check_int("n_modes", n_modes, 0)
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
    gap = excited_deg = None
    if len(levels) > 1:
        gap = levels[1][0] - E0
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
        ground_energy=float(E0), gap=None if gap is None else float(gap), ground_degeneracy=int(n0),
        excited_degeneracy=excited_deg, ground_states=mins.states[idx0],
        n_sweeps=int(mins.sweeps.max()), n_replicas=int(mins.meta["restarts"]), meta=meta)


# ============================================================================ candidate gaps
@dataclass
class CandidateGaps:
    """Energies of the candidate states of one probe site in the field of the frozen rest.

    ``energies[a]`` (K,) = total energy H with the probe at ``m_k * vectors[a]``;
    ``order`` candidates by ascending energy; ``best`` = A, ``second`` = B;
    ``gap = E_B - E_A >= 0``; ``field`` (n_comp,) the probe's local field phi_k, so that
    ``E_b - E_a = m_k phi_k . (v_a - v_b)`` (the paper's logit gap with the context field
    in the role of N0, SPEC section 0).
    """

    site: int
    energies: np.ndarray
    vectors: np.ndarray
    labels: tuple[str, ...] | None
    order: np.ndarray
    best: int
    second: int
    gap: float
    field: np.ndarray

    def index(self, a: Any) -> int:
        if isinstance(a, str):
            if self.labels is None or a not in self.labels:
                raise ValueError(f"unknown candidate {a!r}; labels: {self.labels}")
            return self.labels.index(a)
        i = int(a)
        if not 0 <= i < self.energies.size:
            raise ValueError(f"candidate index {a!r} out of range 0..{self.energies.size - 1}")
        return i

    def pair_gap(self, a: Any, b: Any) -> float:
        """``E_b - E_a`` for candidates a, b (indices or labels): > 0 when a is favoured."""
        return float(self.energies[self.index(b)] - self.energies[self.index(a)])


def candidate_gaps(H: Hamiltonian, vectors: Any = None, labels: Any = None) -> CandidateGaps:
    """Candidate-token energy gaps of the single free (probe) site of H.

    H must have exactly one free site; the others are frozen at ``H.state``. ``vectors``
    (K, n_comp) unit candidate directions (the probe takes ``m_k v_a``): default the
    vocabulary of a Discrete/Ising H (needed for Heisenberg H). K >= 2. Exact: one local field.
    """
    free = np.flatnonzero(~H.frozen)
    if free.size != 1:
        raise ValueError(f"candidate_gaps needs exactly one free (probe) site, H has {free.size}")
    k = int(free[0])
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
    S = np.array(H.state, dtype=np.float64) if H.state is not None else np.zeros((H.n_sites, H.n_comp))
    m = H.lengths[k]
    S[k] = m * V[0]
    E_ref = H.energy(S)
    phi = H.local_field(S, k)          # independent of S_k (W_kk = 0)
    E = E_ref - m * (V - V[0]) @ phi
    order = np.argsort(E, kind="stable")
    return CandidateGaps(site=k, energies=E, vectors=V, labels=labels, order=order,
                         best=int(order[0]), second=int(order[1]),
                         gap=float(E[order[1]] - E[order[0]]), field=phi)


# ============================================================================ excitations
@dataclass
class Excitations:
    """Harmonic excitations around a stationary state of O(n) spins (see :func:`excitations`).

    eigenvalues (n_modes,) the lowest Hessian eigenvalues, ascending, energy units per
    radian^2 (``E = E_0 + 1/2 sum lambda theta^2`` along each normal mode); n_zero_modes
    (|lambda| <= zero_tol, the Goldstone count); n_negative_modes (lambda < -zero_tol: not a
    minimum); spin_wave_gap: the smallest eigenvalue > zero_tol (NaN if not resolved);
    zero_tol = zero_rtol * scale, scale = spectral radius of the Hessian; complete: whether the
    counts cover the whole spectrum; flat_eigenvalues (n_free,) ``m_k phi_k . sigma_k`` with
    flat_multiplicity each (modes orthogonal to span(A, B, sigma_k), analytically known);
    n_tangent = n_free (n - 1); n_reduced the dimension diagonalised; max_torque
    ``max_k |phi_k - (phi_k.sigma_k) sigma_k| / max_k |phi_k|`` (0 at a stationary point).
    """

    eigenvalues: np.ndarray
    n_zero_modes: int
    n_negative_modes: int
    spin_wave_gap: float
    zero_tol: float
    scale: float
    complete: bool
    flat_eigenvalues: np.ndarray
    flat_multiplicity: int
    n_tangent: int
    n_reduced: int
    max_torque: float
    method: str

    @property
    def is_minimum(self) -> bool:
        return self.n_negative_modes == 0

    def as_meta(self) -> dict[str, Any]:
        """Plain values for ``Result.meta`` / HDF5 attributes."""
        return {"modes_eigenvalues": [float(x) for x in self.eigenvalues],
                "n_zero_modes": int(self.n_zero_modes), "n_negative_modes": int(self.n_negative_modes),
                "spin_wave_gap": float(self.spin_wave_gap), "modes_zero_tol": float(self.zero_tol),
                "modes_scale": float(self.scale), "modes_complete": bool(self.complete),
                "modes_method": self.method, "modes_max_torque": float(self.max_torque),
                "modes_n_tangent": int(self.n_tangent), "modes_n_reduced": int(self.n_reduced)}


def _coupling_factors(H: Hamiltonian) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) with M = A B^T: Identity -> (J 1, 1), Dense -> (M, 1), LowRank -> (A, B)."""
    Mc = H.M
    n = H.n_comp
    if isinstance(Mc, Identity):
        return Mc.J * np.eye(n), np.eye(n)
    if isinstance(Mc, Dense):
        return Mc.M, np.eye(n)
    return Mc.A, Mc.B


def excitations(H: Hamiltonian, S: Any = None, n_modes: int = 16, zero_rtol: float = 1e-6,
                method: str = "auto", dense_max: int = 2500) -> Excitations:
    """Hessian of H on the tangent space of the product of spheres at the state S (O(n) spins).

    Derivation. Write ``S_k = m_k (sigma_k cos|t_k| + t_k/|t_k| sin|t_k|)`` with the tangent
    angle vector ``t_k`` orthogonal to sigma_k, so ``S_k = m_k sigma_k (1 - |t_k|^2/2) + m_k t_k
    + O(t^3)``. H is quadratic, ``dH = -sum_k phi_k . dS_k - sum_{i!=j} W_ij dS_i^T M dS_j``;
    at a stationary point (phi_k parallel to sigma_k) the linear term leaves only the curvature
    piece ``+ sum_k m_k (phi_k.sigma_k) |t_k|^2 / 2``, hence ``E = E_0 + 1/2 t^T K t`` with
        K_kk = m_k (phi_k . sigma_k) 1_tangent,
        K_kl = -m_k m_l P_k (W_kl M + W_lk M^T) P_l   (k != l, P_k = 1 - sigma_k sigma_k^T).
    Frozen sites have no tangent space (they enter through phi).

    Reduction. With ``M = A B^T`` and U an orthonormal basis of span(A, B) (u columns), a
    tangent vector of site k orthogonal to U does not couple (``t^T M t' = (A^T t).(B^T t')``),
    so for ``u + 1 < n`` each site contributes ``n - 1 - u`` flat modes of eigenvalue
    ``m_k phi_k . sigma_k`` (analytic) and u modes in ``s_k^perp`` inside ``span(U, e_k)``,
    e_k the unit part of sigma_k orthogonal to U. The reduced matrix (n_free u) is
    diagonalised densely (``eigvalsh``) when ``n_free u <= dense_max`` (or method="dense"),
    otherwise its lowest n_modes come from ARPACK (``eigsh``, which="SA") with a matrix-free
    O(n_free u r + nnz(W) r) product. Identity/Dense couplings use R^n (no flat modes).

    Zero modes: ``|lambda| <= zero_rtol * scale``, scale = spectral radius of K (largest
    |lambda|, including flat modes). Goldstone counts to expect: isotropic ferro (aligned) on a
    connected graph: n - 1; coplanar non-collinear (XY / 120-degree) state with isotropic M:
    2n - 3 (= dim O(n) - dim O(n-2)). Parameters: S (n_sites, n_comp) with lengths (default
    ``H.state``); n_modes >= 1; method "auto" | "dense" | "eigsh".
    """
    if not isinstance(H.spin, Heisenberg):
        raise ValueError(f"excitations need heisenberg spins; {H.spin.name!r} spins have no tangent "
                         "space (use method='exact' for their gaps)")
    n_modes = _check_int("n_modes", n_modes, 1)
    zero_rtol = _check_pos("zero_rtol", zero_rtol)
    if method not in ("auto", "dense", "eigsh"):
        raise ValueError(f"unknown method {method!r}; allowed: 'auto', 'dense', 'eigsh'")
    if S is None:
        if H.state is None:
            raise ValueError("excitations need a state S (n_sites, n_comp); H has no state")
        S = H.state
    S = np.asarray(S, dtype=np.float64)
    if S.shape != (H.n_sites, H.n_comp):
        raise ValueError(f"S must have shape ({H.n_sites}, {H.n_comp}), got {S.shape}")
    H.check_state(S)
    n = H.n_comp
    free = np.flatnonzero(~H.frozen)
    Nf = free.size
    m = H.lengths[free]
    phi_all = local_fields(H, S)
    sigma = (S / H.lengths[:, None])[free]
    sigma /= np.linalg.norm(sigma, axis=1, keepdims=True)
    phi = phi_all[free]
    c = np.sum(phi * sigma, axis=1)
    diag = m * c
    pmax = float(np.max(np.linalg.norm(phi, axis=1)))
    torque = float(np.max(np.linalg.norm(phi - c[:, None] * sigma, axis=1)) / pmax) if pmax > 0 else 0.0

    A0, B0 = _coupling_factors(H)
    U = _orth(np.concatenate([A0, B0], axis=1)) if isinstance(H.M, LowRank) else None
    if U is not None and U.shape[1] + 1 < n:
        u = U.shape[1]
        alpha = sigma @ U
        beta = np.linalg.norm(sigma - alpha @ U.T, axis=1)
        s = np.concatenate([alpha, beta[:, None]], axis=1)
        At = np.vstack([U.T @ A0, np.zeros((1, A0.shape[1]))])
        Bt = np.vstack([U.T @ B0, np.zeros((1, B0.shape[1]))])
        n_flat = n - 1 - u
    else:
        s, At, Bt, n_flat = sigma, A0, B0, 0
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    dim = s.shape[1]
    dt = dim - 1
    # Householder: H_k = 1 - 2 w w^T / w.w maps s_k to -+e_last; its other columns span s_k^perp
    sg = np.where(s[:, -1] >= 0, 1.0, -1.0)
    wv = s.copy()
    wv[:, -1] += sg
    ww = np.sum(wv * wv, axis=1)

    def tangent_T(X: np.ndarray) -> np.ndarray:      # (dim, r) -> (Nf, dt, r): T_k^T X
        wX = wv @ X
        out = X[None, :, :] - (2.0 / ww)[:, None, None] * wv[:, :, None] * wX[:, None, :]
        return out[:, :-1, :]

    F = tangent_T(At)          # A^T t for the tangent basis of each site
    G = tangent_T(Bt)          # B^T t
    Wf = H.W[free][:, free] if sp.issparse(H.W) else H.W[np.ix_(free, free)]
    Wm = (sp.diags(m) @ Wf @ sp.diags(m)).tocsr() if sp.issparse(Wf) else m[:, None] * Wf * m[None, :]
    nred = Nf * dt
    use_dense = method == "dense" or (method == "auto" and nred <= dense_max)
    flat_max = float(np.max(np.abs(diag))) if n_flat else 0.0
    if nred == 0:
        lam = np.zeros(0)
        method_used, complete, lam_max = "none", True, 0.0
    elif use_dense:
        Wd = Wm.toarray() if sp.issparse(Wm) else Wm
        Fs = F.reshape(nred, -1)
        Gs = G.reshape(nred, -1)
        X = -(Fs @ Gs.T).reshape(Nf, dt, Nf, dt) * Wd[:, None, :, None]
        K = (X + X.transpose(2, 3, 0, 1)).reshape(nred, nred)
        K[np.diag_indices(nred)] += np.repeat(diag, dt)
        lam = np.linalg.eigvalsh(K)
        method_used, complete = "dense", True
        lam_max = float(np.max(np.abs(lam)))
    else:
        WmT = Wm.T.tocsr() if sp.issparse(Wm) else Wm.T

        def matvec(x: np.ndarray) -> np.ndarray:
            x = x.reshape(Nf, dt)
            g = np.einsum("kar,ka->kr", G, x)
            f = np.einsum("kar,ka->kr", F, x)
            a = Wm @ g
            b = WmT @ f
            y = diag[:, None] * x - np.einsum("kar,kr->ka", F, a) - np.einsum("kar,kr->ka", G, b)
            return y.reshape(-1)

        op = spla.LinearOperator((nred, nred), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(nred)
        kk = min(n_modes, nred - 1)
        ncv = min(nred, max(2 * kk + 1, 40))
        lam = np.sort(spla.eigsh(op, k=kk, which="SA", v0=v0, ncv=ncv, tol=0, return_eigenvectors=False))
        top = spla.eigsh(op, k=1, which="LM", v0=v0, tol=1e-8, return_eigenvectors=False)
        lam_max = float(max(np.max(np.abs(top)), np.max(np.abs(lam))))
        method_used, complete = "eigsh", False
    scale = max(lam_max, flat_max)
    scale = scale if scale > 0 else 1.0
    zt = zero_rtol * scale
    flat_vals = np.repeat(diag, min(n_flat, n_modes)) if n_flat else np.zeros(0)
    merged = np.sort(np.concatenate([lam, flat_vals]))[:n_modes]
    n_zero = int(np.sum(np.abs(lam) <= zt) + n_flat * np.sum(np.abs(diag) <= zt))
    n_neg = int(np.sum(lam < -zt) + n_flat * np.sum(diag < -zt))
    if not complete and lam.size and lam[-1] > zt:
        complete = True          # the lowest eigenvalues include the first positive one
    pos = np.concatenate([lam[lam > zt], diag[diag > zt] if n_flat else np.zeros(0)])
    gap = float(np.min(pos)) if (complete and pos.size) else float("nan")
    return Excitations(eigenvalues=merged, n_zero_modes=n_zero, n_negative_modes=n_neg,
                       spin_wave_gap=gap, zero_tol=zt, scale=scale, complete=complete,
                       flat_eigenvalues=diag, flat_multiplicity=n_flat, n_tangent=Nf * (n - 1),
                       n_reduced=nred, max_torque=torque, method=method_used)
