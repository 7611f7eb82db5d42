"""Attention of extracted heads, written once: scores, pattern, head outputs z, context field.

Conventions (HF eager attention; row vectors, see :mod:`spinsim.models.heads`)::

    q_i = (x_i W_Q + b_Q) R_i        k_j = (x_j W_K + b_K) R_j        v_j = x_j W_V + b_V
    s_ij = scale q_i . k_j           for key j <= query i (causal), -inf for j > i
                                     (and for j <= i - window under a sliding window)
    alpha_ij = softmax_j s_ij        z_i = sum_j alpha_ij v_j         N0_i = z_i W_O

query i is the row, key j the column; ``R_i`` is the rotary rotation by absolute position i
(Llama family, :func:`~spinsim.models.heads.apply_rotary`, including HF's ``attention_scaling``),
the identity otherwise. ``X`` (n_positions, d_model) holds the vectors the head reads (the
normalised residual stream, or raw embeddings for the paper's mode), float64 throughout.

Weights may carry leading head axes: ``W_Q, W_K, W_V`` (..., d_model, d_head) and biases
(..., d_head) compute every head of a layer at once. Everything else in spinsim that needs a
head's attention (extraction check, logit gaps, probe fields) calls these functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .heads import HeadSet, HeadWeights, apply_rotary

__all__ = ["Rotary", "scores", "key_mask", "pattern", "head_outputs", "layer_outputs", "recompute_attention",
           "context_field"]


@dataclass(frozen=True)
class Rotary:
    """Rotary positions: ``inv_freq`` (d_head/2,) and HF's ``attention_scaling`` (1 for the default rope)."""

    inv_freq: np.ndarray
    scaling: float = 1.0

    @classmethod
    def of(cls, heads: HeadSet | HeadWeights, on: bool = True) -> "Rotary | None":
        """The rotary of a head or head set, or None when it has none or ``on`` is False."""
        if not on or heads.inv_freq is None:
            return None
        return cls(np.asarray(heads.inv_freq, np.float64), float(heads.rotary_scaling))


def _positions(queries: Sequence[int] | np.ndarray | None, n_positions: int) -> np.ndarray:
    q = np.arange(n_positions) if queries is None else np.asarray(queries, np.int64).reshape(-1)
    if q.size == 0 or q.min() < 0 or q.max() >= n_positions:
        raise ValueError(f"query positions must be in 0..{n_positions - 1}, got {q.tolist()}")
    return q


