"""CPU Monte Carlo loops (Numba, ``prange`` over replicas): loop order only.

The physics of a sweep (:func:`.site.sweep_schedule`, fields, moves, the counter RNG) is shared
with the CUDA backend; this module decides the loops: replicas in parallel, replica exchange,
measurement, and the Wolff cluster algorithm (CPU only). Replica ``r`` is the slot of
temperature ``beta[r]``; replica exchange swaps configurations between slots.

Arguments are the tuples of :mod:`.arrays` (``Chains``, ``Graph``, ``Coupling``, ``Sites``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._jit import cpu, cpu_parallel
from .arrays import KIND_CONTINUOUS, Work, chains, from_prepared, rank, walkers, work
from .field import total_energy
from .hidden import from_prepared as hidden_from_prepared
from .hidden import measure
from .moves import ALG_HEATBATH, ALG_METROPOLIS, dot
from .rng import cluster_slot, gauss_vector, n_slots, replica_key, uniform, visit_seed
from .site import (adapt_step, exchange_accept, magnetisation, record, swap_walkers, sweep_schedule,
                   track_walkers)
from .state import load_arrays, state_arrays

__all__ = ["Runner", "per_replica_fields", "run_local", "run_wolff", "resync_replica"]


@cpu
def resync_replica(ch, r, g, cp, st, h):
    """Recompute E[r], mvec[r], mu[r] and (low rank) the projections P[r], Q[r] from scratch
    (removes accumulated round-off)."""
    ch.E[r] = total_energy(ch.S[r], g, cp, h, ch.P[r], ch.Q[r])
    ch.mu[r] = magnetisation(ch.S[r], st.free, st.U, ch.mvec[r])


@cpu_parallel
def run_local(ch, beta, delta, acc, tries, seed, replica_ids, sweep0, n_sweeps, alg, n_overrelax,
              exchange, n_T, adapt, g, cp, st, h_all, resync, out_E, out_mabs, out_mu, out_msum,
              t0, swap_acc, swap_tries, w, hid, mscr, wk):
    """Run ``n_sweeps`` sweeps of a local algorithm on every replica (in parallel).

    alg: ALG_METROPOLIS, ALG_HEATBATH or ALG_OVERRELAX (n_overrelax reflection sweeps then one
    heat-bath sweep). exchange: replica exchange between neighbouring temperatures after every
    sweep (replicas chain-major: r = chain * n_T + t). adapt: tune the Metropolis step towards
    50 % acceptance (discard phase only). t0 >= 0: every sweep is measured into out_*[:, t0 + i].
    h_all: (1, N, n) one field for all replicas, or (R, N, n) per replica. w: Work (R, ...).
    hid, mscr: the measurement data of a reduced state (:mod:`.hidden`) and its scratch (R, ...).
    wk: the walkers (:class:`.arrays.Walkers`), moved and tracked by the exchange.
    """
    R = ch.S.shape[0]
    keys = np.empty(R, dtype=np.uint64)
    for r in range(R):
        keys[r] = replica_key(seed, replica_ids[r])
    for i in range(n_sweeps):
        s = sweep0 + i
        for rp in prange(R):
            r = np.int64(rp)      # one compiled signature for the callees (see site.sweep_schedule)
            a0 = acc[r]
            t0r = tries[r]
            h = h_all[r] if h_all.shape[0] > 1 else h_all[0]
            wr = Work(w.a[r], w.b[r], w.ra[r], w.rb[r], w.phi[r], w.sig[r], w.new[r], w.logw[r])
            sweep_schedule(r, s, alg, n_overrelax, keys[r], ch, g, cp, st, h, beta, delta, acc,
                           tries, wr)
            if adapt and alg == ALG_METROPOLIS and st.kind == KIND_CONTINUOUS:
                adapt_step(delta, r, acc[r] - a0, tries[r] - t0r)
            if resync > 0 and (s + 1) % resync == 0:
                resync_replica(ch, r, g, cp, st, h)
        if exchange:
            _exchange(ch, beta, keys, s, n_T, swap_acc, swap_tries, wk)
        if t0 >= 0:
            for r in range(R):
                measure(ch, r, st, hid, keys[r], s, out_E, out_mabs, out_mu, out_msum, t0 + i, mscr[r])


@cpu
def _exchange(ch, beta, keys, s, n_T, swap_acc, swap_tries, wk):
    """Swaps at neighbouring temperatures: even pairs on even sweeps, odd pairs on odd sweeps;
    the walker labels move with the configurations and are tracked (:func:`.site.track_walkers`)."""
    S, X, E, mvec, mu, P, Q = ch
    R, N, n = S.shape
    for chn in range(R // n_T):
        for t in range(s % 2, n_T - 1, 2):
            r1 = chn * n_T + t
            r2 = r1 + 1
            swap_tries[r1] += 1
            if exchange_accept(keys[r1], s, N, beta[r1], beta[r2], E[r1], E[r2]):
                swap_acc[r1] += 1
                swap_walkers(wk, r1, r2)
                for k in range(N):
                    X[r1, k], X[r2, k] = X[r2, k], X[r1, k]
                    for c in range(n):
                        S[r1, k, c], S[r2, k, c] = S[r2, k, c], S[r1, k, c]
                E[r1], E[r2] = E[r2], E[r1]
                mu[r1], mu[r2] = mu[r2], mu[r1]
                for c in range(n):
                    mvec[r1, c], mvec[r2, c] = mvec[r2, c], mvec[r1, c]
                for k in range(P.shape[1]):
                    for q in range(P.shape[2]):
                        P[r1, k, q], P[r2, k, q] = P[r2, k, q], P[r1, k, q]
                        Q[r1, k, q], Q[r2, k, q] = Q[r2, k, q], Q[r1, k, q]
        track_walkers(wk, chn, n_T, s)


@cpu_parallel
def run_wolff(ch, beta, seed, replica_ids, sweep0, n_sweeps, g, cp, st, h, out_E, out_mabs,
              out_mu, out_msum, t0, cluster_sum, n_clusters):
    """Wolff cluster sweeps for an isotropic ferromagnet (M = J 1, J W_ij >= 0, no field, no
    frozen sites). Reflection plane r uniform; bond (i, j) joins with probability
    1 - exp(min(0, -2 beta J (W_ij + W_ji) (r.S_i)(r.S_j))). One sweep = a fixed number
    ``n_clusters[r]`` of cluster flips (a fixed count, not "until n_free spins flipped": measuring
    at state-dependent stopping times would bias the chain). Spins keep their lengths."""
    S = ch.S
    R, N, n = S.shape
    slots = n_slots(N)
    stamp = np.zeros((R, N), dtype=np.int64)
    stack = np.empty((R, N), dtype=np.int64)
    rvec = np.empty((R, n))
    proj = np.empty((R, N))
    keys = np.empty(R, dtype=np.uint64)
    for r in range(R):
        keys[r] = replica_key(seed, replica_ids[r])
    free = st.free
    nf = free.shape[0]
    for i in range(n_sweeps):
        s = sweep0 + i
        for r in prange(R):
            flipped = 0
            for cid in range(n_clusters[r]):
                vs = visit_seed(keys[r], s, cluster_slot(N, cid), slots)
                site = free[min(nf - 1, int(uniform(vs, 0) * nf))]
                j = 1
                if n == 1:
                    rvec[r, 0] = 1.0
                else:
                    j = gauss_vector(vs, j, rvec[r])
                    nr = math.sqrt(dot(rvec[r], rvec[r]))
                    for c in range(n):
                        rvec[r, c] /= nr
                stamp_id = s * slots + cid + 1      # unique per (sweep, cluster): cid < slots
                top = 1
                stack[r, 0] = site
                stamp[r, site] = stamp_id
                proj[r, site] = dot(rvec[r], S[r, site])
                while top > 0:
                    top -= 1
                    a = stack[r, top]
                    pa = proj[r, a]
                    for c in range(n):
                        S[r, a, c] -= 2.0 * pa * rvec[r, c]
                    flipped += 1
                    for e in range(g.ptr[a], g.ptr[a + 1]):
                        b = g.idx[e]
                        if stamp[r, b] == stamp_id:
                            continue
                        pb = dot(rvec[r], S[r, b])
                        x = 2.0 * beta[r] * cp.J * (g.w_out[e] + g.w_in[e]) * pa * pb
                        if x > 0.0:
                            u = uniform(vs, j)
                            j += 1
                            if u < 1.0 - math.exp(-x):
                                stamp[r, b] = stamp_id
                                proj[r, b] = pb
                                stack[r, top] = b
                                top += 1
            cluster_sum[r] += flipped
            resync_replica(ch, r, g, cp, st, h)
        if t0 >= 0:
            for r in range(R):
                record(ch, r, out_E, out_mabs, out_mu, out_msum, t0 + i)


def per_replica_fields(h: np.ndarray, h_rep: np.ndarray | None, R: int, exchange: bool,
                       n_T: int) -> np.ndarray:
    """The fields as the kernels take them: (1, N, n) = ``h`` for every replica, or ``h_rep``
    (R, N, n), one field per replica (e.g. a (T, h) grid in one launch). With replica exchange the
    field must be the same along each chain of n_T temperatures (replicas ch * n_T + t).

    Raises ValueError for a wrong shape, non-finite entries, or fields varying along a chain."""
    if h_rep is None:
        return np.ascontiguousarray(h, dtype=np.float64)[None]
    hr = np.ascontiguousarray(h_rep, dtype=np.float64)
    if hr.shape != (R,) + h.shape:
        raise ValueError(f"h_rep must have shape {(R,) + h.shape} (replicas, sites, components), got {hr.shape}")
    if not np.all(np.isfinite(hr)):
        raise ValueError("h_rep has non-finite entries")
    chains = hr.reshape(R // n_T, n_T, -1)
    if exchange and not np.array_equal(chains, np.broadcast_to(chains[:, :1], chains.shape)):
        raise ValueError("with replica exchange h_rep must be equal along each chain of n_T temperatures "
                         "(replicas ch * n_T + t), since only configurations at equal fields are swapped")
    return hr


class Runner:
    """Holds the replica state between calls so that a run can be chunked (progress bars,
    checkpoints). The CUDA backend exposes the same interface.

    ``k``: the dictionary of ``solvers.mc.prepare``; ``h_rep`` (R, N, n), optional: a field per
    replica instead of ``k["h"]`` (the projection directions ``k["U"]`` stay shared)."""

    def __init__(self, S, X, beta, seed, replica_ids, k, *, algorithm, alg_code, n_overrelax,
                 exchange, n_T, delta, resync, n_meas, h_rep=None):
        R, N, n = S.shape
        self.h_all = per_replica_fields(k["h"], h_rep, R, exchange, n_T)
        if h_rep is not None and algorithm == "wolff":
            raise ValueError("algorithm 'wolff' needs zero field; per-replica fields h_rep are not supported")
        self.g, self.cp, self.st = from_prepared(k)
        self.ch = chains(S, X, self.cp)
        self.beta = np.ascontiguousarray(beta, dtype=np.float64)
        self.seed = np.uint64(seed)
        self.replica_ids = np.ascontiguousarray(replica_ids, dtype=np.int64)
        self.algorithm = algorithm
        self.alg_code = alg_code
        self.n_overrelax = n_overrelax
        self.exchange = exchange
        self.n_T = n_T
        self.resync = resync
        self.delta = np.full(R, float(delta))
        self.acc = np.zeros(R, dtype=np.int64)
        self.tries = np.zeros(R, dtype=np.int64)
        self.swap_acc = np.zeros(R, dtype=np.int64)
        self.swap_tries = np.zeros(R, dtype=np.int64)
        self.cluster = np.zeros(R)
        self.n_clusters = np.ones(R, dtype=np.int64)   # Wolff: clusters per sweep (set in equilibration)
        self.out_E = np.zeros((R, n_meas))
        self.out_mabs = np.zeros((R, n_meas))
        self.out_mu = np.zeros((R, n_meas))
        self.hid, n_msum = hidden_from_prepared(k, n)
        self.mscr = np.zeros((R, n_msum + self.hid.C.shape[1]))
        self.out_msum = np.zeros((R, n_msum))
        self.w = work(R, n, rank(self.cp), self.st.V.shape[0])
        self.wk = walkers(R)
        for r in range(R):
            resync_replica(self.ch, r, self.g, self.cp, self.st, self.h_all[r if self.h_all.shape[0] > 1 else 0])

    S = property(lambda self: self.ch.S)
    X = property(lambda self: self.ch.X)
    E = property(lambda self: self.ch.E)

    def run(self, sweep0: int, n_sweeps: int, measure_from: int, adapt: bool) -> None:
        """Sweeps sweep0 .. sweep0 + n_sweeps - 1, measured into columns measure_from + i when
        measure_from >= 0; adapt: tune the Metropolis step (equilibration only)."""
        if self.algorithm == "wolff":
            # ergodicity guard: one heat-bath sweep (site slots of the same sweep, disjoint from the
            # cluster slots) before each sweep of clusters. Single-site clusters (zero couplings,
            # high T) alone flip a fixed number of spins per sweep: the parity of the flips is
            # fixed and half of the states are never measured (|m| off by 9-50 sigma).
            discrete = self.st.kind != KIND_CONTINUOUS
            for i in range(n_sweeps):
                if discrete:      # Wolff moves S only: the heat bath needs the state indices X
                    self.ch.X[:] = np.argmax(np.einsum("rnc,kc->rnk", self.ch.S, self.st.V), axis=2)
                run_local(self.ch, self.beta, self.delta, self.acc, self.tries, self.seed, self.replica_ids,
                          sweep0 + i, 1, ALG_HEATBATH, 0, False, self.n_T, False, self.g, self.cp, self.st,
                          self.h_all, self.resync, self.out_E, self.out_mabs, self.out_mu, self.out_msum,
                          -1, self.swap_acc, self.swap_tries, self.w, self.hid, self.mscr, self.wk)
                run_wolff(self.ch, self.beta, self.seed, self.replica_ids, sweep0 + i, 1, self.g,
                          self.cp, self.st, self.h_all[0], self.out_E, self.out_mabs, self.out_mu,
                          self.out_msum, measure_from + i if measure_from >= 0 else -1, self.cluster,
                          self.n_clusters)
            return
        run_local(self.ch, self.beta, self.delta, self.acc, self.tries, self.seed, self.replica_ids,
                  sweep0, n_sweeps, self.alg_code, self.n_overrelax, self.exchange, self.n_T, adapt,
                  self.g, self.cp, self.st, self.h_all, self.resync, self.out_E, self.out_mabs,
                  self.out_mu, self.out_msum, measure_from, self.swap_acc, self.swap_tries, self.w,
                  self.hid, self.mscr, self.wk)

    def reset_counters(self, n_discard: int = 0) -> None:
        """Start acceptance statistics afresh (called when equilibration ends). For Wolff, fix
        the clusters per sweep so that a sweep flips ~n_free spins on average (equilibration ran
        one cluster per sweep, so cluster / n_discard is the mean cluster size)."""
        if self.algorithm == "wolff" and n_discard > 0:
            nf = self.st.free.size
            mean_size = np.maximum(self.cluster / n_discard, 1.0)
            self.n_clusters[:] = np.clip(np.rint(nf / mean_size), 1, self.S.shape[1]).astype(np.int64)
        for a in (self.acc, self.tries, self.cluster):
            a[:] = 0
        self.reset_exchange_counters()

    def reset_exchange_counters(self) -> None:
        """Start the exchange statistics afresh (swap acceptances, the walkers' direction
        histograms and round trips; the walkers keep their places, directions and trips under way)."""
        for a in (self.swap_acc, self.swap_tries, self.wk.n_up, self.wk.n_down, self.wk.n_trips,
                  self.wk.trip_sum):
            a[:] = 0

    def set_beta(self, beta: np.ndarray) -> None:
        """New inverse temperatures of the slots (a tuned ladder); the configurations stay."""
        self.beta[:] = np.asarray(beta, dtype=np.float64)

    def results(self) -> dict[str, np.ndarray]:
        return dict(n_clusters=self.n_clusters, E=self.out_E, mabs=self.out_mabs, mu=self.out_mu,
                    msum=self.out_msum, acc=self.acc, tries=self.tries, swap_acc=self.swap_acc,
                    swap_tries=self.swap_tries, delta=self.delta, cluster=self.cluster, S=self.S,
                    **{f"walkers_{k}": v for k, v in self.wk._asdict().items()}, beta=self.beta)

    # ------------------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, np.ndarray]:
        """Copies of every array that carries the run from one sweep to the next (:func:`state_arrays`)."""
        return {k: np.array(v, copy=True) for k, v in state_arrays(self).items()}

    def load_state(self, saved: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` (in place). Raises ValueError naming an array that is missing or
        has another shape or type."""
        load_arrays(state_arrays(self), saved)
