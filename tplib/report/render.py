"""``tp report``: one self-contained HTML page from the aggregated tables (``tp aggregate``'s five CSVs), never
from models or checkpoints.

The page holds Table 2 (dataset statistics, reproduced beside the paper's, each difference named), Table 3
(HR@10 and NDCG@10 of every dataset × backbone × method cell of the paper, with the paper's value, the paired
test of TP against the baseline across seeds and a verdict on the paper's claim), Figures 4–7, TP's training
diagnostics, the protocol's every stated choice with its value, provenance (git commit, package versions, data
checksums, devices) and each job's measured cost. Figures are embedded as PNG ``data:`` URIs and also written as
PNG and PDF into a figures folder. A cell that was not run reads "not run"; nothing is dropped silently.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import yaml

from tplib.aggregate import summarise
from tplib.config import BACKBONES, ConfigError, RunConfig, TPConfig, build_config, deep_merge, parse_sets
from tplib.data.dataset import DataError
from tplib.grid import run_sets
from tplib.report import figures as F
from tplib.report.paper import (
    DATASET_NOTES,
    METHOD_LABEL,
    PAPER_BACKBONES,
    PAPER_DATASETS,
    paper_table2,
    paper_table3,
)

__all__ = [
    "Aggregate",
    "Variant",
    "build_context",
    "choose_tp_setting",
    "load_aggregate",
    "parse_variant",
    "render_report",
    "verdict",
]

TABLES = ("runs", "summary", "costs", "diagnostics", "stats")
ALPHA = 0.05  # significance level of the verdicts
STAT_COLS = ("users", "items", "interactions", "records_per_user", "records_per_item", "density_percent")
STAT_LABELS = {
    "users": "#Users",
    "items": "#Items",
    "interactions": "#Interactions",
    "records_per_user": "#Records/user",
    "records_per_item": "#Records/item",
    "density_percent": "Density %",
}
PACKAGES = ("torch", "numpy", "pandas", "scipy", "matplotlib", "jinja2", "tplib")


# ---------------------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True)
class Aggregate:
    """The five aggregated tables (see tplib.aggregate), with typed key columns."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    costs: pd.DataFrame
    diagnostics: pd.DataFrame
    stats: pd.DataFrame
    folder: Path


@dataclass(frozen=True)
class Variant:
    """Another aggregate whose runs differ from the main ones in a way the run keys do not record (e.g. a
    longer training schedule for TP, or another stopping rule for both methods), shown beside the main runs under
    its own label."""

    label: str
    agg: Aggregate


def parse_variant(text: str) -> tuple[str, str]:
    """``"LABEL=DIR"`` -> ``(LABEL, DIR)``."""
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise DataError(f"--variant {text!r}: expected LABEL=DIR, e.g. 'TP, 200 epochs=results/schedule/aggregate'")
    return name.strip(), folder.strip()


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found; run `tp aggregate --out {path.parent}` first")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for col in ("k", "N", "seed", "n", "n_pairs"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "lam" in df:
        df["lam"] = pd.to_numeric(df["lam"], errors="coerce").astype("float64")
    return df


def load_aggregate(folder: str | Path) -> Aggregate:
    """Read ``runs.csv``, ``summary.csv``, ``costs.csv``, ``diagnostics.csv`` and ``stats.csv`` from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; pass the folder `tp aggregate --out` wrote")
    t = {name: _read_csv(folder / f"{name}.csv") for name in TABLES}
    need = {
        "summary": ("dataset", "backbone", "method", "k", "lam", "group", "subset", "metric", "N", "mean", "std", "n"),
        "runs": ("dataset", "backbone", "method", "seed", "k", "lam"),
    }
    for name, cols in need.items():
        missing = [c for c in cols if c not in t[name]] if len(t[name].columns) else []
        if missing:
            raise DataError(f"{folder / (name + '.csv')}: lacks the column(s) {', '.join(missing)}; rerun tp aggregate")
    for name in TABLES:
        if not len(t[name].columns):
            t[name] = pd.DataFrame(columns=["dataset", "backbone", "method", "seed", "k", "lam"])
    return Aggregate(folder=folder, **t)


# ---------------------------------------------------------------------------------------------------------
# Formatting


def _isnan(x: Any) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def fnum(x: Any, digits: int = 4) -> str:
    return "—" if _isnan(x) else f"{float(x):.{digits}f}"


def fint(x: Any) -> str:
    return "—" if _isnan(x) else f"{int(round(float(x))):,}"


def fpct(x: Any, digits: int = 1, sign: bool = True) -> str:
    if _isnan(x):
        return "—"
    if 0 < abs(float(x)) < 0.001:
        digits = max(digits, 2)
    return f"{100 * float(x):+.{digits}f}%" if sign else f"{100 * float(x):.{digits}f}%"


def fp(x: Any) -> str:
    if _isnan(x):
        return "—"
    x = float(x)
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def flam(x: Any) -> str:
    return "—" if _isnan(x) else f"{float(x):g}"


def fstat(col: str, x: Any) -> str:
    if _isnan(x):
        return "—"
    if col in ("users", "items", "interactions"):
        return fint(x)
    return f"{float(x):.3f}" if col == "density_percent" else f"{float(x):.2f}"


# ---------------------------------------------------------------------------------------------------------
# Choices


def _tp_rows(df: pd.DataFrame, k: int, lam: float) -> pd.DataFrame:
    if df.empty:
        return df
    m = (df["method"] == "tp") & (df["k"] == k) & np.isclose(df["lam"].astype(float), lam)
    return df[m.fillna(False).to_numpy(dtype=bool)]


def _base_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["method"] == "baseline").to_numpy(dtype=bool)] if not df.empty else df


def _ablation_runs(runs: pd.DataFrame, fixed_col: str, fixed: float) -> pd.DataFrame:
    """TP's rows of the tidy runs table whose ``fixed_col`` ("k" or "lam") equals ``fixed``."""
    if runs.empty:
        return runs
    tp = runs[(runs["method"] == "tp").to_numpy(dtype=bool)]
    if fixed_col == "lam":
        return tp[np.isclose(tp["lam"].astype(float), fixed)]
    return tp[(tp["k"] == fixed).fillna(False).to_numpy(dtype=bool)]


