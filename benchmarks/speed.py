"""Training and evaluation speed of every backbone and method on real prepared data. Prints a table.

    python benchmarks/speed.py --data results/data/ml1m results/data/game [--threads 2] [--fraction 0.25] [--tp-P 16 64]
        [--repeat 3] [--device cuda]

For each dataset × backbone: baseline seconds per epoch, TP seconds per epoch (P = 1, the paper's algorithm,
and the vectorised settings ``--tp-P``; P = 64 with k = 2 puts 128 users in an outer step, a baseline
mini-batch's worth), their ratio to the baseline, and full-ranking evaluation throughput
(existing users' test items, users per second, seen items masked). An epoch is timed on ``--fraction`` of its
mini-batches (or outer steps) after one warm-up batch and scaled to a full epoch; the table says so.
Run it on an otherwise idle machine: it measures wall time. ``--repeat N`` times every training setting of a cell
N times, in rounds (baseline, then each TP setting, then again), and prints medians and the range of the rounds'
ratios: on a shared virtual machine the speed drifts by tens of percent within minutes. On a GPU (``--device cuda``, as
``benchmarks/gpu_check.sh`` runs it) every timed stretch ends with ``torch.cuda.synchronize()``, so queued kernels
are counted.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.evaluate import rank_users
from tplib.runtime import gc_frozen, resolve_device
from tplib.train.loop import build_for, build_training


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_baseline(cfg, ds, split, fraction: float, device: torch.device) -> float:
    torch.manual_seed(0)
    model, sampler, up = build_training(cfg, ds, split, device)
    n_batches = math.ceil(sampler.n_units / cfg.train.batch_size)
    todo = max(2, int(round(fraction * n_batches)))
    batches = sampler.epoch(cfg.train.batch_size)
    model.train()
    from tplib.train.loss import bce_loss

    def one(batch):
        loss = bce_loss(model, batch).loss
        up.opt.zero_grad(set_to_none=True)
        loss.backward()
        up.opt.step()

    one(next(batches))  # warm-up
    sync(device)
    with gc_frozen():  # as in training (tplib.train.loop)
        t = time.perf_counter()
        for _ in range(todo - 1):
            one(next(batches))
        sync(device)
        return (time.perf_counter() - t) / (todo - 1) * n_batches


def time_tp(cfg, ds, split, fraction: float, device: torch.device) -> float:
    torch.manual_seed(0)
    model, sampler, up = build_training(cfg, ds, split, device)
    per_step = cfg.tp.k * cfg.tp.P
    n_steps = math.ceil(len(sampler.users) / per_step)
    todo = max(2, int(round(fraction * n_steps)))
    rng = np.random.default_rng(0)
    users = rng.integers(0, len(sampler.users), size=(todo, cfg.tp.P, cfg.tp.k))
    model.train()
    up.outer_step(sampler, users[0])  # warm-up
    sync(device)
    with gc_frozen():  # as in training (tplib.train.loop)
        t = time.perf_counter()
        for s in range(1, todo):
            up.outer_step(sampler, users[s])
        sync(device)
        return (time.perf_counter() - t) / (todo - 1) * n_steps


def time_eval(cfg, ds, split, device: torch.device) -> float:
    torch.manual_seed(0)
    model = build_for(cfg, ds, device)
    users = split.existing
    rank_users(model, ds, users[:64], 1, trained=True)  # warm-up
    sync(device)
    t = time.perf_counter()
    rank_users(model, ds, users, 1, trained=True, batch_users=cfg.train.eval_batch_users)
    sync(device)
    return len(users) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="prepared dataset folders (tp prepare --out)")
    ap.add_argument("--backbones", nargs="+", default=["gru4rec", "caser", "sasrec"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fraction", type=float, default=0.25, help="share of an epoch timed")
    ap.add_argument("--tp-P", type=int, nargs="+", default=[16, 64],
                    help="parallel chains of the vectorised TP settings (P = 1 is always timed)")
    ap.add_argument("--no-tp", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each training setting this many times, in rounds, and print medians (a shared or "
                         "throttled machine's speed drifts by tens of percent within minutes)")
    ap.add_argument("--csv", help="also append the numbers to this CSV, with the date, machine and commit (e.g. "
                                  "benchmarks/speed-cpu.csv, the history; input of benchmarks/grid_cost.py)")
    ap.add_argument("--machine", default="", help="the machine's name in the CSV (default: the processor's)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (as train.device)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# {where} ({device}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads,"
          f" epoch timed on {args.fraction:.0%} of its steps and scaled"
          + (f"; medians of {args.repeat} rounds, ratio ranges over the rounds" if args.repeat > 1 else ""))
    head = ["dataset", "backbone", "base s/ep", "TP P=1 s/ep", "ratio"]
    for P in args.tp_P:
        head += [f"TP P={P} s/ep", "ratio"]
    head += ["eval users/s", "eval all users s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    records = []
    for folder in args.data:
        ds = SeqDataset.load(Path(folder))
        split = make_split(ds, 0)
        for bb in args.backbones:
            cfg = build_config(bb, "baseline", 0, ds.name)
            settings = [] if args.no_tp else [1, *args.tp_P]
            times: dict = {"base": [], **{P: [] for P in settings}}
            for _ in range(args.repeat):  # the cell's settings one after another, `repeat` rounds
                times["base"].append(time_baseline(cfg, ds, split, args.fraction, device))
                for P in settings:
                    tcfg = build_config(bb, "tp", 0, ds.name, parse_sets([f"tp.P={P}"]))
                    times[P].append(time_tp(tcfg, ds, split, args.fraction if P > 1 else args.fraction / 4, device))
            base = float(np.median(times["base"]))
            ups = time_eval(cfg, ds, split, device)
            common = {"dataset": ds.name, "backbone": bb, "eval_all_users_s": ds.n_users / ups,
                      "threads": torch.get_num_threads(), "device": str(device), "repeats": args.repeat}
            records.append({**common, "method": "baseline", "P": 1, "train_s_per_epoch": base,
                            "train_s_min": min(times["base"]), "train_s_max": max(times["base"])})
            cells = [ds.name, bb, f"{base:.1f}"]
            if args.no_tp:
                cells += ["-", "-"] * (1 + len(args.tp_P))
            for P in settings:
                t = float(np.median(times[P]))
                # the ratio of medians; with repeats, also the range of the rounds' own ratios (same round's baseline)
                ratios = [a / b for a, b in zip(times[P], times["base"])]
                spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if args.repeat > 1 else ""
                cells += [f"{t:.1f}", f"{t / base:.2f}x{spread}"]
                records.append({**common, "method": "tp", "P": P, "train_s_per_epoch": t,
                                "train_s_min": min(times[P]), "train_s_max": max(times[P])})
            cells += [f"{ups:,.0f}", f"{ds.n_users / ups:.2f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
    if args.csv:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        stamp = {"date": datetime.date.today().isoformat(), "machine": args.machine or where, "commit": commit or "unknown"}
        new = pd.DataFrame([{**stamp, **r} for r in records])
        path = Path(args.csv)
        old = pd.read_csv(path) if path.is_file() else None
        pd.concat([old, new], ignore_index=True, sort=False).to_csv(path, index=False)


if __name__ == "__main__":
    main()
