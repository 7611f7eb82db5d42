"""The mean-field description of H, in one place: ordered state, T_c and the line T_c^MF(h).

``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i`` (k_B = 1), spins ``S_i = l_i sigma_i``
(l_i the length). Mean field replaces each site's neighbours by their means ``m_j = <sigma_j>``:
the unit spin sigma_i then sits in the field

    b_i = sum_j (W'_ij M + W'_ji M^T) m_j + l_i (h_i + h u_i) + l_i sum_{j frozen} (W_ij M + W_ji M^T) S_j

with ``W'_ij = l_i l_j W_ij`` over the free sites and h u_i an added field (u from
:func:`spinsim.directions.resolve_direction`). The coupling operator
``K = W' (x) M + W'^T (x) M^T`` is symmetric on R^{N n} (the factor 2 of the ordered pairs is
inside). A site responds as ``m_i = f(beta b_i)`` (O(n): ``R_{n/2}(beta |b_i|) b_i / |b_i|``,
R the Bessel ratio of :mod:`spinsim.special`; Ising: tanh; discrete: the softmax mean over the
allowed vectors) with covariance D_i; the paramagnetic branch is linearly unstable where
``beta lambda_max(D^{1/2} K D^{1/2}) = 1``.

* :func:`mean_field`: spectrum of M_s, ferro direction and energy, ``T_c`` at zero added field
  (``c lambda_max(K)``, c the one-spin response: 1 Ising, 1/n O(n)).
* :func:`critical_temperatures`: T_c^MF(h) along a field direction (continuation of the
  branch in T); ``spinsim.analysis.boundaries.mean_field_line`` stores it as a boundary line.
* :func:`field_along_order`: whether the added field couples to the order parameter (then
  there is no line for h != 0, only the critical point at h = 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, eigsh

from ..directions import resolve_direction
from ..hamiltonian import Discrete, Hamiltonian, Heisenberg, Ising
from ..special import ratio_and_slope

__all__ = ["MeanField", "mean_field", "mean_field_T_c", "critical_temperatures", "field_along_order"]


# ============================================================================ shared algebra
class _Coupling:
    """``K X`` for rows X (N, n) over the free sites: ``K X = W' X M^T + W'^T X M``, i.e. the
    coupling part of the local fields of the graph W' (``M.local_fields(W', X)``)."""

    def __init__(self, H: Hamiltonian, free: np.ndarray) -> None:
        W = sp.csr_matrix(H.W) if not sp.issparse(H.W) else H.W.tocsr()
        Wff = W[free][:, free]
        lf = H.lengths[free]
        self.Wp = sp.csr_matrix(Wff.multiply(np.outer(lf, lf)) if Wff.nnz else Wff)
        self.M = H.M

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.M.local_fields(self.Wp, X)


def _lambda_max(op: Callable[[np.ndarray], np.ndarray], size: int, dense_max: int, tol: float = 0.0,
                v0: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
    """Largest eigenvalue of the symmetric operator op on R^size: dense (``eigvalsh`` of the
    symmetrised matrix) when size <= dense_max, else ARPACK (which="LA", tolerance tol, start v0
    or the normalised ones vector). Returns (lambda, eigenvector or None)."""
    if size <= dense_max:
        A = np.column_stack([op(e) for e in np.eye(size)])
        return float(np.linalg.eigvalsh(0.5 * (A + A.T))[-1]), None
    L = LinearOperator((size, size), matvec=op, dtype=np.float64)
    if v0 is None or v0.size != size:
        v0 = np.ones(size) / np.sqrt(size)
    w, v = eigsh(L, k=1, which="LA", tol=tol, v0=v0)
    return float(w[0]), v[:, 0]


def _response(H: Hamiltonian) -> tuple[float, np.ndarray]:
    """One-spin response at T = inf: (c, C^{1/2}) with ``<sigma sigma^T>_0 = C`` and
    ``c = tr C / n``. Discrete vectors must have zero mean (a symmetric paramagnet)."""
    n = H.n_comp
    if isinstance(H.spin, Ising):
        return 1.0, np.ones((1, 1))
    if isinstance(H.spin, Heisenberg):
        return 1.0 / n, np.eye(n) / np.sqrt(n)
    V = H.spin.vectors
    mean = V.mean(axis=0)
    if np.linalg.norm(mean) > 1e-10 * max(1.0, float(np.abs(V).max())):
        raise ValueError(f"mean-field T_c needs zero-mean discrete vectors (a symmetric paramagnet); "
                         f"these have |mean| = {np.linalg.norm(mean):.3g}")
    Cv = V.T @ V / V.shape[0]
    w, Q = np.linalg.eigh(Cv)
    return float(np.trace(Cv) / n), (Q * np.sqrt(np.clip(w, 0, None))) @ Q.T


# ============================================================================ zero field
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

    * ``M_s = (M + M^T)/2`` spectrum (a position-dependent ``M_ij = A_i B_j^T``: M_s of the
      bond-weighted mean coupling ``sum_ij W'_ij M_ij / sum W'``); with every free spin ``S_i = m_i u``,
      ``E = -(sum_{i!=j} W_ij m_i m_j) u^T M_s u``: the ordered (ferro) state follows the top
      eigenvector of M_s when ``bond_sum > 0`` (the bottom one when < 0). ``ferro_energy`` is
      ``H.energy`` of that state (fields and frozen sites included).
    * ``T_c``: linearising the mean-field equations around the paramagnet (``<sigma sigma^T>_0 =
      C``, ``c = tr C / n``: c = 1 for Ising, 1/n for O(n) unit spins, the covariance of the
      vectors for zero-mean discrete spins) gives ``T_c = lambda_max(C^1/2 K C^1/2)``, for
      isotropic C ``c lambda_max(W' (x) M + W'^T (x) M^T)`` with ``W'_ij = m_i m_j W_ij``. For a
      symmetric M (or W) this is ``c max_ab lambda_a(W' + W'^T) mu_b(M_s)`` = ``T_c_separable``.
      Example: Curie-Weiss ``W_ij = J/N`` for i < j, M = 1: ``T_c = J (N - 1) / (N n)`` -> J/n.
      For q >= 3 Potts vectors the transition is first order and T_c is the paramagnet's
      spinodal. Dense eigensolver for N n <= 1500, ARPACK above (``k_eig`` eigenvalues).
    Raises ValueError for discrete vectors with a nonzero mean.
    """
    free = np.flatnonzero(~H.frozen)
    m = H.lengths[free]
    n = H.n_comp
    K = _Coupling(H, free)
    Wp = K.Wp.toarray()
    bond_sum = float(Wp.sum())
    lam, vec = np.linalg.eigh(_uniform_M_sym(H, free, Wp, bond_sum))
    lam, vec = lam[::-1], vec[:, ::-1]
    u = vec[:, 0] if bond_sum >= 0 else vec[:, -1]
    c, C_half = _response(H)
    Nf = free.size

    def op(x: np.ndarray) -> np.ndarray:
        return (K(x.reshape(Nf, n) @ C_half) @ C_half).reshape(-1)

    if Nf * n <= 1500:
        top, _ = _lambda_max(op, Nf * n, dense_max=1500)
    else:
        L = LinearOperator((Nf * n, Nf * n), matvec=op, dtype=np.float64)
        v0 = np.ones(Nf * n) / np.sqrt(Nf * n)
        top = float(eigsh(L, k=k_eig, which="LA", v0=v0, return_eigenvectors=False).max())
    lw = np.linalg.eigvalsh(Wp + Wp.T)
    sep = c * max(lw[-1] * lam[0], lw[0] * lam[-1])
    S = H.state.copy() if H.state is not None else np.zeros((H.n_sites, n))
    S[free] = m[:, None] * u[None, :]
    return MeanField(eigenvalues=lam, eigenvectors=vec, ferro_direction=u,
                     ferro_energy=float(H.energy(S)), bond_sum=bond_sum, T_c=max(top, 0.0),
                     T_c_separable=max(float(sep), 0.0), response=c)


