"""Where things live inside an HF causal LM, per family (the one place that knows module names).

GPT-2 (``GPT2LMHeadModel``): blocks ``transformer.h[l]``, attention ``.attn`` (input: ln_1
output), output projection ``.attn.c_proj`` (Conv1D, input = heads concatenated, head h in
features ``h*dh:(h+1)*dh``), final norm ``transformer.ln_f`` (LayerNorm), embeddings ``wte`` and
``wpe``, unembedding ``lm_head`` (tied to wte).

Llama family (``LlamaForCausalLM``): blocks ``model.layers[l]``, attention ``.self_attn`` (input:
input_layernorm output), output projection ``.self_attn.o_proj`` (nn.Linear, same head layout of
its input), final norm ``model.norm`` (RMSNorm), embeddings ``model.embed_tokens``, ``lm_head``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["blocks", "attention", "out_proj", "final_norm", "final_norm_module", "FinalNorm", "embedding_matrix",
           "position_matrix", "unembedding"]


def _family(model: Any) -> str:
    from .loading import family_of
    return family_of(model.config)


def blocks(model: Any) -> list:
    """The decoder blocks, in order."""
    return list(model.transformer.h) if _family(model) == "gpt2" else list(model.model.layers)


def attention(model: Any, layer: int) -> Any:
    """Attention module of a block; its first input is the normalised residual x (post-norm)."""
    b = blocks(model)[layer]
    return b.attn if _family(model) == "gpt2" else b.self_attn


def out_proj(model: Any, layer: int) -> Any:
    """Output projection; its input is the heads' outputs z concatenated (head h: h*dh:(h+1)*dh)."""
    a = attention(model, layer)
    return a.c_proj if _family(model) == "gpt2" else a.o_proj


def final_norm_module(model: Any) -> Any:
    """The final norm module (GPT-2 ``transformer.ln_f``, Llama ``model.norm``); its input is the
    last residual stream."""
    return model.transformer.ln_f if _family(model) == "gpt2" else model.model.norm


@dataclass(frozen=True)
class FinalNorm:
    """The final norm before the unembedding: ``kind`` 'layernorm' (weight, bias) or 'rmsnorm'
    (weight; bias None), ``eps``. Arrays (d_model,) float64."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray | None
    eps: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "layernorm":
            mu = x.mean(-1, keepdims=True)
            var = ((x - mu) ** 2).mean(-1, keepdims=True)
            return self.weight * (x - mu) / np.sqrt(var + self.eps) + self.bias
        r = np.sqrt((x ** 2).mean(-1, keepdims=True) + self.eps)
        return self.weight * x / r

    def linear_readout(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Readout vectors ``u_eff`` with ``u . d norm(x) = u_eff . dx`` (first order, exact
        Jacobian of the norm at x).

        x: (..., d_model) residual before the norm; u: (..., d_model) unembedding rows (broadcast).
        LayerNorm: ``u_eff = (P w - xh (w.xh)/n) / sigma``, w = g*u, xh = (x - mu)/sigma, P
        centres. RMSNorm: ``u_eff = w/r - x (w.x)/(n r^3)``. Returns (..., d_model) float64.
        """
        x = np.asarray(x, dtype=np.float64)
        w = self.weight * np.asarray(u, dtype=np.float64)
        n = x.shape[-1]
        if self.kind == "layernorm":
            mu = x.mean(-1, keepdims=True)
            sig = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + self.eps)
            xh = (x - mu) / sig
            Pw = w - w.mean(-1, keepdims=True)
            return (Pw - xh * (w * xh).sum(-1, keepdims=True) / n) / sig
        r = np.sqrt((x ** 2).mean(-1, keepdims=True) + self.eps)
        return w / r - x * (w * x).sum(-1, keepdims=True) / (n * r ** 3)


def final_norm(weights: Any) -> FinalNorm:
    """The final norm from :class:`~spinsim.models.loading.ModelWeights` (or a LoadedModel)."""
    w = getattr(weights, "weights", weights)
    c = w.config
    if w.family == "gpt2":
        return FinalNorm("layernorm", np.asarray(w.get("ln_f.weight"), np.float64),
                         np.asarray(w.get("ln_f.bias"), np.float64), float(c.get("layer_norm_epsilon", 1e-5)))
    return FinalNorm("rmsnorm", np.asarray(w.get("model.norm.weight"), np.float64), None,
                     float(c.get("rms_norm_eps", 1e-6)))


def embedding_matrix(weights: Any) -> np.ndarray:
    """Token embedding (vocab, d_model), float32 (GPT-2 ``wte``, Llama ``embed_tokens``)."""
    w = getattr(weights, "weights", weights)
    return w.get("wte.weight" if w.family == "gpt2" else "model.embed_tokens.weight")


def position_matrix(weights: Any) -> np.ndarray | None:
    """Learned position embedding (n_positions, d_model) for GPT-2, None for rotary models."""
    w = getattr(weights, "weights", weights)
    return w.get("wpe.weight") if w.family == "gpt2" else None


def unembedding(weights: Any) -> np.ndarray:
    """Unembedding rows (vocab, d_model): ``lm_head.weight`` (tied to the embedding in GPT-2 and
    SmolLM2), so that ``logits = norm(x) @ U.T``."""
    w = getattr(weights, "weights", weights)
    if w.has("lm_head.weight"):
        return w.get("lm_head.weight")
    return embedding_matrix(w)
