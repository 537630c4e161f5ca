# Every target installs what it needs into .venv first (stamped on pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY312  ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin) $(dir $(shell command -v python3.12 2>/dev/null)))

.PHONY: install browser test test-embedded lint scan format openapi build bench bench-detect bench-retention bench-anchor bench-reports bench-verify bench-analytics demo clean

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

lint: $(STAMP) scan
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# checkov has a venv of its own: it pins boto3 ==1.35.49, packaging <24 and networkx <2.7, which conflict
# with the project's own (newer) versions, so it cannot live in .venv.
SCAN_VENV  ?= .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed

$(SCAN_STAMP): requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/pip install --quiet -r requirements-scan.txt
	touch $(SCAN_STAMP)

# Security scan of template.yaml; every finding is fixed or skipped with its reason in the resource's
# Metadata (docs/security.md lists them). Offline: --skip-download and BC_SKIP_MAPPING keep it from
# fetching policy metadata, CKV_SKIP_PACKAGE_UPDATE_CHECK from asking the package index for a newer checkov.
scan: $(SCAN_STAMP)
	BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(SCAN_VENV)/bin/checkov -f template.yaml \
		--framework cloudformation --quiet --compact --skip-download

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
	rm -rf $(VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
