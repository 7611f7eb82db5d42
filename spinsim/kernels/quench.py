"""Zero-temperature quench and annealing kernels (Numba, pure array functions).

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i``, k_B = 1,
``W[i, j]``: query i, key j. Spins carry their lengths: ``S_i = m_i sigma_i``.

The kernels work in a *working basis* of dimension ``d`` chosen by the caller (the full R^n, or
an exact reduction to ``span(A, B, h)`` for a low-rank coupling, see ``solvers/ground.py``).
The coupling is given by ``mode``:

* ``MODE_IDENTITY`` (0): ``M = J * 1``;            projections ``P_j = Q_j = S_j`` (r = d)
* ``MODE_DENSE``    (1): ``M`` dense (d, d);        projections ``P_j = Q_j = S_j`` (r = d)
* ``MODE_LOWRANK``  (2): ``M = A B^T``, A, B (1, d, r); projections ``P_j = B^T S_j``, ``Q_j = A^T S_j``
* ``MODE_SITE_LOWRANK`` (3): ``M_ij = A_i B_j^T``, A, B (N, d, r); ``P_j = B_j^T S_j``, ``Q_j = A_j^T S_j``

Each kernel keeps, for every site k, the aggregated projections ``X_k = sum_j W_kj P_j`` and
``Y_k = sum_j W_jk Q_j`` (both (r,)), updated incrementally in O(deg(k) r) when a spin moves, so
that the local field

    phi_k = sum_j W_kj M S_j + sum_j W_jk M^T S_j + h_k
          = J (X_k + Y_k) + h_k  |  M X_k + M^T Y_k + h_k  |  A_k X_k + B_k Y_k + h_k

costs O(d) / O(d^2) / O(d r). Never is the full energy recomputed per move.

Neighbour lists are ``(ptr, nbr, w_out, w_in)`` from :meth:`Hamiltonian.neighbours`: for site k
the entries ``e in ptr[k]:ptr[k+1]`` give ``j = nbr[e]``, ``w_out[e] = W_kj``, ``w_in[e] = W_jk``.

The field and the projections are those of :mod:`.field` (``field_from_sums``, ``project``),
the annealing move is :func:`.site.site_update` (heat bath), compiled under the one policy of
:mod:`._jit` (IEEE arithmetic; the loops are element-wise, so LLVM vectorises them).

Spin kinds: ``V`` (K, d) empty (K = 0) means continuous (Heisenberg) spins, ``S_k = m_k phi_k/|phi_k|``;
otherwise site k takes one of the K rows of V (times m_k) and its state index is kept in ``sidx``.
"""
from __future__ import annotations

import numpy as np

from ._jit import cpu
from .arrays import (DENSE, IDENTITY, KIND_CONTINUOUS, KIND_DISCRETE, LOWRANK, SITE_LOWRANK,
                     Coupling, Graph)
from .field import fac, field_from_sums, project
from .moves import ALG_HEATBATH
from .rng import n_slots_sites, replica_key, site_slot, visit_seed
from .site import site_update

__all__ = ["MODE_IDENTITY", "MODE_DENSE", "MODE_LOWRANK", "MODE_SITE_LOWRANK", "quench_batch",
           "anneal_batch", "aggregate"]

MODE_IDENTITY = IDENTITY
MODE_DENSE = DENSE
MODE_LOWRANK = LOWRANK
MODE_SITE_LOWRANK = SITE_LOWRANK

_RHO_RTOL = 2e-3     # adaptive over-relaxation: "steady" contraction rate
_PROBE_START = 32    # ... or, failing that, the mean rate of plain sweeps 32 -> 40
_PROBE_END = 40
_OMEGA_MAX = 1.9
_REVERT = 20.0       # ... and back to omega = 1 if the change then grows by this factor


# ----------------------------------------------------------------------------- pieces
@cpu
def _transpose(A):
    """(F, d, r) -> C-contiguous (F, r, d)."""
    F, d, r = A.shape
    out = np.empty((F, r, d))
    for f in range(F):
        for a in range(d):
            for q in range(r):
                out[f, q, a] = A[f, a, q]
    return out


