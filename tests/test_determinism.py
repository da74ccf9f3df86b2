"""One seed fixes everything: the same seed on the same device gives the same numbers."""

import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from tplib.cli import main
from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset
from tplib.evaluate import metrics_by_group
from tplib.grid import Run, config_conflicts, run_config, run_sets
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
    # the test ranks, gzipped without a time stamp: the same ranks give the same bytes
    packed = (tmp_path / "a" / "ranks.csv.gz").read_bytes()
    assert packed == (tmp_path / "b" / "ranks.csv.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b" and packed[4:8] == b"\0\0\0\0"  # gzip, mtime 0
    assert not (tmp_path / "a" / "ranks.csv").exists()
    ranks = pd.read_csv(io.BytesIO(gzip.decompress(packed)))
    assert list(ranks.columns) == ["user", "user_id", "group", "head", "rank"] and len(ranks) == ds.n_users
    assert metrics_by_group(ranks, (1, 5, 10, 15, 20)) == m1  # metrics.json is computed from these ranks
    _, log3 = run(tmp_path, "c", backbone, method, 4, ds, device, extra)
    assert [r[1] for r in log1] != [r[1] for r in log3]  # another seed: another run


# A study as the workflow runs it: `tp train --study --variant` with tplib.grid's --set list, as train.smk calls it.
STUDY_CONFIG = {
    "studies": {
        "e2e": {
            "title": "End to end", "about": "One tiny Caser run.",
            "cells": {"mt-sample": ["caser"]},
            "seeds": [1],
            "protocol": {"eval_every": 1, "patience": 10, "max_epochs": 2, "min_epochs": 0},
            "variants": {"small": {"method": "baseline", "set": {"model.d": 16}}},
        }
    },
    "overrides": {"all": {"train.progress": False}},
}


def test_cli_train_and_evaluate_end_to_end(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["prepare", "--dataset", "mt-sample", "--out", str(data)]) == 0
    stats = json.loads((data / "stats.json").read_text())
    assert (stats["users"], stats["items"], stats["interactions"]) == (450, 641, 9754)
    run = Run("e2e", "mt-sample", "caser", "small", 1)
    run_dir = tmp_path / "run"
    sets = [*run_sets(STUDY_CONFIG, run), "train.device=cpu", "train.threads=1"]
    args = ["train", "--data", str(data), "--backbone", "caser", "--method", "baseline", "--seed", "1",
            "--study", "e2e", "--variant", "small", "--out", str(run_dir), "--set", "train.threads=1"]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    for f in ("config.json", "model.pt", "train_log.csv", "train_summary.json", "run.json"):
        assert (run_dir / f).is_file(), f
    assert json.loads((run_dir / "run.json").read_text()) == {"study": "e2e", "variant": "small"}
    # what the workflow checks before it reuses a finished run: it is the run its study asks for
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["model"]["d"] == 16 and recorded["train"]["max_epochs"] == 2
    assert config_conflicts(recorded, run_config(STUDY_CONFIG, run).to_dict()) == []
    changed = {**STUDY_CONFIG, "overrides": {"all": {"train.progress": False, "train.lr": 0.01}}}
    assert config_conflicts(recorded, run_config(changed, run).to_dict()) == ["train.lr: 0.001 -> 0.01"]
    assert len(pd.read_csv(run_dir / "train_log.csv")) == 2
    assert main(["evaluate", "--data", str(data), "--run", str(run_dir), "--out", str(run_dir / "metrics.json")]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"existing", "new"}
    for group in metrics.values():
        assert set(group) == {"all", "head", "tail"}
        assert {"HR@1", "HR@10", "NDCG@10", "NDCG@20", "users"} <= set(group["all"])
    assert metrics["existing"]["all"]["users"] == 360 and metrics["new"]["all"]["users"] == 90
    assert (run_dir / "ranks.csv.gz").is_file() and (run_dir / "evaluate_config.json").is_file()
    assert len(pd.read_csv(run_dir / "ranks.csv.gz")) == 450
    # the run aggregates under its study and variant
    capsys.readouterr()
    assert main(["aggregate", "--runs", str(run_dir), "--out", str(tmp_path / "agg")]) == 0
    tidy = pd.read_csv(tmp_path / "agg" / "runs.csv")
    assert set(zip(tidy["study"], tidy["variant"], tidy["method"], tidy["seed"])) == {("e2e", "small", "baseline", 1)}
    assert set(tidy["max_epochs"]) == {2} and set(tidy["eval_every"]) == {1}
    hr10 = tidy[(tidy.group == "new") & (tidy.subset == "all") & (tidy.metric == "HR") & (tidy.N == 10)]
    assert hr10["value"].item() == pytest.approx(metrics["new"]["all"]["HR@10"])


def test_cli_train_records_a_study_without_a_variant_as_its_method(tmp_path):
    """`--study` alone: the variant is the method; no --study nor --variant (a run by hand): no run.json, and the
    aggregate takes it as study "" and its method as variant. A bad --set stops before anything is written."""
    data = tmp_path / "data"
    main(["prepare", "--dataset", "mt-sample", "--out", str(data)])
    bad = ["train", "--data", str(data), "--backbone", "sasrec", "--method", "tp", "--study", "s",
           "--out", str(tmp_path / "bad"), "--set", "train.lrr=1"]
    assert main(bad) == 2 and not (tmp_path / "bad" / "run.json").exists()
    tiny = ["--backbone", "caser", "--method", "tp", "--set", "train.max_epochs=1", "--set", "train.eval_every=1",
            "--set", "model.d=8", "--set", "train.progress=false"]
    assert main(["train", "--data", str(data), "--study", "s", "--out", str(tmp_path / "r"), *tiny]) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text()) == {"study": "s", "variant": "tp"}
    from tplib.runs import load_run

    assert main(["evaluate", "--data", str(data), "--run", str(tmp_path / "r"),
                 "--out", str(tmp_path / "r" / "metrics.json")]) == 0
    keys = load_run(tmp_path / "r")["keys"]
    assert (keys["study"], keys["variant"], keys["method"], keys["k"], keys["max_epochs"]) == ("s", "tp", "tp", 2, 1)
    (tmp_path / "r" / "run.json").unlink()
    keys = load_run(tmp_path / "r")["keys"]
    assert (keys["study"], keys["variant"]) == ("", "tp")


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


