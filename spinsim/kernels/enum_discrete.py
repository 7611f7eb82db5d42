"""Discrete-spin enumeration kernels: an odometer over the outer sites, a vectorised leaf block.

Conventions (leaf block, psi tables, pair energies G = V M V^T or factors X, Y):
:mod:`spinsim.kernels.enumerate`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .chunked import run_chunks
from .enum_common import (EXP_CUT, N_ACC, add_block, block_moments, block_scratch, boltzmann_table, chunk_range,
                          combine_chunks, dos_bin, new_track, scale_by, snap_level, track)

__all__ = ["discrete_pass"]


@njit(cache=True)
def _discrete_change(j, a, a2, psi, ptr, nbr, w_out, w_in, mlen, G, GT, X, Y, use_table,
                     V, Mo, uV, state, dy, dx):
    """Outer site j: state a -> a2. Updates psi of its neighbours, Mo, and returns
    (dE_outer, dMu_sum)."""
    K = psi.shape[1]
    dE = -(psi[j, a2] - psi[j, a])
    mj = mlen[j]
    if not use_table:
        d = X.shape[1]
        for q in range(d):
            dy[q] = Y[a2, q] - Y[a, q]
            dx[q] = X[a2, q] - X[a, q]
    for e in range(ptr[j], ptr[j + 1]):
        i = nbr[e]
        mm = mlen[i] * mj
        c1 = mm * w_in[e]    # W_ij (i query, j key)
        c2 = mm * w_out[e]   # W_ji
        if use_table:
            for b in range(K):
                psi[i, b] += c1 * (GT[a2, b] - GT[a, b]) + c2 * (G[a2, b] - G[a, b])
        else:
            d = X.shape[1]
            for b in range(K):
                g1 = 0.0
                g2 = 0.0
                for q in range(d):
                    g1 += X[b, q] * dy[q]
                    g2 += dx[q] * Y[b, q]
                psi[i, b] += c1 * g1 + c2 * g2
    n_comp = V.shape[1]
    for q in range(n_comp):
        Mo[q] += mj * (V[a2, q] - V[a, q])
    state[j] = a2
    return dE, mj * (uV[j, a2] - uV[j, a])


@njit(cache=True)
def _block_linear(psi, nb, K, lin):
    """lin[c] = sum_{l < nb} psi[l, a_l(c)] over the K^nb leaf-block states c = sum_l a_l K^l."""
    acc = 0.0
    for l in range(nb):
        acc += psi[l, 0]
    lin[0] = acc
    stride = 1
    for l in range(nb):
        for a in range(1, K):
            d = psi[l, a] - psi[l, 0]
            o = a * stride
            for c in range(stride):
                lin[o + c] = lin[c] + d
        stride *= K


def discrete_pass(stage, nb, psi_base, Eo_base, Mo_base, Ebb, Mb, Ub, ptr, nbr, w_out, w_in, mlen,
                  V, uV, G, GT, X, Y, use_table, tol, cap, E0, x1, beta, lo, inv_w, off, n_bins,
                  n_chunks):
    """Enumerate the K^n states of n >= 1 discrete free sites.

    Sites 0..nb-1 form the *leaf block*, summed in a vectorised inner loop over its K^nb states
    c = sum_l a_l K^l for every configuration of the outer sites nb..n-1 (an odometer with
    incremental psi tables). ``psi[i]`` excludes the leaf block for every site i (the block's
    couplings to the outer sites sit in the block's own psi rows); ``Ebb`` (K^nb,) is the pair
    energy inside the block, ``Mb`` (K^nb, n_comp) and ``Ub`` (K^nb,) its magnetisation and
    projection sums. Then ``E(c) = E_outer + Ebb[c] - sum_{l<nb} psi[l, a_l(c)]``.

    stage 1: returns (stats (n_chunks, 6) = [e0, n0, e1, n1, emin, emax], codes (n_chunks,
    cap)), a code being the flat state index ``sum_i a_i K^i``.
    stage 2: returns (acc (n_T, N_ACC) Boltzmann moments with x = E - E0 (snapped onto the levels
    E0 and E0 + x1 within tol) and ref (n_T,) as in :func:`ising_float_pass2`, marg (n_T, n, K)
    summed Boltzmann weight of outer site i in state a (rows < nb unused), wb (n_T, K^nb) summed
    weight of each leaf-block state (both relative to exp(ref), like acc[:, 0]), dos (n_bins,)
    int64 histogram as in :func:`ising_float_pass2`).
    ``psi_base``, ``Eo_base``, ``Mo_base`` describe the base state (every outer site in state 0).
    The chunks of outer states run on threads (:func:`.chunked.run_chunks`) and are combined in
    chunk order.
    """
    n, K = psi_base.shape
    LB = Ebb.shape[0]
    n_T = beta.shape[0]
    s2 = stage == 2
    stats = np.zeros((n_chunks, 6))
    gcodes = np.zeros((n_chunks, cap), np.int64)
    accs = np.zeros((n_chunks, n_T if s2 else 1, N_ACC))
    refs = np.zeros((n_chunks, n_T if s2 else 1))
    margs = np.zeros((n_chunks, n_T if s2 else 1, n if s2 else 1, K if s2 else 1))
    wbs = np.zeros((n_chunks, n_T if s2 else 1, LB if s2 else 1))
    dos = np.zeros((n_chunks, n_bins if s2 else 1), np.int64)
    run_chunks(_discrete_chunks, n_chunks, stage, nb, psi_base, Eo_base, Mo_base, Ebb, Mb, Ub, ptr, nbr,
               w_out, w_in, mlen, V, uV, G, GT, X, Y, use_table, tol, cap, E0, x1, beta, lo, inv_w, off,
               n_bins, n_chunks, stats, gcodes, accs, refs, margs, wbs, dos)
    marg = np.zeros(margs.shape[1:])
    wb = np.zeros(wbs.shape[1:])
    acc, ref, fac = combine_chunks(accs, refs)
    if s2:
        for c in range(n_chunks):
            for t in range(n_T):
                marg[t] += fac[c, t] * margs[c, t]
                wb[t] += fac[c, t] * wbs[c, t]
    return stats, gcodes, acc, ref, marg, wb, dos.sum(axis=0)


@njit(cache=True, nogil=True)
def _discrete_chunks(stage, nb, psi_base, Eo_base, Mo_base, Ebb, Mb, Ub, ptr, nbr, w_out, w_in, mlen,
                     V, uV, G, GT, X, Y, use_table, tol, cap, E0, x1, beta, lo, inv_w, off, n_bins,
                     n_chunks, stats, gcodes, accs, refs, margs, wbs, dos, c0, c1):
    """Chunks [c0, c1) of :func:`discrete_pass` into rows c of its per-chunk arrays."""
    n, K = psi_base.shape
    LB = Ebb.shape[0]
    n_comp = V.shape[1]
    n_T = beta.shape[0]
    inv_n = 1.0 / n
    n_outer = 1
    for i in range(n - nb):
        n_outer *= K
    ebb_rng = Ebb.max() - Ebb.min()
    products = nb * (K - 1) * 4 < LB       # weights by products: fewer exponentials than states
    GE = boltzmann_table(beta, Ebb)
    s2 = stage == 2
    dsz = X.shape[1]
    for c in range(c0, c1):
        psi = psi_base.copy()
        Mo = Mo_base.copy()
        state = np.zeros(n, np.int64)
        dy = np.empty(dsz)
        dx = np.empty(dsz)
        lin = np.empty(LB)
        x, am, mm, mu, qw = block_scratch(LB)
        bins = np.empty(LB, np.int64)
        blk_m = np.empty(N_ACC)
        st = new_track()
        codes = gcodes[c]
        Eo = Eo_base
        Mu = 0.0
        for i in range(nb, n):
            Mu += mlen[i] * uV[i, 0]
        o0, o1 = chunk_range(c, n_outer, n_chunks)
        rem = o0
        for i in range(nb, n):           # move from the base state to the chunk's first state
            a2 = rem % K
            rem //= K
            if a2 != 0:
                dE, dMu = _discrete_change(i, 0, a2, psi, ptr, nbr, w_out, w_in, mlen, G, GT, X, Y,
                                           use_table, V, Mo, uV, state, dy, dx)
                Eo += dE
                Mu += dMu
        for o in range(o0, o1):
            _block_linear(psi, nb, K, lin)
            if not s2:
                mn = np.inf
                mx = -np.inf
                for q in range(LB):
                    v = Ebb[q] - lin[q]
                    mn = min(mn, v)
                    mx = max(mx, v)
                if Eo + mx > st[5]:
                    st[5] = Eo + mx
                if Eo + mn <= st[2] + tol:
                    base_code = o * LB
                    for q in range(LB):
                        track(Eo + Ebb[q] - lin[q], base_code + q, tol, st, codes, cap)
            else:
                xmin = np.inf
                rng = ebb_rng
                for l in range(nb):
                    rng += psi[l].max() - psi[l].min()
                for q in range(LB):
                    Eq = Eo + Ebb[q] - lin[q]
                    xq = snap_level(Eq - E0, tol, x1)
                    x[q] = xq
                    xmin = min(xmin, xq)
                    M2 = 0.0
                    for k in range(n_comp):
                        v = Mo[k] + Mb[q, k]
                        M2 += v * v
                    am[q] = math.sqrt(M2) * inv_n
                    mu[q] = (Mu + Ub[q]) * inv_n
                    dos[c, dos_bin(Eq, lo, inv_w, off, n_bins)] += 1
                for t in range(n_T):
                    bt = beta[t]
                    lblock = -bt * xmin
                    if accs[c, t, 0] > 0.0 and lblock - refs[c, t] < -EXP_CUT:
                        continue                       # below e^-745 of what is summed
                    if products and bt * rng < 300.0:
                        qw[0] = math.exp(-bt * (x[0] - xmin))
                        stride = 1
                        for l in range(nb):
                            for a in range(1, K):
                                e = math.exp(bt * (psi[l, a] - psi[l, 0]))
                                ofs = a * stride
                                for q in range(stride):
                                    qw[ofs + q] = qw[q] * e
                            stride *= K
                        scale_by(qw, GE[t])
                    else:
                        for q in range(LB):
                            d = bt * (x[q] - xmin)
                            qw[q] = math.exp(-d) if d < EXP_CUT else 0.0
                    block_moments(qw, x, am, mm, mu, blk_m)
                    g, fo = add_block(accs[c, t], refs[c, t:t + 1], lblock, blk_m)
                    wrow = wbs[c, t]
                    if fo != 1.0:                      # the reference moved: rescale the old sums
                        for q in range(LB):
                            wrow[q] *= fo
                        for i in range(nb, n):
                            for a in range(K):
                                margs[c, t, i, a] *= fo
                    for q in range(LB):
                        wrow[q] += g * qw[q]
                    ws = g * blk_m[0]
                    for i in range(nb, n):
                        margs[c, t, i, state[i]] += ws
            if o + 1 < o1:              # odometer step over the outer sites
                j = nb
                while j < n:
                    a = state[j]
                    a2 = a + 1
                    if a2 == K:
                        a2 = 0
                    dE, dMu = _discrete_change(j, a, a2, psi, ptr, nbr, w_out, w_in, mlen, G, GT,
                                               X, Y, use_table, V, Mo, uV, state, dy, dx)
                    Eo += dE
                    Mu += dMu
                    if a2 != 0:
                        break
                    j += 1
        stats[c] = st