@cpu
def _coupling(mode, J, M, A, B):
    return Coupling(np.int64(mode), np.float64(J), M, A, B, _transpose(A), _transpose(B))


@cpu
def _project(cp, k, s, P, Q):
    """P = B_k^T s, Q = A_k^T s (low rank; site k's factors) or P = Q = s (identity, dense)."""
    if cp.code >= LOWRANK:
        f = fac(cp, k)
        project(cp.B[f], cp.A[f], s, s, P, Q)
    else:
        for a in range(s.shape[0]):
            P[a] = s[a]
            Q[a] = s[a]


@cpu
def _aggregate(cp, S, g, X, Y):
    """Fill ``X_k = sum_j W_kj P_j`` and ``Y_k = sum_j W_jk Q_j`` for all sites from scratch."""
    N = S.shape[0]
    r = X.shape[1]
    P = np.empty((N, r))
    Q = np.empty((N, r))
    for j in range(N):
        _project(cp, j, S[j], P[j], Q[j])
    for k in range(N):
        for c in range(r):
            X[k, c] = 0.0
            Y[k, c] = 0.0
        for e in range(g.ptr[k], g.ptr[k + 1]):
            j = g.idx[e]
            wo = g.w_out[e]
            wi = g.w_in[e]
            for c in range(r):
                X[k, c] += wo * P[j, c]
                Y[k, c] += wi * Q[j, c]


@cpu
def aggregate(mode, A, B, S, ptr, nbr, w_out, w_in, X, Y):
    """Fill ``X_k = sum_j W_kj P_j`` and ``Y_k = sum_j W_jk Q_j`` for all sites from scratch
    (A, B (F, d, r): the factor sets of :func:`quench_batch`)."""
    _aggregate(_coupling(mode, 0.0, A, A, B), S, Graph(ptr, nbr, w_out, w_in), X, Y)


@cpu
def _field(cp, X, Y, h, k, phi):
    """phi_k from the aggregates: J (X_k + Y_k) | M X_k + M^T Y_k | A_k X_k + B_k Y_k, plus h_k."""
    f = fac(cp, k)
    field_from_sums(cp, cp.M, cp.M, cp.AT[f], cp.BT[f], X[k], Y[k], X[k], Y[k], X[k], Y[k], h[k],
                    phi)


@cpu
def _move(cp, dS, k, g, X, Y, dP, dQ):
    """Propagate a change dS of spin k into the aggregates of its neighbours.

    X_j += W_jk B_k^T dS (= w_in), Y_j += W_kj A_k^T dS (= w_out), j in the neighbours of k.
    """
    _project(cp, k, dS, dP, dQ)
    r = dP.shape[0]
    for e in range(g.ptr[k], g.ptr[k + 1]):
        j = g.idx[e]
        wi = g.w_in[e]
        wo = g.w_out[e]
        if wi != 0.0:
            for c in range(r):
                X[j, c] += wi * dP[c]
        if wo != 0.0:
            for c in range(r):
                Y[j, c] += wo * dQ[c]


