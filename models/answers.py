"""Answers tokenised as the model sees them: the tokens that follow the prompt when prompt and
answer are tokenised together.

An answer ``a`` to a prompt ``p`` is the continuation ``p + " " + a`` (answers are written
without their leading space). Its tokens are ``encode(p + " " + a)[len(encode(p)):]``: what the
model reads after the prompt when it is teacher-forced, and never ``encode(" " + a)`` on its own.
The two differ for

* tokenizers that make the leading space a token of its own when a text starts with a space
  (Llama-2 / Mistral-style SentencePiece normalisers: ``" Berlin"`` alone is ``['_', '_Berlin']``,
  after the prompt it is ``['_Berlin']``): alone, every answer would start with the same token;
* tokenizers that split digits (SmolLM2: ``" 24"`` is ``['G', '2', '4']`` alone *and* after the
  prompt): any two numeric answers share their first token, the bare space.

A *first-token comparison* (the paper's ``logit_A - logit_B`` at the last prompt position) is
undefined when the two answers' first tokens coincide: :func:`comparison_index` refuses it with
:class:`SharedFirstTokenError` naming the token, or, when asked (``first_differing=True``),
compares the first token where the answers differ, read after the prompt and their common prefix
(the model's context is then the same for both answers).

Errors are typed (all subclasses of :class:`AnswerTokenizationError`, a ValueError):
:class:`BlankAnswerError`, :class:`AnswerBoundaryError` (the joint tokenisation does not start
with the prompt's own tokens: the answer merges into the prompt's last token),
:class:`SharedFirstTokenError`, :class:`NoDifferingTokenError` (one answer's tokens are a prefix
of the other's: no single token tells them apart).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["SEPARATOR", "AnswerTokenizationError", "BlankAnswerError", "AnswerBoundaryError",
           "SharedFirstTokenError", "NoDifferingTokenError", "continuation", "answer_ids", "tokenize_answers",
           "common_prefix", "comparison_index", "ProbeTokens", "probe_tokens", "encoder"]

#: what joins a prompt and its answer (answers are written without their leading space)
SEPARATOR = " "

Encode = Callable[[str], Sequence[int]]


class AnswerTokenizationError(ValueError):
    """An answer that cannot be tokenised as a continuation of its prompt, or compared."""


class BlankAnswerError(AnswerTokenizationError):
    """An empty or whitespace-only answer (it would become a bare space token)."""


class AnswerBoundaryError(AnswerTokenizationError):
    """prompt + answer does not tokenise as the prompt's tokens followed by the answer's."""


class SharedFirstTokenError(AnswerTokenizationError):
    """Two answers start with the same token: a first-token comparison is undefined."""


class NoDifferingTokenError(AnswerTokenizationError):
    """One answer's tokens are a prefix of the other's: no single differing token exists."""


def encoder(tokenizer: Any) -> Encode:
    """``text -> ids`` of an HF tokenizer with no special tokens (no BOS), as the studies use."""
    return lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"])


def continuation(prompt: str, answer: str, sep: str = SEPARATOR) -> str:
    """The text ``prompt + sep + answer`` the model reads (answer without its leading space).

    Raises :class:`BlankAnswerError` for a blank answer.
    """
    if not str(answer).strip():
        raise BlankAnswerError(f"answer {answer!r} is blank: give the answer text (e.g. 'Berlin')")
    return f"{prompt}{sep}{str(answer).strip()}"


def answer_ids(encode: Encode, prompt: str, answer: str, prompt_ids: Sequence[int] | None = None,
               sep: str = SEPARATOR) -> tuple[int, ...]:
    """Token ids of ``answer`` as the model sees it after ``prompt`` (module docstring).

    encode: text -> ids (no special tokens); prompt_ids: ``encode(prompt)`` if already known.
    Returns the ids that follow the prompt's ids in ``encode(prompt + sep + answer)`` (at least
    one). Raises :class:`BlankAnswerError`, or :class:`AnswerBoundaryError` for a prompt ending in
    whitespace, or when the joint ids do not start with the prompt's ids or add none.
    """
    text = continuation(prompt, answer, sep)
    if sep and prompt and prompt[-1].isspace():
        raise AnswerBoundaryError(f"prompt {prompt!r} ends with whitespace: the answer's leading space is added when "
                                  "prompt and answer are joined; give the prompt without trailing whitespace")
    p_ids = tuple(int(t) for t in (encode(prompt) if prompt_ids is None else prompt_ids))
    joint = tuple(int(t) for t in encode(text))
    if joint[:len(p_ids)] != p_ids:
        raise AnswerBoundaryError(
            f"answer {str(answer).strip()!r} merges into the prompt's last token: {text!r} does not tokenise as "
            f"the prompt's {len(p_ids)} tokens followed by the answer's (it starts {list(joint[:len(p_ids)])}, "
            f"the prompt alone is {list(p_ids)})")
    if len(joint) == len(p_ids):
        raise AnswerBoundaryError(f"answer {str(answer).strip()!r} adds no token after the prompt {prompt!r}")
    return joint[len(p_ids):]


def tokenize_answers(encode: Encode, prompt: str, answers: Sequence[str],
                     sep: str = SEPARATOR) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """``(prompt_ids, [answer_ids, ...])``: the prompt tokenised on its own (no special tokens)
    and each answer by :func:`answer_ids`. Raises :class:`AnswerTokenizationError` subclasses
    (a blank answer, an empty prompt tokenisation as :class:`AnswerBoundaryError`)."""
    p_ids = tuple(int(t) for t in encode(prompt))
    if not p_ids:
        raise AnswerBoundaryError(f"prompt {prompt!r} tokenises to nothing")
    return p_ids, [answer_ids(encode, prompt, a, p_ids, sep) for a in answers]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens that ``a`` and ``b`` share."""
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return k


