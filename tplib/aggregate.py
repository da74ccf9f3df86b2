"""Finished runs -> tidy tables, per-cell summaries and paired tests (``tp aggregate``; the workflow's
``aggregate`` rule).

A run is a folder written by ``tp train`` and ``tp evaluate`` (``config.json``, ``train_summary.json``,
``train_log.csv``, ``metrics.json``), optionally with the Snakemake benchmark file of its training job. A run's
keys are read from its own ``config.json`` (never from its path): dataset, backbone, method, seed, and for TP
runs k and λ (``tp.k``, ``tp.lam``; empty for baseline runs, which do not use them).

Five tables, written as CSV into one folder:

- ``runs.csv``: tidy, one row per run × group (existing/new) × subset (all/head/tail) × metric (HR/NDCG) × N,
  with the value and the number of users it averages over;
- ``summary.csv``: one row per cell (every key but the seed): mean, standard deviation (ddof 1) and n over
  seeds; TP rows also carry the paired comparison with the baseline of the same dataset/backbone/group/subset/
  metric/N over the seeds both have (:func:`paired_test`);
- ``costs.csv``: one row per run: benchmark seconds and memory of the training job, epochs run, best epoch,
  seconds per epoch, device;
- ``diagnostics.csv``: the per-epoch training log (loss, validation metrics; TP: adv_loss, disc_acc, diag_*) of every run,
  tagged with the run's keys;
- ``stats.csv``: one row per prepared dataset (its ``stats.json``).

Pure pandas; scipy.stats for the tests. Nothing here knows about Snakemake or the run folders' layout.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from tplib.data.dataset import DataError, atomic_write_text

log = logging.getLogger(__name__)

__all__ = [
    "CELL_KEYS",
    "RUN_KEYS",
    "TABLES",
    "aggregate",
    "costs_table",
    "diagnostics_table",
    "load_run",
    "paired_test",
    "read_benchmark",
    "read_runs_list",
    "run_keys",
    "stats_table",
    "summarise",
    "tidy_metrics",
]

RUN_KEYS = ["dataset", "backbone", "method", "seed", "k", "lam"]
METRIC_KEYS = ["group", "subset", "metric", "N"]
CELL_KEYS = ["dataset", "backbone", "method", "k", "lam", *METRIC_KEYS]
PAIR_KEYS = ["dataset", "backbone", *METRIC_KEYS]  # what a TP cell shares with its baseline cell
TABLES = ("runs", "summary", "costs", "diagnostics", "stats")
GROUPS = ("existing", "new")
SUBSETS = ("all", "head", "tail")

# ---------------------------------------------------------------------------------------------------------
# One run


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: not found; is the run finished (tp train) and evaluated (tp evaluate)?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); rerun the job that writes it") from None


def run_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of a run from its resolved config (``config.json``). k and λ only for TP runs."""
    try:
        keys: dict[str, Any] = {
            "dataset": str(config["dataset"]),
            "backbone": str(config["backbone"]),
            "method": str(config["method"]),
            "seed": int(config["seed"]),
        }
        tp = keys["method"] == "tp"
        keys["k"] = int(config["tp"]["k"]) if tp else pd.NA
        keys["lam"] = float(config["tp"]["lam"]) if tp else math.nan
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"a run's config.json lacks {e}; was it written by `tp train`?") from None
    return keys


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
    """Everything the tables need from one run folder: keys, metrics, summary, training log, benchmark."""
    run = Path(run)
    config = _read_json(run / "config.json")
    try:
        keys = run_keys(config)
    except DataError as e:
        raise DataError(f"{run / 'config.json'}: {e}") from None
    log_path = run / "train_log.csv"
    train_log = pd.read_csv(log_path) if log_path.is_file() else pd.DataFrame()
    return {
        "run": str(run),
        "keys": keys,
        "config": config,
        "metrics": _read_json(run / "metrics.json"),
        "summary": _read_json(run / "train_summary.json"),
        "train_log": train_log,
        "benchmark": read_benchmark(benchmark),
    }


