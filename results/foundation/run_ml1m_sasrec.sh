#!/usr/bin/env bash
# Issue 2 §8: SASRec baseline on ML-1M, seed 0, full ranking with seen items masked (the exact commands).
set -euo pipefail
tp prepare --dataset ml1m --raw ../shared/data --out results/data/ml1m
tp train --data results/data/ml1m --backbone sasrec --method baseline --seed 0 \
  --out results/foundation/ml1m-sasrec-baseline-seed0 --set train.threads=1
tp evaluate --data results/data/ml1m --run results/foundation/ml1m-sasrec-baseline-seed0 \
  --out results/foundation/ml1m-sasrec-baseline-seed0/metrics.json
# Session 3: the run aggregated on its own, so its cost is on record for benchmarks/grid_cost.py
tp aggregate --runs results/foundation/ml1m-sasrec-baseline-seed0 --stats results/data/ml1m/stats.json --out results/foundation/aggregate
