#!/usr/bin/env bash
# TP's inner learning rate alpha is not given by the paper. Chosen on VALIDATION NDCG@10 only (existing users'
# second-to-last items), SASRec on Music, seed 0, lambda 0.1, k 2, P 1; test items are never looked at here.
set -euo pipefail
for a in 0.01 0.1 1.0; do
  tp train --data results/data/music --backbone sasrec --method tp --seed 0 --out results/tuning/music-sasrec-tp-alpha$a \
    --set tp.alpha=$a --set train.max_epochs=30 --set train.eval_every=1 --set train.patience=5 --set train.threads=1 \
    --set train.progress=false
done
