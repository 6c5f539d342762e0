# IoT Mail Relay. `make` prints this help; `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A Python 3.12 interpreter (the Lambda runtime; flanker does not import on 3.13).
# Override with `make test PYTHON=/path/to/python3.12`.
PYTHON ?= $(shell for c in python3.12 "$$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 \
	"$$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	"$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { echo "$$c"; break; }; done)

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.PHONY: python
python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: no Python 3.12 interpreter found (tried python3.12 on PATH and pyenv versions)." >&2; \
		echo "       Install Python 3.12 (e.g. 'pyenv install 3.12') or run: make <target> PYTHON=/path/to/python3.12" >&2; \
		exit 1; fi

# .venv gets the function's dependencies exactly as the image does (the same lock, hashes required,
# flanker built with the locked setuptools), then the dev tools constrained to the lock's versions:
# a tool that needs another version of a locked package fails the install instead of moving the tests
# off what ships. The lock is for Linux x86_64 (the Lambda platform): see README, Dependencies and SBOM.
$(STAMP): app/requirements.lock app/build-requirements.lock requirements-dev.txt pyproject.toml | python
	@[ -x $(BIN)/python ] && $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
		|| { rm -rf $(VENV); "$(PYTHON)" -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r app/build-requirements.lock
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --no-build-isolation -r app/requirements.lock
	grep -Eo '^[A-Za-z0-9._-]+==[^ ]+' app/requirements.lock > $(VENV)/lock-constraints.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt --constraint $(VENV)/lock-constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -c "$$FLANKER_TABLES"
	@touch $@

# flanker's address parser writes its ply parse tables into its own package on first import, logging
# "Symbol '...' is unreachable" for each rule its other start symbols use (28 lines). The Dockerfile builds
# them into the image; this builds them into .venv, so the sandbox, the demo and the tests start quietly.
# Only those lines are dropped, and only while building: any other warning of the parser still shows.
define FLANKER_TABLES
import logging
logging.getLogger("flanker.addresslib._parser.parser").addFilter(lambda r: "is unreachable" not in r.getMessage())
from flanker.addresslib import address
address.parse("a@b.c")
endef
export FLANKER_TABLES

.PHONY: venv
venv: $(STAMP) ## Create .venv with Python 3.12 and the dev tools

.PHONY: lint
lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app relayctl sandbox demo tools localaws

.PHONY: test
test: lint scan lock-check template-check wheels browser ## Lint, scan, check the lock and the template, run every test
	$(BIN)/python -m pytest

.PHONY: demo
demo: $(STAMP) ## Run the function on the sample mails in events/ against an in-process moto account
	$(BIN)/python -m demo

.PHONY: clean
clean: ## Remove virtual environments and caches
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache .aws-sam build

.PHONY: sandbox
sandbox: $(STAMP) ## Run the whole pipeline locally behind a real SMTP server (Ctrl-C stops; ARGS="--help")
	$(BIN)/python -m sandbox $(ARGS)

# Template checks. checkov and aws-sam-cli pin conflicting libraries, so each has its own venv.
TOOLS := .venv-tools
SAM := .venv-sam
WHEELS := .venv-wheels

$(TOOLS)/.installed: requirements-tools.txt | python
	rm -rf $(TOOLS) && "$(PYTHON)" -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $@

$(SAM)/.installed: requirements-sam.txt | python
	rm -rf $(SAM) && "$(PYTHON)" -m venv $(SAM)
	$(SAM)/bin/python -m pip install --quiet -r requirements-sam.txt
	@touch $@

.PHONY: template-check
template-check: $(STAMP) $(TOOLS)/.installed $(SAM)/.installed ## cfn-lint, sam validate (+ --lint) and checkov on template.yaml
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM)/bin/sam validate --region eu-west-1 --config-env translate
	SAM_CLI_TELEMETRY=0 $(SAM)/bin/sam validate --region eu-west-1 --lint
	$(TOOLS)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download

# The image test (and the packaging test) install the lock from these files instead of the network:
# the very files the image installs, downloaded for the Lambda platform, each checked against its hash.
$(WHEELS)/.built: app/requirements.lock app/build-requirements.lock | $(STAMP)
	rm -rf $(WHEELS)
	$(BIN)/python -m pip download --quiet --require-hashes --no-deps $$($(BIN)/python -m tools.lock platform-args) \
		-r app/requirements.lock -r app/build-requirements.lock -d $(WHEELS)
	@touch $@

.PHONY: wheels
wheels: $(WHEELS)/.built ## The locked files for the image test (tests/template/test_image.py), from the index

# Dependency lock (tools/lock.py). `make lock` needs the package index; `make lock-check` does not.
.PHONY: lock
lock: $(STAMP) ## Regenerate app/requirements.lock (+ build and relayctl locks) from app/requirements.txt
	$(BIN)/python -m tools.lock generate

.PHONY: lock-check
lock-check: $(STAMP) ## The locks match app/requirements.txt and pyproject.toml, and install on Lambda
	$(BIN)/python -m tools.lock check

SBOM ?= build/sbom.cdx.json

.PHONY: sbom
sbom: $(STAMP) ## CycloneDX SBOM of the image's packages (app/requirements.lock) in build/sbom.cdx.json (SBOM=path)
	$(BIN)/python -m tools.lock sbom --output $(SBOM)

# The web view's browser test (tests/sandbox/test_web.py) drives Debian's headless Chromium through its
# driver at a fixed path (Selenium never downloads one); the README's sandbox commands need swaks, jq, curl
# and openssl. Installed with apt when missing. The tests find them as tests/support/tools.py does: where
# apt-get exists (CI) a missing one fails them, loudly; only without apt-get do they skip and say why.
CHROMEDRIVER := /usr/bin/chromedriver
CHROMIUM := /usr/bin/chromium
BROWSER_TOOLS := swaks jq curl openssl

.PHONY: browser
browser: ## Debian's chromium, chromium-driver, swaks, jq, curl and openssl for the end-to-end tests (apt-get, only when missing)
	@if [ -x $(CHROMEDRIVER) ] && [ -x $(CHROMIUM) ] && ( for tool in $(BROWSER_TOOLS); do command -v $$tool >/dev/null || exit 1; done ); then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver $(BROWSER_TOOLS); \
	else echo "no apt-get to install $(CHROMIUM), $(CHROMEDRIVER), $(BROWSER_TOOLS): the browser and README tests that need a missing one will be skipped" >&2; fi

# The benchmark is not part of `make test`: it takes minutes and its figures depend on the machine.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@touch $@

.PHONY: bench
bench: $(BENCH_STAMP) ## Time and memory of the function against the raw limit, 1-40 MB mails (ARGS="--sizes 10 --repeat 1")
	$(BIN)/python -m bench $(ARGS)

# Scanners: bandit fails on any finding of medium or high severity in app/; pip-audit fails on a known
# vulnerability in the image's packages (app/requirements.lock: exactly what ships, read as it is, no
# resolution) unless .pip-audit-ignore lists it. pip-audit reads PyPI's advisory data; where PyPI cannot
# answer for a release it lists it as skipped: pass PIP_AUDIT_FLAGS=--strict to fail on that as well.
PIP_AUDIT_FLAGS ?=

.PHONY: scan
scan: $(STAMP) ## bandit on app/ (no medium/high findings) and pip-audit on app/requirements.lock
	$(BIN)/bandit --quiet --recursive app --severity-level medium
	$(BIN)/pip-audit --progress-spinner off --requirement app/requirements.lock --require-hashes --disable-pip \
		$(PIP_AUDIT_FLAGS) \
		$$(grep -Eo '^[A-Za-z0-9-]+' .pip-audit-ignore | sed 's/^/--ignore-vuln /')