def _show(decode: Callable[[Sequence[int]], str] | None, tok: int) -> str:
    return f"{decode([tok])!r} (id {tok})" if decode is not None else f"id {tok}"


def comparison_index(a: Sequence[int], b: Sequence[int], first_differing: bool = False,
                     names: tuple[str, str] = ("A", "B"),
                     decode: Callable[[Sequence[int]], str] | None = None) -> int:
    """Index k of the answer token a single-token comparison of ``a`` and ``b`` reads.

    ``first_differing=False``: k = 0, and :class:`SharedFirstTokenError` when ``a[0] == b[0]``
    (the comparison is undefined); ``True``: k = the length of their common prefix (the model's
    context prompt + a[:k] is then the same for both), :class:`NoDifferingTokenError` when one is
    a prefix of the other. ``names`` label the answers in messages; ``decode`` shows tokens.
    """
    k = common_prefix(a, b)
    if k == 0:
        return 0
    if not first_differing:
        raise SharedFirstTokenError(
            f"answers {names[0]!r} and {names[1]!r} start with the same token {_show(decode, int(a[0]))}: a first-"
            "token comparison is undefined (compare the first differing token, or the full answers)")
    if k >= min(len(a), len(b)):
        raise NoDifferingTokenError(f"answers {names[0]!r} and {names[1]!r}: the tokens of one are a prefix of the "
                                    "other's, no single token tells them apart (compare the full answers)")
    return k


@dataclass(frozen=True)
class ProbeTokens:
    """Tokens of a candidate probe: ``context`` (the prompt's ids plus the candidates' shared
    prefix, the sites of the bath), ``candidates`` (K,) the ids the probe chooses between (the
    candidates' tokens at index ``k``), ``k`` the shared prefix length (0 unless first_differing)."""

    context: tuple[int, ...]
    candidates: tuple[int, ...]
    k: int


def probe_tokens(encode: Encode, prompt: str | Sequence[int], answers: Sequence[str | int],
                 first_differing: bool = False, decode: Callable[[Sequence[int]], str] | None = None,
                 sep: str = SEPARATOR) -> ProbeTokens:
    """The probe's bath and candidate tokens for answers to ``prompt`` (module docstring).

    prompt: text, or ids (then ``decode`` must turn them back into text that re-encodes to the same
    ids); answers: strings (tokenised jointly with the prompt) or token ids (taken as they are).
    Every candidate reads its token at the same index k: 0, or with ``first_differing`` the
    length of the prefix all string answers share. Raises :class:`AnswerTokenizationError`
    subclasses (blank answer, boundary, two candidates with the same token at k, naming them).
    """
    if isinstance(prompt, str):
        text = prompt
        p_ids = tuple(int(t) for t in encode(prompt))
    else:
        p_ids = tuple(int(t) for t in prompt)
        if all(not isinstance(a, str) for a in answers):
            text = ""
        elif decode is None:
            raise AnswerTokenizationError("string answers to a prompt given as token ids need decode (the "
                                          "tokenizer) to tokenise prompt and answer together")
        else:
            text = decode(list(p_ids))
            if tuple(int(t) for t in encode(text)) != p_ids:
                raise AnswerBoundaryError(f"the prompt's token ids do not survive decode + encode ({text!r}); give "
                                          "the prompt as text so that the answers are tokenised with it")
    if not p_ids:
        raise AnswerBoundaryError(f"prompt {prompt!r} tokenises to nothing")
    seqs: list[tuple[int, ...]] = []
    for a in answers:
        if isinstance(a, str):
            seqs.append(answer_ids(encode, text, a, p_ids, sep))
        else:
            seqs.append((int(a),))
    if not seqs:
        raise AnswerTokenizationError("candidates must hold at least one answer")
    k = 0
    if first_differing and len(seqs) > 1:
        k = min(common_prefix(seqs[0], s) for s in seqs[1:])
    names = [str(a).strip() for a in answers]
    for i in range(len(seqs)):
        if k >= len(seqs[i]):
            raise NoDifferingTokenError(f"answer {names[i]!r} ends within the prefix the candidates share: no "
                                        "single token tells them apart (compare the full answers)")
        for j in range(i):
            if seqs[i][k] == seqs[j][k]:
                if k == 0 and not first_differing:
                    comparison_index(seqs[j], seqs[i], False, (names[j], names[i]), decode)
                raise SharedFirstTokenError(
                    f"answers {names[j]!r} and {names[i]!r} have the same token {_show(decode, seqs[i][k])} at "
                    f"answer position {k}: the probe cannot tell them apart")
    return ProbeTokens(p_ids + tuple(seqs[0][:k]), tuple(s[k] for s in seqs), k)
