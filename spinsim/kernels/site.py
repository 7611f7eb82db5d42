"""One site update, and the sweep of one replica built from it: the code every loop runs.

``site_update`` (a move given the local field) is called by the CPU sweep, the CUDA serial path
(thread 0 runs :func:`sweep_replica` itself), the CUDA cooperative path (thread 0, for discrete
and n <= 4 spins) and the annealing sweep of :mod:`.quench`. The bookkeeping of an accepted move
(:func:`apply_move`), the measurement (:func:`record`), the magnetisations (:func:`magnetisation`),
the Metropolis step rule (:func:`adapt_step`) and the replica-exchange rule
(:func:`exchange_accept`) are likewise shared by the CPU and CUDA loops.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import physics, physics_call
from .arrays import IDENTITY, KIND_CONTINUOUS, LOWRANK
from .field import field_isotropic_3, local_field, refresh_projections
from .moves import (ALG_HEATBATH, ALG_METROPOLIS, ALG_OVERRELAX, heatbath_3, heatbath_continuous,
                    heatbath_discrete, metropolis_accept, overrelax, propose_continuous,
                    propose_discrete)
from .rng import exchange_slot, n_slots, site_visit, uniform, uniform_triple21, visit_seed


@physics
def site_update(alg, kind, sig, cur, phi, m, beta, delta, V, vs, new, logw, n_h):
    """Choose the next state of one site of length m in the field phi (n,) at inverse temperature
    beta: Metropolis (step delta), heat bath or over-relaxation (``alg``), continuous spins
    (current unit spin sig (n,)) or discrete ones (current index cur into V (K, n)). n_h hidden
    components (continuous spins of a reduced state, :mod:`.moves`; 0 for the full space): sig
    and new are then the visible parts (|sig| <= 1) of unit spins of R^(n + n_h).

    Writes the new unit spin into new (n,); logw (K,) scratch. Returns (ok, nq, dE): ok False
    when the move is rejected (Metropolis) or impossible (Metropolis with K < 2), nq the new
    discrete index, dE = -m (sigma' - sigma).phi the energy change."""
    n = phi.shape[0]
    nq = cur
    dE = 0.0
    if kind == KIND_CONTINUOUS and n == 3 and n_h == 0:
        return site_update_3(alg, sig, cur, phi, m, beta, delta, vs, new)
    if kind == KIND_CONTINUOUS:
        if alg == ALG_METROPOLIS:
            propose_continuous(sig, delta, vs, 0, new, n_h)
        elif alg == ALG_HEATBATH:
            heatbath_continuous(phi, m, beta, vs, 0, new, n_h)
        else:
            overrelax(sig, phi, new)
        for c in range(n):
            dE -= (new[c] - sig[c]) * phi[c]
    else:
        K = V.shape[0]
        if alg == ALG_METROPOLIS:
            if K < 2:
                return False, cur, 0.0
            nq = propose_discrete(cur, K, vs)
        else:
            nq = heatbath_discrete(V, phi, m, beta, vs, 0, logw)
        for c in range(n):
            new[c] = V[nq, c]
            dE -= (V[nq, c] - V[cur, c]) * phi[c]
    dE *= m
    if alg == ALG_METROPOLIS and not metropolis_accept(dE, beta, vs):
        return False, nq, dE
    return True, nq, dE


@physics
def site_update_3(alg, sig, cur, phi, m, beta, delta, vs, new):
    """:func:`site_update` of an n = 3 unit spin (no hidden components) with the spin, the field
    and the proposal in registers: Metropolis, heat bath (:func:`~.moves.heatbath_3`) or
    over-relaxation. The same draws and the same floating-point operations, in the same order, as
    :func:`~.moves.propose_continuous` / :func:`~.moves.heatbath_continuous` /
    :func:`~.moves.overrelax` followed by site_update's energy change and acceptance, so the
    chains are bit for bit those of the general path (checked when written, 30 Nov and 1 Dec, on
    Heisenberg lattices with and without fields, every algorithm, with and without exchange,
    against the commit before it). Written out because the general path, through the move's
    (n,) scratch array, ran the lattice Metropolis at 0.79 of the rate of the pre-unification
    kernel (BENCHMARKS.md). Returns (ok, cur, dE)."""
    s0 = sig[0]
    s1 = sig[1]
    s2 = sig[2]
    p0 = phi[0]
    p1 = phi[1]
    p2 = phi[2]
    if alg == ALG_METROPOLIS:
        j = 0
        while True:                      # eps uniform in the unit ball, by rejection from the cube
            e0, e1, e2 = uniform_triple21(vs, j)
            j += 1
            if e0 * e0 + e1 * e1 + e2 * e2 <= 1.0:
                break
        x0 = s0 + delta * e0
        x1 = s1 + delta * e1
        x2 = s2 + delta * e2
        nrm = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2 + 0.0)
        if nrm < 1e-300:
            n0 = s0
            n1 = s1
            n2 = s2
        else:
            inv = 1.0 / nrm
            n0 = x0 * inv
            n1 = x1 * inv
            n2 = x2 * inv
    elif alg == ALG_HEATBATH:
        heatbath_3(phi, m, beta, vs, 0, new)
        n0 = new[0]
        n1 = new[1]
        n2 = new[2]
    else:                                # reflection about phi: n = 2 (s.phi) phi / |phi|^2 - s
        pp = p0 * p0 + p1 * p1 + p2 * p2
        if pp <= 0.0:
            n0 = s0
            n1 = s1
            n2 = s2
        else:
            f = 2.0 * (s0 * p0 + s1 * p1 + s2 * p2) / pp
            n0 = f * p0 - s0
            n1 = f * p1 - s1
            n2 = f * p2 - s2
    new[0] = n0
    new[1] = n1
    new[2] = n2
    dE = 0.0
    dE -= (n0 - s0) * p0
    dE -= (n1 - s1) * p1
    dE -= (n2 - s2) * p2
    dE *= m
    if alg == ALG_METROPOLIS and not metropolis_accept(dE, beta, vs):
        return False, cur, dE
    return True, cur, dE


