# The two commands: `make demo` (install + run the main job on the sample data) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV := source scripts/env.sh &&

.PHONY: setup demo test test-fast bench lint clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(PY) -m pip install -c requirements.lock -e '.[server,dev,bench]'
	touch $(STAMP)

setup: $(STAMP)
	PY=$(PY) bash scripts/fetch_models.sh

demo: setup
	$(ENV) bash scripts/demo.sh

test: setup
	$(ENV) python -m pytest -q

test-fast: setup
	$(ENV) python -m pytest -q -m "not slow"

lint: setup
	$(ENV) ruff check curation synthesis training dags bench tests

clean:
	rm -rf out .pytest_cache
