"""The local field and the energy, written once for every kernel.

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1,
``W[i, j]``: query i, key j; spins carry lengths ``S_k = m_k sigma_k``. The field on site k is

    phi_k = M sum_j W_kj S_j + M^T sum_j W_jk S_j + h_k  =  M a_k + M^T b_k + h_k,

and a move of site k costs exactly ``dE = -(S_k' - S_k).phi_k``. For the low-rank codes
(``M = A B^T``, or ``M_kj = A_k B_j^T`` per site) the field only sees the per-site projections
``P_j = B_j^T S_j`` and ``Q_j = A_j^T S_j`` (r,), which the chains keep (``Chains.P``, ``Q``;
refreshed in O(n r) after an accepted move, :func:`refresh_projections`):

    phi_k = A_k sum_j W_kj P_j + B_k sum_j W_jk Q_j + h_k,

so the graph part costs O(deg r) instead of O(deg n), plus O(n r) for the factor products.

Every loop runs in element-wise order (the inner loop writes one output element per iteration), so
LLVM vectorises it without reassociation and a CPU and a CUDA thread that own the same components
add in the same order. The cooperative CUDA path calls these functions on strided views
(``x[tid::nt]``): each thread owns the components ``tid, tid + nt, ...``.
"""
from __future__ import annotations

from ._jit import physics, physics_call
from .arrays import IDENTITY, LOWRANK


@physics
def fac(cp, k):
    """Index of site k's factor set in cp.A, cp.B, cp.AT, cp.BT (F, ...): k, or 0 when F = 1."""
    return k if cp.A.shape[0] > 1 else 0


@physics_call
def neighbour_sums(S, k, g, a, b):
    """a <- sum_j W_kj S_j (k as query), b <- sum_j W_jk S_j (k as key), over the components of
    the views S (N, n'), a, b (n',)."""
    n = a.shape[0]
    for c in range(n):
        a[c] = 0.0
        b[c] = 0.0
    for e in range(g.ptr[k], g.ptr[k + 1]):
        j = g.idx[e]
        wo = g.w_out[e]
        wi = g.w_in[e]
        for c in range(n):
            s = S[j, c]
            a[c] += wo * s
            b[c] += wi * s


@physics_call
def rank_sums(P, Q, k, g, ra, rb):
    """ra <- sum_j W_kj P_j (k as query), rb <- sum_j W_jk Q_j (k as key), over the rank
    components of the views P, Q (N, r'), ra, rb (r',)."""
    r = ra.shape[0]
    for q in range(r):
        ra[q] = 0.0
        rb[q] = 0.0
    for e in range(g.ptr[k], g.ptr[k + 1]):
        j = g.idx[e]
        wo = g.w_out[e]
        wi = g.w_in[e]
        for q in range(r):
            ra[q] += wo * P[j, q]
            rb[q] += wi * Q[j, q]


@physics_call
def project(B, A, a, b, ra, rb):
    """ra <- B^T a, rb <- A^T b; A, B (n, r') views, a, b (n,), ra, rb (r',)."""
    r = ra.shape[0]
    for q in range(r):
        ra[q] = 0.0
        rb[q] = 0.0
    for d in range(a.shape[0]):
        ad = a[d]
        bd = b[d]
        for q in range(r):
            ra[q] += B[d, q] * ad
            rb[q] += A[d, q] * bd


@physics_call
def field_from_sums(cp, Mr, Mc, AT, BT, a, b, a_own, b_own, ra, rb, hk, phi):
    """phi <- M a + M^T b + h_k on the components phi, hk (n',) own.

    a, b (n,): the full neighbour sums; a_own, b_own: their own components; identity:
    ``phi = J (a + b) + h``; dense: Mr = M[own, :], Mc = M[:, own]; low rank (both codes): ra =
    sum_j W_kj P_j, rb = sum_j W_jk Q_j (r,), AT, BT = A_k^T[:, own], B_k^T[:, own]."""
    n = phi.shape[0]
    if cp.code == IDENTITY:
        J = cp.J
        for c in range(n):
            phi[c] = J * (a_own[c] + b_own[c]) + hk[c]
    elif cp.code >= LOWRANK:
        for c in range(n):
            phi[c] = hk[c]
        for q in range(ra.shape[0]):
            x = ra[q]
            y = rb[q]
            for c in range(n):
                phi[c] += AT[q, c] * x + BT[q, c] * y
    else:
        for c in range(n):
            acc = hk[c]
            for d in range(a.shape[0]):
                acc += Mr[c, d] * a[d] + Mc[d, c] * b[d]
            phi[c] = acc


