"""Where a vectorised TP outer step spends its time: milliseconds per outer step and the top functions.

    python benchmarks/profile_tp.py --data results/data/game --backbone caser [--P 64] [--steps 20] [--top 18] [--sort cpu_time_total]
        [--set model.d=4 ...]

Times ``--steps`` outer steps (after one warm-up) on random users, one torch thread, then the same steps again
under ``torch.profiler``, and prints the per-step time (unprofiled), the epoch it implies (n_users / (P·k) outer steps, without validation) and the
operators with the most self time. For finding what to speed up; ``benchmarks/speed.py`` is the table to quote.
``--set`` overrides settings as ``tp train --set`` does: with every tensor shrunk (``model.d=4 model.max_len=5``)
the step's arithmetic all but vanishes and what remains is its per-operator overhead (Python, dispatch, autograd),
which a GPU does not remove either.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import profile

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.train.loop import build_training


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a prepared dataset folder (tp prepare --out)")
    ap.add_argument("--backbone", required=True, choices=["gru4rec", "caser", "sasrec"])
    ap.add_argument("--P", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--top", type=int, default=18)
    ap.add_argument("--sort", default="self_cpu_time_total", help="a torch.profiler column (cpu_time_total: nested)")
    ap.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="config overrides")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = SeqDataset.load(Path(args.data))
    split = make_split(ds, 0)
    cfg = build_config(args.backbone, "tp", 0, ds.name, parse_sets([f"tp.P={args.P}", *args.set]))
    torch.manual_seed(0)
    model, sampler, up = build_training(cfg, ds, split, torch.device("cpu"))
    users = np.random.default_rng(0).integers(0, len(sampler.users), size=(args.steps + 1, args.P, cfg.tp.k))
    model.train()
    up.outer_step(sampler, users[0])  # warm-up
    t = time.perf_counter()
    for s in range(1, args.steps + 1):
        up.outer_step(sampler, users[s])
    dt = (time.perf_counter() - t) / args.steps
    with profile() as prof:
        for s in range(1, args.steps + 1):
            up.outer_step(sampler, users[s])
    n_steps = math.ceil(len(sampler.users) / (args.P * cfg.tp.k))
    calls = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::")) / args.steps
    print(f"{ds.name} {args.backbone} P={args.P} k={cfg.tp.k} {' '.join(args.set)}: {dt * 1000:.1f} ms per outer "
          f"step, epoch ~{dt * n_steps:.1f} s ({n_steps} outer steps, no validation); {calls:.0f} ATen "
          "operator calls per outer step (nested calls included)")
    print(prof.key_averages().table(sort_by=args.sort, row_limit=args.top))


if __name__ == "__main__":
    main()
