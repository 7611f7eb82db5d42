"""The physics of one site update, written once and compiled per target.

``build(jit)`` returns a namespace of functions compiled with ``jit`` (``numba.njit`` for the
CPU backend, ``numba.cuda.jit(device=True)`` for the CUDA backend), so that both backends run
the *same* arithmetic and draw the *same* random numbers.

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1.
Local field ``phi_k = sum_j W_kj M S_j + sum_i W_ik M^T S_i + h_k``; a move costs exactly
``dE = -(S_k' - S_k).phi_k``. Spins carry lengths: ``S_k = m_k sigma_k``.

Neighbour lists (from :meth:`Hamiltonian.neighbours`): for site k, entries ``ptr[k]:ptr[k+1]``
give neighbours ``idx[e]`` with ``w_out[e] = W_kj`` and ``w_in[e] = W_jk``.
Coupling codes: 0 identity (``M = J 1``), 1 dense (``Mmat``), 2 low rank (``M = A B^T``).

Random numbers: counter-based, keyed by (seed, replica, sweep, site) (SPEC section 2).
``key = replica_key(seed, replica)``; a site visit gets ``vs = visit_seed(key, sweep, slot,
n_slots)`` (slot = site, or n_sites + k for non-site draws such as replica exchange) and its
j-th uniform is ``uniform(vs, j)``: a SplitMix64 stream started at the visit seed.
"""
from __future__ import annotations

import inspect
import math
from types import SimpleNamespace
from typing import Callable

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_C3 = np.uint64(0xD6E8FEB86659FD93)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_S21 = np.uint64(21)
_S42 = np.uint64(42)
_M21 = np.uint64(0x1FFFFF)
_TWO_M20 = 9.5367431640625e-07  # 2^-20
_M32 = np.uint64(0xFFFFFFFF)
_TWO_M31 = 4.656612873077393e-10  # 2^-31
_TWO_M53 = 1.1102230246251565e-16  # 2^-53
TWO_PI = 2.0 * math.pi

# algorithm codes shared with the orchestration layer
ALG_METROPOLIS = 0
ALG_HEATBATH = 1
ALG_OVERRELAX = 2   # one microcanonical reflection sweep (combine with heat bath)

# spin-kind codes
KIND_CONTINUOUS = 0
KIND_DISCRETE = 1


# ------------------------------------------------------------------ plain-Python physics

# ------------------------------------------------------------------ RNG
def mix64(z):
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)

def replica_key(seed, replica):
    return mix64(mix64(np.uint64(seed) + GOLDEN) + np.uint64(replica) * _C3)

def visit_seed(key, sweep, slot, n_slots):
    ctr = np.uint64(sweep) * np.uint64(n_slots) + np.uint64(slot)
    return mix64(key + mix64(ctr + _C3))

def uniform_pair32(vs, j):
    """Two uniforms in (-1, 1) with 32-bit resolution from the j-th draw of a visit (one hash
    for two numbers: used where 2^-32 resolution is plenty, e.g. Metropolis proposals)."""
    x = mix64(vs + np.uint64(j + 1) * GOLDEN)
    hi = np.float64(x >> _S32)
    lo = np.float64(x & _M32)
    return (hi + 0.5) * _TWO_M31 - 1.0, (lo + 0.5) * _TWO_M31 - 1.0


def uniform_triple21(vs, j):
    """Three uniforms in (-1, 1) with 21-bit resolution from one hash (Metropolis proposals)."""
    x = mix64(vs + np.uint64(j + 1) * GOLDEN)
    u0 = np.float64(x & _M21)
    u1 = np.float64((x >> _S21) & _M21)
    u2 = np.float64((x >> _S42) & _M21)
    return (u0 + 0.5) * _TWO_M20 - 1.0, (u1 + 0.5) * _TWO_M20 - 1.0, (u2 + 0.5) * _TWO_M20 - 1.0


def uniform(vs, j):
    """j-th uniform of a visit, in (0, 1) (never 0 or 1)."""
    x = mix64(vs + np.uint64(j + 1) * GOLDEN)
    return (np.float64(x >> _S11) + 0.5) * _TWO_M53

