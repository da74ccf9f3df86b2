"""The prediction loss L of the paper's Eq. 2: binary cross-entropy with one sampled negative per positive.

Shared by the baseline and the TP trainer. Besides the loss it returns the sequence embeddings φ of every
subsequence in the batch (with their mask), which the TP discriminator reads: for all-positions backbones the
embedding at position t is φ of the subsequence ending at t; for Caser each window is one subsequence.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from tplib.data.sampler import Batch
from tplib.models.base import SeqRecModel


class LossOut(NamedTuple):
    loss: torch.Tensor  # scalar: mean BCE over real targets
    phi: torch.Tensor  # (B, M', D) sequence embeddings of the batch's subsequences (M' = L, or 1 for Caser)
    mask: torch.Tensor  # (B, M') bool: which of them are real (have a target)


def bce_loss(model: SeqRecModel, batch: Batch) -> LossOut:
    """Mean over real targets of -log σ(s_pos) - log(1 - σ(s_neg))."""
    if model.all_positions:
        h = model.encode_all(batch.seqs, batch.users)  # (B, L, D)
        mask = batch.pos != 0  # (B, L)
        phi_mask = mask
    else:
        h = model.encode(batch.seqs, batch.users)[:, None, :]  # (B, 1, D), broadcast over the T targets
        mask = batch.pos != 0  # (B, T)
        phi_mask = mask.any(1, keepdim=True)  # (B, 1)
    pos_logits = model.score(h, batch.pos)  # (B, M)
    neg_logits = model.score(h, batch.neg)  # (B, M)
    per = F.binary_cross_entropy_with_logits(
        pos_logits, torch.ones_like(pos_logits), reduction="none"
    ) + F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits), reduction="none")
    loss = (per * mask).sum() / mask.sum().clamp(min=1)
    return LossOut(loss, h, phi_mask)
