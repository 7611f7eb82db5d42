"""A local cache of dequantised GGUF checkpoints, so the 4-bit file is converted once.

Loading a GGUF file through transformers dequantises every tensor (the embedded Q4_1
SmolLM2-135M: ~13 s of one core, 30 s without :mod:`.gguf_reads`). The first load saves the
resulting float32 model and its tokenizer with ``save_pretrained`` (safetensors, no pickles) into

    <cache root>/gguf/<sha256 of the .gguf file>/

and every later load of the same bytes reads that folder (about a second). The cache root is
``$SPINSIM_CACHE`` if set, else ``$XDG_CACHE_HOME/spinsim``, else ``~/.cache/spinsim``. A folder
is written under a temporary name and renamed into place whole, so an interrupted conversion or a
concurrent one never leaves a half-written entry that a later load would trust; an entry counts
only with its ``spinsim-cache.json`` (source file, hash, library versions). An unwritable cache
is not an error: the model is used from memory and a warning says why it was not cached.

The weights hash recorded in output files stays the hash of the ``.gguf`` file itself.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "META_FILE", "cache_root", "gguf_cache_dir", "read_cached", "write_cache"]

#: environment variable naming the cache root (takes precedence over XDG_CACHE_HOME)
CACHE_ENV = "SPINSIM_CACHE"
#: the file whose presence marks a complete cache entry
META_FILE = "spinsim-cache.json"


def cache_root() -> Path:
    """``$SPINSIM_CACHE``, else ``$XDG_CACHE_HOME/spinsim``, else ``~/.cache/spinsim``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "spinsim"


def gguf_cache_dir(sha256: str) -> Path:
    """The cache folder of the GGUF file whose bytes hash to ``sha256`` (64 hex digits)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
    return cache_root() / "gguf" / sha256


def read_cached(sha256: str, load_kw: dict[str, Any]) -> tuple[Any, Any] | None:
    """``(model, tokenizer)`` from the cache entry of ``sha256``, or None when there is none.

    ``load_kw``: keyword arguments of ``AutoModelForCausalLM.from_pretrained`` (dtype, attention
    implementation; no ``gguf_file``). An entry that fails to load (a damaged file) is removed and
    None returned, so the caller converts the GGUF again.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_cache_dir(sha256)
    if not (folder / META_FILE).is_file():
        return None
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, **load_kw)
        tok = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        warnings.warn(f"spinsim: the cached conversion in {folder} is damaged ({type(exc).__name__}); "
                      "converting the GGUF file again", RuntimeWarning, stacklevel=2)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return model, tok


def _save_float_model(model: Any, folder: Path) -> None:
    """config.json + model.safetensors of an already dequantised model. ``save_pretrained``
    refuses a model loaded from GGUF (it keeps the GGUF quantizer attached), so the tensors are
    written with safetensors' ``save_model`` (tied weights stored once) and the config without
    any quantisation entry."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True)
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    (folder / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})


def write_cache(sha256: str, model: Any, tokenizer: Any, source: str) -> Path | None:
    """Save ``model`` and ``tokenizer`` as the cache entry of ``sha256``; returns its folder, or
    None (with a RuntimeWarning naming the reason) when the cache cannot be written."""
    import transformers

    folder = gguf_cache_dir(sha256)
    tmp = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        _save_float_model(model, tmp)
        tokenizer.save_pretrained(tmp)
        meta = {"source": source, "sha256": sha256, "transformers": transformers.__version__,
                "format": "safetensors float32 (dequantised GGUF)"}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, folder)            # atomic; fails if another process got there first
        except OSError:
            if not (folder / META_FILE).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        warnings.warn(f"spinsim: could not cache the converted model in {folder.parent} ({exc.strerror or exc}); "
                      f"set {CACHE_ENV} to a writable folder to load it in a second next time",
                      RuntimeWarning, stacklevel=2)
        return None
    return folder
