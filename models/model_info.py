"""What a model is, read without loading its weights: family, layers, heads, tokenizer.

Commands check cheap arguments (head labels, the tokenizer a prompt needs) against this before
the weights load (20-40 s for the embedded GGUF). Sources, by ``--model`` kind
(:func:`spinsim.models.loading.resolve_model`):

* a folder: its ``config.json`` (HF names: ``n_layer``/``n_head`` for GPT-2,
  ``num_hidden_layers``/``num_attention_heads`` otherwise) and the tokenizer files present;
* a GGUF file (the embedded default included): the key/value header only, read until the keys
  needed are found (``general.architecture``, ``{arch}.block_count``,
  ``{arch}.attention.head_count``; GGUF spec: github.com/ggml-org/ggml docs/gguf.md); the
  tokenizer is embedded;
* a hub name: ``config.json`` in the local HF cache if it is there, else nothing is known yet
  (:func:`model_info` returns None and the load itself reports).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .loading import FAMILIES, ModelLoadError, refuse_custom_code, resolve_model

__all__ = ["ModelInfo", "model_info", "load_tokenizer", "gguf_metadata", "has_tokenizer_files",
           "check_tokenizer_files", "TOKENIZER_FILES"]

#: file sets any one of which makes a folder's tokenizer loadable by ``AutoTokenizer``
TOKENIZER_FILES: tuple[tuple[str, ...], ...] = (("tokenizer.json",), ("tokenizer.model",), ("spiece.model",),
                                                ("vocab.json", "merges.txt"), ("vocab.txt",))


@dataclass(frozen=True)
class ModelInfo:
    """family ('gpt2' | 'llama'), n_layers, n_heads (query heads per layer), has_tokenizer,
    and ``where`` the metadata was read (a path)."""

    family: str
    n_layers: int
    n_heads: int
    has_tokenizer: bool
    where: str


def has_tokenizer_files(folder: str | Path) -> bool:
    """Whether ``folder`` holds one of :data:`TOKENIZER_FILES`."""
    p = Path(folder)
    return any(all((p / f).is_file() for f in group) for group in TOKENIZER_FILES)


def check_tokenizer_files(folder: str | Path, model_id: str | None = None) -> None:
    """Raise :class:`ModelLoadError` naming the folder when it has no tokenizer files."""
    if not has_tokenizer_files(folder):
        names = ", ".join(" + ".join(g) for g in TOKENIZER_FILES)
        raise ModelLoadError(f"model folder {str(model_id or folder)!r} has no tokenizer files (one of: {names}); save "
                             "the model's tokenizer there (tokenizer.save_pretrained(folder))")


# ------------------------------------------------------------------------------------ GGUF header
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read(fh: BinaryIO, fmt: str) -> Any:
    n = struct.calcsize(fmt)
    b = fh.read(n)
    if len(b) != n:
        raise ModelLoadError(f"{getattr(fh, 'name', 'GGUF file')}: truncated GGUF header")
    return struct.unpack(fmt, b)[0]


def _string(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    return fh.read(n).decode("utf-8", errors="replace")


def _skip_or_read(fh: BinaryIO, vtype: int, keep: bool) -> Any:
    if vtype in _SCALARS:
        return _read(fh, _SCALARS[vtype])
    if vtype == _STRING:
        if keep:
            return _string(fh)
        fh.seek(_read(fh, "<Q"), 1)
        return None
    if vtype == _ARRAY:
        itype, count = _read(fh, "<I"), _read(fh, "<Q")
        if itype in _SCALARS:
            fh.seek(struct.calcsize(_SCALARS[itype]) * count, 1)
        else:
            for _ in range(count):
                _skip_or_read(fh, itype, False)
        return None
    raise ModelLoadError(f"{getattr(fh, 'name', 'GGUF file')}: unknown GGUF value type {vtype}")


def gguf_metadata(path: str | Path, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Scalar and string values of a GGUF file's key/value header (arrays skipped), read until
    every key of ``keys`` is found (None: the whole header). Raises :class:`ModelLoadError` for a
    file that is not GGUF or is truncated."""
    out: dict[str, Any] = {}
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelLoadError(f"{path}: not a GGUF file (no GGUF magic)")
        version = _read(fh, "<I")
        if version < 2:
            raise ModelLoadError(f"{path}: GGUF version {version} is not supported (2 or later)")
        _read(fh, "<Q")                                    # tensor count
        n_kv = _read(fh, "<Q")
        for _ in range(n_kv):
            key = _string(fh)
            vtype = _read(fh, "<I")
            val = _skip_or_read(fh, vtype, True)
            if val is not None:
                out[key] = val
            if keys is not None and all(k in out for k in keys):
                break
    return out


