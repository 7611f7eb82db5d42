"""CUDA Monte Carlo loops (Numba CUDA): one thread block per replica.

Same algorithms, same random numbers and the same site physics as :mod:`spinsim.kernels.cpu`:
every site-update function (counter RNG, local field, Metropolis proposal, von Mises-Fisher
heat bath, over-relaxation, discrete heat bath, site energies) comes from
``physics.build(cuda.jit(device=True))``, and the serial sweep below is the CPU's
``cpu._sweep_replica`` recompiled from its source for the GPU. A CUDA chain and a CPU chain with
the same seed therefore draw the same numbers and follow the same trajectory; they agree to
floating-point tolerance (the CPU compiles with fastmath and the cooperative reductions below
sum in another order), which the simulator tests check (``tests/test_cuda.py``).

Mapping
-------
``grid = R`` blocks, block ``r`` runs replica ``r`` (replica ``r`` sits at ``beta[r]``, with its
own field when the runner is given per-replica fields ``h_rep``): the whole (T, h) grid of a
Hamiltonian is one launch. Single-site dynamics is sequential over the sites of a sweep; the
threads of a block share the work *inside* a site update:

* **serial path** (``n_comp <= 4`` with an identity coupling: lattices): thread 0 runs the CPU
  sweep itself (``cpu._sweep_replica``); the block has one thread.
* **cooperative path** (everything else, e.g. heads: n = 768, rank-64 ``LowRank``):
  - local field: threads split the component loop for the neighbour sums
    ``a = sum_j W_kj S_j``, ``b = sum_j W_jk S_j`` (coalesced over components), the rank
    projections ``B^T a``, ``A^T b`` over (rank index, chunk of components) pairs (coalesced over
    the rank index, chunks added in a second pass) and the back-projection
    ``phi = A (B^T a) + B (A^T b) + h_k`` over components (coalesced with the transposed copies
    ``A^T``, ``B^T``);
  - continuous spins with n > 4: thread 0 draws the scalar parts (the vMF component ``w`` with
    its rejection loop, the Metropolis acceptance); the Gaussian components of the heat-bath
    direction or of the Metropolis step are filled by all threads (pair p from uniforms
    ``j + 2p, j + 2p + 1``: the draws of ``physics.gauss_vector``), norms and dot products are
    block reductions; n <= 4 and discrete spins use the physics functions on thread 0;
  - resynchronisation of E and m (every ``resync`` sweeps): projections ``B^T S_i``, ``A^T S_i``
    split over (site, rank) pairs, bond sums over sites, block reduction.

Replica exchange runs between launches (one sweep per launch, then one block per chain decides
the swaps with the CPU's draws and swaps configurations cooperatively, then measures); without
exchange a launch runs many sweeps and each block measures its replica after every sweep into
device arrays, which :meth:`Runner.results` copies back.

Memory
------
* per-block workspaces (field, spin, proposal, rank vectors, reduction scratch:
  ``5 n + 2 rank + 2 max(threads, rank) + 2 threads`` doubles, 39 KiB for n = 768, rank 64 and
  256 threads) live in dynamic shared memory while they fit in 48 KiB (the default per-block
  limit), else in a global scratch row per replica;
* the low-rank factors ``A, B`` and their transposes (``4 n rank`` doubles) are copied into shared
  memory at kernel start when they fit beside the workspaces (lattice-sized and small-head
  couplings), else read from global memory: every block reads the same factors (one head), so
  they stay resident in L2 (a 768 x 64 pair in float64 is 0.8 MB, the H100 L2 is 50 MB);
* constant memory is not used: Numba's constant arrays are compile-time constants (a recompile
  per Hamiltonian) and the constant cache serialises the per-thread distinct addresses of the
  field loops;
* spins ``S (R, N, n)``, energies, magnetisations, counters and the measured series stay on the
  device between calls.

Without a GPU (and without ``NUMBA_ENABLE_CUDASIM=1``) the :class:`Runner` raises a one-line
``RuntimeError``. Wolff is CPU-only.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import sys
import warnings

import numpy as np
from numba import config, cuda, float64, int64

from . import cpu
from .physics import (ALG_HEATBATH, ALG_METROPOLIS, ALG_OVERRELAX, KIND_CONTINUOUS, KIND_DISCRETE,
                      build)

__all__ = ["Runner", "available", "SIMULATOR", "SHARED_BYTES", "plan"]

SIMULATOR = bool(config.ENABLE_CUDASIM)
SHARED_BYTES = 48 * 1024          # dynamic shared memory per block without opt-in
MAX_THREADS = 8 if SIMULATOR else 256   # the simulator runs each thread as a Python thread
MAX_REGISTERS = 128   # cooperative kernel: 2 blocks of 256 threads per SM (ptxas: 255 unbounded)

if SIMULATOR:   # the simulator runs the uint64 hash in NumPy scalars, which warn on wrap-around
    warnings.filterwarnings("ignore", message="overflow encountered in scalar", category=RuntimeWarning)

P = build(cuda.jit(device=True))


@contextlib.contextmanager
def _sim_speed():
    """Under the simulator, hand the GIL between the block's Python threads and the simulator's
    polling main thread every 0.5 ms instead of 5 ms (each syncthreads waits for a hand-over:
    3-6x faster); restored afterwards. No effect on a GPU."""
    if not SIMULATOR:
        yield
        return
    old = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def available() -> bool:
    """True when a CUDA GPU is visible to Numba (or the simulator is enabled)."""
    try:
        return bool(cuda.is_available())
    except Exception:   # pragma: no cover - broken driver installs
        return False


def _retarget(fn, ns: dict):
    """Recompile a CPU loop function from its source with the CUDA physics namespace."""
    src = inspect.getsource(getattr(fn, "py_func", fn))
    src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith("@"))
    exec(compile(src, inspect.getsourcefile(getattr(fn, "py_func", fn)), "exec"), ns)
    return cuda.jit(device=True)(ns[fn.__name__])


_NS = {name: getattr(P, name) for name in vars(P)}
_NS.update(math=math, np=np, ALG_METROPOLIS=ALG_METROPOLIS, ALG_HEATBATH=ALG_HEATBATH,
           ALG_OVERRELAX=ALG_OVERRELAX, KIND_CONTINUOUS=KIND_CONTINUOUS, KIND_DISCRETE=KIND_DISCRETE)
_sweep_serial = _retarget(cpu._sweep_replica, _NS)   # the CPU's sweep, run by thread 0
replica_key = P.replica_key
visit_seed = P.visit_seed
uniform = P.uniform
gauss2 = P.gauss2
vmf_w = P.vmf_w
propose_continuous = P.propose_continuous
heatbath_continuous = P.heatbath_continuous
overrelax = P.overrelax
heatbath_discrete = P.heatbath_discrete
site_energy_out = P.site_energy_out


# ----------------------------------------------------------------------------- block helpers
@cuda.jit(device=True)
def _block_sum(x, red, tid, nt):
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


@cuda.jit(device=True)
def _block_sum2(x, y, red, tid, nt):
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


@cuda.jit(device=True)
def _field_coop(Sr, k, ptr, idx, w_out, w_in, code, J, Mmat, A, B, AT, BT, rk, h, a, b, ra, rb,
                phi, part, tid, nt):
    """phi (n,) <- phi_k = M sum_j W_kj S_j + M^T sum_j W_jk S_j + h_k, the block cooperating.

    A, B: (n * rk,) row-major factors, AT, BT: (rk * n,) their transposes (M = A B^T);
    part: (2 max(nt, rk),) scratch. Same formula as physics.field_general."""
    n = Sr.shape[1]
    e0 = ptr[k]
    e1 = ptr[k + 1]
    for c in range(tid, n, nt):
        sa = 0.0
        sb = 0.0
        for e in range(e0, e1):
            s = Sr[idx[e], c]
            sa += w_out[e] * s
            sb += w_in[e] * s
        a[c] = sa
        b[c] = sb
    cuda.syncthreads()
    if code == 2:
        nch = nt // rk if rk < nt else 1
        half = part.shape[0] // 2
        for t in range(tid, nch * rk, nt):
            q = t % rk
            ch = t // rk
            sa = 0.0
            sb = 0.0
            for d in range(ch, n, nch):
                sa += B[d * rk + q] * a[d]
                sb += A[d * rk + q] * b[d]
            part[t] = sa
            part[half + t] = sb
        cuda.syncthreads()
        for q in range(tid, rk, nt):
            sa = 0.0
            sb = 0.0
            for ch in range(nch):
                sa += part[ch * rk + q]
                sb += part[half + ch * rk + q]
            ra[q] = sa
            rb[q] = sb
        cuda.syncthreads()
        for c in range(tid, n, nt):
            acc = h[k, c]
            for q in range(rk):
                acc += AT[q * n + c] * ra[q] + BT[q * n + c] * rb[q]
            phi[c] = acc
    elif code == 1:
        for c in range(tid, n, nt):
            acc = h[k, c]
            for d in range(n):
                acc += Mmat[c, d] * a[d] + Mmat[d, c] * b[d]
            phi[c] = acc
    else:
        for c in range(tid, n, nt):
            phi[c] = J * (a[c] + b[c]) + h[k, c]
    cuda.syncthreads()


@cuda.jit(device=True)
def _metropolis_coop(sig, dlt, vs, out, red, tid, nt):
    """physics.propose_continuous for n > 4: out = normalize(sig + dlt g), g Gaussian."""
    n = sig.shape[0]
    part = 0.0
    for p in range(tid, (n + 1) // 2, nt):
        g0, g1 = gauss2(vs, 2 * p)
        c = 2 * p
        x = sig[c] + dlt * g0
        out[c] = x
        part += x * x
        if c + 1 < n:
            x = sig[c + 1] + dlt * g1
            out[c + 1] = x
            part += x * x
    nrm = math.sqrt(_block_sum(part, red, tid, nt))
    for c in range(tid, n, nt):
        if nrm < 1e-300:
            out[c] = sig[c]
        else:
            out[c] /= nrm
    cuda.syncthreads()


@cuda.jit(device=True)
def _heatbath_coop(phi, m, beta, vs, out, red, fsh, ish, tid, nt):
    """physics.heatbath_continuous for n > 4: sigma ~ exp(beta m sigma.phi)."""
    n = phi.shape[0]
    pp = 0.0
    for c in range(tid, n, nt):
        pp += phi[c] * phi[c]
    pn = math.sqrt(_block_sum(pp, red, tid, nt))
    if tid == 0:
        w, j = vmf_w(beta * m * pn, n, vs, 0)
        fsh[0] = w
        ish[1] = j
    cuda.syncthreads()
    w = fsh[0]
    j0 = ish[1]
    for p in range(tid, (n + 1) // 2, nt):
        g0, g1 = gauss2(vs, j0 + 2 * p)
        out[2 * p] = g0
        if 2 * p + 1 < n:
            out[2 * p + 1] = g1
    cuda.syncthreads()
    if pn > 0.0:
        pr = 0.0
        for c in range(tid, n, nt):
            pr += out[c] * phi[c]
        proj = _block_sum(pr, red, tid, nt) / pn
        nr = 0.0
        for c in range(tid, n, nt):
            x = out[c] - proj * phi[c] / pn
            out[c] = x
            nr += x * x
        nrm = math.sqrt(_block_sum(nr, red, tid, nt))
        sw2 = 1.0 - w * w
        if sw2 < 0.0:
            sw2 = 0.0
        sw = math.sqrt(sw2)
        for c in range(tid, n, nt):
            out[c] = w * phi[c] / pn + sw * out[c] / nrm
    else:
        nr = 0.0
        for c in range(tid, n, nt):
            nr += out[c] * out[c]
        nrm = math.sqrt(_block_sum(nr, red, tid, nt))
        for c in range(tid, n, nt):
            out[c] /= nrm
    cuda.syncthreads()


@cuda.jit(device=True)
def _overrelax_coop(sig, phi, out, red, tid, nt):
    """physics.overrelax: out = 2 (sig.mu) mu - sig."""
    n = sig.shape[0]
    pp = 0.0
    sp = 0.0
    for c in range(tid, n, nt):
        pp += phi[c] * phi[c]
        sp += sig[c] * phi[c]
    pp, sp = _block_sum2(pp, sp, red, tid, nt)
    if pp <= 0.0:
        for c in range(tid, n, nt):
            out[c] = sig[c]
    else:
        s = 2.0 * sp / pp
        for c in range(tid, n, nt):
            out[c] = s * phi[c] - sig[c]
    cuda.syncthreads()


@cuda.jit(device=True)
def _sweep_coop(r, s, alg, key, S, X, E, mvec, mu, beta, delta, acc, tries, free, ptr, idx, w_out,
                w_in, code, J, Mmat, A2, B2, A, B, AT, BT, rk, h, lengths, U, kind, V, slots, wa, wb,
                wra, wrb, wphi, wsig, wnew, wlog, part, red, fsh, ish, tid, nt):
    """One sweep of replica r, the block cooperating (same draws as cpu._sweep_replica)."""
    n = S.shape[2]
    nf = free.shape[0]
    inv_nf = 1.0 / nf
    Sr = S[r]
    b = beta[r]
    dlt = delta[r]
    n_acc = 0
    e_r = E[r]
    mu_r = mu[r]
    big = n > 4
    for q in range(nf):
        k = free[q]
        vs = visit_seed(key, s, k, slots)
        _field_coop(Sr, k, ptr, idx, w_out, w_in, code, J, Mmat, A, B, AT, BT, rk, h, wa, wb, wra,
                    wrb, wphi, part, tid, nt)
        m = lengths[k]
        dE = 0.0
        nq = 0
        skip = False
        if kind == KIND_CONTINUOUS:
            inv_m = 1.0 / m
            for c in range(tid, n, nt):
                wsig[c] = Sr[k, c] * inv_m
            cuda.syncthreads()
            if big:
                if alg == ALG_METROPOLIS:
                    _metropolis_coop(wsig, dlt, vs, wnew, red, tid, nt)
                elif alg == ALG_HEATBATH:
                    _heatbath_coop(wphi, m, b, vs, wnew, red, fsh, ish, tid, nt)
                else:
                    _overrelax_coop(wsig, wphi, wnew, red, tid, nt)
                d = 0.0
                for c in range(tid, n, nt):
                    d -= (wnew[c] - wsig[c]) * wphi[c]
                dE = _block_sum(d, red, tid, nt) * m
            elif tid == 0:
                if alg == ALG_METROPOLIS:
                    propose_continuous(wsig, dlt, vs, 0, wnew)
                elif alg == ALG_HEATBATH:
                    heatbath_continuous(wphi, m, b, vs, 0, wnew)
                else:
                    overrelax(wsig, wphi, wnew)
                for c in range(n):
                    dE -= (wnew[c] - wsig[c]) * wphi[c]
                dE *= m
        elif tid == 0:
            cur = X[r, k]
            K = V.shape[0]
            if alg == ALG_METROPOLIS:
                if K < 2:
                    skip = True
                else:
                    nq = int(uniform(vs, 0) * (K - 1))
                    if nq >= K - 1:
                        nq = K - 2
                    if nq >= cur:
                        nq += 1
            else:
                nq = heatbath_discrete(V, wphi, m, b, vs, 0, wlog)
            if not skip:
                for c in range(n):
                    wnew[c] = V[nq, c]
                    dE -= (V[nq, c] - V[cur, c]) * wphi[c]
                dE *= m
        if tid == 0:
            ok = 0 if skip else 1
            if ok == 1 and alg == ALG_METROPOLIS and dE > 0.0:
                if uniform(vs, 1 << 20) >= math.exp(-b * dE):
                    ok = 0
            ish[0] = ok
        cuda.syncthreads()
        if ish[0] == 1:
            du = 0.0
            for c in range(tid, n, nt):
                snew = m * wnew[c]
                dd = snew - Sr[k, c]
                mvec[r, c] += dd * inv_nf
                du += dd * U[k, c]
                Sr[k, c] = snew
            du = _block_sum(du, red, tid, nt)
            if tid == 0:
                if kind != KIND_CONTINUOUS:
                    X[r, k] = nq
                n_acc += 1
                mu_r += du * inv_nf
                e_r += dE
    if tid == 0:
        E[r] = e_r
        mu[r] = mu_r
        if alg == ALG_METROPOLIS:
            tries[r] += nf
            acc[r] += n_acc
    cuda.syncthreads()


@cuda.jit(device=True)
def _resync_coop(r, S, E, mvec, mu, free, ptr, idx, w_out, code, J, Mmat, A2, B2, A, B, rk, h, U,
                 PQ, wra, wrb, red, tid, nt):
    """E[r], mvec[r], mu[r] from scratch (physics.total_energy, the block cooperating).
    PQ: (2, N, rk) global scratch for the projections P_j = B^T S_j, Q_i = A^T S_i."""
    Sr = S[r]
    N = Sr.shape[0]
    n = Sr.shape[1]
    e = 0.0
    if code == 2:
        Pm = PQ[0]
        Qm = PQ[1]
        for t in range(tid, N * rk, nt):
            i = t // rk
            q = t % rk
            p = 0.0
            qq = 0.0
            for c in range(n):
                sv = Sr[i, c]
                p += B[c * rk + q] * sv
                qq += A[c * rk + q] * sv
            Pm[i, q] = p
            Qm[i, q] = qq
        cuda.syncthreads()
        for i in range(tid, N, nt):
            for c in range(n):
                e -= h[i, c] * Sr[i, c]
            for ee in range(ptr[i], ptr[i + 1]):
                wo = w_out[ee]
                if wo == 0.0:
                    continue
                j = idx[ee]
                pair = 0.0
                for q in range(rk):
                    pair += Qm[i, q] * Pm[j, q]
                e -= wo * pair
    else:
        for i in range(tid, N, nt):
            e += site_energy_out(Sr, i, ptr, idx, w_out, code, J, Mmat, A2, B2, h, wra, wrb)
    nf = free.shape[0]
    m_u = 0.0
    for c in range(tid, n, nt):
        mc = 0.0
        for q in range(nf):
            k = free[q]
            mc += Sr[k, c] / nf
            m_u += Sr[k, c] * U[k, c] / nf
        mvec[r, c] = mc
    e, m_u = _block_sum2(e, m_u, red, tid, nt)
    if tid == 0:
        E[r] = e
        mu[r] = m_u
    cuda.syncthreads()


@cuda.jit(device=True)
def _measure_one(r, E, mvec, mu, out_E, out_mabs, out_mu, out_msum, t):
    """cpu._measure for one replica."""
    out_E[r, t] = E[r]
    m2 = 0.0
    for c in range(mvec.shape[1]):
        m2 += mvec[r, c] * mvec[r, c]
        out_msum[r, c] += mvec[r, c]
    out_mabs[r, t] = math.sqrt(m2)
    out_mu[r, t] = mu[r]


@cuda.jit(device=True)
def _views(r, gwork, sh_work, sh_fac, n, rk, nt, Af, Bf, ATf, BTf):
    """Slice the block's workspaces (shared or global) and pick the factor copies."""
    dyn = cuda.shared.array(0, float64)
    base = dyn if sh_work else gwork[r]
    wide = nt if nt > rk else rk
    o = 5 * n + 2 * rk
    work_len = o + 2 * wide + 2 * nt
    if sh_fac:
        f = dyn[work_len:]
        A = f[0:n * rk]
        B = f[n * rk:2 * n * rk]
        AT = f[2 * n * rk:3 * n * rk]
        BT = f[3 * n * rk:4 * n * rk]
    else:
        A = Af
        B = Bf
        AT = ATf
        BT = BTf
    return (base[0:n], base[n:2 * n], base[2 * n:3 * n], base[3 * n:4 * n], base[4 * n:5 * n],
            base[5 * n:5 * n + rk], base[5 * n + rk:o], base[o:o + 2 * wide],
            base[o + 2 * wide:work_len], A, B, AT, BT)


