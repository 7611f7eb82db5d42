"""Command-line input checks, one policy for every command: a bad value gives one line naming it
and what is allowed, exit code 2, before any model load or heavy work.

* Values are checked where argparse reads them: the ``type=`` functions here (``seed``,
  ``int_at_least``, ``finite_float``, ``positive_float``, ``open_unit``, ``temperatures``,
  ``fields``, ``nonblank``, ``answer_text``, ``figure_path``, ``head_label``, ``head_list``) raise
  :class:`argparse.ArgumentTypeError`, which the parser (:class:`spinsim.cli.Parser`) prints as
  ``spinsim CMD: error: argument --X: ...`` on one line.
* Checks that need a file or the model's metadata run first thing in ``run`` and raise
  :class:`spinsim.cli.UsageError`: :func:`prompt_items` (the prompts file, parsed in full),
  :func:`model_heads` (the model's layer/head counts from config.json or the GGUF header, no
  weights; :mod:`spinsim.models.model_info`), :func:`head_range`.

Exit codes: 0 ok, 2 usage (every check here), 1 failure during the work itself.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Sequence

import numpy as np

from ..cli import UsageError

__all__ = ["seed", "int_at_least", "finite_float", "positive_float", "open_unit", "temperatures", "fields",
           "nonblank", "answer_text", "figure_path", "head_label", "head_list", "prompt_items", "tokenized",
           "early_tokenizer", "enough_items", "probe_answers", "model_heads", "head_range", "device", "answers"]

SEED_MAX = 2 ** 63


def _fail(msg: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(msg)


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**63)."""
    try:
        v = int(text)
    except ValueError:
        raise _fail(f"{text!r} is not an integer; allowed: 0 .. 2**63 - 1") from None
    if not 0 <= v < SEED_MAX:
        raise _fail(f"{text!r} is out of range; allowed: 0 .. 2**63 - 1")
    return v


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise _fail(f"{text!r} is not an integer; allowed: an integer >= {minimum}") from None
        if v < minimum:
            raise _fail(f"{text!r}: allowed: an integer >= {minimum}")
        return v
    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(text: str) -> float:
    """A finite number (no nan, no inf)."""
    try:
        v = float(text)
    except ValueError:
        raise _fail(f"{text!r} is not a number; allowed: a finite number") from None
    if not math.isfinite(v):
        raise _fail(f"{text!r}: allowed: a finite number")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = finite_float(text)
    if v <= 0:
        raise _fail(f"{text!r}: allowed: a finite number > 0")
    return v


def open_unit(text: str) -> float:
    """A number strictly between 0 and 1 (a significance level)."""
    v = finite_float(text)
    if not 0 < v < 1:
        raise _fail(f"{text!r}: allowed: a number in (0, 1), e.g. 0.05")
    return v


def _range(text: str) -> np.ndarray:
    from ..validation import parse_range

    try:
        return parse_range(text, "range")
    except ValueError as exc:
        msg = str(exc)
        raise _fail(msg[len("range "):] if msg.startswith("range ") else msg) from None


def temperatures(text: str) -> np.ndarray:
    """``start:stop:count`` or one number: temperatures, each finite and > 0 (k_B = 1)."""
    T = _range(text)
    bad = ~np.isfinite(T) | (T <= 0)
    if bad.any():
        raise _fail(f"{text!r} gives T = {float(T[bad][0])!r}; allowed: finite temperatures > 0 "
                    "(start:stop:count, e.g. 0.5:3:12)")
    return T


def fields(text: str) -> np.ndarray:
    """``start:stop:count`` or one number: field strengths, each finite."""
    h = _range(text)
    if not np.isfinite(h).all():
        raise _fail(f"{text!r}: allowed: finite field strengths (start:stop:count, e.g. 0:0.5:4)")
    return h


def nonblank(text: str) -> str:
    """Text that is not empty or whitespace only."""
    if not str(text).strip():
        raise _fail(f"{text!r} is blank; give non-empty text")
    return str(text)


def answer_text(text: str) -> str:
    """An answer: non-blank text, written without its leading space."""
    if not str(text).strip():
        raise _fail(f"{text!r} is blank; give the answer without its leading space, e.g. cold")
    return str(text)


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def figure_path(text: str) -> str:
    """A figure file name ending in .png, .pdf or .svg (matplotlib picks the format by suffix)."""
    from pathlib import Path

    if Path(text).suffix.lower() not in FIGURE_SUFFIXES:
        raise _fail(f"{text!r}: allowed: a file name ending in {', '.join(FIGURE_SUFFIXES)}")
    return str(text)


def head_label(text: str) -> str:
    """A head label ``L{layer}H{head}`` (both from 0); the model's range is checked by :func:`head_range`."""
    from ..models.heads import parse_head

    try:
        parse_head(text)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return str(text).strip()


def head_list(text: str) -> list[str] | str:
    """``'all'`` or comma-separated head labels, none blank, none repeated (returns 'all' or the labels)."""
    if str(text).strip().lower() == "all":
        return "all"
    parts = [t.strip() for t in str(text).split(",")]
    if not any(parts):
        raise _fail(f"{text!r} names no head; allowed: 'all' or labels like 'L3H5,L0H0'")
    if not all(parts):
        raise _fail(f"{text!r} has an empty label; allowed: 'all' or labels like 'L3H5,L0H0'")
    labels = [head_label(t) for t in parts]
    seen: set[str] = set()
    for lab in labels:
        if lab in seen:
            raise _fail(f"{text!r} names {lab} twice; give each head once")
        seen.add(lab)
    return labels


