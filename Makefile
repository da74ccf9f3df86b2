# Two commands on a fresh machine with Python 3.11+:
#   make run    set up .venv on first use, then run the main job
#   make test   set up .venv on first use, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup clean-venv

$(STAMP): pyproject.toml requirements-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-ci.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: prepare the shipped MovieTweetings slice, train the three backbones (baseline), evaluate.
run: $(STAMP)
	$(BIN)/python -m tplib.pipeline --out results/sample

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
