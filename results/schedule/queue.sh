#!/usr/bin/env bash
# Runs results/schedule/run.sh for each "DATASET BACKBONE SEED" line on stdin, at most $1 at a time (default 2).
set -euo pipefail
n=${1:-2}
while read -r d b s; do
  [ -z "$d" ] && continue
  while [ "$(pgrep -fc 'results/schedule/run.sh')" -ge "$n" ]; do sleep 15; done
  setsid nohup bash results/schedule/run.sh "$d" "$b" "$s" > "results/schedule/logs/$d-$b-$s.log" 2>&1 &
  sleep 5
done
