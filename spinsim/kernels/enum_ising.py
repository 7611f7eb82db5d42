"""Ising enumeration kernels for lattice energies (integers): the Gray-code walk and its helpers.

Conventions (sites, Gray code, low block, state bits, integer energies ``E = E_c + q E_int``):
:mod:`spinsim.kernels.enumerate`. The real-valued passes are in :mod:`.enum_ising_float`.
"""
from __future__ import annotations


import numpy as np
from numba import njit

from .chunked import run_chunks
from .enum_common import BIG, chunk_range, cttz

__all__ = ["ising_joint_levels", "ising_levels", "high_init", "low_tables", "low_linear", "high_flip",
           "high_moments", "gray_step", "state_bits"]


@njit(cache=True)
def high_init(g0, n_low, ptr, nbr, K, b, s, f):
    """High spins (sites >= n_low) of high Gray index g0 into s, low spins set to 0 (summed
    over separately); fields f_j = b_j + sum_{k high} K_jk s_k for every site j. Returns
    ``sum_k s_k (f_k + b_k)`` = -2 x (energy of the high spins, -sum_{i<j high} K s s -
    sum_{high} b s), exact in integers."""
    n = b.shape[0]
    gray = g0 ^ (g0 >> 1)
    for k in range(n):
        s[k] = 0
    for k in range(n_low, n):
        s[k] = 1 - 2 * ((gray >> (k - n_low)) & 1)
    e2 = b[0] * 0
    for k in range(n):
        acc = b[k]
        for e in range(ptr[k], ptr[k + 1]):
            acc += K[e] * s[nbr[e]]
        f[k] = acc
        e2 += s[k] * (acc + b[k])
    return e2


@njit(cache=True)
def low_tables(n_low, ptr, nbr, K, mlen, uw):
    """Tables over the 2^n_low states c of the low spins (bit l of c set: sigma_l = -1):
    E_ll[c] = -sum_{l<l' low} K sigma sigma, sum sigma, sum mlen sigma, sum uw sigma."""
    L = 1 << n_low
    Ell = np.zeros(L, K.dtype)
    Ml = np.zeros(L, np.int64)
    Mlw = np.zeros(L)
    Ulw = np.zeros(L)
    for c in range(L):
        for l in range(n_low):
            sl = 1 - 2 * ((c >> l) & 1)
            Ml[c] += sl
            Mlw[c] += mlen[l] * sl
            Ulw[c] += uw[l] * sl
            for e in range(ptr[l], ptr[l + 1]):
                j = nbr[e]
                if l < j < n_low:
                    Ell[c] -= K[e] * sl * (1 - 2 * ((c >> j) & 1))
    return Ell, Ml, Mlw, Ulw


@njit(cache=True)
def low_linear(n_low, f, lin):
    """lin[c] = sum_l sigma_l(c) f_l for every low state c, by doubling (one add per state)."""
    acc = f[0] * 0
    for l in range(n_low):
        acc += f[l]
    lin[0] = acc
    for l in range(n_low):
        st = 1 << l
        d = 2 * f[l]
        for c in range(st):
            lin[c + st] = lin[c] - d


@njit(cache=True)
def high_flip(t, n_low, ptr, nbr, K, s, f):
    """Flip high spin n_low + ctz(t); update the neighbours' fields; return (k, dE)."""
    k = n_low + cttz(t)
    sk = s[k]
    dE = 2 * sk * f[k]
    s[k] = -sk
    d = 2 * sk
    for e in range(ptr[k], ptr[k + 1]):
        f[nbr[e]] -= d * K[e]
    return k, dE


@njit(cache=True)
def high_moments(n_low, s, mlen, uw):
    """``(sum_{k high} m_k s_k, sum_{k high} uw_k s_k)``: magnetisation and projection of the
    high spins (low spins are summed separately)."""
    Ms = 0.0
    Us = 0.0
    for k in range(n_low, s.shape[0]):
        Ms += mlen[k] * s[k]
        Us += uw[k] * s[k]
    return Ms, Us


