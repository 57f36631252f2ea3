# The two set-up commands: `make demo` and `make test`; `make notebooks` opens JupyterLab.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
NBSTAMP := $(VENV)/.installed-notebooks

.PHONY: demo test lint format bench install dev clean notebooks notebooks-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	# torch pinned first: the CPU wheel on disk, never a CUDA download
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	# the engine's kernels compiled once now, into numba's cache: the first run loads them
	# instead of compiling them in every worker (about 30 s)
	$(BIN)/python -c "from admf_dask.cluster.plugin import warm_worker; warm_worker()"
	touch $@

# the tests execute the notebooks too: the dev extra plus the notebooks install line
$(DEVSTAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q torch==2.13.0 -e '.[dev,notebooks]'
	touch $@

# the README's notebooks install line (Jupyter + what the notebooks import)
$(NBSTAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q torch==2.13.0 -e '.[notebooks]'
	touch $@

install: $(STAMP)
dev: $(DEVSTAMP)

# overwrite replaces only a previous run's folder: `make demo` can be run again
demo: $(STAMP)
	$(BIN)/admf-dask run pipelines/quickstart.yaml --set output.overwrite=true

# JupyterLab on loopback only (it prints the URL with its login token); more flags in
# JUPYTER_ARGS, e.g. `make notebooks JUPYTER_ARGS="--no-browser --allow-root"` in a container
JUPYTER_ARGS ?=
notebooks: $(NBSTAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(JUPYTER_ARGS)

# every notebook top to bottom, headless, small settings, outputs checked (the check of
# tests/test_notebooks.py); runs go to a temporary folder
notebooks-test: $(NBSTAMP)
	$(BIN)/python tests/_notebook_run.py notebooks/*.ipynb

# TEST_MARKERS: a pytest -m expression; .ci/run passes "not notebooks" (it runs the notebooks
# once, with `make notebooks-test` from their own install)
TEST_MARKERS ?=
test: $(DEVSTAMP)
	$(BIN)/python -m pytest -q --durations=30 -m "$(TEST_MARKERS)" tests

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