def _uniform_M_sym(H: Hamiltonian, free: np.ndarray, Wp: np.ndarray, bond_sum: float) -> np.ndarray:
    """``M_s`` of the coupling a uniform state sees: H.M_sym for one M; for a position-dependent
    coupling (``M_ij = A_i B_j^T``, ``H.M.n_sites`` set) the bond-weighted mean
    ``sum_ij W'_ij M_ij / sum W'`` over the free sites (plain mean when the bonds sum to 0), so
    that ``E(S_i = m_i u) = -bond_sum u^T M_s u`` still holds exactly."""
    if H.M.n_sites is None:
        return H.M_sym
    A, B = H.M.A[free], H.M.B[free]
    w = Wp / bond_sum if bond_sum != 0 else np.ones_like(Wp) / max(Wp.size, 1)
    N, n, r = B.shape                                       # BLAS products (einsum's loops: ~10x slower)
    Cw = (w @ B.reshape(N, n * r)).reshape(N, n, r)          # sum_j w_ij B_j per query i
    Mu = A.transpose(1, 0, 2).reshape(n, -1) @ Cw.transpose(1, 0, 2).reshape(n, -1).T
    return 0.5 * (Mu + Mu.T)


def mean_field_T_c(H: Hamiltonian) -> float:
    """Mean-field T_c of H at zero added field: ``mean_field(H).T_c`` (for a complete graph or
    a head with symmetric M: ``c lambda_max(W' + W'^T) mu_max(M_s)``)."""
    return float(mean_field(H).T_c)


