"""tplib.grid: the studies' runs (the Snakefile's source of truth), each run's `tp train --set` overrides and
resolved config, the checks that stop a bad config before any job, and the grid's cost estimate."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tplib.config import RunConfig, build_config, deep_merge, parse_sets
from tplib.grid import (
    Run,
    StudyError,
    all_runs,
    censored_median,
    check_studies,
    config_conflicts,
    estimate_cost,
    run_config,
    run_dir,
    run_method,
    run_sets,
    studies_to_run,
    study_runs,
)

ROOT = Path(__file__).resolve().parents[1]
# As workflow/rules/common.smk passes them: keys the workflow sets itself, and where.
MANAGED = {"train.device": "the top-level `device` key", "train.threads": "the rule's threads (profiles: set-threads)"}

CONFIG = {
    "studies": {
        "main": {
            "title": "Main",
            "about": "Both methods, two backbones on music, one on ml1m.",
            "cells": {"music": ["sasrec", "gru4rec"], "ml1m": ["sasrec"]},
            "seeds": [0, 1],
            "protocol": {"eval_every": 2, "patience": 10, "max_epochs": 200, "min_epochs": 0},
            "variants": {"baseline": {"method": "baseline"}, "tp": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}}},
        },
        "abl": {
            "title": "Ablation",
            "about": "k and lambda, another protocol.",
            "cells": {"music": ["sasrec"]},
            "seeds": [0, 1, 2],
            "protocol": {"eval_every": 5, "patience": 10, "max_epochs": 300, "min_epochs": 100},
            "variants": {
                "baseline": {"method": "baseline"},
                "tp-k1": {"method": "tp", "set": {"tp.k": 1, "tp.lam": 0.1, "model.d": 16}},
                "tp-lam1": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 1}},
            },
        },
    },
    "overrides": {
        "all": {"train.progress": False, "model.d": 40, "eval.Ns": [1, 10]},
        "datasets": {"music": {"model.d": 48, "train.lr": 0.002}},
        "backbones": {"sasrec": {"model.d": 64}},
        "methods": {"tp": {"tp.beta": 0.002, "model.d": 32}},
    },
}


def with_(**changes) -> dict:
    """CONFIG with top-level keys replaced (a deep copy: CONFIG itself never changes)."""
    return {**copy.deepcopy(CONFIG), **copy.deepcopy(changes)}


# ---------------------------------------------------------------------------------------------------------
# The runs


def test_every_declared_study_runs_by_default_in_declaration_order():
    assert studies_to_run(CONFIG) == ["main", "abl"]
    assert studies_to_run(with_(run=[])) == ["main", "abl"]  # empty: all
    assert studies_to_run(with_(run=["abl"])) == ["abl"]
    with pytest.raises(StudyError, match=r"run: unknown study 'nope'; the config declares main, abl"):
        studies_to_run(with_(run=["abl", "nope"]))


def test_study_runs_are_cells_x_variants_x_seeds():
    runs = study_runs(CONFIG, "main")
    assert len(runs) == 3 * 2 * 2 and len(set(runs)) == len(runs)
    assert runs[:5] == [  # dataset by dataset, then backbone, variant, seed
        Run("main", "music", "sasrec", "baseline", 0), Run("main", "music", "sasrec", "baseline", 1),
        Run("main", "music", "sasrec", "tp", 0), Run("main", "music", "sasrec", "tp", 1),
        Run("main", "music", "gru4rec", "baseline", 0),
    ]
    assert runs[-1] == Run("main", "ml1m", "sasrec", "tp", 1)
    abl = study_runs(CONFIG, "abl")
    assert len(abl) == 1 * 3 * 3 and {r.variant for r in abl} == {"baseline", "tp-k1", "tp-lam1"}
    assert all(r.study == "abl" and isinstance(r.seed, int) for r in abl)


def test_all_runs_of_the_selected_studies():
    runs = all_runs(CONFIG)
    assert runs == study_runs(CONFIG, "main") + study_runs(CONFIG, "abl")
    assert len(runs) == 12 + 9
    assert all_runs(with_(run=["abl"])) == study_runs(CONFIG, "abl")
    empty = {"datasets": [], "backbones": [], "variants": [], "seeds": []}
    assert all_runs(with_(select=empty)) == runs  # empty lists select everything


def test_all_runs_narrowed_by_select_with_seeds_as_strings():
    """`--config 'select={seeds: [1, 2]}'` gives the seeds as strings: they are taken as numbers."""
    sel = {"datasets": ["music"], "backbones": ["sasrec"], "variants": ["tp", "tp-k1"], "seeds": ["1", "2"]}
    assert all_runs(with_(select=sel)) == [
        Run("main", "music", "sasrec", "tp", 1),  # main has no seed 2
        Run("abl", "music", "sasrec", "tp-k1", 1),
        Run("abl", "music", "sasrec", "tp-k1", 2),
    ]
    assert all_runs(with_(select={"seeds": [2]})) == [r for r in study_runs(CONFIG, "abl") if r.seed == 2]
    only_ml1m = all_runs(with_(select={"datasets": ["ml1m"]}))
    assert len(only_ml1m) == 4 and {(r.study, r.dataset) for r in only_ml1m} == {("main", "ml1m")}
    assert all_runs(with_(run=["abl"], select={"datasets": ["ml1m"]})) == []  # selects within the run studies


def test_run_dir():
    assert run_dir(Run("abl", "music", "sasrec", "tp-k1", 2)) == "results/runs/abl/music/sasrec/tp-k1/seed2"


def test_run_sets_overrides_in_order_then_the_variant_then_the_protocol():
    sets = run_sets(CONFIG, Run("main", "music", "sasrec", "tp", 0))
    # all -> dataset -> backbone -> method (model.d: 40, 48, 64, 32: the method's wins), the variant, the protocol
    assert sets == [
        "train.progress=false", "model.d=32", "eval.Ns=1,10", "train.lr=0.002", "tp.beta=0.002", "tp.k=2",
        "tp.lam=0.1", "train.eval_every=2", "train.patience=10", "train.max_epochs=200", "train.min_epochs=0",
    ]
    assert "model.d=64" in run_sets(CONFIG, Run("main", "music", "sasrec", "baseline", 0))  # the backbone's
    assert "model.d=48" in run_sets(CONFIG, Run("main", "music", "gru4rec", "baseline", 0))  # the dataset's
    ml1m = run_sets(CONFIG, Run("main", "ml1m", "sasrec", "baseline", 1))
    assert "model.d=64" in ml1m and not any(s.startswith("train.lr=") for s in ml1m)  # music's lr: music only
    assert "model.d=16" in run_sets(CONFIG, Run("abl", "music", "sasrec", "tp-k1", 0))  # the variant's over all
    abl = run_sets(CONFIG, Run("abl", "music", "sasrec", "baseline", 0))
    assert abl[-4:] == ["train.eval_every=5", "train.patience=10", "train.max_epochs=300", "train.min_epochs=100"]


def test_the_protocol_wins_over_any_other_setting():
    cfg = copy.deepcopy(CONFIG)
    cfg["overrides"]["all"]["train.patience"] = 99
    cfg["studies"]["main"]["variants"]["tp"]["set"]["train.eval_every"] = 7
    sets = run_sets(cfg, Run("main", "music", "sasrec", "tp", 0))
    assert "train.eval_every=2" in sets and "train.patience=10" in sets
    assert "train.eval_every=7" not in sets and "train.patience=99" not in sets


def test_run_method_and_run_config():
    run = Run("abl", "music", "sasrec", "tp-k1", 2)
    assert run_method(CONFIG, run) == "tp" and run_method(CONFIG, run._replace(variant="baseline")) == "baseline"
    cfg = run_config(CONFIG, run)
    assert isinstance(cfg, RunConfig)
    assert (cfg.backbone, cfg.method, cfg.seed, cfg.dataset) == ("sasrec", "tp", 2, "music")
    assert (cfg.tp.k, cfg.tp.lam, cfg.tp.beta, cfg.model.d) == (1, 0.1, 0.002, 16)
    assert (cfg.train.eval_every, cfg.train.patience, cfg.train.max_epochs, cfg.train.min_epochs) == (5, 10, 300, 100)
    assert cfg.eval.Ns == (1, 10) and cfg.train.progress is False and cfg.train.lr == 0.002
    assert cfg.train.device == "cpu"
    assert run_config(CONFIG, run, ["train.device=cuda"]).train.device == "cuda"  # extra sets come last
    b = run_config(CONFIG, Run("main", "ml1m", "sasrec", "baseline", 1))
    assert (b.method, b.seed, b.model.d, b.train.lr, b.model.max_len) == ("baseline", 1, 64, 1e-3, 200)  # ml1m's


def test_overlay_configs_merge_nested_and_later_wins():
    """benchmarks/grid_cost.py merges --config files with tplib.config.deep_merge, as --configfile does."""
    merged = deep_merge(CONFIG, {"run": ["abl"], "studies": {"abl": {"seeds": [0]}}})
    assert merged["studies"]["abl"]["seeds"] == [0] and merged["studies"]["abl"]["protocol"]["min_epochs"] == 100
    assert "main" in merged["studies"] and len(all_runs(merged)) == 3
    assert CONFIG["studies"]["abl"]["seeds"] == [0, 1, 2] and "run" not in CONFIG  # the inputs are not modified


# ---------------------------------------------------------------------------------------------------------
# The shipped configs


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_the_shipped_config_is_clean_and_runs_every_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where no search has finished yet
    cfg = _load("config.yaml")
    assert check_studies(cfg, MANAGED) == []
    assert studies_to_run(cfg) == ["paper", "ablation", "batched", "tuned", "alpha"]
    assert {cfg["report"]["main"], cfg["report"]["ablation"]} <= set(cfg["studies"])
    runs = all_runs(cfg)
    # paper 4 x 3 cells x 2 variants x 10 seeds; ablation (3 + 1) cells x 10 variants x 3 seeds; batched 1 x 4 x 3;
    # alpha 1 x 2 x 1; tuned: none until its searches finish
    assert len(runs) == 240 + 120 + 12 + 2 and len(set(runs)) == len(runs)
    same = {json.dumps(st["protocol"], sort_keys=True) for st in cfg["studies"].values()}
    assert same == {json.dumps({"eval_every": 2, "max_epochs": 400, "min_epochs": 0, "patience": 50}, sort_keys=True)}
    c = run_config(cfg, Run("batched", "movietweetings", "sasrec", "tp-P64", 0))
    assert (c.tp.k, c.tp.lam, c.tp.P, c.train.patience) == (2, 0.1, 64, 50)
    assert run_config(cfg, Run("alpha", "music", "sasrec", "tp-alpha0.01", 0)).tp.alpha == 0.01


def test_the_smoke_config_runs_its_own_studies():
    cfg = deep_merge(_load("config.yaml"), _load("smoke.yaml"))  # as `--configfile config/smoke.yaml` merges
    assert check_studies(cfg, MANAGED) == []
    assert studies_to_run(cfg) == ["smoke", "smoke-ablation", "smoke-tuned"]
    runs = all_runs(cfg)
    assert len(runs) == 3 * 2 * 2 + 1 * 4 * 2 and {r.dataset for r in runs} == {"mt-sample"}
    c = run_config(cfg, Run("smoke-ablation", "mt-sample", "sasrec", "tp-lam0", 1))
    assert (c.tp.k, c.tp.lam, c.train.max_epochs, c.train.eval_every) == (2, 0.0, 2, 1)


# ---------------------------------------------------------------------------------------------------------
# check_studies: every class of problem, each naming its place


def test_check_studies_accepts_a_good_config():
    assert check_studies(CONFIG, MANAGED) == []
    sel = {"datasets": ["ml1m"], "backbones": ["gru4rec"], "variants": ["tp-lam1"], "seeds": ["2"]}
    assert check_studies(with_(select=sel), MANAGED) == []  # each is in some study run (not necessarily together)


def test_check_studies_refuses_protocol_and_managed_keys_outside_the_protocol():
    cfg = copy.deepcopy(CONFIG)
    cfg["overrides"]["all"]["train.device"] = "cuda"
    cfg["overrides"]["backbones"]["sasrec"]["train.eval_every"] = 3
    cfg["overrides"]["methods"]["tp"]["train.threads"] = 2
    cfg["studies"]["abl"]["variants"]["tp-k1"]["set"]["train.patience"] = 3
    assert check_studies(cfg, MANAGED) == [
        "overrides.all: train.device is set by the top-level `device` key, not here",
        "overrides.backbones.sasrec: train.eval_every is set by the study's protocol (eval_every), not here",
        "overrides.methods.tp: train.threads is set by the rule's threads (profiles: set-threads), not here",
        "studies.abl.variants.tp-k1.set: train.patience is set by the study's protocol (patience), not here",
    ]
    cfg = copy.deepcopy(CONFIG)
    cfg["overrides"]["datasets"]["music"]["train.max_epochs"] = 5
    cfg["studies"]["main"]["variants"]["baseline"]["set"] = {"train.min_epochs": 1}
    assert check_studies(cfg, {}) == [
        "overrides.datasets.music: train.max_epochs is set by the study's protocol (max_epochs), not here",
        "studies.main.variants.baseline.set: train.min_epochs is set by the study's protocol (min_epochs), not here",
    ]


def test_check_studies_refuses_a_selection_of_nothing_run():
    sel = {"datasets": ["game", "music"], "backbones": ["caser"], "variants": ["tp-P64"], "seeds": ["7", 1]}
    assert check_studies(with_(select=sel), MANAGED) == [
        "select.datasets: 'game' is in none of the studies run (main, abl)",
        "select.backbones: 'caser' is in none of the studies run (main, abl)",
        "select.variants: 'tp-P64' is in none of the studies run (main, abl)",
        "select.seeds: '7' is in none of the studies run (main, abl)",
    ]
    # declared, but only in a study not run
    assert check_studies(with_(run=["abl"], select={"datasets": ["ml1m"], "seeds": [2]}), MANAGED) == [
        "select.datasets: 'ml1m' is in none of the studies run (abl)",
    ]
    assert check_studies(with_(run=["main"], select={"seeds": [2]}), MANAGED) == [
        "select.seeds: 2 is in none of the studies run (main)",
    ]


def test_check_studies_names_an_unknown_study_to_run():
    assert check_studies(with_(run=["main", "typo"]), MANAGED) == [
        "run: unknown study 'typo'; the config declares main, abl"
    ]


def test_check_studies_names_a_bad_against():
    cfg = copy.deepcopy(CONFIG)
    cfg["studies"]["abl"]["variants"]["tp-lam1"]["against"] = "tp-k1"
    assert check_studies(cfg, MANAGED) == []
    cfg["studies"]["abl"]["variants"]["tp-lam1"]["against"] = "tp-lam1"
    cfg["studies"]["main"]["variants"]["tp"]["against"] = "nope"
    assert check_studies(cfg, MANAGED) == [
        "studies.main.variants.tp.against: 'nope' is not another variant of study main (baseline)",
        f"studies.abl.variants.tp-lam1.against: 'tp-lam1' is not another variant of study abl "
        f"({', '.join(v for v in CONFIG['studies']['abl']['variants'] if v != 'tp-lam1')})",
    ]


def test_check_studies_resolves_every_variant_and_names_a_bad_key_or_value():
    cfg = copy.deepcopy(CONFIG)
    cfg["studies"]["abl"]["variants"]["tp-lam1"]["set"]["tp.kk"] = 3
    problems = check_studies(cfg, MANAGED)
    assert len(problems) == 1  # one cell of the study; checked once, not once per seed
    assert problems[0].startswith("studies.abl music/sasrec/tp-lam1: unknown config key tp.kk; known keys under tp:")
    cfg = copy.deepcopy(CONFIG)
    cfg["studies"]["main"]["variants"]["tp"]["set"]["model.n_heads"] = 3  # model.d 32 is not divisible by 3
    problems = check_studies(cfg, MANAGED)
    assert problems == [f"studies.main {d}/{b}/tp: model.d (32) must be divisible by model.n_heads (3)"
                        for d, b in (("music", "sasrec"), ("music", "gru4rec"), ("ml1m", "sasrec"))]
    cfg = copy.deepcopy(CONFIG)
    cfg["overrides"]["all"]["train.lr"] = "fast"
    assert check_studies(cfg, MANAGED) == [  # music's own train.lr wins over it: only ml1m's cells fail
        f"studies.main ml1m/sasrec/{v}: train.lr must be a number, got 'fast'" for v in ("baseline", "tp")]


# ---------------------------------------------------------------------------------------------------------
# config_conflicts: a finished run's recorded settings against what its study asks for now


def _recorded(run: Run, config: dict = CONFIG, extra: tuple = ()) -> dict:
    """A run's config.json as `tp train` writes it (JSON: tuples become lists)."""
    return json.loads(run_config(config, run, list(extra)).to_json())


