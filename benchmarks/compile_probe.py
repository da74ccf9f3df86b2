"""Does ``torch.compile`` speed up TP's vectorised outer step? A probe, not part of the trainer.

    python benchmarks/compile_probe.py --data results/data/game --backbone sasrec --mode compile [--P 64] [--steps 20]

Runs ``--steps`` outer steps (after 8 warm-up steps, which absorb the first compilations) on random users, one torch
thread, and prints milliseconds per step. ``--mode compile`` wraps the ``torch.func.vmap`` of the inner gradient
(tplib/train/chains.py) in ``torch.compile(dynamic=False)``; a group's shapes (chains, rows, input width) change
from step to step, so expect recompilations. Compiling the inner gradient alone (inside vmap) runs eagerly.
"""

from __future__ import annotations

import argparse
import time
import types
from pathlib import Path

import numpy as np
import torch

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.train import chains
from tplib.train.loop import build_training


def compile_vmap() -> None:
    """chains.py calls torch.func.vmap(self._grad_vmap, ...) each step: hand it a cached, compiled vmap instead."""
    cache: dict[int, object] = {}

    def vmap(f, *a, **kw):
        if id(f) not in cache:
            cache[id(f)] = torch.compile(torch.func.vmap(f, *a, **kw), dynamic=False)
        return cache[id(f)]

    func = types.SimpleNamespace(vmap=vmap, grad=torch.func.grad, functional_call=torch.func.functional_call)
    chains.torch = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    chains.torch.func = func


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--backbone", required=True, choices=["gru4rec", "caser", "sasrec"])
    ap.add_argument("--mode", required=True, choices=["eager", "compile"])
    ap.add_argument("--P", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.mode == "compile":
        compile_vmap()
    ds = SeqDataset.load(Path(args.data))
    cfg = build_config(args.backbone, "tp", 0, ds.name, parse_sets([f"tp.P={args.P}"]))
    torch.manual_seed(0)
    model, sampler, up = build_training(cfg, ds, make_split(ds, 0), torch.device("cpu"))
    users = np.random.default_rng(0).integers(0, len(sampler.users), size=(args.steps + 8, args.P, cfg.tp.k))
    model.train()
    t = time.perf_counter()
    for s in range(8):
        up.outer_step(sampler, users[s])
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for s in range(8, args.steps + 8):
        up.outer_step(sampler, users[s])
    ms = (time.perf_counter() - t) / args.steps * 1000
    print(f"{ds.name} {args.backbone} P={args.P} {args.mode}: {ms:.1f} ms per outer step ({warm:.1f} s warm-up)")


if __name__ == "__main__":
    main()