# ----------------------------------------------------------------------------- quench
@cpu
def _quench_one(S, sidx, cp, h, m, sites, g, V, tol, max_sweeps, omega):
    N, d = S.shape
    r = cp.A.shape[2] if cp.code >= LOWRANK else d
    K = V.shape[0]
    X = np.empty((N, r))
    Y = np.empty((N, r))
    _aggregate(cp, S, g, X, Y)
    phi = np.empty(d)
    dS = np.empty(d)
    dP = np.empty(r)
    dQ = np.empty(r)
    sweeps = 0
    last = np.inf
    converged = False
    auto = omega <= 0.0
    om = 1.0 if auto else omega
    prev = 0.0
    at_switch = 0.0
    r1 = r2 = r3 = r4 = 0.0
    while sweeps < max_sweeps:
        sweeps += 1
        worst = 0.0
        for t in range(sites.shape[0]):
            k = sites[t]
            _field(cp, X, Y, h, k, phi)
            mk = m[k]
            if K == 0:
                nrm = 0.0
                for a in range(d):
                    nrm += phi[a] * phi[a]
                nrm = np.sqrt(nrm)
                if nrm == 0.0:
                    continue              # no torque and no preferred direction: stay
                if om != 1.0 and sweeps > 1:
                    # over-relaxed move x = omega phi_hat - (omega - 1) sigma_k, renormalised:
                    # for 1 <= omega < 2 it lands strictly closer (in angle) to phi_k than
                    # sigma_k was, so the site energy still decreases; same fixed points
                    xn = 0.0
                    for a in range(d):
                        dS[a] = om * phi[a] / nrm - (om - 1.0) * S[k, a] / mk
                        xn += dS[a] * dS[a]
                    xn = np.sqrt(xn)
                    for a in range(d):
                        dS[a] = mk * dS[a] / xn
                else:
                    for a in range(d):
                        dS[a] = mk * phi[a] / nrm
                ch = 0.0
                for a in range(d):
                    new = dS[a]
                    dS[a] = new - S[k, a]
                    ch += dS[a] * dS[a]
                    S[k, a] = new
                ch = np.sqrt(ch) / mk
                if ch > worst:
                    worst = ch
                if ch > 0.0:
                    _move(cp, dS, k, g, X, Y, dP, dQ)
            else:
                cur = sidx[k]
                e_cur = 0.0
                for a in range(d):
                    e_cur -= V[cur, a] * phi[a]
                best = cur
                e_best = e_cur
                for q in range(K):
                    e = 0.0
                    for a in range(d):
                        e -= V[q, a] * phi[a]
                    if e < e_best:
                        e_best = e
                        best = q
                # move only on a strict decrease beyond rounding (ties keep the current state)
                if best != cur and (e_best - e_cur) * mk < -1e-13 * mk * (abs(e_cur) + abs(e_best)):
                    for a in range(d):
                        new = mk * V[best, a]
                        dS[a] = new - S[k, a]
                        S[k, a] = new
                    sidx[k] = best
                    worst = 1.0
                    _move(cp, dS, k, g, X, Y, dP, dQ)
        last = worst
        if worst <= tol:
            converged = True
            break
        if auto and K == 0 and prev > 0.0 and worst > 0.0:
            # adaptive over-relaxation (Hageman & Young's adaptive SOR, used heuristically):
            # once the contraction rate lam = change_t / change_{t-1} is steady and < 1 (4
            # ratios within _RHO_RTOL), estimate the plain-sweep rate mu2 from
            # (lam + om - 1)^2 = lam om^2 mu2 and move to the optimum om = 2 / (1 + sqrt(1 - mu2))
            r4, r3, r2, r1 = r3, r2, r1, worst / prev
            if om != 1.0 and worst > _REVERT * at_switch:
                # left the linear regime (e.g. escaping a saddle): back to plain sweeps
                om = 1.0
                r1 = r2 = r3 = r4 = 0.0
            elif (r4 > 0.0 and max(max(r1, r2), max(r3, r4)) < 1.0
                    and max(max(r1, r2), max(r3, r4)) - min(min(r1, r2), min(r3, r4)) <= _RHO_RTOL * r1):
                mu2 = (r1 + om - 1.0) ** 2 / (r1 * om * om)
                if mu2 < 1.0:
                    new = min(2.0 / (1.0 + np.sqrt(1.0 - mu2)), _OMEGA_MAX)
                    if new > om + 1e-3:
                        om = new
                        at_switch = worst
                        r1 = r2 = r3 = r4 = 0.0
        prev = worst
    return sweeps, converged, last


