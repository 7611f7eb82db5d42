"""The CUDA kernels: one thread block per replica (``grid = R``, block r runs replica r).

Single-site dynamics is sequential over the sites of a sweep; the threads of a block share the
work inside a site update:

* serial path (``plan.coop`` False: identity coupling with n <= 4, lattices): thread 0 runs
  :func:`..site.sweep_schedule`, the CPU's sweep, on the block's workspace views; the block has
  one thread, and the chain equals the CPU's bit for bit (same functions, IEEE arithmetic).
* cooperative path (everything else, e.g. heads: n = 768, rank-64 ``LowRank`` or per-site
  ``SiteLowRank``): the field, the n > 4 continuous moves, the bookkeeping and the refresh of the
  moved site's projections P_k, Q_k are split over the block (:mod:`.block`); discrete and n <= 4
  spins are drawn by :func:`..site.site_update` on thread 0.

Replica exchange runs between launches (``_k_exchange``: one block per chain, the CPU's rule
:func:`..site.exchange_accept`); without exchange one launch runs many sweeps and each block
measures its replica after every sweep.
"""
from __future__ import annotations

from numba import cuda, float64, int64

from .._jit import cuda_device, cuda_kernel
from ..arrays import KIND_CONTINUOUS, LOWRANK, Work
from ..hidden import measure as measure_replica
from ..moves import ALG_HEATBATH, ALG_METROPOLIS, ALG_OVERRELAX, metropolis_accept
from ..rng import replica_key, site_visit
from ..site import (adapt_step, apply_move, end_sweep, exchange_accept, site_update, swap_walkers,
                    sweep_schedule, track_walkers)
from .block import (block_sum, field_coop, heatbath_coop, metropolis_coop, overrelax_coop,
                    refresh_coop, resync_coop)
from .plan import MAX_REGISTERS, SIMULATOR


@cuda_device
def _views(r, gwork, sh_work, sh_fac, n, rk, nt, wlog, cp):
    """The block's workspaces (shared or global; the layout of ``plan.work_length``) and the
    factor copies A, B (F, n, rk), AT, BT (F, rk, n) (shared when ``sh_fac``)."""
    dyn = cuda.shared.array(0, float64)
    base = dyn if sh_work else gwork[r]
    wide = nt if nt > rk else rk
    o = 5 * n + 2 * rk
    work_len = o + 2 * wide + 2 * nt
    w = Work(base[0:n], base[n:2 * n], base[5 * n:5 * n + rk], base[5 * n + rk:o], base[2 * n:3 * n],
             base[3 * n:4 * n], base[4 * n:5 * n], wlog)
    part = base[o:o + 2 * wide]
    red = base[o + 2 * wide:work_len]
    if sh_fac:
        F = cp.A.shape[0]
        nr = F * n * rk
        A = dyn[work_len:work_len + nr].reshape((F, n, rk))
        B = dyn[work_len + nr:work_len + 2 * nr].reshape((F, n, rk))
        AT = dyn[work_len + 2 * nr:work_len + 3 * nr].reshape((F, rk, n))
        BT = dyn[work_len + 3 * nr:work_len + 4 * nr].reshape((F, rk, n))
    else:
        A = cp.A
        B = cp.B
        AT = cp.AT
        BT = cp.BT
    return w, part, red, A, B, AT, BT


