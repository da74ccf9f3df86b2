"""The report's input and its small vocabulary: the aggregated tables (``tp aggregate``'s five CSVs, the runs'
and the declared cells' settings, ``configs.jsonl``, and the studies as configured, ``config.yaml``), number
formats, the verdict on the paper's claim, and the rows and settings of one study."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tplib.io import DataError

__all__ = ["ALPHA", "LEVEL", "Aggregate", "cell", "cell_config", "config_row", "control_variant", "first_config",
           "load_aggregate", "mean_std", "protocol_words", "setting", "tp_variant", "verdict"]

TABLES = ("runs", "summary", "costs", "diagnostics", "stats")
CONFIGS = "configs.jsonl"  # tplib.run_configs.CONFIGS
ALPHA = 0.05  # significance level of the verdicts
LEVEL = 0.01  # a relative difference below this reads "level", whatever its p-value


@dataclass(frozen=True)
class Aggregate:
    """The five aggregated tables (see tplib.aggregate), with typed key columns; the rows of ``configs.jsonl``
    (each run's recorded config and each declared cell's resolved one); and the studies as configured
    (``config.yaml`` beside them: each study's title, words, cells, seeds, protocol and variants)."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    costs: pd.DataFrame
    diagnostics: pd.DataFrame
    stats: pd.DataFrame
    configs: list[dict[str, Any]]
    config: dict[str, Any]
    config_text: str
    folder: Path

    @property
    def studies(self) -> dict[str, Any]:
        return self.config.get("studies") or {}

    def study(self, table: str, name: str) -> pd.DataFrame:
        """The rows of one table that belong to study ``name``."""
        df = getattr(self, table)
        return df[(df["study"] == name).to_numpy(dtype=bool)] if len(df) and "study" in df else df.iloc[0:0]


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found; run `tp aggregate --out {path.parent}` first")
    try:
        df = pd.read_csv(path, dtype={"study": str, "variant": str, "control": str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for col in ("k", "P", "N", "seed", "n", "n_pairs"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in ("lam", "alpha", "beta"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("study", "variant", "control"):
        if col in df:
            df[col] = df[col].fillna("")
    return df


KEYS = ("study", "dataset", "backbone", "variant", "method", "seed")


def _read_configs(path: Path) -> list[dict[str, Any]]:
    """The rows of configs.jsonl (tplib.run_configs.configs_lines), one JSON object a line."""
    if not path.is_file():
        raise DataError(f"{path}: not found; rerun the workflow's aggregate rule (or `tp aggregate`), which writes it")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}, line {i}: not valid JSON ({e}); rerun the aggregate rule") from None
        missing = [k for k in ("study", "dataset", "backbone", "variant", "seed", "source", "config") if k not in row]
        if missing:
            raise DataError(f"{path}, line {i}: lacks {', '.join(missing)}; rerun the aggregate rule")
        rows.append(row)
    return rows


def load_aggregate(folder: str | Path) -> Aggregate:
    """Read ``runs.csv``, ``summary.csv``, ``costs.csv``, ``diagnostics.csv``, ``stats.csv``, ``configs.jsonl``
    and ``config.yaml`` from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; pass the folder `tp aggregate --out` wrote")
    t = {name: _read_csv(folder / f"{name}.csv") for name in TABLES}
    need = {
        "summary": ("study", "dataset", "backbone", "variant", "method", "group", "subset", "metric", "N", "mean",
                    "std", "n", "control", "n_pairs", "p_ttest"),
        "runs": KEYS,
    }
    for name, cols in need.items():
        missing = [c for c in cols if c not in t[name]] if len(t[name].columns) else []
        if missing:
            raise DataError(f"{folder / (name + '.csv')}: lacks the column(s) {', '.join(missing)}; rerun tp aggregate")
    for name in TABLES:
        if not len(t[name].columns):
            t[name] = pd.DataFrame(columns=["dataset"] if name == "stats" else list(KEYS))
    cfg_path = folder / "config.yaml"
    if not cfg_path.is_file():
        raise DataError(f"{cfg_path}: not found; the workflow's aggregate rule writes it beside the tables")
    text = cfg_path.read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{cfg_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("studies"), dict):
        raise DataError(f"{cfg_path}: expected a mapping with `studies`; write it again with the workflow")
    return Aggregate(folder=folder, configs=_read_configs(folder / CONFIGS), config=config, config_text=text, **t)


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
    return "—" if _isnan(x) else f"{round(float(x)):,}"


def fpct(x: Any, digits: int = 1, sign: bool = True) -> str:
    if _isnan(x):
        return "—"
    if 0 < abs(float(x)) < 0.001:
        digits = max(digits, 2)
    return f"{100 * float(x):+.{digits}f}%" if sign else f"{100 * float(x):.{digits}f}%"


def fp(x: Any) -> str:
    """A p-value as text: "0.012", or "< 0.001"."""
    if _isnan(x):
        return "—"
    x = float(x)
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def fpeq(x: Any) -> str:
    """"p = 0.012", "p < 0.001" or "" (no test)."""
    if _isnan(x):
        return ""
    t = fp(x)
    return f"p {t}" if t.startswith("<") else f"p = {t}"


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


def distinct(values: Iterable[Any]) -> str:
    vals = sorted({str(v) for v in values if not _isnan(v) and str(v) != ""})
    return "; ".join(vals) if vals else "—"



# ---------------------------------------------------------------------------------------------------------
# Verdicts


def verdict(
    diff: Any, p: Any, n_pairs: Any, have_base: bool, have_tp: bool, rel: Any = math.nan
) -> tuple[str, str]:
    """The verdict on the paper's claim "TP > baseline" for one cell, and a CSS class: holds / same direction,
    not significant / level (a relative difference ``rel`` under 1%) / reversed / not run. ``p`` is the paired
    t-test's two-sided p-value."""
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
    if diff == 0 or (not _isnan(rel) and abs(float(rel)) < LEVEL):
        return "level (under 1%)", "level"
    sig = not _isnan(p) and float(p) < ALPHA
    if int(n_pairs) < 2:
        return (
            ("same direction, untested (1 seed)", "weak") if diff > 0 else ("reversed, untested (1 seed)", "reversed")
        )
    if diff > 0:
        return ("holds (p < 0.05)", "holds") if sig else ("same direction, not significant", "weak")
    return ("reversed (p < 0.05)", "reversed") if sig else ("reversed, not significant", "reversed")


# ---------------------------------------------------------------------------------------------------------
# A study's variants and cells


def control_variant(agg: Aggregate, study: str) -> str | None:
    """The study's baseline variant that TP is compared with (as tplib.aggregate pairs them): the one named
    "baseline", else the study's only baseline-method variant."""
    variants = (agg.studies.get(study) or {}).get("variants") or {}
    bases = [v for v, spec in variants.items() if spec.get("method") == "baseline"]
    return "baseline" if "baseline" in bases else (bases[0] if len(bases) == 1 else None)


def tp_variant(agg: Aggregate, study: str) -> str | None:
    """The study's TP variant that Table 3 and Figures 4-5 show: "tp" if declared, else its only TP variant."""
    variants = (agg.studies.get(study) or {}).get("variants") or {}
    tps = [v for v, spec in variants.items() if spec.get("method") == "tp"]
    return "tp" if "tp" in tps else (tps[0] if len(tps) == 1 else None)


def config_row(agg: Aggregate, study: str, dataset: str, backbone: str, variant: str) -> dict[str, Any] | None:
    """The settings of one (study, dataset, backbone, variant) cell as configs.jsonl holds them: the config.json
    its finished run of the lowest seed recorded, else the config the workflow declares for its runs (a row with
    ``error`` instead where the studies' settings do not build one); None when configs.jsonl has neither."""
    rows = [r for r in agg.configs
            if (r["study"], r["dataset"], r["backbone"], r["variant"]) == (study, dataset, backbone, variant)]
    runs = sorted((r for r in rows if r["source"] == "run"), key=lambda r: int(r["seed"]))
    declared = [r for r in rows if r["source"] == "declared"]
    return (runs or declared or [None])[0]


def cell_config(agg: Aggregate, study: str, dataset: str, backbone: str, variant: str) -> dict[str, Any]:
    """The resolved config of one cell (:func:`config_row`; the layout of a run's config.json); a DataError when
    configs.jsonl has none or the studies' settings do not build one."""
    row = config_row(agg, study, dataset, backbone, variant)
    where = f"study {study}, {dataset}/{backbone}/{variant}"
    if row is None:
        raise DataError(f"{agg.folder / CONFIGS}: no config of {where}; rerun the aggregate rule")
    if row["config"] is None:
        raise DataError(f"no run config of {where}: {row.get('error')}")
    return row["config"]


def first_config(
    agg: Aggregate, study: str, cells: Sequence[tuple[str, Sequence[str]]], variant: str
) -> dict[str, Any]:
    """The resolved config of ``variant`` in the first of ``cells`` (``(dataset, backbones)`` in the report's
    order) that has one (:func:`cell_config`): the settings a section states once for the whole study. A
    DataError naming the first cell's problem when none has one."""
    pairs = [(ds, bb) for ds, bbs in cells for bb in bbs]
    for ds, bb in pairs:
        row = config_row(agg, study, ds, bb, variant)
        if row is not None and row["config"] is not None:
            return row["config"]
    return cell_config(agg, study, *(pairs[0] if pairs else ("", "")), variant)


def setting(config: dict[str, Any], key: str) -> Any:
    """One setting (``section.key``, e.g. ``tp.k``) of a resolved config; a DataError naming it when absent."""
    section, _, name = key.partition(".")
    values = config.get(section)
    if not isinstance(values, dict) or name not in values:
        raise DataError(f"a run config in {CONFIGS} lacks {key}; rerun the aggregate rule")
    return values[name]


def protocol_words(protocol: dict[str, Any]) -> str:
    """A study's stopping rule in words."""
    e, p = int(protocol["eval_every"]), int(protocol["patience"])
    text = (f"validate every {e} epoch{'s' if e > 1 else ''} on validation NDCG@10; stop after {p} validations "
            f"({p * e} epochs) without a better one; at most {int(protocol['max_epochs'])} epochs")
    if int(protocol.get("min_epochs", 0)):
        text += f", at least {int(protocol['min_epochs'])}"
    return text + "; test metrics from the best validation epoch"


def cell(
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


def mean_std(c: dict[str, Any] | None) -> dict[str, str]:
    if c is None:
        return {"text": "not run", "n": "", "cls": "notrun"}
    std = "" if _isnan(c.get("std")) else f" ± {float(c['std']):.4f}"
    return {"text": f"{fnum(c['mean'])}{std}", "n": f"n={int(c['n'])}", "cls": ""}
