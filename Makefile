# ree-abm: every target creates .venv on a fresh machine and installs what it needs.
SHELL := /bin/bash
# Python 3.12+ (Mesa 3.5 refuses 3.11): on PATH (pyenv shims read .python-version) or in pyenv's folder
PY_SYS ?= $(shell command -v python3.12 || command -v python3.13 || ls -d $(HOME)/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1 || true)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8765
APP_HOST ?= 127.0.0.1
WEEKS ?=
SCENARIOS ?= baseline

.PHONY: help venv run app test test-fast test-min lint bench figures validate clean browser-deps

help:
	@echo "make run      - run the shipped scenarios into results/"
	@echo "make app      - serve the classroom view on http://$(APP_HOST):$(PORT)"
	@echo "make test     - lint + full test suite (installs venv and chromium if missing)"
	@echo "make test-min - core tests in .venv-min, every dependency at the lowest version pyproject allows"
	@echo "make bench    - print benchmark figures"

$(STAMP): pyproject.toml setup.py model/_auction.pyx
	@if [ -z "$(PY_SYS)" ]; then echo "error: Python 3.12+ not found (mesa 3.5 needs it). Install it or put python3.12 on PATH; see .python-version" >&2; exit 1; fi
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,research]'
	$(PY) -m pip install -q --no-deps solara-assets==1.58.2
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ree run-all --out results $(if $(WEEKS),--weeks $(WEEKS),)

app: $(STAMP)
	SOLARA_TELEMETRY_MIXPANEL_ENABLE=False SOLARA_ASSETS_CDN=http://127.0.0.1:9/ \
	  $(VENV)/bin/solara run app.py --host $(APP_HOST) --port $(PORT) --production --no-open --no-check-version

# Debian's chromium drives the browser tests (never `playwright install`: no downloads here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: chromium missing and not root; browser tests will be skipped" >&2; fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) browser-deps lint
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow and not browser"

# The lower bounds of pyproject.toml, tested: .venv-min holds every direct dependency (core, test, research)
# at the lowest version its specifier allows (tools/lowest_deps.py writes the constraints; the rest resolves
# normally), and runs a part of the suite there (the model, agents, golden, docstring, property, effect and
# sweep tests; not the browser or README tests).
# Not part of `make test`: the install alone takes minutes.
VENV_MIN := .venv-min
PY_MIN := $(VENV_MIN)/bin/python
MIN_STAMP := $(VENV_MIN)/.installed
MIN_TESTS := tests/model tests/agents tests/test_golden.py tests/test_docstrings.py tests/test_properties.py \
	tests/experiments/test_effects.py tests/experiments/test_sweep.py

$(MIN_STAMP): pyproject.toml setup.py model/_auction.pyx tools/lowest_deps.py
	@if [ -z "$(PY_SYS)" ]; then echo "error: Python 3.12+ not found (mesa 3.5 needs it)" >&2; exit 1; fi
	@test -x $(PY_MIN) || $(PY_SYS) -m venv $(VENV_MIN)
	$(PY_MIN) -m pip install -q --upgrade pip
	$(PY_MIN) -m tools.lowest_deps --out $(VENV_MIN)/constraints.txt
	$(PY_MIN) -m pip install -q -c $(VENV_MIN)/constraints.txt -e '.[test,research]'
	@touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(PY_MIN) -m tools.lowest_deps --check $(VENV_MIN)/constraints.txt
	$(PY_MIN) -m pytest -p no:xdist $(MIN_TESTS)

bench: $(STAMP)
	$(PY) -m benchmarks.run

figures: $(STAMP)
	$(VENV)/bin/ree figures results

validate: $(STAMP)
	$(VENV)/bin/ree validate --out results/validation

# Seeded regression baseline: rewrite tests/golden/*.json (every shipped scenario, seeds 1-2) after an
# intended change of the model's behaviour; tests/test_golden.py checks them. Review with git diff.
.PHONY: golden
golden: $(STAMP)
	$(PY) -m experiments.golden --update

clean:
	rm -rf $(VENV) $(VENV_MIN) results .pytest_cache .ruff_cache .hypothesis