def tidy_metrics(metrics: dict[str, Any], keys: dict[str, Any]) -> pd.DataFrame:
    """``metrics.json`` (see :func:`tplib.evaluate.metrics_by_group`) -> one row per group × subset × metric × N."""
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
    return _typed(pd.DataFrame(rows, columns=[*RUN_KEYS, *METRIC_KEYS, "value", "users"]))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes for the key columns (k is a nullable integer, λ a float with NaN for baseline runs) and for
    costs' ``resumes`` (a nullable count: empty for runs aggregated before the column existed, not 0.0)."""
    df = df.copy()
    if "seed" in df:
        df["seed"] = df["seed"].astype("int64")
    for col in ("k", "resumes"):
        if col in df:
            df[col] = df[col].astype("Int64")
    if "lam" in df:
        df["lam"] = df["lam"].astype("float64")
    if "N" in df:
        df["N"] = df["N"].astype("int64")
    return df


# ---------------------------------------------------------------------------------------------------------
# Summaries and paired tests


def paired_test(treated: Sequence[float], control: Sequence[float]) -> dict[str, float]:
    """Paired comparison of ``treated`` (TP) against ``control`` (baseline), element i of both from one seed.

    Returns n_pairs, base_mean, diff_mean (mean of treated − control), rel_improvement (diff_mean / base_mean;
    NaN when base_mean is 0), p_ttest (two-sided paired t-test, scipy.stats.ttest_rel) and p_wilcoxon
    (two-sided Wilcoxon signed-rank test, scipy.stats.wilcoxon with its defaults). With fewer than 2 pairs both
    p-values are NaN; so is a p-value that is undefined (the t-test when every difference is the same, e.g. two
seeds whose HR differ by the same count of users; the Wilcoxon test when every difference is 0). Note that the exact
    Wilcoxon test cannot go below p = 0.0625 with 5 pairs or fewer."""
    t = np.asarray(treated, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    if t.shape != c.shape:
        raise ValueError(f"paired_test needs equal lengths, got {t.shape} and {c.shape}")
    n = int(t.size)
    out = {
        "n_pairs": n,
        "base_mean": float(c.mean()) if n else math.nan,
        "diff_mean": float((t - c).mean()) if n else math.nan,
        "rel_improvement": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": math.nan,
    }
    if n and out["base_mean"] != 0:
        out["rel_improvement"] = out["diff_mean"] / out["base_mean"]
    if n < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant differences; the result is NaN then
        d = t - c
        if np.ptp(d) > 1e-12 * max(1.0, float(np.abs(d).max())):  # constant differences: the t-test is undefined
            out["p_ttest"] = float(sps.ttest_rel(t, c).pvalue)  # (scipy would say p = 0 for a constant nonzero d)
        if np.any(t != c):
            try:
                out["p_wilcoxon"] = float(sps.wilcoxon(t, c).pvalue)
            except ValueError:  # pragma: no cover - scipy refuses some degenerate inputs
                pass
    return out


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of the tidy table: mean, std (ddof 1), n over seeds, and for TP cells the paired test
    against the baseline cell of the same dataset/backbone/group/subset/metric/N on the seeds both have
    (:func:`paired_test`; baseline rows leave those columns empty, a TP cell without a baseline has 0 pairs)."""
    runs = _typed(runs)
    test_cols = list(paired_test([], []).keys())
    if runs.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "mean", "std", "n", *test_cols])
    cells = (
        runs.groupby(CELL_KEYS, dropna=False, sort=True)["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=1), n="count")
        .reset_index()
    )
    base = (
        runs.loc[runs["method"] == "baseline", [*PAIR_KEYS, "seed", "value"]]
        .drop_duplicates([*PAIR_KEYS, "seed"])
        .rename(columns={"value": "base_value"})
    )
    paired = runs[runs["method"] == "tp"].merge(base, on=[*PAIR_KEYS, "seed"], how="inner")
    rows = []
    for key, g in paired.groupby(CELL_KEYS, dropna=False, sort=False):
        g = g.sort_values("seed")
        rows.append({**dict(zip(CELL_KEYS, key)), **paired_test(g["value"].to_numpy(), g["base_value"].to_numpy())})
    tests = _typed(pd.DataFrame(rows, columns=[*CELL_KEYS, *test_cols]))
    out = cells.merge(tests, on=CELL_KEYS, how="left")
    is_tp = out["method"] == "tp"
    out["n_pairs"] = out["n_pairs"].astype("Int64")
    out.loc[is_tp & out["n_pairs"].isna(), "n_pairs"] = 0
    out["n"] = out["n"].astype("int64")
    return _typed(out)


# ---------------------------------------------------------------------------------------------------------
# Costs, diagnostics, dataset statistics


def costs_table(loaded: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: the training job's benchmark (seconds, max RSS in MB, CPU seconds), the run's own
    record of epochs, best epoch, seconds per epoch, device, and its stopping rule (max_epochs, eval_every,
    patience; ``capped``: it ran max_epochs, so its best epoch is a lower bound of where it would have peaked).
    A resumed run (``resumes`` > 0: killed and continued from its last validation) has a benchmark file for its
    last part only, so its ``seconds`` is the run's own training wall time summed over its parts instead."""
    rows = []
    for r in loaded:
        s, b = r["summary"], r["benchmark"]
        tr = r.get("config", {}).get("train", {})
        resumes = len(s.get("resumed_at_epochs", []))
        rows.append(
            {
                **r["keys"],
                "seconds": s.get("wall_seconds", math.nan) if resumes else b.get("s", math.nan),
                "max_rss_mb": b.get("max_rss", math.nan),
                "cpu_seconds": b.get("cpu_time", math.nan),
                "wall_seconds": s.get("wall_seconds", math.nan),
                "epochs": s.get("epochs_run", math.nan),
                "best_epoch": s.get("best_epoch", math.nan),
                "s_per_epoch": s.get("seconds_per_epoch", math.nan),
                "max_epochs": tr.get("max_epochs", math.nan),
                "eval_every": tr.get("eval_every", math.nan),
                "patience": tr.get("patience", math.nan),
                "capped": s.get("epochs_run", math.nan) == tr.get("max_epochs", math.nan),
                "device": s.get("device", ""),
                "device_name": s.get("device_name", ""),
                "torch_threads": s.get("torch_threads", math.nan),
                "rows_per_epoch": s.get("rows_per_epoch", math.nan),
                "resumes": resumes,
                "torch": s.get("torch", ""),
                "python": s.get("python", ""),
                "run": r["run"],
            }
        )
    cols = [*RUN_KEYS, "seconds", "max_rss_mb", "cpu_seconds", "wall_seconds", "epochs", "best_epoch",
            "s_per_epoch", "max_epochs", "eval_every", "patience", "capped", "device", "device_name", "torch_threads", "rows_per_epoch", "resumes", "torch", "python",
            "run"]
    return _typed(pd.DataFrame(rows, columns=cols)).sort_values(RUN_KEYS, ignore_index=True)


def diagnostics_table(loaded: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The per-epoch training log of every run (epoch, loss, validation metrics; TP's runs also adv_loss,
    disc_acc, diag_*), tagged with the run's keys."""
    frames = []
    for r in loaded:
        if r["train_log"].empty:
            continue
        df = r["train_log"].copy()
        for i, key in enumerate(RUN_KEYS):
            df.insert(i, key, r["keys"][key])
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*RUN_KEYS, "epoch"])
    return _diagnostics_order(pd.concat(frames, ignore_index=True, sort=False))


