"""Read a GGUF file once per conversion (transformers parses it three times).

``from_pretrained(..., gguf_file=...)`` builds the config, the tokenizer and the weights each
with its own ``gguf.GGUFReader`` of the same file, and the reader decodes every metadata field
in Python (the SmolLM2 vocabulary: ~49 000 strings, ~150 000 small memory-map reads); the weight
name map (``gguf.get_tensor_name_map``) is rebuilt for each of the model's ~400 modules. Of the
30.4 s that the embedded SmolLM2-135M took to convert on one core of this project's machine,
17.6 s were these repeats (12.8 s with this module, the same logits). :func:`gguf_read_once` shares one reader per file and one name map per
(architecture, block count) for the duration of a conversion, then restores ``gguf``'s own
functions; the tensors and the dequantisation are transformers' own, unchanged.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Any, Iterator

__all__ = ["gguf_read_once"]

#: held for a whole conversion: ``gguf``'s module attributes are patched, so two overlapping
#: conversions in threads (threaded executors load models) must not interleave their save/restore
_LOCK = threading.RLock()


@contextlib.contextmanager
def gguf_read_once() -> Iterator[None]:
    """Within: ``gguf.GGUFReader(path)`` returns the first reader made for ``path`` (read-only
    mode only) and ``gguf.get_tensor_name_map`` is memoised. Without the ``gguf`` package (no
    GGUF file can then be read anyway) a no-op. Conversions in other threads wait meanwhile
    (a lock), so ``gguf`` is always restored."""
    try:
        import gguf
    except ImportError:
        yield
        return
    with _LOCK:
        with _patched(gguf):
            yield


@contextlib.contextmanager
def _patched(gguf: Any) -> Iterator[None]:
    reader_cls, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[str, Any] = {}

    def shared_reader(path: Any, mode: str = "r") -> Any:
        if mode != "r":
            return reader_cls(path, mode)
        key = os.path.realpath(os.fspath(path))
        if key not in readers:
            readers[key] = reader_cls(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader_cls, name_map
