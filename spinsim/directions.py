"""Directions on the sites of a Hamiltonian: field directions of sweeps and projection axes of
observables (one definition for every solver and the sweep engine)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .hamiltonian import Hamiltonian

__all__ = ["resolve_direction", "projection_direction"]

_PROMPT_LABEL = "prompt: u_i = x_i/|x_i| (each site pinned toward its own token)"


def _axes_text(H: Hamiltonian) -> str:
    return "axes " + ", ".join(map(repr, H.axes)) if len(H.axes) else "no axes"


def resolve_direction(H: Hamiltonian, direction: Any = None, normalize: bool = True) -> tuple[np.ndarray, str]:
    """Per-site directions ``u_i`` (n_sites, n_comp) and a label. Frozen sites get ``u_i = 0``.

    ``direction``: the name of an axis H declares (``H.axes``, e.g. ``"prompt"``: a head's
    x_i/|x_i|; rows normalised to unit length, zero rows stay zero), ``"field"`` (h_i/|h_i|),
    ``"top_eigenvector"`` of M_s (sign fixed: largest component positive), an (n_comp,) vector
    for every site or an (n_sites, n_comp) array; None: ``"prompt"`` when H declares it, else
    field when a free site has a field, else top eigenvector. ``normalize``: rows of a user array
    are scaled to unit length (a field direction, as sweeps need) or used as given (``False``: a
    projection m_u = (1/N) sum S_i.u_i, as ``Result.projection`` uses), and an all-zero direction
    is refused only when normalising. Raises ValueError naming the allowed directions (the
    declared axes included) for an unknown name or a bad array.
    """
    N, n = H.n_sites, H.n_comp
    if direction is None:
        direction = ("prompt" if "prompt" in H.axes else
                     "field" if np.any(H.h[~H.frozen] != 0) else "top_eigenvector")
    if isinstance(direction, str):
        if direction in H.axes:
            U = np.array(H.axes[direction], dtype=np.float64)
            nrm = np.linalg.norm(U, axis=1, keepdims=True)
            U = np.divide(U, nrm, out=np.zeros_like(U), where=nrm > 0)
            label = (_PROMPT_LABEL if direction == "prompt" else
                     f"axis {direction}: u_i = H.axes[{direction!r}] row i, normalised")
        elif direction == "prompt":
            raise ValueError("direction 'prompt' needs a Hamiltonian that declares a 'prompt' axis (a head "
                             f"Hamiltonian from spinsim.models); this one declares {_axes_text(H)}; allowed "
                             "otherwise: 'field', 'top_eigenvector', an array")
        elif direction == "field":
            nrm = np.linalg.norm(H.h, axis=1, keepdims=True)
            nrm[H.frozen] = 0.0
            if not np.any(nrm > 0):
                raise ValueError("direction 'field' needs a Hamiltonian with a nonzero field on a free site; "
                                 "allowed otherwise: 'top_eigenvector', an (n_comp,) or (n_sites, n_comp) array")
            U = np.divide(H.h, nrm, out=np.zeros_like(H.h), where=nrm > 0)
            label = "field: u_i = h_i/|h_i| (H's own field direction)"
        elif direction == "top_eigenvector":
            w, v = np.linalg.eigh(H.M_sym)
            top = v[:, -1]
            top = top * (1.0 if top[np.argmax(np.abs(top))] >= 0 else -1.0)
            U = np.broadcast_to(top, (N, n)).copy()
            label = f"top_eigenvector: top eigenvector of M_s (eigenvalue {w[-1]:.6g}), every site"
        else:
            raise ValueError(f"unknown direction {direction!r}; allowed: 'field', 'top_eigenvector', an axis H "
                             f"declares ({_axes_text(H)}), an ({n},) vector or an ({N}, {n}) array")
    else:
        d = np.asarray(direction, dtype=np.float64)
        if d.shape == (n,):
            U = np.broadcast_to(d, (N, n)).copy()
            label = "vector: one user/candidate direction on every site"
        elif d.shape == (N, n):
            U = d.copy()
            label = "per-site: user directions u_i"
        else:
            raise ValueError(f"direction array must have shape ({n},) or ({N}, {n}), got {d.shape}")
        if not np.all(np.isfinite(U)):
            raise ValueError("direction has a non-finite entry")
        if normalize:
            nrm = np.linalg.norm(U, axis=1, keepdims=True)
            U = np.divide(U, nrm, out=np.zeros_like(U), where=nrm > 0)
    U[H.frozen] = 0.0
    if normalize and not np.any(U != 0):
        raise ValueError("direction is zero on every free site: the added field would do nothing")
    return np.ascontiguousarray(U), label


def projection_direction(H: Hamiltonian, direction: Any = None) -> tuple[np.ndarray, str | None]:
    """Projection directions u_i (n_sites, n_comp) of ``Result.projection`` and their label.

    ``direction`` as :func:`resolve_direction`, arrays used as given (not normalised; zero on
    frozen sites). Default (None): the field direction when a free site has a field, else no
    projection: zeros and the label None. The one rule every solver (exact, analytic, mc) uses.
    """
    if direction is None:
        if not np.any(H.h[~H.frozen] != 0):
            return np.zeros((H.n_sites, H.n_comp)), None
        direction = "field"
    return resolve_direction(H, direction, normalize=False)
