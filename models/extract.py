"""Write every head of a model to HDF5 (``spinsim extract``), with the spectrum of its symmetric
coupling and a ferro/antiferro classification.

File layout (SPEC section 6)::

    /                       root attrs: spinsim conventions, model_id, weights_sha256, family,
                            n_layers, n_heads, n_kv_heads, d_model, d_head, o_slice, rotary
    /layer (layer), /head (head), /eig (eig)       dimension scales
    /heads/L{l}H{h}/        W_Q, W_K, W_V (d_model, d_head), W_O (d_head, d_model), b_Q, b_K, b_V
                            (d_head,), eigenvalues (eig,) of M_s = (M + M^T)/2, M = scale W_Q W_K^T;
                            attrs layer, head, scale, rotary, kv_head, ferro_class, ferro_index,
                            symmetric_share
    /spectrum/lambda_max, lambda_min, ferro_index, trace, frobenius, symmetric_share   (layer, head)
    /spectrum/ferro_class   (layer, head) strings 'ferro' | 'antiferro'
    /spectrum/eigenvalues   (layer, head, eig) descending
    /rotary/inv_freq        (freq,) = (d_rot/2,), d_rot <= d_head   Llama family only
    /b_O                    (layer, d_model) the output projection's bias (per layer)
    /attention_window       (layer,) sliding attention window of each layer in positions (0: none)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from spinsim.io import REQUIRED, atomic_h5, root_attrs, stored, write_axis, write_record, write_values

from .heads import HeadSet, classify_spectrum, head_label, symmetric_share

__all__ = ["Spectra", "spectra", "write_heads"]

#: per-head weights: name -> (dims, long name); row-vector convention q = x W_Q + b_Q, out = z W_O
_HEAD_ARRAYS = {
    "W_Q": (("d_model", "d_head"), "query weights"), "W_K": (("d_model", "d_head"), "key weights"),
    "W_V": (("d_model", "d_head"), "value weights"), "W_O": (("d_head", "d_model"), "output weights"),
    "b_Q": (("d_head",), "query bias"), "b_K": (("d_head",), "key bias"), "b_V": (("d_head",), "value bias"),
}


@dataclass
class Spectra:
    """Spectra of every head's symmetric coupling (offset 0). Arrays (n_layers, n_heads[, 2 d_head])."""

    eigenvalues: np.ndarray = stored(("layer", "head", "eig"), "score units", "eigenvalues of M_s, descending",
                                     default=REQUIRED)
    lambda_max: np.ndarray = stored(("layer", "head"), "score units", "largest eigenvalue of M_s",
                                    default=REQUIRED)
    lambda_min: np.ndarray = stored(("layer", "head"), "score units", "smallest eigenvalue of M_s",
                                    default=REQUIRED)
    ferro_index: np.ndarray = stored(("layer", "head"), "dimensionless", "tr(M_s) / sum|lambda|",
                                     default=REQUIRED)
    ferro_class: np.ndarray = stored(("layer", "head"), "", "'ferro' | 'antiferro'",
                                     default=REQUIRED)
    trace: np.ndarray = stored(("layer", "head"), "score units", "tr(M_s)",
                               default=REQUIRED)
    frobenius: np.ndarray = stored(("layer", "head"), "score units", "||scale W_Q W_K^T||_F",
                                   default=REQUIRED)
    symmetric_share: np.ndarray = stored(("layer", "head"), "dimensionless",
                                         "||J_s||_F^2 / ||J||_F^2, J = scale W_Q W_K^T (rotary heads: offset 0), "
                                         "J_s = (J + J^T)/2; 1 symmetric, 1/2 no symmetric excess, 0 antisymmetric",
                                         default=REQUIRED)

    def write_group(self, g: h5py.Group) -> None:
        """Write into ``g`` (scales ``layer``, ``head``, ``eig`` at the file's root are attached
        where present): one writer for ``spinsim extract`` and ``spinsim gaps``."""
        g.attrs["classification"] = ("ferro (cooperative) if lambda_max(M_s) >= |lambda_min(M_s)| else "
                                     "antiferro (antagonistic); M_s = (M + M^T)/2, M = scale W_Q W_K^T; "
                                     "ferro_index = tr(M_s) / sum |lambda|")
        write_record(g, self)


