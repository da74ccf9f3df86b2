import numpy as np
import pytest
import torch

from tplib.data.dataset import SeqDataset, make_split
from tplib.data.sampler import TrainSampler, left_pad


def tiny_dataset(n_users=20, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(10, 25), replace=False) for _ in range(n_users)]
    return SeqDataset.from_sequences("tiny", seqs, n_items)


def test_left_pad():
    out = left_pad([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], 2)
    assert out.tolist() == [[2, 3], [0, 4], [0, 0]]


def test_sequence_rows_are_aligned_next_item_targets():
    ds = tiny_dataset()
    split = make_split(ds, 0)
    s = TrainSampler(ds, split, 8, "sequence", np.random.default_rng(0))
    assert s.n_units == len(split.existing)
    for i, u in enumerate(split.existing):
        train = ds.seq(u)[:-2]
        assert s.inputs[i].tolist() == left_pad([train[:-1]], 8)[0].tolist()
        assert s.targets[i].tolist() == left_pad([train[1:]], 8)[0].tolist()


def test_windows_cover_the_training_sequence():
    ds = tiny_dataset()
    split = make_split(ds, 0)
    s = TrainSampler(ds, split, 5, "window", np.random.default_rng(0), targets=3)
    u0 = split.existing[0]
    train = ds.seq(u0)[:-2]
    rows = s.user_rows(0, 10_000)
    assert len(rows) == len(train) - 5 - 3 + 1
    assert s.inputs[rows[0]].tolist() == train[:5].tolist()
    assert s.targets[rows[0]].tolist() == train[5:8].tolist()
    assert s.targets[rows[-1]].tolist() == train[-3:].tolist()
    assert (s.unit_user[rows] == u0).all()


def test_negatives_avoid_the_users_training_items():
    ds = tiny_dataset(n_items=30)
    split = make_split(ds, 0)
    s = TrainSampler(ds, split, 10, "sequence", np.random.default_rng(1))
    for batch in s.epoch(4):
        for r in range(len(batch.users)):
            u = int(batch.users[r])
            seen = set(ds.seq(u)[:-2].tolist())
            pos, neg = batch.pos[r], batch.neg[r]
            assert ((neg == 0) == (pos == 0)).all()
            assert not (set(neg[neg > 0].tolist()) & seen)
            assert neg.max() <= ds.n_items


def test_epoch_visits_every_row_once_and_mixes_users():
    ds = tiny_dataset()
    split = make_split(ds, 0)
    s = TrainSampler(ds, split, 5, "window", np.random.default_rng(2))
    seen_users = [set(b.users.tolist()) for b in s.epoch(16)]
    assert sum(len(b.users) for b in s.epoch(16)) == s.n_units
    assert max(len(x) for x in seen_users) > 1


def test_user_batch_is_one_user_and_capped():
    ds = tiny_dataset()
    split = make_split(ds, 0)
    s = TrainSampler(ds, split, 3, "window", np.random.default_rng(3), targets=2)
    b = s.user_batch(2, max_size=4)
    assert len(b.users) == 4 and set(b.users.tolist()) == {int(split.existing[2])}


@pytest.mark.parametrize("mode", ["sequence", "window"])
def test_user_batches_are_user_batch_drawn_at_once(mode):
    # TP's vectorised chains draw all users' mini-batches in one call: per user the same rows (and the same cap)
    # as user_batch, negatives from the same distribution (not the user's training items, 0 where no target)
    ds = tiny_dataset()
    split = make_split(ds, 0)
    s = TrainSampler(ds, split, 3, mode, np.random.default_rng(3), targets=2)
    one = TrainSampler(ds, split, 3, mode, np.random.default_rng(3), targets=2)
    idx = np.array([2, 0, 2, 5])
    got = s.user_batches(idx, max_size=4)
    assert len(got) == 4
    for i, b in zip(idx, got):
        ref = one.user_batch(int(i), max_size=10_000)
        assert set(b.users.tolist()) == {int(split.existing[i])} and len(b.users) == min(4, len(ref.users))
        rows = {tuple(r) for r in ref.seqs.tolist()}
        assert {tuple(r) for r in b.seqs.tolist()} <= rows and b.pos.shape == (len(b.users), ref.pos.shape[1])
        seen = set(ds.seq(int(split.existing[i]))[:-2].tolist())
        assert ((b.neg == 0) == (b.pos == 0)).all() and not (set(b.neg[b.neg > 0].tolist()) & seen)


def test_same_seed_same_batches():
    ds = tiny_dataset()
    split = make_split(ds, 0)
    a = [b.neg for b in TrainSampler(ds, split, 8, "sequence", np.random.default_rng(7)).epoch(5)]
    b = [b.neg for b in TrainSampler(ds, split, 8, "sequence", np.random.default_rng(7)).epoch(5)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_bad_mode():
    ds = tiny_dataset()
    with pytest.raises(ValueError, match="mode"):
        TrainSampler(ds, make_split(ds, 0), 5, "bogus", np.random.default_rng(0))


def test_negatives_cover_every_unseen_item_up_to_the_highest_id():
    """sample_negatives draws uniformly from 1..n_items inclusive, minus the user's training items: a user who
    trained on 1..7 of 8 items gets only item 8; one who trained on 1..3 gets each of 4..8 and nothing else; one
    who trained on item 1 only gets each of 2..8 about 1/7 of the time (the highest id as often as the others)."""
    from tplib.data.dataset import Split

    seqs = [np.array([1, 2, 3, 4, 5, 6, 7, 1, 2]), np.array([1, 2, 3, 1, 2]), np.array([1, 8, 7]),
            np.array([8, 7, 6])]
    ds = SeqDataset.from_sequences("t", seqs, 8)
    split = Split(existing=np.array([0, 1, 2]), new=np.array([3]), existing_head=np.array([0]), new_head=np.array([]))
    s = TrainSampler(ds, split, 4, "sequence", np.random.default_rng(0))
    pos = np.ones((3, 7001), dtype=np.int64)
    pos[:, -1] = 0  # no target: no negative
    neg = s.sample_negatives(np.array([0, 1, 2]), pos)
    assert set(neg[0, :-1].tolist()) == {8} and set(neg[1, :-1].tolist()) == {4, 5, 6, 7, 8}
    assert neg[:, -1].tolist() == [0, 0, 0]
    freq = np.bincount(neg[2, :-1], minlength=9)[1:] / 7000  # items 1..8; ±0.013 is over 3 standard deviations
    assert freq[0] == 0 and np.abs(freq[1:] - 1 / 7).max() < 0.013, freq
