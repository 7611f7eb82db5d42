"""Per-head weights of GPT-2 and Llama-family models in one layout (SPEC section 6).

Conventions (every family, whatever the checkpoint's own layout):

* row vectors: ``q = x W_Q + b_Q``, ``k = x W_K + b_K``, ``v = x W_V + b_V`` with
  ``W_Q, W_K, W_V`` of shape (d_model, d_head); the head writes ``z W_O`` into the residual
  stream with ``W_O`` of shape (d_head, d_model) (``z = sum_j a_j v_j``).
* score of query i on key j: ``scale * q_i . k_j`` with ``scale = 1/sqrt(d_head)`` (GPT-2's
  ``scale_attn_by_inverse_layer_idx`` divides it by layer + 1). The coupling is
  ``M = scale * W_Q @ W_K.T`` (d_model x d_model, rank <= d_head), kept as factors.
* rotary (Llama family): q and k are rotated by their absolute positions, so the coupling
  depends on the offset, ``J(i - j) = scale * W_Q R(i - j) W_K^T`` (see :func:`apply_rotary`).
* grouped key/value heads: query head h reads key/value head ``kv_head[h] = h // (n_heads //
  n_kv_heads)`` (HF ``repeat_kv``); ``W_K``/``W_V`` here are the shared kv head's, repeated.
* GPT-2 ``Conv1D`` computes ``y = x @ W``: head h's output map is the *rows*
  ``c_proj.weight[h*dh:(h+1)*dh, :]`` (``o_slice="correct"``). The paper's code sliced the
  *columns* ``c_proj.weight[:, h*dh:(h+1)*dh]`` (``o_slice="paper"``, reproduced as their
  transpose so that ``W_O`` keeps its (d_head, d_model) shape). Llama's ``o_proj`` is an
  ``nn.Linear`` (weight [out, in]): ``W_O[h] = o_proj.weight[:, h*dh:(h+1)*dh].T``.

Heads are labelled ``L{layer}H{head}`` (both from 0) by :func:`head_label`, and only there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .loading import ModelWeights

__all__ = ["head_label", "parse_head", "parse_heads", "all_head_labels", "apply_rotary", "HeadWeights",
           "HeadSet", "extract_heads", "O_SLICES", "symmetric_spectrum", "classify_spectrum", "symmetric_share"]

O_SLICES = ("correct", "paper")
_LABEL = re.compile(r"^L(\d+)H(\d+)$")


def head_label(layer: int, head: int) -> str:
    """``head_label(3, 5) == 'L3H5'`` (layer and head counted from 0, as TransformerLens)."""
    return f"L{int(layer)}H{int(head)}"


def parse_head(label: str, n_layers: int | None = None, n_heads: int | None = None) -> tuple[int, int]:
    """``'L3H5'`` -> ``(3, 5)``; checks the range when the model's sizes are given."""
    m = _LABEL.match(str(label).strip())
    if not m:
        raise ValueError(f"bad head label {label!r}; expected L{{layer}}H{{head}}, e.g. 'L3H5'")
    l, h = int(m.group(1)), int(m.group(2))
    if (n_layers is not None and l >= n_layers) or (n_heads is not None and h >= n_heads):
        raise ValueError(f"head {label!r} out of range: the model has L0-L{(n_layers or 1) - 1}, "
                         f"H0-H{(n_heads or 1) - 1}")
    return l, h


def parse_heads(text: str, n_layers: int, n_heads: int) -> list[tuple[int, int]]:
    """``'L3H5,L0H0'`` or ``'all'`` -> list of (layer, head)."""
    if str(text).strip().lower() == "all":
        return [(l, h) for l in range(n_layers) for h in range(n_heads)]
    out = [parse_head(t, n_layers, n_heads) for t in str(text).split(",") if t.strip()]
    if not out:
        raise ValueError(f"no heads in {text!r}; give labels like 'L3H5,L0H0' or 'all'")
    return out


def all_head_labels(n_layers: int, n_heads: int) -> list[str]:
    """Labels in (layer, head) row-major order: L0H0, L0H1, ..."""
    return [head_label(l, h) for l in range(n_layers) for h in range(n_heads)]


