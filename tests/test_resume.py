"""A killed run resumes from its last validation and ends exactly where an uninterrupted run ends."""

import json

import pytest
import torch
from test_determinism import synthetic

import tplib.train.loop as loop
import tplib.train.methods as methods
from tplib.config import build_config, parse_sets
from tplib.train.loop import RESUME, fit

SETS = ["train.max_epochs=4", "train.eval_every=1", "model.max_len=20", "tp.diag_every=1"]


class Killed(Exception):
    pass


def kill_at_epoch(monkeypatch, n: int) -> None:
    """Make the n-th call of the updater's run_epoch raise, as a kill in the middle of epoch n would."""
    make = methods.make_updater

    def make_killable(*args):
        updater = make(*args)
        run_epoch, calls = updater.run_epoch, [0]

        def run(*a):
            calls[0] += 1
            if calls[0] == n:
                raise Killed
            return run_epoch(*a)

        updater.run_epoch = run
        return updater

    monkeypatch.setattr(methods, "make_updater", make_killable)


def killed_fit(monkeypatch, cfg, ds, out, at: int = 3) -> None:
    """``fit`` killed in the middle of epoch ``at``."""
    with monkeypatch.context() as m:
        kill_at_epoch(m, at)
        with pytest.raises(Killed):
            fit(cfg, ds, out)


def finished(run):
    state = torch.load(run / "model.pt", weights_only=False)
    log = [line.split(",") for line in (run / "train_log.csv").read_text().splitlines()]
    cols = [i for i, c in enumerate(log[0]) if not c.endswith("seconds")]  # timings differ from run to run
    return state, [[r[i] for i in cols] for r in log], json.loads((run / "train_summary.json").read_text())


@pytest.mark.parametrize("backbone, method", [("sasrec", "baseline"), ("gru4rec", "tp"), ("caser", "tp")])
def test_killed_run_resumes_to_the_same_numbers(tmp_path, monkeypatch, backbone, method):
    ds = synthetic()
    cfg = build_config(backbone, method, 3, ds.name, parse_sets(SETS))
    fit(cfg, ds, tmp_path / "straight")

    killed_fit(monkeypatch, cfg, ds, tmp_path / "killed")
    assert (tmp_path / "killed" / RESUME).is_file() and not (tmp_path / "killed" / "train_summary.json").exists()
    (tmp_path / "killed" / "model.pt").unlink()  # Snakemake deletes an unfinished job's outputs
    fit(cfg, ds, tmp_path / "killed")

    a, b = finished(tmp_path / "straight"), finished(tmp_path / "killed")
    assert a[1] == b[1]  # every epoch's losses and validation metrics, to the last digit
    assert a[0]["epoch"] == b[0]["epoch"]
    for name, t in a[0]["state_dict"].items():
        assert torch.equal(t, b[0]["state_dict"][name]), name
    assert b[2]["resumed_at_epochs"] == [2] and a[2]["resumed_at_epochs"] == []
    assert b[2]["epochs_run"] == a[2]["epochs_run"] == 4
    assert not (tmp_path / "killed" / RESUME).exists()  # a finished run keeps no resume state


def test_resume_state_of_another_config_is_ignored(tmp_path, monkeypatch):
    ds = synthetic()
    cfg = build_config("sasrec", "baseline", 3, ds.name, parse_sets(SETS))
    killed_fit(monkeypatch, cfg, ds, tmp_path / "run")
    other = build_config("sasrec", "baseline", 3, ds.name, parse_sets([*SETS, "train.lr=0.002"]))
    summary = fit(other, ds, tmp_path / "run")
    assert summary["resumed_at_epochs"] == [] and summary["epochs_run"] == 4
    fit(other, ds, tmp_path / "fresh")
    assert finished(tmp_path / "run")[1] == finished(tmp_path / "fresh")[1]


def test_resume_state_written_before_a_setting_existed_is_resumed(tmp_path, monkeypatch):
    """A resume state whose config lacks a setting (written before the setting existed) ran with the setting's
    default, so a run at that default resumes from it, to the same numbers; at another value it starts afresh."""
    ds = synthetic()
    cfg = build_config("gru4rec", "tp", 3, ds.name, parse_sets(SETS))
    fit(cfg, ds, tmp_path / "straight")
    killed_fit(monkeypatch, cfg, ds, tmp_path / "run")
    saved = torch.load(tmp_path / "run" / RESUME, weights_only=False)
    assert saved["config"]["tp"].pop("align") is True
    torch.save(saved, tmp_path / "run" / RESUME)
    summary = fit(cfg, ds, tmp_path / "run")
    assert summary["resumed_at_epochs"] == [2]
    assert finished(tmp_path / "run")[1] == finished(tmp_path / "straight")[1]

    killed_fit(monkeypatch, cfg, ds, tmp_path / "other")
    torch.save(saved, tmp_path / "other" / RESUME)
    noalign = build_config("gru4rec", "tp", 3, ds.name, parse_sets([*SETS, "tp.align=false"]))
    assert fit(noalign, ds, tmp_path / "other")["resumed_at_epochs"] == []