def test_config_conflicts_ignore_where_and_how_fast_a_run_ran():
    run = Run("main", "music", "sasrec", "tp", 1)
    wanted = run_config(CONFIG, run).to_dict()
    assert config_conflicts(_recorded(run), wanted) == []  # lists (eval.Ns) against tuples
    ran_elsewhere = _recorded(run, extra=("train.device=cuda", "train.threads=4", "train.progress=true",
                                          "train.eval_batch_users=64"))
    assert config_conflicts(ran_elsewhere, wanted) == []
    renamed = _recorded(run)
    renamed["dataset"] = "music-v2"  # the dataset as recorded is taken as asked
    assert config_conflicts(renamed, wanted) == []


def test_config_conflicts_report_what_changed():
    run = Run("main", "music", "sasrec", "tp", 1)
    recorded = _recorded(run)
    cfg = copy.deepcopy(CONFIG)
    cfg["studies"]["main"]["variants"]["tp"]["set"]["tp.lam"] = 1
    assert config_conflicts(recorded, run_config(cfg, run).to_dict()) == ["tp.lam: 0.1 -> 1.0"]
    cfg["studies"]["main"]["protocol"]["patience"] = 20
    cfg["overrides"]["all"]["eval.Ns"] = [1, 5, 10]
    assert config_conflicts(recorded, run_config(cfg, run).to_dict()) == [
        "train.patience: 10 -> 20", "tp.lam: 0.1 -> 1.0", "eval.Ns: [1, 10] -> [1, 5, 10]",
    ]
    other_seed = run_config(CONFIG, run._replace(seed=0)).to_dict()
    assert config_conflicts(recorded, other_seed) == ["seed: 1 -> 0"]
    as_baseline = run_config(CONFIG, run._replace(variant="baseline")).to_dict()
    conflicts = config_conflicts(recorded, as_baseline)
    assert conflicts[0] == "method: 'tp' -> 'baseline'" and "tp.beta: 0.002 -> 0.001" in conflicts
    older = _recorded(run)
    del older["tp"]["P"]  # a setting the run's version of tp did not record: its default, which the study asks for
    assert config_conflicts(older, run_config(CONFIG, run).to_dict()) == []


