#!/usr/bin/env bash
# The committed real run (config/cpu-run.yaml), in the order the session's CPU time allowed: Music (everything),
# then Game's baselines for seed 0, then Game SASRec TP seed 0. The rest of the config (Game seeds 1-2 and Game's TP runs) did not fit;
# `snakemake --cores 2 --configfile config/cpu-run.yaml` completes it, redoing nothing that finished.
set -euo pipefail
snakemake --cores 2 --configfile config/cpu-run.yaml --config 'datasets=["music"]'
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game-seed0.yaml
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game-sasrec-tp.yaml
