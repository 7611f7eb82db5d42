"""Single-site moves given the local field: Metropolis proposals and acceptance, heat bath
(von Mises-Fisher for continuous O(n) spins, categorical for discrete ones), over-relaxation.

Each move is handed its visit seed ``vs`` and the index ``j`` of its first uniform (the draws of
:mod:`.rng`) and returns the next unused index, so that every backend draws the same numbers.
Spins here are unit vectors ``sigma``; lengths ``m`` enter as ``beta m sigma.phi``.

Hidden dimensions (the reduced spin space, :mod:`spinsim.reduced_space`). A continuous move may
see only the visible part ``p = U^T sigma`` (k components; ``|p| <= 1``) of a unit spin of R^n,
``n = k + n_h``, when the field phi lies in the visible space; the other ``n_h`` components are
isotropic and enter exactly as follows (``n_h = 0``: the full-space moves, the same draws):

* heat bath: sigma = w mu + sqrt(1 - w^2) t with w from Wood's algorithm *in n dimensions* and
  t uniform on the unit sphere of mu^perp (n - 1 dimensions), t = g / |g| for a standard
  Gaussian g of mu^perp. Its visible part is the k Gaussians drawn here with their mu component
  removed (a standard Gaussian of the (k - 1)-dimensional mu^perp inside the visible space);
  its hidden part only enters through ``|g|^2 = |g_visible|^2 + chi2_{n_h}``. So
  ``p = w mu + sqrt(1 - w^2) g_visible / sqrt(|g_visible|^2 + chi2_{n_h})``: exact in law.
* Metropolis: the full-space proposal sigma' = normalize(sigma + delta eps), eps ~ N(0, 1_n).
  Write sigma = (p, rho e) with rho = sqrt(1 - |p|^2) and e a hidden unit vector; eps = (g, z e +
  g_perp) with z ~ N(0, 1) and |g_perp|^2 ~ chi2_{n_h - 1}. Then
  ``|sigma + delta eps|^2 = |p + delta g|^2 + (rho + delta z)^2 + delta^2 chi2_{n_h - 1}`` and
  ``p' = (p + delta g) / sqrt(that)``. The proposal is symmetric in R^n and commutes with the
  rotations of the hidden space, which leave exp(-beta H) invariant; so the projected chain of
  the visible parts is itself a Markov chain, with the same acceptance (dE needs only p).
* over-relaxation: the reflection of sigma about mu = phi/|phi| keeps |p| and so the hidden norm
  (it maps the hidden part e -> -e, the same isotropic law): the visible reflection is exact.
"""
from __future__ import annotations

import math

from ._jit import physics, physics_call
from .rng import (ACCEPT_DRAW, TWO_PI, chi2_draw, gamma_draw, gauss, gauss_vector, uniform,
                  uniform_pair32, uniform_triple21)

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
def hidden_norm2(sig, delta, n_h, vs, j):
    """|hidden part of sigma + delta eps|^2 for a unit spin of R^(k + n_h) with visible part sig
    (k,): (rho + delta z)^2 + delta^2 chi2_{n_h - 1}, rho = sqrt(1 - |sig|^2) (see the module
    docstring). Returns (value, next j); (0, j) without a draw when n_h = 0."""
    if n_h <= 0:
        return 0.0, j
    rho2 = 1.0 - dot(sig, sig)
    if rho2 < 0.0:
        rho2 = 0.0
    z = gauss(vs, j)
    j += 1
    c2, j = chi2_draw(n_h - 1, vs, j)
    t = math.sqrt(rho2) + delta * z
    return t * t + delta * delta * c2, j


@physics
def propose_continuous(sig, delta, vs, j, out, n_h):
    """Isotropic proposal out = normalize(sig + delta eps) of a unit spin of R^n, n = k + n_h (k
    visible components sig, out (k,); n_h hidden ones, module docstring), eps uniform in the unit
    ball (n <= 4, by rejection from the cube; then n_h = 0) or Gaussian (n > 4); symmetric,
    q(s'|s) = f(s.s'). Returns j."""
    n = sig.shape[0]
    n_full = n + n_h
    if n_full <= 3:
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
    elif n_full <= 4:
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
    hid2, j = hidden_norm2(sig, delta, n_h, vs, j)
    nrm = 0.0
    for c in range(n):
        x = sig[c] + delta * out[c]
        out[c] = x
        nrm += x * x
    nrm = math.sqrt(nrm + hid2)
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
    """Another of the K states, uniformly (K >= 3); for K = 2 (Ising) either state with
    probability 1/2 (a proposal that can stay). Always proposing the flip makes the K = 2 chain
    periodic as beta -> 0 (every spin flips every sweep: |m| constant, a wrong value with zero
    error at T = 1e6); with a lazy proposal it samples independent spins at beta = 0."""
    if K == 2:
        return 1 if uniform(vs, 0) < 0.5 else 0
    nq = int(uniform(vs, 0) * (K - 1))
    if nq >= K - 1:
        nq = K - 2
    if nq >= cur:
        nq += 1
    return nq