def field_along_order(H: Hamiltonian, direction: np.ndarray) -> bool:
    """True when the added field couples to the order parameter of a field-flip symmetric H:
    no field of its own on the free sites, no frozen site, a ferromagnetic graph
    (``sum W' > 0``), one uniform direction u (n_sites, n_comp rows) on every free site, and u
    in the top eigenspace of M_s (always for Ising and isotropic couplings). Then h = 0 below
    T_c is a first-order (coexistence) line and the polarised branch never goes unstable."""
    free = ~H.frozen
    if np.any(H.h[free] != 0) or H.frozen.any():
        return False
    U = np.asarray(direction, float)[free]
    if U.size == 0 or not np.allclose(U, U[0], atol=1e-12):
        return False
    Wc = sp.csr_matrix(H.W)
    if float(H.lengths @ (Wc @ H.lengths)) <= 0:
        return False
    lam = np.linalg.eigvalsh(H.M_sym)
    u = U[0] / np.linalg.norm(U[0])
    return bool(u @ H.M_sym @ u >= lam[-1] - 1e-9 * max(1.0, abs(lam[-1])))


# ============================================================================ in a field
def _site_moments(spin: Any, Bf: np.ndarray, beta: float) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Mean ``m_i = <sigma_i>`` and the covariance ``D_i`` of one unit spin in the field Bf_i.

    Returns ``m`` (N, n) and ``sqrtD(x)``: x (N, n) -> D^{1/2} x applied site by site.
    O(n): ``m = R(kappa) b_hat``, ``D = R'(kappa) b_hat b_hat^T + (R/kappa)(1 - b_hat b_hat^T)``,
    kappa = beta |b|, R = I_{n/2}/I_{n/2-1}. Discrete (Ising): the moments of the softmax over the
    allowed vectors.
    """
    N, n = Bf.shape
    if isinstance(spin, Heisenberg):
        b = np.linalg.norm(Bf, axis=1)
        bh = np.divide(Bf, b[:, None], out=np.zeros_like(Bf), where=b[:, None] > 0)
        R, Rk, dR = ratio_and_slope(n, beta * b)
        m = R[:, None] * bh
        sp_, st = np.sqrt(np.clip(dR, 0, None)), np.sqrt(np.clip(Rk, 0, None))

        def sqrtD(x: np.ndarray) -> np.ndarray:
            par = np.sum(x * bh, axis=1, keepdims=True)
            return st[:, None] * (x - par * bh) + sp_[:, None] * par * bh
        return m, sqrtD
    V = spin.vectors                                    # (K, n)
    logits = beta * Bf @ V.T                            # (N, K)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    m = w @ V
    D = np.einsum("ik,ka,kb->iab", w, V, V) - m[:, :, None] * m[:, None, :]
    lam, Q = np.linalg.eigh(D)
    Dh = np.einsum("iab,ib,icb->iac", Q, np.sqrt(np.clip(lam, 0, None)), Q)

    def sqrtD(x: np.ndarray) -> np.ndarray:
        return np.einsum("iab,ib->ia", Dh, x)
    return m, sqrtD


class _Problem:
    """Site-resolved mean field of H with the added field h u_i, over the free sites (the field
    b_i of the module docstring: ``b = K m + base + h U``)."""

    def __init__(self, H: Hamiltonian, U: np.ndarray) -> None:
        self.H = H
        free = np.flatnonzero(~H.frozen)
        lf = H.lengths[free]
        self.K = _Coupling(H, free)
        n = H.n_comp
        base = H.h[free] * lf[:, None]
        if H.frozen.any():
            fz = np.flatnonzero(H.frozen)
            X = np.zeros((H.n_sites, n))
            X[fz] = H.state[fz]
            base = base + lf[:, None] * H.M.local_fields(H.W, X)[free]
        self.base = base
        self.U = U[free] * lf[:, None]
        self.shape = (free.size, n)
        self._v0: np.ndarray | None = None

    def fields(self, m: np.ndarray, h: float) -> np.ndarray:
        return self.K(m) + self.base + h * self.U

    def solve(self, beta: float, h: float, m0: np.ndarray, tol: float = 1e-10, max_iter: int = 3000,
              depth: int = 6) -> np.ndarray:
        """Self-consistent means ``m = f(beta b(m))`` from ``m0``: Anderson-accelerated fixed point
        iteration (falls back to damped steps when an extrapolation does not reduce the residual)."""
        shape = m0.shape

        def resid(x: np.ndarray) -> np.ndarray:
            new, _ = _site_moments(self.H.spin, self.fields(x.reshape(shape), h), beta)
            return new.reshape(-1) - x

        x = m0.reshape(-1).astype(float)
        g = resid(x)
        xs, gs = [x], [g]
        for _ in range(max_iter):
            if np.max(np.abs(g)) < tol:
                break
            if len(xs) > 1:
                dX = np.diff(np.array(xs), axis=0).T
                dG = np.diff(np.array(gs), axis=0).T
                gamma = np.linalg.lstsq(dG, g, rcond=None)[0]
                x_new = x + g - (dX + dG) @ gamma
            else:
                x_new = x + 0.5 * g
            g_new = resid(x_new)
            if not np.all(np.isfinite(g_new)) or np.max(np.abs(g_new)) > 2.0 * np.max(np.abs(g)):
                x_new = x + 0.5 * g                      # safeguard: a damped step, fresh history
                g_new = resid(x_new)
                xs, gs = [], []
            x, g = x_new, g_new
            xs.append(x)
            gs.append(g)
            xs, gs = xs[-(depth + 1):], gs[-(depth + 1):]
        return (x + g).reshape(shape)

    def top_eig(self, beta: float, h: float, m: np.ndarray) -> float:
        """lambda_max of D^{1/2} K D^{1/2} at the mean-field state m (ARPACK warm-started from
        the previous, nearby state's eigenvector)."""
        _, sqrtD = _site_moments(self.H.spin, self.fields(m, h), beta)
        N, n = self.shape

        def op(x: np.ndarray) -> np.ndarray:
            return sqrtD(self.K(sqrtD(x.reshape(N, n)))).reshape(-1)

        lam, v = _lambda_max(op, N * n, dense_max=64, tol=1e-8, v0=self._v0)
        if v is not None:
            self._v0 = v
        return lam


def critical_temperatures(H: Hamiltonian, h: Any, direction: Any = None, T_min: float | None = None,
                          n_scan: int = 24, rtol: float = 1e-6) -> tuple[np.ndarray, float | None]:
    """Mean-field critical temperatures T_c^MF(h) of H with the field ``h u_i`` added.

    For each h the self-consistent solution connected to the high-T paramagnet is followed down
    in T and the largest T with ``beta lambda_max(D^{1/2} K D^{1/2}) = 1`` is returned (module
    docstring). At h = 0 with no other field D = c 1 and this is :func:`mean_field_T_c`. A field
    along the order parameter (:func:`field_along_order`) keeps the branch stable: NaN for
    h != 0, only the critical point at h = 0 (returned without numerics). A field across the
    ordering direction gives a genuine line that ends at T = 0 at h_c; where the field breaks the
    symmetry completely the instability is the spinodal of the paramagnetic branch (a first-order
    jump happens at or before it), or only a crossover. Numerics: ``n_scan`` geometric steps
    from the bound ``1.05 c0 lambda_max(K)`` (no instability lies above it) down to ``T_min``
    (default 2% of the bound), each solved by Anderson-accelerated iteration; the first sign
    change is located by Brent's method to relative precision ``rtol``.

    h: a field strength or an array (n_h,); direction: as :func:`spinsim.directions.resolve_direction`.
    Returns ``(T_c (n_h,), T_lo)``: NaN where no instability lies above ``T_lo``, the lowest
    temperature scanned (None when nothing was scanned).
    """
    hs = np.atleast_1d(np.asarray(h, float))
    U, _ = resolve_direction(H, direction)
    if field_along_order(H, U):
        return np.where(hs == 0, mean_field_T_c(H), np.nan).astype(float), T_min
    prob = _Problem(H, U)
    N, n = prob.shape
    # upper bound: beta * max_i ||D_i|| * lambda_max(K) with ||D_i|| <= c0 (the zero-field value)
    if isinstance(H.spin, Heisenberg):
        c0 = 1.0 / n
    else:
        V = H.spin.vectors
        c0 = float(np.linalg.eigvalsh(np.cov(V.T, bias=True).reshape(n, n))[-1]) if V.shape[0] > 1 else 0.0
    lamK, _ = _lambda_max(lambda x: prob.K(x.reshape(N, n)).reshape(-1), N * n, dense_max=400, tol=1e-8)
    T_top = 1.05 * c0 * lamK
    Tc = np.full(hs.size, np.nan)
    zero_field = not np.any(prob.base)
    if T_top <= 0:
        return Tc, T_min
    T_lo = min(T_min if T_min is not None else 0.02 * T_top, T_top) * 0.999
    grid = np.geomspace(T_top, T_lo, n_scan)
    for k, hv in enumerate(hs):
        if hv == 0 and zero_field and not isinstance(H.spin, Discrete):
            Tc[k] = mean_field_T_c(H)
            continue
        Tc[k] = _first_instability(prob, hv, grid, rtol)
    return Tc, T_lo


def _first_instability(prob: _Problem, hv: float, grid: np.ndarray, rtol: float) -> float:
    """Follow the branch down the T grid; in the first interval where ``beta lambda_max - 1``
    changes sign, find the crossing by Brent's method (scipy ``brentq``, relative tolerance
    ``rtol``; a bisection needed ~3x the self-consistent solves). Each solve starts from the
    solution at the nearest temperature above it on the stable side (the branch is followed, not
    re-found)."""
    N, n = prob.shape
    m = np.zeros((N, n))
    prev_T, prev_m, prev_val = None, None, None
    for Tg in grid:
        m = prob.solve(1.0 / Tg, hv, m)
        val_g = prob.top_eig(1.0 / Tg, hv, m) / Tg - 1.0
        if val_g >= 0:
            if prev_T is None:
                return float(Tg)
            stable = {float(prev_T): prev_m}          # T -> solution, on the stable side
            known = {float(Tg): val_g, float(prev_T): prev_val}   # the bracket's ends, as scanned

            def excess(T: float) -> float:
                if T in known:                        # not solved again (an iterative eigenvalue
                    return known[T]                   # near 0 could change sign on a re-solve)
                start = stable[min((t for t in stable if t >= T), default=max(stable))]
                mm = prob.solve(1.0 / T, hv, start)
                val = prob.top_eig(1.0 / T, hv, mm) / T - 1.0
                if val < 0:
                    stable[T] = mm
                return val

            return float(brentq(excess, float(Tg), float(prev_T), xtol=1e-300, rtol=max(rtol, 1e-15)))
        prev_T, prev_m, prev_val = Tg, m, val_g
    return float("nan")
