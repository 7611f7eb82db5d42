"""Kaufman's exact partition function of the periodic L x M square-lattice Ising model.

``H = -J sum_<ij> s_i s_j`` over the 2 L M nearest-neighbour bonds of the torus, J > 0, k_B = 1
(B. Kaufman, Phys. Rev. 76, 1232 (1949)); finite size, no field. Derivatives with respect to
K = beta J are exact (forward mode, :class:`_Jet`), not finite differences.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["kaufman_log_z", "kaufman_thermo"]


class _Jet:
    """Value and first two derivatives with respect to one variable (forward mode)."""

    __slots__ = ("v", "d", "dd")
    __array_ufunc__ = None          # ndarray (op) _Jet defers to the _Jet methods

    def __init__(self, v: Any, d: Any = 0.0, dd: Any = 0.0) -> None:
        self.v, self.d, self.dd = np.asarray(v, float), np.asarray(d, float), np.asarray(dd, float)

    def __add__(self, o: Any) -> "_Jet":
        if isinstance(o, _Jet):
            return _Jet(self.v + o.v, self.d + o.d, self.dd + o.dd)
        return _Jet(self.v + o, self.d, self.dd)

    __radd__ = __add__

    def __neg__(self) -> "_Jet":
        return _Jet(-self.v, -self.d, -self.dd)

    def __sub__(self, o: Any) -> "_Jet":
        return self + (-o)

    def __rsub__(self, o: Any) -> "_Jet":
        return (-self) + o

    def __mul__(self, o: Any) -> "_Jet":
        if isinstance(o, _Jet):
            return _Jet(self.v * o.v, self.d * o.v + self.v * o.d, self.dd * o.v + 2 * self.d * o.d + self.v * o.dd)
        return _Jet(self.v * o, self.d * o, self.dd * o)

    __rmul__ = __mul__

    def f(self, f0: Any, f1: Any, f2: Any) -> "_Jet":
        """Chain rule for g(self) with g = f0, g' = f1, g'' = f2 at self.v."""
        return _Jet(f0, f1 * self.d, f2 * self.d ** 2 + f1 * self.dd)

    def sum(self, axis: int) -> "_Jet":
        return _Jet(self.v.sum(axis), self.d.sum(axis), self.dd.sum(axis))

    def __getitem__(self, k: Any) -> "_Jet":
        return _Jet(self.v[k], self.d[k], self.dd[k])


def _jexp(x: _Jet) -> _Jet:
    e = np.exp(x.v)
    return x.f(e, e, e)


def _jlog(x: _Jet) -> _Jet:
    return x.f(np.log(x.v), 1.0 / x.v, -1.0 / x.v ** 2)


def _jlog2cosh(x: _Jet) -> _Jet:
    a = np.abs(x.v)
    return x.f(a + np.log1p(np.exp(-2 * a)), np.tanh(x.v), 1.0 / np.cosh(np.minimum(a, 350.0)) ** 2)


def _jlog2sinh(x: _Jet) -> _Jet:
    """log(2 sinh x) for x > 0."""
    e = np.exp(-2 * x.v)
    return x.f(x.v + np.log1p(-e), (1 + e) / (1 - e), -4 * e / (1 - e) ** 2)


