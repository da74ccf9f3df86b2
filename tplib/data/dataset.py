"""The processed dataset, and the per-seed split into existing/new and head/tail users.

A prepared dataset is a folder with

- ``dataset.npz``: ``offsets`` (U+1,) int64 and ``items`` (N,) int64 — user ``u``'s chronological item
  sequence is ``items[offsets[u]:offsets[u+1]]``; items are 1..n_items (0 is padding); plus ``user_ids`` (U,)
  and ``item_ids`` (n_items+1,) with the raw ids (``item_ids[0] == ""``);
- ``stats.json``: the Table 2 statistics (``users``, ``items``, ``interactions``, ...) and provenance.

Protocol (docs/method.md): per seed, 20% of the users are new (never trained on, evaluated on their last
item), 80% existing (last item = test, second-to-last = validation, rest = training). Inside each group the 20%
of users with the most interactions are head users; ties are broken by user index (lower index first), so the
split is a pure function of the data and the seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tplib.io import DataError, atomic_write_npz, atomic_write_text


@dataclass(frozen=True)
class SeqDataset:
    name: str
    n_items: int
    offsets: np.ndarray  # (U+1,) int64
    items: np.ndarray  # (N,) int64, values in 1..n_items
    user_ids: np.ndarray  # (U,) raw user ids (str)
    item_ids: np.ndarray  # (n_items+1,) raw item ids (str); [0] is "" (padding)

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_interactions(self) -> int:
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def seq(self, u: int) -> np.ndarray:
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    @classmethod
    def from_sequences(
        cls, name: str, seqs: list[np.ndarray], n_items: int, user_ids=None, item_ids=None
    ) -> SeqDataset:
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]) if seqs else np.zeros(0, np.int64)
        if user_ids is None:
            user_ids = np.array([str(i) for i in range(len(seqs))])
        if item_ids is None:
            item_ids = np.array([""] + [str(i) for i in range(1, n_items + 1)])
        return cls(name, int(n_items), offsets, items, np.asarray(user_ids), np.asarray(item_ids))

    def stats(self) -> dict[str, Any]:
        """Table 2's columns."""
        u, i, n = self.n_users, self.n_items, self.n_interactions
        return {
            "users": u,
            "items": i,
            "interactions": n,
            "records_per_user": round(n / u, 2) if u else 0.0,
            "records_per_item": round(n / i, 2) if i else 0.0,
            "density_percent": round(100.0 * n / (u * i), 3) if u and i else 0.0,
        }

    def save(self, out: str | Path, extra_stats: dict[str, Any] | None = None) -> None:
        """Write ``dataset.npz`` and ``stats.json`` atomically (``stats.json`` last: its presence marks a
        complete folder)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_npz(
            out / "dataset.npz",
            offsets=self.offsets,
            items=self.items,
            user_ids=self.user_ids.astype(str),
            item_ids=self.item_ids.astype(str),
            name=np.array(self.name),
        )
        stats = {"dataset": self.name, **self.stats(), **(extra_stats or {})}
        atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> SeqDataset:
        folder = Path(folder)
        npz, stats = folder / "dataset.npz", folder / "stats.json"
        for f in (npz, stats):
            if not f.is_file():
                raise DataError(f"{f}: not found; run `tp prepare --out {folder}` first")
        try:
            with np.load(npz, allow_pickle=False) as z:
                ds = cls(
                    name=str(z["name"]),
                    n_items=len(z["item_ids"]) - 1,
                    offsets=z["offsets"].astype(np.int64),
                    items=z["items"].astype(np.int64),
                    user_ids=z["user_ids"],
                    item_ids=z["item_ids"],
                )
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{npz}: unreadable ({e}); delete it and run `tp prepare` again") from None
        return ds


@dataclass(frozen=True)
class Split:
    """Users of one seed. All arrays hold user indices, sorted ascending."""

    existing: np.ndarray
    new: np.ndarray
    existing_head: np.ndarray  # subset of existing
    new_head: np.ndarray  # subset of new

    def group(self, which: str) -> np.ndarray:
        return {"existing": self.existing, "new": self.new}[which]

    def head_mask(self, which: str) -> np.ndarray:
        """Boolean mask aligned with ``group(which)``: True for head users."""
        users = self.group(which)
        head = self.existing_head if which == "existing" else self.new_head
        return np.isin(users, head)

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k).tolist() for k in ("existing", "new", "existing_head", "new_head")})


def head_users(users: np.ndarray, lengths: np.ndarray, head_frac: float) -> np.ndarray:
    """The top ``round(head_frac * len(users))`` users by interaction count; ties go to the lower
    user index. Returns sorted user indices."""
    users = np.asarray(users)
    n_head = int(round(head_frac * len(users)))
    order = np.lexsort((users, -lengths[users]))  # primary: count descending; secondary: user index ascending
    return np.sort(users[order[:n_head]])


def make_split(ds: SeqDataset, seed: int, new_frac: float = 0.2, head_frac: float = 0.2) -> Split:
    """The per-seed existing/new split (a random permutation from ``seed``) and head/tail inside each group."""
    if ds.n_users < 2:
        raise DataError(f"dataset {ds.name!r} has {ds.n_users} user(s); at least 2 are needed to split")
    if ds.lengths.min() < 3:
        raise DataError(
            f"dataset {ds.name!r} has users with fewer than 3 interactions; every user needs training, "
            "validation and test items (the paper's filter keeps users with >= 10)"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    perm = rng.permutation(ds.n_users)
    n_new = max(1, int(round(new_frac * ds.n_users)))
    new = np.sort(perm[:n_new])
    existing = np.sort(perm[n_new:])
    lengths = ds.lengths
    return Split(
        existing=existing,
        new=new,
        existing_head=head_users(existing, lengths, head_frac),
        new_head=head_users(new, lengths, head_frac),
    )
