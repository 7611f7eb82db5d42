"""Exact enumeration: ``solve(H, T, method="exact", ...)`` for Ising and discrete spins.

``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i`` (k_B = 1). Only the free sites are
enumerated; frozen sites keep ``H.state``. Energies are *total* energies of H (frozen-frozen
pairs and fields on frozen sites included), so ``Result.ground_energy == H.energy(ground_state)``;
the per-site observables divide by the number of free sites (see :mod:`spinsim.result`).

How the states are visited (kernels in :mod:`spinsim.kernels.enumerate`):

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
``1e-9 * scale``, ``scale = |E_c| + sum |coupling terms| + sum |field terms|`` (an upper bound
of |E|). With lattice energies levels are exact integers and no tolerance is needed.

Density of states (``Result.dos_energy``, ``dos_count``): the exact distinct levels and their
counts when the energies lie on a lattice; otherwise a histogram of ``dos_bins`` equal bins
between E_0 and E_max (``dos_energy`` = bin centres). ``meta["dos"]`` says which.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..hamiltonian import Dense, Hamiltonian, Heisenberg, Identity, Ising
from ..kernels import enumerate as kern
from ..result import Result
from . import register
from .mc import _direction   # the one definition of projection directions (shared with mc)

__all__ = ["solve_exact", "MAX_STATES_ISING", "MAX_STATES_DISCRETE", "DEGENERACY_RTOL"]

MAX_STATES_ISING = 2 ** 30
MAX_STATES_DISCRETE = 10 ** 8
DEGENERACY_RTOL = 1e-9
_HIST_CAP = 1 << 24        # entries of per-chunk level tables (memory bound)
_MAX_LEVELS = 1 << 20      # exact DOS levels for real-valued (discrete) enumeration
_TABLE_CAP = 1 << 22       # K^2 above this: pair energies from factors, not a table
_N_CHUNKS = 8              # fixed, so results do not depend on the number of threads
_LEAF_STATES = 1024        # discrete: states of the leaf block summed in the inner loop


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
    projection (if a direction), ground energy E_0 (total), gap E_1 - E_0 (None when every
    state has the same energy), degeneracies, ground states and the density of states. All
    ``*_err`` arrays are zero.
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
    U, u_label = _direction(H, direction)
    t0 = time.perf_counter()
    prob = _free_problem(H, U)
    if ising:
        out = _solve_ising(H, T, prob, int(dos_bins), int(max_ground_states))
    else:
        out = _solve_discrete(H, T, prob, int(dos_bins), int(max_ground_states))
    elapsed = time.perf_counter() - t0
    out["meta"].update({
        "n_states": int(n_states), "elapsed_s": round(elapsed, 6),
        "states_per_s": float(n_states / max(elapsed, 1e-12)),
        "degeneracy_rtol": DEGENERACY_RTOL,
        "energy_convention": "total energy of H (frozen sites included); per-site values / n_free",
        "log_Z_measure": "counting measure over the states of the free sites",
    })
    if ignored:
        out["meta"]["ignored_options"] = sorted(ignored)
    if u_label is not None:
        out["meta"]["projection_direction"] = u_label
    return _assemble(H, T, out, u_label is not None)


# ----------------------------------------------------------------------------- shared set-up
def _apply_M(H: Hamiltonian, X: np.ndarray, transpose: bool) -> np.ndarray:
    """Rows of X mapped by M^T (transpose=False: row i -> (M x_i)^T = x_i M^T) or by M."""
    M = H.M
    if isinstance(M, Identity):
        return M.J * X
    if isinstance(M, Dense):
        return X @ (M.M if transpose else M.M.T)
    return (X @ M.A) @ M.B.T if transpose else (X @ M.B) @ M.A.T


def _fields(H: Hamiltonian, S: np.ndarray) -> np.ndarray:
    """phi for every site: ``Phi = W S M^T + W^T S M + h`` (n_sites, n_comp)."""
    W = H.W
    return np.asarray(W @ _apply_M(H, S, False)) + np.asarray(W.T @ _apply_M(H, S, True)) + H.h


def _free_problem(H: Hamiltonian, U: np.ndarray) -> dict[str, Any]:
    free = np.flatnonzero(~H.frozen)
    S0 = H.state.copy() if H.state is not None else np.zeros((H.n_sites, H.n_comp))
    S0[free] = 0.0
    Wd = H.W
    Wff = (Wd[free][:, free] if sp.issparse(Wd) else sp.csr_matrix(Wd[np.ix_(free, free)]))
    return dict(free=free, S0=S0, const=float(H.energy(S0)), phi0=_fields(H, S0)[free],
                Wff=sp.csr_matrix(Wff), mlen=H.lengths[free].copy(), U=U[free])


def _block_layout(n: int) -> tuple[int, int, int]:
    """(n_low, block_bits, n_chunks) for the Ising kernels: up to 8 low spins summed in the
    vectorised inner loop, the rest in Gray-code blocks shared among at most _N_CHUNKS chunks."""
    n_low = min(n, 8)
    nh = n - n_low
    bb = nh if nh <= 3 else min(14, nh - 3)
    return n_low, bb, min(_N_CHUNKS, 1 << (nh - bb))


def _quantum(values: np.ndarray, max_den: int = 1000) -> float | None:
    """Largest q = vmin/d (d <= max_den) with every value an integer multiple of q to within
    64 ulp of the largest value (values below 1e-12 of the largest count as round-off zeros);
    1.0 when all values are zero; None when there is none."""
    v = np.unique(np.abs(np.asarray(values, dtype=np.float64).ravel()))
    if v.size == 0 or v[-1] == 0:
        return 1.0
    v = v[v > 1e-12 * v[-1]]            # round-off noise of values that are zero
    if v.size == 0:
        return 1.0
    vmin = v[0]
    tol = 64 * np.finfo(float).eps * v[-1]
    probe = v[np.linspace(0, v.size - 1, min(v.size, 64)).astype(int)]   # cheap first screen
    for d in range(1, max_den + 1):
        q = vmin / d
        for vals in (probe, v):
            r = vals / q
            if not np.all(np.abs(r - np.rint(r)) * q <= max(tol, 64 * np.finfo(float).eps * q)):
                break
        else:
            return float(q)
    return None


def _merge_tracks(stats: np.ndarray, codes: np.ndarray, tol: float, cap: int
                  ) -> tuple[float, int, float | None, int, float, float, np.ndarray]:
    """Combine per-chunk [e0, n0, e1, n1, emin, emax] into global E0, n0, E1, n1, range, codes."""
    cands = []
    for st in stats:
        if st[1] > 0:
            cands.append((st[0], st[1]))
        if st[3] > 0:
            cands.append((st[2], st[3]))
    cands.sort()
    levels: list[list[float]] = []
    for e, c in cands:
        if levels and e <= levels[-1][0] + tol:
            levels[-1][1] += c
        else:
            levels.append([e, c])
    E0, n0 = levels[0]
    E1, n1 = (levels[1] if len(levels) > 1 else (None, 0))
    keep = []
    for c, st in enumerate(stats):
        if st[1] > 0 and st[0] <= E0 + tol:
            keep.extend(codes[c, :int(min(st[1], cap))].tolist())
    return (float(E0), int(n0), None if E1 is None else float(E1), int(n1),
            float(stats[:, 4].min()), float(stats[:, 5].max()), np.asarray(keep[:cap], dtype=np.int64))


def _dos_layout(E0: float, Emax: float, q: float | None, n_bins: int
                ) -> tuple[float, float, float, int, bool]:
    """(lo, inv_w, off, n_bins, exact) for the kernels' ``floor((E - lo) inv_w + off)``."""
    if q is not None:
        n_lev = int(round((Emax - E0) / q)) + 1
        if n_lev <= _MAX_LEVELS:
            return E0, 1.0 / q, 0.5, n_lev, True
    if Emax > E0:
        return E0, n_bins / (Emax - E0), 0.0, n_bins, False
    return E0, 0.0, 0.0, 1, False


