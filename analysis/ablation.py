"""Head ablations: does removing a head move the model's logit gap the way the head's direct
contribution says it should?

* The hook (:mod:`.ablation_forward`): a forward pre-hook on the attention output projection
  rewrites head h's slice of its input z with zeros (``zero``) or with the head's mean output
  over every token of every prompt of the clean run (``mean``), at every position.
* Measured shift: ``dL_actual(ablated) - dL_actual(clean)`` for every head x prompt (first:
  logit gap at the last prompt position; first-differing: at the first token where the answers
  differ; full: teacher-forced log-probability gap). Items whose comparison is undefined (first
  tokens coincide) are NaN (:func:`spinsim.analysis.gaps.excluded_items`).
* Predicted shift: the change of the head's *direct* path only, to first order: the head's output
  change at the readout position, ``delta_o = (z_repl - z) W_O``, read through the final norm
  linearised at the clean residual stream: ``sum_r sign_r * u_eff_r . delta_o(t_r)`` with the
  readout vectors of :func:`spinsim.analysis.gaps.readouts` (for ``full`` these include the
  log-softmax normaliser, ``u - E_p[u]``). Indirect paths (through later layers) are what the
  difference measured - predicted leaves.
* Fast path (:class:`~.ablation_forward.GroupedReplay`): the clean run records each block's
  input; ablating a head of layer l reruns only blocks l..L-1, for every head of that layer and
  every prompt in one batch.

The paper's test (GPT-2): zero head L3H5 and the control L0H0 on "Lions are carnivores. Cows
are" (herbivores vs omnivores): :func:`paper_ablation_test`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spinsim.models.capture import Capture
from spinsim.models.heads import HeadSet, head_label, parse_head

from .ablation_forward import ABLATION_MODES, GroupedReplay, ablate_heads, check_ablation_mode
from .gaps import GapMode, Study, actual_gaps, answer_sequences, compared_token, excluded_items, readouts
from .prompts import PromptItem, TokenizedItem, tokenize_items

__all__ = ["ABLATION_MODES", "ablate_heads", "AblationResult", "ablation_study", "LIONS_COWS",
           "paper_ablation_test", "correlation"]

LIONS_COWS = PromptItem("Lions are carnivores. Cows are", "herbivores", "omnivores", "paper:Lions/Cows")


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two flattened arrays (nan entries dropped; nan if < 3 points or constant)."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@dataclass
class AblationResult:
    """Ablation shifts, arrays indexed [ablation mode, prompt, layer, head] (nan where a head was
    not ablated). ``clean``: dL_actual (P,) of the clean run."""

    modes: tuple[str, ...]
    candidates: str
    heads: list[tuple[int, int]]
    clean: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    n_layers: int
    n_heads: int
    extras: dict[str, Any] = field(default_factory=dict)
    excluded: list[tuple[int, str]] = field(default_factory=list)    # (prompt, 'file:line: reason'): NaN rows

    def correlations(self) -> dict[str, dict[str, Any]]:
        """Per ablation mode: ``pooled`` r over head x prompt, ``per_prompt`` r across heads (P,),
        ``head_mean`` r of the prompt-averaged shifts across heads."""
        import warnings

        out = {}
        for i, m in enumerate(self.modes):
            meas, pred = self.measured[i], self.predicted[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # heads not ablated: all-nan columns
                m_mean, p_mean = np.nanmean(meas, 0), np.nanmean(pred, 0)
            out[m] = {"pooled": correlation(meas, pred),
                      "per_prompt": np.array([correlation(meas[p], pred[p]) for p in range(meas.shape[0])]),
                      "head_mean": correlation(m_mean, p_mean)}
        return out


def _study_sequences(items: Sequence[TokenizedItem], candidates: str) -> tuple[list, list]:
    """``first`` / ``first-differing``: the prompt followed by the answers' common prefix A_<k
    (none for ``first``), read at its last position; ``full``: :func:`answer_sequences`."""
    if candidates != "full":
        ks = [compared_token(it, candidates) or 0 for it in items]
        return ([list(it.prompt_ids) + list(it.correct_ids[:k]) for it, k in zip(items, ks)],
                [[it.n_prompt - 1 + k] for it, k in zip(items, ks)])
    return answer_sequences(items)


def _logit_gaps(items: Sequence[TokenizedItem], logits: list[np.ndarray], candidates: str) -> np.ndarray:
    """dL_actual (n_prompts,) from the logits of :func:`_study_sequences`' sequences (NaN for an
    item the candidates mode excludes)."""
    if candidates != "full":
        out = np.full(len(items), np.nan)
        for p, it in enumerate(items):
            k = compared_token(it, candidates)
            if k is not None:
                out[p] = logits[p][0, it.correct_ids[k]] - logits[p][0, it.wrong_ids[k]]
        return out
    cap = Capture(tokens=[], x=[], final_in=[], logits=list(logits), logit_positions=[])
    return actual_gaps(Study(list(items), cap), candidates)


def _readouts(lm: Any, items: Sequence[TokenizedItem], seqs: list, replay: GroupedReplay,
              candidates: str) -> list[list[tuple[int, int, np.ndarray, float]]]:
    """Readout vectors of :func:`~spinsim.analysis.gaps.readouts` with the final norm linearised
    at the clean run (for the predicted direct shift)."""
    cap = Capture(tokens=[np.asarray(s) for s in seqs], x=[], final_in=[], logits=[], logit_positions=[])
    final_in = [replay.final_in(b) for b in range(len(seqs))]
    if candidates != "full":
        cap.final_in = [f for f in final_in for _ in (0, 1)]
        cap.logits = [lg for lg in replay.clean_logits for _ in (0, 1)]
    else:
        cap.final_in, cap.logits = final_in, list(replay.clean_logits)
    mode = GapMode(input="residual", o_slice="correct", candidates=candidates, biases="exact", final_norm="linear")
    return readouts(Study(list(items), cap), lm, mode)


def ablation_study(lm: Any, heads: HeadSet, items: Sequence[TokenizedItem],
                   which: Sequence[tuple[int, int]] | None = None, modes: Sequence[str] = ("zero", "mean"),
                   candidates: str = "first", progress: Any = None) -> AblationResult:
    """Ablate each head of ``which`` (default: all) alone, in each mode, on every item.

    ``heads`` supplies W_O (correct rows). Returns an :class:`AblationResult` with arrays
    (n_modes, n_prompts, n_layers, n_heads); the predicted shifts use the clean run's final-norm
    inputs (see module docstring). ``progress(mode, layer)`` is called after each layer. Raises
    ValueError for an unknown mode or heads extracted with the paper's o-slice.
    """
    import torch

    for m in modes:
        check_ablation_mode(m)
    if heads.o_slice != "correct":
        raise ValueError("ablation predictions need the heads' real output maps (o_slice 'correct')")
    n_layers, n_heads, dh = heads.n_layers, heads.n_heads, heads.d_head
    which = ([(l, h) for l in range(n_layers) for h in range(n_heads)] if which is None
             else [tuple(map(int, x)) for x in which])
    seqs, positions = _study_sequences(items, candidates)
    replay = GroupedReplay(lm, seqs, positions)
    clean = _logit_gaps(items, replay.clean_logits, candidates)

    # mean head outputs over every token of every sequence (per layer, (n_heads, d_head))
    means = [torch.cat([replay.z(l, b) for b in range(len(seqs))]).double().mean(0).reshape(n_heads, dh).numpy()
             for l in range(n_layers)]
    terms_by_prompt = _readouts(lm, items, seqs, replay, candidates)
    W_O = heads.W_O.astype(np.float64)

    shape = (len(modes), len(items), n_layers, n_heads)
    measured, predicted = np.full(shape, np.nan), np.full(shape, np.nan)
    by_layer: dict[int, list[int]] = {}
    for l, h in which:
        by_layer.setdefault(l, []).append(h)
    for mi, mode in enumerate(modes):
        for l, head_ids in sorted(by_layer.items()):
            vals = None
            if mode == "mean":
                vals = {h: torch.as_tensor(means[l][h], dtype=torch.float32) for h in head_ids}
            logits = replay.run_from(l, [[h] for h in head_ids], vals)
            for i, h in enumerate(head_ids):
                measured[mi, :, l, h] = _logit_gaps(items, logits[i], candidates) - clean
                repl = np.zeros(dh) if mode == "zero" else means[l][h]
                for p, terms in enumerate(terms_by_prompt):
                    total = 0.0
                    for s, t, u, sign in terms:
                        b = s // 2 if candidates != "full" else s
                        z = replay.z(l, b)[t, h * dh:(h + 1) * dh].double().numpy()
                        total += sign * float((repl - z) @ (W_O[l, h] @ u))
                    predicted[mi, p, l, h] = total if terms else np.nan
            if progress is not None:
                progress(mode, l)
    tok = getattr(lm, "tokenizer", None)
    excluded = excluded_items(items, candidates, (lambda ids: str(tok.decode(list(ids)))) if tok is not None else None)
    return AblationResult(tuple(modes), candidates, list(which), clean, measured, predicted, n_layers, n_heads,
                          {"means": np.stack(means)}, excluded)


def paper_ablation_test(lm: Any, heads: HeadSet, labels: Sequence[str] = ("L3H5", "L0H0"),
                        mode: str = "zero", item: PromptItem = LIONS_COWS) -> dict[str, dict[str, float]]:
    """The paper's test: ablate each head alone on "Lions are carnivores. Cows are" and report,
    per head label, the clean first-token logit gap (herbivores - omnivores) ``clean_logit_gap``,
    the ablated one ``ablated_logit_gap``, their difference ``shift`` and the head's
    ``predicted_direct_shift`` (logit units)."""
    which = [parse_head(x, heads.n_layers, heads.n_heads) for x in labels]
    titems = tokenize_items([item], lm.encode)
    res = ablation_study(lm, heads, titems, which, (mode,), "first")
    out = {}
    for l, h in which:
        out[head_label(l, h)] = {"clean_logit_gap": float(res.clean[0]),
                                 "ablated_logit_gap": float(res.clean[0] + res.measured[0, 0, l, h]),
                                 "shift": float(res.measured[0, 0, l, h]),
                                 "predicted_direct_shift": float(res.predicted[0, 0, l, h])}
    return out
