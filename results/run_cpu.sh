#!/usr/bin/env bash
# The committed real run (config/cpu-run.yaml), in the order the sessions' CPU time allowed: Music (everything),
# then Game's baselines for seed 0, then Game SASRec TP seed 0. The rest of the config (Game seeds 1-2 and Game's TP runs) did not fit;
# `snakemake --cores 2 --configfile config/cpu-run.yaml` completes it, redoing nothing that finished.
set -euo pipefail
snakemake --cores 2 --configfile config/cpu-run.yaml --config 'datasets=["music"]'
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game-seed0.yaml
snakemake --cores 2 --configfile config/cpu-run.yaml config/cpu-run-game-sasrec-tp.yaml
# Session 2: Game SASRec baselines seeds 1-2, then TP trained to early stopping (results/schedule/README.md)
snakemake --cores 1 --configfile config/cpu-run.yaml config/cpu-run-game-sasrec-baselines.yaml --until evaluate
for b in sasrec caser gru4rec; do for s in 0 1 2; do echo "music $b $s"; done; done > /tmp/schedule.txt
for s in 0 1 2; do echo "music sasrec $s 1 0"; done >> /tmp/schedule.txt   # the k = 1, lambda = 0 control
echo "game sasrec 0" >> /tmp/schedule.txt
bash results/schedule/queue.sh 2 < /tmp/schedule.txt   # returns once the last run has started
while pgrep -f results/schedule/run.sh > /dev/null; do sleep 30; done
bash results/schedule/aggregate.sh
bash results/aggregate_finished.sh
