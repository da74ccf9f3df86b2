"""TP's outer step, computed fast: the same update as the plain reference of :mod:`tplib.train.algorithm`, exactly
(``tests/test_tp.py`` compares the two for every backbone), with less work.

- All P·k mini-batches of an outer step are drawn first (the same sampler and distributions).
- The inner steps run on *local* copies of the sparse tables (a backbone's ``sparse_tables`` in
  :data:`CAPABILITIES`: item and user embeddings), restricted to the rows those batches touch. Other rows get a zero
  gradient in every inner step, so they do not move and their share of Θ − θ_k is exactly 0.
- With P > 1 and ``tp.vectorize`` the chains run under ``torch.func.vmap`` over stacked copies of the parameters
  (backbones that allow it, with the model's ``vmap_path`` set: :func:`vmap_path`), one inner step at a time, a
  group of chains at a time: chains whose batches at that step are of similar size (and, for SASRec and GRU4Rec,
  of similar input length, the group's inputs cut to its longest; :meth:`ChainEngine.group_chains`). The first
  inner step reads the dense parameters once for the group, as every chain starts from Θ; the dropout masks are
  drawn per group in one call, so they differ from a sequential run. At each step a chain gets its own local rows
  (the rows its batch touches, padded to its group's widest), holding Θ's values minus α times its earlier steps'
  gradients there, so a step's work grows with P, not with P²; each chain's delta is α Σ_i g_i (Θ − θ_k for plain
  SGD from Θ), and the sums are added into the touched rows of the full table with weight α / P (``index_add``
  with ``alpha``: no pass of its own over the deltas), which is the mean over chains of the reference (up to
  rounding). With P = 1 there is nothing to vectorise and the plain loop runs.
- Without ``tp.align`` (the control without alignment) every inner step reads Θ, as step 0 does: each chain's
  delta is α Σ_i g_i(Θ).

The chains are independent, so which chains share a group changes nothing; a group's left-padded inputs are cut to
its longest real input (backbones with ``trims_left_padding``): padded columns carry no target and do not change
φ at real positions, so this changes no value, only the work.

What the engine needs to know about each backbone is in :data:`tplib.train.capabilities.CAPABILITIES`; the models
know nothing of TP.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from torch import nn

from tplib.config import RunConfig
from tplib.data.sampler import Batch, TrainSampler
from tplib.models.base import SeqRecModel
from tplib.train.algorithm import Discriminator, adversarial_loss
from tplib.train.capabilities import CAPABILITIES, vmap_path
from tplib.train.loss import bce_loss

#: The fixed cost of one vmap group in :meth:`ChainEngine.group_chains`, in padded row-columns of work (750: a
#: group of 15 chains of 50 columns). Only speed depends on it, never a value.
GROUP_COST = 750.0

#: A batch's index fields, in :class:`Batch`'s order (a backbone's ``sparse_kinds`` says which table kind each reads).
BATCH_FIELDS = ("seqs", "pos", "neg", "users")


class Objective(nn.Module):
    """The inner step's objective as one module (model + discriminator), for ``torch.func``: returns
    L + BCE_d through the reversal layer, and (L, BCE_d, discriminator accuracy) as auxiliary output.
    ``per_target`` (tp.loss_weighting "target", default None): L is the user's summed loss over its targets
    divided by ``per_target`` (the mean count per user) instead of its mean."""

    def __init__(self, model: SeqRecModel, disc: Discriminator, lam: float, per_target: float | None = None) -> None:
        super().__init__()
        self.model, self.disc, self.lam, self.per_target = model, disc, lam, per_target

    def forward(self, seqs, pos, neg, users, labels):
        out = bce_loss(self.model, Batch(seqs, pos, neg, users))
        bce_d, acc = adversarial_loss(self.disc, out, labels, self.lam)
        loss = out.loss if self.per_target is None else out.loss * (pos != 0).sum() / self.per_target
        return loss + bce_d, torch.stack([loss.detach(), bce_d.detach(), acc])


class FlatBatch:
    """The P·k mini-batches of a vectorised outer step in one flat batch: ``batch`` (rows user by user, chain by
    chain), ``counts`` (P, k) rows per mini-batch and ``starts`` (P, k) where each begins; ``seqs``, ``pos``,
    ``neg`` are the batch's with one all-zero row appended (row ``n_rows``: what padding rows are read from);
    ``lengths`` (P, k), set for backbones that trim left padding: each mini-batch's longest real input."""

    def __init__(self, batch: Batch, counts: np.ndarray) -> None:
        self.batch, self.counts = batch, counts
        self.starts = (np.cumsum(counts.reshape(-1)) - counts.reshape(-1)).reshape(counts.shape)
        self.n_rows = batch.seqs.shape[0]
        self.seqs, self.pos, self.neg = (torch.cat([t, t.new_zeros(1, *t.shape[1:])])
                                         for t in (batch.seqs, batch.pos, batch.neg))
        self.lengths: np.ndarray | None = None

    def chain(self, c: int) -> list[Batch]:
        """Chain ``c``'s k mini-batches, one per inner step (as the looped path holds them)."""
        return [Batch(*(getattr(self.batch, f)[a : a + n] for f in BATCH_FIELDS))
                for a, n in zip(self.starts[c].tolist(), self.counts[c].tolist())]


