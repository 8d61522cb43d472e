# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
DEMO ?= demo_out

.PHONY: demo test lint format bench clean

# The editable install is setuptools' default: with package-dir {"" = "src"} (pyproject.toml) it
# is a plain .pth to src/, which a ./spa_vl release folder cannot shadow; an import hook would
# lose to it (setup.py says why; tests/test_install.py checks it).
# The base install: what the loader, validator, card, release and audit need (no torch).
$(VENV)/.base: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

# Everything: torch first, pinned, so no other package pulls a multi-GB CUDA build.
$(VENV)/.all: $(VENV)/.base
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all]'
	touch $@

demo: $(VENV)/.base
	$(PY) -m spa_vl.demo --out $(DEMO) --release spa_vl

lint: $(VENV)/.all
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

test: $(VENV)/.all lint
	$(PY) -m pytest -q -p no:cacheprovider --timeout=900

format: $(VENV)/.all
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(DEMO) spa_vl build dist *.egg-info src/*.egg-info