@cuda.jit(device=True)
def _load_factors(sh_fac, A, B, AT, BT, Af, Bf, ATf, BTf, tid, nt):
    if sh_fac:
        for i in range(tid, Af.shape[0], nt):
            A[i] = Af[i]
            B[i] = Bf[i]
            AT[i] = ATf[i]
            BT[i] = BTf[i]
    cuda.syncthreads()


# ----------------------------------------------------------------------------- kernels
def _make_sweeps_kernel(coop: bool):
    """The sweep kernel with the path fixed at compile time (``coop`` is a closure constant, so
    Numba prunes the other branch; the serial path's register-hungry inlined physics stays out of
    the cooperative kernel)."""
    opts = dict(max_registers=MAX_REGISTERS) if (coop and not SIMULATOR) else {}

    @cuda.jit(**opts)
    def _k_sweeps(S, X, E, mvec, mu, beta, delta, acc, tries, seed, replica_ids, sweep0, n_sweeps,
                  alg, n_overrelax, adapt, free, ptr, idx, w_out, w_in, code, J, Mmat, A2, B2, Af, Bf,
                  ATf, BTf, rk, h_all, lengths, U, kind, V, resync, out_E, out_mabs, out_mu, out_msum,
                  t0, measure, gwork, wlog_all, PQ, sh_work, sh_fac):
        """n_sweeps sweeps of replica blockIdx.x (see cpu.run_local for the semantics; exchange is
        done by _k_exchange between launches)."""
        r = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        fsh = cuda.shared.array(2, float64)
        ish = cuda.shared.array(2, int64)
        N = S.shape[1]
        n = S.shape[2]
        slots = 2 * N + 2
        key = replica_key(seed, replica_ids[r])
        h = h_all[r] if h_all.shape[0] > 1 else h_all[0]
        wlog = wlog_all[r]
        wa, wb, wphi, wsig, wnew, wra, wrb, part, red, A, B, AT, BT = _views(
            r, gwork, sh_work, sh_fac, n, rk, nt, Af, Bf, ATf, BTf)
        _load_factors(sh_fac, A, B, AT, BT, Af, Bf, ATf, BTf, tid, nt)
        for i in range(n_sweeps):
            s = sweep0 + i
            a0 = acc[r]
            t0r = tries[r]
            for o in range(n_overrelax + 1 if alg == ALG_OVERRELAX else 1):
                a = alg
                if alg == ALG_OVERRELAX and o == n_overrelax:
                    a = ALG_HEATBATH
                if coop:
                    _sweep_coop(r, s, a, key, S, X, E, mvec, mu, beta, delta, acc, tries, free, ptr,
                                idx, w_out, w_in, code, J, Mmat, A2, B2, A, B, AT, BT, rk, h, lengths,
                                U, kind, V, slots, wa, wb, wra, wrb, wphi, wsig, wnew, wlog, part, red,
                                fsh, ish, tid, nt)
                elif tid == 0:
                    _sweep_serial(r, s, a, key, S, X, E, mvec, mu, beta, delta, acc, tries, free, ptr,
                                  idx, w_out, w_in, code, J, Mmat, A2, B2, h, lengths, U, kind, V,
                                  slots, wa, wb, wra, wrb, wphi, wsig, wnew, wlog)
            if tid == 0 and adapt and alg == ALG_METROPOLIS and kind == KIND_CONTINUOUS:
                # cpu.run_local's rule (min/max written out: Numba's built-in CUDA target mis-types
                # the varargs min/max overloads)
                dt = tries[r] - t0r
                rate = (acc[r] - a0) / (dt if dt > 1 else 1)
                if rate > 0.5:
                    x = delta[r] * 1.05
                    delta[r] = x if x < 2.0 else 2.0
                else:
                    x = delta[r] * 0.95
                    delta[r] = x if x > 1e-4 else 1e-4
            cuda.syncthreads()
            if resync > 0 and (s + 1) % resync == 0:
                _resync_coop(r, S, E, mvec, mu, free, ptr, idx, w_out, code, J, Mmat, A2, B2, A, B, rk,
                             h, U, PQ[r], wra, wrb, red, tid, nt)
            if measure and t0 >= 0 and tid == 0:
                _measure_one(r, E, mvec, mu, out_E, out_mabs, out_mu, out_msum, t0 + i)
            cuda.syncthreads()
    return _k_sweeps


