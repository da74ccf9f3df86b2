"""Training samples: shared by the baseline and the TP trainer.

Existing users train on ``seq[:-2]`` (the last two items are validation and test). Two sample shapes:

- ``"sequence"`` (SASRec, GRU4Rec: backbones that predict every position at once): one row per user, the last
  ``L`` items of ``train[:-1]`` as input (left-padded) and ``train[1:]`` as the aligned next-item targets, so one
  row holds every L-length subsequence of the user's history with its next item (SASRec's training scheme).
- ``"window"`` (Caser): every window of ``L`` consecutive items with the ``T`` items that follow it as targets
  (Caser's training scheme; sequences shorter than ``L + T`` give one left-padded window).

Negatives (the paper's Eq. 2): one per positive, uniform over items the user has not interacted with in its
training sequence, drawn vectorised with rejection.

The baseline draws mini-batches that mix users (:meth:`TrainSampler.epoch`); TP draws one user's mini-batch
(:meth:`TrainSampler.user_batch`). Both go through the same code path and the same negative sampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from tplib.data.dataset import SeqDataset, Split


@dataclass(frozen=True)
class Batch:
    seqs: torch.Tensor  # (B, L) int64 input items, left-padded with 0
    pos: torch.Tensor  # (B, M) int64 targets (M = L for "sequence", T for "window"); 0 = no target
    neg: torch.Tensor  # (B, M) int64 sampled negatives (0 where pos is 0)
    users: torch.Tensor  # (B,) int64 user indices


def left_pad(seqs: list[np.ndarray], width: int) -> np.ndarray:
    """The last ``width`` items of each sequence, left-padded with 0 -> (B, width) int64."""
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-width:]
        if len(s):
            out[r, width - len(s) :] = s
    return out


class TrainSampler:
    def __init__(
        self,
        ds: SeqDataset,
        split: Split,
        input_len: int,
        mode: str,
        rng: np.random.Generator,
        targets: int = 3,
        device: torch.device | str = "cpu",
    ) -> None:
        if mode not in ("sequence", "window"):
            raise ValueError(f"mode must be 'sequence' or 'window', got {mode!r}")
        self.mode, self.rng, self.device = mode, rng, torch.device(device)
        self.n_items = ds.n_items
        self.users = split.existing  # (U,) user indices of the training users
        train = [ds.seq(u)[:-2] for u in self.users]

        # Sorted keys user * (n_items + 1) + item of every training interaction, for rejection sampling.
        stride = ds.n_items + 1
        keys = np.concatenate([u * stride + t for u, t in zip(self.users, train)]) if train else np.zeros(0)
        self._keys = np.unique(keys.astype(np.int64))
        self._stride = stride

        if mode == "sequence":
            self.inputs = left_pad([t[:-1] for t in train], input_len)  # (U, L)
            self.targets = left_pad([t[1:] for t in train], input_len)  # (U, L)
            self.unit_user = self.users.astype(np.int64)  # one row per user
            self._first = np.arange(len(self.users))
            self._count = np.ones(len(self.users), dtype=np.int64)
        else:
            rows_in, rows_tg, owner, first, count = [], [], [], [], []
            for u, t in zip(self.users, train):
                first.append(len(owner))
                n = max(1, len(t) - input_len - targets + 1)
                padded = np.concatenate([np.zeros(max(0, input_len + targets - len(t)), np.int64), t])
                idx = np.arange(n)[:, None]
                rows_in.append(padded[idx + np.arange(input_len)])
                rows_tg.append(padded[idx + input_len + np.arange(targets)])
                owner.extend([u] * n)
                count.append(n)
            self.inputs = np.concatenate(rows_in) if rows_in else np.zeros((0, input_len), np.int64)
            self.targets = np.concatenate(rows_tg) if rows_tg else np.zeros((0, targets), np.int64)
            self.unit_user = np.asarray(owner, dtype=np.int64)
            self._first = np.asarray(first, dtype=np.int64)
            self._count = np.asarray(count, dtype=np.int64)

    def mean_user_targets(self, max_size: int) -> float:
        """The mean over training users of the real targets in one user's mini-batch (:meth:`user_batch` with
        ``max_size``; a user with more rows than that contributes that share of its targets). Deterministic."""
        per_row = (self.targets != 0).sum(1)
        per_user = np.add.reduceat(per_row, self._first) if len(per_row) else np.zeros(0)
        share = np.minimum(1.0, max_size / np.maximum(self._count, 1))
        return float((per_user * share).mean()) if len(per_user) else 1.0

    @property
    def n_units(self) -> int:
        """Rows in one epoch: users ("sequence") or windows ("window")."""
        return len(self.inputs)

    def sample_negatives(self, users: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """One negative per positive: uniform over 1..n_items minus the user's training items."""
        neg = self.rng.integers(1, self.n_items + 1, size=pos.shape)
        owner = np.broadcast_to(users[:, None], pos.shape)
        bad = self._seen(owner, neg)
        for _ in range(1000):
            if not bad.any():
                break
            neg[bad] = self.rng.integers(1, self.n_items + 1, size=int(bad.sum()))
            bad[bad] = self._seen(owner[bad], neg[bad])
        neg[pos == 0] = 0
        return neg

    def _seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self._stride + items
        idx = np.searchsorted(self._keys, keys)
        idx = np.minimum(idx, len(self._keys) - 1)
        return self._keys[idx] == keys

    def batch(self, rows: np.ndarray) -> Batch:
        users = self.unit_user[rows]
        pos = self.targets[rows]
        neg = self.sample_negatives(users, pos)
        d = self.device
        return Batch(
            seqs=torch.from_numpy(self.inputs[rows]).to(d),
            pos=torch.from_numpy(pos).to(d),
            neg=torch.from_numpy(neg).to(d),
            users=torch.from_numpy(users).to(d),
        )

    def epoch(self, batch_size: int) -> Iterator[Batch]:
        """The baseline's epoch: every row once, in a random order, in mini-batches that mix users."""
        order = self.rng.permutation(self.n_units)
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])

    def user_rows(self, i: int, max_size: int) -> np.ndarray:
        """Rows of the i-th training user (``self.users[i]``): all of them, or a random ``max_size`` subset."""
        first, count = self._first[i], self._count[i]
        if count <= max_size:
            return np.arange(first, first + count)
        return first + self.rng.choice(count, size=max_size, replace=False)

    def user_batch(self, i: int, max_size: int) -> Batch:
        """TP's inner mini-batch: L-length subsequences (with their next items) of ONE user."""
        return self.batch(self.user_rows(i, max_size))

    def user_batches(self, idx: np.ndarray, max_size: int) -> list[Batch]:
        """:meth:`user_batch` for each training user in ``idx``, with one negative-sampling call for all of them
        (TP's vectorised chains: one call instead of one per user). Each batch has the same distribution as
        :meth:`user_batch`'s, but the generator's draws are consumed in another order, so the values differ from
        calling it user by user."""
        b, counts = self.user_batches_flat(idx, max_size)
        cuts = np.cumsum(counts)[:-1].tolist()
        fields = (b.seqs, b.pos, b.neg, b.users)
        return [Batch(*parts) for parts in zip(*(t.tensor_split(cuts) for t in fields))]

    def user_batches_flat(self, idx: np.ndarray, max_size: int) -> tuple[Batch, np.ndarray]:
        """:meth:`user_batches` as one batch: the users' mini-batches one after another, and each one's number of
        rows (``len(idx)``,). The same draws as :meth:`user_batches`, which splits this batch."""
        rows = [self.user_rows(int(i), max_size) for i in idx]
        return self.batch(np.concatenate(rows)), np.array([len(r) for r in rows], dtype=np.int64)
