"""tplib.tune: the search reads validation only, counts its budget in finished or pruned trials, resumes from its
storage, and writes trials.csv and best.json in the documented form; fit's validation hook can stop a trial."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from tplib.cli import main
from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset
from tplib.train.loop import fit
from tplib.io import ConfigError, DataError
from tplib.trials import IMPORTANCE_MIN_TRIALS, gather_trials, importances_of, stored_trials
from tplib.tune import check_space, suggest, tune

SPACE = {"train.lr": {"log": [1e-3, 1e-2]}, "model.d": {"int": [8, 16, 8]}, "model.dropout": {"choice": [0.0, 0.5]}}
BASE = ["train.max_epochs=2", "train.eval_every=1", "train.progress=false", "model.max_len=10"]


def tiny(seed: int = 0, test_items: int | None = None) -> SeqDataset:
    """40 users over 60 items; ``test_items``: every user's last item replaced by one it never had (a seed)."""
    rng = np.random.default_rng(seed)
    seqs = [rng.choice(np.arange(1, 51), size=rng.integers(8, 16), replace=False) for _ in range(40)]
    if test_items is not None:
        other = np.random.default_rng(test_items)
        seqs = [np.concatenate([s[:-1], [other.integers(51, 61)]]) for s in seqs]
    return SeqDataset.from_sequences("tiny", seqs, 60)


def test_trials_csv_and_best_json(tmp_path):
    table = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=3, base_sets=BASE, startup_trials=1)
    on_disk = pd.read_csv(tmp_path / "trials.csv")
    assert list(on_disk.columns) == ["study", "dataset", "backbone", "method", "trial", "state", "value", "seconds",
                                     "interrupted", "epochs", "best_epoch", "params_model.d", "params_model.dropout",
                                     "params_train.lr"]
    assert list(on_disk["trial"]) == [0, 1, 2] and set(on_disk["state"]) <= {"COMPLETE", "PRUNED"}
    assert (on_disk["seconds"] > 0).all() and len(table) == 3
    best = json.loads((tmp_path / "best.json").read_text())
    complete = on_disk[on_disk["state"] == "COMPLETE"]
    assert best["value"] == complete["value"].max()
    assert best["sets"][: len(BASE)] == BASE and set(best["params"]) == set(SPACE)
    # how much each setting mattered: not said from three trials (the best quarter would be one trial)
    assert best["importances"] == {} and importances_of(on_disk, SPACE) == {}
    # the best trial's settings, trained again as an ordinary run, give its value: a trial is a plain run
    cfg = build_config("sasrec", "baseline", 0, "tiny", parse_sets(best["sets"]))
    again = fit(cfg, tiny(), tmp_path / "again")
    assert again["best_valid_NDCG@10"] == best["value"]
    row = on_disk[on_disk["trial"] == best["trial"]].iloc[0]
    assert (row["epochs"], row["best_epoch"]) == (again["epochs_run"], again["best_epoch"])
    assert (tmp_path / "optuna.db").is_file() and not (tmp_path / "trials").exists()  # no checkpoints kept


def test_importances_from_enough_finished_trials_only():
    """PED-ANOVA shares over the searched settings once IMPORTANCE_MIN_TRIALS trials finished (pruned ones do not
    count), largest for the setting that decides the value; nothing below that."""
    rng = np.random.default_rng(0)
    rows = [{"study": "s", "state": "COMPLETE", "params_train.lr": lr, "params_model.d": int(rng.choice([8, 16])),
             "params_model.dropout": float(rng.choice([0.0, 0.5])), "value": float(np.log10(lr))}
            for lr in np.geomspace(1e-3, 1e-2, IMPORTANCE_MIN_TRIALS + 4)]
    table = pd.DataFrame(rows)
    shares = importances_of(table, SPACE)
    assert set(shares) == set(SPACE) and sum(shares.values()) == pytest.approx(1, abs=1e-3)
    assert max(shares, key=shares.get) == "train.lr"
    few = table.iloc[: IMPORTANCE_MIN_TRIALS].copy()
    few.loc[few.index[0], "state"] = "PRUNED"
    assert importances_of(few, SPACE) == {} and importances_of(table.iloc[: IMPORTANCE_MIN_TRIALS], SPACE)


