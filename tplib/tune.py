"""Hyper-parameter search on validation (``tp tune``): the fair test gives the baseline and TP the same budget.

Optuna runs the search: a seeded TPE sampler, a median pruner fed each validation's score (existing users'
validation NDCG@10, the selection metric), and a storage that is an SQLite file by default or any Optuna storage
URL (trials of one search can then run on several machines). Every trial is an ordinary training run
(:func:`tplib.train.loop.fit`, the trainer every other run uses) in a folder of its own; its value is the run's best
validation score. Nothing here reads a test item: ``fit`` validates on the second-to-last items and never
evaluates on the last.

A search space maps ``section.key`` settings to one of ``{"log": [lo, hi]}``, ``{"float": [lo, hi]}``,
``{"int": [lo, hi, step]}`` or ``{"choice": [v, ...]}``. A search killed halfway resumes from its storage: its
finished and pruned trials are kept, a trial that was running is marked failed and tried again with the same
settings (from its last validation where its folder, with its checkpoint, survived), and only the missing trials
run, with the sampler seeded anew from the count of stored trials (so that they do not repeat the first trials'
settings). Each running trial's worker beats a heartbeat into the storage, so several workers (processes or
machines) can share one search: a trial counts as running while its heartbeat is fresh, and as killed once it
has been silent for the grace period. ``workers`` starts that many on this machine (one process each); TPE then
treats the other workers' running trials as bad ones (its constant liar), so that they do not all try the same
region. With one worker a search is a function of its seed; with several, which settings are tried depends on
which trial finishes first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset
from tplib.io import ConfigError, DataError, atomic_write_text
from tplib.trials import importances, plain_value, trials_table

log = logging.getLogger(__name__)

__all__ = ["DONE", "check_space", "search_name", "suggest", "tune"]

KINDS = ("log", "float", "int", "choice")
DONE = ("COMPLETE", "PRUNED")  # the trial states that count towards a search's budget


def search_name(tuning: str, dataset: str, backbone: str, method: str) -> str:
    """A search's name in its Optuna storage and in the ``study`` column of the trials table."""
    return f"{tuning}-{dataset}-{backbone}-{method}"


def check_space(space: dict[str, Any], backbone: str, method: str) -> None:
    """Raise ConfigError naming the first bad entry of ``space`` (an unknown setting, a malformed range)."""
    for key, spec in space.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise ConfigError(f"search space {key}: expected one of {', '.join(KINDS)} with its values, got {spec!r}")
        kind, vals = next(iter(spec.items()))
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"search space {key}: {kind} needs a list of values, got {vals!r}")
        if kind in ("log", "float") and (len(vals) != 2 or not vals[0] < vals[1] or (kind == "log" and vals[0] <= 0)):
            raise ConfigError(f"search space {key}: {kind} needs [low, high] with low < high (log: low > 0)")
        if kind == "int" and (len(vals) not in (2, 3) or not vals[0] < vals[1]):
            raise ConfigError(f"search space {key}: int needs [low, high] or [low, high, step] with low < high")
        for v in ([vals[0], vals[-1]] if kind != "choice" else vals):  # every value must make a valid config
            build_config(backbone, method, 0, "", parse_sets([f"{key}={v}"]))


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """One value per setting of ``space``, drawn by the trial (names: the settings' own ``section.key``)."""
    out: dict[str, Any] = {}
    for key, spec in space.items():
        kind, vals = next(iter(spec.items()))
        if kind == "log":
            out[key] = trial.suggest_float(key, float(vals[0]), float(vals[1]), log=True)
        elif kind == "float":
            out[key] = trial.suggest_float(key, float(vals[0]), float(vals[1]))
        elif kind == "int":
            out[key] = trial.suggest_int(key, int(vals[0]), int(vals[1]), step=int(vals[2]) if len(vals) > 2 else 1)
        else:
            out[key] = trial.suggest_categorical(key, list(vals))
    return out


HEARTBEAT_S, GRACE_S = 60, 600  # a running trial's worker writes a heartbeat this often; silent this long: dead
POLL_S = 5  # a worker with no trial left to start looks this often whether the others' have ended


def _retry(study: Any, trial: Any) -> None:
    """Try a trial that stopped without an error of its own (its job was killed) again with its settings; the
    retry reads the first try's folder, so it resumes from its checkpoint where that survived."""
    first = trial.user_attrs.get("retry_of", trial.number)
    log.warning("trial %d of %s stopped with its job: tried again with its settings", trial.number, study.study_name)
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": first})