def gauss2(vs, j):
    """Two independent standard normals from uniforms j, j+1 (Box-Muller)."""
    u1 = uniform(vs, j)
    u2 = uniform(vs, j + 1)
    r = math.sqrt(-2.0 * math.log(u1))
    return r * math.cos(TWO_PI * u2), r * math.sin(TWO_PI * u2)

def gauss_vector(vs, j, out):
    """Fill out (n,) with standard normals; returns the next unused draw index."""
    n = out.shape[0]
    c = 0
    while c < n:
        g0, g1 = gauss2(vs, j)
        j += 2
        out[c] = g0
        if c + 1 < n:
            out[c + 1] = g1
        c += 2
    return j

def gamma_draw(a, vs, j):
    """Gamma(a, 1) by Marsaglia-Tsang (a >= 1; a < 1 boosted). Returns (x, next j)."""
    boost = 1.0
    if a < 1.0:
        boost = uniform(vs, j) ** (1.0 / a)
        j += 1
        a = a + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        g, _ = gauss2(vs, j)
        j += 2
        v = 1.0 + c * g
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform(vs, j)
        j += 1
        if math.log(u) < 0.5 * g * g + d - d * v + d * math.log(v):
            return d * v * boost, j

# ------------------------------------------------------------------ fields and energies
def field_iso3(S, k, ptr, idx, w_out, w_in, J, h, phi):
    """Isotropic coupling, n_comp = 3 (classic Heisenberg lattices)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    for e in range(ptr[k], ptr[k + 1]):
        j = idx[e]
        w = w_out[e] + w_in[e]
        a0 += w * S[j, 0]
        a1 += w * S[j, 1]
        a2 += w * S[j, 2]
    phi[0] = J * a0 + h[k, 0]
    phi[1] = J * a1 + h[k, 1]
    phi[2] = J * a2 + h[k, 2]


def field_iso1(S, k, ptr, idx, w_out, w_in, J, h, phi):
    """Isotropic coupling, n_comp = 1 (Ising)."""
    a0 = 0.0
    for e in range(ptr[k], ptr[k + 1]):
        a0 += (w_out[e] + w_in[e]) * S[idx[e], 0]
    phi[0] = J * a0 + h[k, 0]


def field_iso_small(S, k, ptr, idx, w_out, w_in, J, h, phi):
    """Isotropic coupling, n_comp <= 4 (lattices): accumulate in registers."""
    n = S.shape[1]
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for e in range(ptr[k], ptr[k + 1]):
        j = idx[e]
        w = w_out[e] + w_in[e]
        a0 += w * S[j, 0]
        if n > 1:
            a1 += w * S[j, 1]
        if n > 2:
            a2 += w * S[j, 2]
        if n > 3:
            a3 += w * S[j, 3]
    phi[0] = J * a0 + h[k, 0]
    if n > 1:
        phi[1] = J * a1 + h[k, 1]
    if n > 2:
        phi[2] = J * a2 + h[k, 2]
    if n > 3:
        phi[3] = J * a3 + h[k, 3]


def neighbour_sums(S, k, ptr, idx, w_out, w_in, a, b):
    """a <- sum_j W_kj S_j (k as query), b <- sum_j W_jk S_j (k as key)."""
    n = S.shape[1]
    for c in range(n):
        a[c] = 0.0
        b[c] = 0.0
    for e in range(ptr[k], ptr[k + 1]):
        j = idx[e]
        wo = w_out[e]
        wi = w_in[e]
        for c in range(n):
            s = S[j, c]
            a[c] += wo * s
            b[c] += wi * s


def field_general(S, k, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h, a, b, ra, rb, phi):
    """Any coupling: identity (code 0), dense M (1), low rank M = A B^T (2)."""
    n = S.shape[1]
    neighbour_sums(S, k, ptr, idx, w_out, w_in, a, b)
    if code == 0:
        for c in range(n):
            phi[c] = J * (a[c] + b[c]) + h[k, c]
    elif code == 1:
        for c in range(n):
            acc = h[k, c]
            for d in range(n):
                acc += Mmat[c, d] * a[d] + Mmat[d, c] * b[d]
            phi[c] = acc
    else:
        r = A.shape[1]
        for q in range(r):
            ra[q] = 0.0
            rb[q] = 0.0
        for d in range(n):
            ad = a[d]
            bd = b[d]
            for q in range(r):
                ra[q] += B[d, q] * ad
                rb[q] += A[d, q] * bd
        for c in range(n):
            acc = h[k, c]
            for q in range(r):
                acc += A[c, q] * ra[q] + B[c, q] * rb[q]
            phi[c] = acc


def local_field(S, k, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h, a, b, ra, rb, phi):
    """phi (n,) <- field on site k of configuration S (n_sites, n):
    phi_k = M sum_j W_kj S_j + M^T sum_j W_jk S_j + h_k.
    a, b: (n,) and ra, rb: (rank,) workspaces."""
    n = S.shape[1]
    if code == 0 and n == 3:
        field_iso3(S, k, ptr, idx, w_out, w_in, J, h, phi)
    elif code == 0 and n == 1:
        field_iso1(S, k, ptr, idx, w_out, w_in, J, h, phi)
    elif code == 0 and n <= 4:
        field_iso_small(S, k, ptr, idx, w_out, w_in, J, h, phi)
    else:
        field_general(S, k, ptr, idx, w_out, w_in, code, J, Mmat, A, B, h, a, b, ra, rb, phi)


def site_energy_out(S, i, ptr, idx, w_out, code, J, Mmat, A, B, h, ra, rb):
    """-sum_j W_ij S_i^T M S_j - h_i.S_i: site i's share of H (each ordered pair once)."""
    n = S.shape[1]
    e_tot = 0.0
    for c in range(n):
        e_tot -= h[i, c] * S[i, c]
    if code == 2:
        r = A.shape[1]
        for q in range(r):
            acc = 0.0
            for c in range(n):
                acc += A[c, q] * S[i, c]
            ra[q] = acc
    for e in range(ptr[i], ptr[i + 1]):
        wo = w_out[e]
        if wo == 0.0:
            continue
        j = idx[e]
        pair = 0.0
        if code == 0:
            for c in range(n):
                pair += S[i, c] * S[j, c]
            pair *= J
        elif code == 1:
            for c in range(n):
                acc = 0.0
                for d in range(n):
                    acc += Mmat[c, d] * S[j, d]
                pair += S[i, c] * acc
        else:
            r = A.shape[1]
            for q in range(r):
                acc = 0.0
                for c in range(n):
                    acc += B[c, q] * S[j, c]
                pair += ra[q] * acc
        e_tot -= wo * pair
    return e_tot

