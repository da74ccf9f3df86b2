"""The runs a workflow config asks for, and each run's `tp train --set` overrides.

One source for the Snakemake workflow (``workflow/rules/common.smk``) and for the cost estimate
(``benchmarks/grid_cost.py``). ``config`` is the workflow's config mapping, as Snakemake loads it from
``config/config.yaml`` (already checked against its schema). Its ``studies`` each name a set of runs (cells x
variants x seeds) under one protocol; a run's folder is ``results/runs/{study}/{dataset}/{backbone}/{variant}/
seed{seed}``, and a run already there whose recorded settings differ from the study's stops the workflow
(:func:`config_conflicts`), so two runs with different settings never share a folder.
"""

from __future__ import annotations

import json
import math
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tplib.config import build_config, parse_sets, with_defaults

Run = namedtuple("Run", ["study", "dataset", "backbone", "variant", "seed"])

# The protocol of a study: its keys and the `tp train --set` key each sets (one stopping rule for every variant).
PROTOCOL_KEYS = {
    "eval_every": "train.eval_every",
    "patience": "train.patience",
    "max_epochs": "train.max_epochs",
    "min_epochs": "train.min_epochs",
}


class StudyError(ValueError):
    """A study, a selection or a setting the workflow config cannot run. The message names it."""


Search = namedtuple("Search", ["tuning", "dataset", "backbone", "method"])


def studies_to_run(config: dict[str, Any]) -> list[str]:
    """The studies ``config`` runs: those its ``run`` list names, else (absent or empty) every declared study."""
    declared, tunings = config.get("studies") or {}, config.get("tunings") or {}
    names = list(config.get("run") or declared)
    unknown = [n for n in names if n not in declared and n not in tunings]
    if unknown:
        raise StudyError(f"run: unknown study {unknown[0]!r}; the config declares "
                         f"{', '.join([*declared, *tunings]) or 'none'}")
    return [n for n in names if n in declared]


def tunings_to_run(config: dict[str, Any]) -> list[str]:
    """The searches ``config`` runs: those ``run`` names and those its studies start from; with no ``run``, all."""
    tunings = config.get("tunings") or {}
    if not config.get("run"):
        return list(tunings)
    named = [n for n in config["run"] if n in tunings]
    used = [config["studies"][s].get("tuned_from") for s in studies_to_run(config)]
    return list(dict.fromkeys(n for n in [*named, *used] if n))


def tuning_dir(search: Search) -> str:
    return f"results/tuning/{search.tuning}/{search.dataset}/{search.backbone}/{search.method}"


def search_name(search: Search) -> str:
    """The search's name in its Optuna storage (and the ``study`` column of the trials table)."""
    from tplib.tune import search_name as name

    return name(*search)


def all_searches(config: dict[str, Any]) -> list[Search]:
    """Every search of the tunings to run (both methods of every cell), narrowed by ``select``."""
    sel = config.get("select") or {}
    out = []
    for name in tunings_to_run(config):
        for d, bbs in config["tunings"][name]["cells"].items():
            out += [Search(name, d, b, m) for b in bbs for m in ("baseline", "tp")
                    if (not sel.get("datasets") or d in sel["datasets"]) and
                    (not sel.get("backbones") or b in sel["backbones"])]
    return out


def tuned_sets(config: dict[str, Any], run: Run, root: str | Path = ".") -> list[str] | None:
    """For a run of a study with ``tuned_from``: the best trial's settings of its cell and method (None while that
    search has not finished); for any other run: []."""
    tuning = config["studies"][run.study].get("tuned_from")
    if not tuning:
        return []
    best = Path(root) / tuning_dir(Search(tuning, run.dataset, run.backbone, run_method(config, run))) / "best.json"
    return json.loads(best.read_text())["sets"] if best.is_file() else None


def study_runs(config: dict[str, Any], name: str) -> list[Run]:
    """Every run study ``name`` declares: its cells x variants x seeds, dataset by dataset (no selection). A
    study that starts from a search has runs only where that search has finished."""
    st = config["studies"][name]
    runs = [Run(name, d, b, v, int(s)) for d, bbs in st["cells"].items() for b in bbs for v in st["variants"]
            for s in st["seeds"]]
    return [r for r in runs if not st.get("tuned_from") or tuned_sets(config, r) is not None]


def all_runs(config: dict[str, Any]) -> list[Run]:
    """The runs ``snakemake`` makes: the selected studies' runs, narrowed by ``select`` (empty lists: all)."""
    sel = config.get("select") or {}
    keep = {f: set(sel.get(f) or ()) for f in ("datasets", "backbones", "variants")}
    keep["seeds"] = {int(s) for s in sel.get("seeds") or ()}  # `--config` gives them as strings
    return [r for name in studies_to_run(config) for r in study_runs(config, name)
            if all(not keep[f] or getattr(r, f[:-1]) in keep[f] for f in keep)]


def run_dir(run: Run) -> str:
    return f"results/runs/{run.study}/{run.dataset}/{run.backbone}/{run.variant}/seed{run.seed}"


def fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt_value(x) for x in v)
    return str(v)