def test_epochs_of_trials_that_recorded_none_come_from_their_validations(tmp_path):
    """Trials finished before a trial recorded its epochs: the last validation it reported, and the first epoch of
    its highest score (as fit keeps its best); a trial that did not finish has no best epoch."""
    from tplib.trials import trials_table

    study = optuna.create_study(direction="maximize")
    for scores, state in (({2: 0.1, 4: 0.3, 6: 0.3, 8: 0.2}, "COMPLETE"), ({2: 0.1, 4: 0.05}, "PRUNED")):
        trial = study.ask()
        for epoch, v in scores.items():
            trial.report(v, epoch)
        study.tell(trial, 0.3 if state == "COMPLETE" else None, state=optuna.trial.TrialState[state])
    table = trials_table(study, {"dataset": "d", "backbone": "b", "method": "m"})
    assert list(table["epochs"]) == [8, 4] and table.loc[0, "best_epoch"] == 4 and np.isnan(table.loc[1, "best_epoch"])


def test_the_search_never_reads_a_test_item(tmp_path):
    """Every user's last item (the test target of existing users) replaced: the same trials, the same values."""
    a = tune(tiny(), "gru4rec", "baseline", SPACE, out=tmp_path / "a", n_trials=2, base_sets=BASE)
    b = tune(tiny(test_items=7), "gru4rec", "baseline", SPACE, out=tmp_path / "b", n_trials=2, base_sets=BASE)
    assert not np.array_equal(tiny().seq(0), tiny(test_items=7).seq(0))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_a_killed_search_resumes_without_losing_finished_trials(tmp_path):
    first = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=2, base_sets=BASE)
    # a job killed in the middle of a trial leaves it RUNNING in the storage
    study = optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    study.ask()
    again = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=3, base_sets=BASE)
    assert list(again["state"]) == [*first["state"], "FAIL", "COMPLETE"]  # one more trial, the stale one failed
    assert list(again["interrupted"]) == [False, False, True, False]  # ... as stopped, not as an error
    # still in the sampler's random start-up: the resumed search does not repeat its first trial's settings
    params = [c for c in again.columns if c.startswith("params_")]
    assert not again.loc[3, params].equals(again.loc[0, params]), again[params]
    pd.testing.assert_frame_equal(again.iloc[:2].drop(columns="seconds"), first.drop(columns="seconds"),
                                  check_dtype=False)  # the failed trial has no params: a column of ints with a NaN


