# hfsent developer tasks. `make quickstart` runs the main job offline; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install quickstart test lint transformers-tests

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel first, so nothing pulls a CUDA build of torch
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

quickstart: install
	$(VENV)/bin/hfsent train recipes/quickstart.yaml

test: install
	$(PY) -m pytest -q

# ruff, then the layout's rules: no import cycle inside hfsent/, a docstring on every public definition
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/check_imports.py
	$(PY) .ci/check_docstrings.py

# transformers' own common model/config tests (from its PyPI sdist) on HfSentModel beside BertForSequenceClassification
transformers-tests: install
	$(PY) .ci/transformers_model_tests.py
