"""Cooperative pieces of a site update: the threads of a block share one site's work.

Thread ``tid`` of ``nt`` owns the components ``tid, tid + nt, ...`` and calls the shared physics
of :mod:`..field`, :mod:`..moves` and :mod:`..site` on strided views (``x[tid::nt]``); what is left
here are the steps that need the whole block: block sums (norms, dot products, dE, E, m.u), the
rank projections split over (rank index, chunk of components) pairs, and the Gaussian vectors
drawn component by component, the refresh of a moved site's projections. These are CUDA-only because they call ``cuda.syncthreads`` (numba-cuda has no
way to hand a reduction to a function shared with the CPU: device functions cannot be passed as
arguments). Block sums and chunked projections add in another order than the CPU, so the
cooperative path agrees with the CPU to rounding (tests/test_cuda.py: rtol 1e-9), not bit for bit.
"""
from __future__ import annotations

import math

from numba import cuda

from .._jit import cuda_device
from ..arrays import LOWRANK
from ..field import energy_sites, fac, field_from_sums, neighbour_sums, project, rank_sums
from ..moves import dot, hidden_norm2, vmf_combine, vmf_w
from ..rng import chi2_draw, gauss
from ..site import magnetisation


@cuda_device
def block_sum(x, red, tid, nt):
    """Sum of x over the block (nt a power of two); red: (>= nt,) shared scratch."""
    red[tid] = x
    cuda.syncthreads()
    s = nt // 2
    while s > 0:
        if tid < s:
            red[tid] += red[tid + s]
        cuda.syncthreads()
        s //= 2
    tot = red[0]
    cuda.syncthreads()
    return tot


@cuda_device
def block_sum2(x, y, red, tid, nt):
    """Two block sums at once; red: (>= 2 nt,)."""
    red[tid] = x
    red[nt + tid] = y
    cuda.syncthreads()
    s = nt // 2
    while s > 0:
        if tid < s:
            red[tid] += red[tid + s]
            red[nt + tid] += red[nt + tid + s]
        cuda.syncthreads()
        s //= 2
    tx = red[0]
    ty = red[nt]
    cuda.syncthreads()
    return tx, ty


@cuda_device
def field_coop(Sr, Pr, Qr, k, g, cp, AT, BT, h, w, tid, nt):
    """w.phi <- phi_k (:func:`..field.local_field`), the block cooperating: thread tid owns the
    components tid, tid + nt, ... of every vector, and for the low-rank codes the rank indices
    tid, tid + nt, ... of the sums over the neighbours' projections Pr, Qr (N, rk) (each element
    is added in the CPU's order, so the field equals the CPU's bit for bit). AT, BT (F, rk, n):
    the transposed factor sets (shared or global copies)."""
    f = 0
    if cp.code >= LOWRANK:
        rank_sums(Pr[:, tid::nt], Qr[:, tid::nt], k, g, w.ra[tid::nt], w.rb[tid::nt])
        f = fac(cp, k)
    else:
        neighbour_sums(Sr[:, tid::nt], k, g, w.a[tid::nt], w.b[tid::nt])
    cuda.syncthreads()
    field_from_sums(cp, cp.M[tid::nt, :], cp.M[:, tid::nt], AT[f][:, tid::nt], BT[f][:, tid::nt],
                    w.a, w.b, w.a[tid::nt], w.b[tid::nt], w.ra, w.rb, h[k, tid::nt], w.phi[tid::nt])
    cuda.syncthreads()


@cuda_device
def refresh_coop(cp, A, B, Sr, k, Pr, Qr, part, tid, nt):
    """Pr[k] <- B_k^T S_k, Qr[k] <- A_k^T S_k (:func:`..field.refresh_projections`), the block
    cooperating: (rank index, chunk of components) pairs, then the chunks summed. A, B (F, n, rk);
    part: (2 max(nt, rk),) scratch. With rk >= nt (one chunk) the CPU's order, else another."""
    rk = A.shape[2]
    f = fac(cp, k)
    Af = A[f]
    Bf = B[f]
    nch = nt // rk if rk < nt else 1
    half = part.shape[0] // 2
    for t in range(tid, nch * rk, nt):
        q = t % rk
        ch = t // rk
        project(Bf[ch::nch, q:q + 1], Af[ch::nch, q:q + 1], Sr[k, ch::nch], Sr[k, ch::nch],
                part[t:t + 1], part[half + t:half + t + 1])
    cuda.syncthreads()
    for q in range(tid, rk, nt):
        sp = 0.0
        sq = 0.0
        for ch in range(nch):
            sp += part[ch * rk + q]
            sq += part[half + ch * rk + q]
        Pr[k, q] = sp
        Qr[k, q] = sq
    cuda.syncthreads()


