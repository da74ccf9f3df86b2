"""Paired A/B timing of a code change to the TP outer step, in one process.

    mkdir -p /tmp/old && git archive HEAD tplib | tar -x -C /tmp/old   # the version to compare against
    python benchmarks/ab_swap.py --old /tmp/old --data results/data/game --backbone gru4rec --P 256 \\
        --swap tplib.models.gru4rec:_GRUScan,_scan

Loads each ``--swap`` module's file from ``--old`` as a separate module and, round by round (ABBA order), sets the
named attributes of the live module to the old (A) or the current (B) objects, then times ``--steps`` outer steps on
the same users with one torch thread. Both variants share the process, the model and the machine's state at the
time, so the paired ratio B/A is far steadier than two separate runs on a machine whose speed drifts by ±10%.
What can be swapped: module-level functions or classes that the outer step looks up at call time,
and methods (``Class.method``: the model is built once, so swap a model's methods, not its class). An A/A run (the
same code on both sides) gave paired ratios within about ±4% on the 2-core CPU machine: read smaller differences
as noise.
Prints medians and minima per variant and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.runtime import gc_frozen
from tplib.train.loop import build_training


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="a folder holding the old tplib/ (e.g. from git archive)")
    ap.add_argument("--data", required=True, help="a prepared dataset folder")
    ap.add_argument("--backbone", required=True, choices=["gru4rec", "caser", "sasrec"])
    ap.add_argument("--P", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6, help="outer steps per round")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--swap", nargs="+", required=True, metavar="MODULE:NAME[,NAME]",
                    help="NAME: a module-level name or Class.method")
    args = ap.parse_args(argv)

    swaps = []
    for spec in args.swap:
        name, attrs = spec.split(":")
        live = importlib.import_module(name)
        path = Path(args.old) / (name.replace(".", "/") + ".py")
        if not path.is_file():
            raise SystemExit(f"{path}: no such file (--old must hold the old tplib/)")
        sp = importlib.util.spec_from_file_location("old_" + name.replace(".", "_"), path)
        old = importlib.util.module_from_spec(sp)
        sp.loader.exec_module(old)
        for a in attrs.split(","):  # a module-level name, or Class.method
            *owner, attr = a.split(".")
            live_owner, old_owner = live, old
            for o in owner:
                live_owner, old_owner = getattr(live_owner, o), getattr(old_owner, o)
            # a name that only one side has is removed on the other
            swaps.append((live_owner, attr, old_owner.__dict__.get(attr), live_owner.__dict__.get(attr)))

    def use(variant: str) -> None:
        for owner, attr, a, b in swaps:
            value = a if variant == "A" else b
            if value is not None:
                setattr(owner, attr, value)
            elif attr in owner.__dict__:
                delattr(owner, attr)

    torch.set_num_threads(1)
    ds = SeqDataset.load(Path(args.data))
    split = make_split(ds, 0)
    cfg = build_config(args.backbone, "tp", 0, ds.name, parse_sets([f"tp.P={args.P}"]))
    torch.manual_seed(0)
    model, sampler, up = build_training(cfg, ds, split, torch.device("cpu"))
    per = args.P * cfg.tp.k
    n = len(sampler.users)
    order = np.random.default_rng(0).permutation(np.tile(np.arange(n), -(-(args.steps + 1) * per // n)))
    users = order[: (args.steps + 1) * per].reshape(args.steps + 1, args.P, cfg.tp.k)
    model.train()
    for v in "AB":  # warm-up (ends on B: the live module as it was)
        use(v)
        up.outer_step(sampler, users[0])
    times: dict[str, list[float]] = {"A": [], "B": []}
    try:
        with gc_frozen():
            for r in range(args.rounds):
                for v in "AB" if r % 2 == 0 else "BA":
                    use(v)
                    t = time.perf_counter()
                    for s in range(1, args.steps + 1):
                        up.outer_step(sampler, users[s])
                    times[v].append((time.perf_counter() - t) / args.steps)
    finally:
        use("B")  # the live module as it was
    a, b = np.array(times["A"]) * 1000, np.array(times["B"]) * 1000
    print(f"{ds.name} {args.backbone} P={args.P}, ms per outer step over {args.rounds} rounds: "
          f"A (old) median {np.median(a):.1f} min {a.min():.1f}; B (new) median {np.median(b):.1f} min {b.min():.1f}; "
          f"B/A median of paired ratios {np.median(b / a):.3f}")


if __name__ == "__main__":
    main()
