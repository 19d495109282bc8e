# The two commands: `make analyze` and `make test`. Each sets up .venv/ first when it is missing or when
# pyproject.toml changed; otherwise set-up is skipped (the stamp file .venv/.installed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help analyze test bench lint clean

help:  ## Show the commands
	@echo "make analyze   set up .venv/ if needed, then run the whole pipeline on this study (ipr analyze)"
	@echo "make test      set up .venv/ if needed, then run the tests"
	@echo "make bench     time a synthetic 1,000-page study against baselines (BENCH_PAGES=1000)"
	@echo "make lint      check the code with ruff"
	@echo "make clean     remove generated outputs (data/interim/, reports/); never data/raw/ or data/coded/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV)/ (first time, or pyproject.toml changed): installing the pipeline and its libraries"
	@$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(BIN)/python -m pip install --quiet -e '.[test]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "set-up failed: see the messages above ($(VENV)/install.log)"; exit 1; }
	@touch $(STAMP)

# The pipeline's own modules compiled to bytecode once, as pip does for an installed package: Python does not
# write it itself where PYTHONDONTWRITEBYTECODE is set, and compiling them at every run took a tenth of a second.
COMPILED := $(VENV)/.compiled
$(COMPILED): $(STAMP) $(wildcard pipeline/*.py pipeline/*/*.py)
	@$(BIN)/python -m compileall -q pipeline
	@touch $(COMPILED)

analyze: $(COMPILED)  ## Run the pipeline on this study
	$(BIN)/ipr analyze

test: $(COMPILED)  ## Run the tests
	$(BIN)/python -m pytest

BENCH_PAGES ?= 1000
bench: $(COMPILED)  ## Benchmarks with ratios against baselines measured in the same run
	$(BIN)/python tests/benchmark.py --pages $(BENCH_PAGES)

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests

clean:
	rm -rf data/interim reports .bench
