# Two commands on a fresh machine with Python 3.11+:
#   make run    set up .venv on first use, then run the main job
#   make test   set up .venv on first use, then run the test suite
# And: make report (the aggregate and report/report.html from the committed runs, no training; RAW=... as below).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run report smoke test setup clean-venv

$(STAMP): pyproject.toml requirements-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-ci.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: every study of config/config.yaml, downloading the raw data with checksums. Finished runs (the
# committed ones too) are not run again. Already have the files? `make run RAW=/path/to/raw` uses them instead.
RAW ?=
DATA = $(if $(RAW),raw_dir=$(RAW),download=True)
run: $(STAMP)
	$(BIN)/snakemake --cores all --config $(DATA)

# results/aggregate/ and report/report.html rebuilt from the finished runs under results/runs/ (no training; the
# datasets are prepared for Table 2). On a clean clone this changes no committed file.
report: $(STAMP)
	$(BIN)/snakemake --cores 2 --forcerun aggregate --config train=False $(DATA)

# The same DAG on the shipped MovieTweetings slice, in minutes.
smoke: $(STAMP)
	$(BIN)/snakemake --cores all --configfile config/smoke.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=5

clean-venv:
	rm -rf $(VENV)
