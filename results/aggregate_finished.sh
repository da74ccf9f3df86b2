#!/usr/bin/env bash
# Aggregate every FINISHED run of config/cpu-run.yaml (those with metrics.json) and render the report.
# Used because the session's CPU time ended before the whole run did; unfinished cells read "not run".
# The runs join those already in the committed results/aggregate (--merge): a session's machine keeps no run
# folders from the sessions before it, so the committed tables are the record of those runs. A run found here
# replaces its namesake there.
set -euo pipefail
list=$(mktemp)
for m in $(find results/runs -name metrics.json | sort); do
  run=$(dirname "$m")
  [ "$m" -nt "$run/train_summary.json" ] || continue  # evaluated after its (latest) training only
  bench="results/benchmarks/train/${run#results/runs/}.tsv"
  if [ -f "$bench" ]; then printf '%s\t%s\n' "$run" "$bench"; else printf '%s\n' "$run"; fi
done > "$list"
stats=$(ls results/data/{music,game,ml1m,movietweetings}/stats.json 2>/dev/null || true)
tp aggregate --runs-list "$list" --stats $stats --merge results/aggregate --out results/aggregate
cp config/cpu-run.yaml results/aggregate/config.yaml
rm -rf results/aggregate/overlays && mkdir -p results/aggregate/overlays  # the overlays results/run_cpu.sh ran
cp $(grep -o 'config/cpu-run-[a-z0-9-]*\.yaml' results/run_cpu.sh | sort -u) results/aggregate/overlays/
variant=()
if [ -f results/schedule/aggregate/summary.csv ]; then  # TP trained to early stopping (results/schedule/run.sh)
  variant=(--variant "trained to early stopping=results/schedule/aggregate")  # rule: results/schedule/README.md
fi
if [ -f results/stopping/aggregate/summary.csv ]; then  # both methods, at least 60 epochs (results/stopping/run.sh)
  variant+=(--variant "at least 60 epochs=results/stopping/aggregate")  # rule: results/stopping/README.md
fi
if [ -f results/patience/aggregate/summary.csv ]; then  # both methods, patience 100 epochs (results/patience/run.sh)
  variant+=(--variant "patience 100 epochs=results/patience/aggregate")  # rule: results/patience/README.md
fi
for a in results/stopping/aggregate-P*/summary.csv; do  # the same rule, TP with P vectorised chains (run.sh ... P)
  [ -f "$a" ] || continue
  a=$(dirname "$a")
  variant+=(--variant "batched TP (P ${a##*-P}), at least 60 epochs=$a")
done
tp report --aggregate results/aggregate --out report/report.html --figures results/figures \
  --config config/cpu-run.yaml --tp-k 2 --tp-lam 0.1 "${variant[@]}"
rm -f "$list"
