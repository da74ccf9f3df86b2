"""What the fair test still costs, from its searches' trials (tplib.search_cost), checked by hand."""

import math

import pandas as pd
import pytest

from tplib.search_cost import estimate_fair_test

CONFIG = {
    "tunings": {"fair": {"cells": {"music": ["sasrec", "caser"], "game": ["sasrec"]}, "trials": 4}},
    "studies": {
        "tuned": {"cells": {"music": ["sasrec"], "game": ["sasrec"]}, "seeds": [0, 1, 2], "tuned_from": "fair",
                  "variants": {"baseline": {"method": "baseline"}, "tp": {"method": "tp"},
                               "tp-lam0": {"method": "tp", "set": {"tp.lam": 0}, "against": "tp"}}},
        "paper": {"cells": {"music": ["sasrec"]}, "seeds": [0], "variants": {"baseline": {"method": "baseline"}}},
    },
}
STATS = pd.DataFrame([{"dataset": "music", "users": 100, "interactions": 1000},
                      {"dataset": "game", "users": 300, "interactions": 5000}])
SPEED = pd.DataFrame([  # Caser's TP epoch is 3x SASRec's on game (same kind as music), 10x on the dense ml1m
    {"dataset": "game", "backbone": "sasrec", "method": "tp", "P": 1, "threads": 1, "train_s_per_epoch": 2.0},
    {"dataset": "game", "backbone": "caser", "method": "tp", "P": 1, "threads": 1, "train_s_per_epoch": 6.0},
    {"dataset": "ml1m", "backbone": "sasrec", "method": "tp", "P": 1, "threads": 1, "train_s_per_epoch": 1.0},
    {"dataset": "ml1m", "backbone": "caser", "method": "tp", "P": 1, "threads": 1, "train_s_per_epoch": 10.0},
])


def trial(ds, bb, method, state, seconds):
    return {"study": f"fair-{ds}-{bb}-{method}", "dataset": ds, "backbone": bb, "method": method, "state": state,
            "seconds": seconds}


TRIALS = pd.DataFrame([
    trial("music", "sasrec", "baseline", "COMPLETE", 3600), trial("music", "sasrec", "baseline", "PRUNED", 720),
    trial("music", "sasrec", "baseline", "COMPLETE", 7200), trial("music", "sasrec", "baseline", "FAIL", 99999),
    trial("music", "sasrec", "tp", "COMPLETE", 36000), trial("music", "sasrec", "tp", "RUNNING", 99999),
    {**trial("other", "sasrec", "tp", "COMPLETE", 1), "study": "other-music-sasrec-tp", "dataset": "music"},
])
COSTS = pd.DataFrame([{"study": "tuned", "dataset": "music", "backbone": "sasrec", "variant": "baseline", "seed": 1},
                      {"study": "paper", "dataset": "music", "backbone": "sasrec", "variant": "baseline", "seed": 0}])


def by_row(est):
    return {(r.kind, r.dataset, r.backbone, r.variant): r for r in est.itertuples()}


def test_the_fair_test_cost_by_hand():
    est = by_row(estimate_fair_test(CONFIG, "fair", TRIALS, STATS, COSTS, SPEED))
    assert len(est) == 3 * 2 + 2 * 3  # every search, every tuned cell and variant; study paper is not part of it
    # own trials: finished and pruned count (failed and running do not); another tuning's trial is not one of them
    r = est[("search", "music", "sasrec", "baseline")]
    assert (r.done, r.hours_each, r.core_hours_left) == (3, pytest.approx((1 + 0.2 + 2) / 3), pytest.approx(3.2 / 3))
    assert r.source == "mean of 3 trials"
    r = est[("search", "music", "sasrec", "tp")]
    assert (r.done, r.hours_each, r.core_hours_left) == (1, pytest.approx(10), pytest.approx(30))
    # another dataset: TP scales with users (x3), the baseline with interactions (x5)
    r = est[("search", "game", "sasrec", "tp")]
    assert (r.done, r.hours_each, r.core_hours_left) == (0, pytest.approx(30), pytest.approx(120))
    assert r.source == "mean of 1 trials of music sasrec x 3.00 (users)"
    assert est[("search", "game", "sasrec", "baseline")].hours_each == pytest.approx(3.2 / 3 * 5)
    # another backbone: the benchmark's epoch ratio on a dataset of the same kind (game, not the dense ml1m)
    r = est[("search", "music", "caser", "tp")]
    assert r.hours_each == pytest.approx(30) and r.source.endswith("x 3.00 (benchmark epoch)")
    assert est[("search", "music", "caser", "baseline")].source == "none"  # the benchmark has no baseline epochs
    # tuned runs: the median finished trial (pruned ones stopped early), one per seed not yet run
    r = est[("runs", "music", "sasrec", "baseline")]
    assert (r.hours_each, r.done, r.core_hours_left) == (pytest.approx(1.5), 1, pytest.approx(3.0))
    assert r.source == "median of 2 finished trials"
    for v in ("tp", "tp-lam0"):  # the controls run at tuned TP's settings
        r = est[("runs", "game", "sasrec", v)]
        assert (r.hours_each, r.core_hours_left) == (pytest.approx(30), pytest.approx(90))


def test_a_search_with_nothing_to_go_by_is_unknown():
    est = by_row(estimate_fair_test(CONFIG, "fair", TRIALS, STATS, COSTS))  # no benchmark
    r = est[("search", "music", "caser", "tp")]  # TP trials exist only for another backbone
    assert math.isnan(r.hours_each) and r.source == "none"
    assert math.isnan(est[("search", "music", "caser", "baseline")].core_hours_left)
