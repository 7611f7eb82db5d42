"""Shared pieces of the enumeration kernels: accumulator layout, level tracking, DOS bins,
weighted sums, chunking and count-trailing-zeros. Conventions: :mod:`spinsim.kernels.enumerate`.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic

__all__ = ["N_ACC", "BIG", "EXP_CUT", "boltzmann_table", "block_scratch", "block_moments", "add_block",
           "combine_chunks", "snap_level"]

N_ACC = 9          # block_moments layout: W, mean x, M2 x, mean |m|, M2 |m|, mean m_u, M2 m_u, sum m^4, sum m
BIG = 1 << 62      # "infinite" integer energy
EXP_CUT = 745.0    # exp(-x) == 0 in float64 beyond this
FM = {"reassoc", "contract", "nsz", "arcp"}   # vectorisable reductions; no finite-math assumptions


@intrinsic
def cttz(typingctx, x):
    """Count trailing zeros (LLVM cttz); x > 0."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen


# ----------------------------------------------------------------------------- Ising helpers
@njit(cache=True)
def boltzmann_table(beta, E):
    """``GE[t, c] = exp(-beta_t (E_c - E_0))`` for the states c of an inner block (exponent capped
    at 700 so that products of a few factors stay finite): (n_T, n_states)."""
    GE = np.empty((beta.shape[0], E.shape[0]))
    for t in range(beta.shape[0]):
        for c in range(E.shape[0]):
            GE[t, c] = math.exp(min(-beta[t] * (E[c] - E[0]), 700.0))
    return GE


@njit(cache=True)
def block_scratch(L):
    """Per-state work arrays of an inner block of L states for :func:`block_moments`:
    x (E - E_0), am (|m|), mm (m), mu (m_u), qw (weights)."""
    return np.empty(L), np.empty(L), np.zeros(L), np.empty(L), np.empty(L)


@njit(cache=True)
def chunk_range(c, n_blocks, n_chunks):
    """Blocks [lo, hi) of chunk c when n_blocks are shared among n_chunks."""
    return c * n_blocks // n_chunks, (c + 1) * n_blocks // n_chunks


@njit(cache=True)
def track(E, code, tol, st, codes, cap):
    """Streaming lowest two distinct levels (within tol). st = [e0, n0, e1, n1, emin, emax]."""
    if E > st[5]:
        st[5] = E
    if E < st[4]:
        st[4] = E
    if E < st[0] - tol:
        st[2] = st[0]
        st[3] = st[1]
        st[0] = E
        st[1] = 1.0
        codes[0] = code
    elif E <= st[0] + tol:
        if E < st[0]:                   # the level's energy is its lowest member
            st[0] = E
        if st[1] < cap:
            codes[int(st[1])] = code
        st[1] += 1.0
    elif E < st[2] - tol:
        st[2] = E
        st[3] = 1.0
    elif E <= st[2] + tol:
        if E < st[2]:
            st[2] = E
        st[3] += 1.0


@njit(cache=True)
def new_track():
    """An empty level track [e0, n0, e1, n1, emin, emax] for :func:`track`."""
    st = np.empty(6)
    st[0] = np.inf
    st[1] = 0.0
    st[2] = np.inf
    st[3] = 0.0
    st[4] = np.inf
    st[5] = -np.inf
    return st


@njit(cache=True)
def dos_bin(E, lo, inv_w, off, n_bins):
    """DOS bin ``floor((E - lo) inv_w + off)`` clipped to [0, n_bins - 1]."""
    b = int(math.floor((E - lo) * inv_w + off))
    if b < 0:
        return 0
    if b >= n_bins:
        return n_bins - 1
    return b