# ---------------------------------------------------------------------------------------------------------
# The cost estimate

MUSIC = with_(select={"datasets": ["music"]})  # main: sasrec and gru4rec x 2 variants; abl: sasrec x 3 variants
EST_COLUMNS = ["study", "dataset", "backbone", "variant", "method", "runs", "s_per_epoch", "s_source", "epochs",
               "epochs_source", "hours_per_run", "core_hours"]


def _cost(backbone, method, seed, s, best, capped, k=math.nan, lam=math.nan, **more):
    return {"dataset": "music", "backbone": backbone, "method": method, "seed": seed, "k": k, "lam": lam,
            "s_per_epoch": s, "best_epoch": best, "capped": capped, **more}


def _by_cell(est: pd.DataFrame) -> pd.DataFrame:
    return est.set_index(["study", "backbone", "variant"])


def test_cost_estimate_arithmetic_and_sources():
    costs = pd.DataFrame([
        # sasrec baseline: two early-stopped runs, best epochs 29 and 51 -> median 40
        _cost("sasrec", "baseline", 0, 2.0, 29, False),
        _cost("sasrec", "baseline", 1, 4.0, 51, False),
        # the same run again (listed in a second aggregate): counted once, so the medians stay 3.0 s and 40
        _cost("sasrec", "baseline", 1, 4.0, 51, False),
        # sasrec TP k 2, λ 0.1: one run that hit its cap -> its best epoch says nothing
        _cost("sasrec", "tp", 0, 10.0, 20, True, k=2, lam=0.1),
        # TP k 1, λ 0.1: three early stops, median 72
        *[_cost("sasrec", "tp", s, 6.0, b, False, k=1, lam=0.1) for s, b in enumerate((61, 72, 83))],
        # TP k 2, λ 1: one late stop
        _cost("sasrec", "tp", 0, 8.0, 270, False, k=2, lam=1.0),
    ])
    speed = pd.DataFrame([
        {"dataset": "music", "backbone": "gru4rec", "method": "baseline", "P": 1, "train_s_per_epoch": 1.0,
         "eval_all_users_s": 4.0},
        {"dataset": "music", "backbone": "gru4rec", "method": "tp", "P": 16, "train_s_per_epoch": 5.0,
         "eval_all_users_s": 4.0},
    ])
    raw = estimate_cost(MUSIC, costs, speed)
    assert list(raw.columns) == EST_COLUMNS
    assert list(zip(raw.study, raw.backbone, raw.variant)) == [  # one row per cell, in the runs' order
        ("main", "sasrec", "baseline"), ("main", "sasrec", "tp"), ("main", "gru4rec", "baseline"),
        ("main", "gru4rec", "tp"), ("abl", "sasrec", "baseline"), ("abl", "sasrec", "tp-k1"),
        ("abl", "sasrec", "tp-lam1"),
    ]
    est = _by_cell(raw)
    base = est.loc[("main", "sasrec", "baseline")]
    # median 3 s/epoch; best 40 -> stops 10 validations (every 2 epochs) later: epoch 60; 2 runs
    assert (base["method"], base["runs"], base["s_per_epoch"], base["s_source"]) == ("baseline", 2, 3.0, "2 run(s)")
    assert base["epochs"] == 60 and base["epochs_source"] == "cell (2 stopped, 0 capped)"
    assert base["hours_per_run"] == pytest.approx(60 * 3.0 / 3600)
    assert base["core_hours"] == pytest.approx(2 * 60 * 3.0 / 3600)
    tp = est.loc[("main", "sasrec", "tp")]
    # its own setting's capped run only: neither the k 1 runs nor the λ 1 run set its seconds or its epochs
    assert tp["s_per_epoch"] == 10.0 and tp["s_source"] == "1 run(s)"
    assert tp["epochs"] == 200 and tp["epochs_source"] == "cap (median not reached)" and tp["runs"] == 2
    assert tp["core_hours"] == pytest.approx(2 * 200 * 10.0 / 3600)
    g = est.loc[("main", "gru4rec", "baseline")]
    # no run: benchmark epoch + one validation every 2 epochs; best epoch from sasrec's (same dataset and method)
    assert g["s_per_epoch"] == 1.0 + 4.0 / 2 and g["s_source"] == "benchmark" and g["epochs"] == 60
    assert g["epochs_source"] == "dataset (2 stopped, 0 capped)"
    gt = est.loc[("main", "gru4rec", "tp")]  # the benchmark has only P = 16 for it: no time for P = 1, said so
    assert math.isnan(gt["s_per_epoch"]) and gt["s_source"] == "none" and math.isnan(gt["core_hours"])
    assert gt["epochs"] == 200
    # abl's protocol: validations every 5 epochs, patience 10, at least 100 and at most 300 epochs
    ab = est.loc[("abl", "sasrec", "baseline")]
    assert ab["epochs"] == 100 and ab["runs"] == 3 and ab["s_per_epoch"] == 3.0  # 40 + 50 = 90 -> min_epochs 100
    k1 = est.loc[("abl", "sasrec", "tp-k1")]
    assert k1["epochs"] == 75 + 50 and k1["s_per_epoch"] == 6.0 and k1["s_source"] == "3 run(s)"  # ceil(72 / 5) * 5
    assert k1["epochs_source"] == "cell (3 stopped, 0 capped)"
    lam1 = est.loc[("abl", "sasrec", "tp-lam1")]
    assert lam1["epochs"] == 300 and lam1["s_per_epoch"] == 8.0  # 270 + 50 = 320 -> max_epochs 300
    assert lam1["core_hours"] == pytest.approx(3 * 300 * 8.0 / 3600)


