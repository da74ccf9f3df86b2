"""tplib.grid: the workflow's run list (the Snakefile's source of truth) and the grid's cost estimate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tplib.config import deep_merge
from tplib.grid import Run, all_runs, censored_median, estimate_cost, parse_spec, run_sets, tp_spec

CONFIG = {
    "datasets": ["d"],
    "backbones": ["sasrec", "gru4rec"],
    "methods": ["baseline", "tp"],
    "seeds": [0, 1],
    "tp_default": {"k": 2, "lam": 0.1},
    "ablation": {"datasets": ["d"], "backbones": ["sasrec"], "seeds": [0], "k": [1, 2], "lam": [0, 0.1]},
    "overrides": {"all": {"train.max_epochs": 200}, "datasets": {}, "backbones": {},
                  "methods": {"baseline": {"train.eval_every": 2, "train.patience": 10}, "tp": {}}},
}


def test_runs_share_the_main_grid_and_specs_round_trip():
    runs = all_runs(CONFIG)
    # main: 1 x 2 x 2 x 2 = 8; ablation adds k=1 and lam=0 for sasrec seed 0 (k=2, lam=0.1 is a main run)
    assert len(runs) == 8 + 2 and len(set(runs)) == len(runs)
    assert Run("d", "sasrec", "tp/k1_lam0.1", 0) in runs and Run("d", "sasrec", "tp/k2_lam0", 0) in runs
    assert tp_spec(2, 10.0) == "tp/k2_lam10" and parse_spec("tp/k2_lam0.01") == ("tp", "2", "0.01")
    assert parse_spec("baseline") == ("baseline", None, None)
    assert run_sets(CONFIG, "d", "sasrec", "baseline") == [
        "train.max_epochs=200", "train.eval_every=2", "train.patience=10"]


def test_overlay_configs_merge_nested_and_later_wins():
    """benchmarks/grid_cost.py merges --config files with tplib.config.deep_merge, as --configfile does."""
    merged = deep_merge(CONFIG, {"seeds": [0], "ablation": {"datasets": []}})
    assert merged["seeds"] == [0] and merged["ablation"]["datasets"] == [] and merged["ablation"]["k"] == [1, 2]
    assert CONFIG["ablation"]["datasets"] == ["d"]  # the inputs are not modified


def test_cost_estimate_arithmetic_and_sources():
    costs = pd.DataFrame([
        # sasrec baseline: two early-stopped runs, best epochs 29 and 51 -> median 40
        {"dataset": "d", "backbone": "sasrec", "method": "baseline", "s_per_epoch": 2.0, "best_epoch": 29,
         "capped": False, "seed": 0},
        {"dataset": "d", "backbone": "sasrec", "method": "baseline", "s_per_epoch": 4.0, "best_epoch": 51,
         "capped": False, "seed": 1},
        # the same run again (listed in a second aggregate): counted once, so the medians stay 3.0 s and 40
        {"dataset": "d", "backbone": "sasrec", "method": "baseline", "s_per_epoch": 4.0, "best_epoch": 51,
         "capped": False, "seed": 1},
        # sasrec TP: one run that hit its cap -> its best epoch says nothing; no other TP run stopped early
        {"dataset": "d", "backbone": "sasrec", "method": "tp", "s_per_epoch": 10.0, "best_epoch": 20,
         "capped": True, "seed": 0},
    ])
    speed = pd.DataFrame([
        {"dataset": "d", "backbone": "gru4rec", "method": "baseline", "P": 1, "train_s_per_epoch": 1.0,
         "eval_all_users_s": 4.0},
        {"dataset": "d", "backbone": "gru4rec", "method": "tp", "P": 16, "train_s_per_epoch": 5.0,
         "eval_all_users_s": 4.0},
    ])
    est = estimate_cost(CONFIG, costs, speed).set_index(["backbone", "method"])
    base = est.loc[("sasrec", "baseline")]
    # median 3 s/epoch; best 40 -> stops 10 validations (every 2 epochs) later: epoch 60; 2 runs
    assert base["s_per_epoch"] == 3.0 and base["epochs"] == 60 and base["runs"] == 2
    assert base["core_hours"] == pytest.approx(2 * 60 * 3.0 / 3600)
    tp = est.loc[("sasrec", "tp")]
    assert tp["epochs"] == 200 and tp["epochs_source"].startswith("cap") and tp["runs"] == 4  # 2 main + 2 ablation
    assert tp["core_hours"] == pytest.approx(4 * 200 * 10.0 / 3600)
    g = est.loc[("gru4rec", "baseline")]
    # no run: benchmark epoch + one validation every 2 epochs; best epoch from sasrec's (same dataset/method)
    assert g["s_per_epoch"] == 1.0 + 4.0 / 2 and g["s_source"] == "benchmark" and g["epochs"] == 60
    assert g["epochs_source"].startswith("dataset")
    gt = est.loc[("gru4rec", "tp")]  # the benchmark has only P = 16 for it: no time for P = 1, said so
    assert math.isnan(gt["s_per_epoch"]) and gt["s_source"] == "none" and math.isnan(gt["core_hours"])


def test_cost_estimate_speed_first_takes_the_benchmark_over_the_runs():
    """For another machine (a GPU benchmark beside CPU runs): its seconds per epoch, the runs' stopping epochs."""
    costs = pd.DataFrame([
        {"dataset": "d", "backbone": "sasrec", "method": "baseline", "s_per_epoch": 30.0, "best_epoch": 40,
         "capped": False, "seed": 0},
        {"dataset": "d", "backbone": "gru4rec", "method": "baseline", "s_per_epoch": 20.0, "best_epoch": 40,
         "capped": False, "seed": 0},
    ])
    speed = pd.DataFrame([  # sasrec only: gru4rec keeps its run's seconds
        {"dataset": "d", "backbone": "sasrec", "method": "baseline", "P": 1, "train_s_per_epoch": 1.0,
         "eval_all_users_s": 0.5},
    ])
    plain = estimate_cost(CONFIG, costs, speed).set_index(["backbone", "method"])
    assert plain.loc[("sasrec", "baseline"), "s_per_epoch"] == 30.0  # runs first by default
    est = estimate_cost(CONFIG, costs, speed, speed_first=True).set_index(["backbone", "method"])
    s = est.loc[("sasrec", "baseline")]
    assert s["s_per_epoch"] == 1.0 + 0.5 / 2 and s["s_source"] == "benchmark" and s["epochs"] == 60
    assert s["epochs_source"].startswith("cell")  # the epochs still come from the run
    g = est.loc[("gru4rec", "baseline")]
    assert g["s_per_epoch"] == 20.0 and g["s_source"] == "1 run(s)"


