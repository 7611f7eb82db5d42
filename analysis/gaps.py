"""Logit gaps: what a head's spin-bath picture predicts (dL_theory) against what the model does
(dL_actual), for every head and prompt.

The paper's computation (Bhattacharjee & Lee, SPEC section 0), for head (l, h) and a prompt of
tokens t_0..t_T with correct answer A and wrong answer B:

    s_i      = wte[t_i]                                  (raw token embeddings; no position, no LN)
    alpha_i  = softmax_i( s_T J s_i^T ),  i = 0..T       (the last token attends to itself too)
    J        = W_Q W_K^T / sqrt(d_head)                  (not symmetrised; no biases)
    N0       = sum_i alpha_i s_i W_V W_O                 (context field, a d_model vector)
    dL_theory = N0 . (u_A - u_B)                         (u = unembedding rows = wte for GPT-2)
    dL_actual = logit_A - logit_B                        (full model, last position)

with the first sub-token of each answer and W_O the *columns* of c_proj (a bug). The options of
:class:`GapMode` reproduce it (:meth:`GapMode.paper`) and correct it (:meth:`GapMode.corrected`):

* ``input``: ``embed`` (raw embeddings, and no rotary: the paper), ``embed+pos`` (GPT-2: wte +
  wpe; Llama: embeddings with rotary positions), ``residual`` (the normalised input the head really
  sees, captured from the forward pass; rotary included). No LayerNorm is applied to embed inputs.
* ``o_slice``: ``paper`` (columns of GPT-2's c_proj) or ``correct`` (rows; Llama: only this).
* Answers are the tokens that follow the prompt when prompt and answer are tokenised together
  (:mod:`spinsim.models.answers`).
* ``candidates``: ``first`` (first sub-tokens; dL_actual is the logit difference at the last
  prompt position; an item whose two answers start with the same token has no first-token gap
  and is excluded from the mode, named in :func:`excluded_items`: NaN in its rows, left out of
  the statistics), ``first-differing`` (the first token where the answers differ, read after
  the prompt and the answers' common prefix, the same context for both: for items whose first
  tokens differ this is ``first``; an item where one answer's tokens are a prefix of the other's
  is excluded) or ``full`` (teacher forcing: dL_actual = sum_k log p(A_k | prompt, A_<k) -
  the same for B; dL_theory = sum_k N0(t_k) . (u_{A_k} - E_p[u](t_k)) - the same for B: the
  head's direct contribution to the log-probability of every answer sub-token at the position that
  predicts it, with the context field N0 recomputed at each position of the teacher-forced
  sequence and the log-softmax normaliser linearised, ``d log p(a) = d logit_a - E_p[d logit]``
  with p the model's own next-token distribution there; for the first sub-token the normaliser
  terms of A and B cancel exactly).
* ``biases``: ``exact`` (q, k, v with their biases: N0 then includes b_V W_O) or ``drop``.
* ``final_norm``: ``none`` (N0 . u, the paper) or ``linear`` (N0 through the final norm linearised
  at the model's own residual stream at that position: the head's first-order direct logit
  contribution, see :meth:`spinsim.models.arch.FinalNorm.linear_readout`).

``corrected`` = residual, correct, full, exact, linear: dL_theory is then the head's direct
contribution to the model's own gap (its true attention, its true output map).
For Llama-family models the paper's column slice does not exist: their paper-mode analogue is
``embed`` (no rotary), ``correct`` rows, ``first`` sub-tokens, biases dropped, no final norm.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from spinsim.models import arch
from spinsim.models.answers import AnswerTokenizationError, comparison_index
from spinsim.models.attention import layer_outputs
from spinsim.models.capture import Capture, check_extraction, run_capture
from spinsim.models.rope import check_attention
from spinsim.models.heads import HeadSet
from spinsim.models.loading import check_context

from .prompts import TokenizedItem

__all__ = ["INPUTS", "CANDIDATES", "BIASES", "FINAL_NORMS", "GapMode", "Study", "answer_sequences", "run_forward",
           "actual_gaps", "theory_gaps", "head_inputs", "readouts", "compared_token", "excluded_items"]

INPUTS = ("embed", "embed+pos", "residual")
CANDIDATES = ("first", "first-differing", "full")
BIASES = ("exact", "drop")
FINAL_NORMS = ("none", "linear")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(repr, allowed))}")


@dataclass(frozen=True)
class GapMode:
    """How dL_theory and dL_actual are computed (see module docstring)."""

    input: str = "residual"
    o_slice: str = "correct"
    candidates: str = "full"
    biases: str = "exact"
    final_norm: str = "linear"
    name: str = "corrected"

    def __post_init__(self) -> None:
        _check("input mode", self.input, INPUTS)
        _check("o-slice", self.o_slice, ("paper", "correct"))
        _check("candidates mode", self.candidates, CANDIDATES)
        _check("biases", self.biases, BIASES)
        _check("final-norm", self.final_norm, FINAL_NORMS)

    @classmethod
    def paper(cls, family: str = "gpt2") -> "GapMode":
        """The published computation (GPT-2); for Llama its analogue with the correct rows."""
        return cls("embed", "paper" if family == "gpt2" else "correct", "first", "drop", "none", "paper")

    @classmethod
    def corrected(cls) -> "GapMode":
        return cls()

    def for_family(self, family: str) -> "GapMode":
        """Raise if the mode does not exist for the family (the column slice is GPT-2 only)."""
        if self.o_slice == "paper" and family != "gpt2":
            raise ValueError(f"o-slice 'paper' (columns of GPT-2's c_proj) does not exist for {family!r} models; "
                             "use --o-slice correct")
        return self

    def attrs(self) -> dict[str, str]:
        d = asdict(self)
        return {"mode_name": d.pop("name"), "input_mode": d["input"], "o_slice": d["o_slice"],
                "candidates_mode": d["candidates"], "biases": d["biases"], "final_norm": d["final_norm"]}

    def with_(self, **kw: Any) -> "GapMode":
        return replace(self, **kw)


@dataclass
class Study:
    """The forward-pass data that every mode shares, for P items.

    seqs 2p (prompt + correct) and 2p + 1 (prompt + wrong); ``cap`` holds their captured inputs,
    final-norm inputs and logits at positions ``n_prompt - 1 + k`` (k over the answer's tokens).
    """

    items: list[TokenizedItem]
    cap: Capture

    @property
    def n_prompts(self) -> int:
        return len(self.items)


def compared_token(it: TokenizedItem, candidates: str) -> int | None:
    """Index k of the answer token a single-token comparison reads (``first``: 0,
    ``first-differing``: the answers' common prefix length), or None when the item is excluded
    (``first``: the first tokens coincide; ``first-differing``: no differing token). ``full``:
    None is never returned (every token is read; returns 0)."""
    _check("candidates mode", candidates, CANDIDATES)
    if candidates == "full":
        return 0
    try:
        return comparison_index(it.correct_ids, it.wrong_ids, candidates == "first-differing")
    except AnswerTokenizationError:
        return None


def excluded_items(items: Sequence[TokenizedItem], candidates: str,
                   decode: Callable[[Sequence[int]], str] | None = None) -> list[tuple[int, str]]:
    """``(index, reason)`` of every item a ``candidates`` mode leaves out (one line each, naming
    the item's file:line, its answers and, with ``decode`` (ids -> text), the shared token)."""
    out = []
    for p, it in enumerate(items):
        if candidates == "full":
            break
        try:
            comparison_index(it.correct_ids, it.wrong_ids, candidates == "first-differing",
                             (it.item.correct, it.item.wrong), decode)
        except AnswerTokenizationError as exc:
            out.append((p, f"{it.item.where}: {exc}"))
    return out


def answer_sequences(items: Sequence[TokenizedItem]) -> tuple[list[list[int]], list[list[int]]]:
    """Sequences 2p = prompt + correct and 2p + 1 = prompt + wrong of every item, and for each
    the positions ``n_prompt - 1 + k`` that predict the answer's k-th token."""
    seqs, pos = [], []
    for it in items:
        for ans in (it.correct_ids, it.wrong_ids):
            seqs.append(list(it.prompt_ids) + list(ans))
            pos.append([it.n_prompt - 1 + k for k in range(len(ans))])
    return seqs, pos


def run_forward(lm: Any, items: Sequence[TokenizedItem], residual: bool = True, batch_size: int = 16,
                heads: HeadSet | None = None) -> Study:
    """One forward pass over (prompt + correct, prompt + wrong) for every item.

    With ``heads``, the attention the heads rebuild on these sequences is checked against the
    model's own first: a feature of the model's attention the heads cannot hold is refused
    (UnsupportedAttention), a difference above tolerance raises ExtractionMismatch naming the
    cause (:func:`spinsim.models.capture.check_extraction`)."""
    seqs, pos = answer_sequences(items)
    check = heads is not None
    if check:
        check_attention(getattr(lm.weights, "config", {}), max(len(s) for s in seqs))
    cap = run_capture(lm, seqs, logit_positions=pos, inputs=residual or check, batch_size=batch_size,
                      attentions=check)
    if check:
        check_extraction(heads, cap)
        cap.attn = None                                           # checked; not kept
        if not residual:
            cap.x = []
    return Study(list(items), cap)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def actual_gaps(study: Study, candidates: str) -> np.ndarray:
    """dL_actual (P,) from the full model: ``first``: logit_A1 - logit_B1 at the last prompt
    position; ``first-differing``: logit_Ak - logit_Bk after the prompt and the common prefix
    A_<k = B_<k; ``full``: sum of teacher-forced log-probabilities of A's tokens minus B's (nats).
    NaN for an item the mode excludes (:func:`compared_token`)."""
    _check("candidates mode", candidates, CANDIDATES)
    out = np.empty(study.n_prompts)
    for p, it in enumerate(study.items):
        la, lb = study.cap.logits[2 * p], study.cap.logits[2 * p + 1]
        if candidates != "full":
            k = compared_token(it, candidates)
            out[p] = np.nan if k is None else la[k, it.correct_ids[k]] - la[k, it.wrong_ids[k]]
        else:
            lpa, lpb = _log_softmax(la), _log_softmax(lb)
            out[p] = (sum(lpa[k, t] for k, t in enumerate(it.correct_ids))
                      - sum(lpb[k, t] for k, t in enumerate(it.wrong_ids)))
    return out


def head_inputs(weights: Any, tokens: Sequence[int], mode: GapMode, cap: Capture | None = None,
                seq: int | None = None) -> tuple[np.ndarray, bool]:
    """Spin vectors of one sequence: ``(X, rotary)`` with X (n_layers or 1, T, d_model) float64
    and whether q/k get rotary positions. ``embed``: embedding rows (shared by all layers);
    ``embed+pos``: plus GPT-2's learned positions (Llama: rotary on); ``residual``: the captured
    normalised attention inputs (needs ``cap`` and ``seq``)."""
    w = getattr(weights, "weights", weights)
    rotary = w.family != "gpt2" and mode.input != "embed"
    if mode.input == "residual":
        if cap is None or seq is None or not cap.x:
            raise ValueError("input mode 'residual' needs a capture with the attention inputs")
        return np.asarray(cap.x[seq], np.float64), rotary
    toks = np.asarray(tokens, np.int64)
    check_context(w, len(toks))
    X = np.asarray(arch.embedding_matrix(w)[toks], np.float64)
    if mode.input == "embed+pos" and w.family == "gpt2":
        X = X + np.asarray(arch.position_matrix(w)[: len(toks)], np.float64)
    return X[None], rotary


def readouts(study: Study, weights: Any, mode: GapMode) -> list[list[tuple[int, int, np.ndarray, float]]]:
    """Per item, the (seq, query position, readout vector (d_model,), sign) terms whose sum over
    heads' N0 . vector * sign is dL_theory (see module docstring); no terms for an excluded item."""
    w = getattr(weights, "weights", weights)
    U = arch.unembedding(w)
    norm = arch.final_norm(w) if mode.final_norm == "linear" else None
    out = []
    for p, it in enumerate(study.items):
        t0 = it.n_prompt - 1
        if mode.candidates != "full":
            k = compared_token(it, mode.candidates)
            terms = [] if k is None else [(2 * p, t0 + k, it.correct_ids[k], 1.0),
                                          (2 * p, t0 + k, it.wrong_ids[k], -1.0)]
        else:
            terms = [(2 * p, t0 + k, t, 1.0) for k, t in enumerate(it.correct_ids)]
            terms += [(2 * p + 1, t0 + k, t, -1.0) for k, t in enumerate(it.wrong_ids)]
        rs = []
        for s, t, tok, sign in terms:
            u = np.asarray(U[tok], np.float64)
            if mode.candidates == "full":
                # log-softmax normaliser: d log p(tok) = d logit_tok - E_p[d logit]
                lg = study.cap.logits[s][t - t0]
                pr = np.exp(lg - lg.max())
                u = u - np.asarray((pr / pr.sum()).astype(U.dtype) @ U, np.float64)
            if norm is not None:
                u = norm.linear_readout(study.cap.final_in[s][t], u)
            rs.append((s, t, u, sign))
        out.append(rs)
    return out


def theory_gaps(study: Study, heads: HeadSet, weights: Any, mode: GapMode) -> np.ndarray:
    """dL_theory (P, n_layers, n_heads) for every head and item (see module docstring); NaN rows
    for the items the mode excludes (:func:`excluded_items`).

    ``heads`` must have been extracted with ``o_slice = mode.o_slice``.
    """
    if heads.o_slice != mode.o_slice:
        raise ValueError(f"heads were extracted with o_slice {heads.o_slice!r} but the mode needs {mode.o_slice!r}")
    w = getattr(weights, "weights", weights)
    mode.for_family(w.family)
    biases = mode.biases == "exact"
    L, H = heads.n_layers, heads.n_heads
    WO = heads.W_O.astype(np.float64)                                             # (L, H, dh, d)
    result = np.zeros((study.n_prompts, L, H))
    for p, terms in enumerate(readouts(study, w, mode)):
        if not terms:
            result[p] = np.nan
            continue
        by_seq: dict[int, list[int]] = {}
        for r, (s, t, _, _) in enumerate(terms):
            by_seq.setdefault(s, []).append(r)
        for s, rs in by_seq.items():
            positions = np.array([terms[r][1] for r in rs])
            X, rotary = head_inputs(w, study.cap.tokens[s], mode, study.cap, s)
            z = np.stack([layer_outputs(heads, X[l if X.shape[0] > 1 else 0], l, positions, biases, rotary)
                          for l in range(L)])                                      # (L, H, R, dh)
            Uv = np.stack([terms[r][2] * terms[r][3] for r in rs], axis=1)        # (d, R) signed
            WOu = np.einsum("lhed,dr->lher", WO, Uv)                              # (L, H, dh, R)
            result[p] += np.einsum("lhre,lher->lh", z, WOu)
    return result
