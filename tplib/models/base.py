"""The one interface every backbone implements: f(S) = h(φ(S)) (paper §3.1).

- ``encode(seqs, users) -> (B, D)``: φ, the sequence embedding of each row's whole input (the state after its
  last item). The TP discriminator reads it; evaluation scores from it.
- ``encode_all(seqs, users) -> (B, L, D)``: φ at every position (``all_positions`` backbones only), so one forward
  pass trains on every next-item target of a sequence at once.
- ``score(h, items) -> logits``: h, a dot product of a sequence embedding with item (output) embeddings.
  ``h`` is (B, M, D) or (B, 1, D) and ``items`` (B, M) -> (B, M); broadcasting over M.
- ``score_all(h) -> (B, n_items + 1)``: scores of every item for (B, D) embeddings (column 0 is padding).

Inputs: ``seqs`` (B, L) int64, left-padded with 0 (the latest item is in the last column); ``users`` (B,) int64
user indices (only Caser uses them; -1 marks a user the model never trained on). Backbones that do not use
users accept ``users=None``.

Items are 1..n_items and 0 is padding; every backbone's item table has n_items + 1 rows with row 0 the padding.
Constructors share one signature, ``Model(n_items, n_users, cfg: ModelConfig)``; ``tplib.models.build_model``
builds one by name.
"""

from __future__ import annotations

import torch
from torch import nn


class SeqRecModel(nn.Module):
    #: True when ``encode_all`` exists and training predicts every position of a sequence at once.
    all_positions: bool = True
    #: Number of input items the model reads (the left-padded width of ``seqs``).
    input_len: int
    def encode(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:  # (B, D)
        raise NotImplementedError

    def encode_all(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:  # (B, L, D)
        raise NotImplementedError(f"{type(self).__name__} has no all-positions path")

    def score(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:  # (B, M)
        raise NotImplementedError

    def score_all(self, h: torch.Tensor) -> torch.Tensor:  # (B, n_items + 1)
        raise NotImplementedError

    @property
    def embed_dim(self) -> int:
        """D, the width of φ (what the discriminator reads)."""
        raise NotImplementedError

    #: True while the model may run under ``torch.func.vmap`` (TP's vectorised chains set it:
    #: :func:`tplib.train.capabilities.vmap_path`): a backbone whose ordinary path has no vmap batching rule, or a slow
    #: one, then computes the same function with other ops (GRU4Rec: a functional GRU; Caser: convolutions as
    #: matmuls). SASRec has one path.
    vmap_path: bool = False

    def set_trained_users(self, users: torch.Tensor) -> None:
        """Tell the model which user indices it trains on (call once, before training). A no-op for backbones
        without user embeddings; Caser uses it to define the embedding of users it never trained on."""


class Dropout(nn.Module):
    """Inverted dropout, as ``nn.Dropout``, with a faster mask on CPU.

    On CPU, ``torch.bernoulli_`` (what ``nn.Dropout`` draws its mask with) is slow: ~11 ms for a (128, 200, 50)
    mask and ~39 ms for a (128, 200, 200) attention mask on 2 cores, a third of SASRec's training step on ML-1M.
    Here the mask comes from 16-bit uniform integers (four per 64-bit ``torch.randint`` draw; ~2 and ~8 ms), so
    the drop probability is ``p`` rounded to a multiple of 1/65536 (0.2 -> 0.199997) and the kept values are scaled
    by the exact ``1 / (1 - p_rounded)``: still unbiased. The draw is
    out of place, from torch's global generator (``torch.manual_seed`` makes it reproducible), and works under
    ``torch.func.vmap(randomness="different")``. Other devices use ``F.dropout``.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self._cut = round(p * 65536)  # drop when the 16-bit draw (offset to 0..65535) is below this

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self._cut == 0:
            return x
        if x.device.type != "cpu":
            return torch.nn.functional.dropout(x, self.p, True)
        n = x.numel()
        r = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        keep = r.view(torch.int16)[:n].view(x.shape) >= self._cut - 32768  # P(keep) = 1 - cut / 65536
        # kept values / (1 - p_rounded), dropped ones 0: the values of torch.where(keep, x * scale, 0.0) (up to
        # the sign of a zero), at a third of its time on CPU (forward and backward, plain or under vmap)
        return x * (65536.0 / (65536 - self._cut)) * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
