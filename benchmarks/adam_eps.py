"""How much of TP's outer Adam step Adam's ε decides, per inner learning rate α: a table.

    python benchmarks/adam_eps.py --data results/data/music --backbone sasrec --alpha 0.0001 0.0139 [--steps 400]
        [--set tp.beta=0.0001 tp.lam=0.1 ...]

For each α, a fresh model (seed 0) takes ``--steps`` outer steps on random users (one torch thread), then reads the
outer Adam's state: for every entry with a second moment, ε's share of the step's denominator √v̂ + ε. The outer
gradient Θ − θ_k scales with α while ε (10⁻⁸) does not, so a tiny α also slows the coordinates whose share is
large: why study `tuned`'s control removes alignment with ``tp.align: false`` instead of α → 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.train.loop import build_training


def eps_shares(opt: torch.optim.Adam) -> torch.Tensor:
    """ε / (√v̂ + ε) for every state entry of ``opt`` whose second moment is not 0."""
    out = []
    for group in opt.param_groups:
        eps, beta2 = group["eps"], group["betas"][1]
        for p in group["params"]:
            st = opt.state[p]
            denom = (st["exp_avg_sq"] / (1 - beta2 ** float(st["step"]))).sqrt()
            denom = denom[denom > 0]
            out.append(eps / (denom + eps))
    return torch.cat(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a prepared dataset folder (tp prepare --out)")
    ap.add_argument("--backbone", required=True, choices=["gru4rec", "caser", "sasrec"])
    ap.add_argument("--alpha", type=float, nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="config overrides")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = SeqDataset.load(Path(args.data))
    split = make_split(ds, 0)
    print(f"{ds.name} {args.backbone}, {args.steps} outer steps {' '.join(args.set)}")
    print("| alpha | state entries | median eps share | mean | entries over 10% |")
    print("|---|---|---|---|---|")
    for alpha in args.alpha:
        cfg = build_config(args.backbone, "tp", 0, ds.name, parse_sets([*args.set, f"tp.alpha={alpha}"]))
        torch.manual_seed(0)
        model, sampler, up = build_training(cfg, ds, split, torch.device("cpu"))
        model.train()
        users = np.random.default_rng(0).integers(0, len(sampler.users), size=(args.steps, cfg.tp.P, cfg.tp.k))
        for s in range(args.steps):
            up.outer_step(sampler, users[s])
        share = eps_shares(up.opt)
        print(f"| {alpha:g} | {share.numel():,} | {share.median().item():.3g} | {share.mean().item():.3g} | "
              f"{(share > 0.1).double().mean().item():.1%} |")


if __name__ == "__main__":
    main()
