"""The dequantised-GGUF cache: where it lives, a round trip that gives the same logits, damaged
and unwritable caches, and the embedded SmolLM2 loaded from the cache the second time."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import llama_dir
from spinsim.models import model_cache
from spinsim.models.loading import load_model

SHA = "ab" * 32


def _logits(lm, text="The capital of France is"):
    import torch

    with torch.no_grad():
        return lm.model(torch.tensor([lm.encode(text)])).logits.numpy()


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv(model_cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache.cache_root() == tmp_path / "xdg" / "spinsim"
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert model_cache.gguf_cache_dir(SHA) == tmp_path / "mine" / "gguf" / SHA
    with pytest.raises(ValueError, match="64 lower-case hex digits, got 'xyz'"):
        model_cache.gguf_cache_dir("xyz")


def test_round_trip_gives_the_same_model(monkeypatch, tmp_path):
    from spinsim.models.loading import model_from_module

    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path))
    lm = load_model(str(llama_dir()))
    folder = model_cache.write_cache(SHA, lm.model, lm.tokenizer, source="tiny")
    assert folder == tmp_path / "gguf" / SHA and (folder / model_cache.META_FILE).is_file()
    assert [p.name for p in folder.parent.iterdir()] == [SHA]           # no temporary left behind
    model, tok = model_cache.read_cached(SHA, {"attn_implementation": "eager"})
    again = model_from_module(model, tok, "tiny")
    np.testing.assert_array_equal(_logits(again), _logits(lm))
    assert again.encode("Lions are carnivores") == lm.encode("Lions are carnivores")
    for name, arr in lm.weights.tensors.items():
        np.testing.assert_array_equal(again.weights.tensors[name], arr, err_msg=name)


def test_damaged_entry_is_dropped_and_unwritable_cache_warns(monkeypatch, tmp_path):
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "c"))
    lm = load_model(str(llama_dir()))
    folder = model_cache.write_cache(SHA, lm.model, lm.tokenizer, source="tiny")
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.warns(RuntimeWarning, match="is damaged"):
        assert model_cache.read_cached(SHA, {}) is None
    assert not folder.exists()
    assert model_cache.read_cached(SHA, {}) is None                      # no entry: a plain miss
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(model_cache.CACHE_ENV, str(blocker))              # the root cannot be a folder
    with pytest.warns(RuntimeWarning, match="could not cache the converted model"):
        assert model_cache.write_cache(SHA, lm.model, lm.tokenizer, source="tiny") is None


@pytest.mark.slow
def test_embedded_gguf_converted_once_then_read_from_cache(monkeypatch, smollm2):
    """The first load converts the Q4_1 GGUF and fills the cache; the second reads the cache (the
    GGUF de-quantizer is not called) and gives the same logits and the GGUF file's hash.

    The first load is the test run's one conversion of the model (tests/conftest.py, fixture
    ``smollm2_cache``: into an empty cache root, with the de-quantiser's calls counted and the
    converted model's logits kept), so that the other SmolLM2 tests read this cache instead of
    converting the model again."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    first = smollm2
    assert first["dequantiser_calls"] > 0 and first["entries_before"] == []
    assert first["entries_after"] == [first["weights_sha256"]]           # one entry, keyed by the file's hash
    assert (model_cache.gguf_cache_dir(first["weights_sha256"]) / model_cache.META_FILE).is_file()

    def no_conversion(*a, **k):
        raise AssertionError("the GGUF file was dequantised again")

    monkeypatch.setattr(gguf_utils, "load_gguf_checkpoint", no_conversion)
    second = load_model("smollm2-135m", progress=False)
    assert second.weights_sha256 == first["weights_sha256"]
    np.testing.assert_array_equal(_logits(second, first["text"]), np.load(first["logits"]))