@physics
def apply_move(Sr, k, m, new, U, mvec_r, inv_nf):
    """S_k <- m new; mvec_r += (S_k' - S_k) / n_free over the components of the views; returns
    (S_k' - S_k).U_k over them."""
    du = 0.0
    for c in range(new.shape[0]):
        snew = m * new[c]
        d = snew - Sr[k, c]
        mvec_r[c] += d * inv_nf
        du += d * U[k, c]
        Sr[k, c] = snew
    return du


@physics_call
def sweep_replica(r, s, alg, key, ch, g, cp, st, h, beta, delta, acc, tries, w):
    """One sweep of replica r (sweep index s) over the free sites in order, algorithm ``alg``;
    updates ch (Chains) in place (low rank: the moved site's projections P_k, Q_k too) and, for
    Metropolis, the counters acc, tries (R,)."""
    S = ch.S
    N = S.shape[1]
    n = S.shape[2]
    if n == 3 and st.kind == KIND_CONTINUOUS and st.n_hidden == 0 and cp.code == IDENTITY:
        sweep_isotropic_3(r, s, alg, key, ch, g, cp, st, h, beta, delta, acc, tries, w)
        return
    nf = st.free.shape[0]
    inv_nf = 1.0 / nf
    Sr = S[r]
    Pr = ch.P[r]
    Qr = ch.Q[r]
    Xr = ch.X[r]
    mvec_r = ch.mvec[r]
    b, dlt, e_r, mu_r = replica_scalars(ch, r, beta, delta)
    n_acc = 0
    for q in range(nf):
        k = st.free[q]
        vs = site_visit(key, s, k, N)
        local_field(Sr, Pr, Qr, k, g, cp, h, w)
        m = st.lengths[k]
        if st.kind == KIND_CONTINUOUS:
            inv_m = 1.0 / m
            for c in range(n):
                w.sig[c] = Sr[k, c] * inv_m
        ok, nq, dE = site_update(alg, st.kind, w.sig, Xr[k], w.phi, m, b, dlt, st.V, vs, w.new,
                                 w.logw, st.n_hidden)
        if not ok:
            continue
        Xr[k] = nq
        n_acc += 1
        mu_r += apply_move(Sr, k, m, w.new, st.U, mvec_r, inv_nf) * inv_nf
        if cp.code >= LOWRANK:
            refresh_projections(cp, Sr, k, Pr, Qr)
        e_r += dE
    end_sweep(ch, r, alg, e_r, mu_r, n_acc, nf, acc, tries)


