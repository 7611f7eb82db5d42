"""What of a model's attention a head Hamiltonian holds: rotary positions per site, sliding
windows as a graph, and one-line refusals for the rest.

Rotary heads exactly (every pair, every offset). HF Llama-family attention scores query i on
key j as ``scale (q_i R_i) . (k_j R_j)`` with ``q_i = x_i W_Q + b_Q``, ``k_j = x_j W_K + b_K`` and
``R_p`` the rotation of position p (:func:`~spinsim.models.heads.apply_rotary`: HF
``rotate_half`` pairs, the partial-rotary pass-through, HF ``attention_scaling`` on the
rotated components). Writing ``rot(Y, p)`` for the rows of Y rotated by p,

    A_i = scale rot(W_Q, i)     B_j = rot(W_K, j)            (d_model, d_rot) per site
    qb_i = scale rot(b_Q, i)    kb_j = rot(b_K, j)           (rank,) per site

the score is ``(x_i A_i + qb_i) . (x_j B_j + kb_j)`` exactly: the bilinear part is the
:class:`~spinsim.coupling.SiteLowRank` coupling ``M_ij = A_i B_j^T`` (Su et al. 2021, RoFormer,
eq. 14-16), the bias parts are fields and a constant summed over the graph (:func:`bias_terms`).
The same functions give the position-blind treatments: every position 0 (``'drop'``, the
offset-0 coupling; ``'fold'``, whose keys carry their rotation relative to the probe) and no
rotation at all (non-rotary heads).

Frequencies. The rotary's ``inv_freq`` and ``attention_scaling`` are read from the loaded
model's own rotary module, so every rope type whose frequencies do not depend on the sequence
(``default``, ``linear``, ``yarn``, ``llama3``) is exact by construction. ``dynamic`` (and
``longrope``) recompute the frequencies from the sequence length once it exceeds the original
maximum positions, and transformers keeps the grown frequencies between calls (its
``dynamic_rope_update`` is stateful): prompts past that length are refused (:func:`check_attention`).

Sliding windows (Mistral, Qwen2 ``sliding_attention`` layers): query i sees keys
``i - window < j <= i`` (transformers' ``sliding_window_overlay``), so ``W_ij = 0`` beyond the
window (:func:`attention_window`, :func:`causal_graph`).

Refused in one line naming the feature (:class:`UnsupportedAttention`): logit soft-capping,
ALiBi, dynamic / longrope past the original maximum positions, rope types not listed above,
partial rotary under a rope type whose frequencies transformers' Llama attention cannot apply.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .heads import HeadWeights, apply_rotary

__all__ = ["UnsupportedAttention", "attention_window", "check_attention", "attention_features", "causal_graph",
           "head_factors", "bias_terms", "STATIC_ROPE_TYPES", "LENGTH_ROPE_TYPES"]

#: rope types whose frequencies do not depend on the sequence (read from the model's rotary module)
STATIC_ROPE_TYPES = ("default", "linear", "yarn", "llama3")
#: rope types that recompute their frequencies once a sequence exceeds the original maximum positions
LENGTH_ROPE_TYPES = ("dynamic", "longrope")


class UnsupportedAttention(ValueError):
    """The model's attention has a feature a head Hamiltonian cannot hold (the message names it)."""


def _cfg(config: Any) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        return config
    return config.to_dict() if hasattr(config, "to_dict") else vars(config)


def _rope(config: Mapping[str, Any]) -> Mapping[str, Any]:
    rp = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if isinstance(rp, Mapping) and rp and all(isinstance(v, Mapping) for v in rp.values()):
        rp = next(iter(rp.values()))            # per-layer-type rope parameters: the same keys
    return rp if isinstance(rp, Mapping) else {}


def rope_type(config: Any) -> str:
    """The rope type of a config (``'default'`` when none is given)."""
    rp = _rope(_cfg(config))
    return str(rp.get("rope_type", rp.get("type", "default")) or "default")


def attention_window(config: Any, layer: int) -> int | None:
    """Sliding attention window of ``layer`` (query i sees keys ``i - window < j <= i``), or None.

    Mistral: ``sliding_window`` on every layer; Qwen2 and others with ``layer_types``: only the
    ``'sliding_attention'`` layers; ``use_sliding_window = False`` switches it off. Raises
    ValueError for a window < 1.
    """
    c = _cfg(config)
    w = c.get("sliding_window")
    if w is None or c.get("use_sliding_window") is False:
        return None
    types = c.get("layer_types")
    if types is not None and str(types[int(layer)]) != "sliding_attention":
        return None
    if int(w) < 1:
        raise ValueError(f"sliding_window must be >= 1, got {w!r}")
    return int(w)


