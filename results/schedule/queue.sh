#!/usr/bin/env bash
# Runs results/schedule/run.sh for each "DATASET BACKBONE SEED [K LAMBDA]" line on stdin, at most $1 at a time
# (default 2; one torch thread each).
set -euo pipefail
n=${1:-2}
while read -r d b s k lam; do
  [ -z "$d" ] && continue
  while [ "$(pgrep -fc 'results/schedule/run.sh')" -ge "$n" ]; do sleep 15; done
  setsid nohup bash results/schedule/run.sh "$d" "$b" "$s" ${k:-2} ${lam:-0.1} \
    > "results/schedule/logs/$d-$b-$s-k${k:-2}-lam${lam:-0.1}.log" 2>&1 &
  sleep 5
done
