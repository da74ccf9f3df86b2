"""Full-ranking evaluation on a model whose scores are set by hand (the shared interface, not a mock of a
backbone: it checks the evaluation's inputs, masking and grouping)."""

import numpy as np
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


def _two_existing_one_new():
    return Split(existing=np.array([0, 1]), new=np.array([2]), existing_head=np.array([1]), new_head=np.array([]))


def test_validation_ranks_the_second_to_last_item_from_the_items_before_it():
    """validation_ranks: input seq[:-2], target seq[-2] (never the test item seq[-1])."""
    from tplib.evaluate import validation_ranks

    ds = dataset()
    table = np.zeros((3, 7))
    table[0] = [0, 1, 2, 6, 3, 5, 4]  # user 0 [1, 2, 3, 4]: target 3 (6) first; the test item 4 (3) would be 4th
    table[1] = [0, 9, 1, 2, 3, 4, 5]  # user 1 [5, 4, 3, 2, 1]: target 2 (1) last (6th); the test item 1 first
    m = TableModel(table)
    ranks = validation_ranks(m, ds, _two_existing_one_new(), False, 16)
    assert ranks.tolist() == [1, 6]
    seqs, users = m.calls[0]
    assert seqs.tolist() == [[0, 0, 1, 2], [0, 5, 4, 3]] and users.tolist() == [0, 1]


def test_validation_masks_the_input_history_only():
    """mask_seen at validation removes seq[:-2]; the test item seq[-1] stays a competitor (it is not seen yet)."""
    from tplib.evaluate import validation_ranks

    ds = dataset()
    table = np.zeros((3, 7))
    table[0] = [0, 9, 9, 5, 7, 1, 1]  # user 0: input [1, 2] masked; the test item 4 (7) beats the target 3 (5)
    table[1] = [0, 8, 7, 9, 9, 9, 1]  # user 1: input [5, 4, 3] masked; the test item 1 (8) beats the target 2 (7)
    m = TableModel(table)
    assert validation_ranks(m, ds, _two_existing_one_new(), True, 16).tolist() == [2, 2]
    # unmasked: user 0's items 1, 2 (9) and 4 (7) beat 3; user 1's items 1 (8) and 3, 4, 5 (9) beat 2
    assert validation_ranks(m, ds, _two_existing_one_new(), False, 16).tolist() == [4, 5]


def test_new_users_are_ranked_as_never_trained():
    """ranks_on_test: existing users pass their index, new users −1 (trained=False: e.g. Caser's unseen user)."""
    ds = dataset()
    table = np.tile(np.arange(7.0), (4, 1))  # rows 0-2: the users' own; row 3 (= index −1): the unseen user
    table[3] = [0, 0, 9, 1, 1, 1, 0]  # new user 2 [6, 1, 2]: target 2 scores highest as an unseen user
    m = TableModel(table)
    ranks = ranks_on_test(m, ds, _two_existing_one_new(), True, 16)
    assert [c[1].tolist() for c in m.calls] == [[0, 1], [-1]]
    # existing (by their own rows, arange): user 0 target 4 given [1, 2, 3]: 5, 6 beat it; user 1 target 1
    # given [5, 4, 3, 2]: 6 beats it; new user 2 target 2 given [6, 1] with row −1: first (as trained, row 2: 4th)
    assert ranks["rank"].tolist() == [3, 2, 1]


def test_ranks_are_computed_in_eval_mode():
    """rank_users switches dropout off (deterministic ranks, equal to eval mode's) and restores the mode after."""
    from tplib.config import ModelConfig
    from tplib.models import build_model

    rng = np.random.default_rng(0)
    ds = SeqDataset.from_sequences("t", [rng.choice(np.arange(1, 61), 12, replace=False) for _ in range(30)], 60)
    torch.manual_seed(0)
    m = build_model("sasrec", ds.n_items, ds.n_users, ModelConfig(d=16, max_len=10, dropout=0.5))
    users = np.arange(30)
    want = rank_users(m.eval(), ds, users, 2, trained=True)
    assert not m.training
    m.train()
    for seed in (1, 2):
        torch.manual_seed(seed)
        assert rank_users(m, ds, users, 2, trained=True).tolist() == want.tolist()
        assert m.training
