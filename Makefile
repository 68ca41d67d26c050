# One task runner for people and CI. Every target sets up .venv itself, from the pinned versions in
# requirements/ (the lock): a green `make test` here is the environment CI and everyone else gets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/dev.txt
PYTEST_ARGS ?=

.PHONY: demo test lint lock bench bench-check bench-send bench-report sample-data clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/media-import demo

# pytest's own exit codes, unchanged: 5 ("no tests collected") fails like a failed test.
test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check importer tests bench sample_data
	$(BIN)/ruff format --check importer tests bench sample_data
	$(BIN)/mypy

# Refresh the lock after changing the dependencies in pyproject.toml: requirements/dev.txt pins the
# runtime dependencies and the dev extra, requirements/runtime.txt the runtime ones alone, at the same
# versions (so the tests run what users get). Pins that still fit are kept; `make lock
# UPGRADE=--upgrade` takes the newest releases. Commit both files: the next make reinstalls .venv.
UPGRADE ?=
LOCK_OPTS := --quiet --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(UPGRADE)
lock: $(STAMP)
	$(BIN)/pip-compile $(LOCK_OPTS) --extra dev -o requirements/dev.txt pyproject.toml
	$(BIN)/pip-compile $(LOCK_OPTS) -c requirements/dev.txt -o requirements/runtime.txt pyproject.toml

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-check: $(STAMP)
	$(BIN)/python -m bench.run --part a

bench-send: $(STAMP)
	$(BIN)/python -m bench.run --part b

bench-report: $(STAMP)
	$(BIN)/python -m bench.run --part r

sample-data: $(STAMP)
	$(BIN)/python sample_data/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
