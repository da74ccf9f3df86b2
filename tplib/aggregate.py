"""Finished runs -> tidy tables, per-cell summaries and paired tests (``tp aggregate``; the workflow's
``aggregate`` rule).

The runs are folders read by :func:`tplib.runs.load_run`: keys from their own files, never from their path.

Five tables, written as CSV into one folder:

- ``runs.csv``: tidy, one row per run × group (existing/new) × subset (all/head/tail) × metric (HR/NDCG) × N,
  with the value and the number of users it averages over;
- ``summary.csv``: one row per cell (every key but the seed): mean, standard deviation (ddof 1) and n over
  seeds; TP rows also carry the paired comparison (:func:`paired_test`) with the baseline variant of the same
  study, protocol, dataset, backbone, group, subset, metric and N, over the seeds both have (``control`` names it);
- ``costs.csv``: one row per run: benchmark seconds and memory of the training job, epochs run, best epoch,
  seconds per epoch, device;
- ``diagnostics.csv``: the per-epoch training log (loss, validation metrics; TP: adv_loss, disc_acc, diag_*) of every run,
  tagged with the run's keys;
- ``stats.csv``: one row per prepared dataset (its ``stats.json``).

And each run's settings, as JSON lines (``configs.jsonl``, :mod:`tplib.run_configs`): one line per run with its
``config.json`` as recorded, and, given the studies as configured, one line per declared cell (study × dataset ×
backbone × variant) with the config the workflow builds for its runs (:func:`declared_configs`), so that a
report reads every setting it shows from this folder, run or not yet run.

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

from tplib.io import DataError, atomic_write_text
from tplib.run_configs import CONFIGS, ID_KEYS, configs_lines, declared_configs
from tplib.runs import (
    GROUPS,
    METRIC_KEYS,
    PROTOCOL_KEYS,
    RUN_KEYS,
    SETTING_KEYS,
    SUBSETS,
    flat_config,
    load_run,
    read_run_json,
    tidy_metrics,
    typed_columns,
    varied_settings,
)

log = logging.getLogger(__name__)

__all__ = [
    "TABLES",
    "aggregate",
    "costs_table",
    "diagnostics_table",
    "paired_test",
    "read_runs_list",
    "stats_table",
    "summarise",
]

VARIANT_KEYS = ["study", "dataset", "backbone", "variant", "method"]  # a cell, with METRIC_KEYS
TABLES = ("runs", "summary", "costs", "diagnostics", "stats")


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


def _setting_cols(runs: pd.DataFrame) -> list[str]:
    """The run table's setting columns: protocol, TP's, and the varied ``section.key`` ones, in table order."""
    return [c for c in runs.columns if c in SETTING_KEYS or "." in c]


def summarise(runs: pd.DataFrame, against: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """One row per cell of the tidy table (study, dataset, backbone, variant and its settings, group, subset,
    metric, N): mean, std (ddof 1), n over seeds. Each TP cell also carries the paired test (:func:`paired_test`)
    against the study's baseline variant (``control``: the one named "baseline", else the only baseline-method
    variant of the study) on the same dataset, backbone, protocol, group, subset, metric and N, over the seeds
    both have; baseline rows leave those columns empty, a TP cell without a baseline has 0 pairs. ``against``:
    (study, variant) -> the variant it is compared with instead (a study's ``against``, e.g. TP without
    alignment against TP)."""
    runs = typed_columns(runs)
    against = against or {}
    test_cols = list(paired_test([], []).keys())
    settings = _setting_cols(runs)
    # A cell is a variant with its settings: runs made by hand (no run.json: variant = method) with other
    # settings are other cells, never averaged together.
    cell = [*VARIANT_KEYS, *settings, *METRIC_KEYS]
    cols = [*cell, "mean", "std", "n", "control", *test_cols]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    cells = (
        runs.groupby(cell, dropna=False, sort=True)["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=1), n="count")
        .reset_index()
    )
    controls = {}
    for study, g in runs[runs["method"] == "baseline"].groupby("study", sort=False):
        names = sorted(set(g["variant"]))
        if "baseline" in names or len(names) == 1:
            controls[study] = "baseline" if "baseline" in names else names[0]

    def control_of(frame: pd.DataFrame) -> list[str]:
        return [against.get((st, v)) or (controls.get(st, "") if m == "tp" else "")
                for st, v, m in zip(frame["study"], frame["variant"], frame["method"])]

    cells["control"] = control_of(cells)
    pair_on = ["study", "dataset", "backbone", *PROTOCOL_KEYS, *METRIC_KEYS, "seed"]
    base = runs[[*pair_on, "variant", "value"]].rename(columns={"variant": "control", "value": "base_value"})
    base = base.drop_duplicates([*pair_on, "control"])
    treated = runs.assign(control=control_of(runs))
    paired = treated[treated["control"] != ""].merge(base, on=[*pair_on, "control"], how="inner")
    rows = []
    for key, g in paired.groupby(cell, dropna=False, sort=False):
        g = g.sort_values("seed")
        rows.append({**dict(zip(cell, key)), **paired_test(g["value"].to_numpy(), g["base_value"].to_numpy())})
    tests = pd.DataFrame(rows, columns=[*cell, *test_cols])
    out = cells.merge(tests, on=cell, how="left")
    compared = out["control"] != ""
    out["n_pairs"] = out["n_pairs"].astype("Int64")
    out.loc[compared & out["n_pairs"].isna(), "n_pairs"] = 0
    out["n"] = out["n"].astype("int64")
    return typed_columns(out[cols])


# ---------------------------------------------------------------------------------------------------------
# Costs, diagnostics, dataset statistics


def costs_table(loaded: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: the training job's benchmark (seconds, max RSS in MB, CPU seconds), the run's own
    record of epochs, best epoch, seconds per epoch and device, with its keys (``capped``: it ran max_epochs, so its
    best epoch is a lower bound of where it would have peaked). A resumed run (``resumes`` > 0: killed and
    continued from its last validation) has a benchmark file for its last part only, so its ``seconds`` is the
    run's own training wall time summed over its parts instead."""
    rows = []
    for r in loaded:
        s, b = r["summary"], r["benchmark"]
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
                "capped": s.get("epochs_run", math.nan) == r["keys"]["max_epochs"],
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
    keys = list(loaded[0]["keys"]) if loaded else RUN_KEYS
    cols = [*keys, "seconds", "max_rss_mb", "cpu_seconds", "wall_seconds", "epochs", "best_epoch", "s_per_epoch",
            "capped", "device", "device_name", "torch_threads", "rows_per_epoch", "resumes", "torch", "python", "run"]
    return typed_columns(pd.DataFrame(rows, columns=cols)).sort_values(ID_KEYS, ignore_index=True)