def shared_seeds(tp_runs: pd.DataFrame, param: str) -> list[int]:
    """The seeds that every ``param`` value present in ``tp_runs`` (one backbone's) has (may be none)."""
    groups = tp_runs.groupby(param, dropna=False)["seed"]
    shared = set.intersection(*(set(g) for _, g in groups))
    return sorted(int(x) for x in shared)


def choose_tp_setting(
    runs: pd.DataFrame, k: int | None = None, lam: float | None = None, config: dict[str, Any] | None = None
) -> tuple[int, float, str]:
    """TP's main-grid setting (k, λ) and a sentence on where it came from: the options given; else the workflow
    config's ``tp_default``; else k = 2 and the λ with the most TP runs at that k (ties: tplib.config's default
    λ when among them, else the smallest)."""
    td = (config or {}).get("tp_default") or {}
    why: list[str] = []
    if k is None:
        if "k" in td:
            k, src_k = int(td["k"]), "the config's tp_default"
        else:
            k, src_k = 2, "the default (the paper's k = 2)"
    else:
        src_k = "--tp-k"
    why.append(f"k = {k} from {src_k}")
    if lam is None:
        if "lam" in td:
            lam, src_l = float(td["lam"]), "the config's tp_default"
        else:
            tp = runs[(runs["method"] == "tp").to_numpy(dtype=bool)] if not runs.empty else runs
            tp = tp[(tp["k"] == k).fillna(False).to_numpy(dtype=bool)] if not tp.empty else tp
            if tp.empty:
                lam, src_l = TPConfig().lam, "tplib.config's default (no TP run at this k)"
            else:
                counts = tp.drop_duplicates(["dataset", "backbone", "seed", "lam"]).groupby("lam").size()
                best = counts[counts == counts.max()].index.tolist()
                dflt = [v for v in best if math.isclose(v, TPConfig().lam)]
                lam = float(dflt[0] if dflt else min(best))
                src_l = f"the λ with the most TP runs at k = {k} ({int(counts.max())} runs)"
    else:
        src_l = "--tp-lam"
    why.append(f"λ = {lam:g} from {src_l}")
    return int(k), float(lam), "; ".join(why)


def verdict(diff: Any, p: Any, n_pairs: Any, have_base: bool, have_tp: bool) -> tuple[str, str]:
    """The verdict on the paper's claim "TP > baseline" for one cell, and a CSS class: holds / same direction,
    not significant / reversed / no difference / not run. ``p`` is the paired t-test's two-sided p-value."""
    if not have_base and not have_tp:
        return "not run", "notrun"
    if not have_base:
        return "baseline not run", "notrun"
    if not have_tp:
        return "TP not run", "notrun"
    if _isnan(n_pairs) or int(n_pairs) == 0:
        return "no paired seeds", "notrun"
    if _isnan(diff):
        return "no data", "notrun"
    diff = float(diff)
    sig = not _isnan(p) and float(p) < ALPHA
    if diff == 0:
        return "no difference", "reversed"
    if int(n_pairs) < 2:
        return (
            ("same direction, untested (1 seed)", "weak") if diff > 0 else ("reversed, untested (1 seed)", "reversed")
        )
    if diff > 0:
        return ("holds (p<0.05)", "holds") if sig else ("same direction, not significant", "weak")
    return ("reversed (p<0.05)", "reversed") if sig else ("reversed, not significant", "reversed")


# ---------------------------------------------------------------------------------------------------------
# Config (workflow YAML) and protocol


