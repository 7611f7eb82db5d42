"""Exact enumeration of discrete spins (K unit vectors per site; kernels:
:mod:`spinsim.kernels.enumerate`).

An odometer over the outer sites with incremental local-field tables; a leaf block of the first
sites (up to 1024 joint states) is summed in a vectorised inner loop, with Boltzmann weights
built as products. One free site (a probe over a vocabulary of any size) is a single vectorised
``V @ phi``. Two passes: E_0 and the degeneracies first, then the Boltzmann sums
(cost ~ K^n (n_comp + n_T)). Pair energies ``G[b, a] = V_b^T M V_a`` from a table, or from the
factors ``X_b . Y_a`` (``M = A B^T``: X = V A, Y = V B) when K^2 is too large.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..hamiltonian import Hamiltonian
from ..kernels import enumerate as kern
from ..probe import candidate_energies
from .exact_levels import (DEGENERACY_RTOL, N_CHUNKS, dos_from_hist, dos_layout, energy_quantum,
                           kernel_moments, level_moments, merge_tracks, snap_levels)

__all__ = ["solve_discrete"]

_TABLE_CAP = 1 << 22       # K^2 above this: pair energies from factors, not a table
_LEAF_STATES = 1024        # discrete: states of the leaf block summed in the inner loop


def solve_discrete(H: Hamiltonian, T: np.ndarray, prob: dict[str, Any], n_bins: int, cap: int) -> dict[str, Any]:
    """Levels, Boltzmann sums (kernels' accumulator layout), DOS and ground states of the free
    discrete sites described by ``prob`` (see :func:`spinsim.solvers.exact.solve_exact`)."""
    n = H.n_free
    V = np.ascontiguousarray(H.spin.vectors)
    K, n_comp = V.shape
    mlen, const, phi0 = prob["mlen"], prob["const"], prob["phi0"]
    uV = np.ascontiguousarray(prob["U"] @ V.T)                     # (n, K): u_i . V_a
    site = mlen[:, None] * (phi0 @ V.T)                             # (n, K) field gains
    meta: dict[str, Any] = {}
    if n == 1:
        return _solve_probe(H, T, prob, V, uV[0], n_bins, cap)
    vmax = float(np.sqrt(np.max(np.einsum("ac,ac->a", V, V))))

    # pair-energy table G[b, a] = V_b^T M V_a = X_b . Y_a, or its factors
    A0, B0 = H.M.factors()
    X, Y = np.ascontiguousarray(V @ A0), np.ascontiguousarray(V @ B0)
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
    Phi = H.M.local_fields(prob["Wff"], S_free) + phi0
    psi_base = np.ascontiguousarray(mlen[:, None] * (Phi @ V.T))
    Mo_base = S_free.sum(axis=0)
    n_outer = K ** (n - nb)
    n_chunks = int(min(N_CHUNKS, n_outer))
    Xk, Yk = (dummy, dummy) if use_table else (X, Y)
    beta = 1.0 / T
    common = (nb, psi_base, Eo_base, Mo_base, Ebb, Mb, Ub, ptr, nbr, w_out, w_in, mlen, V, uV, G, GT,
              Xk, Yk, use_table, tol, cap)
    stats, gcodes = kern.discrete_pass(1, *common, 0.0, np.inf, beta, 0.0, 0.0, 0.0, 1, n_chunks)[:2]
    E0, n0, E1, n1, emin, emax, codes = merge_tracks(stats, gcodes, tol, cap)
    x1 = np.inf if E1 is None else E1 - E0
    q = _discreteenergy_quantum(site, G if use_table else None, prob["Wff"], mlen)
    lo, inv_w, off, n_b, exact = dos_layout(E0, emax, q, n_bins)
    _, _, acc, ref, marg, wb, hist = kern.discrete_pass(2, *common, E0, x1, beta, lo, inv_w, off, n_b, n_chunks)
    mom = kernel_moments(acc, ref)
    dE, dC, meta["dos"] = dos_from_hist(hist, E0, emax, inv_w, exact, q, n_b)
    if exact:
        meta["energy_quantum"] = q
    meta["enumeration"] = (f"odometer over {n - nb} outer sites, leaf block of {nb} sites vectorised over "
                           f"{LB} states; pair energies from a {'table' if use_table else 'factorisation'}")
    meta["degeneracy_tolerance"] = tol
    wbr = wb.reshape((T.size,) + (K,) * nb)             # axis 1 + nb - 1 - l holds a_l
    for l in range(nb):
        ax = tuple(1 + i for i in range(nb) if i != nb - 1 - l)
        marg[:, l, :] = wbr.sum(axis=ax) if ax else wbr
    mvec = np.einsum("tia,i,ac->tc", marg, mlen, V) / (n * acc[:, 0][:, None])      # acc[:, 0]: total weight
    S_g = np.empty((codes.size, H.n_sites, n_comp))
    for r, code in enumerate(codes):
        digits = (int(code) // K ** np.arange(n)) % K
        S = prob["S0"].copy()
        S[prob["free"]] = mlen[:, None] * V[digits]
        S_g[r] = S
    return dict(E0=E0, n0=n0, E1=E1, n1=n1, moments=mom, dos_energy=dE, dos_count=dC, mvec=mvec,
                ground_states=S_g, meta=meta)


def _discreteenergy_quantum(site: np.ndarray, G: np.ndarray | None, Wff: sp.csr_matrix,
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
    return energy_quantum(np.concatenate(vals))


def _solve_probe(H: Hamiltonian, T: np.ndarray, prob: dict[str, Any], V: np.ndarray, uV: np.ndarray,
                 n_bins: int, cap: int) -> dict[str, Any]:
    """One free discrete site: the candidate energies ``E_a = E_c - m V_a . phi`` of
    :func:`spinsim.probe.candidate_energies`, vectorised over the K states."""
    const = prob["const"]
    m0 = prob["mlen"][0]
    E, phi = candidate_energies(H, m0 * V, probe=int(prob["free"][0]), bath=prob["S0"])
    gain = m0 * (V @ phi)                                  # E_a = E_c - gain_a
    scale = abs(const) + float(np.abs(gain).max())
    tol = DEGENERACY_RTOL * scale
    order = np.argsort(E, kind="stable")
    E0 = float(E[order[0]])
    is0 = E <= E0 + tol
    n0 = int(is0.sum())
    rest = E[~is0]
    E1 = float(rest.min()) if rest.size else None
    n1 = int(np.sum(np.abs(rest - E1) <= tol)) if rest.size else 0
    x = snap_levels(E - E0, tol, None if E1 is None else E1 - E0)
    am = m0 * np.sqrt(np.einsum("ac,ac->a", V, V))
    zero = np.zeros(V.shape[0])
    mom = level_moments(x, np.ones(V.shape[0]), 1.0 / T, am, zero, am ** 4, zero, m0 * uV, zero)
    mvec = m0 * (mom.pop("p") @ V)
    q = energy_quantum(gain - gain[0])
    Emax = float(E.max())
    lo, inv_w, off, nb, exact = dos_layout(E0, Emax, q, n_bins)
    idx = np.clip(np.floor((E - lo) * inv_w + off).astype(np.int64), 0, nb - 1)
    hist = np.bincount(idx, minlength=nb)
    dE, dC, dos_note = dos_from_hist(hist, E0, Emax, inv_w, exact, q, nb)
    ground = order[:min(n0, cap)]
    S_g = np.repeat(prob["S0"][None], ground.size, axis=0)
    S_g[:, prob["free"][0]] = m0 * V[ground]
    meta = {"enumeration": f"one free site, vectorised over {V.shape[0]} states",
            "dos": dos_note, "degeneracy_tolerance": tol}
    if exact:
        meta["energy_quantum"] = q
    return dict(E0=E0, n0=n0, E1=E1, n1=n1, moments=mom, dos_energy=dE, dos_count=dC,
                mvec=mvec, ground_states=S_g, meta=meta)
