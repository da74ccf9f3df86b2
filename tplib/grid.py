"""The runs a workflow config asks for, and each run's `tp train --set` overrides.

One source for the Snakemake workflow (``workflow/rules/common.smk``) and for the cost estimate
(``benchmarks/grid_cost.py``). ``config`` is the workflow's config mapping, as Snakemake loads it from
``config/config.yaml`` (already checked against its schema).
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tplib.config import build_config, parse_sets

Run = namedtuple("Run", ["dataset", "backbone", "spec", "seed"])


def fmt_lam(lam: float) -> str:
    """λ as written in run folders: the shortest exact decimal (0.1, 10, 0, 1e-05)."""
    s = repr(float(lam))
    return s[:-2] if s.endswith(".0") else s


def tp_spec(k: int, lam: float) -> str:
    return f"tp/k{int(k)}_lam{fmt_lam(lam)}"


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """'baseline' -> ('baseline', None, None); 'tp/k2_lam0.1' -> ('tp', '2', '0.1')."""
    if spec == "baseline":
        return "baseline", None, None
    method, _, setting = spec.partition("/")
    k, _, lam = setting.partition("_lam")
    return method, k[1:], lam


def main_runs(config: dict[str, Any]) -> list[Run]:
    """The main grid: datasets x backbones x methods x seeds; TP at tp_default."""
    tp = tp_spec(config["tp_default"]["k"], config["tp_default"]["lam"])
    specs = [("baseline" if m == "baseline" else tp) for m in config["methods"]]
    return [Run(d, b, spec, int(s)) for d in config["datasets"] for b in config["backbones"] for spec in specs
            for s in config["seeds"]]


def ablation_runs(config: dict[str, Any]) -> list[Run]:
    """Figures 6 and 7: TP over ablation.k at tp_default.lam, and over ablation.lam at tp_default.k."""
    ab, td = config["ablation"], config["tp_default"]
    specs = [tp_spec(k, td["lam"]) for k in ab["k"]] + [tp_spec(td["k"], lam) for lam in ab["lam"]]
    return [Run(d, b, spec, int(s)) for d in ab["datasets"] for b in ab["backbones"] for spec in specs
            for s in ab["seeds"]]


def all_runs(config: dict[str, Any]) -> list[Run]:
    """Every configured run once (an ablation point equal to a main-grid run is that run)."""
    return list(dict.fromkeys(main_runs(config) + ablation_runs(config)))


def run_dir(run: Run) -> str:
    return f"results/runs/{run.dataset}/{run.backbone}/{run.spec}/seed{run.seed}"


def fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt_value(x) for x in v)
    return str(v)


def run_sets(config: dict[str, Any], dataset: str, backbone: str, method: str) -> list[str]:
    """The configured overrides of one (dataset, backbone, method), in order all -> dataset -> backbone ->
    method (later wins), as 'section.key=value' strings. Missing sections count as empty (the report reads
    partial config files; the workflow's schema fills every section)."""
    ov = config.get("overrides") or {}
    merged: dict[str, Any] = {}
    for part in (ov.get("all"), (ov.get("datasets") or {}).get(dataset), (ov.get("backbones") or {}).get(backbone),
                 (ov.get("methods") or {}).get(method)):
        merged.update(part or {})
    return [f"{k}={fmt_value(v)}" for k, v in merged.items()]


# ---------------------------------------------------------------------------------------------------------
# What a config's grid costs, estimated from measured runs and epoch times


def censored_median(best: ArrayLike, capped: ArrayLike) -> float:
    """Kaplan-Meier median of best epochs, where a run that hit its epoch cap (``capped``) is censored at its best
    epoch so far (its best epoch without the cap is at least that). NaN when the estimate never falls to one half
    (too many runs censored too early) or there are no runs. Without censoring it is the ordinary median (at an
    estimate of exactly one half, the mean of that epoch and the next one that stopped)."""
    b = np.asarray(best, dtype=float)
    cap = np.asarray(capped, dtype=bool)
    times = np.unique(b[~cap])
    surv = 1.0
    for i, t in enumerate(times):
        at_risk = int((b >= t).sum())
        surv *= 1.0 - int(((b == t) & ~cap).sum()) / at_risk
        half = bool(np.isclose(surv, 0.5))
        if half and i + 1 < len(times):
            return float((t + times[i + 1]) / 2)
        if half or surv < 0.5:
            return float(t)
    return math.nan


def estimate_cost(
    config: dict[str, Any], costs: pd.DataFrame, speed: pd.DataFrame | None = None, speed_first: bool = False
) -> pd.DataFrame:
    """Core-hours of every (dataset, backbone, method) cell of ``config``'s grid, one thread per job.

    ``costs``: measured runs (``costs.csv`` of ``tp aggregate``: s_per_epoch, best_epoch, capped per run; a
    run that appears twice, e.g. in two aggregates, counts once).
    ``speed`` (optional): per-epoch times from ``benchmarks/speed.py --csv`` (dataset, backbone, method, P,
    train_s_per_epoch, eval_all_users_s), used where a cell has no measured run (TP at the config's tp.P).

    Per cell: seconds per epoch = the median over the cell's measured runs (their wall time per epoch, validation
    included), else the benchmark's training epoch plus one full-ranking validation every ``eval_every`` epochs.
    ``speed_first``: the benchmark's seconds wherever it has the cell, the runs' only where it has not (for a
    machine other than the one the runs were measured on, e.g. a GPU benchmark with CPU runs' stopping epochs).
    Epochs = the config's stopping rule applied to a best epoch: the median best epoch of the cell's runs, else of
    the same dataset and method's runs, else ``max_epochs``. A run that hit its cap only shows that its best epoch
    is at least its best so far, so the median is the Kaplan-Meier median with such runs censored there
    (:func:`censored_median`): where most runs hit a cap, the few that stopped early do not set it (they are the
    ones that peaked soonest), and the median is unknown unless runs without that cap (e.g. TP trained to early
    stopping) go further. TP's best epochs come from runs at the
    config's ``tp_default`` k and λ only (where ``costs`` has k and lam): an ablation setting can stop far
    earlier for its own reasons (λ = 1 collapsed ML1M SASRec at epoch 4) and says nothing of the main runs'.
    Returns one row per cell with the sources.
    """
    # A run listed in several aggregates counts once. Where ``costs`` names each run's folder, runs of the same
    # cell and seed under another protocol (results/schedule: TP to early stopping) are other runs and count.
    keys = [c for c in ("dataset", "backbone", "method", "seed", "k", "lam", "run") if c in costs]
    costs = costs.drop_duplicates(subset=keys)
    stops = costs
    if {"k", "lam"} <= set(stops.columns):  # TP: the main setting's stopping epochs only
        main = (stops["k"] == config["tp_default"]["k"]) & np.isclose(stops["lam"], config["tp_default"]["lam"])
        stops = stops[(stops["method"] != "tp") | main]
    rows = []
    runs = all_runs(config)
    cells = dict.fromkeys((r.dataset, r.backbone, parse_spec(r.spec)[0]) for r in runs)
    for dataset, backbone, method in cells:
        n = sum(1 for r in runs if (r.dataset, r.backbone, parse_spec(r.spec)[0]) == (dataset, backbone, method))
        cfg = build_config(backbone, method, 0, dataset, parse_sets(run_sets(config, dataset, backbone, method)))
        tr, chains = cfg.train, (cfg.tp.P if method == "tp" else 1)
        mine = costs[(costs.dataset == dataset) & (costs.backbone == backbone) & (costs.method == method)]
        sp = None if speed is None else speed[(speed.dataset == dataset) & (speed.backbone == backbone)
                                               & (speed.method == method) & (speed.P == chains)]
        s_epoch, s_src = math.nan, "none"
        if sp is not None and len(sp) and (speed_first or not len(mine)):
            s_epoch = float(sp["train_s_per_epoch"].iloc[0] + sp["eval_all_users_s"].iloc[0] / tr.eval_every)
            s_src = "benchmark"
        elif len(mine):
            s_epoch, s_src = float(mine["s_per_epoch"].median()), f"{len(mine)} run(s)"
        best, b_src = math.nan, ""
        for label, sel in (
            ("cell", (stops.dataset == dataset) & (stops.backbone == backbone) & (stops.method == method)),
            ("dataset", (stops.dataset == dataset) & (stops.method == method)),
        ):
            capped = stops.loc[sel, "capped"].astype(bool)
            best = censored_median(stops.loc[sel, "best_epoch"], capped)
            if not math.isnan(best):
                b_src = f"{label} ({int((~capped).sum())} stopped, {int(capped.sum())} capped)"
                break
        if math.isnan(best):
            epochs, b_src = tr.max_epochs, "cap (median not reached)"
        else:
            epochs = min(tr.max_epochs, math.ceil(best / tr.eval_every) * tr.eval_every + tr.patience * tr.eval_every)
        hours = n * epochs * s_epoch / 3600
        rows.append({"dataset": dataset, "backbone": backbone, "method": method, "runs": n,
                     "s_per_epoch": s_epoch, "s_source": s_src, "epochs": epochs, "epochs_source": b_src,
                     "hours_per_run": epochs * s_epoch / 3600, "core_hours": hours})
    return pd.DataFrame(rows)
