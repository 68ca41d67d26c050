# One task runner for people and CI. Every target sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-check bench-send bench-report sample-data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/media-import demo

test: $(STAMP)
	$(BIN)/pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check importer tests bench sample_data
	$(BIN)/ruff format --check importer tests bench sample_data
	$(BIN)/mypy

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