def run_sets(config: dict[str, Any], run: Run) -> list[str]:
    """The `tp train --set` overrides of one run, as 'section.key=value' strings: the config's overrides in order
    all -> dataset -> backbone -> method, then (a study with ``tuned_from``) the search's best settings for the
    cell and method, then the variant's own settings, then the study's protocol (later wins; the protocol keys
    are refused anywhere else, see :func:`check_studies`)."""
    st = config["studies"][run.study]
    variant = st["variants"][run.variant]
    ov = config.get("overrides") or {}
    tuned = dict(s.split("=", 1) for s in tuned_sets(config, run) or [])
    merged: dict[str, Any] = {}
    for part in (ov.get("all"), (ov.get("datasets") or {}).get(run.dataset),
                 (ov.get("backbones") or {}).get(run.backbone), (ov.get("methods") or {}).get(variant["method"]),
                 tuned, variant.get("set")):
        merged.update(part or {})
    merged.update({PROTOCOL_KEYS[k]: v for k, v in st["protocol"].items()})
    return [f"{k}={fmt_value(v)}" for k, v in merged.items()]


def run_method(config: dict[str, Any], run: Run) -> str:
    return str(config["studies"][run.study]["variants"][run.variant]["method"])


def run_config(config: dict[str, Any], run: Run, extra: list[str] = ()) -> Any:
    """The resolved :class:`~tplib.config.RunConfig` of one run (raises ConfigError naming a bad key)."""
    return build_config(run.backbone, run_method(config, run), run.seed, run.dataset,
                        parse_sets([*run_sets(config, run), *extra]))


def check_studies(config: dict[str, Any], managed: dict[str, str]) -> list[str]:
    """Problems of the config's studies, one line each (empty: none): a protocol key or a workflow-managed key
    (``managed``: key -> where it is set instead) set outside the protocol, a selection naming nothing declared,
    and every run's resolved config (an unknown key, a bad value, e.g. model.d not divisible by n_heads)."""
    problems = []
    refused = {**{v: f"the study's protocol ({k})" for k, v in PROTOCOL_KEYS.items()}, **managed}
    ov = config.get("overrides") or {}
    places = [("overrides.all", ov.get("all"))]
    places += [(f"overrides.{sec}.{n}", s) for sec in ("datasets", "backbones", "methods")
               for n, s in (ov.get(sec) or {}).items()]
    places += [(f"studies.{sn}.variants.{vn}.set", v.get("set")) for sn, st in (config.get("studies") or {}).items()
               for vn, v in st["variants"].items()]
    for where, sets in places:
        problems += [f"{where}: {key} is set by {refused[key]}, not here" for key in (sets or {}) if key in refused]
    problems += [f"studies.{sn}.variants.{vn}.against: {v['against']!r} is not another variant of study {sn} "
                 f"({', '.join(x for x in st['variants'] if x != vn)})"
                 for sn, st in (config.get("studies") or {}).items() for vn, v in st["variants"].items()
                 if v.get("against") and (v["against"] == vn or v["against"] not in st["variants"])]
    problems += check_tunings(config, refused)
    try:
        names = studies_to_run(config)
    except StudyError as e:
        return problems + [str(e)]
    runs = [r for n in names for r in study_runs(config, n)]
    sel = config.get("select") or {}
    for field_ in ("datasets", "backbones", "variants", "seeds"):
        have = {str(getattr(r, field_[:-1])) for r in runs}
        if field_ in ("datasets", "backbones"):
            have |= {str(getattr(s, field_[:-1])) for s in all_searches({**config, "select": {}})}
        problems += [f"select.{field_}: {v!r} is in none of the studies run ({', '.join(names)})"
                     for v in sel.get(field_) or () if str(v) not in have]
    if problems:
        return problems
    seen = set()
    for r in runs:  # the settings are the same for every seed: check each (study, dataset, backbone, variant) once
        if r[:4] in seen:
            continue
        seen.add(r[:4])
        try:
            run_config(config, r)
        except Exception as e:  # ConfigError
            problems.append(f"studies.{r.study} {r.dataset}/{r.backbone}/{r.variant}: {e}")
    return problems


def check_tunings(config: dict[str, Any], refused: dict[str, str]) -> list[str]:
    """Problems of the config's searches, one line each: a study starting from an undeclared search, a search
    space or fixed setting that does not build a config, a protocol key outside the protocol, a kept setting the
    baseline does not search."""
    from tplib.tune import check_space

    problems = []
    tunings = config.get("tunings") or {}
    for sn, st in (config.get("studies") or {}).items():
        if st.get("tuned_from") and st["tuned_from"] not in tunings:
            problems.append(f"studies.{sn}.tuned_from: no search {st['tuned_from']!r} under tunings")
    for tn, tu in tunings.items():
        for method in ("baseline", "tp"):
            fixed = (tu.get("fixed") or {}).get(method) or {}
            where = f"tunings.{tn}"
            problems += [f"{where}.fixed.{method}: {k} is set by {refused[k]}, not here" for k in fixed if k in refused]
            problems += [f"{where}.spaces.{method}: {k} is set by {refused[k]}, not here"
                         for k in tu["spaces"][method] if k in refused]
            try:
                check_space(tu["spaces"][method], "sasrec", method)
                build_config("sasrec", method, 0, "", parse_sets([f"{k}={fmt_value(v)}" for k, v in fixed.items()]))
            except Exception as e:  # ConfigError
                problems.append(f"{where} ({method}): {e}")
        problems += [f"tunings.{tn}.keep: {k} is not searched for the baseline" for k in tu.get("keep") or []
                     if k not in tu["spaces"]["baseline"]]
    return problems


