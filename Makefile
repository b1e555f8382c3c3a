# Two entry points (see README): `make train` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: setup setup-dev train test readme notebooks bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch is pinned and installed first: an unpinned torch would pull a CUDA build of several GB
$(VENV)/.setup: $(BIN)/python setup.py settings.ini
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.setup-dev: $(VENV)/.setup
	$(BIN)/pip install -q -e ".[dev]"
	# build matplotlib's font cache now: its one-time notice would otherwise appear in a notebook's output
	$(BIN)/python -c "import matplotlib.pyplot"
	touch $@

setup: $(VENV)/.setup
setup-dev: $(VENV)/.setup-dev

# the main job: train the default model on names.txt, print losses and sample names
train: setup
	$(BIN)/mlp-names train

# the test command: every notebook under nbval, the sync checks, the install and CLI tests
test: setup-dev
	$(BIN)/python -m pytest

# regenerate README.md from nbs/index.ipynb
readme: setup-dev
	$(BIN)/python tools/make_readme.py

# re-execute every notebook in a fresh kernel and store its outputs (see README, Contributing)
notebooks: setup-dev
	$(BIN)/nbdev_export
	cd nbs && for nb in [0-9]*.ipynb index.ipynb; do \
	  ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900 $$nb || exit 1; done
	$(BIN)/nbdev_clean
	$(BIN)/python tools/make_readme.py

bench: setup
	$(BIN)/python bench/benchmark.py
