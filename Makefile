# The one install path: a local virtualenv with the CPU build of torch
# installed first (a bare `torch` requirement would pull a multi-GB CUDA build).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint test-all eval bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Lint and types first (ruff, with a complexity limit; mypy on dsqa/), then
# every test, the slow crash test included (`-m 'not slow'` leaves it out).
test: install lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

eval: install
	$(BIN)/dsqa eval --compare

# Benchmarks (slow: the full run indexes the 21 MB Kubernetes corpus twice and
# builds a 1M-vector index; `python -m bench --quick` takes a few minutes).
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
