#!/usr/bin/env bash
# Aggregate the finished TP runs of results/schedule/ together with the main run's baselines of the same
# datasets (so the paired tests compare TP-to-early-stopping with the baseline over the shared seeds).
set -euo pipefail
list=$(mktemp)
datasets=$(ls results/schedule/runs 2>/dev/null || true)
for d in $datasets; do
  for m in $(find results/runs/$d -path '*/baseline/*' -name metrics.json | sort) \
           $(find results/schedule/runs/$d -name metrics.json | sort); do
    run=$(dirname "$m")
    [ "$m" -nt "$run/train_summary.json" ] || continue  # evaluated after its (latest) training only
    bench="results/benchmarks/train/${run#results/runs/}.tsv"
    if [ -f "$bench" ]; then printf '%s\t%s\n' "$run" "$bench"; else printf '%s\n' "$run"; fi
  done
done > "$list"
tp aggregate --runs-list "$list" --stats $(for d in $datasets; do echo results/data/$d/stats.json; done) \
  --out results/schedule/aggregate
rm -f "$list"
