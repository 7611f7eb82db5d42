"""Transformer adapters (``spinsim.models``): load GPT-2 / Llama-family models, extract every
head's factors in one convention, capture what heads see, build head Hamiltonians.

Conventions: row vectors, ``q = x W_Q + b_Q``; ``W_Q, W_K, W_V`` (d_model, d_head), ``W_O``
(d_head, d_model); score ``scale * q_i . k_j`` (query i, key j); heads ``L{layer}H{head}`` from 0.
"""
from .heads import (HeadSet, HeadWeights, all_head_labels, apply_rotary, classify_spectrum, extract_heads,
                    head_label, parse_head, parse_heads, symmetric_spectrum)
from .attention import context_field, recompute_attention
from .capture import Capture, run_capture, verify_extraction
from .answers import AnswerTokenizationError, answer_ids, comparison_index, probe_tokens, tokenize_answers
from .loading import (EMBEDDED_MODELS, LoadedModel, ModelLoadError, ModelSource, ModelWeights, load_model,
                      load_weights, model_from_module, resolve_model, weights_hash)

__all__ = ["HeadSet", "HeadWeights", "all_head_labels", "apply_rotary", "classify_spectrum", "extract_heads",
           "head_label", "parse_head", "parse_heads", "symmetric_spectrum", "EMBEDDED_MODELS", "LoadedModel",
           "ModelLoadError", "ModelSource", "ModelWeights", "load_model", "load_weights", "model_from_module",
           "resolve_model", "weights_hash", "Capture", "run_capture", "recompute_attention",
           "verify_extraction", "context_field", "AnswerTokenizationError", "answer_ids", "tokenize_answers",
           "comparison_index", "probe_tokens"]

