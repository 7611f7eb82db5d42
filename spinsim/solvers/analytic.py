"""Closed forms: ``solve(H, T, method="analytic")`` and the public exact formulas behind it.

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1,
beta = 1/T. O(n) spins are ``S = m sigma`` with sigma a unit vector of R^n. Partition functions
of continuous spins use the surface (Lebesgue) measure of the unit sphere S^{n-1}, of area
``A_n = 2 pi^{n/2} / Gamma(n/2)`` (A_3 = 4 pi); Ising (n = 1) uses the counting measure (A_1 = 2).

Public functions
----------------
* :func:`bessel_ratio` ``R_nu(x) = I_nu(x) / I_{nu-1}(x)``; :func:`log_bessel_i`.
* :func:`on_spin_in_field`: one O(n) spin in a field (Langevin for n = 3, tanh for n = 1).
* :func:`heisenberg_chain`: the open O(n) chain without field (any n >= 2, bond-dependent J).
* :func:`two_candidate_log_odds`, :func:`level_crossing_field`: a probe spin restricted to two
  candidates.
* :func:`mean_field`: spectrum of ``M_s``, ferro direction and energy, mean-field T_c.
* :func:`kaufman_log_z`, :func:`kaufman_thermo`: Kaufman's exact partition function of the
  periodic L x M square-lattice Ising model (finite size), with exact derivatives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln, ive

from ..hamiltonian import Hamiltonian, Heisenberg, Identity, Ising
from ..result import Result
from . import register

__all__ = [
    "bessel_ratio", "log_bessel_i", "log_sphere_area", "on_spin_in_field", "heisenberg_chain",
    "two_candidate_log_odds", "level_crossing_field", "MeanField", "mean_field",
    "kaufman_log_z", "kaufman_thermo", "solve_analytic",
]

_TINY = 1e-280


# ----------------------------------------------------------------------------- Bessel
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


def _check_n(n: Any, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"number of spin components n must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _log_z1(n: int, kappa: np.ndarray) -> np.ndarray:
    """``log (Z_1(kappa) / A_n)`` with Z_1 = int_{S^{n-1}} exp(kappa cos theta) dOmega (even)."""
    nu = 0.5 * n - 1.0
    k = np.abs(np.asarray(kappa, dtype=np.float64))
    out = np.zeros_like(k)
    pos = k > 0
    out[pos] = gammaln(0.5 * n) + nu * np.log(2.0 / k[pos]) + log_bessel_i(nu, k[pos])
    return out


def _ratio_and_slope(n: int, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R = <cos>, R/kappa (-> 1/n at 0) and dR/dkappa = 1 - (n - 1) R/kappa - R^2 (-> 1/n)."""
    kappa = np.asarray(kappa, dtype=np.float64)
    R = bessel_ratio(0.5 * n, kappa)
    with np.errstate(invalid="ignore", divide="ignore"):
        Rk = np.where(kappa != 0, R / np.where(kappa != 0, kappa, 1.0), 1.0 / n)
    dR = 1.0 - (n - 1) * Rk - R * R
    return R, Rk, dR


# ----------------------------------------------------------------------------- one spin
def on_spin_in_field(n: int, beta: Any, b: Any, m: Any = 1.0) -> dict[str, np.ndarray]:
    """One O(n) spin ``S = m sigma`` in a field of strength b: ``E = -b S . b_hat`` (k_B = 1).

    With ``kappa = beta m b`` (the field on the unit vector sigma is m b):

    * ``projection`` ``<S . b_hat> = m R_{n/2}(kappa)`` (spin-length units);
    * ``energy`` ``<E> = -m b R``;
    * ``heat_capacity`` ``C = d<E>/dT = kappa^2 dR/dkappa``, ``dR/dkappa = 1 - (n-1) R/kappa - R^2``;
    * ``log_Z`` ``= log int_{S^{n-1}} exp(kappa cos theta) dOmega`` (surface measure; counting
      measure for n = 1), ``= log A_n`` at kappa = 0;
    * ``parallel_second_moment`` ``<(sigma . b_hat)^2> = 1 - (n-1) R/kappa``;
      ``transverse_second_moment`` ``<(sigma . e)^2> = R/kappa`` for a unit e orthogonal to b_hat.

    n = 1 is the Ising spin (R = tanh), n = 3 the classical Heisenberg spin (Langevin). Arrays
    broadcast over beta, b and m. b may be negative (field along -b_hat).
    """
    n = _check_n(n)
    beta, b, m = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (beta, b, m)))
    if np.any(beta < 0) or np.any(m <= 0):
        raise ValueError("on_spin_in_field needs beta >= 0 and spin length m > 0")
    kappa = beta * m * b
    R, Rk, dR = _ratio_and_slope(n, kappa)
    return {
        "projection": m * R,
        "energy": -m * b * R,
        "heat_capacity": kappa ** 2 * dR,
        "log_Z": log_sphere_area(n) + _log_z1(n, kappa),
        "parallel_second_moment": 1.0 - (n - 1) * Rk,
        "transverse_second_moment": Rk,
    }


