# The two set-up commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint format bench install dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	# torch pinned first: the CPU wheel on disk, never a CUDA download
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $@

$(DEVSTAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q torch==2.13.0 -e '.[dev]'
	touch $@

install: $(STAMP)
dev: $(DEVSTAMP)

demo: $(STAMP)
	$(BIN)/admf-dask run pipelines/quickstart.yaml

test: $(DEVSTAMP)
	$(BIN)/python -m pytest -q tests

lint: $(DEVSTAMP)
	$(BIN)/ruff check admf_dask tests benchmarks
	$(BIN)/ruff format --check admf_dask tests benchmarks

format: $(DEVSTAMP)
	$(BIN)/ruff format admf_dask tests benchmarks
	$(BIN)/ruff check --fix admf_dask tests benchmarks

bench: $(DEVSTAMP)
	$(BIN)/pip install -q torch==2.13.0 -e '.[dev,bench]'
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
