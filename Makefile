# MedViT-Bench. `make report` builds the whole report from nothing; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUITE ?= quick
# training runs at once on CPU (each gets cores / JOBS threads)
JOBS ?= 2
# A local folder of wheels (this machine kind keeps the CPU torch wheel in /opt/wheels).
# Elsewhere: make report PIP_EXTRA="--extra-index-url https://download.pytorch.org/whl/cpu"
WHEELS ?= /opt/wheels
PIP_EXTRA ?=
export NO_MKDOCS_2_WARNING := 1
PIP_FLAGS := $(if $(wildcard $(WHEELS)/*.whl),--find-links $(WHEELS),) $(PIP_EXTRA)

.PHONY: install install-site lock chromium dataset suite site report test serve clean-results

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins the whole dependency tree as tested (regenerate: make lock)
$(VENV)/.installed: requirements.txt requirements-site.txt constraints.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check $(PIP_FLAGS) -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(VENV)/.installed

lock: install
	$(BIN)/python scripts/lock_requirements.py

# The site alone (no torch): what the Pages workflow installs.
install-site: | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-site.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

dataset: install
	$(BIN)/medbench data synth --suite $(SUITE) --if-absent

suite: dataset
	@start=$$(date +%s); $(BIN)/medbench run --suite $(SUITE) --jobs $(JOBS); \
	echo "suite $(SUITE) took $$(( $$(date +%s) - start )) s"

site: install
	$(BIN)/medbench site
	$(BIN)/mkdocs build --strict --quiet

report: suite site
	@echo "Report built: open site/index.html in a browser, or run 'make serve' for http://127.0.0.1:8000"

serve: install
	$(BIN)/mkdocs serve

# The GitHub workflow files, checked with actionlint (installed from requirements.txt).
ACTIONLINT := $(BIN)/actionlint
.PHONY: lint-workflows
lint-workflows: install
	$(ACTIONLINT) .github/workflows/*.yml

# lint-imports holds bench/ to its layers: the import-linter contracts in pyproject.toml.
test: install chromium lint-workflows
	$(BIN)/lint-imports
	$(BIN)/pytest -q

clean-results:
	rm -rf data/results/*/ data/checkpoints data/.locks