# ----------------------------------------------------------------------------- open chain
def heisenberg_chain(n: int, T: Any, J: Any = 1.0, N: int | None = None) -> dict[str, np.ndarray]:
    """Open O(n) chain without field: ``H = -sum_{b=1}^{N-1} J_b sigma_b . sigma_{b+1}``.

    Exact for any n >= 2 (and n = 1, the Ising chain). With ``K_b = beta J_b`` each bond is
    independent (integrate the spins from one end):
    ``Z = A_n^N prod_b z(K_b)``, ``z(K) = Gamma(n/2) (2/K)^{n/2-1} I_{n/2-1}(K)``
    (n = 3: ``Z = (4 pi)^N prod sinh K_b / K_b``);
    ``<sigma_b . sigma_{b+1}> = R_{n/2}(K_b)`` and ``<sigma_i . sigma_j> = prod_{b in [i, j)} R(K_b)``;
    ``<E> = -sum_b J_b R(K_b)``; ``C = sum_b K_b^2 R'(K_b)`` (n = 3: ``1 - (K/sinh K)^2`` per bond).

    Parameters: J a scalar (then N >= 1 sites is required) or an (N-1,) array of bond couplings;
    T (n_T,) temperatures > 0.
    Returns totals over the chain: ``log_Z`` (n_T,), ``energy`` (n_T,), ``heat_capacity``
    (n_T,), ``bond_correlation`` (n_T, N-1) = <sigma_b . sigma_{b+1}>.
    """
    n = _check_n(n)
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    if np.any(~np.isfinite(T)) or np.any(T <= 0):
        raise ValueError(f"temperatures must be finite and > 0, got {T!r}")
    J = np.asarray(J, dtype=np.float64)
    if J.ndim == 0:
        if N is None or isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
            raise ValueError(f"a scalar J needs the number of sites N >= 1, got N={N!r}")
        J = np.full(int(N) - 1, float(J))
    elif J.ndim != 1 or (N is not None and J.size != N - 1):
        raise ValueError(f"J must be a scalar or an (N-1,) array of bond couplings, got shape {J.shape}")
    N = J.size + 1
    Kb = np.outer(1.0 / T, J)                          # (n_T, N-1)
    R, _, dR = _ratio_and_slope(n, Kb)
    return {
        "log_Z": N * log_sphere_area(n) + _log_z1(n, Kb).sum(axis=1),
        "energy": -(R * J[None, :]).sum(axis=1),
        "heat_capacity": (Kb ** 2 * dR).sum(axis=1),
        "bond_correlation": R,
    }


# ----------------------------------------------------------------------------- candidates
def two_candidate_log_odds(E_A: Any, E_B: Any, T: Any) -> np.ndarray:
    """``log P_A / P_B = beta (E_B - E_A)`` for a spin restricted to the candidates {A, B}."""
    T = np.asarray(T, dtype=np.float64)
    if np.any(T <= 0):
        raise ValueError(f"temperatures must be > 0, got {T!r}")
    return (np.asarray(E_B, dtype=np.float64) - np.asarray(E_A, dtype=np.float64)) / T


def level_crossing_field(E_A: float, E_B: float, p_A: float, p_B: float) -> float:
    """Field strength h* where the energies of candidates A and B cross.

    With an added field h along u, ``E_X(h) = E_X - h p_X`` where ``p_X = u . S_X`` is the
    projection of candidate X on u. Then ``h* = (E_A - E_B) / (p_A - p_B)``: for h > h* the
    candidate with the larger projection is lower. This is a first-order line in the (T, h)
    plane: at h* the log-odds ``beta (E_B(h) - E_A(h))`` vanish at every T. Raises when
    ``p_A == p_B`` (the levels never cross, or always coincide).
    """
    if p_A == p_B:
        raise ValueError(f"no level crossing: both candidates have the same projection p = {p_A!r}")
    return float((E_A - E_B) / (p_A - p_B))