_k_sweeps_coop = _make_sweeps_kernel(True)
_k_sweeps_serial = _make_sweeps_kernel(False)


@cuda.jit
def _k_resync(S, E, mvec, mu, free, ptr, idx, w_out, code, J, Mmat, A2, B2, Af, Bf, rk, h_all, U,
              PQ, gwork, sh_work):
    """Initial E, mvec, mu of replica blockIdx.x."""
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = S.shape[2]
    h = h_all[r] if h_all.shape[0] > 1 else h_all[0]
    wa, wb, wphi, wsig, wnew, wra, wrb, part, red, A, B, AT, BT = _views(
        r, gwork, sh_work, False, n, rk, nt, Af, Bf, Af, Bf)
    _resync_coop(r, S, E, mvec, mu, free, ptr, idx, w_out, code, J, Mmat, A2, B2, A, B, rk, h, U,
                 PQ[r], wra, wrb, red, tid, nt)


@cuda.jit
def _k_exchange(S, X, E, mvec, mu, beta, seed, replica_ids, s, n_T, swap_acc, swap_tries, out_E,
                out_mabs, out_mu, out_msum, t, do_exchange):
    """cpu._exchange for chain blockIdx.x (replicas ch * n_T ... ch * n_T + n_T - 1), then the
    measurement of its replicas into column t (t < 0: none)."""
    ch = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    flag = cuda.shared.array(1, int64)
    N = S.shape[1]
    n = S.shape[2]
    slots = 2 * N + 2
    if do_exchange:
        for tt in range(s % 2, n_T - 1, 2):
            r1 = ch * n_T + tt
            r2 = r1 + 1
            if tid == 0:
                vs = visit_seed(replica_key(seed, replica_ids[r1]), s, N, slots)
                x = (beta[r1] - beta[r2]) * (E[r1] - E[r2])
                swap_tries[r1] += 1
                f = 0
                if x >= 0.0 or uniform(vs, 0) < math.exp(x):
                    swap_acc[r1] += 1
                    f = 1
                    E[r1], E[r2] = E[r2], E[r1]
                    mu[r1], mu[r2] = mu[r2], mu[r1]
                flag[0] = f
            cuda.syncthreads()
            if flag[0] == 1:
                for e in range(tid, N * n, nt):
                    k = e // n
                    c = e % n
                    S[r1, k, c], S[r2, k, c] = S[r2, k, c], S[r1, k, c]
                for k in range(tid, N, nt):
                    X[r1, k], X[r2, k] = X[r2, k], X[r1, k]
                for c in range(tid, n, nt):
                    mvec[r1, c], mvec[r2, c] = mvec[r2, c], mvec[r1, c]
            cuda.syncthreads()
    if t >= 0 and tid == 0:
        for tt in range(n_T):
            _measure_one(ch * n_T + tt, E, mvec, mu, out_E, out_mabs, out_mu, out_msum, t)


