# exportlake — the two front-door commands are `make demo` and `make test`; both set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 matches the Lambda runtime: take the first interpreter that really runs as 3.12 (a pyenv shim may
# exist without one), then 3.13, then python3 if it is at least 3.11.
PYTHON ?= $(shell for p in python3.12 $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) /usr/local/bin/python3.12 /usr/bin/python3.12 python3.13 python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup demo test lint typecheck unit soak bench clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "exportlake needs Python >= 3.11 (3.12 preferred)"; exit 1; }
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

test: setup lint typecheck node_modules/.installed  ## lint, type-check and run every test (offline: moto + simulator on loopback)
	$(PY) -m pytest -n 4 --dist worksteal -q --durations=10
	$(MAKE) --no-print-directory cdk-check

unit: setup  ## the fast tier (≤ 10 s): no subprocess, no network, property tests on a small budget
	EXPORTLAKE_UNIT_BUDGET=1 $(PY) -m pytest -q -p no:xdist -m "not slow" tests/unit

soak: setup  ## crash soak: many SIGKILLed syncs on larger results, then the crash contract checked (not in `make test`)
	EXPORTLAKE_SOAK_ROUNDS=$${ROUNDS:-25} EXPORTLAKE_SOAK_RECORDS=$${RECORDS:-200000} \
	  $(PY) -m pytest -q -p no:xdist -s tests/e2e/test_crash.py

bench: setup  ## CPU per record of the whole sync, 1M, against the merge-base with main (ARGS=--full: the issue-10 run)
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) -m bench.run $(ARGS)
	$(PY) -m bench.erase  # issue 19: erase one person from 50 of ~1,000 results (moto server + simulator)

clean:  ## remove the virtual environment and build output
	rm -rf $(VENV) cdk.out node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis

-include infra.mk
