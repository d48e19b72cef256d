# hfsent developer tasks. `make quickstart` runs the main job offline; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install quickstart test lint docs remote-code-matrix transformers-tests recipe-help

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

# a saved checkpoint as remote code on transformers 4.51.3, the newest 4.x and the installed 5.x, hfsent not
# installed: one throwaway venv per version under $HFSENT_MATRIX_DIR (default .cache/remote-code-matrix, reused)
remote-code-matrix: install
	$(PY) .ci/remote_code_matrix.py

# ruff, then the layout's rules: no import cycle inside hfsent/, a docstring on every public definition
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/check_imports.py
	$(PY) .ci/check_docstrings.py

# record `hfsent train/pretrain --help` in hfsent/recipe_help.json (printed without importing torch); run after
# changing a recipe key's help or default, or upgrading transformers: tests/cli/test_help.py fails until then
recipe-help: install
	$(PY) .ci/recipe_help.py

# the documentation site into site/; --strict: any warning (a broken link, anchor or API reference) fails
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# transformers' own common model/config tests (from its PyPI sdist) on HfSentModel beside BertForSequenceClassification
transformers-tests: install
	$(PY) .ci/transformers_model_tests.py
