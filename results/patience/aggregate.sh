#!/usr/bin/env bash
# Aggregate the finished runs of results/patience/ (both methods under the same long patience, so summary.csv's
# paired tests compare like with like over the seeds both have).
# The runs join those already in the committed aggregate (results/merge_runs.sh: tp aggregate --merge).
set -euo pipefail
bash results/merge_runs.sh results/patience/aggregate results/patience/runs
