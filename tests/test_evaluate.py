"""Full-ranking evaluation on a model whose scores are set by hand (the shared interface, not a mock of a
backbone: it checks the evaluation's inputs, masking and grouping)."""

import numpy as np
import pytest
import torch

from tplib.data.dataset import SeqDataset, Split
from tplib.evaluate import metrics_by_group, rank_users, ranks_on_test
from tplib.models.base import SeqRecModel


class TableModel(SeqRecModel):
    """score_all(encode(seqs, users)) = table[user]; records what it was given."""

    all_positions = False
    input_len = 4

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32), requires_grad=False)
        self.calls = []

    def encode(self, seqs, users):
        self.calls.append((seqs.clone(), users.clone()))
        return users[:, None].float()

    def score_all(self, h):
        return self.table[h[:, 0].long()]


def dataset():
    # 3 users over 6 items
    seqs = [np.array([1, 2, 3, 4]), np.array([5, 4, 3, 2, 1]), np.array([6, 1, 2])]
    return SeqDataset.from_sequences("t", seqs, 6)


def test_inputs_targets_and_masking():
    ds = dataset()
    # user 0: test target 4, input [1, 2, 3]; scores make items 1..3 (seen) beat it, item 5 too
    table = np.zeros((3, 7))
    table[0] = [9, 8, 8, 8, 5, 7, 1]  # col 0 is padding
    table[1] = [0, 1, 2, 3, 4, 5, 6]
    table[2] = [0, 1, 2, 3, 4, 5, 6]
    m = TableModel(table)
    masked = rank_users(m, ds, np.array([0]), 1, trained=True, mask_seen=True)
    assert masked.tolist() == [2]  # items 1-3 masked, padding never counts, item 5 (7 > 5) beats it
    unmasked = rank_users(m, ds, np.array([0]), 1, trained=True, mask_seen=False)
    assert unmasked.tolist() == [5]  # items 1, 2, 3 and 5
    seqs, users = m.calls[0]
    assert seqs.tolist() == [[0, 1, 2, 3]] and users.tolist() == [0]


def test_validation_target_is_second_to_last_and_unseen_users_are_minus_one():
    ds = dataset()
    m = TableModel(np.tile(np.arange(7.0), (3, 1)))
    m.table.data[-1] = torch.arange(7.0)  # row -1 == row 2
    ranks = rank_users(m, ds, np.array([1]), 2, trained=False, mask_seen=True)
    # user 1 valid: input [5, 4, 3], target 2; candidates 1, 2, 6 (3-5 masked) -> 6 beats 2 -> rank 2
    assert ranks.tolist() == [2]
    seqs, users = m.calls[0]
    assert seqs.tolist() == [[0, 5, 4, 3]] and users.tolist() == [-1]


def test_batches_give_the_same_ranks():
    rng = np.random.default_rng(0)
    ds = dataset()
    m = TableModel(rng.normal(size=(3, 7)))
    users = np.array([0, 1, 2])
    a = rank_users(m, ds, users, 1, trained=True, batch_users=1)
    b = rank_users(m, ds, users, 1, trained=True, batch_users=1024)
    assert a.tolist() == b.tolist()


def test_groups_head_and_tail():
    ds = dataset()
    m = TableModel(np.tile(np.arange(7.0), (3, 1)))
    split = Split(existing=np.array([0, 1]), new=np.array([2]), existing_head=np.array([1]), new_head=np.array([]))
    ranks = ranks_on_test(m, ds, split, True, 16)
    assert ranks["group"].tolist() == ["existing", "existing", "new"]
    assert ranks["head"].tolist() == [False, True, False]
    metrics = metrics_by_group(ranks, (1, 10))
    assert metrics["existing"]["head"]["users"] == 1 and metrics["existing"]["tail"]["users"] == 1
    assert metrics["new"]["all"]["users"] == 1 and metrics["new"]["head"]["users"] == 0
    # new user 2: input [6, 1], target 2; candidates 2..5 -> 3, 4, 5 score higher -> rank 4
    assert ranks["rank"].tolist()[2] == 4
    assert metrics["new"]["all"]["HR@10"] == 1.0 and metrics["new"]["all"]["HR@1"] == 0.0
    assert np.isnan(metrics["new"]["head"]["HR@10"])
