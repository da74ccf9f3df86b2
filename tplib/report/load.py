"""The report's input and its small vocabulary: the aggregated tables (``tp aggregate``'s five CSVs and the
studies as configured, ``config.yaml``), number formats, the verdict on the paper's claim, and the rows of one
study."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tplib.config import RunConfig
from tplib.grid import Run, run_config
from tplib.io import DataError

__all__ = ["ALPHA", "LEVEL", "Aggregate", "cell", "control_variant", "load_aggregate", "mean_std", "protocol_words",
           "study_config", "tp_variant", "verdict"]

TABLES = ("runs", "summary", "costs", "diagnostics", "stats")
ALPHA = 0.05  # significance level of the verdicts
LEVEL = 0.01  # a relative difference below this reads "level", whatever its p-value


@dataclass(frozen=True)
class Aggregate:
    """The five aggregated tables (see tplib.aggregate), with typed key columns, and the studies as configured
    (``config.yaml`` beside them: each study's title, words, cells, seeds, protocol and variants)."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    costs: pd.DataFrame
    diagnostics: pd.DataFrame
    stats: pd.DataFrame
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


def load_aggregate(folder: str | Path) -> Aggregate:
    """Read ``runs.csv``, ``summary.csv``, ``costs.csv``, ``diagnostics.csv``, ``stats.csv`` and ``config.yaml``
    from ``folder``."""
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
    return Aggregate(folder=folder, config=config, config_text=text, **t)


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


def study_config(agg: Aggregate, study: str, dataset: str, backbone: str, variant: str) -> RunConfig:
    """The resolved config of one (study, dataset, backbone, variant) cell, as the workflow builds it."""
    return run_config(agg.config, Run(study, dataset, backbone, variant, 0))


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