def _from_gguf(path: Path) -> ModelInfo:
    arch = gguf_metadata(path, ("general.architecture",))["general.architecture"]
    keys = (f"{arch}.block_count", f"{arch}.attention.head_count")
    meta = gguf_metadata(path, keys)
    if arch not in FAMILIES or any(k not in meta for k in keys):
        raise ModelLoadError(f"{path}: GGUF architecture {arch!r} is not supported; supported: "
                             f"{', '.join(sorted(FAMILIES))}")
    return ModelInfo(FAMILIES[arch], int(meta[keys[0]]), int(meta[keys[1]]), True, str(path))


def _from_config(config: dict, folder: Path | None, where: str) -> ModelInfo:
    refuse_custom_code(config, where)              # auto_map / foreign architecture: never run its code
    mt = config.get("model_type")
    if mt not in FAMILIES:
        raise ModelLoadError(f"{where}: unsupported model_type {mt!r}; supported: {', '.join(sorted(FAMILIES))}")
    layers = config.get("n_layer", config.get("num_hidden_layers"))
    heads = config.get("n_head", config.get("num_attention_heads"))
    if not isinstance(layers, int) or not isinstance(heads, int):
        raise ModelLoadError(f"{where}: config.json gives no layer and head counts")
    return ModelInfo(FAMILIES[mt], layers, heads, folder is None or has_tokenizer_files(folder), where)


def model_info(spec: str) -> ModelInfo | None:
    """The :class:`ModelInfo` of a ``--model`` value without loading weights, or None for a hub
    name whose config is not in the local cache. Raises :class:`ModelLoadError` for a model that
    cannot be found or read."""
    src = resolve_model(spec)
    if src.gguf_file:
        return _from_gguf(Path(src.path) / src.gguf_file)
    if src.kind == "hub":
        try:
            from huggingface_hub import try_to_load_from_cache
            cfg = try_to_load_from_cache(src.path, "config.json")
        except Exception:  # noqa: BLE001 - an unreadable cache: the load reports
            return None
        if not isinstance(cfg, str):
            return None
        return _from_config(json.loads(Path(cfg).read_text()), None, src.model_id)
    folder = Path(src.path)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{spec}: cannot read config.json ({exc})") from None
    return _from_config(config, folder, str(spec))


def load_tokenizer(spec: str) -> Any:
    """The model's tokenizer without its weights, where that is cheap: a folder's tokenizer files,
    or the cached conversion of a GGUF file (:mod:`spinsim.models.model_cache`, present after the
    file's first load). None otherwise (a hub name, a GGUF file not converted yet: parsing the
    file's vocabulary costs about as much as the load). Raises :class:`ModelLoadError` for a
    model that cannot be found."""
    from transformers import AutoTokenizer

    src = resolve_model(spec)
    if src.gguf_file:
        from .loading import weights_hash
        from .model_cache import META_FILE, gguf_cache_dir

        folder = gguf_cache_dir(weights_hash(src.weight_files()))
        return AutoTokenizer.from_pretrained(str(folder)) if (folder / META_FILE).is_file() else None
    if src.kind == "folder" and has_tokenizer_files(src.path):
        return AutoTokenizer.from_pretrained(src.path)
    return None