@njit(cache=True)
def gray_step(t, n_low, ptr, nbr, K, s, f, mlen, uw, lin, E, Ms, Us):
    """Step t of a block's Gray-code walk: for t > 0 flip high spin n_low + ctz(t)
    (:func:`high_flip`) and update the energy E and the high moments Ms, Us; then the low
    states' linear terms lin (:func:`low_linear`). Returns (E, Ms, Us)."""
    if t > 0:
        k, dE = high_flip(t, n_low, ptr, nbr, K, s, f)
        E += dE
        Ms += 2.0 * s[k] * mlen[k]        # s[k] is the flipped value
        Us += 2.0 * s[k] * uw[k]
    low_linear(n_low, f, lin)
    return E, Ms, Us


@njit(cache=True)
def ground_store(n_chunks, cap):
    """Per chunk: the lowest integer energy seen (BIG: none), how many states have it and the
    first ``cap`` of their state codes."""
    return np.full(n_chunks, BIG, np.int64), np.zeros(n_chunks, np.int64), np.zeros((n_chunks, cap), np.int64)


@njit(cache=True)
def state_bits(g, n_low):
    """State bits of the high spins at Gray index g (bit k set: sigma_k = -1), shifted past the
    n_low low bits."""
    return (g ^ (g >> 1)) << n_low


# ----------------------------------------------------------------------------- Ising, lattice E
def ising_joint_levels(ptr, nbr, Ki, bi, e_off, n_e, n_low, block_bits, n_chunks, cap):
    """Joint histogram of (E_int, sum_k sigma_k) over all 2^n states (uniform lengths).

    The n_low lowest spins are summed in a vectorised inner loop for every configuration of
    the others, which run through a Gray code. Returns ``hist`` (n_e, n + 1) int64 with row
    ``E_int + e_off`` and column ``(sum sigma + n) / 2``; per chunk the lowest E_int seen, how
    many states have it and up to ``cap`` of them as state bits (bit k set: sigma_k = -1).
    The chunks run on threads (:func:`.chunked.run_chunks`).
    """
    n = bi.shape[0]
    hist = np.zeros((n_chunks, n_e * (n + 1)), np.int64)
    gmin, gcnt, gcodes = ground_store(n_chunks, cap)
    run_chunks(_joint_levels_chunks, n_chunks, ptr, nbr, Ki, bi, e_off, n_low, block_bits, n_chunks,
               cap, hist, gmin, gcnt, gcodes)
    return hist.sum(axis=0).reshape(n_e, n + 1), gmin, gcnt, gcodes