def test_cost_estimate_prices_the_selected_runs_only():
    costs = pd.DataFrame([_cost("sasrec", "baseline", 0, 2.0, 29, False)])
    est = estimate_cost(with_(select={"datasets": ["music"], "variants": ["baseline"], "seeds": ["0"]}), costs)
    assert list(zip(est.study, est.backbone, est.variant, est.runs)) == [
        ("main", "sasrec", "baseline", 1), ("main", "gru4rec", "baseline", 1), ("abl", "sasrec", "baseline", 1)]
    assert len(estimate_cost(with_(run=["abl"]), costs)) == 3


def test_cost_estimate_speed_first_takes_the_benchmark_over_the_runs():
    """For another machine (a GPU benchmark beside CPU runs): its seconds per epoch, the runs' stopping epochs."""
    costs = pd.DataFrame([_cost("sasrec", "baseline", 0, 30.0, 40, False),
                          _cost("gru4rec", "baseline", 0, 20.0, 40, False)])
    speed = pd.DataFrame([  # sasrec only: gru4rec keeps its run's seconds
        {"dataset": "music", "backbone": "sasrec", "method": "baseline", "P": 1, "train_s_per_epoch": 1.0,
         "eval_all_users_s": 0.5},
    ])
    plain = _by_cell(estimate_cost(MUSIC, costs, speed))
    assert plain.loc[("main", "sasrec", "baseline"), "s_per_epoch"] == 30.0  # runs first by default
    est = _by_cell(estimate_cost(MUSIC, costs, speed, speed_first=True))
    s = est.loc[("main", "sasrec", "baseline")]
    assert s["s_per_epoch"] == 1.0 + 0.5 / 2 and s["s_source"] == "benchmark" and s["epochs"] == 60
    assert s["epochs_source"].startswith("cell")  # the epochs still come from the run
    a = est.loc[("abl", "sasrec", "baseline")]  # the same benchmark epoch, validated every 5 epochs
    assert a["s_per_epoch"] == 1.0 + 0.5 / 5 and a["epochs"] == 100
    g = est.loc[("main", "gru4rec", "baseline")]
    assert g["s_per_epoch"] == 20.0 and g["s_source"] == "1 run(s)"


