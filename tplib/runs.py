"""One finished run folder -> its keys and its tidy metric rows (what :mod:`tplib.aggregate` builds its tables from).

A run is a folder written by ``tp train`` and ``tp evaluate`` (``config.json``, ``train_summary.json``,
``train_log.csv``, ``metrics.json``; ``run.json`` with its study and variant where the workflow made it),
optionally with the Snakemake benchmark file of its training job (``benchmark.tsv`` in the folder). A run's keys
are read from its own files (never from its path): study and variant (``run.json``; a run made by hand has study
"" and its method as variant), dataset, backbone, method, seed; and its settings from ``config.json``: the
protocol (eval_every, patience, max_epochs, min_epochs) for every run, TP's k, λ, α, β and P for TP runs (empty
for baseline runs, which do not use them), and one column (``section.key``) per other setting that differs
between the variants of a study on the same dataset and backbone (:func:`varied_settings`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tplib.io import DataError
from tplib.run_configs import ID_KEYS

__all__ = [
    "GROUPS",
    "METRIC_KEYS",
    "PROTOCOL_KEYS",
    "RUN_KEYS",
    "SETTING_KEYS",
    "SUBSETS",
    "TP_KEYS",
    "flat_config",
    "load_run",
    "read_benchmark",
    "read_run_json",
    "run_keys",
    "tidy_metrics",
    "typed_columns",
    "varied_settings",
]

PROTOCOL_KEYS = ["eval_every", "patience", "max_epochs", "min_epochs"]
TP_KEYS = ["k", "lam", "alpha", "beta", "P"]
SETTING_KEYS = [*PROTOCOL_KEYS, *TP_KEYS]
RUN_KEYS = [*ID_KEYS, *SETTING_KEYS]
METRIC_KEYS = ["group", "subset", "metric", "N"]
_FIXED = {("train", k) for k in PROTOCOL_KEYS} | {("tp", k) for k in TP_KEYS} | {("seed",), ("method",)}
GROUPS = ("existing", "new")
SUBSETS = ("all", "head", "tail")


def read_run_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: not found; is the run finished (tp train) and evaluated (tp evaluate)?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); rerun the job that writes it") from None


def run_keys(config: dict[str, Any], label: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keys of a run from its resolved config (``config.json``) and its place in a study (``run.json``):
    identity, protocol, and TP's settings (TP runs only)."""
    label = label or {}
    try:
        tr, tp = config["train"], config["tp"]
        keys: dict[str, Any] = {
            "study": str(label.get("study", "")),
            "dataset": str(config["dataset"]),
            "backbone": str(config["backbone"]),
            "variant": str(label.get("variant") or config["method"]),
            "method": str(config["method"]),
            "seed": int(config["seed"]),
            **{k: int(tr[k]) for k in PROTOCOL_KEYS},
        }
        is_tp = keys["method"] == "tp"
        keys |= {k: (int(tp[k]) if k in ("k", "P") else float(tp[k])) if is_tp else math.nan for k in TP_KEYS}
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"a run's config.json lacks {e}; was it written by `tp train`?") from None
    return keys


def flat_config(config: dict[str, Any], prefix: tuple = ()) -> dict[tuple, Any]:
    out: dict[tuple, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out |= flat_config(v, (*prefix, k))
        else:
            out[(*prefix, k)] = tuple(v) if isinstance(v, list) else v
    return out


def varied_settings(loaded: Sequence[dict[str, Any]]) -> list[str]:
    """The settings (``section.key``) other than the identity, protocol and TP columns that differ between runs of
    one study on the same dataset and backbone: what a study varies beyond them (e.g. ``model.d``)."""
    groups: dict[tuple, list[dict[tuple, Any]]] = {}
    for r in loaded:
        k = r["keys"]
        groups.setdefault((k["study"], k["dataset"], k["backbone"]), []).append(flat_config(r["config"]))
    varied: set[tuple] = set()
    for flats in groups.values():
        for key in set().union(*flats):
            if key in _FIXED or key[:2] in _IGNORED:
                continue
            if len({f.get(key) for f in flats}) > 1:
                varied.add(key)
    return sorted(".".join(k) for k in varied)


# Settings that say where and how a run ran, not what it computed.
_IGNORED = {("train", "device"), ("train", "threads"), ("train", "progress"), ("train", "eval_batch_users")}


def read_benchmark(path: str | Path | None) -> dict[str, float]:
    """The first row of a Snakemake benchmark file (``s``, ``max_rss``, ``cpu_time``, ...); {} when absent."""
    if path is None or not Path(path).is_file():
        return {}
    df = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    if df.empty:
        return {}
    row = df.iloc[0]
    return {str(c): pd.to_numeric(row[c], errors="coerce") for c in df.columns if c != "h:m:s"}


def load_run(run: str | Path, benchmark: str | Path | None = None) -> dict[str, Any]:
    """Everything the tables need from one run folder: keys, metrics, summary, training log, benchmark (default:
    the folder's ``benchmark.tsv``)."""
    run = Path(run)
    config = read_run_json(run / "config.json")
    label = read_run_json(run / "run.json") if (run / "run.json").is_file() else {}
    try:
        keys = run_keys(config, label)
    except DataError as e:
        raise DataError(f"{run / 'config.json'}: {e}") from None
    if benchmark is None and (run / "benchmark.tsv").is_file():
        benchmark = run / "benchmark.tsv"
    log_path = run / "train_log.csv"
    train_log = pd.read_csv(log_path) if log_path.is_file() else pd.DataFrame()
    return {
        "run": str(run),
        "keys": keys,
        "config": config,
        "metrics": read_run_json(run / "metrics.json"),
        "summary": read_run_json(run / "train_summary.json"),
        "train_log": train_log,
        "benchmark": read_benchmark(benchmark),
    }


def tidy_metrics(metrics: dict[str, Any], keys: dict[str, Any]) -> pd.DataFrame:
    """``metrics.json`` (see :func:`tplib.evaluate.metrics_by_group`) -> one row per group × subset × metric × N,
    each with the run's ``keys``."""
    rows = []
    for group in GROUPS:
        for subset in SUBSETS:
            block = metrics.get(group, {}).get(subset)
            if block is None:
                raise DataError(f"metrics.json has no {group}/{subset} block; rerun `tp evaluate`")
            users = int(block.get("users", 0))
            for name, value in block.items():
                metric, sep, n = name.partition("@")
                if not sep:
                    continue  # "users"
                rows.append(
                    {**keys, "group": group, "subset": subset, "metric": metric, "N": int(n),
                     "value": float(value) if value is not None else math.nan, "users": users}
                )
    return typed_columns(pd.DataFrame(rows, columns=[*keys, *METRIC_KEYS, "value", "users"]))


def typed_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes for the key columns: counts as (nullable) integers, empty for runs that do not have them (TP's
    k and P for a baseline run), TP's rates as floats with NaN for baseline runs, study and variant as text."""
    df = df.copy()
    for col in ("seed", "N", *PROTOCOL_KEYS):
        if col in df:
            df[col] = df[col].astype("int64")
    for col in ("k", "P", "resumes", "n_pairs"):
        if col in df:
            df[col] = df[col].astype("Int64")
    for col in ("lam", "alpha", "beta"):
        if col in df:
            df[col] = df[col].astype("float64")
    if "study" in df:
        df["study"] = df["study"].fillna("").astype(str)
    return df
