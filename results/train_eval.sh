#!/usr/bin/env bash
# Usage: bash results/train_eval.sh OUT DATASET BACKBONE METHOD SEED [--set KEY=VALUE ...]
# One run of a study (results/stopping, results/schedule, results/patience: their run.sh give their rules as --set
# arguments): train into OUT unless it finished (train_summary.json is written last, atomically; an interrupted run
# resumes from OUT/resume.pt), then evaluate unless metrics.json is newer than the training. One torch thread.
set -euo pipefail
out=$1 d=$2 b=$3 m=$4 s=$5
shift 5
mkdir -p "$out"
if [ ! -f "$out/train_summary.json" ]; then
  OMP_NUM_THREADS=1 tp train --data "results/data/$d" --backbone "$b" --method "$m" --seed "$s" --out "$out" \
    --set train.threads=1 --set train.progress=false "$@"
fi
if [ ! -f "$out/metrics.json" ] || [ "$out/train_summary.json" -nt "$out/metrics.json" ]; then
  OMP_NUM_THREADS=1 tp evaluate --data "results/data/$d" --run "$out" --out "$out/metrics.json"
fi
