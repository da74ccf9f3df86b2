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
  out="results/stopping/aggregate-P$1"
  if [ ! -f "$out/runs.csv" ] && [ -z "$baselines" ]; then
    # a first aggregate for this P on a machine without the baselines' run folders: start from the baselines'
    # rows of the committed results/stopping/aggregate (same datasets and backbones as the TP runs)
    mkdir -p "$out"
    python - "$out" "results/stopping/runs-P$1" <<'PY'
import sys
from pathlib import Path

import pandas as pd

out, runs = Path(sys.argv[1]), Path(sys.argv[2])
cells = {tuple(p.parts[-2:]) for p in runs.glob("*/*") if p.is_dir()}  # (dataset, backbone)
src = Path("results/stopping/aggregate")
for name in ("runs", "costs", "diagnostics"):
    df = pd.read_csv(src / f"{name}.csv", dtype={"dataset": str})
    keep = (df["method"] == "baseline") & pd.Series([(d, b) in cells for d, b in zip(df["dataset"], df["backbone"])], index=df.index)
    df[keep].to_csv(out / f"{name}.csv", index=False)
(out / "stats.csv").write_text((src / "stats.csv").read_text())
PY
  fi
  bash results/merge_runs.sh "$out" "results/stopping/runs-P$1" $baselines
else
  bash results/merge_runs.sh results/stopping/aggregate results/stopping/runs
fi