# Settings that may differ between a run's recorded config.json and what the config asks for now without
# making it another run: where and how fast it ran, not what it computed.
_IRRELEVANT = {("train", "device"), ("train", "threads"), ("train", "progress"), ("train", "eval_batch_users")}


def config_conflicts(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The settings (``section.key: recorded -> wanted``) in which a finished run's ``config.json`` differs from
    the config the workflow asks for now, device and threads aside; the dataset as recorded is taken as asked. A
    setting the recorded config lacks (the run predates it) counts at its default, which is the behaviour the run
    had: a new setting's default is always the old behaviour."""
    recorded = with_defaults(recorded)
    out = []
    for section, values in wanted.items():
        if not isinstance(values, dict):
            if section != "dataset" and recorded.get(section) != values:
                out.append(f"{section}: {recorded.get(section)!r} -> {values!r}")
            continue
        rec = recorded.get(section) or {}
        for key, v in values.items():
            r = rec.get(key)
            if (section, key) in _IRRELEVANT:
                continue
            if isinstance(v, (list, tuple)):
                r, v = list(r or []), list(v)
            if r != v:
                out.append(f"{section}.{key}: {r!r} -> {v!r}")
    return out


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
    """Core-hours of every cell of the runs ``config`` selects (:func:`all_runs`), one thread per job.

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
    stopping) go further. TP's epochs and seconds come from runs at the variant's own k, λ and P (where ``costs``
    has those columns): another setting can stop far earlier for its own reasons (λ = 1 collapsed ML1M SASRec at epoch 4).
    Returns one row per (study, dataset, backbone, variant) cell with the sources.
    """
    # A run listed in several aggregates counts once. Where ``costs`` names each run's folder, runs of the same
    # cell and seed under another protocol are other runs and count.
    keys = [c for c in ("study", "dataset", "backbone", "method", "variant", "seed", "k", "lam", "run") if c in costs]
    costs = costs.drop_duplicates(subset=keys)
    rows = []
    runs = all_runs(config)
    cells = dict.fromkeys(r[:4] for r in runs)
    for cell in cells:
        study, dataset, backbone, variant = cell
        n = sum(1 for r in runs if r[:4] == cell)
        cfg = run_config(config, Run(*cell, 0))
        method, tr = cfg.method, cfg.train
        chains = cfg.tp.P if method == "tp" else 1
        same = (costs.dataset == dataset) & (costs.method == method)
        if method == "tp" and {"k", "lam"} <= set(costs.columns):  # TP's runs: its own k, λ (and P) only
            same &= (costs["k"] == cfg.tp.k) & np.isclose(costs["lam"].astype(float), cfg.tp.lam)
            if "P" in costs.columns:
                same &= costs["P"] == cfg.tp.P
        mine = costs[same & (costs.backbone == backbone)]
        sp = None if speed is None else speed[(speed.dataset == dataset) & (speed.backbone == backbone)
                                               & (speed.method == method) & (speed.P == chains)]
        s_epoch, s_src = math.nan, "none"
        if sp is not None and len(sp) and (speed_first or not len(mine)):
            s_epoch = float(sp["train_s_per_epoch"].iloc[0] + sp["eval_all_users_s"].iloc[0] / tr.eval_every)
            s_src = "benchmark"
        elif len(mine):
            s_epoch, s_src = float(mine["s_per_epoch"].median()), f"{len(mine)} run(s)"
        best, b_src = math.nan, ""
        for label, sel in (("cell", same & (costs.backbone == backbone)), ("dataset", same)):
            capped = costs.loc[sel, "capped"].astype(bool)
            best = censored_median(costs.loc[sel, "best_epoch"], capped)
            if not math.isnan(best):
                b_src = f"{label} ({int((~capped).sum())} stopped, {int(capped.sum())} capped)"
                break
        if math.isnan(best):
            epochs, b_src = tr.max_epochs, "cap (median not reached)"
        else:
            epochs = max(tr.min_epochs, math.ceil(best / tr.eval_every) * tr.eval_every + tr.patience * tr.eval_every)
            epochs = min(tr.max_epochs, epochs)
        hours = n * epochs * s_epoch / 3600
        rows.append({"study": study, "dataset": dataset, "backbone": backbone, "variant": variant, "method": method,
                     "runs": n, "s_per_epoch": s_epoch, "s_source": s_src, "epochs": epochs, "epochs_source": b_src,
                     "hours_per_run": epochs * s_epoch / 3600, "core_hours": hours})
    return pd.DataFrame(rows)
