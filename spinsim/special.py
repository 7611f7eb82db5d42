"""Special functions of O(n) spins: Bessel ratios, log I_nu, sphere areas (k_B = 1).

One unit spin sigma of R^n in a field of strength b at inverse temperature beta has
``kappa = beta b`` and ``<sigma . b_hat> = R_{n/2}(kappa)``, ``R_nu = I_nu / I_{nu-1}`` (n = 1:
tanh, n = 3: the Langevin function). Partition functions use the surface (Lebesgue) measure of
the unit sphere S^{n-1}, of area ``A_n = 2 pi^{n/2} / Gamma(n/2)`` (A_3 = 4 pi); n = 1 uses the
counting measure (A_1 = 2). Every function is stable for any n (768, 4096, ...) and any kappa.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln, ive

__all__ = ["bessel_ratio", "log_bessel_i", "log_sphere_area", "log_z1", "ratio_and_slope"]

_TINY = 1e-280


def bessel_ratio(nu: float, x: Any) -> np.ndarray:
    """``R_nu(x) = I_nu(x) / I_{nu-1}(x)`` for real nu >= 1/2 and any real x (odd in x).

    For an O(n) unit spin in a field, ``<sigma . b_hat> = R_{n/2}(beta b)`` (n = 1: tanh, n = 3:
    the Langevin function coth x - 1/x). Stable for any n (768, 4096, ...) and any |x|: the
    exponentially scaled ``scipy.special.ive`` where it is representable, otherwise the Gauss
    continued fraction ``R_nu(x) = 1 / (2nu/x + 1 / (2(nu+1)/x + ...))`` (modified Lentz).
    Limits: ``R ~ x / (2 nu)`` for x -> 0, ``R ~ 1 - (2 nu - 1) / (2 x)`` for x -> inf.
    """
    nu = float(nu)
    if not np.isfinite(nu) or nu < 0.5:
        raise ValueError(f"bessel_ratio needs a finite order nu >= 1/2, got nu={nu!r}")
    x = np.asarray(x, dtype=np.float64)
    if np.any(np.isnan(x)):
        raise ValueError("bessel_ratio: x contains NaN")
    ax = np.abs(x)
    out = np.zeros_like(ax)
    inf = np.isinf(ax)
    out[inf] = 1.0
    pos = (ax > 0) & ~inf
    with np.errstate(all="ignore"):
        num = ive(nu, ax)
        den = ive(nu - 1.0, ax)
    good = pos & np.isfinite(num) & np.isfinite(den) & (num > _TINY) & (den > _TINY)
    out[good] = num[good] / den[good]
    bad = pos & ~good
    if np.any(bad):
        out[bad] = _ratio_cf(nu, ax[bad])
    return np.sign(x) * out


def _ratio_cf(nu: float, x: np.ndarray, max_iter: int = 200_000) -> np.ndarray:
    """Continued fraction for I_nu/I_{nu-1} (x > 0), vectorised modified Lentz."""
    tiny = 1e-300
    f = 2.0 * nu / x
    f = np.where(f == 0.0, tiny, f)
    C = f.copy()
    D = np.zeros_like(x)
    done = np.zeros(x.shape, dtype=bool)
    for k in range(1, max_iter):
        b = 2.0 * (nu + k) / x
        D = b + D
        D = np.where(D == 0.0, tiny, D)
        C = b + 1.0 / C
        C = np.where(C == 0.0, tiny, C)
        D = 1.0 / D
        delta = C * D
        f = np.where(done, f, f * delta)
        done |= np.abs(delta - 1.0) < 1e-16
        if done.all():
            break
    return 1.0 / f


def log_bessel_i(nu: float, x: Any) -> np.ndarray:
    """``log I_nu(x)`` for nu > -1 and x >= 0 without overflow or underflow (log I_nu(0) = -inf
    for nu > 0, 0 for nu = 0). Uses ``log ive + x`` where representable, else the power series
    ``(x/2)^nu / Gamma(nu + 1) * sum_k (x^2/4)^k / (k! (nu + 1)_k)`` summed in log space."""
    nu = float(nu)
    x = np.asarray(x, dtype=np.float64)
    if np.any(x < 0) or np.any(np.isnan(x)):
        raise ValueError("log_bessel_i needs x >= 0")
    shape = x.shape
    x = x.reshape(-1)
    with np.errstate(all="ignore"):
        v = ive(nu, x)
        out = np.log(v) + x
    bad = ~(np.isfinite(v) & (v > _TINY)) & (x > 0)
    for i in np.flatnonzero(bad):
        out[i] = _log_i_series(nu, float(x[i]))
    out[x == 0] = 0.0 if nu == 0 else -np.inf
    return out.reshape(shape)


def _log_i_series(nu: float, x: float) -> float:
    q = 0.25 * x * x
    log_t, terms = 0.0, [0.0]
    k = 0
    while True:
        k += 1
        log_t += np.log(q) - np.log(k) - np.log(nu + k)
        terms.append(log_t)
        if (log_t < max(terms) - 40.0 and k > q / (nu + 1.0)) or k > 10_000_000:
            break
    t = np.asarray(terms)
    mx = t.max()
    return float(nu * np.log(0.5 * x) - gammaln(nu + 1.0) + mx + np.log(np.exp(t - mx).sum()))


def log_sphere_area(n: int) -> float:
    """``log A_n``, A_n = 2 pi^{n/2} / Gamma(n/2) the area of S^{n-1} (A_1 = 2, A_3 = 4 pi)."""
    return float(np.log(2.0) + 0.5 * n * np.log(np.pi) - gammaln(0.5 * n))



def log_z1(n: int, kappa: np.ndarray) -> np.ndarray:
    """``log (Z_1(kappa) / A_n)`` with Z_1 = int_{S^{n-1}} exp(kappa cos theta) dOmega (even)."""
    nu = 0.5 * n - 1.0
    k = np.abs(np.asarray(kappa, dtype=np.float64))
    out = np.zeros_like(k)
    pos = k > 0
    out[pos] = gammaln(0.5 * n) + nu * np.log(2.0 / k[pos]) + log_bessel_i(nu, k[pos])
    return out


def ratio_and_slope(n: int, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R = <cos>, R/kappa (-> 1/n at 0) and dR/dkappa = 1 - (n - 1) R/kappa - R^2 (-> 1/n)."""
    kappa = np.asarray(kappa, dtype=np.float64)
    R = bessel_ratio(0.5 * n, kappa)
    with np.errstate(invalid="ignore", divide="ignore"):
        Rk = np.where(kappa != 0, R / np.where(kappa != 0, kappa, 1.0), 1.0 / n)
    dR = 1.0 - (n - 1) * Rk - R * R
    return R, Rk, dR