def test_tp_stopping_epochs_come_from_the_variants_own_setting_only():
    """A setting that stops early (λ = 1 collapsing at epoch 4) must not set another variant's epochs, and a
    variant at that setting takes them from its own runs."""
    capped_main = [_cost("sasrec", "tp", s, 10.0, 20, True, k=2, lam=0.1) for s in (0, 1)]
    collapsed = _cost("sasrec", "tp", 0, 30.0, 4, False, k=2, lam=1.0)
    est = _by_cell(estimate_cost(MUSIC, pd.DataFrame(capped_main + [collapsed])))
    tp = est.loc[("main", "sasrec", "tp")]
    assert tp["epochs"] == 200 and tp["epochs_source"].startswith("cap")  # the collapsed run is not a stop
    assert tp["s_per_epoch"] == 10.0 and tp["s_source"] == "2 run(s)"
    lam1 = est.loc[("abl", "sasrec", "tp-lam1")]  # best 4 -> 5 + 50 = 55, raised to min_epochs 100
    assert lam1["epochs"] == 100 and lam1["s_per_epoch"] == 30.0 and lam1["epochs_source"].startswith("cell (1 st")
    k1 = est.loc[("abl", "sasrec", "tp-k1")]  # no run at k 1: nothing measured
    assert k1["epochs"] == 300 and k1["s_source"] == "none"
    # a run at the main setting that stopped early sets the epochs: best 30, then 10 validations 2 epochs apart -> 50
    stopped = _cost("sasrec", "tp", 2, 10.0, 30, False, k=2, lam=0.1)
    est = _by_cell(estimate_cost(MUSIC, pd.DataFrame(capped_main + [collapsed, stopped])))
    assert est.loc[("main", "sasrec", "tp"), "epochs"] == 50
    assert est.loc[("main", "gru4rec", "tp"), "epochs"] == 50  # and, from the same dataset, gru4rec's
    assert est.loc[("main", "gru4rec", "tp"), "epochs_source"] == "dataset (1 stopped, 2 capped)"