def diagnostics_table(loaded: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The per-epoch training log of every run (epoch, loss, validation metrics; TP's runs also adv_loss,
    disc_acc, diag_*), tagged with the run's identity."""
    frames = []
    for r in loaded:
        if r["train_log"].empty:
            continue
        df = r["train_log"].copy()
        for i, key in enumerate(ID_KEYS):
            df.insert(i, key, r["keys"][key])
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*ID_KEYS, "epoch"])
    df = pd.concat(frames, ignore_index=True, sort=False)
    rest = [c for c in df.columns if c not in ID_KEYS]
    known = [c for c in _LOG_ORDER if c in rest]
    cols = [*ID_KEYS, *known, *sorted(c for c in rest if c not in known)]
    return typed_columns(df[cols]).sort_values([*ID_KEYS, "epoch"], ignore_index=True)


# The training log's columns in the order `tp train` writes them (a TP run's log has all of them); columns not
# named here follow in alphabetical order, so the table's layout does not depend on the order runs are read in.
_LOG_ORDER = ["epoch", "loss", "train_seconds", "valid_HR@10", "valid_NDCG@10", "eval_seconds", "adv_loss", "disc_acc",
              "outer_steps", *(f"diag_{m}_{p}" for p in ("hh", "ht", "tt") for m in ("dot", "cos", "pairs")),
              "diag_align_share"]


def stats_table(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per ``stats.json`` written by ``tp prepare`` (nested values as JSON text)."""
    rows = []
    for p in paths:
        st = read_run_json(Path(p))
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
    studies: dict[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read ``runs`` (with their training ``benchmarks``, paired by position; default: each folder's own
    ``benchmark.tsv``) and the datasets' ``stats``; write runs.csv, summary.csv, costs.csv, diagnostics.csv and
    stats.csv into ``out``, and configs.jsonl: every run's config.json, and with ``studies`` (the studies as
    configured: the workflow config's ``studies`` and ``overrides``) every declared cell's config too; return the
    tables. Two folders holding the same run are an error: the same study, dataset, backbone, variant and seed
    (whatever their settings: a variant has one), or for runs made by hand (no study) the same settings as well."""
    if benchmarks is not None and len(benchmarks) != len(runs):
        raise DataError(f"{len(runs)} runs but {len(benchmarks)} benchmark files; give one per run (or none)")
    benches = list(benchmarks) if benchmarks is not None else [None] * len(runs)
    seen: dict[tuple, str] = {}
    loaded = []
    for run, bench in zip(runs, benches):
        r = load_run(run, bench)
        # A study's run is its (study, variant, seed): one setting per variant. A run made by hand (no study) is
        # told apart by its settings too.
        names = ID_KEYS if r["keys"]["study"] else RUN_KEYS
        key = tuple(None if pd.isna(r["keys"][k]) else r["keys"][k] for k in names)
        if key in seen:
            raise DataError(f"{run} and {seen[key]} are the same run ({dict(zip(names, key))}); list it once")
        seen[key] = str(run)
        loaded.append(r)
    varied = varied_settings(loaded)
    for r in loaded:
        flat = flat_config(r["config"])
        r["keys"] |= {name: _cell_value(flat.get(tuple(name.split(".")))) for name in varied}
    log.info("aggregating %d runs into %s", len(loaded), out)
    empty = {g: {s: {} for s in SUBSETS} for g in GROUPS}
    tidy = (
        pd.concat([tidy_metrics(r["metrics"], r["keys"]) for r in loaded], ignore_index=True)
        if loaded
        else tidy_metrics(empty, dict.fromkeys(RUN_KEYS, 0)).iloc[0:0]
    )
    tidy = typed_columns(tidy).sort_values([*ID_KEYS, *METRIC_KEYS], ignore_index=True)
    tables = {
        "runs": tidy,
        "summary": summarise(tidy, {(sn, vn): v["against"] for sn, st in (studies or {}).get("studies", {}).items()
                                    for vn, v in (st.get("variants") or {}).items() if v.get("against")}),
        "costs": costs_table(loaded),
        "diagnostics": diagnostics_table(loaded),
        "stats": stats_table(stats),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        atomic_write_text(out / f"{name}.csv", tables[name].to_csv(index=False))
    declared = declared_configs(studies) if studies is not None else []
    atomic_write_text(out / CONFIGS, configs_lines(loaded, declared))
    return tables


def _cell_value(v: Any) -> Any:
    return ",".join(map(str, v)) if isinstance(v, tuple) else v
