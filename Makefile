# Two entry points (see README): `make train` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# where pip looks for torch: PyPI's default index serves a CUDA build on Linux; for the CPU-only build use
# `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu` (or set it in the environment)
TORCH_INDEX ?=
# extra arguments for `make train`, e.g. `make train ARGS="--force"` or `make train ARGS="--resume --steps 40000"`
ARGS ?=

.PHONY: setup setup-dev train test lint export readme notebooks bench results pretrained speedrun ladder docs docs-check clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch is pinned and installed first: an unpinned torch would pull a CUDA build of several GB
$(VENV)/.setup: $(BIN)/python setup.py settings.ini
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
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
	$(BIN)/mlp-names train $(ARGS)

# The second notebook run's instruction set: float32 sums round differently on another one, so training digits move
# and the stored outputs must hold anyway. On an AVX-512 machine, PyTorch's and MKL's AVX2 code paths; elsewhere the
# plain (non-vectorised) ATen kernels and MKL's SSE4.2 path.
ISA_SWITCH ?= $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo 'ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2' || echo 'ATEN_CPU_CAPABILITY=default MKL_CBWR=SSE4_2')

# the test command: every notebook under nbval, the sync checks, the install and CLI tests; then every notebook
# again under another instruction set, against the same stored outputs
test: setup-dev lint
	$(BIN)/python -m pytest
	@echo "== the notebooks again, on another instruction set: $(ISA_SWITCH)"
	env $(ISA_SWITCH) $(BIN)/python -m pytest nbs

# ruff's lint and format checks over the notebooks and the library (pyproject.toml: lines at most 100)
lint: setup-dev
	$(BIN)/ruff check
	$(BIN)/ruff format --check

# write the library from the notebooks: nbdev_export, then ruff's layout (two blank lines between definitions)
export: setup-dev
	$(BIN)/nbdev_export
	$(BIN)/ruff format -q mlp_names

# regenerate README.md from nbs/index.ipynb
readme: setup-dev
	$(BIN)/python tools/make_readme.py

# re-execute every notebook in a fresh kernel and store its outputs (see README, Contributing)
notebooks: export
	cd nbs && for nb in [0-9]*.ipynb index.ipynb; do \
	  ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900 $$nb || exit 1; done
	$(BIN)/nbdev_clean
	# ipywidgets' saved state (chapter 06's panel) gets new ids at every run and is not needed to show the chapter
	$(BIN)/python -c "import json, pathlib; [p.write_text(json.dumps({**nb, 'metadata': {k: v for k, v in nb['metadata'].items() if k != 'widgets'}}, indent=1, ensure_ascii=False) + '\n', encoding='utf-8') for p in pathlib.Path('nbs').glob('*.ipynb') if 'widgets' in (nb := json.loads(p.read_text(encoding='utf-8')))['metadata']]"
	$(BIN)/python tools/make_readme.py

bench: setup
	$(BIN)/python bench/benchmark.py

# time to target val losses through `mlp-names train`, 3 seeds each, and the torch.nn peer (bench/README.md)
speedrun: setup
	$(BIN)/python bench/speedrun.py --peer --markdown bench/results.md

# full runs of every preset of chapter 05a, each `mlp-names train --preset NAME` in a fresh process (about 15
# minutes on 2 cores); prints the table of losses, times and sample novelty that the README quotes
results: setup
	$(BIN)/python bench/results.py --markdown bench/results.md --json bench/results.json

# chapter 06a's ladder on 2 threads: makemore.py's default transformer for 10,000 steps (about four minutes on a quiet
# machine), then every rung (bigram, original, tree, dropout, best, transformer) at 1, 2, 5 and 10 minutes (about
# 1.5 hours); one JSON
# line per measurement in bench/ladder.jsonl, the table into bench/results.md, the picture into github_graphs/
ladder: setup
	$(BIN)/python bench/ladder.py makemore --out bench/ladder.jsonl
	$(BIN)/python bench/ladder.py budgets 1 2 5 10 --out bench/ladder.jsonl
	$(BIN)/python bench/ladder.py report bench/ladder.jsonl --markdown bench/results.md --plot github_graphs/ladder.png

# the model shipped with the package, mlp_names/pretrained.safetensors + pretrained.json, from a run of the best preset
# (train it first: mlp-names train --preset best --threads 2 --run runs/best); the site's try.html model is made from
# it by `make docs`. PRETRAINED_ARGS="--export FILE --note TEXT" converts an exported model instead (see the guide)
PRETRAINED_ARGS ?= --run runs/best
pretrained: setup-dev
	$(BIN)/python tools/pretrained.py $(PRETRAINED_ARGS)

# the book as a website in _docs/ (open _docs/index.html), built by Sphinx + MyST-NB with sphinx-book-theme
# (docs/conf.py) from the notebooks' stored outputs: nothing re-runs. -W: any warning fails the build; -E: every page is read afresh
docs: setup-dev
	$(BIN)/python -m sphinx -W --keep-going -E -q -b html -c docs -d _build/doctrees nbs _docs

# every page in headless Chromium from file://: fails on a console error, a network request, an image that does
# not load or a TeX error, and on a chapter page whose code scrolls sideways at 1280 px (a `pre` wider than its box,
# or a column that shows fewer than 100 characters); then the search box and the name generator of try.html;
# screenshots go to _docs/screens/. Needs Debian's Chromium: apt-get update && apt-get install -y chromium
docs-check: docs
	$(BIN)/python tools/check_docs.py