@physics_call
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
def heatbath_3(phi, m, beta, vs, j, out):
    """n = 3 heat bath in registers: w = sigma.mu by exact inversion (:func:`vmf_w`), then the
    direction orthogonal to mu = phi/|phi| as one uniform angle psi in a fixed orthonormal pair
    (e1, e2) of mu's complement (uniform on that circle for any such pair): two uniforms, no
    Gaussians. phi = 0: mu = e_z, w uniform in [-1, 1]. Returns the next unused draw index."""
    p0 = phi[0]
    p1 = phi[1]
    p2 = phi[2]
    pn = math.sqrt(p0 * p0 + p1 * p1 + p2 * p2)
    w, j = vmf_w(beta * m * pn, 3, vs, j)
    if pn > 0.0:
        inv = 1.0 / pn
        u0 = p0 * inv
        u1 = p1 * inv
        u2 = p2 * inv
    else:
        u0 = 0.0
        u1 = 0.0
        u2 = 1.0
    # e1 = mu x (the axis least aligned with mu), normalised; e2 = mu x e1
    a0 = abs(u0)
    a1 = abs(u1)
    a2 = abs(u2)
    if a0 <= a1 and a0 <= a2:        # mu x e_x = (0, u2, -u1)
        e0 = 0.0
        e1 = u2
        e2 = -u1
    elif a1 <= a2:                   # mu x e_y = (-u2, 0, u0)
        e0 = -u2
        e1 = 0.0
        e2 = u0
    else:                            # mu x e_z = (u1, -u0, 0)
        e0 = u1
        e1 = -u0
        e2 = 0.0
    ie = 1.0 / math.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
    e0 *= ie
    e1 *= ie
    e2 *= ie
    f0 = u1 * e2 - u2 * e1
    f1 = u2 * e0 - u0 * e2
    f2 = u0 * e1 - u1 * e0
    psi = TWO_PI * uniform(vs, j)
    sw2 = 1.0 - w * w
    if sw2 < 0.0:
        sw2 = 0.0
    sw = math.sqrt(sw2)
    c = sw * math.cos(psi)
    s = sw * math.sin(psi)
    out[0] = w * u0 + c * e0 + s * f0
    out[1] = w * u1 + c * e1 + s * f1
    out[2] = w * u2 + c * e2 + s * f2
    return j + 1


@physics
def heatbath_continuous(phi, m, beta, vs, j, out, n_h):
    """out <- the visible part (k,) of a unit sigma of R^(k + n_h) drawn from
    P(sigma) ~ exp(beta m sigma.phi) (von Mises-Fisher; phi (k,) visible; n_h hidden components,
    module docstring; n_h = 0: the full unit spin; n = 3 with n_h = 0 by :func:`heatbath_3`).
    Returns the next unused draw index."""
    n = phi.shape[0]
    if n == 3 and n_h == 0:
        return heatbath_3(phi, m, beta, vs, j, out)
    pn = math.sqrt(dot(phi, phi))
    w, j = vmf_w(beta * m * pn, n + n_h, vs, j)
    # a uniform direction orthogonal to mu = phi/|phi|
    j = gauss_vector(vs, j, out)
    c2, j = chi2_draw(n_h, vs, j)
    if pn > 0.0:
        proj = dot(out, phi) / (pn * pn)
        nrm = 0.0
        for c in range(n):
            out[c] -= proj * phi[c]
            nrm += out[c] * out[c]
        nrm = math.sqrt(nrm + c2)
        sw2 = 1.0 - w * w
        if sw2 < 0.0:   # (not max(): Numba's CUDA target mis-types the varargs max)
            sw2 = 0.0
        vmf_combine(w, math.sqrt(sw2), phi, pn, out, nrm, out)
    else:
        inv = 1.0 / math.sqrt(dot(out, out) + c2)
        for c in range(n):
            out[c] *= inv
    return j


@physics
def overrelax(sig, phi, out):
    """Microcanonical reflection of sig about phi: out = 2 (sig.mu) mu - sig (dE = 0); the same
    for a visible part sig (hidden norm unchanged, module docstring)."""
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