def _dos_from_hist(hist: np.ndarray, E0: float, Emax: float, inv_w: float, exact: bool,
                   q: float | None, n_bins: int) -> tuple[np.ndarray, np.ndarray, str]:
    if exact:
        lev = np.flatnonzero(hist)
        return E0 + q * lev, hist[lev].astype(np.float64), (
            f"exact distinct levels (energies on a lattice of spacing q={q:.12g})")
    if inv_w == 0.0:
        return np.array([E0]), hist.astype(np.float64), "one level (every state has the same energy)"
    width = (Emax - E0) / n_bins
    centres = E0 + (np.arange(n_bins) + 0.5) * width
    return centres, hist.astype(np.float64), (
        f"histogram: {n_bins} equal bins of width {width:.6g} from E_0 to E_max; "
        "dos_energy are bin centres (energies not on a lattice)")


# ----------------------------------------------------------------------------- Ising
def _solve_ising(H: Hamiltonian, T: np.ndarray, prob: dict[str, Any], n_bins: int, cap: int
                 ) -> dict[str, Any]:
    n = H.n_free
    mlen = prob["mlen"]
    Mval = float(H.M_dense[0, 0])
    b = mlen * prob["phi0"][:, 0]
    Us = (prob["Wff"] + prob["Wff"].T).tocsr()
    Us.sum_duplicates()
    Us.sort_indices()
    rows = np.repeat(np.arange(n), np.diff(Us.indptr))
    Kv = Us.data * Mval * mlen[rows] * mlen[Us.indices]
    keep = Kv != 0
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=n))]).astype(np.int64)
    nbr = Us.indices[keep].astype(np.int64)
    Kv = Kv[keep]
    uw = mlen * prob["U"][:, 0]
    const = prob["const"]
    scale = abs(const) + 0.5 * np.abs(Kv).sum() + np.abs(b).sum()
    tol = DEGENERACY_RTOL * scale
    n_low, bb, n_chunks = _block_layout(n)
    q = q_lat = _quantum(np.concatenate([Kv, b]))
    meta: dict[str, Any] = {}
    if q is not None:
        Ki = np.rint(Kv / q).astype(np.int64)
        bi = np.rint(b / q).astype(np.int64)
        e_max = int(np.abs(Ki).sum() // 2 + np.abs(bi).sum())
        n_e = 2 * e_max + 1
        uniform_len = np.all(mlen == mlen[0])
        u_common = np.all(prob["U"][:, 0] == prob["U"][0, 0])
        if uniform_len and u_common and n_e * (n + 1) * n_chunks <= _HIST_CAP:
            hist, gmin, gcnt, gcodes = kern.ising_joint_levels(ptr, nbr, Ki, bi, e_max, n_e, n_low,
                                                               bb, n_chunks, cap)
            Mvals = mlen[0] * (2.0 * np.arange(n + 1) - n) / n      # m for column j
            u0 = prob["U"][0, 0]
            lv = np.stack([hist.sum(1), hist @ np.abs(Mvals), hist @ Mvals ** 2, hist @ Mvals ** 4,
                           hist @ Mvals, u0 * (hist @ Mvals), u0 ** 2 * (hist @ Mvals ** 2)], axis=1)
            meta["enumeration"] = "gray code, integer energies, joint (E, M) histogram"
        elif n_e * 7 * n_chunks <= _HIST_CAP:
            lv, gmin, gcnt, gcodes = kern.ising_levels(ptr, nbr, Ki, bi, mlen, uw, e_max, n_e, n_low,
                                                       bb, n_chunks, cap)
            meta["enumeration"] = "gray code, integer energies, per-level moments"
        else:
            q = None
    if q is not None:
        lev = np.flatnonzero(lv[:, 0] > 0)
        E_lev = const + q * (lev - e_max).astype(np.float64)
        lv = lv[lev]
        acc, var = _levels_to_sums(E_lev - E_lev[0], lv, 1.0 / T)
        E0 = float(E_lev[0])
        g = int(np.min(gmin))
        codes = np.concatenate([gcodes[c, :min(int(gcnt[c]), cap)] for c in range(n_chunks) if gmin[c] == g])
        out = dict(E0=E0, n0=int(lv[0, 0]), E1=float(E_lev[1]) if lev.size > 1 else None,
                   n1=int(lv[1, 0]) if lev.size > 1 else 0, acc=acc, var=var,
                   dos_energy=E_lev, dos_count=lv[:, 0].copy(),
                   mvec=(acc[:, 6] / acc[:, 0])[:, None])
        meta["dos"] = f"exact distinct levels (energies on a lattice of spacing q={q:.12g})"
        meta["energy_quantum"] = q
    else:
        stats, gcodes = kern.ising_float_pass1(ptr, nbr, Kv, b, tol, n_low, bb, n_chunks, cap)
        E0r, n0, E1r, n1, emin, emax, codes = _merge_tracks(stats, gcodes, tol, cap)
        lo, inv_w, off, nb, exact = _dos_layout(E0r, emax, q_lat, n_bins)
        acc, hist = kern.ising_float_pass2(ptr, nbr, Kv, b, mlen, uw, E0r, 1.0 / T, lo, inv_w, off,
                                           nb, n_low, bb, n_chunks)
        dE, dC, meta["dos"] = _dos_from_hist(hist, E0r, emax, inv_w, exact, q_lat, nb)
        out = dict(E0=E0r + const, n0=n0, E1=None if E1r is None else E1r + const, n1=n1, acc=acc,
                   var=None, dos_energy=dE + const, dos_count=dC,
                   mvec=(acc[:, 6] / acc[:, 0])[:, None])
        meta["enumeration"] = "gray code, real energies, two passes"
        meta["degeneracy_tolerance"] = tol
    S_g = np.empty((codes.size, H.n_sites, 1))
    for r, bits in enumerate(codes.astype(np.int64)):
        sigma = 1.0 - 2.0 * ((int(bits) >> np.arange(n)) & 1)
        S = prob["S0"].copy()
        S[prob["free"], 0] = mlen * sigma
        S_g[r] = S
    out["ground_states"] = S_g
    out["meta"] = meta
    return out


def _levels_to_sums(x: np.ndarray, lv: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boltzmann sums (n_T, N_ACC) from per-level moments lv (n_L, 7) at x = E - E0 >= 0,
    and the exact energy variance (two-pass over the levels)."""
    w = np.exp(-np.outer(beta, x))                  # (n_T, n_L)
    cnt = lv[:, 0]
    acc = np.empty((beta.size, kern.N_ACC))
    acc[:, 0] = w @ cnt
    acc[:, 1] = w @ (cnt * x)
    acc[:, 2] = w @ (cnt * x * x)
    acc[:, 3:9] = w @ lv[:, 1:7]
    xbar = acc[:, 1] / acc[:, 0]
    var = np.einsum("tl,l,tl->t", w, cnt, (x[None, :] - xbar[:, None]) ** 2) / acc[:, 0]
    return acc, var


# ----------------------------------------------------------------------------- discrete
def _solve_discrete(H: Hamiltonian, T: np.ndarray, prob: dict[str, Any], n_bins: int, cap: int
                    ) -> dict[str, Any]:
    n = H.n_free
    V = np.ascontiguousarray(H.spin.vectors)
    K, n_comp = V.shape
    mlen, const, phi0 = prob["mlen"], prob["const"], prob["phi0"]
    uV = np.ascontiguousarray(prob["U"] @ V.T)                     # (n, K): u_i . V_a
    site = mlen[:, None] * (phi0 @ V.T)                             # (n, K) field gains
    meta: dict[str, Any] = {}
    if n == 1:
        return _solve_probe(H, T, prob, V, site[0], uV[0], n_bins, cap)
    vmax = float(np.sqrt(np.max(np.einsum("ac,ac->a", V, V))))

    # pair-energy table G[b, a] = V_b^T M V_a, or its factors
    if isinstance(H.M, Identity):
        X, Y = V, H.M.J * V
    elif isinstance(H.M, Dense):
        X, Y = V, V @ H.M.M.T
    else:
        X, Y = V @ H.M.A, V @ H.M.B
    X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
    use_table = K * K <= _TABLE_CAP
    dummy = np.zeros((1, 1))
    if use_table:
        G = np.ascontiguousarray(X @ Y.T)
        GT = np.ascontiguousarray(G.T)
        gmax = float(np.abs(G).max())
    else:
        G = GT = dummy
        gmax = vmax ** 2 * float(np.linalg.norm(H.M_dense, 2))
    sub = Hamiltonian(prob["Wff"], M=H.M, spin=H.spin)
    ptr, nbr, w_out, w_in = sub.neighbours()
    Wabs = abs(prob["Wff"])
    scale = (abs(const) + float(np.abs(site).max(axis=1).sum())
             + gmax * float((Wabs.multiply(np.outer(mlen, mlen))).sum()))
    tol = DEGENERACY_RTOL * scale

    # leaf block: the nb first free sites, K^nb <= _LEAF_STATES states summed per outer state
    nb = 1
    while nb < n and K ** (nb + 1) <= _LEAF_STATES:
        nb += 1
    LB = K ** nb
    D = (np.arange(LB)[:, None] // K ** np.arange(nb)[None, :]) % K        # (LB, nb) digits a_l(c)
    Wd = prob["Wff"].toarray() if nb > 1 else np.zeros((1, 1))
    Ebb = np.zeros(LB)
    for l in range(nb):
        for l2 in range(nb):
            w = Wd[l, l2] * mlen[l] * mlen[l2]
            if l != l2 and w != 0:
                g = G[D[:, l], D[:, l2]] if use_table else np.einsum("cq,cq->c", X[D[:, l]], Y[D[:, l2]])
                Ebb -= w * g
    Mb = np.ascontiguousarray(np.einsum("l,clq->cq", mlen[:nb], V[D]))
    Ub = (mlen[:nb][None, :] * uV[np.arange(nb)[None, :], D]).sum(axis=1)

    # base state: every outer site in state 0, the leaf block removed
    S_free = mlen[:, None] * V[0][None, :]
    S_free[:nb] = 0.0
    S_full = prob["S0"].copy()
    S_full[prob["free"]] = S_free
    Eo_base = float(H.energy(S_full))
    Wff = prob["Wff"]
    Phi = np.asarray(Wff @ _apply_M(H, S_free, False)) + np.asarray(Wff.T @ _apply_M(H, S_free, True)) + phi0
    psi_base = np.ascontiguousarray(mlen[:, None] * (Phi @ V.T))
    Mo_base = S_free.sum(axis=0)
    n_outer = K ** (n - nb)
    n_chunks = int(min(_N_CHUNKS, n_outer))
    Xk, Yk = (dummy, dummy) if use_table else (X, Y)
    beta = 1.0 / T
    common = (nb, psi_base, Eo_base, Mo_base, Ebb, Mb, Ub, ptr, nbr, w_out, w_in, mlen, V, uV, G, GT,
              Xk, Yk, use_table, tol, cap)
    stats, gcodes = kern.discrete_pass(1, *common, 0.0, beta, 0.0, 0.0, 0.0, 1, n_chunks)[:2]
    E0, n0, E1, n1, emin, emax, codes = _merge_tracks(stats, gcodes, tol, cap)
    q = _discrete_quantum(site, G if use_table else None, prob["Wff"], mlen)
    lo, inv_w, off, n_b, exact = _dos_layout(E0, emax, q, n_bins)
    _, _, acc, marg, wb, hist = kern.discrete_pass(2, *common, E0, beta, lo, inv_w, off, n_b, n_chunks)
    dE, dC, meta["dos"] = _dos_from_hist(hist, E0, emax, inv_w, exact, q, n_b)
    if exact:
        meta["energy_quantum"] = q
    meta["enumeration"] = (f"odometer over {n - nb} outer sites, leaf block of {nb} sites vectorised over "
                           f"{LB} states; pair energies from a {'table' if use_table else 'factorisation'}")
    meta["degeneracy_tolerance"] = tol
    wbr = wb.reshape((T.size,) + (K,) * nb)             # axis 1 + nb - 1 - l holds a_l
    for l in range(nb):
        ax = tuple(1 + i for i in range(nb) if i != nb - 1 - l)
        marg[:, l, :] = wbr.sum(axis=ax) if ax else wbr
    mvec = np.einsum("tia,i,ac->tc", marg, mlen, V) / (n * acc[:, 0][:, None])
    S_g = np.empty((codes.size, H.n_sites, n_comp))
    for r, code in enumerate(codes):
        digits = (int(code) // K ** np.arange(n)) % K
        S = prob["S0"].copy()
        S[prob["free"]] = mlen[:, None] * V[digits]
        S_g[r] = S
    return dict(E0=E0, n0=n0, E1=E1, n1=n1, acc=acc, var=None, dos_energy=dE, dos_count=dC, mvec=mvec,
                ground_states=S_g, meta=meta)


def _discrete_quantum(site: np.ndarray, G: np.ndarray | None, Wff: sp.csr_matrix,
                      mlen: np.ndarray) -> float | None:
    """Common quantum of every energy difference (site terms relative to state 0, pair terms
    relative to (0, 0)); None when there is none or the check would be too large."""
    vals = [(site - site[:, :1]).ravel()]
    C = sp.coo_matrix(Wff)
    if C.nnz:
        if G is None:
            return None
        Wc = sp.csr_matrix(Wff)
        pairs = {(min(i, j), max(i, j)) for i, j in zip(C.row.tolist(), C.col.tolist())}
        combos = {(mlen[a] * mlen[b] * Wc[a, b], mlen[a] * mlen[b] * Wc[b, a]) for a, b in pairs}
        if len(combos) * G.size > 10 ** 7:
            return None
        G0 = G - G[0, 0]
        vals += [(c1 * G0 + c2 * G0.T).ravel() for c1, c2 in combos]
    return _quantum(np.concatenate(vals))


def _solve_probe(H: Hamiltonian, T: np.ndarray, prob: dict[str, Any], V: np.ndarray, gain: np.ndarray,
                 uV: np.ndarray, n_bins: int, cap: int) -> dict[str, Any]:
    """One free discrete site: E_a = E_c - m V_a . phi (vectorised over the K states)."""
    const = prob["const"]
    m0 = prob["mlen"][0]
    E = const - gain
    scale = abs(const) + float(np.abs(gain).max())
    tol = DEGENERACY_RTOL * scale
    order = np.argsort(E, kind="stable")
    E0 = float(E[order[0]])
    is0 = E <= E0 + tol
    n0 = int(is0.sum())
    rest = E[~is0]
    E1 = float(rest.min()) if rest.size else None
    n1 = int(np.sum(np.abs(rest - E1) <= tol)) if rest.size else 0
    x = E - E0
    am = m0 * np.sqrt(np.einsum("ac,ac->a", V, V))
    mu = m0 * uV
    beta = 1.0 / T
    acc = np.zeros((T.size, kern.N_ACC))
    var = np.empty(T.size)
    mvec = np.empty((T.size, V.shape[1]))
    for t0 in range(0, T.size, 16):
        w = np.exp(-np.outer(beta[t0:t0 + 16], x))            # (t, K)
        Z = w.sum(1)
        a = acc[t0:t0 + 16]
        a[:, 0] = Z
        a[:, 1] = w @ x
        a[:, 2] = w @ (x * x)
        a[:, 3] = w @ am
        a[:, 4] = w @ am ** 2
        a[:, 5] = w @ am ** 4
        a[:, 7] = w @ mu
        a[:, 8] = w @ mu ** 2
        xbar = a[:, 1] / Z
        var[t0:t0 + 16] = np.einsum("tk,tk->t", w, (x[None, :] - xbar[:, None]) ** 2) / Z
        mvec[t0:t0 + 16] = m0 * (w @ V) / Z[:, None]
    q = _quantum(gain - gain[0])
    Emax = float(E.max())
    lo, inv_w, off, nb, exact = _dos_layout(E0, Emax, q, n_bins)
    idx = np.clip(np.floor((E - lo) * inv_w + off).astype(np.int64), 0, nb - 1)
    hist = np.bincount(idx, minlength=nb)
    dE, dC, dos_note = _dos_from_hist(hist, E0, Emax, inv_w, exact, q, nb)
    ground = order[:min(n0, cap)]
    S_g = np.repeat(prob["S0"][None], ground.size, axis=0)
    S_g[:, prob["free"][0]] = m0 * V[ground]
    meta = {"enumeration": f"one free site, vectorised over {V.shape[0]} states",
            "dos": dos_note, "degeneracy_tolerance": tol}
    if exact:
        meta["energy_quantum"] = q
    return dict(E0=E0, n0=n0, E1=E1, n1=n1, acc=acc, var=var, dos_energy=dE, dos_count=dC,
                mvec=mvec, ground_states=S_g, meta=meta)


# ----------------------------------------------------------------------------- Result
def _assemble(H: Hamiltonian, T: np.ndarray, out: dict[str, Any], has_proj: bool) -> Result:
    N, n = H.n_free, H.n_comp
    acc = out["acc"]
    Z = acc[:, 0]
    E0 = out["E0"]
    xbar = acc[:, 1] / Z
    var = out["var"] if out["var"] is not None else acc[:, 2] / Z - xbar ** 2
    m1, m2, m4 = acc[:, 3] / Z, acc[:, 4] / Z, acc[:, 5] / Z
    u1, u2 = acc[:, 7] / Z, acc[:, 8] / Z
    with np.errstate(invalid="ignore", divide="ignore"):
        binder = 1.0 - n * m4 / ((n + 2) * m2 ** 2)
    zeros = np.zeros(T.size)
    meta = dict(out["meta"])
    if out["n0"] > out["ground_states"].shape[0]:
        meta["ground_states_note"] = (f"{out['ground_states'].shape[0]} of {out['n0']} ground states "
                                      "stored (max_ground_states)")
    return Result(
        T=T, energy=(E0 + xbar) / N, energy_err=zeros.copy(),
        specific_heat=var / (T ** 2 * N), specific_heat_err=zeros.copy(),
        magnetization=m1, magnetization_err=zeros.copy(),
        susceptibility=N * (m2 - m1 ** 2) / T, susceptibility_err=zeros.copy(),
        binder=binder, binder_err=zeros.copy(), method="exact", backend="cpu",
        n_sites=H.n_sites, n_free=N, n_comp=n,
        magnetization_vector=out["mvec"],
        projection=u1 if has_proj else None,
        projection_err=zeros.copy() if has_proj else None,
        projection_susceptibility=N * (u2 - u1 ** 2) / T if has_proj else None,
        projection_susceptibility_err=zeros.copy() if has_proj else None,
        log_Z=-E0 / T + np.log(Z),
        ground_energy=float(E0), gap=None if out["E1"] is None else float(out["E1"] - E0),
        ground_degeneracy=int(out["n0"]), excited_degeneracy=int(out["n1"]),
        ground_states=out["ground_states"], dos_energy=np.asarray(out["dos_energy"]),
        dos_count=np.asarray(out["dos_count"]), meta=meta,
    )