def attention_features(config: Any, n_positions: int | None = None) -> list[str]:
    """The features of the model's attention that a head Hamiltonian cannot hold, one phrase
    each (empty when everything is held), for sequences of ``n_positions`` tokens (None: the
    features that do not depend on the length)."""
    c = _cfg(config)
    out = []
    cap = c.get("attn_logit_softcapping")
    if cap is not None:
        out.append(f"attention logit soft-capping (attn_logit_softcapping={cap})")
    if c.get("alibi") or "alibi" in str(c.get("position_embedding_type", "")).lower():
        out.append("ALiBi position biases")
    if c.get("model_type") == "gpt2" or c.get("n_embd") is not None:
        return out
    rt = rope_type(c)
    rp = _rope(c)
    partial = float(rp.get("partial_rotary_factor", c.get("partial_rotary_factor", 1.0)) or 1.0)
    if rt in LENGTH_ROPE_TYPES:
        limit = int(rp.get("original_max_position_embeddings") or 0) if rt == "longrope" else 0
        limit = limit or int(c.get("max_position_embeddings") or 0)
        if n_positions is not None and limit and n_positions > limit:
            out.append(f"rope_type {rt!r} past {limit} positions (the prompt has {n_positions} tokens): transformers "
                       "recomputes the frequencies from the sequence length and keeps them between calls")
    elif rt not in STATIC_ROPE_TYPES:
        out.append(f"rope_type {rt!r} (modelled: {', '.join(STATIC_ROPE_TYPES + LENGTH_ROPE_TYPES)})")
    if partial < 1.0 and rt != "default":
        out.append(f"partial_rotary_factor {partial:g} with rope_type {rt!r} (transformers' Llama-family attention "
                   "rotates whole heads and cannot apply these frequencies)")
    return out


def check_attention(config: Any, n_positions: int | None = None) -> None:
    """Raise :class:`UnsupportedAttention` (one line naming the feature) when the attention of a
    model with this config, on ``n_positions`` tokens, has a feature a head Hamiltonian cannot
    hold (:func:`attention_features`); return None otherwise."""
    feats = attention_features(config, n_positions)
    if feats:
        raise UnsupportedAttention(f"the model's attention has {'; '.join(feats)}, which a head Hamiltonian "
                                   "cannot hold")


def causal_graph(n: int, window: int | None = None) -> np.ndarray:
    """Bond weights W (n, n) of a causal head: ``W_ij = 1`` for key j < query i within the window
    (``i - j < window``), zero elsewhere (diagonal included: the self term is not a bond)."""
    i, j = np.indices((int(n), int(n)))
    W = (j < i).astype(np.float64)
    if window is not None:
        W[i - j >= int(window)] = 0.0
    return W


def _rotate_rows(Y: np.ndarray, positions: np.ndarray | None, hw: HeadWeights) -> np.ndarray:
    """Rows of Y (m, d_head) rotated by each position: (P, m, d_head); unrotated (1, m, d_head)
    when positions is None or the head is not rotary."""
    Y = np.asarray(Y, np.float64)
    if positions is None or not hw.rotary:
        return Y[None]
    return np.stack([apply_rotary(Y, np.full(Y.shape[0], p), hw.inv_freq, hw.rotary_scaling) for p in positions])


def head_factors(hw: HeadWeights, positions: np.ndarray | None, use_bias: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-site factors and bias projections of a head (module docstring).

    positions (P,) the sites' positions, or None for no rotation (non-rotary heads, raw
    embeddings). Returns ``(A, B, qb, kb)``: A, B (P, d_model, d_head) (P = 1 when None), qb, kb
    (P, d_head) (zeros when ``use_bias`` is False); score of the pair (i, j) is
    ``(x_i A_i + qb_i) . (x_j B_j + kb_j)``.
    """
    A = hw.scale * _rotate_rows(hw.W_Q, positions, hw)
    B = _rotate_rows(hw.W_K, positions, hw)
    if use_bias:
        qb = hw.scale * _rotate_rows(hw.b_Q[None], positions, hw)[:, 0]
        kb = _rotate_rows(hw.b_K[None], positions, hw)[:, 0]
    else:
        qb = np.zeros((A.shape[0], hw.d_head))
        kb = np.zeros_like(qb)
    return A, B, qb, kb


def bias_terms(A: np.ndarray, B: np.ndarray, qb: np.ndarray, kb: np.ndarray, W: np.ndarray
               ) -> tuple[np.ndarray, float]:
    """The query/key bias parts of every bond score as fields and an energy constant.

    ``score_ij = x_i A_i B_j^T x_j + x_i . (A_i kb_j) + x_j . (B_j qb_i) + qb_i . kb_j``; summed
    over the bonds W (n, n) with ``H = -sum W_ij score_ij``: the field
    ``h_i = A_i sum_j W_ij kb_j + B_i sum_k W_ki qb_k`` (n, d_model) and the constant
    ``-sum_ij W_ij qb_i . kb_j``. A, B (n or 1, d_model, r), qb, kb (n or 1, r) (one row: the
    same for every site).
    """
    n = W.shape[0]
    qb = np.broadcast_to(qb, (n, qb.shape[-1]))
    kb = np.broadcast_to(kb, (n, kb.shape[-1]))
    Wk, Wq = W @ kb, W.T @ qb                                                   # (n, r)
    field = (np.einsum("idr,ir->id", np.broadcast_to(A, (n,) + A.shape[1:]), Wk)
             + np.einsum("idr,ir->id", np.broadcast_to(B, (n,) + B.shape[1:]), Wq))
    return field, -float(np.sum(W * (qb @ kb.T)))
