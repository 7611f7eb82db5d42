"""CPU Monte Carlo loops (Numba, ``prange`` over replicas). Arrays, scalars and RNG keys only.

The physics of a site update (fields, proposals, heat-bath draws, the counter RNG) comes from
:mod:`spinsim.kernels.physics`; this module only decides the loop order. Replica ``r`` is the
slot of temperature ``beta[r]``; replica exchange swaps configurations between slots.

Shapes: ``S (R, N, n)`` spins with lengths; ``X (R, N)`` discrete state indices; ``E (R,)``
total energies; ``mvec (R, n)`` magnetisation per free site; ``mu (R,)`` projection on U.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .physics import ALG_HEATBATH, ALG_METROPOLIS, ALG_OVERRELAX, KIND_CONTINUOUS, build

P = build(njit(fastmath=True, inline="always"), jit_heavy=njit(fastmath=True))
replica_key = P.replica_key
visit_seed = P.visit_seed
uniform = P.uniform
gauss_vector = P.gauss_vector
local_field = P.local_field
site_energy_out = P.site_energy_out
total_energy = P.total_energy
dot = P.dot
propose_continuous = P.propose_continuous
heatbath_continuous = P.heatbath_continuous
overrelax = P.overrelax
heatbath_discrete = P.heatbath_discrete

# slots per sweep in the RNG counter: sites, then 2 for replica exchange, then Wolff clusters
def n_slots(n_sites: int) -> int:
    return 2 * n_sites + 2


@njit(cache=True)
def resync_replica(S, X, E, mvec, mu, r, free, ptr, idx, w_out, code, J, Mmat, A, B, h, U, ra, rb):
    """Recompute E[r], mvec[r], mu[r] from scratch (removes accumulated round-off)."""
    N = S.shape[1]
    n = S.shape[2]
    rk = A.shape[1] if code == 2 else 1
    P = np.empty((N, rk))
    Q = np.empty((N, rk))
    E[r] = total_energy(S[r], ptr, idx, w_out, code, J, Mmat, A, B, h, ra, rb, P, Q)
    nf = free.shape[0]
    for c in range(n):
        mvec[r, c] = 0.0
    m_u = 0.0
    for q in range(nf):
        k = free[q]
        for c in range(n):
            mvec[r, c] += S[r, k, c] / nf
            m_u += S[r, k, c] * U[k, c] / nf
    mu[r] = m_u


@njit
def _sweep_replica(r, s, alg, key, S, X, E, mvec, mu, beta, delta, acc, tries, free, ptr, idx,
                   w_out, w_in, code, J, Mmat, A, B, h, lengths, U, kind, V, slots,
                   wa, wb, wra, wrb, wphi, wsig, wnew, wlog):
    n = S.shape[2]
    nf = free.shape[0]
    inv_nf = 1.0 / nf
    Sr = S[r]
    b = beta[r]
    dlt = delta[r]
    n_acc = 0
    e_r = E[r]
    mu_r = mu[r]
    for q in range(nf):
        k = free[q]
        vs = visit_seed(key, s, k, slots)
        local_field(Sr, k, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h, wa, wb, wra, wrb, wphi)
        m = lengths[k]
        if kind == KIND_CONTINUOUS:
            inv_m = 1.0 / m
            for c in range(n):
                wsig[c] = Sr[k, c] * inv_m
            if alg == ALG_METROPOLIS:
                propose_continuous(wsig, dlt, vs, 0, wnew)
            elif alg == ALG_HEATBATH:
                heatbath_continuous(wphi, m, b, vs, 0, wnew)
            else:
                overrelax(wsig, wphi, wnew)
            dE = 0.0
            for c in range(n):
                dE -= (wnew[c] - wsig[c]) * wphi[c]
            dE *= m
        else:
            cur = X[r, k]
            K = V.shape[0]
            if alg == ALG_METROPOLIS:
                if K < 2:
                    continue
                nq = int(uniform(vs, 0) * (K - 1))
                if nq >= K - 1:
                    nq = K - 2
                if nq >= cur:
                    nq += 1
            else:
                nq = heatbath_discrete(V, wphi, m, b, vs, 0, wlog)
            dE = 0.0
            for c in range(n):
                wnew[c] = V[nq, c]
                dE -= (V[nq, c] - V[cur, c]) * wphi[c]
            dE *= m
        if alg == ALG_METROPOLIS and dE > 0.0:
            # uniform index 1 << 20 keeps it apart from the proposal's draws
            if uniform(vs, 1 << 20) >= math.exp(-b * dE):
                continue
        if kind != KIND_CONTINUOUS:
            X[r, k] = nq
        n_acc += 1
        du = 0.0
        for c in range(n):
            snew = m * wnew[c]
            d = snew - Sr[k, c]
            mvec[r, c] += d * inv_nf
            du += d * U[k, c]
            Sr[k, c] = snew
        mu_r += du * inv_nf
        e_r += dE
    E[r] = e_r
    mu[r] = mu_r
    if alg == ALG_METROPOLIS:
        tries[r] += nf
        acc[r] += n_acc


@njit(parallel=True, cache=True)
def run_local(S, X, E, mvec, mu, beta, delta, acc, tries, seed, replica_ids, sweep0, n_sweeps,
              alg, n_overrelax, exchange, n_T, adapt, free, ptr, idx, w_out, w_in, code, J, Mmat,
              A, B, h_all, lengths, U, kind, V, resync, out_E, out_mabs, out_mu, out_msum, t0,
              swap_acc, swap_tries):
    """Run ``n_sweeps`` sweeps of a local algorithm on every replica (in parallel).

    alg: ALG_METROPOLIS, ALG_HEATBATH or ALG_OVERRELAX (= n_overrelax reflection sweeps then one
    heat-bath sweep). exchange: replica exchange between neighbouring temperatures after every
    sweep (replicas are laid out chain-major: r = chain * n_T + t). adapt: tune the Metropolis
    step towards 50 % acceptance (discard phase only). If t0 >= 0 every sweep is measured into
    out_*[:, t0 + i]. h_all: (1, N, n) one field for all replicas, or (R, N, n) per replica.
    """
    R = S.shape[0]
    N = S.shape[1]
    n = S.shape[2]
    r_rank = A.shape[1]
    slots = 2 * N + 2
    K = V.shape[0]
    wa = np.empty((R, n))
    wb = np.empty((R, n))
    wra = np.empty((R, r_rank))
    wrb = np.empty((R, r_rank))
    wphi = np.empty((R, n))
    wsig = np.empty((R, n))
    wnew = np.empty((R, n))
    wlog = np.empty((R, K))
    keys = np.empty(R, dtype=np.uint64)
    for r in range(R):
        keys[r] = replica_key(seed, replica_ids[r])
    for i in range(n_sweeps):
        s = sweep0 + i
        for r in prange(R):
            a0 = acc[r]
            t0r = tries[r]
            h = h_all[r] if h_all.shape[0] > 1 else h_all[0]
            if alg == ALG_OVERRELAX:
                for o in range(n_overrelax):
                    _sweep_replica(r, s, ALG_OVERRELAX, keys[r], S, X, E, mvec, mu, beta, delta, acc,
                                   tries, free, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h,
                                   lengths, U, kind, V, slots, wa[r], wb[r], wra[r], wrb[r], wphi[r],
                                   wsig[r], wnew[r], wlog[r])
                _sweep_replica(r, s, ALG_HEATBATH, keys[r], S, X, E, mvec, mu, beta, delta, acc,
                               tries, free, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h,
                               lengths, U, kind, V, slots, wa[r], wb[r], wra[r], wrb[r], wphi[r],
                               wsig[r], wnew[r], wlog[r])
            else:
                _sweep_replica(r, s, alg, keys[r], S, X, E, mvec, mu, beta, delta, acc, tries,
                               free, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h, lengths, U,
                               kind, V, slots, wa[r], wb[r], wra[r], wrb[r], wphi[r], wsig[r],
                               wnew[r], wlog[r])
            if adapt and alg == ALG_METROPOLIS and kind == KIND_CONTINUOUS:
                rate = (acc[r] - a0) / max(1, tries[r] - t0r)
                if rate > 0.5:
                    delta[r] = min(2.0, delta[r] * 1.05)
                else:
                    delta[r] = max(1e-4, delta[r] * 0.95)
            if resync > 0 and (s + 1) % resync == 0:
                resync_replica(S, X, E, mvec, mu, r, free, ptr, idx, w_out, code, J, Mmat, A, B,
                               h, U, wra[r], wrb[r])
        if exchange:
            _exchange(S, X, E, mvec, mu, beta, keys, s, slots, n_T, N, swap_acc, swap_tries)
        if t0 >= 0:
            _measure(E, mvec, mu, out_E, out_mabs, out_mu, out_msum, t0 + i)


@njit
def _measure(E, mvec, mu, out_E, out_mabs, out_mu, out_msum, t):
    R = E.shape[0]
    n = mvec.shape[1]
    for r in range(R):
        out_E[r, t] = E[r]
        m2 = 0.0
        for c in range(n):
            m2 += mvec[r, c] * mvec[r, c]
            out_msum[r, c] += mvec[r, c]
        out_mabs[r, t] = math.sqrt(m2)
        out_mu[r, t] = mu[r]


@njit
def _exchange(S, X, E, mvec, mu, beta, keys, s, slots, n_T, N, swap_acc, swap_tries):
    """Metropolis swap of configurations at neighbouring temperatures (even pairs on even
    sweeps, odd pairs on odd sweeps): accept with min(1, exp((b1 - b2)(E1 - E2)))."""
    R = S.shape[0]
    n_chains = R // n_T
    for ch in range(n_chains):
        for t in range(s % 2, n_T - 1, 2):
            r1 = ch * n_T + t
            r2 = r1 + 1
            vs = visit_seed(keys[r1], s, N, slots)
            x = (beta[r1] - beta[r2]) * (E[r1] - E[r2])
            swap_tries[r1] += 1
            if x >= 0.0 or uniform(vs, 0) < math.exp(x):
                swap_acc[r1] += 1
                for k in range(S.shape[1]):
                    X[r1, k], X[r2, k] = X[r2, k], X[r1, k]
                    for c in range(S.shape[2]):
                        S[r1, k, c], S[r2, k, c] = S[r2, k, c], S[r1, k, c]
                E[r1], E[r2] = E[r2], E[r1]
                mu[r1], mu[r2] = mu[r2], mu[r1]
                for c in range(mvec.shape[1]):
                    mvec[r1, c], mvec[r2, c] = mvec[r2, c], mvec[r1, c]


@njit(parallel=True, cache=True)
def run_wolff(S, X, E, mvec, mu, beta, seed, replica_ids, sweep0, n_sweeps, free, ptr, idx,
              w_out, w_in, J, h, U, out_E, out_mabs, out_mu, out_msum, t0, cluster_sum, n_clusters):
    """Wolff cluster sweeps for an isotropic ferromagnet (M = J 1, J W_ij >= 0, no field, no
    frozen sites). Reflection plane r uniform; bond (i, j) joins with probability
    1 - exp(min(0, -2 beta J (W_ij + W_ji) (r.S_i)(r.S_j))). One sweep = a fixed number
    ``n_clusters[r]`` of cluster flips (a fixed count, not "until n_free spins flipped": measuring
    at state-dependent stopping times would bias the chain). Spins keep their lengths."""
    R = S.shape[0]
    N = S.shape[1]
    n = S.shape[2]
    slots = 2 * N + 2
    stamp = np.zeros((R, N), dtype=np.int64)
    stack = np.empty((R, N), dtype=np.int64)
    rvec = np.empty((R, n))
    proj = np.empty((R, N))
    wra = np.empty((R, 1))
    wrb = np.empty((R, 1))
    Md = np.zeros((1, 1))
    keys = np.empty(R, dtype=np.uint64)
    for r in range(R):
        keys[r] = replica_key(seed, replica_ids[r])
    nf = free.shape[0]
    for i in range(n_sweeps):
        s = sweep0 + i
        for r in prange(R):
            flipped = 0
            cid = 0
            while cid < n_clusters[r]:
                cid += 1
                vs = visit_seed(keys[r], s, N + 2 + (cid - 1), slots)
                j = 0
                site = free[min(nf - 1, int(uniform(vs, j) * nf))]
                j += 1
                if n == 1:
                    rvec[r, 0] = 1.0
                else:
                    j = gauss_vector(vs, j, rvec[r])
                    nr = math.sqrt(dot(rvec[r], rvec[r]))
                    for c in range(n):
                        rvec[r, c] /= nr
                stamp_id = s * (2 * N + 2) + cid
                top = 0
                stack[r, top] = site
                top += 1
                stamp[r, site] = stamp_id
                proj[r, site] = dot(rvec[r], S[r, site])
                while top > 0:
                    top -= 1
                    a = stack[r, top]
                    pa = proj[r, a]
                    for c in range(n):
                        S[r, a, c] -= 2.0 * pa * rvec[r, c]
                    flipped += 1
                    for e in range(ptr[a], ptr[a + 1]):
                        b = idx[e]
                        if stamp[r, b] == stamp_id:
                            continue
                        pb = dot(rvec[r], S[r, b])
                        x = 2.0 * beta[r] * J * (w_out[e] + w_in[e]) * pa * pb
                        if x > 0.0:
                            u = uniform(vs, j)
                            j += 1
                            if u < 1.0 - math.exp(-x):
                                stamp[r, b] = stamp_id
                                proj[r, b] = pb
                                stack[r, top] = b
                                top += 1
            cluster_sum[r] += flipped
            resync_replica(S, X, E, mvec, mu, r, free, ptr, idx, w_out, 0, J, Md, Md, Md, h, U,
                           wra[r], wrb[r])
        if t0 >= 0:
            _measure(E, mvec, mu, out_E, out_mabs, out_mu, out_msum, t0 + i)


def per_replica_fields(h, h_rep, R, exchange, n_T):
    """The fields as the kernels take them: (1, N, n) = ``h`` for every replica, or ``h_rep``
    (R, N, n), one field per replica (e.g. a (T, h) grid in one launch). With replica exchange the
    field must be the same along each chain of n_T temperatures (replicas ch * n_T + t)."""
    if h_rep is None:
        return np.ascontiguousarray(h, dtype=np.float64)[None]
    hr = np.ascontiguousarray(h_rep, dtype=np.float64)
    if hr.shape != (R,) + h.shape:
        raise ValueError(f"h_rep must have shape {(R,) + h.shape} (replicas, sites, components), got {hr.shape}")
    if not np.all(np.isfinite(hr)):
        raise ValueError("h_rep has non-finite entries")
    if exchange and not np.array_equal(hr.reshape(R // n_T, n_T, -1),
                                       np.broadcast_to(hr.reshape(R // n_T, n_T, -1)[:, :1], (R // n_T, n_T, hr[0].size))):
        raise ValueError("with replica exchange h_rep must be equal along each chain of n_T temperatures "
                         "(replicas ch * n_T + t), since only configurations at equal fields are swapped")
    return hr


class Runner:
    """Holds the replica state between calls so that a run can be chunked (progress bars,
    checkpoints). The CUDA backend exposes the same interface.

    ``h_rep`` (R, N, n), optional: a field per replica instead of the Hamiltonian's ``k["h"]``
    (the projection directions ``k["U"]`` stay shared)."""

    def __init__(self, S, X, beta, seed, replica_ids, k, *, algorithm, alg_code, n_overrelax,
                 exchange, n_T, delta, resync, n_meas, h_rep=None):
        R, N, n = S.shape
        self.h_all = per_replica_fields(k["h"], h_rep, R, exchange, n_T)
        if h_rep is not None and algorithm == "wolff":
            raise ValueError("algorithm 'wolff' needs zero field; per-replica fields h_rep are not supported")
        self.S, self.X = S.copy(), X.copy()
        self.beta = np.ascontiguousarray(beta, dtype=np.float64)
        self.seed = np.uint64(seed)
        self.replica_ids = replica_ids
        self.k = k
        self.algorithm = algorithm
        self.alg_code = alg_code
        self.n_overrelax = n_overrelax
        self.exchange = exchange
        self.n_T = n_T
        self.resync = resync
        self.delta = np.full(R, float(delta))
        self.E = np.zeros(R)
        self.mvec = np.zeros((R, n))
        self.mu = np.zeros(R)
        self.acc = np.zeros(R, dtype=np.int64)
        self.tries = np.zeros(R, dtype=np.int64)
        self.swap_acc = np.zeros(R, dtype=np.int64)
        self.swap_tries = np.zeros(R, dtype=np.int64)
        self.cluster = np.zeros(R)
        self.n_clusters = np.ones(R, dtype=np.int64)   # Wolff: clusters per sweep (set in equilibration)
        self.out_E = np.zeros((R, n_meas))
        self.out_mabs = np.zeros((R, n_meas))
        self.out_mu = np.zeros((R, n_meas))
        self.out_msum = np.zeros((R, n))
        ra = np.empty(max(1, k["A"].shape[1]))
        rb = np.empty_like(ra)
        for r in range(R):
            resync_replica(self.S, self.X, self.E, self.mvec, self.mu, r, k["free"], k["ptr"], k["idx"],
                           k["w_out"], k["code"], k["J"], k["Mmat"], k["A"], k["B"],
                           self.h_all[r if self.h_all.shape[0] > 1 else 0], k["U"], ra, rb)

    def run(self, sweep0: int, n_sweeps: int, measure_from: int, adapt: bool) -> None:
        k = self.k
        if self.algorithm == "wolff":
            run_wolff(self.S, self.X, self.E, self.mvec, self.mu, self.beta, self.seed, self.replica_ids,
                      sweep0, n_sweeps, k["free"], k["ptr"], k["idx"], k["w_out"], k["w_in"], k["J"],
                      k["h"], k["U"], self.out_E, self.out_mabs, self.out_mu, self.out_msum,
                      measure_from, self.cluster, self.n_clusters)
            return
        run_local(self.S, self.X, self.E, self.mvec, self.mu, self.beta, self.delta, self.acc,
                  self.tries, self.seed, self.replica_ids, sweep0, n_sweeps, self.alg_code,
                  self.n_overrelax, self.exchange, self.n_T, adapt, k["free"], k["ptr"], k["idx"],
                  k["w_out"], k["w_in"], k["code"], k["J"], k["Mmat"], k["A"], k["B"], self.h_all,
                  k["lengths"], k["U"], k["kind"], k["V"], self.resync, self.out_E, self.out_mabs,
                  self.out_mu, self.out_msum, measure_from, self.swap_acc, self.swap_tries)

    def reset_counters(self, n_discard: int = 0) -> None:
        """Start acceptance statistics afresh (called when equilibration ends). For Wolff, fix
        the clusters per sweep so that a sweep flips ~n_free spins on average (equilibration ran
        one cluster per sweep, so cluster / n_discard is the mean cluster size)."""
        if self.algorithm == "wolff" and n_discard > 0:
            nf = self.k["free"].size
            mean_size = np.maximum(self.cluster / n_discard, 1.0)
            self.n_clusters[:] = np.clip(np.rint(nf / mean_size), 1, self.S.shape[1]).astype(np.int64)
        for a in (self.acc, self.tries, self.swap_acc, self.swap_tries, self.cluster):
            a[:] = 0

    def results(self) -> dict[str, np.ndarray]:
        return dict(n_clusters=self.n_clusters, E=self.out_E, mabs=self.out_mabs, mu=self.out_mu, msum=self.out_msum,
                    acc=self.acc, tries=self.tries, swap_acc=self.swap_acc,
                    swap_tries=self.swap_tries, delta=self.delta, cluster=self.cluster, S=self.S)
