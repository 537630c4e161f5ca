# Every target installs what it needs into .venv first (stamped on pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY312  ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin) $(dir $(shell command -v python3.12 2>/dev/null)))

.PHONY: install browser test test-embedded lint format openapi build bench bench-detect bench-retention bench-anchor bench-reports bench-verify bench-analytics demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) browser

# The HTML report test renders in Debian's chromium (Playwright drives it via executable_path and
# downloads no browser of its own). Installed only when missing; CI runs `make test`, so test needs it too.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

test: $(STAMP) browser
	$(BIN)/pytest -n 2 --dist loadgroup

test-embedded: $(STAMP) browser
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

# Starts `audit-trail local` (embedded PostgreSQL unless DATABASE_URL is set) and plays the story over HTTP.
demo: $(STAMP)
	$(BIN)/audit-trail demo

bench-detect: $(STAMP)
	$(BIN)/python bench/detect.py

bench-retention: $(STAMP)
	$(BIN)/python bench/retention.py

bench-anchor: $(STAMP)
	$(BIN)/python bench/anchor.py

bench-reports: $(STAMP)
	$(BIN)/python bench/reports.py

bench-verify: $(STAMP)
	$(BIN)/python bench/verify.py

# GET /analytics for 30 days over 1,000,000 events, beside pulling the rows into Python.
bench-analytics: $(STAMP)
	$(BIN)/python bench/analytics.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
