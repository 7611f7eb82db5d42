"""Numba kernels for exact enumeration (``method="exact"``): pure array functions, no objects.

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1.
Only the free sites are enumerated; frozen sites enter through the constant and the fields.

Ising (sigma_k = +-1, free sites k = 0..n-1, spin ``S_k = m_k sigma_k``)::

    E(sigma) = E_c - sum_{k<l} K_kl sigma_k sigma_l - sum_k b_k sigma_k
    K_kl = (W_kl + W_lk) M m_k m_l,   b_k = m_k phi0_k   (phi0: field of h and frozen sites)

The sites split into ``n_low`` low spins (0..n_low-1) and the high spins. The high spins run
through a Gray code: the configuration with Gray index g is ``gray(g) = g ^ (g >> 1)`` (bit set:
sigma = -1, the Ising vector index 1) and going from g-1 to g flips the single spin
``k = n_low + ctz(g)`` at ``dE = 2 sigma_k f_k`` with the local field
``f_k = b_k + sum_{l high} K_kl sigma_l``; the fields of the neighbours of k are then updated
(never the full energy). For every high configuration the 2^n_low low states c are summed in a
vectorised inner loop: ``E(c) = E_high + E_ll[c] - sum_l sigma_l(c) f_l`` with E_ll a table and
the linear term built by doubling (one add per state). States are reported as *state bits*
(bit k set: sigma_k = -1). The high Gray indices are cut into blocks of ``2^block_bits``; each
block starts from scratch (round-off never accumulates over more than one block) and blocks are
shared among ``n_chunks`` chunks that run in parallel, each with its own accumulators. Results do
not depend on the number of threads.

Integer variants take ``Ki = K/q``, ``bi = b/q`` (energies on a lattice of spacing q) and keep
E exactly in integers: ``E = E_c + q * E_int``.

Discrete (K states per site, vectors V (K, n_comp), free sites 0..n-1): sites 0..nb-1 are the
*leaf block*, summed in a vectorised inner loop over its K^nb states; the other sites run
through an odometer. ``psi[i, b]`` is the energy gain of site i in state b (``E = E_rest -
psi[i, b]``), from h, the frozen sites and the outer free sites (never the leaf block). A change
a -> a2 of outer site j updates, for every neighbour i, ``psi[i, b] += m_i m_j (W_ij (G[b,a2] -
G[b,a]) + W_ji (G[a2,b] - G[a,b]))`` with ``G = V M V^T`` (a table, or factors
``G[b, a] = X_b . Y_a`` when K is large).
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

__all__ = [
    "ising_joint_levels", "ising_levels", "ising_float_pass1", "ising_float_pass2",
    "discrete_pass", "N_ACC", "BIG",
]

N_ACC = 9          # Boltzmann sums: Z', x, x^2, |m|, m^2, m^4, m (signed, n_comp = 1), m_u, m_u^2
BIG = 1 << 62      # "infinite" integer energy
_EXP_CUT = 745.0   # exp(-x) == 0 in float64 beyond this


@intrinsic
def _cttz(typingctx, x):
    """Count trailing zeros (LLVM cttz); x > 0."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen


# ----------------------------------------------------------------------------- Ising helpers
@njit(cache=True)
def _chunk_range(c, n_blocks, n_chunks):
    return c * n_blocks // n_chunks, (c + 1) * n_blocks // n_chunks


@njit(cache=True)
def _high_init(g0, n_low, ptr, nbr, K, b, s, f):
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
def _low_tables(n_low, ptr, nbr, K, mlen, uw):
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
def _low_linear(n_low, f, lin):
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
def _high_flip(t, n_low, ptr, nbr, K, s, f):
    """Flip high spin n_low + ctz(t); update the neighbours' fields; return (k, dE)."""
    k = n_low + _cttz(t)
    sk = s[k]
    dE = 2 * sk * f[k]
    s[k] = -sk
    d = 2 * sk
    for e in range(ptr[k], ptr[k + 1]):
        f[nbr[e]] -= d * K[e]
    return k, dE