# ----------------------------------------------------------------------------- host side
def _pow2_at_most(x: int, cap: int) -> int:
    p = 1
    while p * 2 <= min(x, cap):
        p *= 2
    return p


def plan(n_comp: int, code: int, rank: int, threads_per_block: int | None = None,
         cooperative: bool | None = None, shared_factors: bool | None = None,
         shared_work: bool | None = None) -> dict:
    """Launch plan: cooperative or serial path, threads per block, what lives in shared memory.

    Serial (one thread per block, thread 0 runs the CPU sweep) for identity couplings with
    n_comp <= 4 (lattices), cooperative otherwise; ``cooperative`` forces either.
    ``shared_work=False`` / ``shared_factors=False`` force the global-memory placements that
    large n uses (for tests); ``None`` decides by the 48 KiB budget."""
    coop = (not (code == 0 and n_comp <= 4)) if cooperative is None else bool(cooperative)
    rk = rank if code == 2 else 1
    if not coop:
        nt = 1
    elif threads_per_block is None:
        nt = _pow2_at_most(max(32, 2 * max(n_comp, rk)), MAX_THREADS)
    else:
        nt = int(threads_per_block)
        if nt < 1 or nt & (nt - 1) or nt > 1024:
            raise ValueError(f"threads_per_block must be a power of two in [1, 1024], got {threads_per_block!r}")
    work_len = 5 * n_comp + 2 * rk + 2 * max(nt, rk) + 2 * nt
    fac_len = 4 * n_comp * rk if code == 2 else 0
    sh_work = 8 * work_len <= SHARED_BYTES
    if shared_work is not None:
        if shared_work and not sh_work:
            raise ValueError(f"shared_work=True: workspaces need {8 * work_len} bytes > {SHARED_BYTES}")
        sh_work = bool(shared_work)
    fits = sh_work and coop and code == 2 and 8 * (work_len + fac_len) <= SHARED_BYTES
    if shared_factors is None:
        sh_fac = fits
    else:
        if shared_factors and not (coop and code == 2 and sh_work):
            raise ValueError("shared_factors=True needs the cooperative path, a LowRank coupling and "
                             f"workspaces in shared memory ({8 * work_len} bytes > {SHARED_BYTES})")
        sh_fac = bool(shared_factors)
    shmem = 8 * ((work_len if sh_work else 0) + (fac_len if sh_fac else 0))
    return dict(coop=coop, threads=nt, rank=rk, work_len=work_len, sh_work=sh_work,
                sh_fac=sh_fac, shared_bytes=shmem)


