# Hemera Cloud: every target installs what it needs (venv + Python deps, the pinned CDK CLI,
# mosquitto via apt) so `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup apt-tools demo test test-fast lint format typecheck synth bench localstack-deploy down clean

help:
	@echo "make demo    - the local cloud with two demo tenants, simulated meters and RTU agents"
	@echo "make test    - lint, type-check and the whole test suite (unit, functional, integration, infra)"
	@echo "make synth   - cdk synth with the pinned CLI (cdk.out/)"
	@echo "make bench   - benchmarks (not part of the tests)"
	@echo "make localstack-deploy - deploy the CDK app to a running LocalStack (needs Docker)"
	@echo "make down    - stop a local cloud/demo started elsewhere"

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	# chalice 1.34 (the portal API's framework and `chalice package`) requires pip < 26.3.
	$(BIN)/pip install --quiet --upgrade 'pip<26.3'
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# mosquitto is the local MQTT broker; shellcheck lints the LocalStack deploy script.
APT_TOOLS := $(strip $(if $(shell command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null),,mosquitto) \
                    $(if $(shell command -v shellcheck),,shellcheck))

apt-tools:
ifneq ($(APT_TOOLS),)
	@echo "installing with apt: $(APT_TOOLS)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_TOOLS) >/dev/null
endif

setup: $(PY_STAMP) $(NPM_STAMP) apt-tools

demo: setup
	$(BIN)/hemera demo

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(PY_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest

test-fast: $(PY_STAMP)
	$(BIN)/pytest -m "not integration and not slow"

synth: setup
	CDK_DISABLE_VERSION_CHECK=true node_modules/.bin/cdk synth --quiet

bench: setup
	$(BIN)/python -m tests.bench.fleet_day
	$(BIN)/python -m tests.bench.ingest_path
	$(BIN)/python -m tests.bench.meter_reads
	$(BIN)/python -m tests.bench.exports
	$(BIN)/python -m tests.bench.agent_throughput --days 60
	$(BIN)/python -m tests.bench.agent_throughput --days 10 --intervals-per-envelope 8

localstack-deploy: setup
	bash localstack/deploy.sh

down: $(PY_STAMP)
	$(BIN)/hemera local down

clean:
	rm -rf cdk.out .hemera .pytest_cache .mypy_cache .ruff_cache
