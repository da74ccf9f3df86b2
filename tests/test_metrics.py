import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tplib.metrics import hr_at, metrics_from_ranks, ndcg_at, ranks_from_scores


def test_rank_counts_strictly_better_items():
    scores = torch.tensor([[0.0, 0.9, 0.1, 0.5, 0.3]])
    # target column 3 (score 0.5): only column 1 (0.9) beats it
    assert ranks_from_scores(scores, torch.tensor([3])).tolist() == [2]
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [1]
    assert ranks_from_scores(scores, torch.tensor([0])).tolist() == [5]


def test_ties_count_against_the_target():
    scores = torch.zeros(2, 6)
    ranks = ranks_from_scores(scores, torch.tensor([2, 5]))
    assert ranks.tolist() == [6, 6]  # every other item ties, so the target comes last
    exclude = torch.zeros(2, 6, dtype=torch.bool)
    exclude[:, 0] = True
    assert ranks_from_scores(scores, torch.tensor([2, 5]), exclude).tolist() == [5, 5]


def test_untrained_constant_model_gets_zero_hr():
    n_items = 3000
    scores = torch.ones(50, n_items + 1)
    targets = torch.randint(1, n_items + 1, (50,))
    exclude = torch.zeros_like(scores, dtype=torch.bool)
    exclude[:, 0] = True
    ranks = ranks_from_scores(scores, targets, exclude).numpy()
    assert hr_at(ranks, 10) == 0.0 and ndcg_at(ranks, 20) == 0.0


def test_masking_removes_competitors_but_never_the_target():
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.5, 0.3]])
    exclude = torch.tensor([[True, True, False, True, False]])  # target 3 excluded by mistake: must still rank
    assert ranks_from_scores(scores, torch.tensor([3]), exclude).tolist() == [2]  # only item 2 (0.8) beats it


def test_hr_and_ndcg_by_hand():
    ranks = np.array([1, 2, 5, 11])
    assert hr_at(ranks, 1) == 0.25
    assert hr_at(ranks, 5) == 0.75
    assert hr_at(ranks, 10) == 0.75
    assert ndcg_at(ranks, 1) == pytest.approx(0.25)
    assert ndcg_at(ranks, 10) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 4)
    m = metrics_from_ranks(ranks, (1, 10))
    assert set(m) == {"HR@1", "NDCG@1", "HR@10", "NDCG@10", "users"} and m["users"] == 4


def test_perfect_ranking():
    ranks = np.ones(7, dtype=int)
    for n in (1, 5, 10):
        assert hr_at(ranks, n) == 1.0 and ndcg_at(ranks, n) == 1.0


def test_empty_group_is_nan():
    assert math.isnan(hr_at(np.array([]), 10)) and math.isnan(ndcg_at(np.array([]), 10))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=30), st.data())
def test_rank_matches_a_python_count(vals, data):
    t = data.draw(st.integers(0, len(vals) - 1))
    scores = torch.tensor([vals], dtype=torch.float64)
    expected = 1 + sum(1 for j, v in enumerate(vals) if j != t and v >= vals[t])
    assert ranks_from_scores(scores, torch.tensor([t])).item() == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=1, max_size=50))
def test_metrics_are_monotone_in_n(ranks):
    r = np.array(ranks)
    for a, b in ((1, 5), (5, 10), (10, 20)):
        assert hr_at(r, a) <= hr_at(r, b)
        assert ndcg_at(r, a) <= ndcg_at(r, b) <= hr_at(r, b)
