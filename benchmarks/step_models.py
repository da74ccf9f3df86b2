"""Time one training step (forward + backward, BCE on every position) of each backbone on CPU.

Not a test: ``python benchmarks/step_models.py [--threads 2] [--batch 128] [--len 200] [--reps 10]``.
ML-1M shapes by default (3,416 items, 4,832 existing users -> ~38 batches of 128 per epoch).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tplib.config import ModelConfig
from tplib.models import build_model


def step(model, seqs, users, pos, neg):
    if model.all_positions:
        h = model.encode_all(seqs, users)  # (B, L, D)
    else:
        h = model.encode(seqs, users).unsqueeze(1)  # (B, 1, D)
    lp, ln = model.score(h, pos), model.score(h, neg)
    m = (pos != 0).float()
    loss = (F.binary_cross_entropy_with_logits(lp, torch.ones_like(lp), reduction="none") * m).sum()
    loss = loss + (F.binary_cross_entropy_with_logits(ln, torch.zeros_like(ln), reduction="none") * m).sum()
    loss = loss / m.sum()
    loss.backward()
    return loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--len", type=int, default=200)
    ap.add_argument("--items", type=int, default=3416)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--flush-denormal", action="store_true")
    ap.add_argument("--backbones", default="sasrec,gru4rec,caser")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    for name in a.backbones.split(","):
        cfg = ModelConfig(d=50, max_len=a.len, dropout=0.2, n_blocks=2, n_heads=1)
        model = build_model(name, a.items, 100, cfg)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        B = a.batch if model.all_positions else 512
        L = model.input_len
        T = L if model.all_positions else cfg.caser_T
        seqs = torch.randint(1, a.items + 1, (B, L))
        seqs[: B // 4, : L // 2] = 0  # some left padding
        users = torch.randint(0, 100, (B,))
        pos = torch.randint(1, a.items + 1, (B, T))
        neg = torch.randint(1, a.items + 1, (B, T))
        for _ in range(2):  # warm-up
            opt.zero_grad(set_to_none=True)
            step(model, seqs, users, pos, neg)
            opt.step()
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            step(model, seqs, users, pos, neg)
            opt.step()
            times.append(time.perf_counter() - t0)
        times.sort()
        dt, dmin = times[len(times) // 2], times[0]
        with torch.no_grad():
            model.eval()
            t1 = time.perf_counter()
            for _ in range(a.reps):
                model.score_all(model.encode(seqs, users))
            de = (time.perf_counter() - t1) / a.reps
        print(
            f"{name:8s} batch ({B}, {L}) d=50 threads={a.threads}: "
            f"train step {dt * 1000:7.1f} ms (median; min {dmin * 1000:.1f}), "
            f"eval encode+score_all {de * 1000:7.1f} ms"
        )


if __name__ == "__main__":
    main()