@njit(cache=True, fastmath=FM)
def block_moments(q, x, am, m, mu, out):
    """Weighted moments of one inner block (weights q >= 0, at least one > 0), two passes:
    out[:N_ACC] = [W, mean x, M2 x, mean |m|, M2 |m|, mean m_u, M2 m_u, sum q m^4, sum q m]
    with ``W = sum q``, ``M2 y = sum q (y - mean y)^2`` (about the mean: no cancellation)."""
    s0 = s1 = s3 = s5 = s7 = s8 = 0.0
    for c in range(q.shape[0]):
        w = q[c]
        a = am[c]
        a2 = a * a
        s0 += w
        s1 += w * x[c]
        s3 += w * a
        s5 += w * mu[c]
        s7 += w * a2 * a2
        s8 += w * m[c]
    inv = 1.0 / s0
    xb = s1 * inv
    ab = s3 * inv
    ub = s5 * inv
    v1 = v3 = v5 = 0.0
    for c in range(q.shape[0]):
        w = q[c]
        d1 = x[c] - xb
        d3 = am[c] - ab
        d5 = mu[c] - ub
        v1 += w * d1 * d1
        v3 += w * d3 * d3
        v5 += w * d5 * d5
    out[0] = s0
    out[1] = xb
    out[2] = v1
    out[3] = ab
    out[4] = v3
    out[5] = ub
    out[6] = v5
    out[7] = s7
    out[8] = s8


@njit(cache=True)
def merge_moments(acc, g, blk):
    """Merge block moments ``blk`` (layout of :func:`block_moments`) scaled by g >= 0 into the
    accumulator ``acc`` (same layout, weights relative to the same reference): the pairwise
    update of Chan, Golub & LeVeque (1979) for means and central second moments."""
    Wb = g * blk[0]
    if Wb == 0.0:
        return
    Wa = acc[0]
    W = Wa + Wb
    r = Wb / W
    for i in (1, 3, 5):
        d = blk[i] - acc[i]
        acc[i] += r * d
        acc[i + 1] += g * blk[i + 1] + d * d * Wa * r
    acc[7] += g * blk[7]
    acc[8] += g * blk[8]
    acc[0] = W


@njit(cache=True)
def scale_moments(acc, f):
    """Multiply the weights of an accumulator (W, M2s and raw sums) by f; means unchanged."""
    for i in (0, 2, 4, 6, 7, 8):
        acc[i] *= f


@njit(cache=True)
def add_block(acc, ref, lblock, blk):
    """Add a block whose weights are ``exp(lblock) * blk-weights`` (log scale lblock) to an
    accumulator with log reference ``ref[0]`` (weights relative to exp(ref)). Log-sum-exp: when
    the block is e^200 above the reference the accumulator is rescaled to the block's scale.
    Returns (g, f): the block's factor relative to the (new) reference and the factor applied to
    the old weights (1.0 when unchanged), so that callers scale their own weighted sums alike.
    """
    f = 1.0
    if acc[0] == 0.0:
        ref[0] = lblock
    elif lblock > ref[0] + 200.0:
        f = math.exp(ref[0] - lblock)
        scale_moments(acc, f)
        ref[0] = lblock
    d = lblock - ref[0]
    g = math.exp(d) if d > -EXP_CUT else 0.0
    merge_moments(acc, g, blk)
    return g, f


@njit(cache=True)
def combine_chunks(accs, refs):
    """Combine per-chunk accumulators (n_chunks, n_T, N_ACC) with log references (n_chunks, n_T)
    into (acc (n_T, N_ACC), ref (n_T,), fac (n_chunks, n_T)): chunk c's weights count
    ``fac[c, t]`` times in acc (for the caller's other per-chunk sums)."""
    n_chunks, n_T, _ = accs.shape
    acc = np.zeros((n_T, N_ACC))
    ref = np.zeros(n_T)
    fac = np.zeros((n_chunks, n_T))
    for t in range(n_T):
        top = -np.inf
        for c in range(n_chunks):
            if accs[c, t, 0] > 0.0 and refs[c, t] > top:
                top = refs[c, t]
        ref[t] = top if top > -np.inf else 0.0
        for c in range(n_chunks):
            if accs[c, t, 0] > 0.0:
                d = refs[c, t] - ref[t]
                fac[c, t] = math.exp(d) if d > -EXP_CUT else 0.0
                merge_moments(acc[t], fac[c, t], accs[c, t])
    return acc, ref, fac


@njit(cache=True)
def snap_level(x, tol, x1):
    """x = E - E_0 snapped onto the ground level (0) or the first excited level x1 when within
    tol of it: round-off of the streaming energies never splits a level (which would give a
    spurious specific heat ~ (round-off / T)^2 at low T)."""
    if x <= tol:
        return 0.0
    if abs(x - x1) <= tol:
        return x1
    return x


@njit(cache=True, fastmath=FM)
def scale_by(q, g):
    """q *= g elementwise."""
    for c in range(q.shape[0]):
        q[c] *= g[c]
