"""Closed forms: ``solve(H, T, method="analytic")`` and the exact formulas behind it.

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1,
beta = 1/T. O(n) spins are ``S = m sigma`` with sigma a unit vector of R^n. Partition functions
of continuous spins use the surface (Lebesgue) measure of the unit sphere S^{n-1}, of area
``A_n = 2 pi^{n/2} / Gamma(n/2)`` (A_3 = 4 pi); Ising (n = 1) uses the counting measure (A_1 = 2).

Defined here
------------
* :func:`on_spin_in_field`: one O(n) spin in a field (Langevin for n = 3, tanh for n = 1).
* :func:`heisenberg_chain`: the open O(n) chain without field (any n >= 2, bond-dependent J).
* :func:`solve_analytic`: ``method="analytic"`` for the structures that have a closed form.

Re-exported from their own modules (one definition each)
--------------------------------------------------------
* :mod:`spinsim.special`: :func:`bessel_ratio`, :func:`log_bessel_i`, :func:`log_sphere_area`.
* :mod:`spinsim.probe`: :func:`two_candidate_log_odds`, :func:`level_crossing_field`.
* :mod:`spinsim.solvers.mean_field`: :class:`MeanField`, :func:`mean_field`.
* :mod:`spinsim.solvers.kaufman`: :func:`kaufman_log_z`, :func:`kaufman_thermo` (Kaufman's
  exact periodic L x M square-lattice Ising model).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..directions import projection_direction
from ..hamiltonian import Hamiltonian, Heisenberg, Identity
from ..probe import level_crossing_field, two_candidate_log_odds
from ..result import Result
from ..special import bessel_ratio, log_bessel_i, log_sphere_area, log_z1, ratio_and_slope
from . import register
from .kaufman import kaufman_log_z, kaufman_thermo
from .mean_field import MeanField, mean_field

__all__ = [
    "bessel_ratio", "log_bessel_i", "log_sphere_area", "on_spin_in_field", "heisenberg_chain",
    "two_candidate_log_odds", "level_crossing_field", "MeanField", "mean_field",
    "kaufman_log_z", "kaufman_thermo", "solve_analytic",
]


def _check_n(n: Any, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"number of spin components n must be an integer >= {minimum}, got {n!r}")
    return int(n)



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
    R, Rk, dR = ratio_and_slope(n, kappa)
    return {
        "projection": m * R,
        "energy": -m * b * R,
        "heat_capacity": kappa ** 2 * dR,
        "log_Z": log_sphere_area(n) + log_z1(n, kappa),
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
    R, _, dR = ratio_and_slope(n, Kb)
    return {
        "log_Z": N * log_sphere_area(n) + log_z1(n, Kb).sum(axis=1),
        "energy": -(R * J[None, :]).sum(axis=1),
        "heat_capacity": (Kb ** 2 * dR).sum(axis=1),
        "bond_correlation": R,
    }



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
    R, Rk, dR = ratio_and_slope(n, kappa)
    phat = phi / b if b > 0 else np.zeros(n)
    if direction is None:
        u, label = (phat, "local field direction phi/|phi|") if b > 0 else (None, None)
    else:
        U, label = projection_direction(H, direction)
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
        log_Z=-beta * E_c + log_sphere_area(n) + log_z1(n, kappa), meta=meta,
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
    U, label = projection_direction(H, direction)
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