def test_tp_stopping_epochs_come_from_the_main_setting_only():
    """An ablation setting that stops early (λ = 1 collapsing at epoch 4) must not set the main runs' epochs."""
    def run(k, lam, best, capped, seed):
        return {"dataset": "d", "backbone": "sasrec", "method": "tp", "k": k, "lam": lam, "s_per_epoch": 10.0,
                "best_epoch": best, "capped": capped, "seed": seed}
    capped_main = [run(2, 0.1, 20, True, 0), run(2, 0.1, 20, True, 1)]
    collapsed = run(2, 1.0, 4, False, 0)
    est = estimate_cost(CONFIG, pd.DataFrame(capped_main + [collapsed])).set_index(["backbone", "method"])
    tp = est.loc[("sasrec", "tp")]
    assert tp["epochs"] == 200 and tp["epochs_source"].startswith("cap")  # the collapsed run is not a stop
    assert tp["s_per_epoch"] == 10.0  # its time per epoch still counts: it is a run of the cell
    # a main-setting run that stopped early sets the epochs: best 30, then 10 validations every 5 epochs -> 80
    stopped = run(2, 0.1, 30, False, 2)
    est = estimate_cost(CONFIG, pd.DataFrame(capped_main + [collapsed, stopped])).set_index(["backbone", "method"])
    assert est.loc[("sasrec", "tp"), "epochs"] == 80
    assert est.loc[("gru4rec", "tp"), "epochs"] == 80  # and, from the same dataset, gru4rec's


def test_a_run_under_another_protocol_is_not_a_duplicate():
    """Same cell and seed in two folders (capped at 20 epochs; trained to early stopping): both count."""
    def run(path, best, capped):
        return {"dataset": "d", "backbone": "sasrec", "method": "tp", "seed": 0, "k": 2, "lam": 0.1,
                "s_per_epoch": 10.0, "best_epoch": best, "capped": capped, "run": path}
    costs = pd.DataFrame([run("results/runs/d/sasrec/tp/k2_lam0.1/seed0", 20, True),
                          run("results/schedule/runs/d/sasrec/tp/k2_lam0.1/seed0", 30, False),
                          run("results/schedule/runs/d/sasrec/tp/k2_lam0.1/seed0", 30, False)])  # listed twice
    tp = estimate_cost(CONFIG, costs).set_index(["backbone", "method"]).loc[("sasrec", "tp")]
    assert tp["epochs"] == 80 and tp["s_source"] == "2 run(s)" and tp["epochs_source"] == "cell (1 stopped, 1 capped)"


def test_a_few_early_stops_among_capped_runs_do_not_set_the_epochs():
    """Eight runs capped at 20 epochs and two that stopped early (best epochs 5 and 8): the two are the ones that
    peaked soonest, not the cell's median, so the estimate must not take their median (it would give 60 epochs)."""
    def run(best, capped, seed, backbone="sasrec"):
        return {"dataset": "d", "backbone": backbone, "method": "tp", "seed": seed, "k": 2, "lam": 0.1,
                "s_per_epoch": 10.0, "best_epoch": best, "capped": capped}
    capped = [run(18, True, s) for s in range(2, 10)]
    est = estimate_cost(CONFIG, pd.DataFrame([run(5, False, 0), run(8, False, 1)] + capped))
    tp = est.set_index(["backbone", "method"]).loc[("sasrec", "tp")]
    assert tp["epochs"] == 200 and tp["epochs_source"] == "cap (median not reached)"
    # runs without that cap (TP trained to early stopping) that go on to best epochs 40-60 do set it
    longer = [run(b, False, s, "gru4rec") for s, b in enumerate((40, 50, 60, 45, 55, 65, 70, 42, 48, 52))]
    est = estimate_cost(CONFIG, pd.DataFrame([run(5, False, 0), run(8, False, 1)] + capped + longer))
    tp = est.set_index(["backbone", "method"]).loc[("sasrec", "tp")]
    assert tp["epochs_source"] == "dataset (12 stopped, 8 capped)"
    # Kaplan-Meier: 0.9 after the two early stops, then x (10 - j) / 10 at the j-th of the ten late stops: 0.5 at
    # the fifth (best epoch 50), and the rule adds 10 validations 5 epochs apart
    assert tp["epochs"] == 100


@pytest.mark.parametrize("values", [[1, 2, 3], [1, 2, 3, 4], [5, 9, 20, 20], [7]])
def test_censored_median_without_censoring_is_the_median(values):
    assert censored_median(pd.Series(values), pd.Series([False] * len(values))) == np.median(values)


def test_censored_median_with_censoring():
    assert censored_median([20, 20, 30], [True, True, False]) == 30  # the capped runs leave the risk set at 20
    assert math.isnan(censored_median([5, 8] + [18] * 8, [False, False] + [True] * 8))
    assert math.isnan(censored_median([], []))
