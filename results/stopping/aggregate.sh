#!/usr/bin/env bash
# Aggregate the finished runs of results/stopping/ (both methods, so the paired tests compare like with like).
# With an argument P: the TP runs of results/stopping/runs-P{P}/ against the baselines of results/stopping/runs/,
# into results/stopping/aggregate-P{P}/.
# The runs join those already in the committed aggregate (tp aggregate --merge, as results/aggregate_finished.sh):
# a session's machine keeps no run folders from the sessions before it; a run found here replaces its namesake.
set -euo pipefail
list=$(mktemp)
datasets=$(ls results/stopping/runs 2>/dev/null || true)
if [ $# -ge 1 ]; then
  [ -d "results/stopping/runs-P$1" ] || { echo "aggregate.sh: no folder results/stopping/runs-P$1 (usage: aggregate.sh [P], e.g. 64)" >&2; exit 2; }
  dirs="results/stopping/runs-P$1 $(find results/stopping/runs -type d -name baseline)" out=results/stopping/aggregate-P$1
else
  dirs=results/stopping/runs out=results/stopping/aggregate
fi
for m in $(find $dirs -name metrics.json | sort); do
  run=$(dirname "$m")
  [ "$m" -nt "$run/train_summary.json" ] && printf '%s\n' "$run"  # evaluated after its (latest) training only
done > "$list"
merge=()
[ -f "$out/runs.csv" ] && merge=(--merge "$out")
tp aggregate --runs-list "$list" --stats $(for d in $datasets; do echo results/data/$d/stats.json; done) \
  "${merge[@]}" --out $out
rm -f "$list"
