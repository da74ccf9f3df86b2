"""The per-seed split (tplib.data.dataset.make_split): existing/new and head/tail users (docs/method.md)."""

from __future__ import annotations

import numpy as np
import pytest

from tplib.data.dataset import SeqDataset, head_users, make_split
from tplib.io import DataError


def dataset(lengths: list[int], n_items: int = 20) -> SeqDataset:
    rng = np.random.default_rng(0)
    return SeqDataset.from_sequences("t", [rng.integers(1, n_items + 1, size=n) for n in lengths], n_items)


def lengths_with_ties(n: int) -> list[int]:
    return [3 + (u * 7) % 5 for u in range(n)]  # lengths 3..7, many ties


def check_head(group: np.ndarray, head: np.ndarray, lengths: np.ndarray) -> None:
    """head = the round(20%) users of ``group`` with the most interactions, ties to the lower user index."""
    assert np.all(np.isin(head, group)) and np.all(np.diff(head) > 0)
    assert len(head) == int(round(0.2 * len(group)))
    expect = sorted(group.tolist(), key=lambda u: (-lengths[u], u))[: len(head)]
    assert head.tolist() == sorted(expect)


@pytest.mark.parametrize("n_users", [2, 5, 10, 37, 100])
def test_existing_and_new_partition(n_users):
    ds = dataset(lengths_with_ties(n_users))
    s = make_split(ds, seed=1)
    assert len(np.intersect1d(s.existing, s.new)) == 0
    assert np.array_equal(np.union1d(s.existing, s.new), np.arange(n_users))
    assert len(s.new) == max(1, int(round(0.2 * n_users)))
    assert np.all(np.diff(s.existing) > 0) and np.all(np.diff(s.new) > 0)
    check_head(s.existing, s.existing_head, ds.lengths)
    check_head(s.new, s.new_head, ds.lengths)
    assert s.head_mask("existing").sum() == len(s.existing_head)
    assert np.array_equal(s.group("new")[s.head_mask("new")], s.new_head)


def test_head_users_hand_made():
    lengths = np.array([5, 9, 9, 3, 9, 4, 8, 9, 2, 1])
    # 10 users -> 2 head users; four users have 9 interactions: the two lowest indices (1, 2) win
    assert head_users(np.arange(10), lengths, 0.2).tolist() == [1, 2]
    # inside a group: users 0, 4, 5, 6, 7 -> 1 head user; 4 and 7 tie at 9 -> 4
    assert head_users(np.array([0, 4, 5, 6, 7]), lengths, 0.2).tolist() == [4]
    # group 0, 3, 5, 6, 8 -> 1 head user: 6 (8 interactions)
    assert head_users(np.array([0, 3, 5, 6, 8]), lengths, 0.2).tolist() == [6]


def test_head_is_inside_each_group():
    ds = dataset([10] * 8 + [3] * 12)  # the 8 long users could all land in one group
    for seed in range(5):
        s = make_split(ds, seed)
        check_head(s.existing, s.existing_head, ds.lengths)
        check_head(s.new, s.new_head, ds.lengths)


def test_deterministic_per_seed_and_differs_across_seeds():
    ds = dataset(lengths_with_ties(200))
    a, b = make_split(ds, 3), make_split(ds, 3)
    assert a.to_json() == b.to_json()
    news = {tuple(make_split(ds, seed).new.tolist()) for seed in range(6)}
    assert len(news) == 6


def test_rejects_short_users_and_tiny_datasets():
    with pytest.raises(DataError, match="fewer than 3 interactions"):
        make_split(dataset([5, 2, 7]), 0)
    with pytest.raises(DataError, match="at least 2 are needed"):
        make_split(dataset([5]), 0)