# ----------------------------------------------------------------------------- mean field
@dataclass(frozen=True)
class MeanField:
    """Mean-field description of H (see :func:`mean_field`)."""

    eigenvalues: np.ndarray       # (n_comp,) of M_s = (M + M^T)/2, descending
    eigenvectors: np.ndarray      # (n_comp, n_comp), column k for eigenvalues[k]
    ferro_direction: np.ndarray   # (n_comp,) u of the uniform ordered state
    ferro_energy: float           # H.energy of S_i = m_i u on every free site (total energy)
    bond_sum: float               # sum_{free i != j} W_ij m_i m_j
    T_c: float                    # paramagnet linearly unstable below T_c (0: never)
    T_c_separable: float          # c * max_ab lambda_a(W' + W'^T) mu_b(M_s)
    response: float               # c: <sigma sigma^T>_0 = c 1 for one free spin at T = inf


def mean_field(H: Hamiltonian, k_eig: int = 1) -> MeanField:
    """Mean-field quantities of H over its free sites (fields and frozen sites ignored for T_c).

    * ``M_s = (M + M^T)/2`` spectrum; with every free spin ``S_i = m_i u``,
      ``E = -(sum_{i!=j} W_ij m_i m_j) u^T M_s u``: the ordered (ferro) state follows the top
      eigenvector of M_s when ``bond_sum > 0`` (the bottom one when < 0). ``ferro_energy`` is
      ``H.energy`` of that state (fields and frozen sites included).
    * ``T_c``: linearising the mean-field equations ``<S_i> = m_i f(beta m_i phi_i)`` with
      ``phi_i = sum_j (W_ij M + W_ji M^T) <S_j>`` around the paramagnet (``<sigma sigma^T>_0 =
      c 1``, c = 1 for Ising, 1/n for O(n) unit spins, the covariance of the vectors for zero-mean
      discrete spins) gives ``T_c = c lambda_max(W' (x) M + W'^T (x) M^T)`` with
      ``W'_ij = m_i m_j W_ij`` (an (N n) x (N n) symmetric operator; the factor 2 of the ordered
      pairs is inside). For a symmetric M (or W) this is ``c max_ab lambda_a(W' + W'^T)
      mu_b(M_s)`` = ``T_c_separable``. Example: Curie-Weiss ``W_ij = J/N`` for i < j, M = 1:
      ``T_c = J (N - 1) / (N n)`` -> J/n. For q >= 3 Potts vectors the transition is first order
      and T_c is the paramagnet's spinodal.
    """
    free = np.flatnonzero(~H.frozen)
    Wd = H.W_dense[np.ix_(free, free)]
    m = H.lengths[free]
    Wp = Wd * np.outer(m, m)
    n = H.n_comp
    Ms = H.M_sym
    lam, vec = np.linalg.eigh(Ms)
    lam, vec = lam[::-1], vec[:, ::-1]
    bond_sum = float(Wp.sum())
    u = vec[:, 0] if bond_sum >= 0 else vec[:, -1]
    if isinstance(H.spin, Ising):
        C_half = np.ones((1, 1))
        c = 1.0
    elif isinstance(H.spin, Heisenberg):
        C_half = np.eye(n) / np.sqrt(n)
        c = 1.0 / n
    else:
        V = H.spin.vectors
        mean = V.mean(axis=0)
        if np.linalg.norm(mean) > 1e-10 * max(1.0, float(np.abs(V).max())):
            raise ValueError(f"mean-field T_c needs zero-mean discrete vectors (a symmetric paramagnet); "
                             f"these have |mean| = {np.linalg.norm(mean):.3g}")
        Cv = V.T @ V / V.shape[0]
        w, Q = np.linalg.eigh(Cv)
        C_half = (Q * np.sqrt(np.clip(w, 0, None))) @ Q.T
        c = float(np.trace(Cv) / n)
    Md = H.M_dense
    Nn = free.size * n
    Wps = sp.csr_matrix(Wp)

    def op(x: np.ndarray) -> np.ndarray:
        X = x.reshape(free.size, n) @ C_half
        Y = Wps @ (X @ Md.T) + Wps.T @ (X @ Md)
        return (np.asarray(Y) @ C_half).reshape(-1)

    if Nn <= 1500:
        L = np.column_stack([op(e) for e in np.eye(Nn)])
        top = float(np.linalg.eigvalsh(0.5 * (L + L.T))[-1])
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh
        A = LinearOperator((Nn, Nn), matvec=op, dtype=np.float64)
        top = float(eigsh(A, k=k_eig, which="LA", return_eigenvectors=False).max())
    lw = np.linalg.eigvalsh(Wp + Wp.T)
    sep = c * max(lw[-1] * lam[0], lw[0] * lam[-1])
    S = H.state.copy() if H.state is not None else np.zeros((H.n_sites, n))
    S[free] = m[:, None] * u[None, :]
    return MeanField(eigenvalues=lam, eigenvectors=vec, ferro_direction=u,
                     ferro_energy=float(H.energy(S)), bond_sum=bond_sum, T_c=max(top, 0.0),
                     T_c_separable=max(float(sep), 0.0), response=c)


