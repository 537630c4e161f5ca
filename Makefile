# Every target installs what it needs into .venv first (stamped on pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY312  ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin) $(dir $(shell command -v python3.12 2>/dev/null)))

.PHONY: install test test-embedded lint format openapi build bench bench-detect bench-retention demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

test-embedded: $(STAMP)
	env -u DATABASE_URL $(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

openapi: $(STAMP)
	PYTHONPATH=layers/common:functions $(BIN)/python -m openapi_document > docs/openapi.json

build: $(STAMP)
	PATH=$(PY312):$$PATH $(BIN)/sam build

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

demo: $(STAMP)
	$(BIN)/python demo/demo.py

bench-detect: $(STAMP)
	$(BIN)/python bench/detect.py

bench-retention: $(STAMP)
	$(BIN)/python bench/retention.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