def test_a_killed_trial_is_tried_again_with_its_settings_from_its_checkpoint(tmp_path):
    """A job killed in the middle of a trial (no Python clean-up: the trial's folder and checkpoint survive): the
    resumed search marks it failed and runs it again with the same settings, from its last validation, so that a
    search stopped now and then does not lose its longest trials' settings."""
    sets = ["train.max_epochs=4", "train.eval_every=1", "train.progress=false", "model.max_len=10"]
    tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=1, base_sets=sets)
    study = optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trial = study.ask()
    params = suggest(trial, SPACE)

    class Killed(BaseException):  # what a kill looks like to the trial: no exception handler runs
        pass

    def kill_at_second_validation(epoch: int, score: float) -> None:
        if epoch == 2:
            raise Killed

    cfg = build_config("sasrec", "baseline", 0, "tiny", parse_sets([*sets, *(f"{k}={v}" for k, v in params.items())]))
    with pytest.raises(Killed):
        fit(cfg, tiny(), tmp_path / "trials" / "1", on_validation=kill_at_second_validation)
    assert (tmp_path / "trials" / "1" / "resume.pt").is_file()
    table = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=2, base_sets=sets)
    assert list(table["state"])[1:] == ["FAIL", "COMPLETE"] and list(table["interrupted"]) == [False, True, False]
    assert {k: table.loc[2, f"params_{k}"] for k in params} == pytest.approx(params)
    study = optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    retry = study.trials[2]
    assert retry.user_attrs["retry_of"] == 1 and retry.user_attrs["resumed_at_epochs"] == [1]  # from its checkpoint
    # the same value as the trial run through without a kill
    assert table.loc[2, "value"] == fit(cfg, tiny(), tmp_path / "whole")["best_valid_NDCG@10"]
    assert not (tmp_path / "trials").exists()


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_a_live_workers_trial_counts_and_is_tried_again_once_its_heartbeat_stops(tmp_path):
    """Two workers on one storage: a trial whose worker beats (a fresh heartbeat) is left running and counts
    towards the budget; once it is silent for the grace period it is failed and tried again with its settings, and
    the search writes its results only when no trial of it is running."""
    tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=1, base_sets=BASE)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=1,
                                         grace_period=3)
    study = optuna.load_study(study_name="tiny-sasrec-baseline", storage=storage)
    other = study.ask()  # the other worker's trial, alive for now
    params = suggest(other, SPACE)
    other.set_user_attr("heartbeat", True)
    storage.record_heartbeat(other._trial_id)
    table = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=3, base_sets=BASE, heartbeat_s=1,
                 grace_s=3)
    assert list(table["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert list(table["interrupted"]) == [False, True, False, False]
    trials = optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials
    assert "retry_of" not in trials[2].user_attrs  # not failed on sight: this worker ran a trial of its own first
    assert trials[3].user_attrs["retry_of"] == 1 and trials[3].params == pytest.approx(params)
    assert json.loads((tmp_path / "best.json").read_text())["trial"] in (0, 2, 3)


def test_a_trial_that_raises_fails_with_its_error_and_is_not_tried_again(tmp_path, monkeypatch):
    """An error (not a stop) ends the search's job with the trial failed and the error recorded; the resumed search
    does not retry it (the same settings would raise again) and reads it as failed, not interrupted."""
    import tplib.train.loop as loop

    real_fit = loop.fit

    def broken(*args, **kwargs):
        raise FloatingPointError("loss is nan")

    monkeypatch.setattr(loop, "fit", broken)
    with pytest.raises(FloatingPointError):
        tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=1, base_sets=BASE)
    monkeypatch.setattr(loop, "fit", real_fit)
    table = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=1, base_sets=BASE)
    assert list(table["state"]) == ["FAIL", "COMPLETE"] and not table["interrupted"].any()
    study = optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert study.trials[0].user_attrs["error"] == "FloatingPointError: loss is nan"
    assert "retry_of" not in study.trials[1].user_attrs


def test_a_search_in_progress_is_read_from_a_snapshot_of_its_storage(tmp_path):
    """A search short of its budget has no trials.csv: its trials so far come from its storage, untouched, a trial
    in flight as RUNNING; the finished searches' files and the storages gather into one table."""
    first = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path / "a", n_trials=2, base_sets=BASE)
    db = tmp_path / "a" / "optuna.db"
    optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{db}").ask()  # one in flight
    (tmp_path / "a" / "trials.csv").unlink()
    before = db.read_bytes()
    keys = {"dataset": "tiny", "backbone": "sasrec", "method": "baseline"}
    table = stored_trials(db, "tiny-sasrec-baseline", keys)
    assert db.read_bytes() == before  # read from a copy: the running search's file is not written
    assert list(table["state"]) == [*first["state"], "RUNNING"]
    pd.testing.assert_frame_equal(table.iloc[:2].drop(columns="seconds"), first.drop(columns="seconds"),
                                  check_dtype=False)
    tune(tiny(), "gru4rec", "baseline", SPACE, out=tmp_path / "b", n_trials=1, base_sets=BASE)
    both = gather_trials([tmp_path / "b" / "trials.csv"], [{"db": db, "name": "tiny-sasrec-baseline", **keys}])
    assert list(both["study"]) == ["tiny-gru4rec-baseline"] + ["tiny-sasrec-baseline"] * 3
    with pytest.raises(DataError, match="holds no search named 'other'"):
        stored_trials(db, "other", keys)
    with pytest.raises(DataError, match="no such search storage"):
        stored_trials(tmp_path / "missing.db", "tiny-sasrec-baseline", keys)