@njit(cache=True, nogil=True)
def _joint_levels_chunks(ptr, nbr, Ki, bi, e_off, n_low, block_bits, n_chunks, cap, hist, gmin, gcnt,
                         gcodes, c0, c1):
    """Chunks [c0, c1) of :func:`ising_joint_levels` into rows c of hist, gmin, gcnt, gcodes."""
    n = bi.shape[0]
    nh = n - n_low
    nM = n + 1
    L = 1 << n_low
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    dummy = np.zeros(n)
    Ell, Ml, _, _ = low_tables(n_low, ptr, nbr, Ki, dummy, dummy)
    tab = np.empty(L, np.int64)
    for c in range(L):
        tab[c] = Ell[c] * nM + ((Ml[c] + n_low) >> 1)
    for c in range(c0, c1):
        s = np.empty(n, np.int64)
        f = np.empty(n, np.int64)
        lin = np.empty(L, np.int64)
        h = hist[c]
        em = BIG
        cnt = 0
        b0, b1 = chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -(high_init(g0, n_low, ptr, nbr, Ki, bi, s, f) // 2)
            Mh = 0
            for k in range(n_low, n):
                Mh += s[k]
            for t in range(bsize):
                if t > 0:
                    k, dE = high_flip(t, n_low, ptr, nbr, Ki, s, f)
                    E += dE
                    Mh += 2 * s[k]
                low_linear(n_low, f, lin)
                base = (E + e_off) * nM + ((Mh + nh) >> 1)
                mn = BIG
                for q in range(L):
                    h[base + tab[q] - nM * lin[q]] += 1
                    v = Ell[q] - lin[q]
                    if v < mn:
                        mn = v
                if E + mn <= em:
                    if E + mn < em:
                        em = E + mn
                        cnt = 0
                    hi = state_bits(g0 + t, n_low)
                    for q in range(L):
                        if E + Ell[q] - lin[q] == em:
                            if cnt < cap:
                                gcodes[c, cnt] = hi | q
                            cnt += 1
        gmin[c] = em
        gcnt[c] = cnt


@njit(cache=True)
def _level_add(lv, le, m, mu):
    lv[le, 0] += 1.0
    am = abs(m)
    m2 = m * m
    lv[le, 1] += am
    lv[le, 2] += m2
    lv[le, 3] += m2 * m2
    lv[le, 4] += m
    lv[le, 5] += mu
    lv[le, 6] += mu * mu


def ising_levels(ptr, nbr, Ki, bi, mlen, uw, e_off, n_e, n_low, block_bits, n_chunks, cap):
    """Per-level sums over all 2^n states for lattice energies and arbitrary lengths/directions.

    ``lv`` (n_e, 7): count, sum |m|, m^2, m^4, m, m_u, m_u^2 at each ``E_int + e_off`` with
    ``m = sum_k mlen_k sigma_k / n`` and ``m_u = sum_k uw_k sigma_k / n``. Ground tracking,
    layout and threads as in :func:`ising_joint_levels`.
    """
    lvs = np.zeros((n_chunks, n_e, 7))
    gmin, gcnt, gcodes = ground_store(n_chunks, cap)
    run_chunks(_levels_chunks, n_chunks, ptr, nbr, Ki, bi, mlen, uw, e_off, n_low, block_bits,
               n_chunks, cap, lvs, gmin, gcnt, gcodes)
    out = np.zeros((n_e, 7))
    for c in range(n_chunks):           # in chunk order: the same sums on any number of threads
        out += lvs[c]
    return out, gmin, gcnt, gcodes


@njit(cache=True, nogil=True)
def _levels_chunks(ptr, nbr, Ki, bi, mlen, uw, e_off, n_low, block_bits, n_chunks, cap, lvs, gmin,
                   gcnt, gcodes, c0, c1):
    """Chunks [c0, c1) of :func:`ising_levels` into rows c of lvs, gmin, gcnt, gcodes."""
    n = bi.shape[0]
    inv_n = 1.0 / n
    nh = n - n_low
    L = 1 << n_low
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    Ell, _, Mlw, Ulw = low_tables(n_low, ptr, nbr, Ki, mlen, uw)
    for c in range(c0, c1):
        s = np.empty(n, np.int64)
        f = np.empty(n, np.int64)
        lin = np.empty(L, np.int64)
        lv = lvs[c]
        em = BIG
        cnt = 0
        b0, b1 = chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -(high_init(g0, n_low, ptr, nbr, Ki, bi, s, f) // 2)
            Ms, Us = high_moments(n_low, s, mlen, uw)
            for t in range(bsize):
                E, Ms, Us = gray_step(t, n_low, ptr, nbr, Ki, s, f, mlen, uw, lin, E, Ms, Us)
                hi = state_bits(g0 + t, n_low)
                for q in range(L):
                    Eq = E + Ell[q] - lin[q]
                    _level_add(lv, Eq + e_off, (Ms + Mlw[q]) * inv_n, (Us + Ulw[q]) * inv_n)
                    if Eq <= em:
                        if Eq < em:
                            em = Eq
                            cnt = 0
                        if cnt < cap:
                            gcodes[c, cnt] = hi | q
                        cnt += 1
        gmin[c] = em
        gcnt[c] = cnt
