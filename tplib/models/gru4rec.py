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
``pack_padded_sequence`` have no ``torch.func.vmap`` batching rule, so with ``vmap_path`` set (as TP's vectorised
chains set it) the model runs a functional GRU instead:
torch's GRU equations written with plain tensor ops, a Python loop over the L columns of the right-aligned batch,
whose update is masked so that the state stays exactly 0 over the left padding and a padded column's output is
0. The last column always steps, which is the empty row's one step on the padding embedding. Its backward is
written out by hand (:class:`_GRUScan`: backpropagation through time in 6 small ops per column, tested against
autograd), because autograd's runs some 20 per column, each a dispatch under vmap; and both loops have a vmap rule of
their own, which runs them on the chains explicitly batched (plain tensor ops, not vmap's per-op batching). The inter-layer
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
        steps = steps.unsqueeze(-1)  # (B, L, 1)
        x = self.emb_drop(self.item_emb(seqs))  # (B, L, d)
        for k in range(self.gru.num_layers):
            if k > 0:
                x = self.gru_drop(x)
            w_ih, w_hh = getattr(self.gru, f"weight_ih_l{k}"), getattr(self.gru, f"weight_hh_l{k}")
            b_ih, b_hh = getattr(self.gru, f"bias_ih_l{k}"), getattr(self.gru, f"bias_hh_l{k}")
            # nn.GRU's rows are the r, z, n gates in that order. The input's share of every gate is computed for
            # all columns at once.
            gi = F.linear(x, w_ih, b_ih)  # (B, L, 3d)
            if torch.is_grad_enabled() and (gi.requires_grad or w_hh.requires_grad or b_hh.requires_grad):
                x = _GRUScan.apply(gi, w_hh, b_hh, steps)[0]  # (B, L, d), backward written out
            else:
                x = torch.stack(_scan(gi, w_hh, b_hh, steps.unbind(1)), 1)  # (B, L, d)
            h = x[:, -1]
        return x, h

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


def _scan(gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, steps: tuple[torch.Tensor, ...],
          keep: list | None = None) -> list[torch.Tensor]:
    """The GRU recurrence over the columns, from h = 0, given the input's share ``gi`` (*, B, L, 3d) of the gates and
    whether each row steps at each column (``steps``: L × (*, B, 1) bool). ``*``: optional leading chain dimensions
    (the explicitly batched chains of :class:`_GRUScan`'s vmap rule), shared by ``w_hh`` (*, 3d, d) and ``b_hh``
    (*, 3d) or absent there (one w_hh for all chains). Returns the L states (*, B, d). With ``keep`` (a list),
    appends the per-column r, z, n and the state's share of n's pre-activation (what the backward of
    :class:`_GRUScan` needs)."""
    d2 = 2 * w_hh.shape[-1]  # w_hh is (*, 3d, d)
    gi_rz, gi_n = gi[..., :d2].unbind(-2), gi[..., d2:].unbind(-2)  # L × (*, B, 2d), L × (*, B, d)
    h = torch.zeros_like(gi_n[0])  # (*, B, d)
    if w_hh.dim() == 2:  # one w_hh: one matrix product over all leading dimensions
        def linear(h):
            return F.linear(h, w_hh, b_hh)
    else:  # each chain its own: a batched product
        w_t, b = w_hh.mT, b_hh.unsqueeze(-2)  # (*, d, 3d), (*, 1, 3d)

        def linear(h):
            return torch.baddbmm(b, h, w_t)
    outs = []
    for t, step in enumerate(steps):
        gh = linear(h)  # (*, B, 3d)
        # r and z share one add and one sigmoid (fewer ops: each op's dispatch costs more than its arithmetic)
        rz = torch.sigmoid(gi_rz[t] + gh[..., :d2])
        r, z = rz.chunk(2, -1)
        n = torch.tanh(gi_n[t] + r * gh[..., d2:])
        # h' = (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n) (one lerp); the state stays 0 over padding
        h = torch.where(step, torch.lerp(n, h, z), h)
        outs.append(h)
        if keep is not None:
            keep.append((rz, n, gh[..., d2:]))
    return outs


def _batched(x: torch.Tensor, dim: int | None, size: int) -> torch.Tensor:
    """``x`` with its vmap batch dimension first (expanded to ``size`` if it has none)."""
    return x.expand(size, *x.shape) if dim is None else x.movedim(dim, 0)


class _GRUScan(torch.autograd.Function):
    """:func:`_scan` with its backward written out (backpropagation through time by hand), and a vmap rule that
    runs both on the chains explicitly batched.

    Autograd's backward of the scan runs about 20 small ops per column (and formed w_hh's gradient as a (3d, d)
    outer product per column); under vmap each op is a dispatch that costs more than its arithmetic. Here the
    forward keeps r, z, n per column, every coefficient of the backward that does not depend on the incoming
    gradient is computed for all columns at once, and the loop back through time is 6 small ops per column: the
    gates' share of the gradient at h_t (an elementwise product) and the carry to h_{t−1} (one product with w_hh
    and three elementwise ops).
    w_hh's, b_hh's and gi's gradients then come from all columns at once. With s_t = 1 where the row steps:

        h_t = s_t [z ⊙ h_{t−1} + (1 − z) ⊙ n] + (1 − s_t) h_{t−1},  n = tanh(gi_n + r ⊙ gh_n),  gh = w_hh h_{t−1} + b_hh
        ∂a_z = δ ⊙ s (h_{t−1} − n) z (1 − z),  ∂a_n = δ ⊙ s (1 − z)(1 − n²),  ∂a_r = ∂a_n ⊙ gh_n r (1 − r)
        ∂gh = [∂a_r, ∂a_z, ∂a_n ⊙ r],  ∂gi = [∂a_r, ∂a_z, ∂a_n],  δ_{t−1} = g_{t−1} + δ ⊙ (s z + 1 − s) + ∂gh w_hh

    (δ the gradient at h_t, g_t the loss's own gradient at output t). Under ``torch.func.vmap`` (TP's chains) the
    :meth:`vmap` rule moves the chain dimension first and runs the same loops on the batched tensors (one w_hh
    for all chains stays one matrix), and the backward goes through :class:`_GRUScanBackward`, which does the
    same: the loops' ops are then plain tensor ops instead of vmap's per-op batching, which costs about as much
    as the arithmetic of these small ops. Tested against autograd of the plain scan (on its own and under vmap)
    and against ``nn.GRU`` (``tests/test_models.py``).
    """

    @staticmethod
    def forward(gi, w_hh, b_hh, steps):  # gi (*, B, L, 3d), w_hh (*, 3d, d), b_hh (*, 3d), steps (*, B, L, 1) bool
        keep: list = []
        outs = torch.stack(_scan(gi, w_hh, b_hh, steps.unbind(-2), keep), -2)  # (*, B, L, d)
        rz, n, gh_n = (torch.stack(v, -2) for v in zip(*keep))  # (*, B, L, 2d), (*, B, L, d), (*, B, L, d)
        r, z = rz.chunk(2, -1)
        before = torch.cat([torch.zeros_like(outs[..., :1, :]), outs[..., :-1, :]], -2)  # (*, B, L, d): h_{t-1}
        s = steps.to(gi.dtype)  # (*, B, L, 1)
        k_n = s * (1 - z) * (1 - n * n)  # ∂a_n = δ k_n
        coef = torch.cat([k_n * gh_n * r * (1 - r), s * (before - n) * z * (1 - z), k_n * r], -1)  # ∂gh = [δ,δ,δ] coef
        carry = s * z + (1 - s)  # (*, B, L, d)
        return outs, coef, carry, k_n, before

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, w_hh, _, _ = inputs
        _, coef, carry, k_n, before = output
        ctx.mark_non_differentiable(coef, carry, k_n, before)
        ctx.save_for_backward(w_hh, coef, carry, k_n, before)

    @staticmethod
    def backward(ctx, g_out, *_):
        return *_GRUScanBackward.apply(g_out, *ctx.saved_tensors), None

    @staticmethod
    def vmap(info, in_dims, gi, w_hh, b_hh, steps):
        gi, steps = _batched(gi, in_dims[0], info.batch_size), _batched(steps, in_dims[3], info.batch_size)
        if in_dims[1] is not None or in_dims[2] is not None:  # one w_hh per chain
            w_hh, b_hh = _batched(w_hh, in_dims[1], info.batch_size), _batched(b_hh, in_dims[2], info.batch_size)
        return _GRUScan.apply(gi, w_hh, b_hh, steps), (0, 0, 0, 0, 0)


class _GRUScanBackward(torch.autograd.Function):
    """The backward of :class:`_GRUScan` (gradients of gi, w_hh, b_hh from the outputs' gradient ``g_out``), as a
    function with a vmap rule of its own (the chains explicitly batched). Not differentiable itself."""

    @staticmethod
    def forward(g_out, w_hh, coef, carry, k_n, before):  # (*, B, L, d), (*, 3d, d) or (3d, d), ...
        g = g_out.unbind(-2)  # L × (*, B, d)
        c, cr = coef.unbind(-2), carry.unbind(-2)
        delta = g[-1]
        deltas, dghs = [], []
        for t in range(len(g) - 1, -1, -1):
            dgh = torch.cat([delta, delta, delta], -1) * c[t]  # (*, B, 3d)
            deltas.append(delta)
            dghs.append(dgh)
            if t > 0:
                delta = g[t - 1] + delta * cr[t] + dgh @ w_hh
        delta_all = torch.stack(deltas[::-1], -2)  # (*, B, L, d)
        dgh_all = torch.stack(dghs[::-1], -2)  # (*, B, L, 3d)
        d2 = 2 * w_hh.shape[-1]
        d_gi = torch.cat([dgh_all[..., :d2], delta_all * k_n], -1)  # (*, B, L, 3d)
        d_w = dgh_all.flatten(-3, -2).mT @ before.flatten(-3, -2)  # (*, 3d, d): summed over rows and columns
        return d_gi, d_w, dgh_all.sum((-3, -2))

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("the GRU scan's backward is not differentiable (no second derivatives)")

    @staticmethod
    def vmap(info, in_dims, g_out, w_hh, *rest):
        n = info.batch_size
        g_out = _batched(g_out, in_dims[0], n)
        if in_dims[1] is not None:
            w_hh = _batched(w_hh, in_dims[1], n)
        rest = [_batched(x, dim, n) for x, dim in zip(rest, in_dims[2:])]
        return _GRUScanBackward.apply(g_out, w_hh, *rest), (0, 0, 0)