# ----------------------------------------------------------------------------- Kaufman
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


# ----------------------------------------------------------------------------- solver
@register("analytic")
def solve_analytic(H: Hamiltonian, T: np.ndarray, *, direction: Any = None, **ignored: Any) -> Result:
    """Thermodynamics of H from a closed form, for the structures that have one:

    (a) one free O(n) site (the others frozen, or N = 1) in its local field phi (from h and the
        frozen sites): exact <E>, C, <m>, projection (default direction: phi/|phi|), log Z.
        |m| of one spin is its length m, so ``magnetization = m``, ``susceptibility = 0`` and
        ``binder = 2/(n+2)`` exactly.
    (b) an open O(n) chain (n >= 2): isotropic coupling (``Identity``), no field, no frozen
        site, W + W^T the adjacency of a simple path (any bond weights and lengths): exact
        log Z, <E>, C, <m> = 0 and, for a given direction, <m_u> = 0 and its susceptibility.
        ``<|m|>`` and ``<|m|^4>`` have no closed form: ``magnetization``, ``susceptibility`` and
        ``binder`` are NaN, listed in ``meta["not_available"]``; the exact ``<|m|^2>`` is in
        ``meta["mean_m2"]`` (zero-field susceptibility ``n_free <|m|^2> / T``).

    Energies are total energies of H (frozen pairs included) divided by n_free, as for
    ``method="exact"``. log Z uses the surface measure of S^{n-1} per free spin. Anything else
    raises ValueError. Errors are zero arrays.
    """
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    if not isinstance(H.spin, Heisenberg):
        raise ValueError(f"no closed form for {H!r} ({H.spin.name} spins); use method='exact' or 'mc'")
    n = H.n_comp
    if H.n_free == 1:
        res = _single_site(H, T, direction)
    elif _is_open_chain(H):
        res = _open_chain(H, T, direction)
    else:
        raise ValueError(f"no closed form for {H!r}; use method='exact' or 'mc' (closed forms: one free "
                         "O(n) site, or an open isotropic O(n) chain without field or frozen sites)")
    if ignored:
        res.meta["ignored_options"] = sorted(ignored)
    res.meta["log_Z_measure"] = f"surface measure of S^{n - 1} per free spin (area {np.exp(log_sphere_area(n)):.6g})"
    res.meta["energy_convention"] = "total energy of H (frozen sites included); per-site values / n_free"
    return res


def _proj_dirs(H: Hamiltonian, direction: Any) -> tuple[np.ndarray, str | None]:
    from .mc import _direction   # the one definition of projection directions (shared with mc)
    return _direction(H, direction)


def _single_site(H: Hamiltonian, T: np.ndarray, direction: Any) -> Result:
    n = H.n_comp
    k = int(np.flatnonzero(~H.frozen)[0])
    S = H.state.copy() if H.state is not None else np.zeros((H.n_sites, n))
    S[k] = 0.0
    E_c = float(H.energy(S))
    phi = H.local_field(S, k)
    m = float(H.lengths[k])
    b = float(np.linalg.norm(phi))
    beta = 1.0 / T
    kappa = beta * m * b
    R, Rk, dR = _ratio_and_slope(n, kappa)
    phat = phi / b if b > 0 else np.zeros(n)
    if direction is None:
        u, label = (phat, "local field direction phi/|phi|") if b > 0 else (None, None)
    else:
        U, label = _proj_dirs(H, direction)
        u = U[k]
    zeros = np.zeros(T.size)
    meta: dict[str, Any] = {"closed_form": "one free O(n) spin in its local field (Bessel ratio)",
                            "field_strength": b}
    proj = proj_chi = None
    if u is not None:
        c = float(u @ phat)
        uu = float(u @ u)
        proj = m * R * c
        second = m * m * (c * c * (1.0 - (n - 1) * Rk) + (uu - c * c) * Rk)
        proj_chi = (second - proj ** 2) / T
        meta["projection_direction"] = label
    return Result(
        T=T, energy=E_c - m * b * R, energy_err=zeros.copy(),
        specific_heat=kappa ** 2 * dR, specific_heat_err=zeros.copy(),
        magnetization=np.full(T.size, m), magnetization_err=zeros.copy(),
        susceptibility=zeros.copy(), susceptibility_err=zeros.copy(),
        binder=np.full(T.size, 2.0 / (n + 2)), binder_err=zeros.copy(),
        method="analytic", backend="numpy", n_sites=H.n_sites, n_free=1, n_comp=n,
        magnetization_vector=(m * R)[:, None] * phat[None, :],
        projection=proj, projection_err=None if proj is None else zeros.copy(),
        projection_susceptibility=proj_chi,
        projection_susceptibility_err=None if proj is None else zeros.copy(),
        log_Z=-beta * E_c + log_sphere_area(n) + _log_z1(n, kappa), meta=meta,
    )


