"""Ising enumeration kernels for real-valued energies: two passes (levels, then Boltzmann sums).

Conventions: :mod:`spinsim.kernels.enumerate`; the Gray-code helpers are in :mod:`.enum_ising`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .chunked import run_chunks
from .enum_common import (EXP_CUT, FM, N_ACC, add_block, block_moments, block_scratch, boltzmann_table, chunk_range,
                          combine_chunks, new_track, scale_by, snap_level, track)
from .enum_ising import gray_step, high_flip, high_init, high_moments, low_linear, low_tables, state_bits

__all__ = ["ising_float_pass1", "ising_float_pass2"]


def ising_float_pass1(ptr, nbr, Kf, bf, tol, n_low, block_bits, n_chunks, cap):
    """Pass 1 for real-valued energies: per chunk [e0, n0, e1, n1, emin, emax] and ground
    states (state bits). A configuration of the high spins whose 2^n_low energies all lie above
    the current E_1 + tol is skipped after one vectorised min/max. The chunks run on threads
    (:func:`.chunked.run_chunks`). Returns (stats (n_chunks, 6), codes (n_chunks, cap))."""
    stats = np.zeros((n_chunks, 6))
    gcodes = np.zeros((n_chunks, cap), np.int64)
    run_chunks(_pass1_chunks, n_chunks, ptr, nbr, Kf, bf, tol, n_low, block_bits, n_chunks, cap,
               stats, gcodes)
    return stats, gcodes


@njit(cache=True, nogil=True)
def _pass1_chunks(ptr, nbr, Kf, bf, tol, n_low, block_bits, n_chunks, cap, stats, gcodes, c0, c1):
    """Chunks [c0, c1) of :func:`ising_float_pass1` into rows c of stats and gcodes."""
    n = bf.shape[0]
    nh = n - n_low
    L = 1 << n_low
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    dummy = np.zeros(n)
    Ell, _, _, _ = low_tables(n_low, ptr, nbr, Kf, dummy, dummy)
    for c in range(c0, c1):
        s = np.empty(n)
        f = np.empty(n)
        lin = np.empty(L)
        st = new_track()
        codes = gcodes[c]
        b0, b1 = chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -0.5 * high_init(g0, n_low, ptr, nbr, Kf, bf, s, f)
            for t in range(bsize):
                if t > 0:
                    k, dE = high_flip(t, n_low, ptr, nbr, Kf, s, f)
                    E += dE
                low_linear(n_low, f, lin)
                mn = np.inf
                mx = -np.inf
                for q in range(L):
                    v = Ell[q] - lin[q]
                    mn = min(mn, v)
                    mx = max(mx, v)
                if E + mx > st[5]:
                    st[5] = E + mx
                if E + mn > st[2] + tol:
                    continue
                hi = state_bits(g0 + t, n_low)
                for q in range(L):
                    track(E + Ell[q] - lin[q], hi | q, tol, st, codes, cap)
        stats[c] = st


@njit(cache=True, fastmath=FM)
def _low_states(E, E0, tol, x1, Ell, lin, Ms, Mlw, Us, Ulw, inv_n, lo, inv_w, off, n_bins, x, mm, am, mu,
                bins):
    """Per low state c: x = E_c - E0 (snapped onto the two lowest levels, :func:`snap_level`), m,
    |m|, m_u and the DOS bin of E_c; returns min x."""
    top = n_bins - 1.0
    xmin = np.inf
    for q in range(Ell.shape[0]):
        Eq = E + Ell[q] - lin[q]
        xq = snap_level(Eq - E0, tol, x1)
        x[q] = xq
        xmin = min(xmin, xq)
        mq = (Ms + Mlw[q]) * inv_n
        mm[q] = mq
        am[q] = abs(mq)
        mu[q] = (Us + Ulw[q]) * inv_n
        bf = min(max((Eq - lo) * inv_w + off, 0.0), top)
        bins[q] = np.int64(bf)
    return xmin


def ising_float_pass2(ptr, nbr, Kf, bf, mlen, uw, E0, tol, x1, beta, lo, inv_w, off, n_bins,
                      n_low, block_bits, n_chunks):
    """Pass 2: Boltzmann moments over all states, x = E - E0 (E0, E1 = E0 + x1 and the level
    tolerance tol from pass 1), and the energy histogram (bin of E: ``floor((E - lo) * inv_w +
    off)`` clipped to [0, n_bins)).

    Returns (acc (n_T, N_ACC) in the :func:`~.enum_common.block_moments` layout, ref (n_T,)):
    ``sum_states exp(-beta (E - E0)) = exp(ref) * acc[:, 0]``, the means and the central second
    moments of x, |m| and m_u (merged block by block in log space: no overflow, underflow or
    cancellation at any T or energy scale), and the histogram.

    For each configuration of the high spins the 2^n_low weights ``exp(-beta (x_c - x_min))``
    are built by doubling from n_low + 1 exponentials and a per-T table of the low-low energies
    (no exponential per state) whenever ``beta * (bound on the range of x_c) < 300`` (every
    intermediate factor then lies within e^{+-600}: no overflow or underflow);
    otherwise one exponential per state. The chunks run on threads (:func:`.chunked.run_chunks`)
    and are combined in chunk order.
    """
    n_T = beta.shape[0]
    accs = np.zeros((n_chunks, n_T, N_ACC))
    refs = np.zeros((n_chunks, n_T))
    dos = np.zeros((n_chunks, n_bins), np.int64)
    run_chunks(_pass2_chunks, n_chunks, ptr, nbr, Kf, bf, mlen, uw, E0, tol, x1, beta, lo, inv_w, off,
               n_bins, n_low, block_bits, n_chunks, accs, refs, dos)
    acc, ref, _ = combine_chunks(accs, refs)
    return acc, ref, dos.sum(axis=0)


@njit(cache=True, nogil=True)
def _pass2_chunks(ptr, nbr, Kf, bf, mlen, uw, E0, tol, x1, beta, lo, inv_w, off, n_bins, n_low,
                  block_bits, n_chunks, accs, refs, dos, c0, c1):
    """Chunks [c0, c1) of :func:`ising_float_pass2` into rows c of accs, refs, dos."""
    n = bf.shape[0]
    inv_n = 1.0 / n
    nh = n - n_low
    L = 1 << n_low
    n_T = beta.shape[0]
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    Ell, _, Mlw, Ulw = low_tables(n_low, ptr, nbr, Kf, mlen, uw)
    ell_rng = Ell.max() - Ell.min()
    GE = boltzmann_table(beta, Ell)
    for c in range(c0, c1):
        s = np.empty(n)
        f = np.empty(n)
        lin = np.empty(L)
        x, am, mm, mu, qw = block_scratch(L)
        bins = np.empty(L, np.int64)
        blk_m = np.empty(N_ACC)
        acc = accs[c]
        ref = refs[c]
        hist = dos[c]
        b0, b1 = chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -0.5 * high_init(g0, n_low, ptr, nbr, Kf, bf, s, f)
            Ms, Us = high_moments(n_low, s, mlen, uw)
            for t in range(bsize):
                E, Ms, Us = gray_step(t, n_low, ptr, nbr, Kf, s, f, mlen, uw, lin, E, Ms, Us)
                xmin = _low_states(E, E0, tol, x1, Ell, lin, Ms, Mlw, Us, Ulw, inv_n, lo, inv_w, off,
                                   n_bins, x, mm, am, mu, bins)
                for q in range(L):
                    hist[bins[q]] += 1
                rng = ell_rng
                for l in range(n_low):
                    rng += 2.0 * abs(f[l])
                for tt in range(n_T):
                    bt = beta[tt]
                    lblock = -bt * xmin
                    if acc[tt, 0] > 0.0 and lblock - ref[tt] < -EXP_CUT:
                        continue                       # below e^-745 of what is summed
                    if bt * rng < 300.0:
                        # q_c = exp(-bt (x_0 - xmin)) prod_{l in c} exp(-2 bt f_l) GE[c], by doubling
                        qw[0] = math.exp(-bt * (x[0] - xmin))
                        for l in range(n_low):
                            st = 1 << l
                            e = math.exp(-2.0 * bt * f[l])
                            for q in range(st):
                                qw[q + st] = qw[q] * e
                        scale_by(qw, GE[tt])
                    else:
                        for q in range(L):
                            d = bt * (x[q] - xmin)
                            qw[q] = math.exp(-d) if d < EXP_CUT else 0.0
                    block_moments(qw, x, am, mm, mu, blk_m)
                    add_block(acc[tt], ref[tt:tt + 1], lblock, blk_m)