def total_energy(S, ptr, idx, w_out, code, J, Mmat, A, B, h, ra, rb, P, Q):
    """H(S) from scratch. For a low-rank coupling every spin is projected once
    (P_j = B^T S_j, Q_i = A^T S_i; P, Q: (n_sites, rank) workspaces), so the cost is
    O(n_sites n rank + n_bonds rank) instead of O(n_bonds n rank)."""
    N = S.shape[0]
    if code != 2:
        e = 0.0
        for i in range(N):
            e += site_energy_out(S, i, ptr, idx, w_out, code, J, Mmat, A, B, h, ra, rb)
        return e
    n = S.shape[1]
    r = A.shape[1]
    e = 0.0
    for i in range(N):
        for q in range(r):
            P[i, q] = 0.0
            Q[i, q] = 0.0
        for c in range(n):
            s = S[i, c]
            e -= h[i, c] * s
            for q in range(r):
                P[i, q] += B[c, q] * s
                Q[i, q] += A[c, q] * s
    for i in range(N):
        for ee in range(ptr[i], ptr[i + 1]):
            wo = w_out[ee]
            if wo == 0.0:
                continue
            j = idx[ee]
            pair = 0.0
            for q in range(r):
                pair += Q[i, q] * P[j, q]
            e -= wo * pair
    return e


def dot(x, y):
    acc = 0.0
    for c in range(x.shape[0]):
        acc += x[c] * y[c]
    return acc

