#!/usr/bin/env bash
# Aggregate the finished runs of results/stopping/ (both methods, so the paired tests compare like with like).
set -euo pipefail
list=$(mktemp)
datasets=$(ls results/stopping/runs 2>/dev/null || true)
for m in $(find results/stopping/runs -name metrics.json | sort); do
  run=$(dirname "$m")
  [ "$m" -nt "$run/train_summary.json" ] && printf '%s\n' "$run"  # evaluated after its (latest) training only
done > "$list"
tp aggregate --runs-list "$list" --stats $(for d in $datasets; do echo results/data/$d/stats.json; done) \
  --out results/stopping/aggregate
rm -f "$list"