def _ranks(run_dir):
    return pd.read_csv(run_dir / "ranks.csv.gz")


def test_evaluate_splits_with_the_runs_seed(tmp_path):
    """Training and evaluate_run both use the run's own seed's split: the trained users (Caser's trained_users in
    model.pt) are that split's existing users, and the users scored as new are its new users."""
    from tplib.data.dataset import make_split

    ds = synthetic()
    split = make_split(ds, 3)
    assert split.new.tolist() != make_split(ds, 0).new.tolist()
    cfg = build_config("caser", "baseline", 3, ds.name,
                       parse_sets(["train.max_epochs=1", "model.d=8", "train.device=cpu"]))
    fit(cfg, ds, tmp_path / "r")
    trained = torch.load(tmp_path / "r" / "model.pt", weights_only=False)["state_dict"]["trained_users"]
    assert torch.nonzero(trained).flatten().tolist() == split.existing.tolist()
    evaluate_run(ds, tmp_path / "r", tmp_path / "r" / "metrics.json")
    ranks = _ranks(tmp_path / "r")
    assert sorted(ranks.loc[ranks.group == "new", "user"]) == split.new.tolist()
    assert sorted(ranks.loc[ranks.group == "existing", "user"]) == split.existing.tolist()
    assert sorted(ranks.loc[ranks["head"] & (ranks.group == "existing"), "user"]) == split.existing_head.tolist()


def test_another_seed_gives_other_parameters_and_metrics(tmp_path, monkeypatch):
    """Two seeds, two runs: other splits, parameters and metrics; and with the split pinned to one seed's, the
    seed still sets the initial parameters, the sampler's and TP's generators and so the trained parameters."""
    import copy

    from tplib.data.dataset import make_split
    from tplib.train import loop

    ds = synthetic()

    def state(name):
        return torch.load(tmp_path / name / "model.pt", weights_only=False)["state_dict"]

    def all_differ(a, b):
        return all(not torch.equal(a[n], b[n]) for n in a if a[n].is_floating_point() and a[n].numel() > 1)

    out = {}
    for seed in (3, 4):
        out[seed] = run(tmp_path, f"s{seed}", "sasrec", "tp", seed, ds, extra=("train.max_epochs=1",))
    assert out[3][0] != out[4][0]
    assert set(_ranks(tmp_path / "s3").query("group == 'new'").user) != set(
        _ranks(tmp_path / "s4").query("group == 'new'").user)
    assert all_differ(state("s3"), state("s4"))
    pinned = make_split(ds, 3)
    monkeypatch.setattr(loop, "make_split", lambda *args, **kw: pinned)
    built = {}
    build = loop.build_training

    def spy(cfg, *args):
        model, sampler, updater = build(cfg, *args)
        built[cfg.seed] = (copy.deepcopy(model.state_dict()), copy.deepcopy(sampler.rng.bit_generator.state),
                           copy.deepcopy(updater.rng.bit_generator.state))
        return model, sampler, updater

    monkeypatch.setattr(loop, "build_training", spy)
    for s in (3, 4):
        fit(build_config("sasrec", "tp", s, ds.name, parse_sets(["train.max_epochs=1", "model.max_len=20"])),
            ds, tmp_path / f"p{s}")
    # initialisation (torch's generator; LayerNorm's ones and zeros are the same for every seed)
    assert not torch.equal(built[3][0]["item_emb.weight"], built[4][0]["item_emb.weight"])
    assert built[3][1] != built[4][1] and built[3][2] != built[4][2]  # negatives; TP's user order
    assert all_differ(state("p3"), state("p4"))
