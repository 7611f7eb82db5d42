"""The reduced spin space: the exact Monte Carlo state of a low-rank O(n) Hamiltonian.

``H = -sum_{i!=j} W_ij S_i^T M_ij S_j - sum_i h_i . S_i`` with ``S_i = m_i sigma_i`` (sigma_i a
unit vector of R^n, m_i > 0 its length) and a low-rank coupling: ``M = A B^T`` (LowRank) or
``M_ij = A_i B_j^T`` (SiteLowRank, a rotary head). Every coupling direction lies in
``span(A, B)`` (``span(A_i, B_j)`` over all sites for SiteLowRank), with an orthonormal basis Q
(n, d), d <= 2r, shared by all sites. Site i also sees its own field h_i, and a measurement sees
its projection direction u_i (e.g. the prompt axis): let F_i (n, k_x) be an orthonormal basis of
the part of span(h_i, u_i) orthogonal to Q (completed to the same k_x on every site). The site's
visible frame is ``U_i = [Q, F_i]`` (n, k), k = d + k_x, and its visible coordinates
``x_i = U_i^T S_i`` (k,). The energy is exact in them: ``S_i^T A_i B_j^T S_j =
x_i^T (U_i^T A_i)(U_j^T B_j)^T x_j`` with ``U_i^T A_i = [Q^T A_i; 0]`` (the same k-dimensional
low-rank coupling on every site: F_i is orthogonal to every coupling direction), and
``h_i . S_i = (U_i^T h_i) . x_i`` (h_i lies in span(U_i)).

The measure (derivation). The uniform measure on the unit sphere of R^n, written
``sigma = U_i p + eta`` with p in R^k and eta in the n_h = n - k dimensional complement, is
``delta(|p|^2 + |eta|^2 - 1) dp d eta``; in polar coordinates eta = rho e,
``d eta = rho^(n_h - 1) d rho de``, and integrating rho against the delta function
(``delta(rho^2 - (1 - |p|^2)) = delta(rho - sqrt(1 - |p|^2)) / (2 rho)``) leaves
``(1 - |p|^2)^((n_h - 2)/2) dp`` on the unit ball |p| < 1, with e uniform on the hidden sphere and
independent of p. With lengths, x_i = m_i p_i: ``(m_i^2 - |x_i|^2)^((n - k - 2)/2) dx_i`` on
|x_i| < m_i (a constant factor m_i^(2 - n) apart). Since H depends on the x_i alone, the
Boltzmann law of the x_i is ``prod_i (m_i^2 - |x_i|^2)^((n - k - 2)/2) exp(-beta H(x)) dx``,
and given the x_i the hidden parts ``eta_i = sqrt(m_i^2 - |x_i|^2) e_i`` are independent and
isotropic. The Monte Carlo moves (heat bath, Metropolis, over-relaxation; :mod:`.kernels.moves`)
are the full-space moves projected exactly onto this law.

Observables. The energy and the projections ``m.u = (1/N) sum_i S_i . u_i`` are exact in the
visible coordinates. The magnetisation ``m = (1/N_free) sum_i S_i`` needs the hidden parts; they
are sampled at measurement time, exactly in law (:mod:`.kernels.hidden`): with E (n, D_E) an
orthonormal basis of span(F_1 .. F_N) (orthogonal to Q, D_E <= 2 N) and C_i = E^T F_i, the
hidden part of site i splits into a Gaussian direction of the (D_E - k_x)-dimensional
``E cap F_i^perp`` and a part in the common complement of ``[Q, E]`` (n_c = n - d - D_E
dimensions), shared by all sites, where the sum of the independent isotropic pieces needs only
its norm. So one measurement costs O(N D_E) draws, and the mean magnetisation vector is the
exact conditional mean ``Q sum x_Q + E sum C_i x_F`` lifted once at the end.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.linalg

from .coupling import CODE_LOWRANK, CODE_SITE_LOWRANK
from .hamiltonian import Hamiltonian, Heisenberg
from .reduction import span_basis

__all__ = ["ReducedSpace", "reduced_space", "MIN_FULL_COMP", "NotReducibleError"]

#: the smallest n that is reduced: for n <= 4 the full-space Metropolis proposal is a ball draw
#: (kernels.moves), whose projection is not written; such spins gain nothing from a reduction
MIN_FULL_COMP = 5

#: a direction whose part outside the span already built is below ``RTOL`` of its norm counts as
#: inside it (the dropped part changes an energy by at most RTOL |h_i| m_i)
RTOL = 1e-10


class NotReducibleError(ValueError):
    """A reduced state space was asked for (``reduce=True``) where none applies or helps."""


@dataclass(frozen=True)
class ReducedSpace:
    """Per-site visible frames ``U_i = [Q, F_i]`` (module docstring).

    Q (n, d) the coupling span; E (n, D_E) the span of the extra directions (orthogonal to Q);
    C (N, D_E, k_x) every site's extra frame vectors in E coordinates (orthonormal columns,
    ``F_i = E C_i``); n_comp the full dimension n."""

    Q: np.ndarray
    E: np.ndarray
    C: np.ndarray
    n_comp: int

    @property
    def d(self) -> int:
        """Dimension of the coupling span."""
        return int(self.Q.shape[1])

    @property
    def k(self) -> int:
        """Visible coordinates per site, d + k_x."""
        return self.d + int(self.C.shape[2])

    @property
    def n_hidden(self) -> int:
        """Hidden components per site, n - k."""
        return self.n_comp - self.k

    @property
    def n_common(self) -> int:
        """Dimension of the complement of [Q, E], shared by every site's hidden part."""
        return self.n_comp - self.d - int(self.E.shape[1])

    def visible(self, X: np.ndarray) -> np.ndarray:
        """Visible coordinates ``U_i^T X_i``: X (..., N, n) -> (..., N, k)."""
        X = np.asarray(X, dtype=np.float64)
        xq = X @ self.Q
        xf = np.einsum("...ie,iea->...ia", X @ self.E, self.C)
        return np.ascontiguousarray(np.concatenate([xq, xf], axis=-1))

    def residual(self, X: np.ndarray) -> float:
        """Largest ``|X_i - U_i U_i^T X_i| / |X_i|`` over the sites of X (N, n) (0 for zero rows):
        how far the site vectors are from their frames."""
        X = np.asarray(X, dtype=np.float64)
        x = self.visible(X)
        back = x[:, :self.d] @ self.Q.T + np.einsum("ia,iea,ne->in", x[:, self.d:], self.C, self.E)
        nrm = np.linalg.norm(X, axis=1)
        res = np.linalg.norm(X - back, axis=1)
        ok = nrm > 0
        return float(np.max(res[ok] / nrm[ok])) if ok.any() else 0.0

    def lift_mean(self, y: np.ndarray) -> np.ndarray:
        """Vectors in the measurement basis [Q, E] (..., d + D_E) -> R^n (..., n)."""
        y = np.asarray(y, dtype=np.float64)
        return y[..., :self.d] @ self.Q.T + y[..., self.d:] @ self.E.T


