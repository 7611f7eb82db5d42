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

__all__ = ["N_ACC", "BIG", "EXP_CUT", "boltzmann_table", "block_scratch"]

N_ACC = 9          # Boltzmann sums: Z', x, x^2, |m|, m^2, m^4, m (signed, n_comp = 1), m_u, m_u^2
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
    """Per-state work arrays of an inner block of L states for :func:`weighted_sums`:
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
        if st[1] < cap:
            codes[int(st[1])] = code
        st[1] += 1.0
    elif E < st[2] - tol:
        st[2] = E
        st[3] = 1.0
    elif E <= st[2] + tol:
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
def weighted_sums(q, x, am, m, mu, out):
    """out[0:9] = sum_c q_c [1, x, x^2, |m|, m^2, m^4, m, m_u, m_u^2]."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = 0.0
    for c in range(q.shape[0]):
        w = q[c]
        xc = x[c]
        a = am[c]
        a2 = a * a
        u = mu[c]
        s0 += w
        s1 += w * xc
        s2 += w * xc * xc
        s3 += w * a
        s4 += w * a2
        s5 += w * a2 * a2
        s6 += w * m[c]
        s7 += w * u
        s8 += w * u * u
    out[0] = s0
    out[1] = s1
    out[2] = s2
    out[3] = s3
    out[4] = s4
    out[5] = s5
    out[6] = s6
    out[7] = s7
    out[8] = s8


@njit(cache=True, fastmath=FM)
def scale_by(q, g):
    """q *= g elementwise."""
    for c in range(q.shape[0]):
        q[c] *= g[c]