def test_a_batched_variant_is_priced_by_its_own_P():
    """TP at P = 64 is not priced at the P = 1 runs' seconds: without a P = 64 run it takes the benchmark's."""
    protocol = {"eval_every": 2, "patience": 10, "max_epochs": 200, "min_epochs": 0}
    config = {"studies": {"b": {"cells": {"music": ["sasrec"]}, "seeds": [0], "protocol": protocol,
                                "variants": {"tp": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}},
                                             "tp-P64": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1, "tp.P": 64}}}}}}
    p1 = [{**_cost("sasrec", "tp", s, 100.0, 20, False, k=2, lam=0.1), "P": 1} for s in (0, 1)]
    speed = pd.DataFrame([{"dataset": "music", "backbone": "sasrec", "method": "tp", "P": 64, "train_s_per_epoch": 4.0,
                           "eval_all_users_s": 2.0}])
    est = estimate_cost(config, pd.DataFrame(p1), speed).set_index("variant")
    assert est.loc["tp", "s_per_epoch"] == 100.0
    assert est.loc["tp-P64", "s_per_epoch"] == 4.0 + 2.0 / protocol["eval_every"]
    assert est.loc["tp-P64", "s_source"] == "benchmark"

def test_a_run_in_another_folder_is_not_a_duplicate():
    """The same cell and seed in two folders (another study: capped at 20 epochs, and trained to early stopping):
    both count; one folder listed twice counts once."""
    def run(path, best, capped):
        return _cost("sasrec", "tp", 0, 10.0, best, capped, k=2, lam=0.1, run=path)
    costs = pd.DataFrame([run("results/runs/short/music/sasrec/tp/seed0", 20, True),
                          run("results/runs/main/music/sasrec/tp/seed0", 30, False),
                          run("results/runs/main/music/sasrec/tp/seed0", 30, False)])  # listed twice
    tp = _by_cell(estimate_cost(MUSIC, costs)).loc[("main", "sasrec", "tp")]
    assert tp["epochs"] == 50 and tp["s_source"] == "2 run(s)" and tp["epochs_source"] == "cell (1 stopped, 1 capped)"
    # the same with costs.csv's study and variant columns instead of the folder
    by_study = costs.drop(columns="run").assign(study=["short", "main", "main"], variant="tp")
    tp = _by_cell(estimate_cost(MUSIC, by_study)).loc[("main", "sasrec", "tp")]
    assert tp["s_source"] == "2 run(s)" and tp["epochs_source"] == "cell (1 stopped, 1 capped)"