@physics_call
def sweep_isotropic_3(r, s, alg, key, ch, g, cp, st, h, beta, delta, acc, tries, w):
    """:func:`sweep_replica` for n = 3 continuous spins with ``M = J 1`` (Heisenberg lattices),
    every local algorithm: the same field, move (:func:`site_update_3`), bookkeeping and draws in
    the same order (the chain is bit for bit the general one), as a loop of its own. Inside the
    general loop (every move of every spin kind inlined into one body) the lattice Metropolis ran
    at 0.77-0.94 of the pre-unification kernel's rate; in this loop at ~1.6x it (BENCHMARKS.md,
    issue 10)."""
    Sr = ch.S[r]
    N = Sr.shape[0]
    free = st.free
    lengths = st.lengths
    U = st.U
    nf = free.shape[0]
    inv_nf = 1.0 / nf
    mvec_r = ch.mvec[r]
    sig = w.sig
    phi = w.phi
    new = w.new
    J = cp.J
    b, dlt, e_r, mu_r = replica_scalars(ch, r, beta, delta)
    n_acc = 0
    for q in range(nf):
        k = free[q]
        vs = site_visit(key, s, k, N)
        field_isotropic_3(Sr, k, g, J, h, phi)
        m = lengths[k]
        inv_m = 1.0 / m
        for c in range(3):
            sig[c] = Sr[k, c] * inv_m
        ok, _, dE = site_update_3(alg, sig, 0, phi, m, b, dlt, vs, new)
        if not ok:
            continue
        n_acc += 1
        mu_r += apply_move(Sr, k, m, new, U, mvec_r, inv_nf) * inv_nf
        e_r += dE
    end_sweep(ch, r, alg, e_r, mu_r, n_acc, nf, acc, tries)


@physics
def replica_scalars(ch, r, beta, delta):
    """(inverse temperature, Metropolis step, tracked E, tracked m.u) of replica r at the start of
    a sweep; :func:`end_sweep` stores E and m.u back."""
    return beta[r], delta[r], ch.E[r], ch.mu[r]


@physics
def end_sweep(ch, r, alg, e_r, mu_r, n_acc, n_tries, acc, tries):
    """Store the tracked E and m.u of replica r and, for Metropolis, count the sweep's moves."""
    ch.E[r] = e_r
    ch.mu[r] = mu_r
    if alg == ALG_METROPOLIS:
        tries[r] += n_tries
        acc[r] += n_acc


@physics
def sweep_schedule(r, s, alg, n_overrelax, key, ch, g, cp, st, h, beta, delta, acc, tries, w):
    """One counted sweep: ``alg``, or for ALG_OVERRELAX n_overrelax reflection sweeps followed by
    one heat-bath sweep.

    Compile time: :func:`sweep_replica` is compiled once per distinct argument types. A constant
    argument (``ALG_HEATBATH``) is typed as a literal and a ``prange`` index as uint64 in the
    parallel loop but int64 in Numba's first typing pass, which made six copies of the largest
    function of the kernels (minutes of LLVM time). r and the algorithm are therefore passed on
    as plain int64 values: one copy."""
    ri = np.int64(r)
    a = np.int64(alg)
    if a == ALG_OVERRELAX:
        for o in range(n_overrelax):
            sweep_replica(ri, s, a, key, ch, g, cp, st, h, beta, delta, acc, tries, w)
        a = a + (ALG_HEATBATH - ALG_OVERRELAX)          # int64, not Literal[int]
    sweep_replica(ri, s, a, key, ch, g, cp, st, h, beta, delta, acc, tries, w)


