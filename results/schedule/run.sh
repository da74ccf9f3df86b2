#!/usr/bin/env bash
# TP trained to early stopping under the SAME stopping rule as the baseline (issue 3's open caveat).
# The main CPU run (config/cpu-run.yaml) capped TP at 20 epochs to save CPU time; TP's validation NDCG@10 was
# still rising there (best epoch 17-20 of 20). Here TP runs at most 200 epochs, like the baseline, and stops after
# 20 epochs without a better validation NDCG@10, like the baseline (eval every 2 epochs, patience 10 evaluations).
# Everything else is the main run's TP setting (k 2, lambda 0.1, alpha 0.1, beta 1e-3, P 1, one thread).
# Usage: bash results/schedule/run.sh DATASET BACKBONE SEED   (after the workflow prepared results/data/DATASET)
set -euo pipefail
d=$1 b=$2 s=$3
out=results/schedule/runs/$d/$b/tp/k2_lam0.1/seed$s
mkdir -p "$out" results/schedule/logs
if [ ! -f "$out/train_summary.json" ]; then  # written last by tp train (atomically)
  OMP_NUM_THREADS=1 tp train --data results/data/$d --backbone $b --method tp --seed $s --out "$out" \
    --set train.threads=1 --set train.progress=false \
    --set train.max_epochs=200 --set train.eval_every=1 --set train.patience=20
fi
if [ ! -f "$out/metrics.json" ] || [ "$out/train_summary.json" -nt "$out/metrics.json" ]; then
  OMP_NUM_THREADS=1 tp evaluate --data results/data/$d --run "$out" --out "$out/metrics.json"
fi
