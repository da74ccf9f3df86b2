"""The one interface every backbone implements: f(S) = h(φ(S)) (paper §3.1).

- ``encode(seqs, users) -> (B, D)``: φ, the sequence embedding of each row's whole input (the state after its
  last item). The TP discriminator reads it; evaluation scores from it.
- ``encode_all(seqs, users) -> (B, L, D)``: φ at every position (``all_positions`` backbones only), so one forward
  pass trains on every next-item target of a sequence at once.
- ``score(h, items) -> logits``: h, a dot product of a sequence embedding with item (output) embeddings.
  ``h`` is (B, M, D) or (B, 1, D) and ``items`` (B, M) -> (B, M); broadcasting over M.
- ``score_all(h) -> (B, n_items + 1)``: scores of every item for (B, D) embeddings (column 0 is padding).

Inputs: ``seqs`` (B, L) int64, left-padded with 0 (the latest item is in the last column); ``users`` (B,) int64
user indices (only Caser uses them; -1 marks a user the model never trained on).
"""

from __future__ import annotations

import torch
from torch import nn


class SeqRecModel(nn.Module):
    #: True when ``encode_all`` exists and training predicts every position of a sequence at once.
    all_positions: bool = True
    #: Number of input items the model reads (the left-padded width of ``seqs``).
    input_len: int

    def encode(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:  # (B, D)
        raise NotImplementedError

    def encode_all(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:  # (B, L, D)
        raise NotImplementedError(f"{type(self).__name__} has no all-positions path")

    def score(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # (B, M)
        raise NotImplementedError

    def score_all(self, h: torch.Tensor) -> torch.Tensor:  # (B, n_items + 1)
        raise NotImplementedError

    @property
    def embed_dim(self) -> int:
        """D, the width of φ (what the discriminator reads)."""
        raise NotImplementedError