#: coupling spans already computed, per coupling object (couplings are immutable; a sweep solves
#: one coupling at many fields)
_SPANS: "weakref.WeakKeyDictionary[Any, np.ndarray]" = weakref.WeakKeyDictionary()

#: a column whose part outside the span already built is below SPAN_RTOL of its block's largest
#: column adds no direction
SPAN_RTOL = 1e-12


def _span_of_blocks(blocks: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Orthonormal basis (n, d) of the column span of the blocks (each (n, m)): block by block,
    the part outside the span so far (two projections) by a column-pivoted QR (rank-revealing:
    LAPACK geqp3), keeping the columns with |R_ii| > SPAN_RTOL max column norm. O(n m d) per block
    instead of one SVD of all columns (a SiteLowRank head has 2 N r of them)."""
    Q = np.zeros((n, 0))
    for X in blocks:
        scale = float(np.max(np.linalg.norm(X, axis=0))) if X.size else 0.0
        if scale == 0.0:
            continue
        R = X - Q @ (Q.T @ X)
        R = R - Q @ (Q.T @ R)
        if float(np.max(np.linalg.norm(R, axis=0))) <= SPAN_RTOL * scale:
            continue
        Qb, Rb, _ = scipy.linalg.qr(R, mode="economic", pivoting=True)
        keep = np.abs(np.diag(Rb)) > SPAN_RTOL * scale
        Qb = Qb[:, keep]
        Qb = Qb - Q @ (Q.T @ Qb)
        Qb, _ = np.linalg.qr(Qb)
        Q = np.concatenate([Q, Qb], axis=1)
    return Q


def _coupling_span(H: Hamiltonian) -> np.ndarray | None:
    """Orthonormal basis (n, d) of the coupling directions (span of A, B; of every site's A_i, B_i
    for SiteLowRank), or None for a coupling that is not low rank (Identity, Dense: every direction
    couples). Cached per coupling object."""
    M = H.M
    code = int(M.kernel_arrays().code)
    if code not in (CODE_LOWRANK, CODE_SITE_LOWRANK):
        return None
    Q = _SPANS.get(M)
    if Q is None:
        if code == CODE_LOWRANK:
            A, B = M.factors()
            blocks = [np.concatenate([A, B], axis=1)]
        else:
            blocks = [np.concatenate([a, b], axis=1) for a, b in zip(M.A, M.B)]
        Q = _span_of_blocks(blocks, H.n_comp)
        Q.flags.writeable = False
        _SPANS[M] = Q
    return Q


def _orth_add(cols: list[np.ndarray], v: np.ndarray, rtol: float) -> None:
    """Append to the orthonormal cols the normalised part of v orthogonal to them, unless it is
    below rtol |v| (two Gram-Schmidt passes)."""
    nv = float(np.linalg.norm(v))
    if nv == 0.0:
        return
    rem = v.copy()
    for _ in range(2):
        for c in cols:
            rem -= (c @ rem) * c
    nr = float(np.linalg.norm(rem))
    if nr > rtol * nv:
        cols.append(rem / nr)


def reduced_space(H: Hamiltonian, site_vectors: Sequence[np.ndarray], rtol: float = RTOL) -> ReducedSpace | None:
    """The frames of H's reduced state space, or None where it does not apply or does not help.

    site_vectors: (N, n) arrays each site must see exactly besides the coupling (its field H.h,
    its projection direction, ...). Applies to Heisenberg spins with a low-rank coupling (LowRank,
    SiteLowRank) and n >= ``MIN_FULL_COMP``, when k = d + k_x < n."""
    n, N = H.n_comp, H.n_sites
    if not isinstance(H.spin, Heisenberg) or n < MIN_FULL_COMP:
        return None
    Q = _coupling_span(H)
    if Q is None:
        return None
    d = Q.shape[1]
    site_vectors = [np.asarray(V, dtype=np.float64) for V in site_vectors]
    perp = [V - (V @ Q) @ Q.T for V in site_vectors]
    # the parts outside span(Q) that count (not rounding noise of a vector inside it)
    kept = [P[np.linalg.norm(P, axis=1) > rtol * np.linalg.norm(V, axis=1)] for P, V in zip(perp, site_vectors)]
    stacked = np.concatenate([P.T for P in kept], axis=1) if kept else np.zeros((n, 0))
    E = span_basis(stacked) if stacked.size else np.zeros((n, 0))
    if E.shape[1]:                       # exactly orthogonal to Q (it is, up to rounding)
        E = span_basis(E - Q @ (Q.T @ E))
    D = E.shape[1]
    per_site: list[list[np.ndarray]] = []
    for i in range(N):
        cols: list[np.ndarray] = []
        for P, V in zip(perp, site_vectors):
            nv = np.linalg.norm(V[i])
            if nv > 0 and np.linalg.norm(P[i]) > rtol * nv:
                _orth_add(cols, E.T @ P[i], rtol)
        per_site.append(cols)
    kx = max((len(c) for c in per_site), default=0)
    k = d + kx
    if k < 1 or k >= n:
        return None
    C = np.zeros((N, D, kx))
    for i, cols in enumerate(per_site):
        for e in np.eye(D):              # complete with E's own directions (D >= kx)
            if len(cols) >= kx:
                break
            _orth_add(cols, e, 1e-6)
        if kx:
            C[i] = np.stack(cols, axis=1)
    return ReducedSpace(Q=np.ascontiguousarray(Q), E=np.ascontiguousarray(E), C=C, n_comp=n)


def reduced_prepared(H: Hamiltonian, k: dict[str, Any], space: ReducedSpace) -> dict[str, Any]:
    """The kernel dictionary of :func:`spinsim.solvers.mc.prepare` rewritten in the reduced
    coordinates of ``space``: the coupling restricted to the frames (``[Q^T A; 0]``: a LowRank of
    k components, or a SiteLowRank (N, k, r)), fields and projection directions ``U_i^T v_i``,
    the hidden count ``n_hidden`` and the measurement data ``hidden`` (d, n_common, C)."""
    kk = space.k
    frame = np.concatenate([space.Q, np.zeros((space.n_comp, kk - space.d))], axis=1)
    ka = H.M.restrict(frame).kernel_arrays()
    own = lambda a: np.array(a, dtype=np.float64, order="C", copy=True)   # noqa: E731
    out = dict(k)
    out.update(code=int(ka.code), J=float(ka.J), Mmat=own(ka.Mmat), A=own(ka.A), B=own(ka.B),
               SA=own(ka.SA), SB=own(ka.SB), h=space.visible(k["h"]), U=space.visible(k["U"]),
               V=np.zeros((1, kk)), n_hidden=space.n_hidden,
               hidden=dict(d=space.d, n_common=space.n_common, C=np.ascontiguousarray(space.C)))
    return out


def state_space(H: Hamiltonian, k: dict[str, Any], reduce: bool | None) -> tuple[dict[str, Any], ReducedSpace | None]:
    """The Monte Carlo state space for the kernel dictionary k of ``mc.prepare``: the reduced one
    (``reduce`` None: wherever it applies, True: required, False: never) with the frames seeing
    each site's field and projection direction, or the full one (k unchanged, None).

    Raises NotReducibleError for ``reduce=True`` where no reduction applies (not Heisenberg spins,
    n < ``MIN_FULL_COMP``, a coupling that is not low rank, or k >= n); ValueError for a
    ``reduce`` that is not None or a bool."""
    if reduce is not None and not isinstance(reduce, (bool, np.bool_)):
        raise ValueError(f"reduce must be None (wherever exact and smaller), True or False, got {reduce!r}")
    if reduce is False:
        return k, None
    space = reduced_space(H, [k["h"], k["U"]])
    if space is None:
        if reduce:
            raise NotReducibleError(
                f"reduce=True: no reduced state space for this Hamiltonian ({H.spin.name} spins, n_comp = "
                f"{H.n_comp}, coupling {type(H.M).__name__}); it needs heisenberg spins with n_comp >= "
                f"{MIN_FULL_COMP}, a LowRank or SiteLowRank coupling, and fewer visible coordinates than "
                "n_comp; use reduce=None or False")
        return k, None
    return reduced_prepared(H, k, space), space


def describe(space: ReducedSpace | None, n_comp: int) -> str:
    """One line for ``Result.meta['state_space']``."""
    if space is None:
        return f"full: {n_comp} components per site"
    return (f"reduced: {space.k} visible coordinates per site of {n_comp} ({space.d} coupling span + "
            f"{space.k - space.d} field/direction), {space.n_hidden} hidden components integrated exactly "
            f"(measure (m^2 - |x|^2)^((n-k-2)/2); |m| with the hidden parts sampled)")