def apply_rotary(x: np.ndarray, positions: np.ndarray, inv_freq: np.ndarray, scaling: float = 1.0) -> np.ndarray:
    """Rotate ``x`` (..., T, d_head) by absolute positions (T,) as HF does (``rotate_half``).

    The rotary part is the first ``d_rot = 2 len(inv_freq)`` components (all of them unless the
    rotary is partial, as GPT-NeoX/Phi's ``rotary_ndims``); its pairs (i, i + d_rot/2) turn by
    the angle ``p * inv_freq[i]``: ``(x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)``, times
    ``scaling`` (HF ``attention_scaling``; 1 for the default rope). The remaining components
    pass unchanged. Then ``rot(q, i) . rot(k, j)`` depends on ``i - j`` only: ``q R(i - j) k^T``.
    Raises ValueError when ``d_rot`` exceeds the last axis of x.
    """
    inv = np.asarray(inv_freq, dtype=np.float64)
    rot = 2 * inv.size
    if rot > x.shape[-1]:
        raise ValueError(f"rotary frequencies cover {rot} components but the head has {x.shape[-1]}")
    pos = np.asarray(positions, dtype=np.float64)
    ang = pos[:, None] * inv[None, :]                                          # (T, d_rot/2)
    cos, sin = np.cos(ang) * scaling, np.sin(ang) * scaling
    half = rot // 2
    x1, x2 = x[..., :half], x[..., half:rot]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x[..., rot:]], axis=-1)


