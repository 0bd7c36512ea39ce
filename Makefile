# exportlake — the two front-door commands are `make demo` and `make test`; both set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 matches the Lambda runtime; fall back to whatever python3 is when 3.12 is not found.
PYTHON ?= $(firstword $(shell command -v python3.12 2>/dev/null) $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) $(wildcard /usr/local/bin/python3.12) python3)
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup demo test lint typecheck unit bench clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

setup: $(VENV)/.installed  ## create .venv with exportlake and every tool installed

demo: setup  ## run the whole pipeline locally (moto server + gateway simulator) and show the data
	$(VENV)/bin/exportlake demo

lint: setup  ## ruff (lint + format check)
	$(VENV)/bin/ruff check functions infra tests bench
	$(VENV)/bin/ruff format --check functions infra tests bench

typecheck: setup  ## mypy on functions/ and infra/
	$(VENV)/bin/mypy

test: setup lint typecheck  ## lint, type-check and run every test (offline: moto + simulator on loopback)
	$(PY) -m pytest -n 2 -q
	$(MAKE) --no-print-directory cdk-check

unit: setup  ## the fast tests only
	$(PY) -m pytest -q tests/unit

bench: setup  ## benchmarks: exportlake vs dlt vs gzip -1 (not part of `make test`)
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) -m bench.run

clean:  ## remove the virtual environment and build output
	rm -rf $(VENV) cdk.out node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis

-include infra.mk