def _path_order(H: Hamiltonian) -> np.ndarray | None:
    """Site order along the path if W + W^T is a simple path over all sites, else None."""
    U = sp.csr_matrix(abs(sp.csr_matrix(H.W)) + abs(sp.csr_matrix(H.W).T))
    U.eliminate_zeros()
    N = H.n_sites
    deg = np.diff(U.indptr)
    if U.nnz != 2 * (N - 1) or np.any(deg > 2) or np.any(deg == 0):
        return None
    ends = np.flatnonzero(deg == 1)
    if ends.size != 2:
        return None
    order = [int(ends[0])]
    prev = -1
    while len(order) < N:
        cur = order[-1]
        nxt = [int(j) for j in U.indices[U.indptr[cur]:U.indptr[cur + 1]] if j != prev]
        if len(nxt) != 1:
            return None
        prev = cur
        order.append(nxt[0])
    return np.asarray(order) if len(set(order)) == N else None


def _is_open_chain(H: Hamiltonian) -> bool:
    return (isinstance(H.M, Identity) and not H.frozen.any() and not np.any(H.h != 0)
            and H.n_sites >= 2 and _path_order(H) is not None)


def _open_chain(H: Hamiltonian, T: np.ndarray, direction: Any) -> Result:
    n, N = H.n_comp, H.n_sites
    order = _path_order(H)
    Wd = H.W_dense
    m = H.lengths
    a, b = order[:-1], order[1:]
    Jb = H.M.J * (Wd[a, b] + Wd[b, a]) * m[a] * m[b]               # bond couplings along the path
    ch = heisenberg_chain(n, T, Jb)
    R = ch["bond_correlation"]                                      # (n_T, N-1)
    # <sigma_i . sigma_j> along the path = product of bond correlations in between
    # <sigma_i . sigma_j> along the path = product of the bond correlations in between,
    # from cumulative sums of log|R| and of the number of negative bonds
    Rs = np.where(R == 0.0, 1e-300, R)
    lc = np.concatenate([np.zeros((T.size, 1)), np.cumsum(np.log(np.abs(Rs)), axis=1)], axis=1)
    nc = np.concatenate([np.zeros((T.size, 1)), np.cumsum(Rs < 0, axis=1)], axis=1)
    idx = np.arange(N)
    lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
    corr = (np.exp(lc[:, hi] - lc[:, lo]) * (1.0 - 2.0 * ((nc[:, hi] - nc[:, lo]) % 2)))  # (n_T, N, N)
    mm = m[order]
    m2 = np.einsum("i,j,tij->t", mm, mm, corr) / N ** 2
    zeros = np.zeros(T.size)
    nan = np.full(T.size, np.nan)
    meta: dict[str, Any] = {"closed_form": f"open O({n}) chain of {N} sites without field (Bessel ratios)",
                            "not_available": ["magnetization", "susceptibility", "binder"],
                            "mean_m2": m2.tolist()}
    U, label = _proj_dirs(H, direction)
    proj = proj_chi = None
    if label is not None:
        Uo = U[order]
        mu2 = np.einsum("i,j,ij,tij->t", mm, mm, Uo @ Uo.T / n, corr) / N ** 2
        proj = zeros.copy()
        proj_chi = N * mu2 / T
        meta["projection_direction"] = label
    return Result(
        T=T, energy=ch["energy"] / N, energy_err=zeros.copy(),
        specific_heat=ch["heat_capacity"] / N, specific_heat_err=zeros.copy(),
        magnetization=nan.copy(), magnetization_err=zeros.copy(),
        susceptibility=nan.copy(), susceptibility_err=zeros.copy(),
        binder=nan.copy(), binder_err=zeros.copy(),
        method="analytic", backend="numpy", n_sites=N, n_free=N, n_comp=n,
        magnetization_vector=np.zeros((T.size, n)),
        projection=proj, projection_err=None if proj is None else zeros.copy(),
        projection_susceptibility=proj_chi,
        projection_susceptibility_err=None if proj is None else zeros.copy(),
        log_Z=ch["log_Z"], meta=meta,
    )
