"""Ranking metrics from full-ranking ranks (docs/method.md).

A rank is 1 + the number of candidate items (other than the target) whose score is >= the target's score:
ties count against the target, so a model that scores everything equally ranks every target last.

- HR@N   = mean of [rank <= N]
- NDCG@N = mean of [rank <= N] / log2(rank + 1)   (one relevant item, so the ideal DCG is 1)
"""

from __future__ import annotations

import numpy as np
import torch


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Full-ranking ranks of ``targets`` among all columns of ``scores``.

    scores: (B, C) float; targets: (B,) int64 column indices; exclude: optional (B, C) bool, True for columns that
    are not candidates (padding, masked seen items). The target column is never excluded.
    Returns (B,) int64 ranks, 1 = best.
    """
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    beats = scores >= target_scores  # (B, C): ties count against the target
    if exclude is not None:
        beats &= ~exclude
    beats.scatter_(1, targets[:, None], False)  # the target itself is not a competitor
    return beats.sum(1) + 1


def hr_at(ranks: np.ndarray, n: int) -> float:
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= n)) if ranks.size else float("nan")


def ndcg_at(ranks: np.ndarray, n: int) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return float("nan")
    gains = np.where(ranks <= n, 1.0 / np.log2(ranks + 1.0), 0.0)
    return float(gains.mean())


def metrics_from_ranks(ranks: np.ndarray, Ns: tuple[int, ...] = (1, 5, 10, 15, 20)) -> dict[str, float]:
    """``{"HR@1": .., "NDCG@1": .., ..., "users": n}`` for one group of users."""
    out: dict[str, float] = {}
    for n in Ns:
        out[f"HR@{n}"] = hr_at(ranks, n)
        out[f"NDCG@{n}"] = ndcg_at(ranks, n)
    out["users"] = int(np.asarray(ranks).size)
    return out