def load_config(path: str | Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """The workflow config YAML (parsed and as text), or (None, None)."""
    if path is None:
        return None, None
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: not found; pass the workflow config, e.g. --config config/config.yaml")
    text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{p}: expected a mapping at the top level")
    return data, text


def effective_config(
    config: dict[str, Any] | None, dataset: str, backbone: str, method: str, k: int, lam: float
) -> RunConfig:
    """The config a run of (dataset, backbone, method) gets: tplib.config's defaults, the workflow config's
    overrides in the workflow's order (all -> dataset -> backbone -> method), and TP's k and λ."""
    sets = run_sets(config or {}, dataset, backbone, method)
    if method == "tp":
        sets += [f"tp.k={k}", f"tp.lam={lam}"]
    return build_config(backbone, method, 0, dataset, deep_merge({}, parse_sets(sets)))


def _distinct(values: Iterable[Any]) -> str:
    vals = sorted({str(v) for v in values if not _isnan(v) and str(v) != ""})
    return "; ".join(vals) if vals else "—"


def protocol_rows(
    cfg: RunConfig, stats: pd.DataFrame, runs: pd.DataFrame, config: dict[str, Any] | None, k: int, lam: float
) -> list[dict[str, str]]:
    """Every stated choice of method.md with its value and where the value comes from."""
    cfg_src = "tplib.config" + (" + config file" if config else " default")

    def stat_col(col: str) -> str:
        if col not in stats or stats.empty:
            return "— (not in stats.csv)"
        per = {str(r["dataset"]): str(r[col]) for _, r in stats.iterrows() if not _isnan(r[col])}
        if len(set(per.values())) == 1:
            return next(iter(per.values()))
        return "; ".join(f"{d}: {v}" for d, v in per.items())

    seeds_run = sorted({int(s) for s in runs["seed"].dropna()}) if not runs.empty else []
    per_cell = (
        (
            runs.drop_duplicates(["dataset", "backbone", "method", "k", "lam", "seed"])
            .groupby(["dataset", "backbone", "method", "k", "lam"], dropna=False)
            .size()
        )
        if not runs.empty
        else None
    )
    seeds_cfg = (config or {}).get("seeds")
    new_user = {
        "mean": "the mean of the trained users' embeddings (the average trained user)",
        "zero": "a zero vector",
    }.get(cfg.model.caser_new_user, cfg.model.caser_new_user)
    rows = [
        ("Interactions", "every rating or review, whatever its value, is one implicit interaction", "tplib.data"),
        ("Order within a user", stat_col("order_rule"), "stats.csv"),
        ("Filter per source", stat_col("filter"), "stats.csv (tplib.data.sources per-source setting)"),
        ("Re-indexing", stat_col("index_rule"), "stats.csv"),
        (
            "Existing / new users",
            f"{1 - cfg.split.new_frac:.0%} / {cfg.split.new_frac:.0%} of the users at random "
            "per seed; baseline and TP of one seed share the split",
            f"split.new_frac ({cfg_src})",
        ),
        (
            "Existing users' items",
            "last = test, second-to-last = validation (early stopping and model selection "
            "only: the harness's choice, the paper names none), the rest = training",
            "tplib.data.dataset",
        ),
        (
            "New users",
            "never trained on; evaluated on their last item with all earlier items as input",
            "tplib.data.dataset",
        ),
        (
            "Head / tail",
            f"inside each group the {cfg.split.head_frac:.0%} of users with the most interactions are "
            "head; count ties broken by user index",
            f"split.head_frac ({cfg_src})",
        ),
        ("Adversary's labels", "head/tail of the existing users by training counts", "tplib.train.tp"),
        (
            "Loss",
            "binary cross-entropy, one negative per positive, uniform over items the user has not " "interacted with",
            "tplib.train.loss",
        ),
        ("Ranking", "full ranking over all items (no sampled negatives)", "tplib.evaluate"),
        (
            "Masking of seen items",
            (
                "on: items of the input sequence are excluded (never the target)"
                if cfg.eval.mask_seen
                else "off: every item is ranked"
            ),
            f"eval.mask_seen = {str(cfg.eval.mask_seen).lower()} ({cfg_src})",
        ),
        (
            "Tie rule",
            "rank = 1 + #{items scored ≥ the target, other than the target}: ties count against the target",
            "tplib.metrics",
        ),
        ("Cut-offs N", ", ".join(map(str, cfg.eval.Ns)), f"eval.Ns ({cfg_src})"),
        (
            "Model selection",
            f"best validation {cfg.eval.select_metric}, evaluated every {cfg.train.eval_every} "
            f"epoch(s); stop after {cfg.train.patience} evaluations without improvement; at most "
            f"{cfg.train.max_epochs} epochs (at least {cfg.train.min_epochs})",
            f"eval.select_metric, train.eval_every/patience/max_epochs/min_epochs ({cfg_src})",
        ),
        ("Caser's unseen users", f"{cfg.model.caser_new_user}: {new_user}", f"model.caser_new_user ({cfg_src})"),
        ("TP: inner updates k", str(k), "the report's TP setting (see Table 3)"),
        ("TP: inner lr α (plain SGD)", f"{cfg.tp.alpha:g}", f"tp.alpha ({cfg_src})"),
        ("TP: outer lr β (Adam)", f"{cfg.tp.beta:g}", f"tp.beta ({cfg_src})"),
        ("TP: adversarial weight λ", f"{lam:g}", "the report's TP setting (see Table 3)"),
        (
            "TP: parallel chains P",
            f"{cfg.tp.P} ({'the paper' if cfg.tp.P == 1 else 'batched Reptile, a harness'}"
            f"{'’s algorithm' if cfg.tp.P == 1 else ' extension'})",
            f"tp.P ({cfg_src})",
        ),
        ("TP: one user's mini-batch cap", str(cfg.tp.user_batch), f"tp.user_batch ({cfg_src})"),
        ("TP: discriminator hidden width", str(cfg.tp.disc_hidden), f"tp.disc_hidden ({cfg_src})"),
        ("TP: diagnostics every", f"{cfg.tp.diag_every} outer steps", f"tp.diag_every ({cfg_src})"),
        (
            "Seeds run",
            (", ".join(map(str, seeds_run)) or "none")
            + (
                f" (per cell: {int(per_cell.min())}–{int(per_cell.max())})"
                if per_cell is not None and len(per_cell)
                else ""
            ),
            "runs.csv",
        ),
        ("Seeds configured", ", ".join(map(str, seeds_cfg)) if seeds_cfg else "— (no --config given)", "config file"),
        (
            "Significance",
            f"two-sided paired t-test across seeds (TP vs the baseline of the same seed), α = {ALPHA}; "
            "Wilcoxon signed-rank shown beside it; no correction for multiple comparisons",
            "tplib.aggregate",
        ),
    ]
    return [{"item": a, "value": b, "source": c} for a, b, c in rows]


HP_COLS = (
    ("d", "model.d"),
    ("max_len", "model.max_len"),
    ("dropout", "model.dropout"),
    ("blocks×heads", None),
    ("Caser L/T/nv/nh", None),
    ("lr", "train.lr"),
    ("Adam β2", "train.adam_beta2"),
    ("weight decay", "train.weight_decay"),
    ("batch", "train.batch_size"),
)


def hyperparameter_rows(
    config: dict[str, Any] | None, datasets: Sequence[str], backbones: Sequence[str], k: int, lam: float
) -> tuple[list[str], list[dict[str, Any]]]:
    """Per dataset × backbone: the backbone's main hyperparameters as a TP run of the report's setting gets them."""
    header = ["dataset", "backbone", *[c for c, _ in HP_COLS]]
    rows = []
    for ds in datasets:
        for bb in backbones:
            try:
                c = effective_config(config, ds, bb, "tp", k, lam)
            except ConfigError as e:
                rows.append({"dataset": ds, "backbone": bb, "error": str(e)})
                continue
            m, t = c.model, c.train
            vals = [
                m.d,
                m.max_len if bb != "caser" else "—",
                f"{m.dropout:g}",
                f"{m.n_blocks}×{m.n_heads}" if bb == "sasrec" else "—",
                f"{m.caser_L}/{m.caser_T}/{m.caser_nv}/{m.caser_nh}" if bb == "caser" else "—",
                f"{t.lr:g}",
                f"{t.adam_beta2:g}",
                f"{t.weight_decay:g}",
                t.batch_size,
            ]
            rows.append({"dataset": F.label(ds), "backbone": F.label(bb), "values": [str(v) for v in vals]})
    return header, rows


# ---------------------------------------------------------------------------------------------------------
# Table 2


def table2(stats: pd.DataFrame) -> list[dict[str, Any]]:
    """One block per dataset (the paper's four, then any other prepared one): paper, reproduced and raw rows,
    the measured differences, and why they arise."""
    paper = paper_table2()
    ours = stats.set_index("dataset") if not stats.empty and "dataset" in stats else pd.DataFrame()
    names = list(PAPER_DATASETS) + [d for d in ours.index if d not in PAPER_DATASETS]
    blocks = []
    for ds in names:
        p = paper.loc[ds] if ds in paper.index else None
        o = ours.loc[ds] if ds in ours.index else None
        rows = []
        if p is not None:
            rows.append({"what": "paper", "cells": [fstat(c, p[c]) for c in STAT_COLS], "cls": "paper"})
        if o is not None:
            rows.append({"what": "reproduced", "cells": [fstat(c, o.get(c)) for c in STAT_COLS], "cls": "ours"})
            raw = [o.get(f"raw_{c}") for c in ("users", "items", "interactions")]
            if not all(_isnan(v) for v in raw):
                u, i, n = (float(v) if not _isnan(v) else math.nan for v in raw)
                derived = [
                    n / u if u else math.nan,
                    n / i if i else math.nan,
                    100 * n / (u * i) if u and i else math.nan,
                ]
                rows.append(
                    {
                        "what": "raw file, before the filter",
                        "cells": [fint(u), fint(i), fint(n), *[fstat(c, v) for c, v in zip(STAT_COLS[3:], derived)]],
                        "cls": "raw",
                    }
                )
        else:
            rows.append({"what": "reproduced", "cells": ["not run"] * len(STAT_COLS), "cls": "notrun"})
        diffs: list[str] = []
        if p is not None and o is not None:
            for c in STAT_COLS:
                pv, ov = p[c], o.get(c)
                if _isnan(ov):
                    continue
                tol = 0.5 if c in ("users", "items", "interactions") else (0.0005 if c == "density_percent" else 0.005)
                if abs(float(ov) - float(pv)) > tol:
                    rel = (float(ov) - float(pv)) / float(pv) if float(pv) else math.nan
                    diffs.append(f"{STAT_LABELS[c]}: {fstat(c, ov)} here vs {fstat(c, pv)} in the paper ({fpct(rel)})")
        checks: list[str] = []
        if p is not None:
            u, i, n = float(p["users"]), float(p["items"]), float(p["interactions"])
            implied = {"records_per_user": n / u, "records_per_item": n / i, "density_percent": 100 * n / (u * i)}
            for c, v in implied.items():
                if fstat(c, v) != fstat(c, p[c]):
                    checks.append(
                        f"the paper's {STAT_LABELS[c]} {fstat(c, p[c])} does not follow from its own counts "
                        f"({fstat(c, v)}); a rounding or arithmetic slip in the paper"
                    )
        counts_match = not any(lbl.startswith(("#Users", "#Items", "#Interactions")) for lbl in diffs)
        slips = {c for c in STAT_COLS if any(f"paper's {STAT_LABELS[c]} " in x for x in checks)}
        only_slips = counts_match and all(any(d.startswith(STAT_LABELS[c] + ":") for c in slips) for d in diffs)
        status = (
            "not prepared"
            if o is None
            else (
                "not in the paper"
                if p is None
                else "matches the paper" if not diffs else "counts match" if only_slips else "differs"
            )
        )
        prov = {}
        if o is not None:
            for col in ("version", "filter", "raw_sha256", "verified"):
                if col in o and not _isnan(o[col]):
                    prov[col] = str(o[col])
        blocks.append(
            {
                "dataset": F.label(ds),
                "key": ds,
                "rows": rows,
                "diffs": diffs,
                "checks": checks,
                "note": DATASET_NOTES.get(ds, ""),
                "status": status,
                "prov": prov,
            }
        )
    return blocks


# ---------------------------------------------------------------------------------------------------------
# Table 3


def _cell(
    df: pd.DataFrame, ds: str, bb: str, group: str, metric: str, N: int, subset: str = "all"
) -> dict[str, Any] | None:
    if df.empty:
        return None
    r = df[
        (df["dataset"] == ds)
        & (df["backbone"] == bb)
        & (df["group"] == group)
        & (df["subset"] == subset)
        & (df["metric"] == metric)
        & (df["N"] == N)
    ]
    if r.empty:
        return None
    return r.iloc[0].to_dict()


def _rel(ours: Any, paper: Any) -> float:
    if _isnan(ours) or _isnan(paper) or float(paper) == 0:
        return math.nan
    return (float(ours) - float(paper)) / float(paper)


def table3(
    summary: pd.DataFrame, k: int, lam: float, backbones: Sequence[str], datasets: Sequence[str], N: int = 10
) -> dict[str, Any]:
    """HR@N and NDCG@N of every dataset × backbone (the paper's twelve, then any other run), baseline and TP at
    (k, λ): ours (mean ± std, n), the paper's, the relative difference, TP's improvement (ours and the paper's),
    the paired tests and the verdict. Returns the sub-tables, an overview matrix and verdict counts."""
    paper = paper_table3()
    base, tp = _base_rows(summary), _tp_rows(summary, k, lam)
    subtables, overview, counts = [], {}, {}
    for group in ("existing", "new"):
        for metric in ("HR", "NDCG"):
            rows = []
            for ds in datasets:
                for bb in backbones:
                    pb = paper[
                        (paper["dataset"] == ds)
                        & (paper["backbone"] == bb)
                        & (paper["group"] == group)
                        & (paper["metric"] == metric)
                        & (paper["N"] == N)
                    ]
                    pbase = pb.loc[pb["method"] == "baseline", "value"]
                    ptp = pb.loc[pb["method"] == "tp", "value"]
                    pbase_v = float(pbase.iloc[0]) if len(pbase) else math.nan
                    ptp_v = float(ptp.iloc[0]) if len(ptp) else math.nan
                    b = _cell(base, ds, bb, group, metric, N)
                    t = _cell(tp, ds, bb, group, metric, N)
                    text, cls = verdict(
                        t.get("diff_mean") if t else None,
                        t.get("p_ttest") if t else None,
                        t.get("n_pairs") if t else None,
                        b is not None,
                        t is not None,
                    )
                    in_paper = not _isnan(pbase_v)
                    row = {
                        "dataset": F.label(ds),
                        "backbone": F.label(bb),
                        "in_paper": in_paper,
                        "base": _ms(b),
                        "base_paper": fnum(pbase_v),
                        "base_rel": fpct(_rel(b and b["mean"], pbase_v)),
                        "tp": _ms(t),
                        "tp_paper": fnum(ptp_v),
                        "tp_rel": fpct(_rel(t and t["mean"], ptp_v)),
                        "impr": fpct(t.get("rel_improvement")) if t else "—",
                        "impr_abs": fnum(t.get("diff_mean")) if t else "",
                        "impr_paper": fpct(_rel(ptp_v, pbase_v)),
                        "n_pairs": fint(t.get("n_pairs")) if t else "—",
                        "p_t": fp(t.get("p_ttest")) if t else "—",
                        "p_w": fp(t.get("p_wilcoxon")) if t else "—",
                        "verdict": text,
                        "cls": cls,
                    }
                    rows.append(row)
                    overview.setdefault(
                        (row["dataset"], row["backbone"]),
                        {"dataset": row["dataset"], "backbone": row["backbone"], "in_paper": in_paper, "cells": []},
                    )
                    overview[(row["dataset"], row["backbone"])]["cells"].append({"verdict": text, "cls": cls})
                    if in_paper:
                        counts[cls] = counts.get(cls, 0) + 1
            subtables.append({"group": group, "metric": f"{metric}@{N}", "rows": rows})
    return {
        "subtables": subtables,
        "overview": list(overview.values()),
        "counts": counts,
        "columns": [f"{s['group']} {s['metric']}" for s in subtables],
    }


def _ms(c: dict[str, Any] | None) -> dict[str, str]:
    if c is None:
        return {"text": "not run", "n": "", "cls": "notrun"}
    std = "" if _isnan(c.get("std")) else f" ± {float(c['std']):.4f}"
    return {"text": f"{fnum(c['mean'])}{std}", "n": f"n={int(c['n'])}", "cls": ""}


# ---------------------------------------------------------------------------------------------------------
# Diagnostics and costs


DIAG_SUMMARY = (
    "loss",
    "adv_loss",
    "disc_acc",
    "diag_cos_hh",
    "diag_cos_ht",
    "diag_cos_tt",
    "diag_dot_hh",
    "diag_dot_ht",
    "diag_dot_tt",
)


def diagnostics_rows(
    diag: pd.DataFrame, datasets: Sequence[str], backbones: Sequence[str]
) -> tuple[list[str], list[dict]]:
    """Per dataset × backbone (TP at the report's setting): seeds, epochs, the last epoch's loss, adversarial loss
    and discriminator accuracy, and the mean over epochs of the gradient alignment between users."""
    header = [
        "seeds",
        "epochs",
        "loss (last)",
        "adv_loss (last)",
        "disc_acc (last)",
        "cos hh",
        "cos ht",
        "cos tt",
        "dot hh",
        "dot ht",
        "dot tt",
    ]
    rows = []
    for ds in datasets:
        for bb in backbones:
            d = diag[(diag["dataset"] == ds) & (diag["backbone"] == bb)] if not diag.empty else diag
            if d.empty:
                rows.append(
                    {
                        "dataset": F.label(ds),
                        "backbone": F.label(bb),
                        "cells": ["not run"] * len(header),
                        "cls": "notrun",
                    }
                )
                continue
            last = d.sort_values("epoch").groupby("seed").tail(1)
            cells = [str(d["seed"].nunique()), f"{last['epoch'].mean():.1f}"]
            for col in ("loss", "adv_loss", "disc_acc"):
                cells.append(fnum(last[col].mean()) if col in last else "—")
            for col in DIAG_SUMMARY[3:]:
                cells.append(fnum(d[col].mean(), 4) if col in d else "—")
            rows.append({"dataset": F.label(ds), "backbone": F.label(bb), "cells": cells, "cls": ""})
    return header, rows


def costs_rows(costs: pd.DataFrame) -> dict[str, Any]:
    """Measured cost per cell (summed over its runs) and per run."""
    if costs.empty or "dataset" not in costs:
        return {"cells": [], "runs": [], "total_hours": "—", "by_method": []}
    c = costs.copy()
    for col in ("seconds", "wall_seconds", "epochs", "best_epoch", "s_per_epoch", "max_rss_mb"):
        c[col] = pd.to_numeric(c[col], errors="coerce") if col in c else math.nan
    c["cost_s"] = c["seconds"].fillna(c["wall_seconds"])
    keys = ["dataset", "backbone", "method", "k", "lam"]
    rank = {name: i for i, name in enumerate([*PAPER_DATASETS, *PAPER_BACKBONES, *METHOD_LABEL])}
    c["_d"], c["_b"], c["_m"] = (c[col].map(lambda v: rank.get(v, len(rank))) for col in keys[:3])
    c = c.sort_values(["_d", "dataset", "_b", "backbone", "_m", "k", "lam", "seed"], na_position="first")
    cells = []
    for key, g in c.groupby(keys, dropna=False, sort=False):
        ds, bb, me, k, lam = key
        cells.append(
            {
                "dataset": F.label(str(ds)),
                "backbone": F.label(str(bb)),
                "method": METHOD_LABEL.get(str(me), str(me)),
                "k": fint(k),
                "lam": flam(lam),
                "runs": str(len(g)),
                "seconds": fint(g["cost_s"].sum()),
                "epochs": f"{g['epochs'].mean():.1f}" if g["epochs"].notna().any() else "—",
                "best_epoch": f"{g['best_epoch'].mean():.1f}" if g["best_epoch"].notna().any() else "—",
                "s_per_epoch": fnum(g["s_per_epoch"].mean(), 2),
                "max_rss_mb": fint(g["max_rss_mb"].max()),
                "device": _distinct(g.get("device_name", g.get("device", pd.Series(dtype=str)))),
            }
        )
    runs = []
    for _, r in c.iterrows():
        runs.append(
            [
                F.label(str(r["dataset"])),
                F.label(str(r["backbone"])),
                METHOD_LABEL.get(r["method"], r["method"]),
                fint(r["k"]),
                flam(r["lam"]),
                fint(r["seed"]),
                fnum(r["seconds"], 1),
                fnum(r["wall_seconds"], 1),
                fint(r["epochs"]),
                fint(r["best_epoch"]),
                fnum(r["s_per_epoch"], 2),
                fint(r["max_rss_mb"]),
                str(r.get("device", "")) if not _isnan(r.get("device")) else "",
            ]
        )
    by_method = [
        {"method": METHOD_LABEL.get(str(m), str(m)), "runs": len(g), "hours": f"{g['cost_s'].sum() / 3600:.2f}"}
        for m, g in c.groupby("method")
    ]
    return {
        "cells": cells,
        "runs": runs,
        "total_hours": f"{c['cost_s'].sum() / 3600:.2f}",
        "by_method": by_method,
        "fallback": bool(c["seconds"].isna().any() and c["wall_seconds"].notna().any()),
    }


# ---------------------------------------------------------------------------------------------------------
# Provenance


def git_commit(where: Path) -> tuple[str, bool | None]:
    """``git rev-parse HEAD`` and whether the working tree has changes, run in ``where``; ("unknown", None)
    when git or the repository is not there."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown", None
        st = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip(), bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def package_versions() -> list[dict[str, str]]:
    out = [{"name": "python", "version": platform.python_version()}]
    for name in PACKAGES:
        try:
            out.append({"name": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            out.append({"name": name, "version": "not installed"})
    return out


def run_environment(costs: pd.DataFrame) -> list[dict[str, str]]:
    """What costs.csv records about where the runs ran: devices, threads, and package versions if it has them."""
    if costs.empty or "dataset" not in costs:
        return []
    cols = [c for c in ("device", "device_name", "torch_threads", "torch", "python") if c in costs]
    if not cols:
        return []
    g = costs[cols].astype(str).replace({"nan": "—", "<NA>": "—"}).value_counts().reset_index(name="runs")
    return [{**{c: str(r[c]) for c in cols}, "runs": str(r["runs"])} for _, r in g.iterrows()]


def data_provenance(stats: pd.DataFrame) -> list[dict[str, str]]:
    out = []
    if stats.empty or "dataset" not in stats:
        return out
    for _, r in stats.iterrows():

        def g(c: str) -> str:
            return "—" if c not in r or _isnan(r[c]) else str(r[c])

        out.append(
            {
                "dataset": F.label(g("dataset")),
                "source": g("source"),
                "version": g("version"),
                "url": g("url"),
                "raw_sha256": g("raw_sha256"),
                "expected_sha256": g("expected_sha256"),
                "verified": g("verified"),
                "verification_skipped": g("verification_skipped"),
                "filter": g("filter"),
                "license": g("license"),
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------------
# Figures


@dataclass
class FigureSection:
    key: str
    nav: str
    title: str
    caption: str
    figures: list[F.SavedFigure] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)


def _datasets_with(df: pd.DataFrame, datasets: Sequence[str]) -> list[str]:
    have = set(df["dataset"]) if not df.empty else set()
    return [d for d in datasets if d in have]


def build_figures(
    agg: Aggregate, k: int, lam: float, datasets: Sequence[str], backbones: Sequence[str], folder: Path
) -> list[FigureSection]:
    """Figures 4–7 and the diagnostics, written to ``folder`` (PNG and PDF) and returned for embedding."""
    s = agg.summary
    base, tp = _base_rows(s), _tp_rows(s, k, lam)
    tp_label = f"TP (k={k}, λ={lam:g})"
    main = pd.concat([base, tp])
    sections: list[FigureSection] = []

    have = set(_datasets_with(main, datasets))
    for key, title, caption, draw, prefix in (
        (
            "fig4",
            "Figure 4: top-N accuracy, baseline vs TP",
            "HR@N and NDCG@N for N in the evaluated cut-offs, existing (top two rows) and new users "
            "(bottom two), per backbone; error bars: standard deviation over seeds.",
            F.fig_topn,
            "fig4_topn",
        ),
        (
            "fig5",
            "Figure 5: head vs tail users",
            "HR@10 and NDCG@10 of head (top 20% by interactions) and tail users, existing and new, "
            "baseline vs TP; error bars: standard deviation over seeds. The paper shows Game and "
            "MovieTweetings; every dataset run is shown here.",
            F.fig_headtail,
            "fig5_headtail",
        ),
    ):
        sec = FigureSection(key, f"Figure {key[-1]}", title, caption)
        for ds in datasets:
            if ds in have:
                fig = draw(base, tp, ds, backbones, tp_label)
                sec.figures.append(F.save_figure(fig, f"{prefix}_{ds}", f"{F.label(ds)}", folder))
            else:
                sec.not_run.append(F.label(ds))
        sections.append(sec)

    runs = agg.runs
    for key, param, fixed_col, fixed, title in (
        ("fig6", "k", "lam", lam, f"Figure 6: TP against the inner update count k (λ = {lam:g})"),
        ("fig7", "lam", "k", k, f"Figure 7: TP against the adversarial weight λ (k = {k})"),
    ):
        sec = FigureSection(
            key,
            title.split(":")[0],
            title,
            "TP's HR@10 and NDCG@10 for existing (solid) and new (dashed) users at each ablation value; "
            "the baseline as thin horizontal lines; error bars: standard deviation over seeds. Every point of "
            "a backbone's column, and its baseline, uses the same seeds: those that every ablation value of that "
            "backbone has (named in the column's title). The paper shows ML1M and MovieTweetings (k: worst at 1, flat from "
            "2; λ: best in the middle).",
        )
        ab = _ablation_runs(runs, fixed_col, fixed)
        for ds in list(dict.fromkeys(["ml1m", "movietweetings", *datasets])):
            d = ab[(ab["dataset"] == ds).to_numpy(dtype=bool)] if not ab.empty else ab
            values = sorted({float(v) for v in d[param].dropna()}) if not d.empty else []
            if len(values) >= 2:
                # Per backbone (a column of the figure), the seeds that all its points have; none shared: every
                # point keeps its own (the column's title then says "seeds").
                seeds, parts = {}, []
                for bb, g in d.groupby("backbone"):
                    seeds[bb] = shared_seeds(g, param)
                    use = seeds[bb] or sorted(int(x) for x in set(g["seed"]))
                    same = runs[((runs["dataset"] == ds) & (runs["backbone"] == bb)).to_numpy(dtype=bool)
                                & runs["seed"].isin(use).to_numpy(dtype=bool)]
                    parts += [_base_rows(same), g[g["seed"].isin(use).to_numpy(dtype=bool)]]
                cells = summarise(pd.concat(parts))
                fig = F.fig_ablation(cells[(cells["method"] == "tp").to_numpy(dtype=bool)], _base_rows(cells), ds,
                                     backbones, param, values, seeds=seeds)
                sec.figures.append(
                    F.save_figure(fig, f"{key}_{'k' if param == 'k' else 'lambda'}_{ds}", f"{F.label(ds)}", folder)
                )
            elif ds in ("ml1m", "movietweetings"):
                sec.not_run.append(F.label(ds) + ("" if not values else f" (only {param} = {values[0]:g})"))
        sections.append(sec)

    diag = (
        _tp_rows(agg.diagnostics, k, lam) if "k" in agg.diagnostics and not agg.diagnostics.empty else agg.diagnostics
    )
    sec = FigureSection(
        "diag",
        "Diagnostics",
        f"TP training diagnostics (k = {k}, λ = {lam:g})",
        "Per epoch, mean over seeds (band: ±1 std): the prediction loss, the discriminator's BCE "
        "(adv_loss) and accuracy (disc_acc), and the alignment between different users' inner-step "
        "gradients (cosine and dot product; head–head, head–tail, tail–tail pairs). Gradient "
        "alignment is what TP's k ≥ 2 rewards (Eq. 8). A discriminator that always answers “tail” "
        "scores the tail share (0.8 when users are drawn uniformly); an accuracy at or below it means "
        "head and tail sequence embeddings are not separable.",
    )
    for ds in datasets:
        if ds in _datasets_with(diag, datasets):
            fig = F.fig_diagnostics(diag, ds, backbones, f"(k = {k}, λ = {lam:g})")
            sec.figures.append(F.save_figure(fig, f"diag_{ds}", f"{F.label(ds)}", folder))
        else:
            sec.not_run.append(F.label(ds))
    sections.append(sec)
    return sections


# ---------------------------------------------------------------------------------------------------------
# Training curves and variants

VARIANT_CELLS = (  # (group, subset, metric) at N = 10
    ("existing", "all", "HR"),
    ("existing", "all", "NDCG"),
    ("existing", "head", "NDCG"),
    ("existing", "tail", "NDCG"),
    ("new", "all", "HR"),
    ("new", "all", "NDCG"),
)


def _epochs(costs: pd.DataFrame, ds: str, bb: str, method: str, k: int | None, lam: float | None) -> str:
    """'best / run' epochs, mean over the cell's runs."""
    if costs.empty or "epochs" not in costs:
        return "—"
    c = costs[(costs["dataset"] == ds) & (costs["backbone"] == bb) & (costs["method"] == method)]
    if method == "tp":
        c = _tp_rows(c, k, lam)
    if c.empty:
        return "—"
    return f"{pd.to_numeric(c['best_epoch']).mean():.0f} / {pd.to_numeric(c['epochs']).mean():.0f}"


def _own_baselines(main: Aggregate, variant: Aggregate, ds: str, bb: str) -> bool:
    """Whether ``variant`` holds baseline runs of (ds, bb) that ``main`` does not: baselines trained under the
    variant's own rule, told apart from the main ones (which a variant may reuse) by their run folders."""

    def folders(a: Aggregate) -> set[str]:
        c = a.costs
        if c.empty or "run" not in c:
            return set()
        c = c[(c["dataset"] == ds) & (c["backbone"] == bb) & (c["method"] == "baseline")]
        return set(c["run"].astype(str))

    return bool(folders(variant) - folders(main))


def _tp_settings(
    df: pd.DataFrame, first: tuple[int, float], ds: str | None = None, bb: str | None = None
) -> list[tuple[int, float]]:
    """The distinct TP (k, λ) settings among ``df``'s rows (of ``ds`` × ``bb`` when given): ``first`` (the main
    setting) when present, then the others in order."""
    if df.empty or "k" not in df:
        return []
    m = (df["method"] == "tp").to_numpy(dtype=bool, copy=True)
    if ds is not None:
        m &= (df["dataset"] == ds).to_numpy(dtype=bool) & (df["backbone"] == bb).to_numpy(dtype=bool)
    d = df[m]
    found = {(int(a), float(b)) for a, b in zip(d["k"], d["lam"]) if not _isnan(a) and not _isnan(b)}
    return sorted(found, key=lambda kl: (kl != first, kl))


def variants_table(
    agg: Aggregate, variants: Sequence[Variant], k: int, lam: float, datasets: Sequence[str], backbones: Sequence[str]
) -> dict[str, Any]:
    """Per dataset × backbone that a variant ran: the baseline, the main TP runs at (k, λ) and each variant's TP
    runs (every (k, λ) it holds, the main setting first), preceded by the variant's own baselines where it has
    some (:func:`_own_baselines`), on VARIANT_CELLS (mean ± std, n); for TP rows the change against the baseline
    and the paired t-test p-value, taken from the aggregate the row comes from (a variant's aggregate must hold
    the baseline runs for that, else "—")."""
    header = [f"{g} {s} {m}@10" for g, s, m in VARIANT_CELLS]
    blocks = []
    for ds in datasets:
        for bb in backbones:
            sources = []
            for v in variants:
                settings = _tp_settings(v.agg.summary, (k, lam), ds, bb)
                if settings and _own_baselines(agg, v.agg, ds, bb):
                    sources.append((f"Baseline, {v.label}", v.agg, None, None))
                sources += [(f"TP (k={a}, λ={b:g}), {v.label}", v.agg, a, b) for a, b in settings]
            if not sources:
                continue
            sources = [("Baseline", agg, None, None), (f"TP (k={k}, λ={lam:g}), main runs", agg, k, lam), *sources]
            rows = []
            for name, a, sk, sl in sources:
                method = "baseline" if sk is None else "tp"
                rows_df = _base_rows(a.summary) if sk is None else _tp_rows(a.summary, sk, sl)
                cells = []
                for g, sub, m in VARIANT_CELLS:
                    c = _cell(rows_df, ds, bb, g, m, 10, sub)
                    extra = ""
                    if sk is not None and c is not None and not _isnan(c.get("diff_mean")):
                        extra = f"{fpct(c.get('rel_improvement'))}, p={fp(c.get('p_ttest'))}"
                    cells.append({**_ms(c), "extra": extra})
                rows.append({"name": name, "epochs": _epochs(a.costs, ds, bb, method, sk, sl), "cells": cells})
            blocks.append({"dataset": F.label(ds), "backbone": F.label(bb), "rows": rows})
    return {"header": header, "blocks": blocks, "labels": [v.label for v in variants]}


def curves_section(
    agg: Aggregate, variants: Sequence[Variant], k: int, lam: float, datasets: Sequence[str],
    backbones: Sequence[str], folder: Path, metric: str = "valid_NDCG@10",
) -> FigureSection:
    """Validation accuracy per epoch: the baseline, TP at (k, λ), and each variant's TP settings (as many as
    F.VARIANT_COLORS has colours)."""
    diag = agg.diagnostics
    has_keys = not diag.empty and "k" in diag
    series = [
        ("Baseline", _base_rows(diag) if has_keys else diag.iloc[0:0], F.COLORS["baseline"]),
        (f"TP (k={k}, λ={lam:g})", _tp_rows(diag, k, lam) if has_keys else diag.iloc[0:0], F.COLORS["tp"]),
    ]
    extra = [(v, a, b) for v in variants for a, b in _tp_settings(v.agg.diagnostics, (k, lam))]
    for (v, a, b), color in zip(extra, F.VARIANT_COLORS):
        series.append((f"TP (k={a}, λ={b:g}), {v.label}", _tp_rows(v.agg.diagnostics, a, b), color))
    sec = FigureSection(
        "curves",
        "Curves",
        "Validation accuracy per epoch",
        f"{metric.replace('valid_', 'Validation ')} (existing users' second-to-last items, the model-selection "
        "signal) after each epoch, mean over the seeds still training at that epoch (band: ±1 std), per backbone. One epoch of TP and of the "
        "baseline see the same number of user mini-batches (method.md), so the curves compare the two per epoch "
        "of data; each run's test metrics come from its best validation epoch. The baseline validates every "
        "few epochs, so its line joins those points.",
    )
    have = set()
    for _, rows, _ in series:
        if not rows.empty and metric in rows:
            have |= set(rows.dropna(subset=[metric])["dataset"])
    for ds in datasets:
        if ds in have:
            fig = F.fig_curves(series, ds, backbones, metric)
            sec.figures.append(F.save_figure(fig, f"curves_{ds}", F.label(ds), folder))
        else:
            sec.not_run.append(F.label(ds))
    return sec


# ---------------------------------------------------------------------------------------------------------
# The page


def _order(present: Iterable[str], first: Sequence[str]) -> list[str]:
    extra = sorted({str(x) for x in present if not _isnan(x)} - set(first))
    return [*first, *extra]


def build_context(
    agg: Aggregate,
    figures_dir: Path,
    *,
    config: dict[str, Any] | None = None,
    config_text: str | None = None,
    config_path: str | None = None,
    tp_k: int | None = None,
    tp_lam: float | None = None,
    variants: Sequence[Variant] = (),
) -> dict[str, Any]:
    """Everything the template shows."""
    k, lam, tp_why = choose_tp_setting(agg.runs, tp_k, tp_lam, config)
    present = set(agg.summary["dataset"]) if not agg.summary.empty else set()
    datasets = _order(present, PAPER_DATASETS)
    backbones = _order(set(agg.summary["backbone"]) if not agg.summary.empty else set(), PAPER_BACKBONES)
    backbones = [b for b in backbones if b in BACKBONES] + [b for b in backbones if b not in BACKBONES]
    cfg_backbone = next((b for b in backbones if b in BACKBONES), "sasrec")
    cfg_dataset = next((d for d in datasets if d in present), datasets[0])
    try:
        cfg = effective_config(config, cfg_dataset, cfg_backbone, "tp", k, lam)
    except ConfigError as e:
        raise DataError(f"the workflow config's overrides do not build a run config: {e}") from None
    commit, dirty = git_commit(Path(__file__).resolve().parent)
    tp_runs = _tp_rows(agg.runs, k, lam)
    t3 = table3(agg.summary, k, lam, backbones, datasets)
    hp_header, hp_rows = hyperparameter_rows(
        config, [d for d in datasets if d in present] or datasets[:1], [b for b in backbones if b in BACKBONES], k, lam
    )
    dg_header, dg_rows = diagnostics_rows(
        _tp_rows(agg.diagnostics, k, lam) if not agg.diagnostics.empty and "k" in agg.diagnostics else agg.diagnostics,
        [d for d in datasets if d in present],
        backbones,
    )
    return {
        "title": "Reproduction report: Learning Transferrable Parameters for Long-tailed Sequential User Behavior "
        "Modeling (Yin et al., KDD 2020)",
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "aggregate_dir": str(agg.folder),
        "n_runs": (
            len(agg.runs.drop_duplicates(["dataset", "backbone", "method", "k", "lam", "seed"]))
            if not agg.runs.empty
            else 0
        ),
        "tp_k": k,
        "tp_lam": f"{lam:g}",
        "tp_why": tp_why,
        "tp_runs": len(tp_runs.drop_duplicates(["dataset", "backbone", "seed"])) if not tp_runs.empty else 0,
        "alpha": ALPHA,
        "stat_labels": [STAT_LABELS[c] for c in STAT_COLS],
        "table2": table2(agg.stats),
        "table3": t3,
        "figures": [
            *build_figures(agg, k, lam, datasets, backbones, figures_dir),
            curves_section(agg, variants, k, lam, datasets, backbones, figures_dir),
        ],
        "variants": variants_table(agg, variants, k, lam, datasets, backbones),
        "figures_dir": str(figures_dir),
        "diag_header": dg_header,
        "diag_rows": dg_rows,
        "protocol": protocol_rows(cfg, agg.stats, agg.runs, config, k, lam),
        "config_source": (
            ("tplib.config defaults with the overrides of " + str(config_path))
            if config
            else "tplib.config defaults (no --config given)"
        ),
        "hp_header": hp_header,
        "hp_rows": hp_rows,
        "config_text": config_text,
        "config_path": config_path,
        "commit": commit,
        "dirty": dirty,
        "packages": package_versions(),
        "run_env": run_environment(agg.costs),
        "run_env_versions": any(c in agg.costs for c in ("torch", "python")),
        "data": data_provenance(agg.stats),
        "costs": costs_rows(agg.costs),
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tplib.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render_report(
    aggregate_dir: str | Path,
    out: str | Path,
    *,
    figures_dir: str | Path = "results/figures",
    config_path: str | Path | None = None,
    tp_k: int | None = None,
    tp_lam: float | None = None,
    variants: Sequence[tuple[str, str | Path]] = (),
) -> Path:
    """Render the report of the tables in ``aggregate_dir`` to ``out`` (one HTML file, written atomically); the
    figures also go to ``figures_dir`` as PNG and PDF. Returns ``out``."""
    agg = load_aggregate(aggregate_dir)
    loaded = [Variant(name, load_aggregate(folder)) for name, folder in variants]
    config, config_text = load_config(config_path)
    ctx = build_context(
        agg,
        Path(figures_dir),
        config=config,
        config_text=config_text,
        config_path=str(config_path) if config_path else None,
        tp_k=tp_k,
        tp_lam=tp_lam,
        variants=loaded,
    )
    html = _environment().get_template("report.html.j2").render(**ctx)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_utf8(out, html)
    return out


def _write_utf8(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 atomically (a temporary file in the same folder, then renamed over ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