class Runner:
    """The CUDA twin of :class:`spinsim.kernels.cpu.Runner` (same constructor, ``run``,
    ``reset_counters`` and ``results``). State stays on the device between ``run`` calls.

    Extra keywords: ``h_rep`` (R, N, n) per-replica fields (see cpu.Runner), and the launch plan
    ``threads_per_block``, ``cooperative``, ``shared_factors``, ``shared_work`` (see :func:`plan`)."""

    def __init__(self, S, X, beta, seed, replica_ids, k, *, algorithm, alg_code, n_overrelax,
                 exchange, n_T, delta, resync, n_meas, h_rep=None, threads_per_block=None,
                 cooperative=None, shared_factors=None, shared_work=None):
        if algorithm == "wolff":
            raise ValueError("algorithm 'wolff' is CPU-only; use backend='cpu'")
        if not available():
            raise RuntimeError("backend 'cuda' needs a CUDA GPU (numba.cuda.is_available() is False); "
                               "use backend='cpu' or 'auto'")
        R, N, n = S.shape
        self.k = k
        self.algorithm = algorithm
        self.alg_code = int(alg_code)
        self.n_overrelax = int(n_overrelax)
        self.exchange = bool(exchange)
        self.n_T = int(n_T)
        self.resync = int(resync)
        self.seed = np.uint64(seed)
        code = int(k["code"])
        rank = k["A"].shape[1] if code == 2 else 1
        self.plan = plan(n, code, rank, threads_per_block, cooperative, shared_factors, shared_work)
        rk = self.plan["rank"]
        h_all = cpu.per_replica_fields(k["h"], h_rep, R, exchange, n_T)
        if code == 2:
            A, B = np.asarray(k["A"], np.float64), np.asarray(k["B"], np.float64)
            fac = [np.ascontiguousarray(x).ravel() for x in (A, B, A.T, B.T)]
        else:
            fac = [np.zeros(1)] * 4
        K = k["V"].shape[0]
        d = cuda.to_device
        self._const = dict(
            free=d(k["free"]), ptr=d(k["ptr"]), idx=d(k["idx"]), w_out=d(k["w_out"]),
            w_in=d(k["w_in"]), code=code, J=float(k["J"]), Mmat=d(np.ascontiguousarray(k["Mmat"])),
            A2=d(np.ascontiguousarray(k["A"])), B2=d(np.ascontiguousarray(k["B"])),
            Af=d(fac[0]), Bf=d(fac[1]), ATf=d(fac[2]), BTf=d(fac[3]), rk=rk, h_all=d(h_all),
            lengths=d(k["lengths"]), U=d(k["U"]), kind=int(k["kind"]), V=d(k["V"]))
        self._S = d(np.ascontiguousarray(S, np.float64))
        self._X = d(np.ascontiguousarray(X, np.int64))
        self._beta = d(np.ascontiguousarray(beta, np.float64))
        self._ids = d(np.ascontiguousarray(replica_ids, np.int64))
        self._delta = d(np.full(R, float(delta)))
        z = lambda *shape, dt=np.float64: d(np.zeros(shape, dtype=dt))   # noqa: E731
        self._E, self._mvec, self._mu = z(R), z(R, n), z(R)
        self._acc, self._tries = z(R, dt=np.int64), z(R, dt=np.int64)
        self._swap_acc, self._swap_tries = z(R, dt=np.int64), z(R, dt=np.int64)
        self._out_E, self._out_mabs, self._out_mu = z(R, n_meas), z(R, n_meas), z(R, n_meas)
        self._out_msum = z(R, n)
        self._gwork = z(R, 1 if self.plan["sh_work"] else self.plan["work_len"])
        self._wlog = z(R, K)
        self._PQ = z(R, 2, N if code == 2 else 1, rk)
        self.cluster = np.zeros(R)
        self.n_clusters = np.ones(R, dtype=np.int64)
        c = self._const
        sh = 8 * self.plan["work_len"] if self.plan["sh_work"] else 0
        with _sim_speed():
            _k_resync[R, self.plan["threads"], 0, sh](
                self._S, self._E, self._mvec, self._mu, c["free"], c["ptr"], c["idx"], c["w_out"],
                c["code"], c["J"], c["Mmat"], c["A2"], c["B2"], c["Af"], c["Bf"], rk, c["h_all"],
                c["U"], self._PQ, self._gwork, self.plan["sh_work"])

    # host copies of the live state (like cpu.Runner's attributes)
    @property
    def S(self) -> np.ndarray:
        return self._S.copy_to_host()

    @property
    def X(self) -> np.ndarray:
        return self._X.copy_to_host()

    @property
    def E(self) -> np.ndarray:
        return self._E.copy_to_host()

    @property
    def delta(self) -> np.ndarray:
        return self._delta.copy_to_host()

    def _sweeps(self, sweep0: int, n_sweeps: int, t0: int, measure: bool, adapt: bool) -> None:
        c, p = self._const, self.plan
        R = self._S.shape[0]
        kernel = _k_sweeps_coop if p["coop"] else _k_sweeps_serial
        kernel[R, p["threads"], 0, p["shared_bytes"]](
            self._S, self._X, self._E, self._mvec, self._mu, self._beta, self._delta, self._acc,
            self._tries, self.seed, self._ids, sweep0, n_sweeps, self.alg_code, self.n_overrelax,
            bool(adapt), c["free"], c["ptr"], c["idx"], c["w_out"], c["w_in"], c["code"], c["J"],
            c["Mmat"], c["A2"], c["B2"], c["Af"], c["Bf"], c["ATf"], c["BTf"], c["rk"], c["h_all"],
            c["lengths"], c["U"], c["kind"], c["V"], self.resync, self._out_E, self._out_mabs,
            self._out_mu, self._out_msum, t0, bool(measure), self._gwork, self._wlog, self._PQ,
            p["sh_work"], p["sh_fac"])

    def run(self, sweep0: int, n_sweeps: int, measure_from: int, adapt: bool) -> None:
        """Sweeps sweep0 .. sweep0 + n_sweeps - 1; measured into columns measure_from + i when
        measure_from >= 0 (the semantics of cpu.run_local)."""
        with _sim_speed():
            self._run(sweep0, n_sweeps, measure_from, adapt)

    def _run(self, sweep0: int, n_sweeps: int, measure_from: int, adapt: bool) -> None:
        if not self.exchange:
            self._sweeps(sweep0, n_sweeps, measure_from, True, adapt)
            return
        R = self._S.shape[0]
        n_chains = R // self.n_T
        nt = min(self.plan["threads"] if self.plan["coop"] else 32, MAX_THREADS)
        for i in range(n_sweeps):
            s = sweep0 + i
            self._sweeps(s, 1, -1, False, adapt)
            _k_exchange[n_chains, nt](
                self._S, self._X, self._E, self._mvec, self._mu, self._beta, self.seed, self._ids,
                s, self.n_T, self._swap_acc, self._swap_tries, self._out_E, self._out_mabs,
                self._out_mu, self._out_msum, measure_from + i if measure_from >= 0 else -1, True)

    def reset_counters(self, n_discard: int = 0) -> None:
        """Start acceptance statistics afresh (called when equilibration ends)."""
        for a in (self._acc, self._tries, self._swap_acc, self._swap_tries):
            a.copy_to_device(np.zeros(a.shape, dtype=np.int64))
        self.cluster[:] = 0

    def results(self) -> dict[str, np.ndarray]:
        """Copy the measured series and counters back (the keys of cpu.Runner.results)."""
        h = lambda a: a.copy_to_host()   # noqa: E731
        return dict(n_clusters=self.n_clusters, E=h(self._out_E), mabs=h(self._out_mabs),
                    mu=h(self._out_mu), msum=h(self._out_msum), acc=h(self._acc),
                    tries=h(self._tries), swap_acc=h(self._swap_acc),
                    swap_tries=h(self._swap_tries), delta=h(self._delta), cluster=self.cluster,
                    S=h(self._S))
