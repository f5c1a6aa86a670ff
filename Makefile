# The two commands: `make demo` (install + run the main job on the sample data) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV := source scripts/env.sh &&

.PHONY: setup demo test test-fast bench lint clean stack stack-down stack-status

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(PY) -m pip install -c requirements.lock -e '.[server,dev,bench,worker]'
	touch $(STAMP)

setup: $(STAMP)
	PY=$(PY) bash scripts/fetch_models.sh
	bash scripts/install_chromium.sh   # headless browser of the stack's UI test (Debian package; idempotent)

demo: setup
	$(ENV) bash scripts/demo.sh

test: setup
	$(ENV) python -m pytest -q

test-fast: setup
	$(ENV) python -m pytest -q -m "not slow"

LINT_PATHS := curation synthesis training dags bench tests

# ruff's rules (pyproject.toml; the layer rule as banned imports in each package's ruff.toml) and its formatter
lint: setup
	$(ENV) ruff check $(LINT_PATHS)
	$(ENV) ruff format --check $(LINT_PATHS)

# The production topology on this machine, without Docker (OPERATIONS.md): Airflow 3 on Postgres + Redis
# with Celery workers, and a Spark standalone cluster; logs and pids under out/stack/.
stack: setup
	$(ENV) python -m dags.stack up

stack-down:
	$(ENV) python -m dags.stack down

stack-status:
	$(ENV) python -m dags.stack status

clean:
	rm -rf out .pytest_cache