def test_a_few_early_stops_among_capped_runs_do_not_set_the_epochs():
    """Eight runs capped at 20 epochs and two that stopped early (best epochs 5 and 8): the two are the ones that
    peaked soonest, not the cell's median, so the estimate must not take their median (it would give 28 epochs)."""
    def run(best, capped, seed, backbone="sasrec"):
        return _cost(backbone, "tp", seed, 10.0, best, capped, k=2, lam=0.1)
    capped = [run(18, True, s) for s in range(2, 10)]
    est = estimate_cost(MUSIC, pd.DataFrame([run(5, False, 0), run(8, False, 1)] + capped))
    tp = _by_cell(est).loc[("main", "sasrec", "tp")]
    assert tp["epochs"] == 200 and tp["epochs_source"] == "cap (median not reached)"
    # runs without that cap (TP trained to early stopping) that go on to best epochs 40-70 do set it
    longer = [run(b, False, s, "gru4rec") for s, b in enumerate((40, 50, 60, 45, 55, 65, 70, 42, 48, 52))]
    est = estimate_cost(MUSIC, pd.DataFrame([run(5, False, 0), run(8, False, 1)] + capped + longer))
    tp = _by_cell(est).loc[("main", "sasrec", "tp")]
    assert tp["epochs_source"] == "dataset (12 stopped, 8 capped)"
    # Kaplan-Meier: 0.9 after the two early stops, then x (10 - j) / 10 at the j-th of the ten late stops: 0.5 at
    # the fifth (best epoch 50), and the rule adds 10 validations 2 epochs apart
    assert tp["epochs"] == 70


