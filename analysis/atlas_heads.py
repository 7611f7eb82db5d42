"""A model's attention heads as an atlas's systems (:class:`ModelHeads`).

Each system is the SPEC section 1 Hamiltonian of one head on one context
(:func:`spinsim.models.hamiltonians.head_system`): every context token a free O(d_model) spin of
length |x_i| (``input='residual'``: the normalised input the head sees), causal graph, the exact
rotary coupling for Llama-family heads (per-site factors, every pair's score the model's), the
query/key biases as fields, and the field axis the prompt field ``h x_i/|x_i|``. The Monte Carlo
runs in the exact reduced spin space (``reduce``, :mod:`spinsim.reduced_space`).

Contexts: one prompt (one length, one sample), or a quenched ensemble over lengths and samples
(:mod:`.atlas_contexts`); every (length, sample) context is stored with the atlas as JSON
``{"tokens": [...], "text": "..."}``.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from spinsim.directions import resolve_direction
from spinsim.hamiltonian import Hamiltonian

__all__ = ["ModelHeads", "context_json"]


def context_json(tokens: Sequence[int], text: str) -> str:
    """The stored form of one context."""
    return json.dumps({"tokens": [int(t) for t in tokens], "text": text})


class ModelHeads:
    """The heads ``labels`` (``'L3H5'``; None or ``'all'``: every head) of a loaded model
    (:class:`spinsim.models.loading.LoadedModel`) on ``contexts[i_length][i_sample]`` (token id
    lists; all of one length per i_length). ``input`` and ``rotary`` as for
    :func:`~spinsim.models.hamiltonians.head_system`; ``normalisation`` ``'plain'`` or ``'kac'``
    (:func:`spinsim.analysis.atlas_contexts.normalise`). Raises ValueError for an unknown head
    label (naming the model's range) or contexts of unequal lengths within a length."""

    def __init__(self, lm: Any, labels: Sequence[str] | str | None, contexts: Sequence[Sequence[Sequence[int]]],
                 input: str = "residual", rotary: str = "auto", normalisation: str = "plain") -> None:
        from spinsim.models.heads import all_head_labels, extract_heads, parse_head

        self.lm = lm
        self.hs = extract_heads(lm.weights)
        if labels is None or (isinstance(labels, str) and labels == "all"):
            labels = all_head_labels(self.hs.n_layers, self.hs.n_heads)
        pairs = [parse_head(x, self.hs.n_layers, self.hs.n_heads) for x in labels]
        self.heads = [str(x) for x in labels]
        self.layer = np.array([p[0] for p in pairs], np.int64)
        self.head_index = np.array([p[1] for p in pairs], np.int64)
        self._contexts = [[[int(t) for t in c] for c in per_len] for per_len in contexts]
        if not self._contexts or any(not per_len for per_len in self._contexts):
            raise ValueError("ModelHeads needs at least one context per length")
        lengths = []
        for per_len in self._contexts:
            sizes = {len(c) for c in per_len}
            if len(sizes) != 1:
                raise ValueError(f"contexts of one length must all have that length; got lengths {sorted(sizes)}")
            lengths.append(sizes.pop())
        n_samples = {len(per_len) for per_len in self._contexts}
        if len(n_samples) != 1:
            raise ValueError(f"every length needs the same number of samples, got {sorted(n_samples)}")
        self.lengths = np.array(lengths, np.int64)
        self.n_samples = n_samples.pop()
        decode = (lambda ids: str(lm.tokenizer.decode(ids))) if lm.tokenizer is not None else (lambda ids: "")
        self.contexts = np.array([[context_json(c, decode(c)) for c in per_len] for per_len in self._contexts],
                                 dtype=object)
        from .atlas_contexts import NORMALISATIONS

        if normalisation not in NORMALISATIONS:
            raise ValueError(f"unknown normalisation {normalisation!r}; allowed: {', '.join(NORMALISATIONS)}")
        self.input = input
        self.rotary = rotary
        self.normalisation = normalisation
        self.n_comp = int(self.hs.W_Q.shape[2])

    def identity(self) -> list[tuple[str, Any]]:
        return [("model_id", self.lm.model_id), ("weights_sha256", self.lm.weights_sha256),
                ("input", self.input), ("rotary", self.rotary), ("normalisation", self.normalisation),
                ("contexts", self._contexts)]

    def system(self, i: int, i_len: int, i_sample: int) -> Hamiltonian:
        """Head i's Hamiltonian on context (i_len, i_sample)."""
        from spinsim.models.hamiltonians import head_system

        from .atlas_contexts import normalise

        H = head_system(self.lm, (int(self.layer[i]), int(self.head_index[i])), self._contexts[i_len][i_sample],
                        input=self.input, rotary=self.rotary, heads=self.hs).H
        return normalise(H, self.normalisation)

    def build(self, i: int) -> list[list[tuple[Hamiltonian, np.ndarray]]]:
        out = []
        for il, per_len in enumerate(self._contexts):
            row = []
            for s in range(len(per_len)):
                H = self.system(i, il, s)
                row.append((H, resolve_direction(H, "prompt")[0]))
            out.append(row)
        return out