def spectra(heads: HeadSet) -> Spectra:
    """Eigenvalues of ``M_s = (M + M^T)/2``, ``M = scale W_Q W_K^T`` for every head, the
    classification of :func:`~spinsim.models.heads.classify_spectrum`, and the symmetric share
    of :func:`~spinsim.models.heads.symmetric_share` (all at offset 0 for rotary heads: the
    coupling of a query on its own position, ``J(0)``)."""
    L, H, dh = heads.n_layers, heads.n_heads, heads.d_head
    ev = np.zeros((L, H, 2 * dh))
    cls = np.empty((L, H), dtype=object)
    fi = np.zeros((L, H))
    fro = np.zeros((L, H))
    share = np.zeros((L, H))
    C = np.zeros((2 * dh, 2 * dh))
    C[:dh, dh:] = C[dh:, :dh] = 0.5 * np.eye(dh)
    for l in range(L):
        # batched form of symmetric_spectrum over the layer's heads: M_s = Q (R C R^T) Q^T
        A = heads.scale[l] * heads.W_Q[l].astype(np.float64)                # (H, d, dh)
        B = heads.W_K[l].astype(np.float64)
        U = np.concatenate([A, B], axis=2)                                 # (H, d, 2dh)
        try:    # U = Q R with R^T R = U^T U: Cholesky of the Gram matrix (fast; exact in exact arithmetic)
            R = np.swapaxes(np.linalg.cholesky(np.swapaxes(U, 1, 2) @ U), 1, 2)
        except np.linalg.LinAlgError:   # rank-deficient head: QR
            import scipy.linalg as sl
            R = np.stack([sl.qr(u, mode="r")[0][: 2 * dh] for u in U])
        small = R @ C @ np.swapaxes(R, 1, 2)
        ev[l] = np.linalg.eigvalsh(0.5 * (small + np.swapaxes(small, 1, 2)))[:, ::-1]
        AtA, BtB = np.swapaxes(A, 1, 2) @ A, np.swapaxes(B, 1, 2) @ B
        fro[l] = np.sqrt(np.sum(AtA * BtB, axis=(1, 2)))                    # ||A B^T||_F
        share[l] = symmetric_share(A, B)
        for h in range(H):
            cls[l, h], fi[l, h] = classify_spectrum(ev[l, h])
    return Spectra(ev, ev.max(-1), ev.min(-1), fi, cls.astype(str), ev.sum(-1), fro, share)


def write_heads(path: str | os.PathLike, heads: HeadSet, spec: Spectra | None = None, **attrs: Any) -> None:
    """Write the extraction file (layout in the module docstring), atomically."""
    spec = spectra(heads) if spec is None else spec
    L, H = heads.n_layers, heads.n_heads
    with atomic_h5(path) as f:
        for k, v in root_attrs("extract", model_id=heads.model_id, weights_sha256=heads.weights_sha256,
                               family=heads.family, n_layers=L, n_heads=H, n_kv_heads=heads.n_kv_heads,
                               d_model=heads.d_model, d_head=heads.d_head, o_slice=heads.o_slice,
                               rotary=heads.rotary, row_vector_convention="q = x W_Q + b_Q; out = z W_O",
                               coupling="M = scale * W_Q @ W_K.T (query row, key column)", **attrs).items():
            f.attrs[k] = v
        write_axis(f, "layer", np.arange(L), "index", "layer (from 0)")
        write_axis(f, "head", np.arange(H), "index", "head within its layer (from 0)")
        write_axis(f, "eig", np.arange(2 * heads.d_head), "index", "eigenvalue rank (descending)")
        g = f.create_group("heads")
        for hw in heads:
            gh = g.create_group(head_label(hw.layer, hw.head))
            for name, (dims, long_name) in _HEAD_ARRAYS.items():
                write_values(gh, name, np.asarray(getattr(hw, name), np.float32), dims, "weight units", long_name)
            write_values(gh, "eigenvalues", spec.eigenvalues[hw.layer, hw.head], ("eig",), "score units",
                         "eigenvalues of M_s, descending")
            gh.attrs.update({"layer": hw.layer, "head": hw.head, "scale": hw.scale, "rotary": np.bool_(hw.rotary),
                             "kv_head": hw.kv_head, "ferro_class": str(spec.ferro_class[hw.layer, hw.head]),
                             "ferro_index": float(spec.ferro_index[hw.layer, hw.head]),
                             "symmetric_share": float(spec.symmetric_share[hw.layer, hw.head])})
        spec.write_group(f.create_group("spectrum"))
        write_values(f, "attention_window", np.asarray(heads.window, np.int64), ("layer",), "positions",
                     "sliding attention window: query i sees keys i - window < j <= i (0: full causal)")
        d = f.create_dataset("b_O", data=heads.b_O)
        d.dims[0].attach_scale(f["layer"])
        d.attrs.update({"units": "residual units", "long_name": "output projection bias per layer (layer, d_model)"})
        if heads.rotary:
            r = f.create_group("rotary")
            write_axis(f, "freq", np.arange(heads.inv_freq.size), "index",
                       "rotary frequency index i (turns components i and i + d_rot/2)")
            write_values(r, "inv_freq", heads.inv_freq, ("freq",), "radians per position",
                         "rotary inverse frequency: pair i turns by position * inv_freq[i]")
            r.attrs["attention_scaling"] = heads.rotary_scaling
            r.attrs["convention"] = ("HF rotate_half: pairs (i, i + d_head/2) turn by position * inv_freq[i]; "
                                     "J(i - j) = scale W_Q R(i - j) W_K^T")