@physics
def field_isotropic_3(S, k, g, J, h, phi):
    """phi <- J sum_j (W_kj + W_jk) S_j + h_k for n = 3 (Heisenberg lattices), in registers
    (h (N, 3) indexed here: a view h[k] per site costs a reference count)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    for e in range(g.ptr[k], g.ptr[k + 1]):
        j = g.idx[e]
        w = g.w_out[e] + g.w_in[e]
        a0 += w * S[j, 0]
        a1 += w * S[j, 1]
        a2 += w * S[j, 2]
    phi[0] = J * a0 + h[k, 0]
    phi[1] = J * a1 + h[k, 1]
    phi[2] = J * a2 + h[k, 2]


@physics
def field_isotropic_1(S, k, g, J, h, phi):
    """phi <- J sum_j (W_kj + W_jk) S_j + h_k for n = 1 (Ising)."""
    a0 = 0.0
    for e in range(g.ptr[k], g.ptr[k + 1]):
        a0 += (g.w_out[e] + g.w_in[e]) * S[g.idx[e], 0]
    phi[0] = J * a0 + h[k, 0]


@physics
def field_isotropic_small(S, k, g, J, h, phi):
    """phi <- J sum_j (W_kj + W_jk) S_j + h_k for n = 2 or 4; phi accumulates in place.
    (Numba/LLVM keep the n = 1 and n = 3 versions above in registers, 3-7x faster than a
    version with component branches: measured, hence three functions.)"""
    n = phi.shape[0]
    for c in range(n):
        phi[c] = 0.0
    for e in range(g.ptr[k], g.ptr[k + 1]):
        j = g.idx[e]
        w = g.w_out[e] + g.w_in[e]
        for c in range(n):
            phi[c] += w * S[j, c]
    for c in range(n):
        phi[c] = J * phi[c] + h[k, c]


@physics
def local_field(S, P, Q, k, g, cp, h, w):
    """w.phi (n,) <- phi_k of configuration S (N, n) with fields h (N, n) and, for the low-rank
    codes, the projections P, Q (N, r) of S; w: Work scratch."""
    n = S.shape[1]
    if cp.code == IDENTITY and n == 3:
        field_isotropic_3(S, k, g, cp.J, h, w.phi)
        return
    if cp.code == IDENTITY and n == 1:
        field_isotropic_1(S, k, g, cp.J, h, w.phi)
        return
    if cp.code == IDENTITY and n <= 4:
        field_isotropic_small(S, k, g, cp.J, h, w.phi)
        return
    f = 0
    if cp.code >= LOWRANK:
        rank_sums(P, Q, k, g, w.ra, w.rb)
        f = fac(cp, k)
    else:
        neighbour_sums(S, k, g, w.a, w.b)
    field_from_sums(cp, cp.M, cp.M, cp.AT[f], cp.BT[f], w.a, w.b, w.a, w.b, w.ra, w.rb, h[k], w.phi)


@physics_call
def refresh_projections(cp, S, k, P, Q):
    """P_k <- B_k^T S_k, Q_k <- A_k^T S_k (low-rank codes; after site k moved): O(n r)."""
    f = fac(cp, k)
    project(cp.B[f], cp.A[f], S[k], S[k], P[k], Q[k])


@physics_call
def project_sites(S, cp, P, Q, i0, di):
    """P_i = B_i^T S_i, Q_i = A_i^T S_i for sites i0, i0 + di, ... (low rank; P, Q (N, r))."""
    for i in range(i0, S.shape[0], di):
        refresh_projections(cp, S, i, P, Q)


@physics_call
def energy_sites(S, g, cp, h, P, Q, i0, di):
    """sum over sites i = i0, i0 + di, ... of -sum_j W_ij S_i^T M S_j - h_i.S_i (each ordered
    pair once); for low rank P, Q from :func:`project_sites` (S_i^T M_ij S_j = Q_i.P_j)."""
    n = S.shape[1]
    e_tot = 0.0
    for i in range(i0, S.shape[0], di):
        for c in range(n):
            e_tot -= h[i, c] * S[i, c]
        for e in range(g.ptr[i], g.ptr[i + 1]):
            wo = g.w_out[e]
            if wo == 0.0:
                continue
            j = g.idx[e]
            pair = 0.0
            if cp.code == IDENTITY:
                for c in range(n):
                    pair += S[i, c] * S[j, c]
                pair *= cp.J
            elif cp.code >= LOWRANK:
                for q in range(P.shape[1]):
                    pair += Q[i, q] * P[j, q]
            else:
                for c in range(n):
                    acc = 0.0
                    for d in range(n):
                        acc += cp.M[c, d] * S[j, d]
                    pair += S[i, c] * acc
            e_tot -= wo * pair
    return e_tot


@physics_call
def total_energy(S, g, cp, h, P, Q):
    """H(S) from scratch; low rank: P, Q (N, r) are filled with the projections of S (cost
    O(N n r + n_bonds r))."""
    if cp.code >= LOWRANK:
        project_sites(S, cp, P, Q, 0, 1)
    return energy_sites(S, g, cp, h, P, Q, 0, 1)