def kaufman_log_z(L: int, M: int, beta: Any, J: float = 1.0, _jet: bool = False) -> Any:
    """Kaufman's exact log Z of the L x M periodic square-lattice Ising model (no field).

    ``H = -J sum_<ij> s_i s_j`` over the 2 L M nearest-neighbour bonds of the torus, J > 0,
    k_B = 1 (B. Kaufman, Phys. Rev. 76, 1232 (1949)). With K = beta J:
    ``Z = 1/2 (2 sinh 2K)^{LM/2} sum_{i=1}^{4} Z_i``,
    ``Z_{1,2} = prod_{r=0}^{L-1} 2 {cosh, sinh}(M gamma_{2r+1} / 2)``,
    ``Z_{3,4} = prod_{r=0}^{L-1} 2 {cosh, sinh}(M gamma_{2r} / 2)``,
    ``cosh gamma_k = cosh 2K coth 2K - cos(pi k / L)`` (gamma_k > 0, k >= 1) and
    ``gamma_0 = 2K + log tanh K`` (negative above T_c). Evaluated in log space (no overflow at
    any size or temperature). A side of length 2 is a torus with two bonds between the same
    pair (spinsim's ``lattice`` stores one: double J along that axis to compare).
    """
    for name, s in (("L", L), ("M", M)):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 2:
            raise ValueError(f"Kaufman's torus needs integer sides >= 2; got {name}={s!r}")
    if not (np.isfinite(J) and J > 0):
        raise ValueError(f"kaufman_log_z needs a ferromagnetic coupling J > 0, got J={J!r}")
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    if np.any(~np.isfinite(beta)) or np.any(beta <= 0):
        raise ValueError("kaufman_log_z needs finite beta > 0")
    Kv = beta * J
    K = _Jet(Kv, np.ones_like(Kv), np.zeros_like(Kv))
    K2 = 2.0 * K
    sh = K2.f(np.sinh(K2.v), np.cosh(K2.v), np.sinh(K2.v))
    ch = K2.f(np.cosh(K2.v), np.sinh(K2.v), np.cosh(K2.v))
    c = ch * ch * sh.f(1.0 / sh.v, -1.0 / sh.v ** 2, 2.0 / sh.v ** 3)      # cosh 2K coth 2K
    k = np.arange(1, 2 * L)
    y = _Jet(c.v[:, None] - np.cos(np.pi * k / L)[None, :], c.d[:, None] * np.ones(k.size),
             c.dd[:, None] * np.ones(k.size))
    s = np.sqrt(y.v ** 2 - 1.0)
    gam = y.f(np.arccosh(y.v), 1.0 / s, -y.v / s ** 3)                   # (n_T, 2L - 1): k = 1..
    tK = K.v
    g0 = 2.0 * K + K.f(np.log(np.tanh(tK)), 2.0 / np.sinh(2 * tK), -4 * np.cosh(2 * tK) / np.sinh(2 * tK) ** 2)
    half = 0.5 * M
    odd = gam[:, 0::2] * half                     # k = 1, 3, ..., 2L-1
    even = gam[:, 1::2] * half                    # k = 2, 4, ..., 2L-2
    x0 = g0 * half
    L1 = _jlog2cosh(odd).sum(1)
    L2 = _jlog2sinh(odd).sum(1)
    L3 = _jlog2cosh(even).sum(1) + _jlog2cosh(x0)
    L4r = _jlog2sinh(even).sum(1)
    sg = np.where(x0.v >= 0, 1.0, -1.0)
    ax0 = x0 * sg
    lmax = np.maximum.reduce([L1.v, L2.v, L3.v, L4r.v + ax0.v])
    tot = (_jexp(L1 - lmax) + _jexp(L2 - lmax) + _jexp(L3 - lmax)
           + (_jexp(L4r + ax0 - lmax) * (1.0 - _jexp(-2.0 * ax0))) * sg)
    logz = -np.log(2.0) + 0.5 * L * M * _jlog(2.0 * sh) + lmax + _jlog(tot)
    return logz if _jet else logz.v


def kaufman_thermo(L: int, M: int, T: Any, J: float = 1.0) -> dict[str, np.ndarray]:
    """Exact finite-size thermodynamics of the L x M periodic Ising torus from Kaufman's Z.

    Returns ``log_Z``, ``energy`` (<E>/N, N = L M) and ``specific_heat`` (beta^2 Var E / N),
    from the exact first and second derivatives of log Z (forward-mode, no finite differences):
    ``<E> = -J d log Z/dK``, ``Var E = J^2 d^2 log Z/dK^2``.
    """
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    if np.any(~np.isfinite(T)) or np.any(T <= 0):
        raise ValueError(f"temperatures must be finite and > 0, got {T!r}")
    jet = kaufman_log_z(L, M, 1.0 / T, J, _jet=True)
    N = L * M
    K = J / T
    return {"log_Z": jet.v, "energy": -J * jet.d / N, "specific_heat": K ** 2 * jet.dd / N}