# ------------------------------------------------------------------ continuous moves
def propose_continuous(sig, delta, vs, j, out):
    """Isotropic Metropolis proposal: out = normalize(sig + delta * eps), eps uniform in the
    unit ball (n <= 4, by rejection from the cube) or Gaussian (n > 4). Symmetric:
    q(s'|s) = f(s.s')."""
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
        for c in range(n):
            out[c] /= nrm
    return j

def vmf_w(kappa, n, vs, j):
    """Component w = sigma . mu of a von Mises-Fisher draw on S^{n-1} with concentration
    kappa >= 0 (density of w ~ exp(kappa w) (1 - w^2)^{(n-3)/2}). Wood (1994); n = 3 by
    exact inversion. Returns (w, next j)."""
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

def heatbath_continuous(phi, m, beta, vs, j, out):
    """out <- unit sigma drawn from P(sigma) ~ exp(beta m sigma.phi) (von Mises-Fisher)."""
    n = phi.shape[0]
    pn = math.sqrt(dot(phi, phi))
    kappa = beta * m * pn
    w, j = vmf_w(kappa, n, vs, j)
    # a uniform direction orthogonal to mu = phi/|phi|
    j = gauss_vector(vs, j, out)
    if pn > 0.0:
        proj = 0.0
        for c in range(n):
            proj += out[c] * phi[c]
        proj /= pn
        nrm = 0.0
        for c in range(n):
            out[c] -= proj * phi[c] / pn
            nrm += out[c] * out[c]
        nrm = math.sqrt(nrm)
        sw2 = 1.0 - w * w
        if sw2 < 0.0:   # (not max(): Numba's built-in CUDA target mis-types the varargs max)
            sw2 = 0.0
        sw = math.sqrt(sw2)
        for c in range(n):
            out[c] = w * phi[c] / pn + sw * out[c] / nrm
    else:
        nrm = math.sqrt(dot(out, out))
        for c in range(n):
            out[c] /= nrm
    return j

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

# ------------------------------------------------------------------ discrete moves
def heatbath_discrete(V, phi, m, beta, vs, j, logw):
    """Index a drawn from P(a) ~ exp(beta m V_a.phi). logw: (K,) workspace."""
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


_PHYSICS = ('field_iso3', 'field_iso1', 'field_iso_small', 'neighbour_sums', 'field_general', 'mix64', 'replica_key', 'visit_seed', 'uniform_pair32', 'uniform_triple21', 'uniform', 'gauss2', 'gauss_vector', 'gamma_draw', 'local_field', 'site_energy_out', 'total_energy', 'dot', 'propose_continuous', 'vmf_w', 'heatbath_continuous', 'overrelax', 'heatbath_discrete',)


# functions with O(n r) or O(n deg) work: call overhead is negligible, inlining them into the
# sweep loop only bloats it (and slowed the lattice fast path 5x in measurements)
_HEAVY = ("field_general", "neighbour_sums", "site_energy_out", "total_energy", "heatbath_discrete")


def build(jit: Callable, jit_heavy: Callable | None = None) -> SimpleNamespace:
    """Compile the site-update physics with ``jit`` and return it as a namespace.

    The functions above are plain Python; here each is re-created in a namespace in which its
    callees are the ``jit``-compiled versions for the same target, so that ``njit`` (CPU,
    inlined at the Numba IR level with ``inline="always"``) and ``cuda.jit(device=True)`` compile
    the same source. ``jit_heavy`` (default: ``jit``) compiles the functions in ``_HEAVY``,
    e.g. without ``inline="always"``.
    """
    ns: dict = {"np": np, "math": math}
    ns.update({k: v for k, v in globals().items() if k.isupper() or k.startswith("_C") or k.startswith("_S")
               or k.startswith("_TWO_M") or k.startswith("_M")})
    for name in _PHYSICS:
        # exec the source (rather than re-binding the code object): Numba inlines
        # ``inline="always"`` functions only when it can rebuild them from a plain definition
        exec(compile(inspect.getsource(globals()[name]), __file__, "exec"), ns)
        ns[name] = jit_heavy(ns[name]) if (jit_heavy is not None and name in _HEAVY) else jit(ns[name])
    return SimpleNamespace(**{name: ns[name] for name in _PHYSICS})
