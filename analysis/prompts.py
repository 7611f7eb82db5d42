"""Prompt files for the logit-gap study: ``prompt<TAB>correct<TAB>wrong``, one item a line.

* Answers are written without their leading space. The prompt is tokenised as written, with no
  special tokens (no BOS: the paper feeds GPT-2 the bare prompt); an answer is the tokens that
  follow the prompt's when ``prompt + " " + answer`` is tokenised together
  (:mod:`spinsim.models.answers`), which is what the model reads when it is teacher-forced.
* The file is UTF-8 (a byte-order mark is allowed and dropped). Blank lines and lines starting
  with ``#`` are skipped; an optional header line ``prompt<TAB>correct<TAB>wrong`` is skipped.
* Malformed lines, repeated items, and answers that cannot be tokenised after their prompt raise a
  one-line error naming ``file:line``.

The paper's 20 prompts ship as ``data/prompts/paper20.tsv`` (``--prompts paper20`` finds it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from spinsim.models.answers import AnswerTokenizationError, tokenize_answers

__all__ = ["PromptItem", "TokenizedItem", "PromptFileError", "load_prompts", "tokenize_items",
           "shipped_prompt_file", "SHIPPED"]

SHIPPED = ("paper20",)
def _data_dir() -> Path:
    """The shipped prompt folder: the ``spinsim.data`` package (wheel or editable install), with
    symbolic links resolved (a source checkout links spinsim/data to data/: one name per file)."""
    try:
        from importlib.resources import files
        return Path(str(files("spinsim.data") / "prompts")).resolve()
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parent.parent / "data" / "prompts"


_DATA = _data_dir()


class PromptFileError(ValueError):
    """A malformed prompt file or an untokenisable answer (message names file:line)."""


@dataclass(frozen=True)
class PromptItem:
    """One test item: the prompt, the correct and the wrong continuation, and where it came from."""

    prompt: str
    correct: str
    wrong: str
    where: str = ""


@dataclass(frozen=True)
class TokenizedItem:
    """Token ids (no special tokens) of a :class:`PromptItem`: the prompt's, and each answer's as
    it follows the prompt (:func:`spinsim.models.answers.answer_ids`)."""

    item: PromptItem
    prompt_ids: tuple[int, ...]
    correct_ids: tuple[int, ...]
    wrong_ids: tuple[int, ...]

    @property
    def n_prompt(self) -> int:
        return len(self.prompt_ids)


def shipped_prompt_file(name: str) -> Path | None:
    """Path of a shipped prompt set (``'paper20'``) or None."""
    stem = Path(name).name
    stem = stem[:-4] if stem.endswith(".tsv") else stem
    p = _DATA / f"{stem}.tsv"
    return p if stem in SHIPPED and p.is_file() else None


def load_prompts(path: str | os.PathLike) -> list[PromptItem]:
    """Read a prompt TSV (see module docstring). A bare shipped name (``paper20``) also works."""
    p = Path(path)
    if not p.is_file():
        shipped = shipped_prompt_file(str(path))
        if shipped is None:
            raise PromptFileError(f"prompt file {str(path)!r} not found (shipped sets: {', '.join(SHIPPED)})")
        p = shipped
    try:
        text = p.read_text(encoding="utf-8-sig")      # a byte-order mark is not part of the first line
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    items: list[PromptItem] = []
    seen: dict[tuple[str, str, str], str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        where = f"{p}:{n}"
        if not items and [x.strip().lower() for x in parts] == ["prompt", "correct", "wrong"]:
            continue
        if len(parts) != 3:
            raise PromptFileError(f"{where}: expected 3 tab-separated fields prompt<TAB>correct<TAB>wrong, "
                                  f"got {len(parts)}: {line[:60]!r}")
        prompt, correct, wrong = parts[0].strip(), parts[1].strip(), parts[2].strip()
        for name, val in (("prompt", prompt), ("correct answer", correct), ("wrong answer", wrong)):
            if not val:
                raise PromptFileError(f"{where}: empty {name}")
        if correct == wrong:
            raise PromptFileError(f"{where}: correct and wrong answers are the same ({correct!r})")
        if (prompt, correct, wrong) in seen:
            raise PromptFileError(f"{where}: repeats the item of line {seen[prompt, correct, wrong].rsplit(':', 1)[-1]} "
                                  "(a repeated item counts twice in every correlation); remove one")
        seen[prompt, correct, wrong] = where
        items.append(PromptItem(prompt, correct, wrong, where))
    if len(items) < 3:
        raise PromptFileError(f"{p}: {len(items)} prompt(s); correlations across prompts need at least 3")
    return items


def tokenize_items(items: Sequence[PromptItem], encode: Callable[[str], Sequence[int]]) -> list[TokenizedItem]:
    """Tokenise every item with ``encode`` (text -> ids, no special tokens): the prompt on its own,
    each answer as the tokens that follow the prompt in ``prompt + " " + answer``.

    Raises :class:`PromptFileError` naming file:line for a prompt that tokenises to nothing, an
    answer that merges into the prompt or adds no token, or answers whose tokens are identical.
    """
    out: list[TokenizedItem] = []
    for it in items:
        try:
            p_ids, (a_ids, b_ids) = tokenize_answers(encode, it.prompt, [it.correct, it.wrong])
        except AnswerTokenizationError as exc:
            raise PromptFileError(f"{it.where}: {exc}") from None
        if a_ids == b_ids:
            raise PromptFileError(f"{it.where}: answers {it.correct!r} and {it.wrong!r} have the same tokens")
        out.append(TokenizedItem(it, p_ids, a_ids, b_ids))
    return out