@cuda_device
def gauss_block(vs, j0, out, tid, nt):
    """out (n,) <- standard normals, component c from draw j0 + c (the draws of
    rng.gauss_vector), components split over the block."""
    n = out.shape[0]
    for c in range(tid, n, nt):
        out[c] = gauss(vs, j0 + c)
    cuda.syncthreads()


@cuda_device
def metropolis_coop(sig, dlt, vs, out, red, n_h, tid, nt):
    """moves.propose_continuous for n > 4: out = normalize(sig + dlt g), g Gaussian (n_h hidden
    components: every thread draws the same hidden norm)."""
    n = sig.shape[0]
    gauss_block(vs, 0, out, tid, nt)
    hid2, _ = hidden_norm2(sig, dlt, n_h, vs, n)
    part = 0.0
    for c in range(tid, n, nt):
        x = sig[c] + dlt * out[c]
        out[c] = x
        part += x * x
    nrm = math.sqrt(block_sum(part, red, tid, nt) + hid2)
    inv = 1.0 / nrm
    for c in range(tid, n, nt):
        if nrm < 1e-300:
            out[c] = sig[c]
        else:
            out[c] *= inv
    cuda.syncthreads()


@cuda_device
def heatbath_coop(phi, m, beta, vs, out, red, fsh, ish, n_h, tid, nt):
    """moves.heatbath_continuous for n > 4: sigma ~ exp(beta m sigma.phi) (n_h hidden
    components: every thread draws the same chi-square)."""
    n = phi.shape[0]
    pn = math.sqrt(block_sum(dot(phi[tid::nt], phi[tid::nt]), red, tid, nt))
    if tid == 0:
        w, j = vmf_w(beta * m * pn, n + n_h, vs, 0)
        fsh[0] = w
        ish[1] = j
    cuda.syncthreads()
    w = fsh[0]
    j0 = ish[1]
    gauss_block(vs, j0, out, tid, nt)
    c2, _ = chi2_draw(n_h, vs, j0 + n)
    if pn > 0.0:
        proj = block_sum(dot(out[tid::nt], phi[tid::nt]), red, tid, nt) / (pn * pn)
        nr = 0.0
        for c in range(tid, n, nt):
            x = out[c] - proj * phi[c]
            out[c] = x
            nr += x * x
        nrm = math.sqrt(block_sum(nr, red, tid, nt) + c2)
        sw2 = 1.0 - w * w
        if sw2 < 0.0:
            sw2 = 0.0
        vmf_combine(w, math.sqrt(sw2), phi[tid::nt], pn, out[tid::nt], nrm, out[tid::nt])
    else:
        inv = 1.0 / math.sqrt(block_sum(dot(out[tid::nt], out[tid::nt]), red, tid, nt) + c2)
        for c in range(tid, n, nt):
            out[c] *= inv
    cuda.syncthreads()


@cuda_device
def overrelax_coop(sig, phi, out, red, tid, nt):
    """moves.overrelax: out = 2 (sig.mu) mu - sig."""
    n = sig.shape[0]
    pp, sp = block_sum2(dot(phi[tid::nt], phi[tid::nt]), dot(sig[tid::nt], phi[tid::nt]), red,
                        tid, nt)
    if pp <= 0.0:
        for c in range(tid, n, nt):
            out[c] = sig[c]
    else:
        s = 2.0 * sp / pp
        for c in range(tid, n, nt):
            out[c] = s * phi[c] - sig[c]
    cuda.syncthreads()


@cuda_device
def resync_coop(r, ch, g, cp, st, A, B, h, red, tid, nt):
    """E[r], mvec[r], mu[r] and (low rank) the projections P[r], Q[r] from scratch
    (field.total_energy and site.magnetisation, the block cooperating; every projection element is
    summed in the CPU's order). A, B (F, n, rk): the factor sets."""
    Sr = ch.S[r]
    P = ch.P[r]
    Q = ch.Q[r]
    N = Sr.shape[0]
    if cp.code >= LOWRANK:
        rk = A.shape[2]
        for t in range(tid, N * rk, nt):
            i = t // rk
            q = t % rk
            f = fac(cp, i)
            project(B[f][:, q:q + 1], A[f][:, q:q + 1], Sr[i], Sr[i], P[i, q:q + 1], Q[i, q:q + 1])
        cuda.syncthreads()
    e = energy_sites(Sr, g, cp, h, P, Q, tid, nt)
    m_u = magnetisation(Sr[:, tid::nt], st.free, st.U[:, tid::nt], ch.mvec[r, tid::nt])
    e, m_u = block_sum2(e, m_u, red, tid, nt)
    if tid == 0:
        ch.E[r] = e
        ch.mu[r] = m_u
    cuda.syncthreads()
