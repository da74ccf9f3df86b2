"""One seed fixes everything: the same seed on the same device gives the same numbers."""

import json

import numpy as np
import pytest
import torch

from tplib.cli import main
from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset
from tplib.run import evaluate_run
from tplib.train.loop import fit


def synthetic(n_users=40, n_items=50, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [((rng.integers(1, n_items) + np.arange(rng.integers(10, 30))) % n_items) + 1 for _ in range(n_users)]
    return SeqDataset.from_sequences("synthetic", seqs, n_items)


# CUDA runs only where a GPU is present (benchmarks/gpu_check.sh runs this file there); CPU runs everywhere.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


def run(tmp_path, name, backbone, method, seed, ds, device="cpu", extra=()):
    sets = ["train.max_epochs=2", "train.eval_every=1", "model.max_len=20", "tp.diag_every=1", f"train.device={device}",
            *extra]
    cfg = build_config(backbone, method, seed, ds.name, parse_sets(sets))
    fit(cfg, ds, tmp_path / name)
    metrics = evaluate_run(ds, tmp_path / name, tmp_path / name / "metrics.json")
    log = (tmp_path / name / "train_log.csv").read_text().splitlines()
    return metrics, [line.split(",")[:-3] for line in log]  # drop the timing columns


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "backbone, method, extra",
    [("sasrec", "baseline", ()), ("caser", "tp", ()), ("gru4rec", "tp", ()),
     ("gru4rec", "tp", ("tp.P=4",))],  # P = 4: the vectorised chains (vmap, GRU4Rec's hand-written backward)
)
def test_same_seed_same_numbers(tmp_path, backbone, method, extra, device):
    ds = synthetic()
    m1, log1 = run(tmp_path, "a", backbone, method, 3, ds, device, extra)
    m2, log2 = run(tmp_path, "b", backbone, method, 3, ds, device, extra)
    assert m1 == m2
    assert [r[1] for r in log1] == [r[1] for r in log2]  # the per-epoch training loss, to the last digit
    ranks_a = (tmp_path / "a" / "ranks.csv").read_text()
    assert ranks_a == (tmp_path / "b" / "ranks.csv").read_text()
    m3, log3 = run(tmp_path, "c", backbone, method, 4, ds, device, extra)
    assert [r[1] for r in log1] != [r[1] for r in log3]  # another seed: another run


def test_cli_train_and_evaluate_end_to_end(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["prepare", "--dataset", "mt-sample", "--out", str(data)]) == 0
    stats = json.loads((data / "stats.json").read_text())
    assert (stats["users"], stats["items"], stats["interactions"]) == (450, 641, 9754)
    run_dir = tmp_path / "run"
    args = ["train", "--data", str(data), "--backbone", "caser", "--seed", "1", "--out", str(run_dir),
            "--set", "train.max_epochs=2", "--set", "train.eval_every=1"]
    assert main(args) == 0
    for f in ("config.json", "model.pt", "train_log.csv", "train_summary.json"):
        assert (run_dir / f).is_file(), f
    assert main(["evaluate", "--data", str(data), "--run", str(run_dir), "--out", str(run_dir / "m.json")]) == 0
    metrics = json.loads((run_dir / "m.json").read_text())
    assert set(metrics) == {"existing", "new"}
    for group in metrics.values():
        assert set(group) == {"all", "head", "tail"}
        assert {"HR@1", "HR@10", "NDCG@10", "NDCG@20", "users"} <= set(group["all"])
    assert metrics["existing"]["all"]["users"] == 360 and metrics["new"]["all"]["users"] == 90
    assert (run_dir / "ranks.csv").is_file()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--set", "train.lrr=1"], "unknown config key train.lrr"),
        (["--set", "train.lr=abc"], "train.lr must be a number"),
        (["--set", "tp.k=0"], "tp.k must be >= 1"),
        (["--set", "model.dropout=1.5"], "model.dropout"),
        (["--set", "nonsense"], "key=value"),
    ],
)
def test_cli_bad_config_is_one_clear_line(tmp_path, capsys, argv, needle):
    data = tmp_path / "data"
    main(["prepare", "--dataset", "mt-sample", "--out", str(data)])
    capsys.readouterr()
    rc = main(["train", "--data", str(data), "--backbone", "sasrec", "--method", "tp", "--out", str(tmp_path / "r"),
               *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("tp: error:") and needle in err[-1]
    assert not (tmp_path / "r" / "train_summary.json").exists()


def test_cli_evaluate_refuses_an_unfinished_run(tmp_path, capsys):
    data = tmp_path / "data"
    main(["prepare", "--dataset", "mt-sample", "--out", str(data)])
    (tmp_path / "run").mkdir()
    rc = main(["evaluate", "--data", str(data), "--run", str(tmp_path / "run"), "--out", str(tmp_path / "m.json")])
    assert rc == 2 and "not a finished run" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_cli_train_on_missing_data(tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path / "nope"), "--backbone", "sasrec", "--out", str(tmp_path / "r")])
    assert rc == 2 and "dataset.npz: not found" in capsys.readouterr().err
