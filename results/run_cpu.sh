#!/usr/bin/env bash
# The committed real run (config/cpu-run.yaml): Music first, then Game.
set -euo pipefail
snakemake --cores 2 --configfile config/cpu-run.yaml --config 'datasets=["music"]'
snakemake --cores 2 --configfile config/cpu-run.yaml
