# Two commands on a fresh machine: `make demo` and `make test`. Each makes .venv if it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv dev

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the main job on the embedded default: a throwaway PostgreSQL, sample data, every asset.
demo: $(STAMP)
	$(PY) -m pipeline_assets.demo

## The test suite (what CI runs).
test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## The Dagster UI on the demo (http://127.0.0.1:3000).
dev: $(STAMP)
	$(VENV)/bin/dagster dev -w workspace.yaml
