"""spinsim/kernels/cache_guard.py: the kernels' Numba cache entries are keyed on a digest of all
kernel sources (Numba alone checks only the file that defines a cached function, so an edit of
the inlined physics in site.py kept the old compiled loop of cpu.py)."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import spinsim.kernels.cache_guard as cg


def test_the_digest_covers_every_kernel_file(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(cg.ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert cg.source_digest(copy) == cg.source_digest()
    for name in ("site.py", "rng.py", "cuda/kernels.py"):       # an inlined callee, a nested package
        f = copy / name
        before = cg.source_digest(copy)
        f.write_text(f.read_text() + "\n# edited\n")
        assert cg.source_digest(copy) != before, name
    before = cg.source_digest(copy)
    (copy / "new_module.py").write_text("x = 1\n")
    assert cg.source_digest(copy) != before


def test_the_kernels_cache_stamp_holds_the_digest():
    from spinsim.kernels import cpu, enum_ising
    for d in (cpu.run_local, enum_ising._levels_chunks):
        loc = d._cache._impl.locator
        assert type(loc).__name__.startswith("KernelSources")
        assert loc.get_source_stamp()[1] == cg.source_digest()


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_an_entry_compiled_from_other_sources_is_not_loaded(tmp_path, monkeypatch):
    """A cached function whose own file is unchanged is recompiled when the digest differs (as
    when site.py changed under cpu.py), and loaded from the cache when it is the same."""
    monkeypatch.setattr(cg, "ROOT", tmp_path)
    (tmp_path / "kern.py").write_text("from numba import njit\n\n\n@njit(cache=True)\ndef f():\n    return 7\n")
    monkeypatch.setattr(cg, "_DIGEST", "digest of the old sources")
    first = _load(tmp_path / "kern.py", "spinsim_test_kern_a")
    assert first.f() == 7 and sum(first.f.stats.cache_misses.values()) == 1
    same = _load(tmp_path / "kern.py", "spinsim_test_kern_b")
    assert same.f() == 7 and sum(same.f.stats.cache_hits.values()) == 1          # same digest: loaded
    monkeypatch.setattr(cg, "_DIGEST", "digest of the edited sources")
    edited = _load(tmp_path / "kern.py", "spinsim_test_kern_c")
    assert edited.f() == 7
    assert sum(edited.f.stats.cache_hits.values()) == 0 and sum(edited.f.stats.cache_misses.values()) == 1
    for name in ("spinsim_test_kern_a", "spinsim_test_kern_b", "spinsim_test_kern_c"):
        sys.modules.pop(name, None)


def test_other_files_keep_numbas_locators(tmp_path):
    (tmp_path / "other.py").write_text("from numba import njit\n\n\n@njit(cache=True)\ndef g():\n    return 1\n")
    mod = _load(tmp_path / "other.py", "spinsim_test_other")
    assert not type(mod.g._cache._impl.locator).__name__.startswith("KernelSources")
    sys.modules.pop("spinsim_test_other", None)
