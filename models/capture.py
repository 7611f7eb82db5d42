"""Forward passes that record what each head sees, and the check that extraction is right.

:func:`run_capture` runs the model on token sequences (right-padded into batches; causal attention
makes the padding invisible to real positions, and positions stay 0..T-1) and records per
sequence:

* ``x[s]`` (n_layers, T_s, d_model): the normalised input of every attention layer (GPT-2: ln_1
  output; Llama: input_layernorm output), i.e. the vectors the heads' W_Q, W_K, W_V act on;
* ``final_in[s]`` (T_s, d_model): the residual stream entering the final norm;
* ``attn[s]`` (n_layers, n_heads, T_s, T_s): the model's own attention probabilities
  (``output_attentions``, query i = row, key j = column), when asked;
* ``z[s]`` (n_layers, T_s, n_heads * d_head): the heads' outputs entering the output projection,
  when asked (mean ablation);
* ``logits[s]`` (n_pos, vocab) at the requested positions (default: the last one).

:func:`verify_extraction` compares the model's own probabilities with those rebuilt from the
extracted factors and captured inputs by :func:`spinsim.models.attention.recompute_attention`.
(The function is ``run_capture``, not ``capture``, so that ``spinsim.models.capture`` stays the
module it names.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import arch
from .attention import recompute_attention
from .heads import HeadSet

__all__ = ["Capture", "run_capture", "verify_extraction", "check_extraction", "ExtractionMismatch",
           "EXTRACTION_TOLERANCE"]

#: largest |recomputed - model| attention probability accepted (float32 forward passes: ~1e-6)
EXTRACTION_TOLERANCE = 1e-4


class ExtractionMismatch(ValueError):
    """The attention rebuilt from the extracted heads differs from the model's own (the message
    gives the size, where, and the cause when spinsim can name it)."""


@dataclass
class Capture:
    """Per-sequence records of one or more forward passes (see module docstring for shapes)."""

    tokens: list[np.ndarray]
    x: list[np.ndarray]
    final_in: list[np.ndarray]
    logits: list[np.ndarray]
    logit_positions: list[np.ndarray]
    attn: list[np.ndarray] | None = None
    z: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.tokens)


def _base(model: Any) -> Any:
    return model.transformer if hasattr(model, "transformer") else model.model


def run_capture(lm: Any, seqs: Sequence[Sequence[int]], attentions: bool = False, head_outputs: bool = False,
            logit_positions: Sequence[Sequence[int]] | None = None, batch_size: int = 32,
            inputs: bool = True) -> Capture:
    """Run ``lm`` (a :class:`~spinsim.models.loading.LoadedModel`) on token sequences.

    seqs: token-id lists (no special tokens are added). logit_positions: per sequence, the
    positions whose next-token logits to keep (default: the last). Returns a :class:`Capture`.
    Raises ValueError for an empty sequence, or logit positions outside their sequence or not
    one list per sequence.
    """
    import torch

    model = lm.model
    n_layers = len(arch.blocks(model))
    seqs = [np.asarray(s, dtype=np.int64) for s in seqs]
    if any(s.ndim != 1 or s.size == 0 for s in seqs):
        raise ValueError("run_capture needs non-empty 1-D token sequences")
    from .loading import check_context
    for i, s in enumerate(seqs):                  # before any forward pass allocates O(N^2) attention
        check_context(lm, len(s), "the prompt" if len(seqs) == 1 else f"sequence {i}")
    if logit_positions is None:
        logit_positions = [[len(s) - 1] for s in seqs]
    pos_lists = [np.asarray(p, dtype=np.int64).reshape(-1) for p in logit_positions]
    if len(pos_lists) != len(seqs):
        raise ValueError(f"logit_positions holds {len(pos_lists)} lists for {len(seqs)} sequences")
    for i, (s, p) in enumerate(zip(seqs, pos_lists)):
        if p.size and (p.min() < 0 or p.max() >= len(s)):     # a padded position would read padding
            raise ValueError(f"logit_positions[{i}] = {p.tolist()} must lie in 0..{len(s) - 1} "
                             f"(sequence {i} has {len(s)} tokens)")
    out = Capture(tokens=seqs, x=[], final_in=[], logits=[], logit_positions=pos_lists,
                  attn=[] if attentions else None, z=[] if head_outputs else None)
    store: dict[str, Any] = {}

    def attn_hook(l: int):
        def hook(mod, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            store.setdefault("x", [None] * n_layers)[l] = hidden.detach()
        return hook

    def z_hook(l: int):
        def hook(mod, args):
            store.setdefault("z", [None] * n_layers)[l] = args[0].detach()
        return hook

    def norm_hook(mod, args):
        store["final_in"] = args[0].detach()

    handles = [arch.final_norm_module(model).register_forward_pre_hook(norm_hook)]
    try:
        if inputs:
            handles += [arch.attention(model, l).register_forward_pre_hook(attn_hook(l), with_kwargs=True)
                        for l in range(n_layers)]
        if head_outputs:
            handles += [arch.out_proj(model, l).register_forward_pre_hook(z_hook(l)) for l in range(n_layers)]
        base = _base(model)
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start:start + batch_size]
            T = max(len(s) for s in chunk)
            ids = torch.zeros((len(chunk), T), dtype=torch.long)
            for b, s in enumerate(chunk):
                ids[b, :len(s)] = torch.from_numpy(s)
            store.clear()
            with torch.no_grad():
                res = base(input_ids=ids, output_attentions=attentions, use_cache=False)
                hidden = res.last_hidden_state                        # after the final norm
                for b, s in enumerate(chunk):
                    n = len(s)
                    pos = torch.from_numpy(pos_lists[start + b])
                    out.logits.append(model.lm_head(hidden[b, pos]).double().numpy())
                    out.final_in.append(store["final_in"][b, :n].float().numpy())
                    if inputs:
                        out.x.append(np.stack([store["x"][l][b, :n].float().numpy() for l in range(n_layers)]))
                    if attentions:
                        out.attn.append(np.stack([res.attentions[l][b, :, :n, :n].float().numpy()
                                                  for l in range(n_layers)]))
                    if head_outputs:
                        out.z.append(np.stack([store["z"][l][b, :n].float().numpy() for l in range(n_layers)]))
    finally:
        for h in handles:
            h.remove()
    return out


def verify_extraction(heads: HeadSet, cap: Capture) -> float:
    """Largest |recomputed - model| attention probability over every sequence, layer, head and
    (query, key) pair of a capture made with ``attentions=True``."""
    return _worst(heads, cap)[0]


def _worst(heads: HeadSet, cap: Capture) -> tuple[float, int, int, int, int]:
    """(error, sequence, layer, head, query) of the largest |recomputed - model| probability."""
    if cap.attn is None:
        raise ValueError("verify_extraction needs a capture made with attentions=True")
    worst = (0.0, 0, 0, 0, 0)
    for s, (x, a) in enumerate(zip(cap.x, cap.attn)):
        d = np.abs(recompute_attention(heads, x) - a)
        if d.size and float(d.max()) > worst[0]:
            l, h, i, _ = np.unravel_index(int(np.argmax(d)), d.shape)
            worst = (float(d.max()), s, int(l), int(h), int(i))
    return worst


def check_extraction(heads: HeadSet, cap: Capture, tolerance: float = EXTRACTION_TOLERANCE) -> float:
    """The extraction check of every command that builds head systems: the attention rebuilt
    from ``heads`` on the captured inputs against the model's own (``cap`` made with
    ``attentions=True`` on the prompts the command uses).

    Returns the largest |difference| (probability). Raises :class:`ExtractionMismatch` (one line:
    the size, the sequence, head and query row, and the cause: the features of the model's
    attention that a head Hamiltonian does not hold, :func:`~spinsim.models.rope.attention_features`,
    or 'no known cause').
    """
    from .rope import attention_features

    err, s, l, h, i = _worst(heads, cap)
    if not err <= tolerance:
        T = len(cap.tokens[s])
        feats = attention_features(heads.config or {}, T)
        cause = ("; ".join(feats) if feats
                 else "no known cause (a feature of this model's attention spinsim does not model)")
        raise ExtractionMismatch(f"the heads' attention differs from the model's by {err:.3g} (> {tolerance:g}) at "
                                 f"L{l}H{h}, query {i} of a {T}-token prompt: {cause}")
    return err
