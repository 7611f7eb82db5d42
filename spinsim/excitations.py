"""Harmonic excitations of O(n) spins: tangent-space Hessian, Goldstone count, spin-wave gap.

``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i . S_i`` (k_B = 1), ``S_k = m_k sigma_k`` with
unit sigma_k. Around a stationary state (every free phi_k parallel to sigma_k) the energy to
second order in the tangent angles is ``E = E_0 + 1/2 t^T K t`` (:func:`excitations` derives K).

Words: the *spin-wave gap* is the smallest Hessian eigenvalue above the zero tolerance (energy per
radian^2); the *Goldstone count* is the number of zero modes. Neither is the *level gap*
``E_1 - E_0`` between energy levels (``Result.gap`` of ``method="exact"``/``"ground"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .hamiltonian import Hamiltonian, Heisenberg
from .reduction import span_basis
from .validation import check_positive_float, check_positive_int

__all__ = ["Excitations", "excitations"]


@dataclass
class Excitations:
    """Harmonic excitations around a stationary state of O(n) spins (see :func:`excitations`).

    eigenvalues (n_modes,) the lowest Hessian eigenvalues, ascending, energy units per
    radian^2 (``E = E_0 + 1/2 sum lambda theta^2`` along each normal mode); n_zero_modes
    (|lambda| <= zero_tol, the Goldstone count); n_negative_modes (lambda < -zero_tol: not a
    minimum); spin_wave_gap: the smallest eigenvalue > zero_tol (NaN if not resolved);
    zero_tol = zero_rtol * scale, scale = spectral radius of the Hessian; complete: whether the
    counts cover the whole spectrum; flat_eigenvalues (n_free,) ``m_k phi_k . sigma_k`` with
    flat_multiplicity each (modes orthogonal to span(A, B, sigma_k), analytically known);
    n_tangent = n_free (n - 1); n_reduced the dimension diagonalised; max_torque
    ``max_k |phi_k - (phi_k.sigma_k) sigma_k| / max_k |phi_k|`` (0 at a stationary point).
    """

    eigenvalues: np.ndarray
    n_zero_modes: int
    n_negative_modes: int
    spin_wave_gap: float
    zero_tol: float
    scale: float
    complete: bool
    flat_eigenvalues: np.ndarray
    flat_multiplicity: int
    n_tangent: int
    n_reduced: int
    max_torque: float
    method: str

    @property
    def is_minimum(self) -> bool:
        return self.n_negative_modes == 0

    def as_meta(self) -> dict[str, Any]:
        """Plain values for ``Result.meta`` / HDF5 attributes."""
        return {"modes_eigenvalues": [float(x) for x in self.eigenvalues],
                "n_zero_modes": int(self.n_zero_modes), "n_negative_modes": int(self.n_negative_modes),
                "spin_wave_gap": float(self.spin_wave_gap), "modes_zero_tol": float(self.zero_tol),
                "modes_scale": float(self.scale), "modes_complete": bool(self.complete),
                "modes_method": self.method, "modes_max_torque": float(self.max_torque),
                "modes_n_tangent": int(self.n_tangent), "modes_n_reduced": int(self.n_reduced)}


def _factors(M: Any, free: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A0, B0, Ak, Bk)``: factors whose span holds every coupled direction, A0, B0 (n, m), and
    the factors each free site couples through, Ak, Bk (1 or n_free, n, r): one shared pair for a
    single M (``factors()``), every free site's own for a position-dependent coupling
    (``M.n_sites`` set: :class:`~spinsim.coupling.SiteLowRank`, ``M_kl = A_k B_l^T``)."""
    if M.n_sites is not None:
        A0, B0 = M.span_factors()
        return A0, B0, M.A[free], M.B[free]
    A0, B0 = M.factors()
    return A0, B0, A0[None], B0[None]


