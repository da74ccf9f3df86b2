"""What the fair test still costs on one machine, from its searches' measured trials.

The fair test is a tuning (``tunings.<name>`` in the workflow config: per cell, a search of ``trials`` trials for
the baseline and for TP) and the study that starts from it (``tuned_from: <name>``: each cell's variants at the
searches' best settings, one run per seed). Its trials are ordinary runs under the study's protocol, so they
also measure what a tuned run costs. The rules, one per row of :func:`estimate_fair_test`:

- a search's hours per trial: the mean ``seconds`` of its finished and pruned trials (those count towards the
  budget; a retried trial's seconds include its earlier parts, so failed and interrupted ones are not added
  again);
- a tuned run's hours: the median ``seconds`` of its method's search's finished trials (a run at one setting,
  trained to its stopping rule; pruned trials stopped early), for every variant of that method (TP's controls
  run at tuned TP's settings);
- a search without a counted trial borrows the nearest search of the same method that has some (the same
  backbone on another dataset, else another backbone on the same dataset, else any), its seconds scaled by the
  two datasets' sizes (users for TP: an epoch at P = 1 is one outer step per k existing users; interactions for
  the baseline: an epoch is one pass over the training rows) and by the two backbones' one-thread training epochs
  in the speed benchmark. Each row names its source and factors.

One torch thread per job, so core-hours are job-hours. A row with a factor is an estimate, not a measurement;
so is every row's "left", which assumes the trials to come cost what the trials so far cost.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from tplib.config import DENSE_DATASETS
from tplib.tune import search_name

COUNTED = ("COMPLETE", "PRUNED")


def _size(stats: pd.DataFrame, dataset: str, method: str) -> float:
    """The size an epoch's cost follows: users for TP, interactions for the baseline."""
    row = stats.set_index("dataset").loc[dataset]
    return float(row["users"] if method == "tp" else row["interactions"])


def _epoch_ratio(speed: pd.DataFrame | None, backbone: str, ref: str, method: str, dataset: str) -> float:
    """How much longer a one-thread training epoch of ``backbone`` is than one of ``ref`` (method at P = 1) in the
    speed benchmark, on ``dataset`` if it was benchmarked, else on the benchmarked datasets of the same kind
    (dense or not: their sequence lengths differ); NaN where it has no such pair."""
    if speed is None:
        return math.nan
    s = speed[(speed["method"] == method) & (speed["P"] == 1)]
    if "threads" in s:
        s = s[s["threads"] == 1]
    per = s.groupby(["dataset", "backbone"])["train_s_per_epoch"].last().unstack()
    if backbone not in per or ref not in per:
        return math.nan
    ratio = (per[backbone] / per[ref]).dropna()
    same = [d for d in ratio.index if d == dataset] or [d for d in ratio.index
                                                       if (d in DENSE_DATASETS) == (dataset in DENSE_DATASETS)]
    return float(ratio[same].mean()) if same else math.nan


def _counted(trials: pd.DataFrame, tuning: str, dataset: str, backbone: str, method: str) -> pd.DataFrame:
    """The finished and pruned trials of one search of tuning ``tuning``."""
    t = trials[trials["study"] == search_name(tuning, dataset, backbone, method)]
    return t[t["state"].isin(COUNTED)]


