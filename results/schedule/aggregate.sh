#!/usr/bin/env bash
# Aggregate the finished TP runs of results/schedule/ together with the main run's baselines of the same
# datasets (so the paired tests compare TP-to-early-stopping with the baseline over the shared seeds).
# The runs join those already in the committed aggregate (tp aggregate --merge, as results/aggregate_finished.sh):
# a session's machine keeps no run folders from the sessions before it; a run found here replaces its namesake.
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
merge=()
[ -f results/schedule/aggregate/runs.csv ] && merge=(--merge results/schedule/aggregate)
tp aggregate --runs-list "$list" --stats $(for d in $datasets; do echo results/data/$d/stats.json; done) \
  "${merge[@]}" --out results/schedule/aggregate
rm -f "$list"