def _project(X: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x W (+ b) for every leading head axis of W: (..., n_rows, d_head)."""
    out = np.matmul(X, np.asarray(W, np.float64))
    if b is not None:
        out = out + np.asarray(b, np.float64)[..., None, :]
    return out


def scores(X: np.ndarray, W_Q: np.ndarray, W_K: np.ndarray, scale: float | np.ndarray,
           queries: Sequence[int] | np.ndarray | None = None, b_Q: np.ndarray | None = None,
           b_K: np.ndarray | None = None, rotary: Rotary | None = None, window: int | None = None) -> np.ndarray:
    """Causally masked attention scores ``s[..., r, j] = scale q_{t_r} . k_j`` (module docstring).

    X (n_positions, d_model); W_Q, W_K (..., d_model, d_head); b_Q, b_K (..., d_head) or None;
    scale a float or an array over the leading head axes; queries (n_queries,) positions t_r
    (default 0..n_positions-1); window: HF ``sliding_window`` (query t sees keys
    ``t - window < j <= t``; transformers' ``sliding_window_overlay``) or None. Keys run over
    0..max(queries). Returns (..., n_queries, n_keys) float64 with -inf where j > t_r or
    j <= t_r - window. Raises ValueError for a query position outside X or a window < 1.
    """
    X = np.asarray(X, np.float64)
    t = _positions(queries, X.shape[0])
    n_keys = int(t.max()) + 1
    q = _project(X[t], W_Q, b_Q)
    k = _project(X[:n_keys], W_K, b_K)
    if rotary is not None:
        q = apply_rotary(q, t, rotary.inv_freq, rotary.scaling)
        k = apply_rotary(k, np.arange(n_keys), rotary.inv_freq, rotary.scaling)
    s = np.asarray(scale, np.float64)[..., None, None] * np.matmul(q, np.swapaxes(k, -1, -2))
    return np.where(key_mask(t, n_keys, window), s, -np.inf)


def key_mask(queries: np.ndarray, n_keys: int, window: int | None = None) -> np.ndarray:
    """Which keys each query attends to: (n_queries, n_keys) bool, ``j <= t`` and, under a
    sliding window, ``j > t - window``. Raises ValueError for a window < 1."""
    t = np.asarray(queries, np.int64).reshape(-1)
    j = np.arange(int(n_keys))[None, :]
    ok = j <= t[:, None]
    if window is not None:
        if int(window) < 1:
            raise ValueError(f"sliding window must be >= 1 position, got {window!r}")
        ok &= j > t[:, None] - int(window)
    return ok


def pattern(s: np.ndarray) -> np.ndarray:
    """Softmax over the last (key) axis of masked scores: the attention probabilities alpha."""
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def head_outputs(X: np.ndarray, W_Q: np.ndarray, W_K: np.ndarray, W_V: np.ndarray, scale: float | np.ndarray,
                 queries: Sequence[int] | np.ndarray | None = None, b_Q: np.ndarray | None = None,
                 b_K: np.ndarray | None = None, b_V: np.ndarray | None = None,
                 rotary: Rotary | None = None, window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Head outputs before W_O, ``z_{t_r} = sum_{j <= t_r} alpha_{t_r j} v_j``, and the pattern.

    Shapes as :func:`scores`, plus W_V (..., d_model, d_head), b_V (..., d_head). Returns
    ``(z, alpha)``: z (..., n_queries, d_head), alpha (..., n_queries, n_keys).
    """
    alpha = pattern(scores(X, W_Q, W_K, scale, queries, b_Q, b_K, rotary, window))
    v = _project(np.asarray(X, np.float64)[: alpha.shape[-1]], W_V, b_V)
    return np.matmul(alpha, v), alpha


def layer_outputs(heads: HeadSet, X: np.ndarray, layer: int, queries: Sequence[int] | np.ndarray | None = None,
                  biases: bool = True, rotary: bool | None = None) -> np.ndarray:
    """z of every head of ``layer`` at the query positions: (n_heads, n_queries, d_head).

    X (n_positions, d_model) the layer's inputs; ``biases`` False drops b_Q, b_K, b_V; ``rotary``
    None uses the heads' own rotary, False switches it off (raw embeddings, the paper's mode).
    """
    l = int(layer)
    z, _ = head_outputs(X, heads.W_Q[l], heads.W_K[l], heads.W_V[l], heads.scale[l], queries,
                        heads.b_Q[l] if biases else None, heads.b_K[l] if biases else None,
                        heads.b_V[l] if biases else None, Rotary.of(heads, rotary is not False),
                        heads.layer_window(l))
    return z


def recompute_attention(heads: HeadSet, x: np.ndarray, biases: bool = True,
                        layers: Sequence[int] | None = None) -> np.ndarray:
    """The attention probabilities of every head from the extracted factors.

    x (n_layers, n_positions, d_model): the normalised attention inputs of one sequence (as
    captured by :func:`spinsim.models.capture.run_capture`). Returns (n_layers_selected, n_heads,
    n_positions, n_positions) float64, rows queries, columns keys (zero above the diagonal).
    """
    layers = range(heads.n_layers) if layers is None else layers
    rot = Rotary.of(heads)
    return np.stack([pattern(scores(x[l], heads.W_Q[l], heads.W_K[l], heads.scale[l], None,
                                    heads.b_Q[l] if biases else None, heads.b_K[l] if biases else None, rot,
                                    heads.layer_window(l)))
                     for l in layers])


def context_field(head: HeadWeights, X: np.ndarray, t: int | None = None, biases: bool = False,
                  rotary: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One head's context field at query position t (default: the last) of inputs X (T, d_model).

    Returns ``(N0, alpha)``: ``N0 = sum_{i<=t} alpha_i (x_i W_V + b_V) W_O`` (d_model,), the
    paper's mean field on a probe (Bhattacharjee & Lee, SPEC section 0), and the attention
    ``alpha`` (t + 1,) of the query on keys 0..t (self included). ``rotary`` defaults to the
    head's own flag; ``biases`` False (the paper) drops b_Q, b_K, b_V.
    """
    X = np.asarray(X, np.float64)
    t = X.shape[0] - 1 if t is None else int(t)
    on = head.rotary if rotary is None else rotary
    z, alpha = head_outputs(X, head.W_Q, head.W_K, head.W_V, head.scale, [t],
                            head.b_Q if biases else None, head.b_K if biases else None,
                            head.b_V if biases else None, Rotary.of(head, on), head.window)
    return z[0] @ np.asarray(head.W_O, np.float64), alpha[0]
