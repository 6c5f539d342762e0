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

$(STAMP): app/requirements.txt requirements-dev.txt pyproject.toml | python
	@[ -x $(BIN)/python ] && $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
		|| { rm -rf $(VENV); "$(PYTHON)" -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create .venv with Python 3.12 and the dev tools

.PHONY: lint
lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app relayctl sandbox demo

.PHONY: test
test: lint scan template-check wheels browser ## Lint, scan, check the template, run every test
	$(BIN)/python -m pytest

.PHONY: demo
demo: $(STAMP) ## Run the function on the sample mails in events/ against an in-process moto account
	$(BIN)/python -m app.demo

.PHONY: clean
clean: ## Remove virtual environments and caches
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache .aws-sam

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

# The image test installs app/requirements.txt from these wheels instead of the network.
$(WHEELS)/.built: app/requirements.txt | $(STAMP)
	rm -rf $(WHEELS)
	$(BIN)/python -m pip wheel --quiet -r app/requirements.txt -w $(WHEELS)
	@touch $@

.PHONY: wheels
wheels: $(WHEELS)/.built ## Wheels of the function's dependencies for the image test (tests/template/test_image.py)

# The web view's browser test (tests/sandbox/test_web.py) drives Debian's headless Chromium through its
# driver at a fixed path (Selenium never downloads one). Installed with apt when missing; without apt and
# without the browser the test skips and says why.
CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: browser
browser: ## Debian's chromium and chromium-driver for the browser test (apt-get, only when missing)
	@if [ -x $(CHROMEDRIVER) ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver; \
	else echo "no $(CHROMEDRIVER) and no apt-get: the browser tests will be skipped" >&2; fi

# The benchmark is not part of `make test`: it takes minutes and its figures depend on the machine.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@touch $@

.PHONY: bench
bench: $(BENCH_STAMP) ## Time and memory of the function against the raw limit, 1-40 MB mails (ARGS="--sizes 10 --repeat 1")
	$(BIN)/python -m bench $(ARGS)

# Scanners: bandit fails on any finding of medium or high severity in app/; pip-audit fails on a known
# vulnerability in the function's dependencies (transitive ones included) unless .pip-audit-ignore lists
# it. pip-audit reads PyPI's advisory data; where PyPI cannot answer for a release it lists it as skipped:
# pass PIP_AUDIT_FLAGS=--strict to fail on that as well.
PIP_AUDIT_FLAGS ?=

.PHONY: scan
scan: $(STAMP) ## bandit on app/ (no medium/high findings) and pip-audit on app/requirements.txt
	$(BIN)/bandit --quiet --recursive app --severity-level medium
	$(BIN)/pip-audit --progress-spinner off --requirement app/requirements.txt $(PIP_AUDIT_FLAGS) \
		$$(grep -Eo '^[A-Za-z0-9-]+' .pip-audit-ignore | sed 's/^/--ignore-vuln /')
