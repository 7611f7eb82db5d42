"""Exact enumeration of Ising spins (kernels: :mod:`spinsim.kernels.enumerate`).

Free sites k = 0..n-1 with ``S_k = m_k sigma_k``, ``E(sigma) = E_c - sum_{k<l} K_kl sigma_k
sigma_l - sum_k b_k sigma_k``, ``K_kl = (W_kl + W_lk) M m_k m_l``, ``b_k = m_k phi0_k``. A Gray
code over the high spins with the 2^8 low states summed in a vectorised inner loop. With lattice
energies (every K and b a multiple of one quantum) one integer pass gives every level's count and
moments (a joint (E, M) histogram when the lengths and projections are uniform); otherwise two
real-valued passes (E_0 and the degeneracies first, then the Boltzmann sums).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hamiltonian import Hamiltonian
from ..kernels import enumerate as kern
from .exact_levels import (DEGENERACY_RTOL, ISING_DEGENERACY_RTOL, N_CHUNKS, dos_from_hist, dos_layout, energy_quantum,
                           kernel_moments, level_moments, merge_tracks)

__all__ = ["solve_ising"]

_HIST_CAP = 1 << 24        # entries of per-chunk level tables (memory bound)
_FLOAT_BLOCK_BITS = 5      # real energies: Gray-code blocks of 32 steps (round-off: ISING_DEGENERACY_RTOL)


def _block_layout(n: int, max_bits: int = 14) -> tuple[int, int, int]:
    """(n_low, block_bits, n_chunks) for the Ising kernels: up to 8 low spins summed in the
    vectorised inner loop, the rest in Gray-code blocks of at most 2^max_bits steps (each block
    starts from scratch) shared among at most N_CHUNKS chunks."""
    n_low = min(n, 8)
    nh = n - n_low
    bb = nh if nh <= 3 else min(max_bits, nh - 3)
    return n_low, bb, min(N_CHUNKS, 1 << (nh - bb))



def solve_ising(H: Hamiltonian, T: np.ndarray, prob: dict[str, Any], n_bins: int, cap: int) -> dict[str, Any]:
    """Levels, Boltzmann sums (kernels' accumulator layout), DOS and ground states of the free
    Ising sites described by ``prob`` (see :func:`spinsim.solvers.exact.solve_exact`)."""
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
    q = q_lat = energy_quantum(np.concatenate([Kv, b]))
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
            lv = _joint_level_stats(hist, Mvals, prob["U"][0, 0])
            meta["enumeration"] = "gray code, integer energies, joint (E, M) histogram"
        elif n_e * 7 * n_chunks <= _HIST_CAP:
            sums, gmin, gcnt, gcodes = kern.ising_levels(ptr, nbr, Ki, bi, mlen, uw, e_max, n_e, n_low,
                                                         bb, n_chunks, cap)
            lv = _level_stats(sums)
            meta["enumeration"] = "gray code, integer energies, per-level moments"
        else:
            q = None
    if q is not None:
        lev = np.flatnonzero(lv[:, 0] > 0)
        E_lev = const + q * (lev - e_max).astype(np.float64)
        lv = lv[lev]
        mom = level_moments(E_lev - E_lev[0], lv[:, 0], 1.0 / T, *lv[:, 1:].T)
        E0 = float(E_lev[0])
        g = int(np.min(gmin))
        codes = np.concatenate([gcodes[c, :min(int(gcnt[c]), cap)] for c in range(n_chunks) if gmin[c] == g])
        out = dict(E0=E0, n0=int(lv[0, 0]), E1=float(E_lev[1]) if lev.size > 1 else None,
                   n1=int(lv[1, 0]) if lev.size > 1 else 0, moments=mom,
                   dos_energy=E_lev, dos_count=lv[:, 0].copy(), mvec=mom["msigned"][:, None])
        meta["dos"] = f"exact distinct levels (energies on a lattice of spacing q={q:.12g})"
        meta["energy_quantum"] = q
    else:
        # real energies: short blocks (32 Gray steps) bound the streaming round-off by ~64 ulp
        n_low, bb, n_chunks = _block_layout(n, max_bits=_FLOAT_BLOCK_BITS)
        tol = ISING_DEGENERACY_RTOL * scale
        stats, gcodes = kern.ising_float_pass1(ptr, nbr, Kv, b, tol, n_low, bb, n_chunks, cap)
        E0r, n0, E1r, n1, emin, emax, codes = merge_tracks(stats, gcodes, tol, cap)
        lo, inv_w, off, nb, exact = dos_layout(E0r, emax, q_lat, n_bins)
        x1 = np.inf if E1r is None else E1r - E0r
        acc, ref, hist = kern.ising_float_pass2(ptr, nbr, Kv, b, mlen, uw, E0r, tol, x1,
                                                1.0 / T, lo, inv_w, off, nb, n_low, bb, n_chunks)
        dE, dC, meta["dos"] = dos_from_hist(hist, E0r, emax, inv_w, exact, q_lat, nb)
        mom = kernel_moments(acc, ref)
        out = dict(E0=E0r + const, n0=n0, E1=None if E1r is None else E1r + const, n1=n1, moments=mom,
                   dos_energy=dE + const, dos_count=dC, mvec=mom["msigned"][:, None])
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


def _joint_level_stats(hist: np.ndarray, Mvals: np.ndarray, u0: float) -> np.ndarray:
    """Per energy level of a joint (E, M) histogram (n_e, n + 1), columns as
    :func:`spinsim.solvers.exact_levels.level_moments` takes them: count, mean |m|, variance of
    |m| in the level (about its mean), mean m^4, mean m, mean m_u = u0 m, variance of m_u."""
    cnt = hist.sum(axis=1).astype(np.float64)
    c = np.maximum(cnt, 1.0)
    am = np.abs(Mvals)
    m_abs = hist @ am / c
    m_sig = hist @ Mvals / c
    var_abs = np.einsum("lj,lj->l", hist, (am[None, :] - m_abs[:, None]) ** 2) / c
    var_sig = np.einsum("lj,lj->l", hist, (Mvals[None, :] - m_sig[:, None]) ** 2) / c
    return np.stack([cnt, m_abs, var_abs, hist @ Mvals ** 4 / c, m_sig, u0 * m_sig, u0 ** 2 * var_sig],
                    axis=1)


def _level_stats(sums: np.ndarray) -> np.ndarray:
    """The columns of :func:`_joint_level_stats` from the kernels' per-level sums (n_e, 7) =
    count, sum |m|, m^2, m^4, m, m_u, m_u^2 (variances inside a level from its sums, clipped at 0)."""
    cnt = sums[:, 0]
    c = np.maximum(cnt, 1.0)
    m_abs, m_u = sums[:, 1] / c, sums[:, 5] / c
    var_abs = np.maximum(sums[:, 2] / c - m_abs ** 2, 0.0)
    var_u = np.maximum(sums[:, 6] / c - m_u ** 2, 0.0)
    return np.stack([cnt, m_abs, var_abs, sums[:, 3] / c, sums[:, 4] / c, m_u, var_u], axis=1)
