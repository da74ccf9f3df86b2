"""SASRec: self-attentive sequential recommendation.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018. Reference implementations followed:
kang205/SASRec (the authors' TensorFlow code) and pmixer/SASRec.pytorch (``model.py``, its default
``norm_first=False`` path).

φ at position t:

1. ``x = item_emb(s) * sqrt(d) + pos_emb(t)``, then dropout, then the timeline mask (padded positions set to 0);
2. ``n_blocks`` times:
   ``q = LN(x)``; ``x = q + MHA(q, x, x)`` (causal; queries from the normalised input, keys/values from the raw
   input, the residual on the normalised input, exactly as both references do);
   ``q = LN(x)``; ``x = q + FFN(q)`` with ``FFN = Dropout(W2 · Dropout(ReLU(W1 · q)))``; ``x *= timeline mask``;
3. a final ``LN``.

h: ``score(φ, i) = φ · item_emb(i)`` (input and output item embeddings are shared, as in both references).

Choices, stated:

- Padded keys are masked out of the attention (kang205/SASRec's key masking; SASRec.pytorch only zeroes their
  embeddings, which still leaves their projection biases in the softmax). Every query may always attend to
  itself, so a row whose keys are all padding (a padded query) has a defined softmax and never gives NaN; its
  output is discarded by the timeline mask.
- Positions are counted so that the last column is always position ``max_len - 1`` (with a full ``max_len``-wide
  input this is the references' 0..max_len-1). Together with the key masking this makes the outputs at real
  positions independent of how much left padding the input carries, so an input narrower than ``max_len``
  (e.g. a short user at evaluation) gives the same φ as the same input left-padded to ``max_len``. An input wider
  than ``max_len`` is cropped to its last ``max_len`` columns.
- No loop over positions; ``nn.Linear`` replaces the references' kernel-size-1 ``Conv1d`` (the same map).
- The three dropouts (embedding, attention weights, FFN; all ``cfg.dropout``) use
  :class:`~tplib.models.base.Dropout`, whose CPU mask is ~4x cheaper than ``bernoulli_``; so in training the
  attention is written out (baddbmm, softmax, dropout, bmm), and otherwise (eval, or dropout 0) it is one
  ``scaled_dot_product_attention`` call. Both paths are tested equal.
- Initialisation as SASRec.pytorch: ``xavier_normal_`` on every weight matrix (embeddings included), LayerNorm
  at (1, 0), attention projection biases 0, FFN biases at PyTorch's default; then the padding row of the item
  table is reset to 0 (``padding_idx=0`` keeps it there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tplib.config import ModelConfig
from tplib.models.base import Dropout, SeqRecModel


class CausalSelfAttention(nn.Module):
    """Multi-head attention with queries from ``q_in`` and keys/values from ``kv_in`` (SASRec's split), dropout
    on the attention weights (as both references). ``mask`` is additive: 0 where a query may attend, -inf
    elsewhere; every row must allow at least one key."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d, d)
        self.kv_proj = nn.Linear(d, 2 * d)
        self.out_proj = nn.Linear(d, d)
        self.attn_drop = Dropout(dropout)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # q_in (B, Lq, d), kv_in (B, L, d), mask (B, 1, Lq, L) float
        B, Lq, d = q_in.shape
        L = kv_in.shape[1]
        H = self.n_heads
        q = self.q_proj(q_in).view(B, Lq, H, d // H).transpose(1, 2)  # (B, H, Lq, d/H)
        k, v = self.kv_proj(kv_in).view(B, L, 2, H, d // H).permute(2, 0, 3, 1, 4)  # 2 x (B, H, L, d/H)
        if self.training and self.attn_drop.p > 0:
            # Written out so that the attention dropout uses the fast mask (SDPA's dropout draws with bernoulli_).
            att = torch.baddbmm(
                mask.expand(B, H, Lq, L).reshape(B * H, Lq, L),
                q.reshape(B * H, Lq, d // H),
                k.reshape(B * H, L, d // H).transpose(1, 2),
                alpha=1.0 / math.sqrt(d // H),
            )  # (B*H, Lq, L)
            att = self.attn_drop(att.softmax(-1))  # (B*H, Lq, L)
            y = torch.bmm(att, v.reshape(B * H, L, d // H)).view(B, H, Lq, d // H)  # (B, H, Lq, d/H)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, Lq, d/H)
        y = y.transpose(1, 2).reshape(B, Lq, d)  # (B, Lq, d)
        return self.out_proj(y)  # (B, Lq, d)


class PointWiseFeedForward(nn.Module):
    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, L, d)
        return self.drop(self.fc2(self.drop(F.relu(self.fc1(x)))))


class SASRec(SeqRecModel):
    all_positions = True

    def __init__(self, n_items: int, n_users: int, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d
        self.n_items = n_items
        self.d = d
        self.input_len = cfg.max_len
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.emb_drop = Dropout(cfg.dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(cfg.n_blocks))
        self.attns = nn.ModuleList(CausalSelfAttention(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_blocks))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(cfg.n_blocks))
        self.ffns = nn.ModuleList(PointWiseFeedForward(d, cfg.dropout) for _ in range(cfg.n_blocks))
        self.last_norm = nn.LayerNorm(d, eps=1e-8)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            for a in self.attns:
                # nn.MultiheadAttention's packed (3d, d) in-projection, xavier-initialised as one matrix.
                w = nn.init.xavier_normal_(torch.empty(3 * self.d, self.d))
                a.q_proj.weight.copy_(w[: self.d])
                a.kv_proj.weight.copy_(w[self.d :])
                a.q_proj.bias.zero_()
                a.kv_proj.bias.zero_()
                a.out_proj.bias.zero_()
            self.item_emb.weight[0].zero_()

    @property
    def embed_dim(self) -> int:
        return self.d

    def _features(self, seqs: torch.Tensor, last_only: bool) -> torch.Tensor:
        seqs = seqs[:, -self.input_len :]  # (B, L), L <= max_len
        B, L = seqs.shape
        valid = seqs != 0  # (B, L)
        keep = valid.unsqueeze(-1)  # (B, L, 1)
        pos = self.pos_emb.weight[self.input_len - L :]  # (L, d): last column = position max_len - 1
        x = self.item_emb(seqs) * math.sqrt(self.d) + pos  # (B, L, d)
        x = self.emb_drop(x) * keep  # (B, L, d)

        idx = torch.arange(L, device=seqs.device)
        causal = idx.unsqueeze(1) >= idx.unsqueeze(0)  # (L, L): key s <= query t
        eye = idx.unsqueeze(1) == idx.unsqueeze(0)  # (L, L)
        allowed = (causal & valid.unsqueeze(1)) | eye  # (B, L, L): causal, real keys, always self
        mask = x.new_zeros(allowed.shape).masked_fill(~allowed, float("-inf"))  # out of place: vmap-safe
        mask = mask.unsqueeze(1)  # (B, 1, L, L), additive

        n = len(self.attns)
        for i in range(n):
            if last_only and i == n - 1:
                # Only the last query matters for φ(S): restrict the last block's queries to it.
                q = self.attn_norms[i](x[:, -1:, :])  # (B, 1, d)
                x = q + self.attns[i](q, x, mask[:, :, -1:, :])  # (B, 1, d)
                keep = keep[:, -1:, :]  # (B, 1, 1)
            else:
                q = self.attn_norms[i](x)  # (B, L, d)
                x = q + self.attns[i](q, x, mask)  # (B, L, d)
            q = self.ffn_norms[i](x)  # (B, L', d)
            x = (q + self.ffns[i](q)) * keep  # (B, L', d)
        return self.last_norm(x)  # (B, L', d)

    def encode_all(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self._features(seqs, last_only=False)  # (B, L, d)

    def encode(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return self._features(seqs, last_only=True)[:, -1, :]  # (B, d)

    def score(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # h (B, M, d) or (B, 1, d); items (B, M) -> (B, M)
        return (h * self.item_emb(items)).sum(-1)

    def score_all(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.item_emb.weight.t()  # (B, n_items + 1)