def test_fit_stops_where_its_validation_hook_raises(tmp_path):
    cfg = build_config("sasrec", "baseline", 0, "tiny", parse_sets([*BASE[1:], "train.max_epochs=5"]))
    seen = []

    def hook(epoch, score):
        seen.append((epoch, score))
        if epoch == 2:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        fit(cfg, tiny(), tmp_path, on_validation=hook)
    assert [e for e, _ in seen] == [1, 2] and not (tmp_path / "train_summary.json").exists()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.lrr": {"log": [1e-3, 1e-2]}}, r"unknown config key train\.lrr"),
        ({"train.lr": {"log": [0, 1e-2]}}, r"train\.lr: log needs \[low, high\]"),
        ({"train.lr": {"uniform": [0, 1]}}, r"train\.lr: expected one of log, float, int, choice"),
        ({"model.d": {"int": [50, 10]}}, r"model\.d: int needs"),
        ({"tp.P": {"choice": [1, 0]}}, r"tp\.P must be >= 1"),
    ],
)
def test_a_bad_search_space_is_named(space, message):
    with pytest.raises(ConfigError, match=message):
        check_space(space, "sasrec", "tp")


def test_cli_tune_takes_the_baselines_architecture(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    tiny().save(tmp_path / "data")
    base = tmp_path / "base"
    args = ["tune", "--data", str(tmp_path / "data"), "--backbone", "sasrec", "--trials", "1",
            *sum((["--set", s] for s in BASE), [])]
    assert main([*args, "--space", json.dumps(SPACE), "--out", str(base)]) == 0
    d = json.loads((base / "best.json").read_text())["params"]["model.d"]
    tp_space = {"tp.alpha": {"log": [0.01, 1.0]}}
    assert main([*args, "--method", "tp", "--space", json.dumps(tp_space), "--out", str(tmp_path / "tp"),
                 "--keep-from", str(base / "best.json"), "--keep", "model.d"]) == 0
    assert f"model.d={d}" in json.loads((tmp_path / "tp" / "best.json").read_text())["sets"]
    assert main([*args, "--space", "{not json", "--out", str(tmp_path / "x")]) == 2
    assert "--space: not JSON" in capsys.readouterr().err


def test_no_trial_is_pruned_before_prune_after(tmp_path):
    """The same seeded search prunes some trial at its first validations, and none when pruning starts later."""
    sets = [*BASE[1:], "train.max_epochs=4"]
    early = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path / "a", n_trials=8, base_sets=sets,
                 startup_trials=1)
    late = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path / "b", n_trials=8, base_sets=sets,
                startup_trials=1, prune_after=5)
    assert (early["state"] == "PRUNED").any()
    assert (late["state"] == "COMPLETE").all()


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_workers_share_one_search_and_its_budget(tmp_path, monkeypatch):
    """``workers`` 2: a second process runs trials of the same search at the same time (each trial records its
    worker), the budget counts both workers' trials, no setting is tried twice, and the outputs are written once
    every trial has ended. This process's trials are slowed so that the other, which must first import torch,
    gets some of them."""
    import time

    import tplib.train.loop as loop

    real_fit = loop.fit

    def slow_fit(*args, **kwargs):
        time.sleep(2)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(loop, "fit", slow_fit)
    table = tune(tiny(), "sasrec", "baseline", SPACE, out=tmp_path, n_trials=6, base_sets=BASE, heartbeat_s=1,
                 startup_trials=1, workers=2)
    assert table["state"].isin(["COMPLETE", "PRUNED"]).sum() == 6 and len(table) == 6
    trials = optuna.load_study(study_name="tiny-sasrec-baseline", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    settings = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(settings)) == len(settings)
    assert pd.read_csv(tmp_path / "trials.csv")["trial"].tolist() == list(range(6))
    assert json.loads((tmp_path / "best.json").read_text())["trial"] in table.loc[table["state"] == "COMPLETE", "trial"].tolist()


def test_cli_tune_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--data", "x", "--backbone", "sasrec", "--space", "{}", "--trials", "1", "--out", "y",
              "--workers", "0"])
    assert "--workers: expected a whole number of at least 1, got '0'" in capsys.readouterr().err
