# tlog-monitor: every target sets up what it needs from the lock files.
#   make run    run the monitor (SQLite by default)
#   make test   lint, type-check and test
#   make test-fast   the quick tests only (no slow ones, no PostgreSQL), for the inner loop
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: help setup run demo test test-fast lint typecheck pytest bench bench-storage docs clean

help:
	@echo "make run    run the monitor (SQLite by default; CONFIG=FILE for another config)"
	@echo "make test   set up, lint (ruff), type-check (mypy --strict) and test (pytest)"
	@echo "make test-fast   the tests that are neither slow nor need PostgreSQL, in parallel"
	@echo "make demo   offline demo on the built-in simulator"
	@echo "make bench  benchmarks"
	@echo "make lint   ruff only"
	@echo "make docs   regenerate docs/configuration.md from the settings model"

# uv itself comes from a hash-pinned requirements file; everything else from uv.lock.
$(UV): requirements/bootstrap.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements/bootstrap.txt
	@touch $@

$(STAMP): $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check monitor tests bench tools
	$(BIN)/ruff format --check monitor tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests run in parallel, one worker per core (pytest-xdist; PYTEST_WORKERS=0 for none),
# each worker taking the next test as it frees up.
# Bytecode caches are written even where the environment says not to: the tests start the
# tlog-monitor command in many child processes, and without caches each one compiles
# everything it imports anew.
PYTEST_WORKERS ?= auto
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

pytest: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

test: lint typecheck pytest

# The inner loop: the tests that are neither slow nor need PostgreSQL, without lint or mypy
test-fast: $(STAMP)
	$(PYTEST) -m "not slow and not pg and not online" $(PYTEST_ARGS)

CONFIG ?= config/monitor.yaml

# The daemon on the public Sigstore logs (CONFIG=FILE for another configuration).
run: $(STAMP)
	$(BIN)/tlog-monitor run --config $(CONFIG)

demo: $(STAMP)
	$(BIN)/tlog-monitor demo

# Every benchmark (parse, match, fetch, the simulator, the daemon end to end on v1 and v2,
# storage and queries on SQLite and PostgreSQL) in one run of under 10 minutes; writes
# bench/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m bench.report

# 100,000, then 1,000,000, then 10,000,000 entries of the log (5% matched) on SQLite and
# PostgreSQL, measured at each size: about 45 minutes, so not part of `bench`
bench-storage: $(STAMP)
	$(BIN)/python -m bench.bench_storage --sizes 100000,1000000,10000000 --rounds 100 --batches 10

# The configuration reference, from the settings model (tests/test_docs_reference.py checks it is current)
docs: $(STAMP)
	$(BIN)/python -m tools.config_reference docs/configuration.md

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .hypothesis