def symmetric_spectrum(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nonzero spectrum of ``M_s = (A B^T + B A^T)/2`` without forming the n x n matrix.

    A, B: (n_comp, rank). With ``U = [A B] = Q R``: ``M_s = Q (R C R^T) Q^T``,
    ``C = [[0, I/2], [I/2, 0]]``. Returns eigenvalues (2 rank,) in descending order and the
    eigenvectors (n_comp, 2 rank) as columns.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    r = A.shape[1]
    Q, R = np.linalg.qr(np.concatenate([A, B], axis=1))
    C = np.zeros((2 * r, 2 * r))
    C[:r, r:] = C[r:, :r] = 0.5 * np.eye(r)
    small = R @ C @ R.T
    w, v = np.linalg.eigh(0.5 * (small + small.T))
    order = np.argsort(w)[::-1]
    return w[order], Q @ v[:, order]


def symmetric_share(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``||J_s||_F^2 / ||J||_F^2`` of ``J = A B^T``, ``J_s = (J + J^T)/2``, without forming J.

    A, B: (..., n_comp, rank) (leading axes: heads). ``||J_s||^2 = (||J||^2 + tr(J J))/2`` with
    ``||J||^2 = sum (A^T A) o (B^T B)`` and ``tr(J J) = tr((B^T A)^2)`` (rank x rank products
    only). 1 for a symmetric J, 0 for an antisymmetric one, 1/2 when J is as symmetric as a random
    matrix; NaN for J = 0. Returns an array over the leading axes (a float for one head).
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    AtA, BtB = np.swapaxes(A, -1, -2) @ A, np.swapaxes(B, -1, -2) @ B
    BtA = np.swapaxes(B, -1, -2) @ A
    fro2 = np.sum(AtA * BtB, axis=(-2, -1))
    trJJ = np.sum(BtA * np.swapaxes(BtA, -1, -2), axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(fro2 > 0, 0.5 * (1.0 + trJJ / np.where(fro2 > 0, fro2, 1.0)), np.nan)


def classify_spectrum(eigvals: np.ndarray, band: float = 0.0) -> tuple[str, float]:
    """Ferro/antiferro class of a head from the spectrum of M_s.

    ``ferro`` (cooperative) when the top eigenvalue dominates, ``lambda_max > |lambda_min|``: the
    ordered state with all spins along the top eigenvector is the lowest uniform state on a
    complete graph. ``antiferro`` (antagonistic) otherwise. Also returns the ferro index
    ``tr(M_s) / sum|lambda|`` in [-1, 1] (+1: positive semidefinite coupling, every token attends
    to its own direction; -1: negative semidefinite). ``band`` > 0 labels ``mixed`` when
    ``|lambda_max + lambda_min| <= band * (lambda_max - lambda_min)``.
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    lmax, lmin = float(lam.max()), float(lam.min())
    idx = float(lam.sum() / max(np.abs(lam).sum(), 1e-300))
    if band > 0 and abs(lmax + lmin) <= band * (lmax - lmin):
        return "mixed", idx
    return ("ferro" if lmax >= -lmin else "antiferro"), idx


@dataclass(frozen=True, eq=False)
class HeadWeights:
    """One head's factors (see module docstring for the conventions).

    W_Q, W_K, W_V: (d_model, d_head); W_O: (d_head, d_model); b_Q, b_K, b_V: (d_head,) (zeros
    when the model has none); scale: score factor; rotary: whether q/k are rotated by position
    (then ``inv_freq`` (d_rot/2,), d_rot <= d_head, and ``rotary_scaling``); kv_head: the
    key/value head it reads; window: the sliding attention window of its layer (query i sees keys
    ``i - window < j <= i``, HF ``sliding_window``) or None.
    """

    layer: int
    head: int
    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray
    b_Q: np.ndarray
    b_K: np.ndarray
    b_V: np.ndarray
    scale: float
    rotary: bool
    kv_head: int
    o_slice: str = "correct"
    inv_freq: np.ndarray | None = None
    rotary_scaling: float = 1.0
    window: int | None = None

    @property
    def label(self) -> str:
        return head_label(self.layer, self.head)

    @property
    def d_model(self) -> int:
        return int(self.W_Q.shape[0])

    @property
    def d_head(self) -> int:
        return int(self.W_Q.shape[1])

    def coupling_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, B) = (scale * W_Q, W_K)`` in float64: ``x_q A B^T x_k^T`` is the bias-free score."""
        return self.scale * self.W_Q.astype(np.float64), self.W_K.astype(np.float64)

    def J(self, offset: int = 0) -> np.ndarray:
        """Dense ``scale * W_Q R(offset) W_K^T`` (d_model x d_model; analysis only, not hot loops).
        ``offset = i - j`` (query minus key position); R = 1 for non-rotary heads. With HF's
        ``attention_scaling`` s the rotary components carry s^2 (both q and k are scaled), the
        components a partial rotary leaves alone carry 1."""
        A, B = self.coupling_factors()
        if self.rotary:
            # rot(q, i) = q R_i (rows); R_i R_j^T = R(i - j): rotate every row of A by the offset.
            A = apply_rotary(A, np.full(A.shape[0], offset), self.inv_freq, self.rotary_scaling)
            B = apply_rotary(B, np.zeros(B.shape[0]), self.inv_freq, self.rotary_scaling)
        return A @ B.T

    def OV(self) -> np.ndarray:
        """``W_V @ W_O`` (d_model x d_model), the head's value-output map on row vectors."""
        return self.W_V.astype(np.float64) @ self.W_O.astype(np.float64)

    def spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (descending) and eigenvectors of the symmetric coupling ``M_s`` at offset 0."""
        return symmetric_spectrum(*self.coupling_factors())


@dataclass(eq=False)
class HeadSet:
    """Every head of a model, stacked for vectorised computation.

    W_Q, W_K, W_V: (n_layers, n_heads, d_model, d_head) float32 (W_K, W_V repeated over grouped
    heads); W_O: (n_layers, n_heads, d_head, d_model); b_Q, b_K, b_V: (n_layers, n_heads, d_head);
    b_O: (n_layers, d_model) the output projection's bias (per layer, not per head);
    scale: (n_layers,); kv_head: (n_heads,) int; window: (n_layers,) int, each layer's sliding
    attention window (0: none; see :class:`HeadWeights`); config: the model's config (a dict).
    """

    family: str
    model_id: str
    weights_sha256: str
    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray
    b_Q: np.ndarray
    b_K: np.ndarray
    b_V: np.ndarray
    b_O: np.ndarray
    scale: np.ndarray
    kv_head: np.ndarray
    n_kv_heads: int
    o_slice: str = "correct"
    has_qk_bias: bool = False
    inv_freq: np.ndarray | None = None
    rotary_scaling: float = 1.0
    window: np.ndarray | None = None
    config: dict | None = None

    def __post_init__(self) -> None:
        if self.window is None:
            self.window = np.zeros(self.n_layers, np.int64)

    def layer_window(self, layer: int) -> int | None:
        """The sliding window of a layer, or None (full causal attention)."""
        w = int(self.window[int(layer)])
        return w if w > 0 else None

    @property
    def n_layers(self) -> int:
        return int(self.W_Q.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.W_Q.shape[1])

    @property
    def d_model(self) -> int:
        return int(self.W_Q.shape[2])

    @property
    def d_head(self) -> int:
        return int(self.W_Q.shape[3])

    @property
    def rotary(self) -> bool:
        return self.inv_freq is not None

    @property
    def labels(self) -> list[str]:
        return all_head_labels(self.n_layers, self.n_heads)

    def head(self, layer: int | str, head: int | None = None) -> HeadWeights:
        """One head by ``(layer, head)`` or label ``'L3H5'``."""
        if isinstance(layer, str):
            layer, head = parse_head(layer, self.n_layers, self.n_heads)
        else:
            parse_head(head_label(layer, head), self.n_layers, self.n_heads)
        l, h = int(layer), int(head)
        return HeadWeights(l, h, self.W_Q[l, h], self.W_K[l, h], self.W_V[l, h], self.W_O[l, h],
                           self.b_Q[l, h], self.b_K[l, h], self.b_V[l, h], float(self.scale[l]),
                           self.rotary, int(self.kv_head[h]), self.o_slice, self.inv_freq, self.rotary_scaling,
                           self.layer_window(l))

    def __iter__(self) -> Iterator[HeadWeights]:
        for l in range(self.n_layers):
            for h in range(self.n_heads):
                yield self.head(l, h)


def _gpt2_heads(w: ModelWeights, o_slice: str) -> dict:
    c = w.config
    d, H, L = int(c["n_embd"]), int(c["n_head"]), int(c["n_layer"])
    dh = d // H
    WQ, WK, WV = (np.empty((L, H, d, dh), np.float32) for _ in range(3))
    WO = np.empty((L, H, dh, d), np.float32)
    bQ, bK, bV = (np.empty((L, H, dh), np.float32) for _ in range(3))
    bO = np.empty((L, d), np.float32)
    scale = np.empty(L)
    for l in range(L):
        Wa = np.asarray(w.get(f"h.{l}.attn.c_attn.weight"), np.float32)       # (d, 3d), y = x @ W
        ba = np.asarray(w.get(f"h.{l}.attn.c_attn.bias"), np.float32)
        Wp = np.asarray(w.get(f"h.{l}.attn.c_proj.weight"), np.float32)       # (d, d)
        if Wa.shape != (d, 3 * d) or Wp.shape != (d, d):
            raise ValueError(f"layer {l}: c_attn {Wa.shape} / c_proj {Wp.shape} do not match the GPT-2 Conv1D "
                             f"layout ({d}, {3 * d}) / ({d}, {d})")
        for i, (Wx, bx) in enumerate(((WQ, bQ), (WK, bK), (WV, bV))):
            Wx[l] = Wa[:, i * d:(i + 1) * d].reshape(d, H, dh).transpose(1, 0, 2)
            bx[l] = ba[i * d:(i + 1) * d].reshape(H, dh)
        if o_slice == "correct":
            WO[l] = Wp.reshape(H, dh, d)                                       # rows h*dh:(h+1)*dh
        else:
            WO[l] = Wp.reshape(d, H, dh).transpose(1, 2, 0)                    # columns, transposed
        bO[l] = np.asarray(w.get(f"h.{l}.attn.c_proj.bias"), np.float32)
        s = 1.0 / np.sqrt(dh) if c.get("scale_attn_weights", True) else 1.0
        if c.get("scale_attn_by_inverse_layer_idx", False):
            s /= (l + 1)
        scale[l] = s
    return dict(W_Q=WQ, W_K=WK, W_V=WV, W_O=WO, b_Q=bQ, b_K=bK, b_V=bV, b_O=bO, scale=scale,
                kv_head=np.arange(H), n_kv_heads=H, has_qk_bias=True)


def _llama_heads(w: ModelWeights, o_slice: str) -> dict:
    if o_slice != "correct":
        raise ValueError(f"o_slice {o_slice!r} is GPT-2 only (the paper's column slice of a Conv1D); "
                         "Llama-family models allow only 'correct'")
    c = w.config
    d, H, L = int(c["hidden_size"]), int(c["num_attention_heads"]), int(c["num_hidden_layers"])
    KV = int(c.get("num_key_value_heads") or H)
    dh = int(c.get("head_dim") or d // H)
    if H % KV:
        raise ValueError(f"num_attention_heads={H} is not a multiple of num_key_value_heads={KV}")
    kv_head = np.arange(H) // (H // KV)
    WQ, WK, WV = (np.empty((L, H, d, dh), np.float32) for _ in range(3))
    WO = np.empty((L, H, dh, d), np.float32)
    bQ, bK, bV = (np.zeros((L, H, dh), np.float32) for _ in range(3))
    bO = np.zeros((L, d), np.float32)
    has_bias = False
    for l in range(L):
        p = f"model.layers.{l}.self_attn."
        q = np.asarray(w.get(p + "q_proj.weight"), np.float32)                 # (H dh, d), y = x W^T
        k = np.asarray(w.get(p + "k_proj.weight"), np.float32)                 # (KV dh, d)
        v = np.asarray(w.get(p + "v_proj.weight"), np.float32)
        o = np.asarray(w.get(p + "o_proj.weight"), np.float32)                 # (d, H dh)
        if q.shape != (H * dh, d) or k.shape != (KV * dh, d) or o.shape != (d, H * dh):
            raise ValueError(f"layer {l}: q/k/o_proj shapes {q.shape}/{k.shape}/{o.shape} do not match "
                             f"H={H}, KV={KV}, d_head={dh}, d_model={d}")
        WQ[l] = q.T.reshape(d, H, dh).transpose(1, 0, 2)
        WK[l] = k.T.reshape(d, KV, dh).transpose(1, 0, 2)[kv_head]
        WV[l] = v.T.reshape(d, KV, dh).transpose(1, 0, 2)[kv_head]
        WO[l] = o.T.reshape(H, dh, d)
        for name, arr, n in (("q_proj", bQ, H), ("k_proj", bK, KV), ("v_proj", bV, KV)):
            if w.has(p + name + ".bias"):
                b = np.asarray(w.get(p + name + ".bias"), np.float32).reshape(n, dh)
                arr[l] = b if n == H else b[kv_head]
                has_bias = True
        if w.has(p + "o_proj.bias"):
            bO[l] = np.asarray(w.get(p + "o_proj.bias"), np.float32)
    if w.rotary_inv_freq is None:
        raise ValueError("Llama-family weights without rotary frequencies (load with load_model or load_weights)")
    scale = np.full(L, dh ** -0.5)
    return dict(W_Q=WQ, W_K=WK, W_V=WV, W_O=WO, b_Q=bQ, b_K=bK, b_V=bV, b_O=bO, scale=scale,
                kv_head=kv_head, n_kv_heads=KV, has_qk_bias=has_bias,
                inv_freq=np.asarray(w.rotary_inv_freq, np.float64), rotary_scaling=float(w.rotary_scaling))


def extract_heads(weights: ModelWeights, o_slice: str = "correct") -> HeadSet:
    """Every head of a checkpoint as a :class:`HeadSet`.

    ``o_slice``: ``'correct'`` (rows of GPT-2's c_proj; the only choice for Llama) or ``'paper'``
    (columns of GPT-2's c_proj, the published code's slice; GPT-2 only).
    """
    if o_slice not in O_SLICES:
        raise ValueError(f"unknown o_slice {o_slice!r}; allowed: 'correct', 'paper'")
    if hasattr(weights, "weights") and not isinstance(weights, ModelWeights):
        weights = weights.weights  # a LoadedModel
    fam = weights.family
    parts = _gpt2_heads(weights, o_slice) if fam == "gpt2" else _llama_heads(weights, o_slice)
    from .rope import attention_window
    cfg = dict(weights.config)
    window = np.array([attention_window(cfg, l) or 0 for l in range(parts["W_Q"].shape[0])], np.int64)
    return HeadSet(family=fam, model_id=weights.model_id, weights_sha256=weights.weights_sha256,
                   o_slice=o_slice, window=window, config=cfg, **parts)
