"""Full-ranking evaluation by user group (docs/method.md).

Every user's target is ranked against ALL items (column 0, the padding item, is never a candidate). With
``mask_seen`` the items of the user's whole input history are removed from the candidates (the target never is).
Users are scored in batches on the model's device.

Targets:
- ``existing``/``valid``: input ``seq[:-2]``, target ``seq[-2]`` (model selection only);
- ``existing``/``test``: input ``seq[:-1]``, target ``seq[-1]``;
- ``new``/``test``: input ``seq[:-1]``, target ``seq[-1]`` (never trained on).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from tplib.data.dataset import SeqDataset, Split
from tplib.data.sampler import left_pad
from tplib.metrics import metrics_from_ranks, ranks_from_scores
from tplib.models.base import SeqRecModel


@torch.no_grad()
def rank_users(
    model: SeqRecModel,
    ds: SeqDataset,
    users: np.ndarray,
    holdout: int,
    *,
    trained: bool,
    mask_seen: bool = True,
    batch_users: int = 1024,
) -> np.ndarray:
    """Ranks (1 = best) of each user's held-out item ``seq[-holdout]`` given ``seq[:-holdout]``.

    ``trained`` says whether these users' indices are known to the model (Caser's user embedding); users the
    model never trained on are passed as -1.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    width = model.input_len
    out = np.empty(len(users), dtype=np.int64)
    try:
        for start in range(0, len(users), batch_users):
            chunk = users[start : start + batch_users]
            hist = [ds.seq(u)[:-holdout] for u in chunk]
            targets = torch.as_tensor([ds.seq(u)[-holdout] for u in chunk], device=device)
            seqs = torch.from_numpy(left_pad(hist, width)).to(device)
            ids = torch.as_tensor(chunk if trained else np.full(len(chunk), -1), dtype=torch.long, device=device)
            scores = model.score_all(model.encode(seqs, ids))  # (B, n_items + 1)
            exclude = torch.zeros_like(scores, dtype=torch.bool)
            exclude[:, 0] = True
            if mask_seen:
                rows = np.repeat(np.arange(len(chunk)), [len(h) for h in hist])
                cols = np.concatenate(hist) if hist else np.zeros(0, np.int64)
                exclude[torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)] = True
            out[start : start + len(chunk)] = ranks_from_scores(scores.float(), targets, exclude).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def validation_ranks(model: SeqRecModel, ds: SeqDataset, split: Split, mask_seen: bool, batch_users: int) -> np.ndarray:
    return rank_users(model, ds, split.existing, 2, trained=True, mask_seen=mask_seen, batch_users=batch_users)


def ranks_on_test(model: SeqRecModel, ds: SeqDataset, split: Split, mask_seen: bool, batch_users: int) -> pd.DataFrame:
    """One row per evaluated user: user index, raw id, group (existing/new), head flag, rank."""
    frames = []
    for group, trained in (("existing", True), ("new", False)):
        users = split.group(group)
        ranks = rank_users(model, ds, users, 1, trained=trained, mask_seen=mask_seen, batch_users=batch_users)
        frames.append(
            pd.DataFrame(
                {
                    "user": users,
                    "user_id": ds.user_ids[users].astype(str),
                    "group": group,
                    "head": split.head_mask(group),
                    "rank": ranks,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def metrics_by_group(ranks: pd.DataFrame, Ns: tuple[int, ...]) -> dict[str, Any]:
    """``{"existing": {"all": {...}, "head": {...}, "tail": {...}}, "new": {...}}`` from :func:`ranks_on_test`."""
    out: dict[str, Any] = {}
    for group in ("existing", "new"):
        g = ranks[ranks["group"] == group]
        out[group] = {
            "all": metrics_from_ranks(g["rank"].to_numpy(), Ns),
            "head": metrics_from_ranks(g.loc[g["head"], "rank"].to_numpy(), Ns),
            "tail": metrics_from_ranks(g.loc[~g["head"], "rank"].to_numpy(), Ns),
        }
    return out
