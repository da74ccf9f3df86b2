"""What the fair test still costs on the machine its trials ran on, from those trials. Prints a table.

    python benchmarks/fair_cost.py [--config config/config.yaml] [--tuning fair] [--trials results/tuning/trials.csv]
        [--stats results/aggregate/stats.csv] [--costs results/aggregate/costs.csv]
        [--speed benchmarks/speed-cpu.csv] [--cores 2]

One row per search (trials left) and per cell and variant of the study that starts from it (ten-seed runs left),
with hours per trial or run and where they come from; then the totals, and the wall time on ``--cores`` one-thread
jobs. The rules are :func:`tplib.search_cost.estimate_fair_test`'s. ``results/tuning/trials.csv`` holds the
finished searches' trials and each unfinished search's trials as of its last copy (``make report``).
"""

from __future__ import annotations

import argparse
from functools import reduce

import pandas as pd
import yaml

from tplib.config import deep_merge
from tplib.io import markdown_table
from tplib.search_cost import estimate_fair_test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", nargs="+", default=["config/config.yaml"])
    ap.add_argument("--tuning", default="fair")
    ap.add_argument("--trials", default="results/tuning/trials.csv")
    ap.add_argument("--stats", default="results/aggregate/stats.csv")
    ap.add_argument("--costs", default="results/aggregate/costs.csv")
    ap.add_argument("--speed", default="benchmarks/speed-cpu.csv", help="'' for none")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    config = reduce(deep_merge, (yaml.safe_load(open(p)) for p in args.config), {})
    speed = pd.read_csv(args.speed) if args.speed else None
    est = estimate_fair_test(config, args.tuning, pd.read_csv(args.trials), pd.read_csv(args.stats),
                             pd.read_csv(args.costs), speed)
    head = ["kind", "name", "dataset", "backbone", "method/variant", "done", "h each", "from", "core-h left"]
    print(markdown_table(head, ([r.kind, r.name, r.dataset, r.backbone, r.variant, f"{r.done} of {r.budget}",
                                 f"{r.hours_each:.2f}", r.source, f"{r.core_hours_left:.1f}"]
                                for r in est.itertuples())))
    by_kind = est.groupby("kind", sort=False)["core_hours_left"].sum()
    total = float(est["core_hours_left"].sum())
    print()
    print("core-hours left: " + ", ".join(f"{k} {h:.0f}" for k, h in by_kind.items()) + f"; total {total:.0f}"
          + f" = {total / args.cores / 24:.1f} days on {args.cores} one-thread jobs"
          + ("" if est["hours_each"].notna().all() else " (rows without any trial to go by: NaN, not counted)"))


if __name__ == "__main__":
    main()