# The training log's columns in the order `tp train` writes them (a TP run's log has all of them); columns not
# named here follow in alphabetical order, so the table's layout does not depend on the order runs are read in.
_LOG_ORDER = ["epoch", "loss", "train_seconds", "valid_HR@10", "valid_NDCG@10", "eval_seconds", "adv_loss", "disc_acc",
              "outer_steps", *(f"diag_{m}_{p}" for p in ("hh", "ht", "tt") for m in ("dot", "cos", "pairs"))]


def _diagnostics_order(df: pd.DataFrame) -> pd.DataFrame:
    rest = [c for c in df.columns if c not in RUN_KEYS]
    known = [c for c in _LOG_ORDER if c in rest]
    cols = [*RUN_KEYS, *known, *sorted(c for c in rest if c not in known)]
    return _typed(df[cols]).sort_values([*RUN_KEYS, "epoch"], ignore_index=True)


def stats_table(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per ``stats.json`` written by ``tp prepare`` (nested values as JSON text)."""
    rows = []
    for p in paths:
        st = _read_json(Path(p))
        rows.append({k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for k, v in st.items()})
    df = pd.DataFrame(rows)
    if "dataset" in df:
        df = df[["dataset", *[c for c in df.columns if c != "dataset"]]].sort_values("dataset", ignore_index=True)
    return df


# ---------------------------------------------------------------------------------------------------------
# Everything


def read_runs_list(path: str | Path) -> tuple[list[str], list[str | None]]:
    """A runs list: one run folder a line, optionally followed by a tab and its training benchmark file.
    Blank lines and lines starting with # are skipped."""
    runs: list[str] = []
    benches: list[str | None] = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        run, _, bench = line.partition("\t")
        runs.append(run.strip())
        benches.append(bench.strip() or None)
    return runs, benches


def aggregate(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    benchmarks: Sequence[str | Path | None] | None = None,
    stats: Sequence[str | Path] = (),
    merge: Sequence[str | Path] = (),
) -> dict[str, pd.DataFrame]:
    """Read ``runs`` (with their training ``benchmarks``, paired by position) and the datasets' ``stats``;
    write runs.csv, summary.csv, costs.csv, diagnostics.csv and stats.csv into ``out``; return the tables.

    ``merge``: folders an earlier ``aggregate`` wrote (e.g. the committed results, whose run folders are gone, or
    the aggregate of another machine's runs). Their runs join the new ones, and the summary is computed over all
    of them; a run that is both in a merged folder and among ``runs`` (same dataset, backbone, method, seed, k, λ)
    is taken from ``runs``, a run in two merged folders is an error. A dataset's stats likewise come from
    ``stats`` first. Merging a folder with no new runs reproduces its tables."""
    if benchmarks is not None and len(benchmarks) != len(runs):
        raise DataError(f"{len(runs)} runs but {len(benchmarks)} benchmark files; give one per run (or none)")
    benches = list(benchmarks) if benchmarks is not None else [None] * len(runs)
    seen: dict[tuple, str] = {}
    loaded = []
    for run, bench in zip(runs, benches):
        r = load_run(run, bench)
        key = _run_key(r["keys"])
        if key in seen:
            raise DataError(f"{run} and {seen[key]} are the same run ({dict(zip(RUN_KEYS, key))}); list it once")
        seen[key] = str(run)
        loaded.append(r)
    log.info("aggregating %d runs into %s", len(loaded), out)
    tidy = (
        pd.concat([tidy_metrics(r["metrics"], r["keys"]) for r in loaded], ignore_index=True)
        if loaded
        else tidy_metrics({g: {s: {} for s in SUBSETS} for g in GROUPS}, dict.fromkeys(RUN_KEYS, 0)).iloc[0:0]
    )
    tables = {
        "runs": tidy,
        "costs": costs_table(loaded),
        "diagnostics": diagnostics_table(loaded),
        "stats": stats_table(stats),
    }
    if merge:
        tables = _merge(tables, set(seen), merge)
    tidy = _typed(tables["runs"]).sort_values([*RUN_KEYS, *METRIC_KEYS], ignore_index=True)
    tables = {"runs": tidy, "summary": summarise(tidy), **{k: v for k, v in tables.items() if k != "runs"}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        atomic_write_text(out / f"{name}.csv", tables[name].to_csv(index=False))
    return tables


def _run_key(row: Any) -> tuple:
    """A run's identity (dataset, backbone, method, seed, k, λ) as a hashable tuple, missing k/λ as None."""
    out = []
    for k in RUN_KEYS:
        v = row[k]
        if pd.isna(v):
            out.append(None)
        elif k in ("seed", "k"):
            out.append(int(v))
        elif k == "lam":
            out.append(float(v))
        else:
            out.append(str(v))
    return tuple(out)


def _keys_of(df: pd.DataFrame) -> pd.Series:
    return pd.Series([_run_key(r) for r in df[RUN_KEYS].to_dict("records")], index=df.index, dtype=object)


def _read_aggregate(folder: Path) -> dict[str, pd.DataFrame]:
    """The tables of an earlier ``aggregate`` (runs.csv is required; a missing costs/diagnostics/stats table is
    read as empty)."""
    tables = {}
    for name in ("runs", "costs", "diagnostics", "stats"):
        path = folder / f"{name}.csv"
        if not path.is_file():
            if name == "runs":
                raise DataError(f"{path}: not found; --merge takes a folder written by `tp aggregate`")
            tables[name] = pd.DataFrame(columns=RUN_KEYS if name != "stats" else ["dataset"])
            continue
        need = ["dataset"] if name == "stats" else RUN_KEYS
        try:
            df = pd.read_csv(path, dtype={"dataset": str})
        except pd.errors.EmptyDataError:  # an empty table (stats.csv when no --stats were given)
            tables[name] = pd.DataFrame(columns=need)
            continue
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a readable CSV ({e}); write it again with `tp aggregate`") from None
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(f"{path}: lacks the column(s) {', '.join(missing)}; write it again with `tp aggregate`")
        tables[name] = df if name == "stats" else _typed(df)
    return tables


def _merge(new: dict[str, pd.DataFrame], new_keys: set[tuple], folders: Sequence[str | Path]) -> dict[str, pd.DataFrame]:
    """``new`` tables plus the runs of earlier aggregates that are not among ``new_keys`` (see :func:`aggregate`)."""
    parts: dict[str, list[pd.DataFrame]] = {name: [new[name]] for name in new}
    owner: dict[tuple, str] = {}
    replaced = 0
    stats_seen = set(new["stats"]["dataset"]) if "dataset" in new["stats"] else set()
    for folder in map(Path, folders):
        old = _read_aggregate(folder)
        keys = _keys_of(old["runs"])
        for key in dict.fromkeys(keys):
            if key in new_keys:
                replaced += 1
            elif key in owner:
                raise DataError(
                    f"{folder} and {owner[key]} both hold the run {dict(zip(RUN_KEYS, key))}; merge one of them"
                )
            else:
                owner[key] = str(folder)
        for name in ("runs", "costs", "diagnostics"):
            df = old[name]
            if not df.empty:
                parts[name].append(df[~_keys_of(df).isin(new_keys).to_numpy()])
        st = old["stats"]
        if not st.empty:
            parts["stats"].append(st[~st["dataset"].isin(stats_seen)])
            stats_seen |= set(st["dataset"])
    if replaced:
        log.info("%d run(s) of the merged aggregate(s) replaced by the new run folders", replaced)
    out = {}
    for name, frames in parts.items():
        frames = [f for f in frames if not f.empty]
        if not frames:
            out[name] = new[name]
            continue
        df = pd.concat(frames, ignore_index=True, sort=False)
        if name == "stats":
            out[name] = df.sort_values("dataset", ignore_index=True)
        elif name == "diagnostics":
            out[name] = _diagnostics_order(df)
        elif name == "costs":
            out[name] = _typed(df).sort_values(RUN_KEYS, ignore_index=True)
        else:  # runs: sorted with the new ones by aggregate()
            out[name] = df
    return out
