#!/usr/bin/env bash
# TP trained to early stopping under the SAME stopping rule as the baseline (issue 3's open caveat).
# The main CPU run (config/cpu-run.yaml) capped TP at 20 epochs to save CPU time; TP's validation NDCG@10 was
# still rising there (best epoch 17-20 of 20). Here TP runs at most 200 epochs, like the baseline, and stops after
# 20 epochs without a better validation NDCG@10 (the baseline: 10 validations 2 epochs apart).
# Everything else is the main run's TP setting (alpha 0.1, beta 1e-3, P 1, one thread); k and lambda default to
# the main run's 2 and 0.1 (k 1, lambda 0 is the control: Adam on single-user mini-batches, no alignment, no
# adversary).
# Usage: bash results/schedule/run.sh DATASET BACKBONE SEED [K LAMBDA]   (after the workflow prepared results/data/DATASET)
set -euo pipefail
d=$1 b=$2 s=$3 k=${4:-2} lam=${5:-0.1}
out=results/schedule/runs/$d/$b/tp/k${k}_lam${lam}/seed$s
mkdir -p results/schedule/logs
bash results/train_eval.sh "$out" "$d" "$b" tp "$s" \
  --set train.max_epochs=200 --set train.eval_every=1 --set train.patience=20 --set tp.k=$k --set tp.lam=$lam