# ----------------------------------------------------------------------------- Ising, lattice E
@njit(cache=True, parallel=True)
def ising_joint_levels(ptr, nbr, Ki, bi, e_off, n_e, n_low, block_bits, n_chunks, cap):
    """Joint histogram of (E_int, sum_k sigma_k) over all 2^n states (uniform lengths).

    The n_low lowest spins are summed in a vectorised inner loop for every configuration of
    the others, which run through a Gray code. Returns ``hist`` (n_e, n + 1) int64 with row
    ``E_int + e_off`` and column ``(sum sigma + n) / 2``; per chunk the lowest E_int seen, how
    many states have it and up to ``cap`` of them as state bits (bit k set: sigma_k = -1).
    """
    n = bi.shape[0]
    nh = n - n_low
    nM = n + 1
    L = 1 << n_low
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    dummy = np.zeros(n)
    Ell, Ml, _, _ = _low_tables(n_low, ptr, nbr, Ki, dummy, dummy)
    tab = np.empty(L, np.int64)
    for c in range(L):
        tab[c] = Ell[c] * nM + ((Ml[c] + n_low) >> 1)
    hist = np.zeros((n_chunks, n_e * nM), np.int64)
    gmin = np.full(n_chunks, BIG, np.int64)
    gcnt = np.zeros(n_chunks, np.int64)
    gcodes = np.zeros((n_chunks, cap), np.int64)
    for c in prange(n_chunks):
        s = np.empty(n, np.int64)
        f = np.empty(n, np.int64)
        lin = np.empty(L, np.int64)
        h = hist[c]
        em = BIG
        cnt = 0
        b0, b1 = _chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -(_high_init(g0, n_low, ptr, nbr, Ki, bi, s, f) // 2)
            Mh = 0
            for k in range(n_low, n):
                Mh += s[k]
            for t in range(bsize):
                if t > 0:
                    k, dE = _high_flip(t, n_low, ptr, nbr, Ki, s, f)
                    E += dE
                    Mh += 2 * s[k]
                _low_linear(n_low, f, lin)
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
                    g = g0 + t
                    hi = (g ^ (g >> 1)) << n_low
                    for q in range(L):
                        if E + Ell[q] - lin[q] == em:
                            if cnt < cap:
                                gcodes[c, cnt] = hi | q
                            cnt += 1
        gmin[c] = em
        gcnt[c] = cnt
    out = np.zeros(n_e * nM, np.int64)
    for c in range(n_chunks):
        out += hist[c]
    return out.reshape(n_e, nM), gmin, gcnt, gcodes


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


@njit(cache=True, parallel=True)
def ising_levels(ptr, nbr, Ki, bi, mlen, uw, e_off, n_e, n_low, block_bits, n_chunks, cap):
    """Per-level sums over all 2^n states for lattice energies and arbitrary lengths/directions.

    ``lv`` (n_e, 7): count, sum |m|, m^2, m^4, m, m_u, m_u^2 at each ``E_int + e_off`` with
    ``m = sum_k mlen_k sigma_k / n`` and ``m_u = sum_k uw_k sigma_k / n``. Ground tracking and
    layout as in :func:`ising_joint_levels`.
    """
    n = bi.shape[0]
    inv_n = 1.0 / n
    nh = n - n_low
    L = 1 << n_low
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    Ell, _, Mlw, Ulw = _low_tables(n_low, ptr, nbr, Ki, mlen, uw)
    lvs = np.zeros((n_chunks, n_e, 7))
    gmin = np.full(n_chunks, BIG, np.int64)
    gcnt = np.zeros(n_chunks, np.int64)
    gcodes = np.zeros((n_chunks, cap), np.int64)
    for c in prange(n_chunks):
        s = np.empty(n, np.int64)
        f = np.empty(n, np.int64)
        lin = np.empty(L, np.int64)
        lv = lvs[c]
        em = BIG
        cnt = 0
        b0, b1 = _chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -(_high_init(g0, n_low, ptr, nbr, Ki, bi, s, f) // 2)
            Ms = 0.0
            Us = 0.0
            for k in range(n_low, n):
                Ms += mlen[k] * s[k]
                Us += uw[k] * s[k]
            for t in range(bsize):
                if t > 0:
                    k, dE = _high_flip(t, n_low, ptr, nbr, Ki, s, f)
                    E += dE
                    Ms += 2.0 * s[k] * mlen[k]
                    Us += 2.0 * s[k] * uw[k]
                _low_linear(n_low, f, lin)
                g = g0 + t
                hi = (g ^ (g >> 1)) << n_low
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
    out = np.zeros((n_e, 7))
    for c in range(n_chunks):
        out += lvs[c]
    return out, gmin, gcnt, gcodes


# ----------------------------------------------------------------------------- Ising, float E
@njit(cache=True)
def _track(E, code, tol, st, codes, cap):
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
def _new_track():
    st = np.empty(6)
    st[0] = np.inf
    st[1] = 0.0
    st[2] = np.inf
    st[3] = 0.0
    st[4] = np.inf
    st[5] = -np.inf
    return st


@njit(cache=True, parallel=True)
def ising_float_pass1(ptr, nbr, Kf, bf, tol, n_low, block_bits, n_chunks, cap):
    """Pass 1 for real-valued energies: per chunk [e0, n0, e1, n1, emin, emax] and ground
    states (state bits). A configuration of the high spins whose 2^n_low energies all lie above
    the current E_1 + tol is skipped after one vectorised min/max."""
    n = bf.shape[0]
    nh = n - n_low
    L = 1 << n_low
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    dummy = np.zeros(n)
    Ell, _, _, _ = _low_tables(n_low, ptr, nbr, Kf, dummy, dummy)
    stats = np.zeros((n_chunks, 6))
    gcodes = np.zeros((n_chunks, cap), np.int64)
    for c in prange(n_chunks):
        s = np.empty(n)
        f = np.empty(n)
        lin = np.empty(L)
        st = _new_track()
        codes = gcodes[c]
        b0, b1 = _chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -0.5 * _high_init(g0, n_low, ptr, nbr, Kf, bf, s, f)
            for t in range(bsize):
                if t > 0:
                    k, dE = _high_flip(t, n_low, ptr, nbr, Kf, s, f)
                    E += dE
                _low_linear(n_low, f, lin)
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
                g = g0 + t
                hi = (g ^ (g >> 1)) << n_low
                for q in range(L):
                    _track(E + Ell[q] - lin[q], hi | q, tol, st, codes, cap)
        stats[c] = st
    return stats, gcodes


@njit(cache=True)
def _bin(E, lo, inv_w, off, n_bins):
    b = int(math.floor((E - lo) * inv_w + off))
    if b < 0:
        return 0
    if b >= n_bins:
        return n_bins - 1
    return b


_FM = {"reassoc", "contract", "nsz", "arcp"}   # vectorisable reductions; no finite-math assumptions


@njit(cache=True, fastmath=_FM)
def _weighted_sums(q, x, am, m, mu, out):
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


@njit(cache=True, fastmath=_FM)
def _scale_by(q, g):
    for c in range(q.shape[0]):
        q[c] *= g[c]


@njit(cache=True, fastmath=_FM)
def _low_states(E, E0, Ell, lin, Ms, Mlw, Us, Ulw, inv_n, lo, inv_w, off, n_bins, x, mm, am, mu, bins):
    """Per low state c: x = E_c - E0, m, |m|, m_u and the DOS bin of E_c; returns min x."""
    top = n_bins - 1.0
    xmin = np.inf
    for q in range(Ell.shape[0]):
        Eq = E + Ell[q] - lin[q]
        xq = Eq - E0
        x[q] = xq
        xmin = min(xmin, xq)
        mq = (Ms + Mlw[q]) * inv_n
        mm[q] = mq
        am[q] = abs(mq)
        mu[q] = (Us + Ulw[q]) * inv_n
        bf = min(max((Eq - lo) * inv_w + off, 0.0), top)
        bins[q] = np.int64(bf)
    return xmin


@njit(cache=True, parallel=True)
def ising_float_pass2(ptr, nbr, Kf, bf, mlen, uw, E0, beta, lo, inv_w, off, n_bins,
                      n_low, block_bits, n_chunks):
    """Pass 2: Boltzmann sums (n_T, N_ACC) with x = E - E0, and the energy histogram (bin of E:
    ``floor((E - lo) * inv_w + off)`` clipped to [0, n_bins)).

    For each configuration of the high spins the 2^n_low weights ``exp(-beta (x_c - x_min))``
    are built by doubling from n_low + 1 exponentials and a per-T table of the low-low energies
    (no exponential per state) whenever ``beta * (bound on the range of x_c) < 300`` (every
    intermediate factor then lies within e^{+-600}: no overflow or underflow);
    otherwise one exponential per state.
    """
    n = bf.shape[0]
    inv_n = 1.0 / n
    nh = n - n_low
    L = 1 << n_low
    n_T = beta.shape[0]
    n_blocks = 1 << (nh - block_bits)
    bsize = 1 << block_bits
    Ell, _, Mlw, Ulw = _low_tables(n_low, ptr, nbr, Kf, mlen, uw)
    ell_rng = Ell.max() - Ell.min()
    GE = np.empty((n_T, L))
    for t in range(n_T):
        for q in range(L):
            GE[t, q] = math.exp(min(-beta[t] * (Ell[q] - Ell[0]), 700.0))
    accs = np.zeros((n_chunks, n_T, N_ACC))
    dos = np.zeros((n_chunks, n_bins), np.int64)
    for c in prange(n_chunks):
        s = np.empty(n)
        f = np.empty(n)
        lin = np.empty(L)
        x = np.empty(L)
        am = np.empty(L)
        mm = np.empty(L)
        mu = np.empty(L)
        qw = np.empty(L)
        bins = np.empty(L, np.int64)
        sums = np.empty(N_ACC)
        acc = accs[c]
        hist = dos[c]
        b0, b1 = _chunk_range(c, n_blocks, n_chunks)
        for blk in range(b0, b1):
            g0 = np.int64(blk) << block_bits
            E = -0.5 * _high_init(g0, n_low, ptr, nbr, Kf, bf, s, f)
            Ms = 0.0
            Us = 0.0
            for k in range(n_low, n):
                Ms += mlen[k] * s[k]
                Us += uw[k] * s[k]
            for t in range(bsize):
                if t > 0:
                    k, dE = _high_flip(t, n_low, ptr, nbr, Kf, s, f)
                    E += dE
                    Ms += 2.0 * s[k] * mlen[k]
                    Us += 2.0 * s[k] * uw[k]
                _low_linear(n_low, f, lin)
                xmin = _low_states(E, E0, Ell, lin, Ms, Mlw, Us, Ulw, inv_n, lo, inv_w, off, n_bins,
                                   x, mm, am, mu, bins)
                for q in range(L):
                    hist[bins[q]] += 1
                rng = ell_rng
                for l in range(n_low):
                    rng += 2.0 * abs(f[l])
                for tt in range(n_T):
                    bt = beta[tt]
                    if bt * xmin > _EXP_CUT:
                        continue
                    if bt * rng < 300.0:
                        # q_c = exp(-bt (x_0 - xmin)) prod_{l in c} exp(-2 bt f_l) GE[c], by doubling
                        qw[0] = math.exp(-bt * (x[0] - xmin))
                        for l in range(n_low):
                            st = 1 << l
                            e = math.exp(-2.0 * bt * f[l])
                            for q in range(st):
                                qw[q + st] = qw[q] * e
                        _scale_by(qw, GE[tt])
                        _weighted_sums(qw, x, am, mm, mu, sums)
                    else:
                        for q in range(L):
                            d = bt * (x[q] - xmin)
                            qw[q] = math.exp(-d) if d < _EXP_CUT else 0.0
                        _weighted_sums(qw, x, am, mm, mu, sums)
                    scale = math.exp(-bt * xmin)
                    for j in range(N_ACC):
                        acc[tt, j] += scale * sums[j]
    acc = np.zeros((n_T, N_ACC))
    hist = np.zeros(n_bins, np.int64)
    for c in range(n_chunks):
        acc += accs[c]
        hist += dos[c]
    return acc, hist


# ----------------------------------------------------------------------------- discrete
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


@njit(cache=True, parallel=True)
def discrete_pass(stage, nb, psi_base, Eo_base, Mo_base, Ebb, Mb, Ub, ptr, nbr, w_out, w_in, mlen,
                  V, uV, G, GT, X, Y, use_table, tol, cap, E0, beta, lo, inv_w, off, n_bins,
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
    stage 2: returns (acc (n_T, N_ACC) Boltzmann sums with x = E - E0, marg (n_T, n, K) summed
    Boltzmann weight of outer site i in state a (rows < nb unused), wb (n_T, K^nb) summed weight
    of each leaf-block state, dos (n_bins,) int64 histogram as in :func:`ising_float_pass2`).
    ``psi_base``, ``Eo_base``, ``Mo_base`` describe the base state (every outer site in state 0).
    """
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
    GE = np.empty((n_T, LB))
    for t in range(n_T):
        for c in range(LB):
            GE[t, c] = math.exp(min(-beta[t] * (Ebb[c] - Ebb[0]), 700.0))
    stats = np.zeros((n_chunks, 6))
    gcodes = np.zeros((n_chunks, cap), np.int64)
    s2 = stage == 2
    accs = np.zeros((n_chunks, n_T if s2 else 1, N_ACC))
    margs = np.zeros((n_chunks, n_T if s2 else 1, n if s2 else 1, K if s2 else 1))
    wbs = np.zeros((n_chunks, n_T if s2 else 1, LB if s2 else 1))
    dos = np.zeros((n_chunks, n_bins if s2 else 1), np.int64)
    dsz = X.shape[1]
    for c in prange(n_chunks):
        psi = psi_base.copy()
        Mo = Mo_base.copy()
        state = np.zeros(n, np.int64)
        dy = np.empty(dsz)
        dx = np.empty(dsz)
        lin = np.empty(LB)
        x = np.empty(LB)
        am = np.empty(LB)
        mm = np.zeros(LB)
        mu = np.empty(LB)
        qw = np.empty(LB)
        bins = np.empty(LB, np.int64)
        sums = np.empty(N_ACC)
        st = _new_track()
        codes = gcodes[c]
        Eo = Eo_base
        Mu = 0.0
        for i in range(nb, n):
            Mu += mlen[i] * uV[i, 0]
        o0, o1 = _chunk_range(c, n_outer, n_chunks)
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
                        _track(Eo + Ebb[q] - lin[q], base_code + q, tol, st, codes, cap)
            else:
                xmin = np.inf
                rng = ebb_rng
                for l in range(nb):
                    rng += psi[l].max() - psi[l].min()
                for q in range(LB):
                    Eq = Eo + Ebb[q] - lin[q]
                    xq = Eq - E0
                    x[q] = xq
                    xmin = min(xmin, xq)
                    M2 = 0.0
                    for k in range(n_comp):
                        v = Mo[k] + Mb[q, k]
                        M2 += v * v
                    am[q] = math.sqrt(M2) * inv_n
                    mu[q] = (Mu + Ub[q]) * inv_n
                    dos[c, _bin(Eq, lo, inv_w, off, n_bins)] += 1
                for t in range(n_T):
                    bt = beta[t]
                    if bt * xmin > _EXP_CUT:
                        continue
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
                        _scale_by(qw, GE[t])
                    else:
                        for q in range(LB):
                            d = bt * (x[q] - xmin)
                            qw[q] = math.exp(-d) if d < _EXP_CUT else 0.0
                    _weighted_sums(qw, x, am, mm, mu, sums)
                    scale = math.exp(-bt * xmin)
                    for j in range(N_ACC):
                        accs[c, t, j] += scale * sums[j]
                    wrow = wbs[c, t]
                    for q in range(LB):
                        wrow[q] += scale * qw[q]
                    ws = scale * sums[0]
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
    acc = np.zeros((accs.shape[1], N_ACC))
    marg = np.zeros(margs.shape[1:])
    wb = np.zeros(wbs.shape[1:])
    hist = np.zeros(dos.shape[1], np.int64)
    if s2:
        for c in range(n_chunks):
            acc += accs[c]
            marg += margs[c]
            wb += wbs[c]
            hist += dos[c]
    return stats, gcodes, acc, marg, wb, hist
