#!/usr/bin/env bash
# Usage: bash results/merge_runs.sh OUT DIR...
# Aggregate the finished runs under the DIRs (folders whose metrics.json was written after their latest
# train_summary.json) into OUT with `tp aggregate`, with each dataset's stats.json and, for runs of the workflow
# (results/runs/...), their Snakemake benchmark files. The runs join those already in OUT (--merge): a session's
# machine keeps no run folders from the sessions before it, so the committed tables are the record of those runs;
# a run found again replaces its namesake. With nothing new the tables keep their rows (one written by an older
# version of tp aggregate may come back with its columns in today's order).
set -euo pipefail
out=$1; shift
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for m in $(find "$@" -name metrics.json 2>/dev/null | sort); do
  run=$(dirname "$m")
  [ "$m" -nt "$run/train_summary.json" ] || continue  # evaluated after its (latest) training only
  bench="results/benchmarks/train/${run#results/runs/}.tsv"
  if [ "$run" != "${run#results/runs/}" ] && [ -f "$bench" ]; then printf '%s\t%s\n' "$run" "$bench"; else printf '%s\n' "$run"; fi
done > "$list"
# the dataset of results/[STUDY/]runs*/DATASET/...
datasets=$(cut -f1 "$list" | sed -E 's#^results/([^/]+/)?runs[^/]*/([^/]+)/.*#\2#' | sort -u)
args=(--runs-list "$list")
[ -n "$datasets" ] && args+=(--stats $(for d in $datasets; do echo "results/data/$d/stats.json"; done))
[ -f "$out/runs.csv" ] && args+=(--merge "$out")
tp aggregate "${args[@]}" --out "$out"
