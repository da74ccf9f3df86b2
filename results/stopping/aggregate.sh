#!/usr/bin/env bash
# Aggregate the finished runs of results/stopping/ (both methods, so the paired tests compare like with like).
# With an argument P: the TP runs of results/stopping/runs-P{P}/ against the baselines of results/stopping/runs/
# of the same datasets and backbones, into results/stopping/aggregate-P{P}/.
# The runs join those already in the committed aggregate (results/merge_runs.sh: tp aggregate --merge).
set -euo pipefail
if [ $# -ge 1 ]; then
  [ -d "results/stopping/runs-P$1" ] || { echo "aggregate.sh: no folder results/stopping/runs-P$1 (usage: aggregate.sh [P], e.g. 64)" >&2; exit 2; }
  # (the same baselines may be absent here: the committed aggregate keeps theirs)
  baselines=$(cd "results/stopping/runs-P$1" && for db in */*; do
    if [ -d "../runs/$db/baseline" ]; then echo "results/stopping/runs/$db/baseline"; fi; done)
  bash results/merge_runs.sh "results/stopping/aggregate-P$1" "results/stopping/runs-P$1" $baselines
else
  bash results/merge_runs.sh results/stopping/aggregate results/stopping/runs
fi