def _storage(url: str, out: Path, heartbeat_s: float, grace_s: float):
    """The search's storage: an SQLite file in ``out`` by default; any RDB URL beats a heartbeat for each running
    trial, so that other workers on the same storage can tell a live trial from a dead one."""
    import optuna

    if not url:
        out.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(out / 'optuna.db').resolve()}"
    if "://" not in url:
        return url
    with _quiet_experimental():
        return optuna.storages.RDBStorage(url, heartbeat_interval=int(heartbeat_s), grace_period=int(grace_s),
                                          heartbeat_stale_trial_callback=_retry)


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    """Optuna warns that its heartbeat (there since 2.9) and TPE's constant liar (since 2.8) are experimental at
    every use."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def tune(
    ds: SeqDataset,
    backbone: str,
    method: str,
    space: dict[str, Any],
    *,
    out: str | Path,
    n_trials: int,
    seed: int = 0,
    base_sets: list[str] = (),
    storage: str = "",
    name: str = "",
    sampler_seed: int = 0,
    startup_trials: int = 5,
    prune_after: int = 0,
    heartbeat_s: float = HEARTBEAT_S,
    grace_s: float = GRACE_S,
    workers: int = 1,
    worker: int = 0,
) -> pd.DataFrame | None:
    """Run (or resume) the search of ``space`` for one dataset, backbone and method on the split of ``seed``, until
    ``n_trials`` trials are finished or pruned (no trial is pruned before epoch ``prune_after``, nor before
    ``startup_trials`` trials have finished); write ``out/trials.csv`` and ``out/best.json`` (the best trial's
    settings, ``base_sets`` included, and its validation score) once no trial of the search is running. Several
    workers may run one search on a shared storage (``storage``): a running trial counts towards the budget while
    its worker's heartbeat (every ``heartbeat_s``) is fresh, and is failed and tried again by whichever worker
    sees it silent for ``grace_s``. ``workers`` > 1: that many workers on this machine, this process and
    ``workers`` - 1 others it starts and waits for (``worker``: which one a process is; only worker 0 writes the
    outputs). Returns the trials table (None in workers other than 0)."""
    import optuna

    check_space(space, backbone, method)
    out = Path(out)
    name = name or f"{ds.name}-{backbone}-{method}"
    store = _storage(storage, out, heartbeat_s, grace_s)
    study = optuna.create_study(
        study_name=name,
        storage=store,
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=prune_after),
        load_if_exists=True,
    )
    # The sampler's random stream restarts with each process: seeded by the trials already stored, a resumed
    # search draws new settings instead of repeating its first ones (a fresh search: the seed itself).
    # Each worker draws from a stream of its own.
    with _quiet_experimental():
        study.sampler = optuna.samplers.TPESampler(
            seed=sampler_seed + len(study.get_trials(deepcopy=False)) + WORKER_SEED_STRIDE * worker,
            n_startup_trials=startup_trials, constant_liar=True)
    # A trial that was running when its job was killed is marked failed and tried again with the same settings
    # (from its checkpoint where its folder survived): a search that is stopped now and then (time limits, a laptop
    # going to sleep) would otherwise lose its longest trials, and with them its slow-learning settings. With a
    # heartbeat that happens once the trial is silent for grace_s (Optuna's fail_stale_trials, before each trial
    # and while waiting); a running trial without one (started without heartbeats) belongs to no live worker.
    # Only the first worker of a `tp tune` looks, before it starts the others: theirs would be in the way.
    beats = not isinstance(store, str)  # an RDB storage, built with a heartbeat
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)) if worker == 0 else ():
        if not (beats and t.user_attrs.get("heartbeat")):
            study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)
            _retry(study, t)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("heartbeat", beats)
        trial.set_user_attr("worker", worker)
        params = suggest(trial, space)
        cfg = build_config(backbone, method, seed, ds.name,
                           parse_sets([*base_sets, *(f"{k}={v}" for k, v in params.items())]))
        folder = out / "trials" / f"{trial.user_attrs.get('retry_of', trial.number)}"  # a retry: its first's
        best = {"score": -math.inf}
        t0 = time.perf_counter()

        def report(epoch: int, score: float) -> None:
            best["score"] = max(best["score"], score)
            trial.set_user_attr("best_so_far", best["score"])
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation {score:.4f} at epoch {epoch}")

        from tplib.train.loop import fit

        try:
            summary = fit(cfg, ds, folder, resume=True, on_validation=report)
        except Exception as e:  # pruned or failed: over. A kill or Ctrl-C leaves the folder for the trial's retry.
            shutil.rmtree(folder, ignore_errors=True)
            if not isinstance(e, optuna.TrialPruned):
                trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:300])
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
        trial.set_user_attr("best_epoch", int(summary["best_epoch"]))
        trial.set_user_attr("epochs", int(summary["epochs_run"]))
        if summary.get("resumed_at_epochs"):
            trial.set_user_attr("resumed_at_epochs", list(summary["resumed_at_epochs"]))
            trial.set_user_attr("seconds", round(float(summary["wall_seconds"]), 3))  # its earlier parts too
        shutil.rmtree(folder, ignore_errors=True)  # a trial's checkpoints are not kept; its numbers are
        return float(summary[f"best_valid_{cfg.eval.select_metric}"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    others = _start_workers(workers, dict(
        ds=ds, backbone=backbone, method=method, space=space, out=out, n_trials=n_trials, seed=seed,
        base_sets=list(base_sets), storage=storage, name=name, sampler_seed=sampler_seed,
        startup_trials=startup_trials, prune_after=prune_after, heartbeat_s=heartbeat_s, grace_s=grace_s))
    try:
        _work(study, objective, name, n_trials, beats, heartbeat_s)
    except BaseException:  # a failed trial, a kill: the other workers stop too
        for p in others:
            p.terminate()
        raise
    for p in others:
        p.join()
    stopped = [f"worker {i} (exit status {p.exitcode})" for i, p in enumerate(others, 1) if p.exitcode]
    if stopped:
        raise DataError(f"search {name}: {', '.join(stopped)} stopped; see the log")
    if worker:
        return None
    if (out / "trials").is_dir() and not any((out / "trials").iterdir()):
        (out / "trials").rmdir()
    table = trials_table(study, {"dataset": ds.name, "backbone": backbone, "method": method})
    atomic_write_text(out / "trials.csv", table.to_csv(index=False))
    complete = table[table["state"] == "COMPLETE"]
    if complete.empty:
        raise DataError(f"search {name}: no trial finished; see its log")
    top = complete.sort_values(["value", "trial"], ascending=[False, True]).iloc[0]
    params = {c.removeprefix("params_"): plain_value(top[c]) for c in table.columns if c.startswith("params_")}
    best = {"study": name, "trial": int(top["trial"]), "value": float(top["value"]), "params": params,
            "sets": [*base_sets, *(f"{k}={v}" for k, v in params.items())], "importances": importances(study)}
    atomic_write_text(out / "best.json", json.dumps(best, indent=2, sort_keys=True) + "\n")
    return table


WORKER_SEED_STRIDE = 1000  # worker i's sampler seed: the search's, plus the trials stored, plus i times this


def _work(study: Any, objective: Any, name: str, n_trials: int, beats: bool, heartbeat_s: float) -> None:
    """One worker's loop: run trials until the budget is reached and no trial of the search is running."""
    import optuna

    while True:  # one trial at a time, so that a trial that fails does not count towards the budget
        if beats:
            with _quiet_experimental():
                optuna.storages.fail_stale_trials(study)
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        done, running, waiting = sum(s in DONE for s in states), states.count("RUNNING"), states.count("WAITING")
        if done >= n_trials and not running:
            break
        if done >= n_trials or (done + running >= n_trials and not waiting):  # other workers' trials fill it
            time.sleep(min(heartbeat_s, POLL_S))
            continue
        log.info("search %s: %d trials done, %d running, %d to run", name, done, running, n_trials - done - running)
        study.optimize(objective, n_trials=1, catch=())


def _start_workers(workers: int, kwargs: dict[str, Any]) -> list[Any]:
    """Start workers 1 .. ``workers`` - 1 of a search, each a process running :func:`tune` (``kwargs``) on the same
    storage; the caller is worker 0."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no forked torch or SQLite state
    procs = [ctx.Process(target=_worker_main, args=({**kwargs, "worker": i},), name=f"tune-worker-{i}")
             for i in range(1, workers)]
    for p in procs:
        p.start()
    return procs


def _worker_main(kwargs: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s [worker {kwargs['worker']}]: %(message)s")
    tune(**kwargs)
