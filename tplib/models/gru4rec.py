"""GRU4Rec: session-based recommendation with recurrent neural networks.

Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with Recurrent Neural Networks",
ICLR 2016 (reference implementation: hidasib/GRU4Rec). Used here as the paper under reproduction uses it
(Yin et al. KDD 2020, §4.1.3): as the RNN backbone φ, trained with that paper's BCE loss (one sampled negative
per positive), not GRU4Rec's session-parallel mini-batches or its BPR/TOP1 losses.

φ at position t: ``item_emb(s) -> dropout -> GRU(d, d, gru_layers)`` (dropout ``cfg.dropout`` also between
stacked GRU layers, as GRU4Rec's hidden dropout); the GRU's output at t is φ(s_1..s_t).
h: ``score(φ, i) = φ · item_emb(i)``, the dot product with the (shared) item embedding, as for SASRec.

Left padding, stated: the GRU never sees the padding. The left-padded batch is re-aligned to the left, run as a
packed sequence (``pack_padded_sequence``) from a zero initial state, and re-aligned to the right. So a user's
φ does not depend on how much padding the input carries (φ of ``[0, 0, a, b, c]`` equals φ of ``[a, b, c]``),
short sequences cost no padded steps, and outputs at padded positions are exactly 0. A row with no item at all
is run for one step on the zero padding embedding (φ is then the GRU's response to a zero input, never NaN).
Zeros are only allowed as left padding (a 0 between items would be misread).

Two paths compute the same function from the same parameters (``self.gru``'s ``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, so checkpoints and initialisation do not depend on the
path). The default is the packed ``nn.GRU`` above (cuDNN on GPU). ``nn.GRU`` and
``pack_padded_sequence`` have no ``torch.func.vmap`` batching rule, so inside :meth:`GRU4Rec.vmapped` (which the
TP trainer enters for its vectorised chains; it sets ``vmap_path``) the model runs a functional GRU instead:
torch's GRU equations written with plain tensor ops, a Python loop over the L columns of the right-aligned batch,
whose update is masked so that the state stays exactly 0 over the left padding and a padded column's output is
0. The last column always steps, which is the empty row's one step on the padding embedding. The inter-layer
dropout then comes from :class:`tplib.models.base.Dropout` rather than ``nn.GRU``'s own (same distribution,
other masks). Without dropout the two paths agree to rounding (``tests/test_models.py``).
Initialisation: item embeddings xavier-normal (as SASRec.pytorch; padding row 0), the GRU at PyTorch's default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tplib.config import ModelConfig
from tplib.models.base import Dropout, SeqRecModel


class GRU4Rec(SeqRecModel):
    all_positions = True
    sparse_tables = {"item_emb.weight": "item"}
    vmappable = True  # inside vmapped() (vmap_path): the functional GRU

    def __init__(self, n_items: int, n_users: int, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d
        self.n_items = n_items
        self.d = d
        self.input_len = cfg.max_len
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.emb_drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(d, d, cfg.gru_layers, batch_first=True, dropout=cfg.dropout if cfg.gru_layers > 1 else 0.0)
        self.gru_drop = Dropout(self.gru.dropout)  # the functional path's inter-layer dropout; no parameters
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Item embeddings as SASRec.pytorch (xavier normal); the GRU keeps PyTorch's default
        # uniform(-1/sqrt(d), 1/sqrt(d)) initialisation.
        nn.init.xavier_normal_(self.item_emb.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    @property
    def embed_dim(self) -> int:
        return self.d

    def _run(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The GRU over each row's items only. Returns the packed outputs, the final states (layers, B, d) and
        each row's number of padded columns."""
        seqs = seqs[:, -self.input_len :]  # (B, L)
        L = seqs.shape[1]
        lengths = (seqs != 0).sum(1).clamp(min=1)  # (B,); an empty row runs one step on the padding embedding
        n_pad = L - lengths  # (B,)
        idx = torch.arange(L, device=seqs.device)
        left = seqs.gather(1, (idx.unsqueeze(0) + n_pad.unsqueeze(1)) % L)  # (B, L): items first, padding after
        x = self.emb_drop(self.item_emb(left))  # (B, L, d)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.gru(packed)  # packed (sum(lengths), d); (layers, B, d)
        return out, h_n, n_pad

    def _run_functional(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same GRU with plain tensor ops on the right-aligned batch (vmap-safe: no in-place ops, no
        data-dependent control flow). Returns the last layer's outputs (B, L, d), 0 at padded columns, and its
        state after each row's last item (B, d)."""
        seqs = seqs[:, -self.input_len :]  # (B, L)
        # Columns where a row steps: its items, and the last column always (an empty row's one step on padding).
        steps = torch.cat([seqs[:, :-1] != 0, torch.ones_like(seqs[:, -1:], dtype=torch.bool)], 1)  # (B, L)
        steps = steps.unsqueeze(-1).unbind(1)  # L × (B, 1)
        x = self.emb_drop(self.item_emb(seqs))  # (B, L, d)
        for k in range(self.gru.num_layers):
            if k > 0:
                x = self.gru_drop(x)
            w_ih, w_hh = getattr(self.gru, f"weight_ih_l{k}"), getattr(self.gru, f"weight_hh_l{k}")
            b_ih, b_hh = getattr(self.gru, f"bias_ih_l{k}"), getattr(self.gru, f"bias_hh_l{k}")
            # nn.GRU's rows are the r, z, n gates in that order. The input's share of every gate is computed for
            # all columns at once.
            gi = F.linear(x, w_ih, b_ih)  # (B, L, 3d)
            if torch.is_grad_enabled() and (w_hh.requires_grad or b_hh.requires_grad):
                # Autograd would form w_hh's and b_hh's gradients column by column: a (3d, d) outer product and
                # an add per step (per chain under vmap), most of the backward's time. Instead a first pass
                # computes the states without a graph; the recurrence then runs on detached w_hh, b_hh plus
                # ``corr``, F.linear(states before each column, w_hh, b_hh) minus itself detached: exactly 0, so
                # every value is unchanged, and its gradient gives w_hh and b_hh theirs in one product.
                first = self._scan(gi.detach(), w_hh.detach(), b_hh.detach(), steps)
                before = torch.stack([torch.zeros_like(first[0]), *first[:-1]], 1)  # (B, L, d): h_{t-1}
                corr = F.linear(before, w_hh, b_hh)  # (B, L, 3d)
                outs = self._scan(gi, w_hh.detach(), b_hh.detach(), steps, (corr - corr.detach()).unbind(1))
            else:
                outs = self._scan(gi, w_hh, b_hh, steps)
            h = outs[-1]
            x = torch.stack(outs, 1)  # (B, L, d)
        return x, h

    def _scan(self, gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, steps: tuple[torch.Tensor, ...],
              corr: tuple[torch.Tensor, ...] | None = None) -> list[torch.Tensor]:
        """The GRU recurrence over the columns, from h = 0, given the input's share ``gi`` (B, L, 3d) of the gates.
        ``corr[t]`` (B, 3d), if given, is added to the state's share at column t. Returns the L states (B, d)."""
        d2 = 2 * self.d
        gi_rz, gi_n = gi[..., :d2].unbind(1), gi[..., d2:].unbind(1)  # L × (B, 2d), L × (B, d)
        h = torch.zeros_like(gi_n[0])  # (B, d)
        outs = []
        for t, step in enumerate(steps):
            gh = F.linear(h, w_hh, b_hh)  # (B, 3d)
            if corr is not None:
                gh = gh + corr[t]
            # r and z share one add and one sigmoid (fewer ops: each costs most under vmap)
            r, z = torch.sigmoid(gi_rz[t] + gh[:, :d2]).chunk(2, -1)
            n = torch.tanh(gi_n[t] + r * gh[:, d2:])
            # h' = (1 − z) ⊙ n + z ⊙ h, written as torch's GRU cell computes it; the state stays 0 over padding
            h = torch.where(step, (h - n) * z + n, h)
            outs.append(h)
        return outs

    def encode_all(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        if self.vmap_path:
            return self._run_functional(seqs)[0]
        out, _, n_pad = self._run(seqs)
        L = min(seqs.shape[1], self.input_len)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=L)  # (B, L, d), 0 after each row's end
        idx = torch.arange(L, device=seqs.device)
        to_right = (idx.unsqueeze(0) - n_pad.unsqueeze(1)) % L  # (B, L)
        return y.gather(1, to_right.unsqueeze(-1).expand(-1, -1, self.d))  # (B, L, d), right-aligned again

    def encode(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        if self.vmap_path:
            return self._run_functional(seqs)[1]
        _, h_n, _ = self._run(seqs)
        return h_n[-1]  # (B, d): each row's last-layer state after its last item

    def score(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # h (B, M, d) or (B, 1, d); items (B, M) -> (B, M)
        return (h * self.item_emb(items)).sum(-1)

    def score_all(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.item_emb.weight.t()  # (B, n_items + 1)
