"""Counter-based random numbers and the named slot layout (SPEC section 2).

Every draw is keyed by (seed, replica, sweep, slot): ``key = replica_key(seed, replica)``; a visit
gets ``vs = visit_seed(key, sweep, slot, n_slots)`` and its j-th uniform is ``uniform(vs, j)``, a
SplitMix64 hash of the visit seed. Chains are therefore reproducible, independent of chunking and
of how many replicas run, and identical on every backend.

Slot layout of one Monte Carlo sweep (``n_slots(N) = 2 N + 2`` slots per sweep):

====================  =====================  ==========================================
slot                  function               use
====================  =====================  ==========================================
``0 .. N-1``          ``site_slot(k)``       the visit of site k (local moves)
``N``                 ``exchange_slot(N)``   replica exchange after the sweep
``N + 1``             ``measure_slot(N)``    the measurement after the sweep (hidden parts
                                             of a reduced state, :mod:`.hidden`)
``N + 2 .. 2N + 1``   ``cluster_slot(N, c)`` Wolff cluster c (0-based, at most N per sweep)
====================  =====================  ==========================================

Annealing (``quench.anneal_batch``) uses one slot per site only: ``n_slots_sites(N) = N``.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import physics, physics_call

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
_M32 = np.uint64(0xFFFFFFFF)
_TWO_M20 = 9.5367431640625e-07  # 2^-20
_TWO_M31 = 4.656612873077393e-10  # 2^-31
_TWO_M53 = 1.1102230246251565e-16  # 2^-53
TWO_PI = 2.0 * math.pi

ACCEPT_DRAW = 1 << 20   # index of the Metropolis acceptance uniform, apart from proposal draws


# ----------------------------------------------------------------------------- slot layout
@physics
def n_slots(n_sites):
    """Slots per Monte Carlo sweep: sites, exchange, one reserved, Wolff clusters."""
    return 2 * n_sites + 2


@physics
def site_slot(k):
    return k


@physics
def exchange_slot(n_sites):
    return n_sites


@physics
def measure_slot(n_sites):
    """Slot of the measurement after a sweep (draws of the hidden parts of a reduced state)."""
    return n_sites + 1


@physics
def cluster_slot(n_sites, c):
    """Slot of the c-th (0-based) Wolff cluster of a sweep, c < n_sites."""
    return n_sites + 2 + c


@physics
def n_slots_sites(n_sites):
    """Slots per annealing step: one per site."""
    return n_sites


# ----------------------------------------------------------------------------- hashing
@physics
def mix64(z):
    """SplitMix64 finaliser (uint64 -> uint64)."""
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


@physics
def replica_key(seed, replica):
    return mix64(mix64(np.uint64(seed) + GOLDEN) + np.uint64(replica) * _C3)


@physics
def visit_seed(key, sweep, slot, n_slots):
    ctr = np.uint64(sweep) * np.uint64(n_slots) + np.uint64(slot)
    return mix64(key + mix64(ctr + _C3))


@physics
def site_visit(key, sweep, k, n_sites):
    """Visit seed of site k in a Monte Carlo sweep (the ``site_slot`` of the ``n_slots`` layout)."""
    return visit_seed(key, sweep, site_slot(k), n_slots(n_sites))


@physics
def sub_seed(vs, i):
    """Independent stream i of a visit (e.g. one per site of a measurement), so that the draws of
    stream i do not depend on how many draws the streams before it used."""
    return mix64(vs ^ mix64(np.uint64(i) * GOLDEN + _C1))


@physics
def _draw(vs, j):
    return mix64(vs + np.uint64(j + 1) * GOLDEN)


# ----------------------------------------------------------------------------- uniforms
@physics
def uniform(vs, j):
    """j-th uniform of a visit, in (0, 1) (never 0 or 1), 53-bit resolution."""
    return (np.float64(_draw(vs, j) >> _S11) + 0.5) * _TWO_M53


@physics
def uniform_pair32(vs, j):
    """Two uniforms in (-1, 1) with 32-bit resolution from the j-th draw (one hash)."""
    x = _draw(vs, j)
    hi = np.float64(x >> _S32)
    lo = np.float64(x & _M32)
    return (hi + 0.5) * _TWO_M31 - 1.0, (lo + 0.5) * _TWO_M31 - 1.0


@physics
def uniform_triple21(vs, j):
    """Three uniforms in (-1, 1) with 21-bit resolution from the j-th draw (one hash)."""
    x = _draw(vs, j)
    u0 = np.float64(x & _M21)
    u1 = np.float64((x >> _S21) & _M21)
    u2 = np.float64((x >> _S42) & _M21)
    return (u0 + 0.5) * _TWO_M20 - 1.0, (u1 + 0.5) * _TWO_M20 - 1.0, (u2 + 0.5) * _TWO_M20 - 1.0


# ----------------------------------------------------------------------------- other laws
@physics_call
def gauss2(vs, j):
    """Two independent standard normals from uniforms j, j + 1 (Box-Muller; the scalar draws of
    :func:`gamma_draw`; vectors use the faster :func:`gauss`)."""
    u1 = uniform(vs, j)
    u2 = uniform(vs, j + 1)
    r = math.sqrt(-2.0 * math.log(u1))
    return r * math.cos(TWO_PI * u2), r * math.sin(TWO_PI * u2)


# ziggurat for the normal law (Marsaglia & Tsang 2000, J. Stat. Softw. 5(8)): 128 layers of area
# ZIG_V under exp(-x^2/2); layer 0 is the base strip [0, ZIG_R] x [0, f(ZIG_R)] plus the tail
# beyond ZIG_R, of width ZIG_X[0] = ZIG_V / f(ZIG_R); ZIG_X decreasing to ZIG_X[128] = 0
ZIG_R = 3.442619855899
ZIG_V = 9.91256303526217e-3


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros(129)
    x[0] = ZIG_V / math.exp(-0.5 * ZIG_R * ZIG_R)
    x[1] = ZIG_R
    for i in range(1, 127):
        x[i + 1] = math.sqrt(-2.0 * math.log(ZIG_V / x[i] + math.exp(-0.5 * x[i] * x[i])))
    return x, np.exp(-0.5 * x * x)


ZIG_X, ZIG_F = _ziggurat_tables()
_M7 = np.uint64(127)
_S7 = np.uint64(7)
_ONE = np.uint64(1)


@physics
def gauss(vs, j):
    """A standard normal from draw j of the visit (ziggurat: layer from bits 0-6, sign from bit
    7, abscissa from the top 53 bits of one hash; accepted at once ~98.8 % of the time). The rare
    wedge tests, tail draws and retries use the visit's independent stream ``sub_seed(vs, j)``, so
    normal j never depends on how many draws normal j - 1 needed (CUDA threads draw them apart)."""
    z = _draw(vs, j)
    ws = vs
    t = 0
    while True:
        i = np.int64(z & _M7)
        neg = (z >> _S7) & _ONE
        x = np.float64(z >> _S11) * _TWO_M53 * ZIG_X[i]
        if x < ZIG_X[i + 1]:
            break
        if t == 0:
            ws = sub_seed(vs, j)
        if i == 0:          # the tail beyond ZIG_R (Marsaglia 1964)
            while True:
                a = -math.log(uniform(ws, t)) / ZIG_R
                b = -math.log(uniform(ws, t + 1))
                t += 2
                if b + b >= a * a:
                    break
            x = ZIG_R + a
            break
        y = ZIG_F[i] + uniform(ws, t) * (ZIG_F[i + 1] - ZIG_F[i])
        t += 1
        if y < math.exp(-0.5 * x * x):
            break
        z = _draw(ws, t)
        t += 1
    return -x if neg == _ONE else x


@physics
def gauss_vector(vs, j, out):
    """Fill out (n,) with standard normals, component c from draw j + c (:func:`gauss`);
    returns the next unused draw index j + n."""
    n = out.shape[0]
    for c in range(n):
        out[c] = gauss(vs, j + c)
    return j + n


@physics_call
def gamma_draw(a, vs, j):
    """Gamma(a, 1) by Marsaglia-Tsang (a >= 1; a < 1 boosted by U^(1/a)). Returns (x, next j)."""
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


@physics_call
def chi2_draw(nu, vs, j):
    """Chi-square with nu > 0 degrees of freedom (2 Gamma(nu/2, 1)); 0 for nu <= 0 without a draw.
    Returns (x, next j)."""
    if nu <= 0:
        return 0.0, j
    x, j = gamma_draw(0.5 * nu, vs, j)
    return 2.0 * x, j