@cpu
def quench_batch(S, sidx, mode, J, M, A, B, h, m, sites, ptr, nbr, w_out, w_in, V, tol, max_sweeps, omega):
    """Quench every replica to a fixed point of ``S_k = m_k phi_k / |phi_k|`` (in place).

    S (R, N, d) spins (lengths included; frozen sites hold their fixed values); sidx (R, N) int64
    state indices (discrete spins; ignored when V is empty); J float; M (d, d); A, B (F, d, r)
    the factor sets (F = 1: LowRank; F = N: SiteLowRank, site k's factors A[k], B[k]; a (1, 1, 1)
    placeholder for identity and dense, see ``arrays.factor_sets``);
    h (N, d) fields; m (N,) lengths; sites (n_free,) int64 the free sites, swept in this order;
    V (K, d) allowed unit vectors or (0, d) for continuous spins; tol: stop when the largest
    change ``|sigma_k' - sigma_k|`` of a sweep is <= tol (discrete: when no spin moves);
    max_sweeps per replica; omega: over-relaxation of continuous moves, 1 = plain alignment, a
    value in (1, 2) = fixed, <= 0 = adaptive (see :func:`_quench_one`). A plain move sets S_k to
    its exact single-site minimiser; an over-relaxed one, ``x = omega phi_hat - (omega - 1)
    sigma_k`` renormalised, lands strictly closer in angle to phi_k than sigma_k was (for
    1 <= omega < 2): either way the energy never increases and the fixed points are the same.
    Returns (sweeps (R,) int64, converged (R,) bool, last_change (R,) float).
    """
    R = S.shape[0]
    cp = _coupling(mode, J, M, A, B)
    g = Graph(ptr, nbr, w_out, w_in)
    sweeps = np.zeros(R, np.int64)
    conv = np.zeros(R, np.bool_)
    last = np.zeros(R)
    for q in range(R):
        s, c, l = _quench_one(S[q], sidx[q], cp, h, m, sites, g, V, tol, max_sweeps, omega)
        sweeps[q] = s
        conv[q] = c
        last[q] = l
    return sweeps, conv, last


# ----------------------------------------------------------------------------- heat bath
@cpu
def _heat_bath_sweep(S, sidx, cp, h, m, sites, g, V, beta, key, step, X, Y, phi, dS, dP, dQ, sig,
                     out, logw):
    N, d = S.shape
    kind = KIND_CONTINUOUS if V.shape[0] == 0 else KIND_DISCRETE
    for t in range(sites.shape[0]):
        k = sites[t]
        vs = visit_seed(key, step, site_slot(k), n_slots_sites(N))
        _field(cp, X, Y, h, k, phi)
        mk = m[k]
        for a in range(d):
            sig[a] = S[k, a] / mk
        cur = sidx[k]
        _, q, _ = site_update(ALG_HEATBATH, kind, sig, cur, phi, mk, beta, 0.0, V, vs, out, logw, 0)
        if kind == KIND_CONTINUOUS or q != cur:
            for a in range(d):
                new = mk * out[a]
                dS[a] = new - S[k, a]
                S[k, a] = new
            sidx[k] = q
            _move(cp, dS, k, g, X, Y, dP, dQ)


@cpu
def anneal_batch(S, sidx, mode, J, M, A, B, h, m, sites, ptr, nbr, w_out, w_in, V, betas, seed,
                 first_replica):
    """Simulated annealing by heat-bath sweeps, one sweep per entry of ``betas`` (in place).

    Same arrays as :func:`quench_batch`; betas (n_steps,) inverse temperatures (k_B = 1), usually
    increasing; replica q draws from the counter RNG keyed by ``(seed, first_replica + q)``, with
    visit ``(step, site)`` (SPEC section 2), so a replica's chain does not depend on how many
    others run. Continuous spins are drawn from the exact conditional ``exp(beta S_k . phi_k)``
    on the unit sphere of the working basis (von Mises-Fisher), discrete ones from the
    Boltzmann weights of the K candidates: :func:`.site.site_update` with the heat bath.
    """
    R, N, d = S.shape
    r = A.shape[2] if mode >= MODE_LOWRANK else d
    K = V.shape[0]
    cp = _coupling(mode, J, M, A, B)
    g = Graph(ptr, nbr, w_out, w_in)
    for q in range(R):
        key = replica_key(seed, first_replica + q)
        X = np.empty((N, r))
        Y = np.empty((N, r))
        _aggregate(cp, S[q], g, X, Y)
        vec = np.empty((4, d))          # phi, sig, dS, out
        proj = np.empty((2, r))         # dP, dQ
        logw = np.empty(max(K, 1))
        for t in range(betas.shape[0]):
            _heat_bath_sweep(S[q], sidx[q], cp, h, m, sites, g, V, betas[t], key, t, X, Y, vec[0],
                             vec[2], proj[0], proj[1], vec[1], vec[3], logw)