def prompt_items(path: str, opt: str = "--prompts") -> list[Any]:
    """The prompt file's items (:func:`spinsim.analysis.prompts.load_prompts`), or UsageError
    naming the file and line."""
    from ..analysis.prompts import PromptFileError, load_prompts

    try:
        return load_prompts(path)
    except PromptFileError as exc:
        raise UsageError(f"{opt}: {exc}") from None


def tokenized(items: Sequence[Any], tokenizer: Any, opt: str = "--prompts") -> list[Any]:
    """Items tokenised with the model's tokenizer (an HF tokenizer, or a LoadedModel), answers
    after their prompts (:func:`spinsim.analysis.prompts.tokenize_items`), or UsageError naming
    file:line."""
    from ..analysis.prompts import PromptFileError, tokenize_items
    from ..models.answers import encoder
    from ..models.loading import LoadedModel

    encode = tokenizer.encode if isinstance(tokenizer, LoadedModel) else encoder(tokenizer)
    try:
        return tokenize_items(items, encode)
    except PromptFileError as exc:
        raise UsageError(f"{opt}: {exc}") from None


def early_tokenizer(model: str) -> Any:
    """The model's tokenizer read before its weights where that is cheap
    (:func:`spinsim.models.model_info.load_tokenizer`), or None (the checks that need it then
    run right after the load)."""
    from ..models.model_info import load_tokenizer

    try:
        return load_tokenizer(model)
    except Exception:  # noqa: BLE001 - the load itself reports any problem, with its own message
        return None


def enough_items(titems: Sequence[Any], modes: Sequence[Any], tokenizer: Any = None) -> None:
    """UsageError when a gap mode is left with fewer than 3 comparable items
    (:func:`spinsim.analysis.study.mode_exclusions`)."""
    from ..analysis.study import TooFewItemsError, mode_exclusions

    try:
        mode_exclusions(titems, modes, tokenizer)
    except TooFewItemsError as exc:
        raise UsageError(f"--prompts: {exc}") from None


def probe_answers(tokenizer: Any, prompt: str, correct: str, wrong: str, first_differing: bool) -> None:
    """UsageError when the probe cannot tell the two answers apart after the prompt
    (:func:`spinsim.models.answers.probe_tokens`: a shared first token without --first-differing,
    tokens that merge into the prompt, ...)."""
    from ..models.answers import AnswerTokenizationError, encoder, probe_tokens

    try:
        probe_tokens(encoder(tokenizer), prompt, [correct, wrong], first_differing=first_differing,
                     decode=lambda ids: str(tokenizer.decode(list(ids))))
    except AnswerTokenizationError as exc:
        hint = "" if first_differing else " (--first-differing compares the first differing token)"
        raise UsageError(f"--correct/--wrong: {exc}{hint}") from None


def model_heads(model: str, need_tokenizer: bool = True) -> Any:
    """The model's :class:`~spinsim.models.model_info.ModelInfo` read without its weights (None
    for a hub name not in the local cache), or UsageError naming ``--model`` when it cannot be
    found, is not a supported model, or (``need_tokenizer``) has no tokenizer files."""
    from ..models.loading import ModelLoadError
    from ..models.model_info import check_tokenizer_files, model_info

    try:
        info = model_info(model)
        if info is not None and need_tokenizer and not info.has_tokenizer:
            check_tokenizer_files(info.where, model)
    except ModelLoadError as exc:
        raise UsageError(f"--model: {exc}") from None
    return info


def head_range(labels: Sequence[str] | str, info: Any, opt: str = "--head") -> list[tuple[int, int]] | None:
    """(layer, head) of each label checked against the model's counts, or UsageError naming the
    label and the range. ``labels='all'``: every head. None when ``info`` is None (unknown yet)."""
    from ..models.heads import parse_head

    if info is None:
        return None
    if isinstance(labels, str) and labels == "all":
        return [(l, h) for l in range(info.n_layers) for h in range(info.n_heads)]
    out = []
    for lab in [labels] if isinstance(labels, str) else labels:
        try:
            out.append(parse_head(lab, info.n_layers, info.n_heads))
        except ValueError as exc:
            raise UsageError(f"{opt}: {exc}") from None
    return out


def device(name: str) -> None:
    """UsageError for ``--device cuda`` on a machine where Numba sees no CUDA GPU."""
    if name == "cuda":
        from ..solvers.mc import cuda_available

        if not cuda_available():
            raise UsageError("--device cuda: Numba sees no CUDA GPU here (numba.cuda.is_available() is False); "
                             "use --device cpu or auto")


def answers(correct: str, wrong: str) -> None:
    """Two answers that differ once their leading space is dropped (UsageError otherwise)."""
    if correct.strip() == wrong.strip():
        raise UsageError(f"--correct {correct!r} and --wrong {wrong!r} are the same answer (answers are "
                         "compared without their leading space)")


def add_executor_arguments(group: Any) -> None:
    """``--executor local|dask`` and ``--scheduler ADDRESS`` (read by :func:`executor`) in an
    argument group of a command whose rows run on an executor (sweep, atlas)."""
    group.add_argument("--executor", choices=("local", "dask"), default="local",
                       help="where rows run: here (default) or on a Dask cluster (this process writes the file)")
    group.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask)")


def executor(kind: str, scheduler: str | None, task: Callable) -> Any:
    """The executor of ``--executor``/``--scheduler`` for ``task`` (:func:`spinsim.executors.make_executor`),
    None for a local run; a bad choice is a UsageError naming it."""
    if kind == "local" and not scheduler:
        return None
    from ..executors import make_executor
    try:
        return make_executor(kind, task, scheduler=scheduler)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
