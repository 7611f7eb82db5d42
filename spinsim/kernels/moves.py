"""Single-site moves given the local field: Metropolis proposals and acceptance, heat bath
(von Mises-Fisher for continuous O(n) spins, categorical for discrete ones), over-relaxation.

Each move is handed its visit seed ``vs`` and the index ``j`` of its first uniform (the draws of
:mod:`.rng`) and returns the next unused index, so that every backend draws the same numbers.
Spins here are unit vectors ``sigma``; lengths ``m`` enter as ``beta m sigma.phi``.
"""
from __future__ import annotations

import math

from ._jit import physics, physics_call
from .rng import (ACCEPT_DRAW, gamma_draw, gauss_vector, uniform, uniform_pair32,
                  uniform_triple21)

# algorithm codes shared with the orchestration layer
ALG_METROPOLIS = 0
ALG_HEATBATH = 1
ALG_OVERRELAX = 2   # n_overrelax reflection sweeps, then one heat-bath sweep


@physics
def dot(x, y):
    acc = 0.0
    for c in range(x.shape[0]):
        acc += x[c] * y[c]
    return acc


@physics
def metropolis_accept(dE, beta, vs):
    """Metropolis rule min(1, exp(-beta dE)) with the visit's acceptance uniform."""
    if dE <= 0.0:
        return True
    return uniform(vs, ACCEPT_DRAW) < math.exp(-beta * dE)


@physics
def propose_continuous(sig, delta, vs, j, out):
    """Isotropic proposal out = normalize(sig + delta eps), eps uniform in the unit ball (n <= 4,
    by rejection from the cube) or Gaussian (n > 4); symmetric, q(s'|s) = f(s.s'). Returns j."""
    n = sig.shape[0]
    if n <= 3:
        while True:
            e0, e1, e2 = uniform_triple21(vs, j)
            j += 1
            out[0] = e0
            r2 = e0 * e0
            if n > 1:
                out[1] = e1
                r2 += e1 * e1
            if n > 2:
                out[2] = e2
                r2 += e2 * e2
            if r2 <= 1.0:
                break
    elif n <= 4:
        while True:
            r2 = 0.0
            for c in range(0, n, 2):
                e0, e1 = uniform_pair32(vs, j)
                j += 1
                out[c] = e0
                r2 += e0 * e0
                if c + 1 < n:
                    out[c + 1] = e1
                    r2 += e1 * e1
            if r2 <= 1.0:
                break
    else:
        j = gauss_vector(vs, j, out)
    nrm = 0.0
    for c in range(n):
        x = sig[c] + delta * out[c]
        out[c] = x
        nrm += x * x
    nrm = math.sqrt(nrm)
    if nrm < 1e-300:
        for c in range(n):
            out[c] = sig[c]
    else:
        inv = 1.0 / nrm
        for c in range(n):
            out[c] *= inv
    return j


@physics
def propose_discrete(cur, K, vs):
    """Another of the K states, uniformly (K >= 2)."""
    nq = int(uniform(vs, 0) * (K - 1))
    if nq >= K - 1:
        nq = K - 2
    if nq >= cur:
        nq += 1
    return nq


@physics
def vmf_w(kappa, n, vs, j):
    """Component w = sigma.mu of a von Mises-Fisher draw on S^{n-1} with concentration
    kappa >= 0 (density of w ~ exp(kappa w) (1 - w^2)^{(n-3)/2}). Wood (1994), Commun. Stat.
    Simul. 23, 157; n = 3 by exact inversion. Returns (w, next j)."""
    if kappa < 1e-12:
        if n == 3:
            w = 2.0 * uniform(vs, j) - 1.0
            return w, j + 1
        # uniform on the sphere: w ~ 2 Beta((n-1)/2, (n-1)/2) - 1
        a = 0.5 * (n - 1)
        x, j = gamma_draw(a, vs, j)
        y, j = gamma_draw(a, vs, j)
        return 2.0 * x / (x + y) - 1.0, j
    if n == 3:
        u = uniform(vs, j)
        w = 1.0 + math.log(u + (1.0 - u) * math.exp(-2.0 * kappa)) / kappa
        if w < -1.0:
            w = -1.0
        return w, j + 1
    m1 = n - 1.0
    b = m1 / (2.0 * kappa + math.sqrt(4.0 * kappa * kappa + m1 * m1))
    x0 = (1.0 - b) / (1.0 + b)
    cc = kappa * x0 + m1 * math.log(1.0 - x0 * x0)
    a = 0.5 * m1
    while True:
        gx, j = gamma_draw(a, vs, j)
        gy, j = gamma_draw(a, vs, j)
        z = gx / (gx + gy)
        w = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        u = uniform(vs, j)
        j += 1
        if kappa * w + m1 * math.log(1.0 - x0 * w) - cc >= math.log(u):
            return w, j


@physics
def vmf_combine(w, sw, phi, pn, t, nrm, out):
    """out = w phi/|phi| + sqrt(1 - w^2) t/|t| over the components of the views (the last step
    of the heat bath: t is the part of a Gaussian vector orthogonal to phi, norm nrm)."""
    a = w / pn
    b = sw / nrm
    for c in range(out.shape[0]):
        out[c] = a * phi[c] + b * t[c]


@physics
def heatbath_continuous(phi, m, beta, vs, j, out):
    """out <- unit sigma drawn from P(sigma) ~ exp(beta m sigma.phi) (von Mises-Fisher).
    Returns the next unused draw index."""
    n = phi.shape[0]
    pn = math.sqrt(dot(phi, phi))
    w, j = vmf_w(beta * m * pn, n, vs, j)
    # a uniform direction orthogonal to mu = phi/|phi|
    j = gauss_vector(vs, j, out)
    if pn > 0.0:
        proj = dot(out, phi) / (pn * pn)
        nrm = 0.0
        for c in range(n):
            out[c] -= proj * phi[c]
            nrm += out[c] * out[c]
        nrm = math.sqrt(nrm)
        sw2 = 1.0 - w * w
        if sw2 < 0.0:   # (not max(): Numba's CUDA target mis-types the varargs max)
            sw2 = 0.0
        vmf_combine(w, math.sqrt(sw2), phi, pn, out, nrm, out)
    else:
        inv = 1.0 / math.sqrt(dot(out, out))
        for c in range(n):
            out[c] *= inv
    return j


@physics
def overrelax(sig, phi, out):
    """Microcanonical reflection of sig about phi: out = 2 (sig.mu) mu - sig (dE = 0)."""
    n = sig.shape[0]
    pp = dot(phi, phi)
    if pp <= 0.0:
        for c in range(n):
            out[c] = sig[c]
        return
    s = 2.0 * dot(sig, phi) / pp
    for c in range(n):
        out[c] = s * phi[c] - sig[c]


@physics_call
def heatbath_discrete(V, phi, m, beta, vs, j, logw):
    """Index a drawn from P(a) ~ exp(beta m V_a.phi); logw (K,) scratch."""
    K = V.shape[0]
    mx = -1e300
    for q in range(K):
        x = beta * m * dot(V[q], phi)
        logw[q] = x
        if x > mx:
            mx = x
    tot = 0.0
    for q in range(K):
        logw[q] = math.exp(logw[q] - mx)
        tot += logw[q]
    u = uniform(vs, j) * tot
    acc = 0.0
    for q in range(K):
        acc += logw[q]
        if u < acc:
            return q
    return K - 1
