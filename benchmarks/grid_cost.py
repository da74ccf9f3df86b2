"""What a workflow config's whole grid costs on one machine, estimated from measured runs. Prints a table.

    python benchmarks/grid_cost.py --config config/config.yaml --costs results/aggregate/costs.csv \
        [more costs.csv ...] [--speed benchmarks/speed-cpu.csv] [--speed-first]

``--config``: one or more workflow config files, later over earlier (as ``snakemake --configfile``).
``--costs``: ``costs.csv`` tables of finished runs (``tp aggregate``), measured on the machine to estimate.
``--speed``: per-epoch times from ``benchmarks/speed.py --csv`` (e.g. ``benchmarks/speed-cpu.csv``; the newest
one-thread row of each cell) for cells without a finished run.
``--speed-first``: the ``--speed`` times wherever they cover a cell, and the runs only for their stopping epochs (and
for cells the benchmark lacks): the estimate for another machine, e.g. a GPU benchmark
(``benchmarks/gpu_check.sh``) with the CPU runs' epochs; "core-h" then means hours of that device, one job at a time.
The rule behind each number is :func:`tplib.grid.estimate_cost`; every row says where its seconds per epoch
and its epoch count come from. One torch thread per job: core-hours = job-hours.
"""

from __future__ import annotations

import argparse
from functools import reduce

import pandas as pd
import yaml

from tplib.config import deep_merge
from tplib.grid import estimate_cost
from tplib.io import markdown_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", nargs="+", required=True)
    ap.add_argument("--costs", nargs="+", required=True)
    ap.add_argument("--speed")
    ap.add_argument("--speed-first", action="store_true")
    args = ap.parse_args()
    config = reduce(deep_merge, (yaml.safe_load(open(p)) for p in args.config), {})  # as --configfile merges
    costs = pd.concat([pd.read_csv(p) for p in args.costs], ignore_index=True)
    speed = None
    if args.speed:  # the newest one-thread measurement of each cell (the CSV keeps the history)
        speed = pd.read_csv(args.speed)
        if "threads" in speed:
            speed = speed[speed["threads"] == 1]
        if "date" in speed:
            speed = speed.sort_values("date", kind="stable").drop_duplicates(["dataset", "backbone", "method", "P"], keep="last")
    est = estimate_cost(config, costs, speed, speed_first=args.speed_first)
    head = ["study", "dataset", "backbone", "variant", "runs", "s/epoch", "from", "epochs", "from", "h/run", "core-h"]
    print(markdown_table(head, ([r.study, r.dataset, r.backbone, r.variant, r.runs, f"{r.s_per_epoch:.1f}", r.s_source,
                                 r.epochs, r.epochs_source, f"{r.hours_per_run:.2f}", f"{r.core_hours:.1f}"]
                                for r in est.itertuples())))
    by_ds = est.groupby("dataset", sort=False)["core_hours"].sum()
    print()
    print("core-hours per dataset: " + ", ".join(f"{d} {h:.0f}" for d, h in by_ds.items())
          + f"; total {est['core_hours'].sum():.0f} over {est['runs'].sum()} runs"
          + ("" if est["core_hours"].notna().all() else " (cells without any time: NaN, not counted)"))


if __name__ == "__main__":
    main()