@physics
def adapt_step(delta, r, n_acc, n_tries):
    """Tune the Metropolis step of replica r towards 50 % acceptance (discarded sweeps only):
    x 1.05 above, x 0.95 below, kept in [1e-4, 2] (min/max written out: Numba's CUDA target
    mis-types the varargs overloads)."""
    rate = n_acc / (n_tries if n_tries > 1 else 1)
    if rate > 0.5:
        x = delta[r] * 1.05
        delta[r] = x if x < 2.0 else 2.0
    else:
        x = delta[r] * 0.95
        delta[r] = x if x > 1e-4 else 1e-4


@physics_call
def magnetisation(Sr, free, U, mvec_r):
    """mvec_r <- sum_free S_k / n_free over the components of the views Sr (N, n'), U (N, n'),
    mvec_r (n',); returns their part of sum_free S_k.U_k / n_free."""
    n = mvec_r.shape[0]
    nf = free.shape[0]
    for c in range(n):
        mvec_r[c] = 0.0
    m_u = 0.0
    for q in range(nf):
        k = free[q]
        for c in range(n):
            mvec_r[c] += Sr[k, c] / nf
            m_u += Sr[k, c] * U[k, c] / nf
    return m_u


@physics
def record(ch, r, out_E, out_mabs, out_mu, out_msum, t):
    """Measure replica r into column t: E, |m|, m.u, and the running sum of m."""
    out_E[r, t] = ch.E[r]
    m2 = 0.0
    for c in range(ch.mvec.shape[1]):
        m2 += ch.mvec[r, c] * ch.mvec[r, c]
        out_msum[r, c] += ch.mvec[r, c]
    out_mabs[r, t] = math.sqrt(m2)
    out_mu[r, t] = ch.mu[r]


@physics
def exchange_accept(key1, s, n_sites, b1, b2, E1, E2):
    """Replica exchange of the pair (r1 at b1, r2 at b2) after sweep s, drawn with r1's key:
    accept with min(1, exp((b1 - b2)(E1 - E2)))."""
    vs = visit_seed(key1, s, exchange_slot(n_sites), n_slots(n_sites))
    x = (b1 - b2) * (E1 - E2)
    return x >= 0.0 or uniform(vs, 0) < math.exp(x)


@physics
def swap_walkers(wk, r1, r2):
    """An accepted exchange of slots r1, r2 swaps their walker labels too."""
    wk.walker[r1], wk.walker[r2] = wk.walker[r2], wk.walker[r1]


@physics
def track_walkers(wk, chn, n_T, s):
    """After the exchange step of sweep s, update the walkers of chain chn (slots chn * n_T + t,
    t = 0 the lowest temperature): a walker at t = 0 turns "up" (+1), one at t = n_T - 1 turns
    "down" (-1); a walker reaching t = 0 while "down" completes a round trip (lowest -> highest
    -> lowest) if it had started one, of duration s - last_start. Then every slot counts the
    direction of its walker (n_up, n_down: the histograms of Katzgraber et al. 2006, J. Stat.
    Mech. P03018)."""
    r0 = chn * n_T
    w = wk.walker[r0]
    if wk.direction[w] != 1:
        if wk.direction[w] == -1 and wk.last_start[w] >= 0:
            wk.n_trips[w] += 1
            wk.trip_sum[w] += s - wk.last_start[w]
        wk.last_start[w] = s
        wk.direction[w] = 1
    wk.direction[wk.walker[r0 + n_T - 1]] = -1
    for t in range(n_T):
        d = wk.direction[wk.walker[r0 + t]]
        if d == 1:
            wk.n_up[r0 + t] += 1
        elif d == -1:
            wk.n_down[r0 + t] += 1