def excitations(H: Hamiltonian, S: Any = None, n_modes: int = 16, zero_rtol: float = 1e-6,
                method: str = "auto", dense_max: int = 2500) -> Excitations:
    """Hessian of H on the tangent space of the product of spheres at the state S (O(n) spins).

    Derivation. Write ``S_k = m_k (sigma_k cos|t_k| + t_k/|t_k| sin|t_k|)`` with the tangent
    angle vector ``t_k`` orthogonal to sigma_k, so ``S_k = m_k sigma_k (1 - |t_k|^2/2) + m_k t_k
    + O(t^3)``. H is quadratic, ``dH = -sum_k phi_k . dS_k - sum_{i!=j} W_ij dS_i^T M dS_j``;
    at a stationary point (phi_k parallel to sigma_k) the linear term leaves only the curvature
    piece ``+ sum_k m_k (phi_k.sigma_k) |t_k|^2 / 2``, hence ``E = E_0 + 1/2 t^T K t`` with
        K_kk = m_k (phi_k . sigma_k) 1_tangent,
        K_kl = -m_k m_l P_k (W_kl M + W_lk M^T) P_l   (k != l, P_k = 1 - sigma_k sigma_k^T).
    Frozen sites have no tangent space (they enter through phi). A position-dependent coupling
    (SiteLowRank, ``M_kl = A_k B_l^T``) puts ``M_kl`` in place of M and ``M_lk^T`` of M^T; the
    reduction below then uses the span of every site's factors.

    Reduction. With ``M = A B^T`` and U an orthonormal basis of span(A, B) (u columns), a
    tangent vector of site k orthogonal to U does not couple (``t^T M t' = (A^T t).(B^T t')``),
    so for ``u + 1 < n`` each site contributes ``n - 1 - u`` flat modes of eigenvalue
    ``m_k phi_k . sigma_k`` (analytic) and u modes in ``s_k^perp`` inside ``span(U, e_k)``,
    e_k the unit part of sigma_k orthogonal to U. The reduced matrix (n_free u) is
    diagonalised densely (``eigvalsh``) when ``n_free u <= dense_max`` (or method="dense"),
    otherwise its lowest n_modes come from ARPACK (``eigsh``, which="SA") with a matrix-free
    O(n_free u r + nnz(W) r) product. Identity/Dense couplings use R^n (no flat modes).

    Zero modes: ``|lambda| <= zero_rtol * scale``, scale = spectral radius of K (largest
    |lambda|, including flat modes). Goldstone counts to expect: isotropic ferro (aligned) on a
    connected graph: n - 1; coplanar non-collinear (XY / 120-degree) state with isotropic M:
    2n - 3 (= dim O(n) - dim O(n-2)). Parameters: S (n_sites, n_comp) with lengths (default
    ``H.state``); n_modes >= 1; method "auto" | "dense" | "eigsh".
    """
    if not isinstance(H.spin, Heisenberg):
        raise ValueError(f"excitations need heisenberg spins; {H.spin.name!r} spins have no tangent "
                         "space (use method='exact' for their level gaps)")
    n_modes = check_positive_int("n_modes", n_modes, 1)
    zero_rtol = check_positive_float("zero_rtol", zero_rtol)
    if method not in ("auto", "dense", "eigsh"):
        raise ValueError(f"unknown method {method!r}; allowed: 'auto', 'dense', 'eigsh'")
    if S is None:
        if H.state is None:
            raise ValueError("excitations need a state S (n_sites, n_comp); H has no state")
        S = H.state
    S = np.asarray(S, dtype=np.float64)
    if S.shape != (H.n_sites, H.n_comp):
        raise ValueError(f"S must have shape ({H.n_sites}, {H.n_comp}), got {S.shape}")
    H.check_state(S)
    n = H.n_comp
    free = np.flatnonzero(~H.frozen)
    Nf = free.size
    m = H.lengths[free]
    phi_all = H.local_fields(S)
    sigma = (S / H.lengths[:, None])[free]
    sigma /= np.linalg.norm(sigma, axis=1, keepdims=True)
    phi = phi_all[free]
    c = np.sum(phi * sigma, axis=1)
    diag = m * c
    pmax = float(np.max(np.linalg.norm(phi, axis=1)))
    torque = float(np.max(np.linalg.norm(phi - c[:, None] * sigma, axis=1)) / pmax) if pmax > 0 else 0.0

    A0, B0, Ak, Bk = _factors(H.M, free)
    # factors narrower than R^n (a low-rank M) can leave tangent directions that do not couple
    narrow = A0.shape[1] + B0.shape[1] < 2 * n or Ak.shape[0] > 1
    U = span_basis(np.concatenate([A0, B0], axis=1), full_shortcut=True) if narrow else None
    if U is not None and U.shape[1] + 1 < n:
        u = U.shape[1]
        alpha = sigma @ U
        beta = np.linalg.norm(sigma - alpha @ U.T, axis=1)
        s = np.concatenate([alpha, beta[:, None]], axis=1)
        zero = np.zeros((Ak.shape[0], 1, Ak.shape[2]))
        At = np.concatenate([np.einsum("nu,knr->kur", U, Ak), zero], axis=1)
        Bt = np.concatenate([np.einsum("nu,knr->kur", U, Bk), zero], axis=1)
        n_flat = n - 1 - u
    else:
        s, At, Bt, n_flat = sigma, Ak, Bk, 0
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    dim = s.shape[1]
    dt = dim - 1
    # Householder: H_k = 1 - 2 w w^T / w.w maps s_k to -+e_last; its other columns span s_k^perp
    sg = np.where(s[:, -1] >= 0, 1.0, -1.0)
    wv = s.copy()
    wv[:, -1] += sg
    ww = np.sum(wv * wv, axis=1)

    def tangent_T(X: np.ndarray) -> np.ndarray:      # (1 or Nf, dim, r) -> (Nf, dt, r): T_k^T X_k
        wX = np.einsum("kd,kdr->kr", wv, np.broadcast_to(X, (Nf,) + X.shape[1:]))
        out = X - (2.0 / ww)[:, None, None] * wv[:, :, None] * wX[:, None, :]
        return out[:, :-1, :]

    Wf = H.W[free][:, free] if sp.issparse(H.W) else H.W[np.ix_(free, free)]
    Wm = (sp.diags(m) @ Wf @ sp.diags(m)).tocsr() if sp.issparse(Wf) else m[:, None] * Wf * m[None, :]
    nred = Nf * dt
    use_dense = method == "dense" or (method == "auto" and nred <= dense_max)
    flat_max = float(np.max(np.abs(diag))) if n_flat else 0.0
    if nred == 0:
        lam = np.zeros(0)
        method_used, complete, lam_max = "none", True, 0.0
    elif use_dense:
        Wd = Wm.toarray() if sp.issparse(Wm) else Wm
        Fs = tangent_T(At).reshape(nred, -1)     # A^T t for the tangent basis of each site
        Gs = tangent_T(Bt).reshape(nred, -1)     # B^T t
        X = -(Fs @ Gs.T).reshape(Nf, dt, Nf, dt) * Wd[:, None, :, None]
        K = (X + X.transpose(2, 3, 0, 1)).reshape(nred, nred)
        K[np.diag_indices(nred)] += np.repeat(diag, dt)
        lam = np.linalg.eigvalsh(K)
        method_used, complete = "dense", True
        lam_max = float(np.max(np.abs(lam)))
    else:
        WmT = Wm.T.tocsr() if sp.issparse(Wm) else Wm.T
        if At.shape[0] == 1:
            # one factor pair for every site: F_k = T_k^T At with T_k = H_k[:, :-1] (H_k the
            # Householder reflection above), so x_k -> At^T T_k x_k and back through H_k in O(dim)
            # per site plus two (Nf, dim) x (dim, r) products: no (Nf, dt, r) array is read
            # per product (27 800 products of 4 MB each were 13 s of the GPT-2 all-heads study)
            A1, B1 = At[0], Bt[0]
            c2 = 2.0 / ww

            def matvec(x: np.ndarray) -> np.ndarray:
                x = x.reshape(Nf, dt)
                z = np.zeros((Nf, dim))
                z[:, :-1] = x
                z -= (c2 * np.sum(wv * z, axis=1))[:, None] * wv            # z_k = T_k x_k
                v = (Wm @ (z @ B1)) @ A1.T + (WmT @ (z @ A1)) @ B1.T
                v -= (c2 * np.sum(wv * v, axis=1))[:, None] * wv            # H_k v_k
                return (diag[:, None] * x - v[:, :-1]).reshape(-1)
        else:
            # F_k = T_k^T A_k, G_k = T_k^T B_k side by side: (Nf, dt, 2r)
            FG = np.ascontiguousarray(np.concatenate([tangent_T(At), tangent_T(Bt)], axis=2))
            r2 = At.shape[2]

            def matvec(x: np.ndarray) -> np.ndarray:
                # [f_k | g_k] = x_k^T [F_k | G_k]; y_k = diag_k x_k - F_k (Wm g)_k - G_k (Wm^T f)_k
                x = x.reshape(Nf, dt)
                fg = np.matmul(x[:, None, :], FG)[:, 0, :]
                ab = np.concatenate([Wm @ fg[:, r2:], WmT @ fg[:, :r2]], axis=1)
                y = diag[:, None] * x - np.matmul(FG, ab[:, :, None])[:, :, 0]
                return y.reshape(-1)

        op = spla.LinearOperator((nred, nred), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(nred)
        kk = min(n_modes, nred - 1)
        ncv = min(nred, max(2 * kk + 1, 40))
        lam = np.sort(spla.eigsh(op, k=kk, which="SA", v0=v0, ncv=ncv, tol=0, return_eigenvectors=False))
        top = spla.eigsh(op, k=1, which="LM", v0=v0, tol=1e-8, return_eigenvectors=False)
        lam_max = float(max(np.max(np.abs(top)), np.max(np.abs(lam))))
        method_used, complete = "eigsh", False
    scale = max(lam_max, flat_max)
    scale = scale if scale > 0 else 1.0
    zt = zero_rtol * scale
    flat_vals = np.repeat(diag, min(n_flat, n_modes)) if n_flat else np.zeros(0)
    merged = np.sort(np.concatenate([lam, flat_vals]))[:n_modes]
    n_zero = int(np.sum(np.abs(lam) <= zt) + n_flat * np.sum(np.abs(diag) <= zt))
    n_neg = int(np.sum(lam < -zt) + n_flat * np.sum(diag < -zt))
    if not complete and lam.size and lam[-1] > zt:
        complete = True          # the lowest eigenvalues include the first positive one
    pos = np.concatenate([lam[lam > zt], diag[diag > zt] if n_flat else np.zeros(0)])
    spin_wave_gap = float(np.min(pos)) if (complete and pos.size) else float("nan")
    return Excitations(eigenvalues=merged, n_zero_modes=n_zero, n_negative_modes=n_neg,
                       spin_wave_gap=spin_wave_gap, zero_tol=zt, scale=scale, complete=complete,
                       flat_eigenvalues=diag, flat_multiplicity=n_flat, n_tangent=Nf * (n - 1),
                       n_reduced=nred, max_torque=torque, method=method_used)