@pytest.mark.parametrize("values", [[1, 2, 3], [1, 2, 3, 4], [5, 9, 20, 20], [7]])
def test_censored_median_without_censoring_is_the_median(values):
    assert censored_median(pd.Series(values), pd.Series([False] * len(values))) == np.median(values)


def test_censored_median_with_censoring():
    assert censored_median([20, 20, 30], [True, True, False]) == 30  # the capped runs leave the risk set at 20
    # 1, then 3/4 after 10, then a capped run at 15 leaves 2 at risk: x 1/2 at 20 -> 0.375 < 0.5
    assert censored_median([10, 15, 20, 25], [False, True, False, False]) == 20
    assert math.isnan(censored_median([5, 8] + [18] * 8, [False, False] + [True] * 8))
    assert math.isnan(censored_median([], []))


# ---------------------------------------------------------------------------------------------------------
# Searches and the studies that start from them

TUNING = {"title": "t", "about": "t", "cells": {"music": ["sasrec"]}, "seed": 0, "trials": 2,
          "protocol": {"eval_every": 2, "patience": 10, "max_epochs": 200, "min_epochs": 0}, "storage": "",
          "spaces": {"baseline": {"model.d": {"int": [10, 50, 5]}}, "tp": {"tp.alpha": {"log": [0.01, 1.0]}}},
          "fixed": {"baseline": {}, "tp": {"tp.k": 2}}, "keep": ["model.d"]}


def _tuned_config():
    study = {"title": "s", "about": "s", "cells": {"music": ["sasrec"]}, "seeds": [0, 1],
             "protocol": {"eval_every": 2, "patience": 10, "max_epochs": 300, "min_epochs": 0}, "tuned_from": "fair",
             "variants": {"baseline": {"method": "baseline"}, "tp": {"method": "tp"},
                          "tp-lam0": {"method": "tp", "set": {"tp.lam": 0}}}}
    return {"studies": {"tuned": study}, "tunings": {"fair": TUNING}, "overrides": {}}


def test_a_tuned_study_runs_its_cells_once_searched_with_the_best_settings(tmp_path, monkeypatch):
    from tplib.grid import Search, all_searches, tuned_sets, tuning_dir

    monkeypatch.chdir(tmp_path)
    config = _tuned_config()
    assert all_runs(config) == []  # nothing searched yet: no run
    assert all_searches(config) == [Search("fair", "music", "sasrec", m) for m in ("baseline", "tp")]
    for method, sets in (("baseline", ["model.d=25"]), ("tp", ["model.d=25", "tp.k=2", "tp.alpha=0.3", "tp.lam=1"])):
        folder = tmp_path / tuning_dir(Search("fair", "music", "sasrec", method))
        folder.mkdir(parents=True)
        (folder / "best.json").write_text(json.dumps({"sets": sets}))
    assert len(all_runs(config)) == 3 * 2
    run = Run("tuned", "music", "sasrec", "tp-lam0", 0)
    assert tuned_sets(config, run)[-1] == "tp.lam=1"
    cfg = run_config(config, run)
    assert (cfg.model.d, cfg.tp.alpha, cfg.tp.lam, cfg.train.max_epochs) == (25, 0.3, 0.0, 300)  # variant, protocol win


def test_check_studies_names_bad_searches():
    config = _tuned_config()
    config["studies"]["tuned"]["tuned_from"] = "nosuch"
    bad = {**TUNING, "fixed": {"baseline": {"train.patience": 3}, "tp": {"tp.kk": 2}}, "keep": ["model.dropout"]}
    config["tunings"] = {"fair": bad}
    problems = "\n".join(check_studies(config, MANAGED))
    assert "studies.tuned.tuned_from: no search 'nosuch' under tunings" in problems
    assert "tunings.fair.fixed.baseline: train.patience is set by the study's protocol" in problems
    assert "unknown config key tp.kk" in problems
    assert "tunings.fair.keep: model.dropout is not searched for the baseline" in problems


def test_a_run_recorded_before_a_setting_existed_counts_at_its_default():
    """A config.json without a later setting (tp.adam_beta2, tp.loss_weighting) is the run at that setting's
    default, so it is no conflict; a changed value still is."""
    wanted = build_config("sasrec", "tp", 0, "music", parse_sets(["tp.lam=0.1"])).to_dict()
    old = copy.deepcopy(wanted)
    del old["tp"]["adam_beta2"], old["tp"]["loss_weighting"]
    assert config_conflicts(old, wanted) == []
    old["tp"]["lam"] = 1.0
    assert config_conflicts(old, wanted) == ["tp.lam: 1.0 -> 0.1"]
