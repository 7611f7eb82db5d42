"""spinsim/kernels/cache_guard.py: the kernels' Numba cache is dropped when any kernel source
changes (Numba alone checks only the file that defines a cached function, so an edit of the
inlined physics in site.py kept the old compiled loop of cpu.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import spinsim.kernels.cache_guard as cg


def test_the_digest_covers_every_kernel_file(tmp_path):
    src = Path(cg.__file__).parent
    copy = tmp_path / "kernels"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert cg.source_digest(copy) == cg.source_digest()
    for name in ("site.py", "rng.py", "cuda/kernels.py"):       # an inlined callee, a nested package
        f = copy / name
        before = cg.source_digest(copy)
        f.write_text(f.read_text() + "\n# edited\n")
        assert cg.source_digest(copy) != before, name
    (copy / "new_module.py").write_text("x = 1\n")
    assert cg.source_digest(copy) != before


def test_stale_cache_files_are_removed_once(tmp_path, monkeypatch):
    monkeypatch.setattr(cg, "cache_folder", lambda: tmp_path)
    old = [tmp_path / "cpu.run_local-40.py311.nbi", tmp_path / "cpu.run_local-40.py311.1.nbc"]
    for f in old:
        f.write_bytes(b"compiled from other sources")
    (tmp_path / "keep.txt").write_text("not a cache file")
    assert cg.drop_stale_cache() is True                      # no digest recorded: stale
    assert not any(f.exists() for f in old) and (tmp_path / "keep.txt").exists()
    assert (tmp_path / cg.MARKER).read_text() == cg.source_digest()
    fresh = tmp_path / "cpu.run_local-40.py311.nbi"
    fresh.write_bytes(b"compiled from these sources")
    assert cg.drop_stale_cache() is False and fresh.exists()  # same sources: kept
    monkeypatch.setattr(cg, "source_digest", lambda root=None: "0" * 64)   # a source changed
    assert cg.drop_stale_cache() is True and not fresh.exists()


def test_the_kernels_cache_folder_is_numbas(monkeypatch):
    folder = cg.cache_folder()
    from spinsim.kernels import cpu
    assert folder == Path(cpu.run_local._cache._cache_path)
