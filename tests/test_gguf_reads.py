"""models/gguf_reads.py: one GGUF reader per file and one weight-name map per (architecture,
blocks) during a conversion, gguf's own functions restored afterwards. (That the converted model
is unchanged: tests/test_model_cache.py compares its logits with a fresh conversion's.)"""
from __future__ import annotations

import pytest

gguf = pytest.importorskip("gguf")

from spinsim.models.gguf_reads import gguf_read_once  # noqa: E402


def _tiny_gguf(path):
    """A GGUF file with one metadata field and one float32 tensor (gguf's own writer)."""
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_one_reader_per_file_and_one_name_map_then_restored(tmp_path):
    path = _tiny_gguf(tmp_path / "tiny.gguf")
    reader_cls, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    arch = gguf.MODEL_ARCH.LLAMA
    with gguf_read_once():
        a = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is a                     # the same file: parsed once
        assert isinstance(a, reader_cls) and [t.name for t in a.tensors] == ["token_embd.weight"]
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


def test_overlapping_conversions_in_threads_restore_gguf():
    """Threaded executors may load two models at once: the second conversion waits for the first
    (without the lock it saved the first's patched functions and put them back last)."""
    import threading

    reader_cls, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    inside, release, first_done = threading.Event(), threading.Event(), threading.Event()

    def first():
        with gguf_read_once():
            inside.set()
            release.wait(5)
        first_done.set()

    def second():
        inside.wait(5)
        with gguf_read_once():
            first_done.wait(1)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(5)
    threading.Event().wait(0.2)
    release.set()
    for t in threads:
        t.join(10)
    assert gguf.GGUFReader is reader_cls and gguf.get_tensor_name_map is name_map