@cuda_device
def _load_factors(sh_fac, A, B, AT, BT, cp, tid, nt):
    """Copy the factors into the shared copies (when ``sh_fac``)."""
    if sh_fac:
        F, n, rk = A.shape
        nr = n * rk
        for i in range(tid, F * nr, nt):
            f = i // nr
            e = i % nr
            A[f, e // rk, e % rk] = cp.A[f, e // rk, e % rk]
            B[f, e // rk, e % rk] = cp.B[f, e // rk, e % rk]
            AT[f, e // n, e % n] = cp.AT[f, e // n, e % n]
            BT[f, e // n, e % n] = cp.BT[f, e // n, e % n]
    cuda.syncthreads()


@cuda_device
def _sweep_coop(r, s, alg, key, ch, g, cp, st, A, B, AT, BT, h, beta, delta, acc, tries, w,
                part, red, fsh, ish, tid, nt):
    """One sweep of replica r, the block cooperating (same draws as site.sweep_replica)."""
    Sr = ch.S[r]
    Pr = ch.P[r]
    Qr = ch.Q[r]
    N, n = Sr.shape
    e_r = ch.E[r]       # E, m.u and the accepted moves are tracked by thread 0
    mu_r = ch.mu[r]
    n_acc = 0
    b = beta[r]
    inv_nf = 1.0 / st.free.shape[0]
    for k in st.free:
        m = st.lengths[k]
        vs = site_visit(key, s, k, N)
        field_coop(Sr, Pr, Qr, k, g, cp, AT, BT, h, w, tid, nt)
        if st.kind == KIND_CONTINUOUS:
            inv_m = 1.0 / m
            for c in range(tid, n, nt):
                w.sig[c] = Sr[k, c] * inv_m
            cuda.syncthreads()
        if n > 4 and st.kind == KIND_CONTINUOUS:
            if alg == ALG_METROPOLIS:
                metropolis_coop(w.sig, delta[r], vs, w.new, red, st.n_hidden, tid, nt)
            elif alg == ALG_HEATBATH:
                heatbath_coop(w.phi, m, b, vs, w.new, red, fsh, ish, st.n_hidden, tid, nt)
            else:
                overrelax_coop(w.sig, w.phi, w.new, red, tid, nt)
            d = 0.0
            for c in range(tid, n, nt):
                d -= (w.new[c] - w.sig[c]) * w.phi[c]
            dE = block_sum(d, red, tid, nt) * m
            if tid == 0:
                ok = alg != ALG_METROPOLIS or metropolis_accept(dE, b, vs)
                ish[0] = 1 if ok else 0
                fsh[1] = dE
        elif tid == 0:
            ok, nq, dE = site_update(alg, st.kind, w.sig, ch.X[r, k], w.phi, m, b, delta[r], st.V, vs,
                                     w.new, w.logw, st.n_hidden)
            ish[0] = 1 if ok else 0
            ish[1] = nq
            fsh[1] = dE
        cuda.syncthreads()
        if ish[0] == 1:
            du = apply_move(Sr[:, tid::nt], k, m, w.new[tid::nt], st.U[:, tid::nt],
                            ch.mvec[r, tid::nt], inv_nf)
            du = block_sum(du, red, tid, nt)
            if cp.code >= LOWRANK:
                refresh_coop(cp, A, B, Sr, k, Pr, Qr, part, tid, nt)
            if tid == 0:
                if st.kind != KIND_CONTINUOUS:
                    ch.X[r, k] = ish[1]
                n_acc += 1
                mu_r += du * inv_nf
                e_r += fsh[1]
        cuda.syncthreads()
    if tid == 0:
        end_sweep(ch, r, alg, e_r, mu_r, n_acc, st.free.shape[0], acc, tries)
    cuda.syncthreads()


def _make_sweeps_kernel(coop: bool):
    """The sweep kernel with the path fixed at compile time (``coop`` is a closure constant, so
    Numba prunes the other branch; the serial path's register-hungry physics stays out of the
    cooperative kernel)."""
    opts = dict(max_registers=MAX_REGISTERS) if (coop and not SIMULATOR) else {}

    @cuda_kernel(**opts)
    def _k_sweeps(ch, beta, delta, acc, tries, seed, replica_ids, sweep0, n_sweeps, alg,
                  n_overrelax, adapt, g, cp, st, h_all, resync, out, t0, measure, gwork, wlog_all,
                  sh_work, sh_fac, hid, mscr):
        """n_sweeps sweeps of replica blockIdx.x (cpu.run_local's semantics; exchange is done by
        _k_exchange between launches). out: (E, mabs, mu, msum) measurement arrays; hid, mscr:
        a reduced state's measurement data and scratch (:mod:`..hidden`)."""
        r = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        fsh = cuda.shared.array(2, float64)
        ish = cuda.shared.array(2, int64)
        n = ch.S.shape[2]
        rk = ch.P.shape[2]
        key = replica_key(seed, replica_ids[r])
        h = h_all[r] if h_all.shape[0] > 1 else h_all[0]
        w, part, red, A, B, AT, BT = _views(r, gwork, sh_work, sh_fac, n, rk, nt, wlog_all[r], cp)
        _load_factors(sh_fac, A, B, AT, BT, cp, tid, nt)
        for i in range(n_sweeps):
            s = sweep0 + i
            a0 = acc[r]
            t0r = tries[r]
            if coop:
                for o in range(n_overrelax + 1 if alg == ALG_OVERRELAX else 1):
                    a = alg
                    if alg == ALG_OVERRELAX and o == n_overrelax:
                        a = ALG_HEATBATH
                    _sweep_coop(r, s, a, key, ch, g, cp, st, A, B, AT, BT, h, beta, delta, acc,
                                tries, w, part, red, fsh, ish, tid, nt)
            elif tid == 0:
                sweep_schedule(r, s, alg, n_overrelax, key, ch, g, cp, st, h, beta, delta, acc,
                               tries, w)
            if tid == 0 and adapt and alg == ALG_METROPOLIS and st.kind == KIND_CONTINUOUS:
                adapt_step(delta, r, acc[r] - a0, tries[r] - t0r)
            cuda.syncthreads()
            if resync > 0 and (s + 1) % resync == 0:
                resync_coop(r, ch, g, cp, st, A, B, h, red, tid, nt)
            if measure and t0 >= 0 and tid == 0:
                measure_replica(ch, r, st, hid, key, s, out[0], out[1], out[2], out[3], t0 + i, mscr[r])
            cuda.syncthreads()
    return _k_sweeps


_k_sweeps_coop = _make_sweeps_kernel(True)
_k_sweeps_serial = _make_sweeps_kernel(False)


@cuda_kernel()
def _k_resync(ch, g, cp, st, h_all, gwork, sh_work):
    """Initial E, mvec, mu (and low rank: P, Q) of replica blockIdx.x."""
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = ch.S.shape[2]
    h = h_all[r] if h_all.shape[0] > 1 else h_all[0]
    w, part, red, A, B, AT, BT = _views(r, gwork, sh_work, False, n, ch.P.shape[2], nt, gwork[r], cp)
    resync_coop(r, ch, g, cp, st, A, B, h, red, tid, nt)


@cuda_kernel()
def _k_exchange(ch, beta, seed, replica_ids, s, n_T, swap_acc, swap_tries, out, t, st, hid, mscr, wk):
    """cpu._exchange for chain blockIdx.x (replicas ch * n_T ... ch * n_T + n_T - 1; the walkers
    wk moved and tracked), then the measurement of its replicas into column t (t < 0: none)."""
    chn = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    flag = cuda.shared.array(1, int64)
    S, X, E, mvec, mu, P, Q = ch
    N = S.shape[1]
    n = S.shape[2]
    Np = P.shape[1]
    rk = P.shape[2]
    for tt in range(s % 2, n_T - 1, 2):
        r1 = chn * n_T + tt
        r2 = r1 + 1
        if tid == 0:
            swap_tries[r1] += 1
            f = 0
            if exchange_accept(replica_key(seed, replica_ids[r1]), s, N, beta[r1], beta[r2],
                               E[r1], E[r2]):
                swap_acc[r1] += 1
                swap_walkers(wk, r1, r2)
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
            for e in range(tid, Np * rk, nt):
                k = e // rk
                q = e % rk
                P[r1, k, q], P[r2, k, q] = P[r2, k, q], P[r1, k, q]
                Q[r1, k, q], Q[r2, k, q] = Q[r2, k, q], Q[r1, k, q]
        cuda.syncthreads()
    if tid == 0:
        track_walkers(wk, chn, n_T, s)
    if t >= 0 and tid == 0:
        for tt in range(n_T):
            rr = chn * n_T + tt
            measure_replica(ch, rr, st, hid, replica_key(seed, replica_ids[rr]), s, out[0], out[1],
                            out[2], out[3], t, mscr[rr])
