"""End to end on the shipped slice: the real `tp train`, baseline and TP, learns. After a few epochs each beats an
untrained model of the same seed by far and a popularity ranking on validation (existing users' second-to-last
items, the seen items masked as in the evaluation), so a trainer that does not learn, or learns the wrong thing,
fails here whatever its unit tests say."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tplib.cli import main
from tplib.config import build_config
from tplib.data.dataset import SeqDataset, make_split
from tplib.evaluate import validation_ranks
from tplib.metrics import metrics_from_ranks
from tplib.runtime import seed_everything
from tplib.train.loop import build_for

# epochs and settings that learn within a few seconds per epoch on two cores; the baseline with a larger step
# than its authors' 1e-3 so that it, too, gets there in a few epochs
PLANS = {"baseline": ["train.lr=0.005", "train.max_epochs=15"], "tp": ["train.max_epochs=8"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("mt-sample")
    assert main(["prepare", "--dataset", "mt-sample", "--out", str(out)]) == 0
    return out


def popularity_ndcg(ds: SeqDataset, seed: int) -> float:
    """Validation NDCG@10 of ranking by the number of existing users' training interactions, the input history
    masked, ties against the target (as tplib.metrics ranks)."""
    split = make_split(ds, seed)
    counts = np.zeros(ds.n_items + 1)
    for u in split.existing:
        np.add.at(counts, ds.seq(u)[:-2], 1)
    gains = []
    for u in split.existing:
        s = ds.seq(u)
        hist, target = s[:-2], s[-2]
        score = counts.copy()
        score[0] = -np.inf
        score[np.setdiff1d(hist, [target])] = -np.inf
        rank = int((score[1:] >= score[target]).sum())  # the target itself counts once: rank 1 = best
        gains.append(1 / np.log2(rank + 1) if rank <= 10 else 0.0)
    return float(np.mean(gains))


def untrained_ndcg(ds: SeqDataset, backbone: str, method: str, seed: int) -> float:
    cfg = build_config(backbone, method, seed, ds.name)
    seed_everything(seed)
    model = build_for(cfg, ds, torch.device("cpu"))
    model.eval()
    ranks = validation_ranks(model, ds, make_split(ds, seed), True, 1024)
    return metrics_from_ranks(ranks, (10,))["NDCG@10"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["baseline", "tp"])
@pytest.mark.parametrize("backbone", ["gru4rec", "caser", "sasrec"])
def test_training_beats_an_untrained_model_and_popularity(data, tmp_path, backbone, method):
    sets = ["train.eval_every=1", "train.progress=false", "train.threads=1", *PLANS[method]]
    args = ["train", "--data", str(data), "--backbone", backbone, "--method", method, "--seed", "0",
            "--out", str(tmp_path / "run"), *sum((["--set", s] for s in sets), [])]
    assert main(args) == 0
    trained = json.loads((tmp_path / "run" / "train_summary.json").read_text())["best_valid_NDCG@10"]
    ds = SeqDataset.load(data)
    untrained, popular = untrained_ndcg(ds, backbone, method, 0), popularity_ndcg(ds, 0)
    assert trained > 3 * untrained, (trained, untrained)
    assert trained > 1.03 * popular, (trained, popular)
