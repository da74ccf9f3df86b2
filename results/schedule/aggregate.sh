#!/usr/bin/env bash
# Aggregate the finished TP runs of results/schedule/ together with the main run's baselines of the same
# datasets (so the paired tests compare TP-to-early-stopping with the baseline over the shared seeds).
# The runs join those already in the committed aggregate (results/merge_runs.sh: tp aggregate --merge).
set -euo pipefail
# (a session's machine may hold no baseline folders: the committed aggregate keeps theirs)
baselines=$(for d in $(ls results/schedule/runs 2>/dev/null); do
  find "results/runs/$d" -type d -name baseline 2>/dev/null || true; done)
bash results/merge_runs.sh results/schedule/aggregate results/schedule/runs $baselines
