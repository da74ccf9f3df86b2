# Two commands on a fresh machine with Python 3.11+:
#   make run    set up .venv on first use, then run the main job
#   make test   set up .venv on first use, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run smoke test setup clean-venv

$(STAMP): pyproject.toml requirements-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-ci.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: the paper's whole grid (config/config.yaml), downloading the raw data with checksums.
# Already have the files? `make run RAW=/path/to/raw` uses them instead of downloading.
RAW ?=
run: $(STAMP)
	$(BIN)/snakemake --cores all $(if $(RAW),--config raw_dir=$(RAW),--config download=True)

# The same DAG on the shipped MovieTweetings slice, in minutes.
smoke: $(STAMP)
	$(BIN)/snakemake --cores all --configfile config/smoke.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=5

clean-venv:
	rm -rf $(VENV)
