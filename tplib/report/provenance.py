"""Where the report's numbers come from: the commit of the code, config and runs it was built from (a stamp that
depends on the committed data, never on the clock), the package versions, where the runs ran, and the data's
checksums."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from tplib.report.figures import label
from tplib.report.load import CONFIGS, TABLES, Aggregate, _isnan

__all__ = ["INPUT_PATHS", "build_stamp", "data_provenance", "package_versions", "run_environment"]

PACKAGES = ("torch", "numpy", "pandas", "scipy", "matplotlib", "jinja2", "tplib")
# What a report is built from: the runs, the searches, the studies and the code that aggregates and renders them.
INPUT_PATHS = ("results/runs", "results/tuning", "config", "Snakefile", "workflow", "tplib",
               ":(exclude)results/tuning/trials.csv")  # that one is the aggregate rule's output, as results/aggregate


def _git(args: list[str], where: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_stamp(agg: Aggregate, repo: Path | None = None) -> dict[str, Any]:
    """The report's stamp: a hash of the aggregated files it reads (the tables, config.yaml and configs.jsonl), and
    the last commit that changed its inputs (:data:`INPUT_PATHS`) with that commit's date, or ``dirty`` when those
    inputs have uncommitted changes (a report to commit is never built from such a tree). Nothing here reads the
    clock, so rebuilding the same commit gives the same page."""
    h = hashlib.sha256()
    for name in (*(f"{t}.csv" for t in TABLES), "config.yaml", CONFIGS):
        path = agg.folder / name
        h.update(path.read_bytes() if path.is_file() else b"")
    stamp: dict[str, Any] = {"tables": h.hexdigest()[:16], "commit": "unknown", "date": "", "dirty": None}
    root = _git(["rev-parse", "--show-toplevel"], repo or agg.folder)
    if root is None:
        return stamp
    where = Path(root)
    last = _git(["log", "-1", "--format=%H %cs", "--", *INPUT_PATHS], where)
    status = _git(["status", "--porcelain", "--untracked-files=all", "--", *INPUT_PATHS], where)
    if last:
        stamp["commit"], _, stamp["date"] = last.partition(" ")
    if status is not None:  # ignored files (checkpoints, logs) are not listed
        stamp["dirty"] = bool(status)
    return stamp


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

        def g(c: str, r: pd.Series = r) -> str:
            return "—" if c not in r or _isnan(r[c]) else str(r[c])

        out.append(
            {
                "dataset": label(g("dataset")),
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