class ChainEngine:
    """The inner chains of TP's outer steps for one model, its discriminator (inside ``objective``) and the
    training users' head/tail ``labels``; :meth:`set_outer_grads` leaves the outer step's gradients in every
    parameter's ``.grad`` for the two Adams."""

    def __init__(self, cfg: RunConfig, model: SeqRecModel, objective: Objective, labels: torch.Tensor) -> None:
        self.tp, self.model, self.objective, self.labels = cfg.tp, model, objective, labels
        self.caps = CAPABILITIES[cfg.backbone]
        self.sparse = {f"model.{n}": kind for n, kind in self.caps.sparse_tables.items()}
        self._kind_of = {f: kind for kind, (fields, _) in self.caps.sparse_kinds.items() for f in fields}
        if sorted(self._kind_of) != sorted(BATCH_FIELDS) or sum(len(f) for f, _ in self.caps.sparse_kinds.values()) != 4:
            raise ValueError(f"{cfg.backbone}: sparse_kinds must give each of {BATCH_FIELDS} exactly one kind")
        named = {**dict(objective.named_parameters()), **dict(objective.named_buffers())}
        # each sparse table kind's number of rows: the stride of the vectorised path's global row keys
        self._table_rows = {kind: named[n].shape[0] for n, kind in self.sparse.items()}
        self._gbuf: dict[str, torch.Tensor] = {}  # full-size outer-gradient buffers of the sparse tables

        def total(params, buffers, seqs, pos, neg, users, labels):
            return torch.func.functional_call(objective, (params, buffers), (seqs, pos, neg, users, labels))

        self._grad_vmap = torch.func.grad(total, has_aux=True)  # for torch.func.vmap over chains

        def grad_plain(params, buffers, *batch):  # ordinary autograd (nn.GRU has no torch.func support)
            leaves = {n: v.detach().requires_grad_(True) for n, v in params.items()}
            loss, aux = total(leaves, buffers, *batch)
            gs = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
            return {n: torch.zeros_like(v) if g is None else g for (n, v), g in zip(leaves.items(), gs)}, aux

        self._grad = grad_plain

    def vectorises(self, P: int) -> bool:
        """Whether an outer step of P chains runs them under vmap (else one after another)."""
        return P > 1 and self.tp.vectorize and self.caps.vmappable

    def flat_batches(self, sampler: TrainSampler, users: np.ndarray) -> FlatBatch:
        """All P·k mini-batches of a vectorised outer step in one flat batch (one sampler call)."""
        P, k = users.shape
        fb, counts = sampler.user_batches_flat(users.reshape(-1), self.tp.user_batch)
        return FlatBatch(fb, counts.reshape(P, k))

    def set_outer_grads(self, batches: FlatBatch | list[list[Batch]], users: np.ndarray,
                        flat: list[torch.Tensor] | None) -> tuple[dict[str, list[torch.Tensor]], torch.Tensor]:
        """Run the inner chains of the (P, k) ``users`` on their ``batches`` (a :class:`FlatBatch` where
        :meth:`vectorises`, else chain by chain) and set every parameter's ``.grad`` to the mean over chains of
        Θ − θ_k. Returns the touched rows per sparse kind (for :meth:`clear`) and (P·k, 3) loss, BCE_d and
        discriminator accuracy per inner step; chain 0's inner gradients go to ``flat`` if given."""
        full = dict(self.objective.named_parameters())
        chains = self._chains_vmapped if isinstance(batches, FlatBatch) else self._chains_looped
        rows, delta, scale, aux = chains(batches, users, full, flat)
        with torch.no_grad():
            for n, p in full.items():
                if n in self.sparse:  # a persistent zero buffer: add the touched rows' deltas, clear them after
                    g = self._gbuf.get(n)
                    if g is None:
                        g = self._gbuf[n] = torch.zeros_like(p)
                    for r, d in zip(rows[self.sparse[n]], delta[n]):
                        g.index_add_(0, r, d, alpha=scale)
                    p.grad = g
                else:
                    p.grad = delta[n] if scale == 1.0 else delta[n] * scale
        return rows, aux

    def clear(self, rows: dict[str, list[torch.Tensor]]) -> None:
        """Zero the sparse tables' gradient buffers where the last outer step wrote (after the optimiser step)."""
        with torch.no_grad():
            for n, g in self._gbuf.items():
                for r in rows[self.sparse[n]]:
                    g[r] = 0.0  # (repeated rows are fine: all set to 0)

    # The inner chains of one outer step. Both return (rows, delta, scale, aux): the mean over the chains of Θ − θ_k
    # is ``scale`` times ``delta``. For a sparse table, ``delta[name]`` is a list of parts, each covering the global
    # rows of its part of ``rows[kind]``, row for row (rows may repeat: their deltas add up); a dense parameter's
    # delta is one full-size tensor. ``aux`` (P·k, 3): loss, BCE_d, accuracy per inner step, chain by chain.
    # Gradients of chain 0's inner steps go to ``flat`` (diagnostics) if it is given.

    def _sparse_rows(self, bs: list[Batch]) -> dict[str, torch.Tensor]:
        """The sorted global rows that the batches ``bs`` touch, per table kind (``model.sparse_kinds``: the fields
        that read it; item row 0, the padding item, always included where the kind says so)."""
        dev = bs[0].seqs.device
        rows = {}
        for kind, (fields, with_zero) in self.caps.sparse_kinds.items():
            ids = [torch.zeros(1, dtype=torch.long, device=dev)] if with_zero else []
            ids += [getattr(b, f).reshape(-1) for b in bs for f in fields]
            rows[kind] = torch.unique(torch.cat(ids))
        return rows

    def _localise(self, b: Batch, rows: dict[str, torch.Tensor]) -> Batch:
        return Batch(*(torch.searchsorted(rows[self._kind_of[f]], getattr(b, f)) for f in BATCH_FIELDS))

    def _slice(self, named: dict[str, torch.Tensor], rows: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: (v[rows[self.sparse[n]]] if n in self.sparse else v).detach() for n, v in named.items()}

    def _chains_looped(self, batches, users, full, flat):
        """The chains one after another, on local tables over the union of the step's rows."""
        P, k = users.shape
        rows = self._sparse_rows([b for chain in batches for b in chain])
        start = self._slice(full, rows)
        buffers = self._slice(dict(self.objective.named_buffers()), rows)
        delta = {n: torch.zeros_like(v) for n, v in start.items()}
        aux_all = []
        for c in range(P):
            params = dict(start)
            for i in range(k):
                b = self._localise(batches[c][i], rows)
                lab = self.labels[int(users[c, i])].expand(b.users.shape[0])
                grads, aux = self._grad(params, buffers, b.seqs, b.pos, b.neg, b.users, lab)
                aux_all.append(aux[None])
                if flat is not None and c == 0:
                    flat.append(torch.cat([grads[n].reshape(-1) for n in grads if n.startswith("model.")]))
                with torch.no_grad():
                    if self.tp.align:
                        params = {n: params[n] - self.tp.alpha * grads[n] for n in params}
                    else:  # every gradient at Θ: bank the step's share of Θ − θ_k instead of taking it
                        for n in delta:
                            delta[n] += self.tp.alpha * grads[n]
            for n in delta:
                delta[n] += start[n] - params[n]
        return ({kind: [r] for kind, r in rows.items()},
                {n: [d / P] if n in self.sparse else d / P for n, d in delta.items()}, 1.0, torch.cat(aux_all))

    @staticmethod
    def group_chains(sizes: list[int], lengths: list[int] | None = None, per_group: float | None = None
                     ) -> list[list[int]]:
        """Chains (by index) grouped for vmap, largest first (done for each inner step). A group runs as one
        vectorised pass padded to its largest chain: ``sizes`` (rows of a chain's mini-batch: Caser's windows, 1 to
        128 per user) times ``lengths`` (input columns: for SASRec and GRU4Rec each chain's longest real input, as
        the group's inputs are cut to its longest, :meth:`_stack`; otherwise the fixed input width; 1 if not
        given). One group pads a
        short history to the longest one's size; one group per distinct size runs many small passes, each with
        a fixed cost. So the chains, sorted by size × length, are cut into the contiguous groups that minimise
        Σ_group (``per_group`` + chains × the largest size × length), by dynamic programming over the distinct
        values. ``per_group`` (:data:`GROUP_COST`, in padded row-columns) was measured on a 2-core CPU (1,500 made
        Caser's and SASRec's Game epochs 8–18% shorter than fixed power-of-4 buckets; with groups chosen per inner
        step, 750 makes SASRec's and GRU4Rec's Game outer steps 4–10% shorter than
        1,500 and leaves Caser's as they were, paired A/B runs of benchmarks/ab_swap.py).
        Grouping changes nothing in the arithmetic: the chains are independent, and their deltas are summed
        either way (only the dropout masks, drawn per group, differ)."""
        c0 = GROUP_COST if per_group is None else per_group
        w = np.maximum(np.asarray(sizes, dtype=np.int64), 1)
        if lengths is not None:
            w = w * np.maximum(np.asarray(lengths, dtype=np.int64), 1)
        order = np.argsort(w, kind="stable")
        vals, counts = np.unique(w[order], return_counts=True)
        cum = np.concatenate([[0], np.cumsum(counts)])
        best, cut = np.zeros(len(vals) + 1), np.zeros(len(vals) + 1, dtype=np.int64)
        for b in range(1, len(vals) + 1):  # best[b]: the cheapest cut of the b smallest values; the last group a..b-1
            cost = best[:b] + c0 + (cum[b] - cum[:b]) * vals[b - 1]
            cut[b] = int(np.argmin(cost))
            best[b] = cost[cut[b]]
        groups, b = [], len(vals)
        while b > 0:
            groups.append(order[cum[cut[b]] : cum[b]].tolist())
            b = int(cut[b])
        return groups

    def _chains_vmapped(self, batches: FlatBatch, users, full, flat):
        """The P chains under vmap, one inner step at a time. At step i the chains are grouped by the size of their
        step-i mini-batch (and, for backbones that trim left padding, its input length: :meth:`group_chains`), and
        each group runs at once; so a group pads its chains to one step's batches, not to the larger of their k.
        A chain's local rows at step i are the rows its step-i batch touches (padded to its group's widest with
        repeats of its first row, which no batch index points to: they get a zero gradient); their values are Θ's
        minus α times the chain's earlier gradients on the same rows (found by global row, :meth:`_find`): what
        the plain loop reads there, as a row an earlier step did not touch got a zero gradient. The dense
        parameters after step i are kept per chain, (P, ...), and gathered by step i + 1's groups; step 0 reads Θ
        once per group (vmap in_dims None: one matrix product for all its chains instead of one per chain)."""
        P, k = users.shape
        alpha = self.tp.alpha
        dev = batches.seqs.device
        buffers_full = dict(self.objective.named_buffers())
        table_rows = self._table_rows
        if self.caps.trims_left_padding:  # each batch's longest real input: its rows' non-padding items
            batches.lengths = np.maximum.reduceat((batches.batch.seqs != 0).sum(1).cpu().numpy(),
                                                  batches.starts.reshape(-1)).reshape(P, k)
            lengths = batches.lengths
        else:
            lengths = np.full((P, k), batches.seqs.shape[-1])
        rows: dict[str, list[torch.Tensor]] = {kind: [] for kind in self.caps.sparse_kinds}
        sums: dict[str, list[torch.Tensor]] = defaultdict(list)  # sparse: a part per group-step; dense: per chain sums
        aux = torch.empty(P, k, 3, device=dev)
        dense = {n: v.detach() for n, v in full.items() if n not in self.sparse}  # Θ, shared by step 0's chains
        slot = np.zeros(P, dtype=np.int64)  # where each chain's dense parameters are in ``dense`` after step 0
        earlier: list[tuple[dict, dict]] = []  # per step: sorted global row keys per kind, the gradients on them
        chain0: list[dict] = []  # chain 0's model gradients per step, {name: (global rows or None, gradient)}
        moves = self.tp.align  # without alignment every step reads Θ, as step 0 does
        for i in range(k):
            keep = moves and i < k - 1  # the next step reads this step's result
            after: dict[str, torch.Tensor] = {}  # the dense parameters after this step, group after group
            next_slot, filled = np.zeros(P, dtype=np.int64), 0
            step_keys: dict[str, list[torch.Tensor]] = defaultdict(list)
            step_grads: dict[str, list[torch.Tensor]] = defaultdict(list)
            for group in self.group_chains(batches.counts[:, i], lengths[:, i]):
                G = len(group)
                gidx = torch.as_tensor(group, device=dev)
                seqs, pos, neg, us, lab = self._stack(batches, group, i, users[group, i])
                padded, keys, real, local = {}, {}, {}, {}
                stacked = dict(zip(BATCH_FIELDS, (seqs, pos, neg, us)))
                for kind, (fields, with_zero) in self.caps.sparse_kinds.items():
                    padded[kind], locate, n_rows = self._chain_rows([stacked[f] for f in fields], G, with_zero)
                    local.update({f: locate(stacked[f]) for f in fields})
                    if kind in table_rows:  # (G, width) global keys: chain and row; which are not padding
                        keys[kind] = gidx[:, None] * table_rows[kind] + padded[kind]
                        real[kind] = torch.arange(padded[kind].shape[1], device=dev) < n_rows[:, None]
                params = {}
                sidx = torch.as_tensor(slot[group], device=dev)  # the group's chains in ``dense`` (steps > 0)
                found = [{kind: self._find(e_keys[kind], keys[kind]) for kind in keys} for e_keys, _ in earlier]
                for n, v in full.items():
                    if n in self.sparse:  # Θ's rows, minus α times each earlier step's gradient on them
                        kind = self.sparse[n]
                        params[n] = v.detach()[padded[kind]]  # (G, width, ...)
                        for (_, e_grads), f in zip(earlier, found):
                            back = self._earlier(e_grads[n], *f[kind]).view(params[n].shape)
                            params[n] = torch.add(params[n], back, alpha=-alpha)
                    else:
                        params[n] = dense[n] if i == 0 or not moves else dense[n][sidx]
                buffers = {n: (v[padded[self.sparse[n]]] if n in self.sparse else v.expand(G, *v.shape))
                           for n, v in buffers_full.items()}
                dims = {n: 0 if (i > 0 and moves) or n in self.sparse else None for n in params}
                step = torch.func.vmap(self._grad_vmap, in_dims=(dims, 0, 0, 0, 0, 0, 0), randomness="different")
                with vmap_path(self.model):
                    grads, aux[gidx, i] = step(params, buffers, *(local[f] for f in BATCH_FIELDS), lab)
                if flat is not None and 0 in group:
                    j = group.index(0)
                    chain0.append({n: (padded[self.sparse[n]][j] if n in self.sparse else None, g[j])
                                   for n, g in grads.items() if n.startswith("model.")})
                for n, g in grads.items():  # Θ − θ_k = α Σ_i g_i (plain SGD from Θ); α is applied by the caller
                    if n in self.sparse:
                        sums[n].append(g.reshape(-1, *g.shape[2:]))  # (G·width, ...), row for row with rows[kind]
                        if keep:
                            step_grads[n].append(g[real[self.sparse[n]]])
                    else:
                        sums[n].append(g.sum(0))
                        if keep:  # this group's chains' parameters after the step, written in place
                            if n not in after:
                                after[n] = g.new_empty((P, *g.shape[1:]))
                            torch.add(params[n], g, alpha=-alpha, out=after[n][filled : filled + G])
                next_slot[group] = np.arange(filled, filled + G)
                filled += G
                for kind in rows:
                    rows[kind].append(padded[kind].reshape(-1))
                    if keep and kind in keys:
                        step_keys[kind].append(keys[kind][real[kind]])
            if keep:
                e_keys, order = {}, {}
                for kind, ks in step_keys.items():
                    ks = torch.cat(ks)
                    e_keys[kind], order[kind] = torch.sort(ks)
                earlier.append((e_keys, {n: torch.cat(gs)[order[self.sparse[n]]] for n, gs in step_grads.items()}))
                dense, slot = after, next_slot
        if flat is not None:
            flat.extend(self._aligned(chain0))
        delta = {n: ds if n in self.sparse else sum(ds) for n, ds in sums.items()}
        return rows, delta, alpha / P, aux.reshape(P * k, 3)

    @staticmethod
    def _find(keys: torch.Tensor, want: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the global row keys ``want`` (any shape) are in an earlier inner step's sorted ``keys``: positions
        (clamped into range) and whether the key is there, both (want.numel(),)."""
        pos = torch.searchsorted(keys, want.reshape(-1)).clamp(max=len(keys) - 1)
        return pos, keys[pos] == want.reshape(-1)

    @staticmethod
    def _earlier(grads: torch.Tensor, pos: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        """An earlier inner step's gradients (one per key, row for row with its sorted keys) at the rows found by
        :meth:`_find`, shaped (numel, ...); 0 where that step did not touch the row."""
        return torch.where(hit.view(-1, *(1,) * (grads.dim() - 1)), grads[pos], 0.0)

    @staticmethod
    def _aligned(steps: list[dict]) -> list[torch.Tensor]:
        """Chain 0's inner gradients (per step, {name: (global rows or None, gradient)}) as flat vectors over the
        same coordinates: a sparse table's gradient placed on the union of the rows its steps touched (the other
        rows' entries are 0 in every step, so dot products and norms are those of the full-table gradients)."""
        union = {n: torch.unique(torch.cat([st[n][0] for st in steps])) for n, (r, _) in steps[0].items()
                 if r is not None}
        out = []
        for st in steps:
            parts = []
            for n, (r, g) in st.items():
                if r is not None:
                    g = g.new_zeros(len(union[n]), *g.shape[1:]).index_add_(0, torch.searchsorted(union[n], r), g)
                parts.append(g.reshape(-1))
            out.append(torch.cat(parts))
        return out

    @staticmethod
    def _chain_rows(ts: list[torch.Tensor], G: int, with_zero: bool):
        """The rows of one table kind that each of G chains touches, from id tensors ``ts`` whose first dimension
        is the chain: (G, width) sorted ids per chain (row 0 always included if ``with_zero``), padded to the
        widest chain with repeats of the chain's first id; a function mapping a (G, ...) id tensor to
        positions in its chain's row list; and each chain's number of rows (G,). Vectorised over the chains (one
        unique, one searchsorted); the same
        rows and positions as :meth:`_sparse_rows` and :meth:`_localise` chain by chain."""
        flat = [t.reshape(G, -1) for t in ts]
        if with_zero:
            flat.append(flat[0].new_zeros(G, 1))
        ids = torch.cat(flat, 1)  # (G, n)
        stride = int(ids.max()) + 1
        chain = torch.arange(G, device=ids.device)
        keys = torch.unique(ids + chain[:, None] * stride)  # sorted: by chain, then id
        owner = keys // stride
        counts = torch.bincount(owner, minlength=G)  # (G,)
        offset = torch.cumsum(counts, 0) - counts  # (G,) where each chain's rows start in ``keys``
        first = keys[offset] % stride  # (G,) each chain's smallest id
        padded = first[:, None].repeat(1, int(counts.max()))  # (G, width)
        padded[owner, torch.arange(len(keys), device=keys.device) - offset[owner]] = keys % stride

        def locate(t: torch.Tensor) -> torch.Tensor:
            shape = (G,) + (1,) * (t.dim() - 1)
            return torch.searchsorted(keys, (t + (chain * stride).view(shape)).reshape(-1)).view(t.shape) \
                - offset.view(shape)

        return padded, locate, counts

    def _stack(self, batches: FlatBatch, group: list[int], i: int, us: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Inner step ``i``'s mini-batches of the chains ``group`` (users ``us``), stacked (G, R, ...): one index
        into the flat batch per field, rows past a chain's own count padding (no items, no targets, the chain's
        user). For a backbone that trims left padding, the leading columns that are padding in every row of the
        group are cut off (targets are aligned with inputs there, so those columns have no target either: the loss
        and φ's gradients are the same)."""
        starts, counts = batches.starts[group, i], batches.counts[group, i]  # (G,)
        R = int(counts.max())
        j = np.arange(R)
        real = j[None, :] < counts[:, None]  # (G, R)
        dev = batches.batch.seqs.device
        # (G, R) rows of the flat batch; a padding row reads the appended zero row
        rows = torch.as_tensor(np.where(real, starts[:, None] + j, batches.n_rows), device=dev)
        first = 0
        if self.caps.trims_left_padding:  # the group's longest real input (inputs are left-padded)
            assert batches.pos.shape == batches.seqs.shape, "trimming needs targets aligned with the inputs"
            first = batches.seqs.shape[-1] - max(int(batches.lengths[group, i].max()), 1)
        seqs, pos, neg = (t[:, first:][rows] for t in (batches.seqs, batches.pos, batches.neg))  # (G, R, L')
        own = torch.as_tensor(np.where(real, starts[:, None] + j, starts[:, None]), device=dev)  # padding: 1st row
        users = batches.batch.users[own]  # (G, R)
        labels = self.labels[torch.as_tensor(us, device=self.labels.device)].unsqueeze(1).expand(-1, R)  # (G, R)
        return seqs, pos, neg, users, labels