def test_no_resume_starts_from_scratch(tmp_path, monkeypatch):
    ds = synthetic()
    cfg = build_config("sasrec", "baseline", 3, ds.name, parse_sets(SETS))
    killed_fit(monkeypatch, cfg, ds, tmp_path / "run")
    assert fit(cfg, ds, tmp_path / "run", resume=False)["resumed_at_epochs"] == []


def test_an_early_stopped_run_resumes_to_its_end(tmp_path, monkeypatch):
    """Killed after the evaluation that stopped it (before the summary): resuming trains no further epoch."""
    ds = synthetic()
    sets = [*SETS, "train.max_epochs=30", "train.patience=0", "train.lr=0.05"]
    cfg = build_config("sasrec", "baseline", 3, ds.name, parse_sets(sets))
    straight = fit(cfg, ds, tmp_path / "straight")
    assert straight["epochs_run"] < 30  # the setting does stop early
    monkeypatch.setattr(loop, "atomic_write_text", _fail_on_summary(loop.atomic_write_text))
    with pytest.raises(Killed):
        fit(cfg, ds, tmp_path / "killed")
    monkeypatch.undo()
    resumed = fit(cfg, ds, tmp_path / "killed")
    assert resumed["resumed_at_epochs"] == [straight["epochs_run"]]
    assert resumed["epochs_run"] == straight["epochs_run"]
    assert finished(tmp_path / "killed")[1] == finished(tmp_path / "straight")[1]


def _fail_on_summary(write):
    def w(path, text):
        if str(path).endswith("train_summary.json"):
            raise Killed
        return write(path, text)

    return w


def test_model_pt_holds_the_best_validation_epoch(tmp_path, monkeypatch):
    """model.pt: the state, epoch and score of the best validation (epoch 2 of 4 here), not the last epoch's."""
    import copy

    import numpy as np

    ds = synthetic()
    cfg = build_config("sasrec", "baseline", 3, ds.name, parse_sets([*SETS, "train.patience=10"]))
    given = {1: 5, 2: 1, 3: 20, 4: 3}  # the rank every user gets at each epoch's validation
    states = {}
    real = loop.validation_ranks

    def fake(model, ds_, split, *a):
        epoch = len(states) + 1
        states[epoch] = copy.deepcopy(model.state_dict())
        return np.full(len(real(model, ds_, split, *a)), given[epoch])

    monkeypatch.setattr(loop, "validation_ranks", fake)
    summary = fit(cfg, ds, tmp_path / "run")
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=False)
    assert summary["best_epoch"] == ckpt["epoch"] == 2 and summary["epochs_run"] == 4
    assert ckpt["valid_score"] == 1.0  # NDCG@10 of rank 1
    for name, t in ckpt["state_dict"].items():
        assert torch.equal(t, states[2][name]), name
    assert any(not torch.equal(t, states[4][n]) for n, t in ckpt["state_dict"].items())


def test_a_resumed_run_is_its_own_seed_not_another(tmp_path, monkeypatch):
    """A killed seed-3 run resumes to seed 3's numbers, which are not seed 4's; a seed-4 run started in the
    killed seed-3 folder does not resume from seed 3's state."""
    ds = synthetic()
    sets = parse_sets([*SETS, "train.max_epochs=3"])
    cfg3, cfg4 = (build_config("gru4rec", "tp", s, ds.name, sets) for s in (3, 4))
    killed_fit(monkeypatch, cfg3, ds, tmp_path / "killed", at=2)
    fit(cfg3, ds, tmp_path / "killed")
    fit(cfg4, ds, tmp_path / "other")
    a, b = finished(tmp_path / "killed"), finished(tmp_path / "other")
    assert a[2]["resumed_at_epochs"] == [1]
    assert a[1] != b[1]
    assert any(not torch.equal(t, b[0]["state_dict"][n]) for n, t in a[0]["state_dict"].items())
    killed_fit(monkeypatch, cfg3, ds, tmp_path / "mixed", at=2)
    assert fit(cfg4, ds, tmp_path / "mixed")["resumed_at_epochs"] == []
    assert finished(tmp_path / "mixed")[1] == b[1]
