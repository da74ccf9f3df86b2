"""A search's trials as tables: one row per trial (from its Optuna storage, finished or still in progress), every
search's trials in one table (``results/tuning/trials.csv``), and how much each searched setting mattered. What
:mod:`tplib.tune` writes at the end of a search and what the aggregate and the report read."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from tplib.io import DataError

log = logging.getLogger(__name__)

__all__ = ["IMPORTANCE_MIN_TRIALS", "TRIAL_KEYS", "gather_trials", "importances", "importances_of", "plain_value",
           "stored_trials", "trials_table"]

IMPORTANCE_MIN_TRIALS = 8  # so that the best quarter, which PED-ANOVA contrasts with all, holds two trials


def importances(study: Any) -> dict[str, float]:
    """How much each searched setting mattered, as shares summing to 1: Optuna's PED-ANOVA (no random numbers)
    over the finished trials, contrasting the best quarter of them with all of them. Empty when fewer than
    IMPORTANCE_MIN_TRIALS trials finished (a "best quarter" of one trial says nothing) or Optuna cannot say."""
    import optuna

    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(finished) < IMPORTANCE_MIN_TRIALS:
        return {}
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=0.25)
    try:
        out = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as e:
        log.warning("search %s: no importances (%s)", study.study_name, e)
        return {}
    if not sum(out.values()):  # every trial alike: Optuna gives every setting 0
        return {}
    return {k: round(float(v), 4) for k, v in sorted(out.items())}


def importances_of(table: pd.DataFrame, space: dict[str, Any]) -> dict[str, float]:
    """:func:`importances` of a search from its trials table (``trials.csv`` rows of one search) and its space:
    the finished trials are replayed into an in-memory study, so a report can say the same as ``best.json``."""
    import optuna

    dists = {}
    for key, spec in space.items():
        kind, vals = next(iter(spec.items()))
        if kind in ("log", "float"):
            dists[key] = optuna.distributions.FloatDistribution(float(vals[0]), float(vals[1]), log=kind == "log")
        elif kind == "int":
            dists[key] = optuna.distributions.IntDistribution(int(vals[0]), int(vals[1]),
                                                               step=int(vals[2]) if len(vals) > 2 else 1)
        else:
            dists[key] = optuna.distributions.CategoricalDistribution(list(vals))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name=str(table["study"].iloc[0]) if len(table) else "")
    for _, row in table[table["state"] == "COMPLETE"].iterrows():
        params = {k: plain_value(row[f"params_{k}"]) for k in dists if f"params_{k}" in row and not pd.isna(row[f"params_{k}"])}
        if len(params) == len(dists):
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(row["value"])))
    return importances(study)


def plain_value(v: Any) -> Any:
    """A pandas/numpy scalar as a plain Python value (JSON, `--set`)."""
    if hasattr(v, "item"):
        v = v.item()
    return int(v) if isinstance(v, float) and v.is_integer() and not isinstance(v, bool) and abs(v) >= 1 else v


def trials_table(study: Any, keys: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: ``keys`` (dataset, backbone, method), ``study`` (the search's name), trial, state, value
    (a pruned trial's best validation score so far), seconds, interrupted (a failed trial whose job was stopped, not
    one that raised an error: tried again with its settings), epochs (the last epoch trained), best_epoch (a
    finished trial's best validation epoch) and ``params_<section.key>`` per searched setting."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.value is not None else t.user_attrs.get("best_so_far", math.nan)
        # Older storages marked a stopped trial failed without a word: a failure with no recorded error was a stop.
        interrupted = t.state.name == "FAIL" and "error" not in t.user_attrs
        # Trials finished before their epochs were recorded: from the validations they reported (epoch -> score;
        # the highest score, its first epoch, as fit keeps it).
        steps = t.intermediate_values
        epochs = t.user_attrs.get("epochs", max(steps) if steps else math.nan)
        best_epoch = t.user_attrs.get("best_epoch", max(steps, key=lambda e: (steps[e], -e)) if steps else math.nan)
        rows.append({"study": study.study_name, **keys, "trial": t.number, "state": t.state.name, "value": value,
                     "seconds": t.user_attrs.get("seconds", math.nan), "interrupted": interrupted, "epochs": epochs,
                     "best_epoch": best_epoch if t.state.name == "COMPLETE" else math.nan,
                     **{f"params_{k}": v for k, v in sorted(t.params.items())}})
    cols = ["study", *keys, *TRIAL_FIELDS]
    df = pd.DataFrame(rows)
    return df[[*cols, *sorted(c for c in df.columns if c.startswith("params_"))]] if rows else pd.DataFrame(columns=cols)


TRIAL_FIELDS = ["trial", "state", "value", "seconds", "interrupted", "epochs", "best_epoch"]  # after a search's keys
TRIAL_KEYS = ["study", "dataset", "backbone", "method", *TRIAL_FIELDS]


def stored_trials(db: str | Path, name: str, keys: dict[str, Any]) -> pd.DataFrame:
    """The trials so far of a search still in progress, read from a copy of its SQLite storage (``db``; the search
    may be writing to it): :func:`trials_table`'s rows, a trial in flight when the file was copied as RUNNING."""
    import sqlite3
    import tempfile

    import optuna

    db = Path(db)
    if not db.is_file():
        raise DataError(f"{db}: no such search storage")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "optuna.db"
        src, dst = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True), sqlite3.connect(copy)
        try:
            src.backup(dst)  # a consistent snapshot, even while a trial is being written
        finally:
            src.close()
            dst.close()
        storage = optuna.storages.RDBStorage(f"sqlite:///{copy}")
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError as e:
            raise DataError(f"{db}: holds no search named {name!r}") from e
        table = trials_table(study, keys)
        storage.engine.dispose()
    return table


def gather_trials(paths: Iterable[str | Path], stored: Iterable[dict[str, Any]] = ()) -> pd.DataFrame:
    """Every search's trials (``tp tune``'s trials.csv) in one table: study (the search's name), dataset, backbone,
    method, trial, state, value, seconds, interrupted, epochs, best_epoch, then one ``params_<section.key>`` column
    per searched setting. ``stored``: searches still in progress, each ``{"db", "name", "dataset", "backbone",
    "method"}`` (:func:`stored_trials`)."""
    frames = [pd.read_csv(p) for p in paths]
    frames += [stored_trials(s["db"], s["name"], {k: s[k] for k in ("dataset", "backbone", "method")}) for s in stored]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=TRIAL_KEYS)
    df = pd.concat(frames, ignore_index=True, sort=False)
    params = sorted(c for c in df.columns if c.startswith("params_"))
    return df[[*TRIAL_KEYS, *params]].sort_values(["study", "trial"], ignore_index=True)
