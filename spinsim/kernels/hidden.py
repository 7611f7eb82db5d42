"""The measurement of a reduced state in the full n-dimensional meaning (:mod:`spinsim.reduced_space`).

A reduced chain (``Sites.n_hidden > 0``) holds the visible coordinates ``x_i = U_i^T S_i`` (k,)
of every site, ``U_i = [Q, F_i]``. The energy and ``m.u`` are exact in them (tracked by the
sweep); the magnetisation ``m = (1/N_free) sum_i S_i`` of R^n also needs the hidden parts, which
given the x_i are independent and isotropic with norms ``rho_i = sqrt(m_i^2 - |x_i|^2)``. They
are drawn here, exactly in law, from the slot ``rng.measure_slot`` (one independent stream per
free site, :func:`.rng.sub_seed`):

* the hidden space of site i is ``(E cap F_i^perp) + Z`` with E (n, D_E) the span of every site's
  extra directions and Z the complement of [Q, E] (n_c dimensions, the same for every site). A
  uniform hidden direction is ``(g, z) / sqrt(|g|^2 + |z|^2)`` with g a standard Gaussian of
  E cap F_i^perp (D_E Gaussians in E coordinates with the columns of C_i = E^T F_i removed) and
  ``|z|^2 ~ chi2_{n_c}``.
* the Z parts of the sites are independent isotropic vectors of one space, so their sum needs
  only its norm: adding a vector of norm a to a sum of norm s gives
  ``|s + a e|^2 = s^2 + a^2 + 2 a s t`` with t the coordinate of a uniform direction of Z
  (density ~ (1 - t^2)^((n_c - 3)/2): :func:`.moves.vmf_w` at zero concentration).

So ``|m|^2 = (|y|^2 + s^2) / N_free^2`` with y (d + D_E) the sum in the basis [Q, E]: O(N D_E)
work and draws per measurement instead of O(N n). ``msum`` accumulates the exact conditional mean
``(1/N_free) sum_i [x_iQ; C_i x_iF]`` in the basis [Q, E] (lifted to R^n by the caller).
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ._jit import physics, physics_call
from .moves import dot, vmf_w
from .rng import chi2_draw, gauss_vector, measure_slot, n_slots, sub_seed, uniform, visit_seed
from .site import record

__all__ = ["Hidden", "from_prepared", "measure", "record_reduced", "uniform_cosine"]

Hidden = namedtuple("Hidden", "d n_common C")
Hidden.__doc__ = """Measurement data of a reduced state: ``d`` (int64) the coupling span's dimension,
``n_common`` (int64) the dimension of the complement of [Q, E], ``C`` (N, D_E, k_x) each site's extra
frame vectors in E coordinates. A full-space chain carries a (1, 1, 1) placeholder."""


def from_prepared(k: dict, n_comp: int) -> tuple[Hidden, int]:
    """The Hidden tuple of a prepared dictionary and the width of the ``msum`` accumulator
    (n_comp for a full-space chain, d + D_E for a reduced one)."""
    hd = k.get("hidden")
    if not k.get("n_hidden", 0) or hd is None:
        return Hidden(np.int64(0), np.int64(0), np.zeros((1, 1, 1))), int(n_comp)
    C = np.ascontiguousarray(hd["C"], dtype=np.float64)
    return Hidden(np.int64(hd["d"]), np.int64(hd["n_common"]), C), int(hd["d"]) + int(C.shape[1])


@physics
def uniform_cosine(n, vs, j):
    """Coordinate t of a uniform unit vector of R^n along a fixed axis (n >= 1; +-1 for n = 1).
    Returns (t, next j)."""
    if n == 1:
        return (1.0 if uniform(vs, j) < 0.5 else -1.0), j + 1
    return vmf_w(0.0, n, vs, j)


@physics_call
def record_reduced(ch, r, st, hid, key, s, out_E, out_mabs, out_mu, out_msum, t, scr):
    """Measure reduced replica r after sweep s into column t (module docstring): E and m.u as
    tracked, |m| with the hidden parts drawn, msum += the conditional mean in [Q, E].
    scr: (>= d + 2 D_E,) scratch."""
    Sr = ch.S[r]
    N = Sr.shape[0]
    kk = Sr.shape[1]
    d = hid.d
    DE = hid.C.shape[1]
    kx = kk - d
    nf = st.free.shape[0]
    y = scr[:d + DE]
    g = scr[d + DE:d + 2 * DE]
    for c in range(d + DE):
        y[c] = 0.0
    for q in range(nf):
        i = st.free[q]
        for c in range(d):
            y[c] += Sr[i, c]
        for a in range(kx):
            xa = Sr[i, d + a]
            for e in range(DE):
                y[d + e] += hid.C[i, e, a] * xa
    inv_nf = 1.0 / nf
    for c in range(d + DE):
        out_msum[r, c] += y[c] * inv_nf
    vs = visit_seed(key, s, measure_slot(N), n_slots(N))
    s2 = 0.0
    for q in range(nf):
        i = st.free[q]
        m = st.lengths[i]
        rho2 = m * m - dot(Sr[i], Sr[i])
        if rho2 <= 0.0:
            continue
        vi = sub_seed(vs, q)
        j = gauss_vector(vi, 0, g)
        for a in range(kx):
            pr = 0.0
            for e in range(DE):
                pr += hid.C[i, e, a] * g[e]
            for e in range(DE):
                g[e] -= pr * hid.C[i, e, a]
        c2, j = chi2_draw(hid.n_common, vi, j)
        nrm2 = dot(g, g) + c2
        if nrm2 <= 0.0:
            continue
        sc = math.sqrt(rho2 / nrm2)
        for e in range(DE):
            y[d + e] += sc * g[e]
        a = sc * math.sqrt(c2)
        if a > 0.0:
            tc, j = uniform_cosine(hid.n_common, vi, j)
            s2 = s2 + a * a + 2.0 * a * math.sqrt(s2) * tc
            if s2 < 0.0:
                s2 = 0.0
    out_E[r, t] = ch.E[r]
    out_mu[r, t] = ch.mu[r]
    out_mabs[r, t] = math.sqrt(dot(y, y) + s2) * inv_nf


@physics
def measure(ch, r, st, hid, key, s, out_E, out_mabs, out_mu, out_msum, t, scr):
    """Measure replica r after sweep s into column t: :func:`.site.record` for a full-space
    chain, :func:`record_reduced` for a reduced one (``st.n_hidden > 0``)."""
    if st.n_hidden > 0:
        record_reduced(ch, r, st, hid, key, s, out_E, out_mabs, out_mu, out_msum, t, scr)
    else:
        record(ch, r, out_E, out_mabs, out_mu, out_msum, t)