def _measured(trials: pd.DataFrame, tuning: str, cells: list[tuple[str, str]], dataset: str, backbone: str,
              method: str, stats: pd.DataFrame, speed: pd.DataFrame | None) -> tuple[pd.DataFrame, float, str]:
    """The counted trials that stand for this search (its own where it has one; else the same method's search
    nearest to it among the tuning's ``cells``: the same backbone, then the same dataset, then any, the one with
    the most counted trials first, then by name), the factor their seconds are scaled by, and the source in words."""
    counted = {cell: c for cell in cells if len(c := _counted(trials, tuning, *cell, method))}
    rank = {(d, b): ((b != backbone) * 2 + (d != dataset), -len(c)) for (d, b), c in counted.items()}
    for ref_ds, ref_bb in sorted(rank, key=lambda cell: (rank[cell], cell)):  # ties: by name
        factor, how = 1.0, []
        if ref_ds != dataset:
            r = _size(stats, dataset, method) / _size(stats, ref_ds, method)
            factor, how = factor * r, [*how, f"{r:.2f} ({'users' if method == 'tp' else 'interactions'})"]
        if ref_bb != backbone:
            r = _epoch_ratio(speed, backbone, ref_bb, method, dataset)
            if math.isnan(r):
                continue  # no benchmark to carry another backbone's seconds over
            factor, how = factor * r, [*how, f"{r:.2f} (benchmark epoch)"]
        where = "" if (ref_ds, ref_bb) == (dataset, backbone) else f" of {ref_ds} {ref_bb}"
        return counted[(ref_ds, ref_bb)], factor, where + "".join(f" x {h}" for h in how)
    return trials.iloc[:0], math.nan, "none"


def estimate_fair_test(config: dict[str, Any], tuning: str, trials: pd.DataFrame, stats: pd.DataFrame,
                       costs: pd.DataFrame, speed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Core-hours left in tuning ``tuning`` and in the studies that start from it, one row per search and one
    per (study, cell, variant): kind, name, dataset, backbone, method/variant, budget (trials or runs), done,
    hours per trial or run, its source, core-hours left. ``trials``: every search's trials (``trials.csv``);
    ``stats``: dataset sizes (``stats.csv``: dataset, users, interactions); ``costs``: finished runs
    (``costs.csv``: study, dataset, backbone, variant, seed), so that a finished run is not counted again;
    ``speed`` (optional): ``benchmarks/speed.py --csv`` epochs, to carry trials over to another backbone."""
    tu = config["tunings"][tuning]
    cells = [(d, b) for d, bbs in tu["cells"].items() for b in bbs]

    def row(kind: str, name: str, cell: tuple[str, str, str], budget: int, done: int, hours: float, source: str):
        left = max(0, budget - done)
        return {"kind": kind, "name": name, "dataset": cell[0], "backbone": cell[1], "variant": cell[2],
                "budget": budget, "done": done, "hours_each": hours, "source": "none" if math.isnan(hours) else source,
                "core_hours_left": hours * left if left else 0.0}

    rows = []
    for dataset, backbones in tu["cells"].items():
        for backbone in backbones:
            for method in ("baseline", "tp"):
                done = len(_counted(trials, tuning, dataset, backbone, method))
                ref, factor, source = _measured(trials, tuning, cells, dataset, backbone, method, stats, speed)
                hours = float(ref["seconds"].mean()) * factor / 3600 if len(ref) else math.nan
                rows.append(row("search", tuning, (dataset, backbone, method), int(tu["trials"]), done, hours,
                                f"mean of {len(ref)} trials{source}"))
    for study, st in (config.get("studies") or {}).items():
        if st.get("tuned_from") != tuning:
            continue
        seeds = {int(s) for s in st["seeds"]}
        for dataset, backbones in st["cells"].items():
            for backbone in backbones:
                for variant, spec in st["variants"].items():
                    ref, factor, source = _measured(trials, tuning, cells, dataset, backbone, spec["method"], stats,
                                                    speed)
                    complete = ref[ref["state"] == "COMPLETE"]
                    hours = float(complete["seconds"].median()) * factor / 3600 if len(complete) else math.nan
                    mine = costs[(costs["study"] == study) & (costs["dataset"] == dataset)
                                 & (costs["backbone"] == backbone) & (costs["variant"] == variant)]
                    rows.append(row("runs", study, (dataset, backbone, variant), len(seeds),
                                    int(mine["seed"].isin(seeds).sum()), hours,
                                    f"median of {len(complete)} finished trials{source}"))
    return pd.DataFrame(rows)
