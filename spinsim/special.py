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
    big = bad & (ax >= _hankel_min_x(nu))         # ive fails (AMOS refuses x > ~1e9): Hankel's series
    if np.any(big):
        out[big] = _hankel_sum(nu, ax[big]) / _hankel_sum(nu - 1.0, ax[big])
    bad &= ~big
    if np.any(bad):
        out[bad] = _ratio_cf(nu, ax[bad])
    return np.sign(x) * out


def _hankel_min_x(nu: float) -> float:
    """Smallest x where Hankel's large-argument series of I_nu (and I_{nu-1}) converges to machine
    precision within 40 terms: the ratio of successive terms is about (4 nu^2) / (8 k x)."""
    return max(1e4, 4.0 * (nu * nu + 1.0))


def _hankel_sum(nu: float, x: np.ndarray) -> np.ndarray:
    """``S = sum_k (-1)^k a_k(nu) / x^k`` with ``I_nu(x) = e^x / sqrt(2 pi x) S`` for large x,
    ``a_k = prod_{j<=k} (4 nu^2 - (2j - 1)^2) / (k! 8^k)`` (Abramowitz & Stegun 9.7.1)."""
    mu = 4.0 * nu * nu
    term = np.ones_like(x)
    total = np.ones_like(x)
    for k in range(1, 41):
        term = -term * (mu - (2 * k - 1) ** 2) / (8.0 * k * x)
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            break
    return total


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
    big = bad & (x >= _hankel_min_x(nu))          # large x: Hankel's series, not 1e7 series terms
    if np.any(big):
        out[big] = x[big] - 0.5 * np.log(2.0 * np.pi * x[big]) + np.log(_hankel_sum(nu, x[big]))
    bad &= ~big
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
    big = np.abs(kappa) >= _hankel_min_x(0.5 * n)    # there 1 - (n-1)R/k - R^2 cancels to rounding noise
    if n > 1 and np.any(big):
        dR[big] = _slope_large(0.5 * n, np.abs(kappa[big]))
    return R, Rk, dR


def _slope_large(nu: float, x: np.ndarray) -> np.ndarray:
    """dR_nu/dx for large x from the power series of R_nu = S_nu / S_{nu-1} in t = 1/x
    (:func:`_hankel_sum`): ``R = sum_j r_j t^j``, ``dR/dx = -sum_j j r_j t^(j+1)``; no cancellation
    (``dR/dx -> (2 nu - 1) / (2 x^2)``)."""
    K = 24
    def coeffs(v: float) -> np.ndarray:
        c = np.ones(K)
        for k in range(1, K):
            c[k] = -c[k - 1] * (4.0 * v * v - (2 * k - 1) ** 2) / (8.0 * k)
        return c
    a, b = coeffs(nu), coeffs(nu - 1.0)
    r = np.zeros(K)
    for j in range(K):                                # series division a / b (b_0 = 1)
        r[j] = a[j] - np.dot(r[:j], b[j:0:-1]) if j else a[0]
    t = 1.0 / x
    out = np.zeros_like(x)
    for j in range(K - 1, 0, -1):                     # Horner in t, then times t^2
        out = out * t - j * r[j]
    return out * t * t
