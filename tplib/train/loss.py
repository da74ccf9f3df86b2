"""The prediction loss L of the paper's Eq. 2: binary cross-entropy with one sampled negative per positive.

Shared by the baseline and the TP trainer. Returns φ as well (each row's sequence embedding after its last input
item), which the TP discriminator reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tplib.data.sampler import Batch
from tplib.models.base import SeqRecModel


def bce_loss(model: SeqRecModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over real targets of -log σ(s_pos) - log(1 - σ(s_neg)); and φ (B, D)."""
    if model.all_positions:
        h = model.encode_all(batch.seqs, batch.users)  # (B, L, D)
        phi = h[:, -1, :]  # (B, D)
    else:
        phi = model.encode(batch.seqs, batch.users)  # (B, D)
        h = phi[:, None, :]  # (B, 1, D), broadcast over the T targets
    pos_logits = model.score(h, batch.pos)  # (B, M)
    neg_logits = model.score(h, batch.neg)  # (B, M)
    mask = batch.pos != 0
    n = mask.sum().clamp(min=1)
    loss = (
        F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits), reduction="none")
        + F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits), reduction="none")
    )
    return (loss * mask).sum() / n, phi
