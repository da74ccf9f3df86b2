"""The report's study sections, on the studies of report_fixture.py: each study's protocol in words once, every
declared row ("not run" where a run is missing), the numbers, changes and epochs; the protocol and hyperparameter
tables from the settings the aggregate records (a run's own config.json before the declared one; no report module
rebuilds a config); provenance and costs; the searches' table and a tuned study's variants."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats as sps

from tplib.io import DataError
from tplib.report import claims as C
from tplib.report import load as L
from tplib.report import protocol as R
from tplib.report.load import fint, fpct, fpeq, load_aggregate
from tplib.report.paper import BACKBONE_LABEL, DATASET_LABEL
from tplib.report.provenance import build_stamp

from report_fixture import (
    ABLATION_PROTOCOL,
    PROTOCOL,
    RUNS,
    bench_seconds,
    chunk,
    expected_cell,
    ms_text,
    parse,
    studies_config,
    tables_with,
)

# ---------------------------------------------------------------------------------------------------------
# Studies


def _study(built, name: str) -> str:
    html = built["html"]
    nxt = {"paper": 'id="study-ablation"', "ablation": 'id="study-long"', "long": 'id="fig4"'}[name]
    return chunk(html, f'id="study-{name}"', nxt)


def test_protocol_words():
    assert L.protocol_words(PROTOCOL) == (
        "validate every 2 epochs on validation NDCG@10; stop after 2 validations (4 epochs) without a better one; "
        "at most 12 epochs; test metrics from the best validation epoch")
    assert L.protocol_words(ABLATION_PROTOCOL) == (
        "validate every 1 epoch on validation NDCG@10; stop after 3 validations (3 epochs) without a better one; "
        "at most 10 epochs, at least 4; test metrics from the best validation epoch")


def test_each_study_states_its_protocol_once_in_words(built):
    config = studies_config()
    for name, st in config["studies"].items():
        part = unescape(_study(built, name))
        words = L.protocol_words(st["protocol"])
        assert part.count(words) == 1, name
        others = [L.protocol_words(o["protocol"]) for n, o in config["studies"].items() if n != name]
        assert not [w for w in others if w != words and w in part]
        assert st["title"] in part and st["about"] in part
    # the main study's rule also heads the page and Table 3
    head = chunk(built["html"], "<h1>", 'id="table2"')
    assert L.protocol_words(PROTOCOL) in head


def test_study_sections_list_every_declared_row(built):
    """One table per declared dataset, one row per declared backbone × variant, in the report's order; a row
    without a finished run reads "not run" in every cell."""
    config = studies_config()
    for name, st in config["studies"].items():
        parsed = parse(_study(built, name))
        assert len(parsed.tables) == len(st["cells"])
        for t in parsed.tables:
            assert t[1] == ["HR@10", "NDCG@10", "head NDCG@10", "tail NDCG@10", "HR@10", "NDCG@10"]
        got = {t[0][0]: [(r[0], r[1]) for r in t[2:]] for t in parsed.tables}
        order = {"gru4rec": 0, "caser": 1, "sasrec": 2}
        want = {DATASET_LABEL[d]: [(BACKBONE_LABEL[b], v) for b in sorted(bbs, key=order.get) for v in st["variants"]]
                for d, bbs in st["cells"].items()}
        assert got == want, name
    paper = {t[0][0]: t for t in parse(_study(built, "paper")).tables}
    rows = {(r[0], r[1]): r for r in paper["ML1M"][2:]}
    assert rows[("Caser", "baseline")][2:] == ["0", "—", *["not run"] * 6]
    assert [r[2:] for r in paper["Game"][2:]] == [["0", "—", *["not run"] * 6]] * 2
    assert rows[("GRU4Rec", "baseline")][2] == "3" and rows[("Caser", "tp")][2] == "2"
    ablation = {t[0][0]: t for t in parse(_study(built, "ablation")).tables}
    k3 = next(r for r in ablation["ML1M"][2:] if r[:2] == ["SASRec", "tp-k3"])
    assert k3[2:] == ["0", "—", *["not run"] * 6]
    assert [r[2] for r in ablation["MovieTweetings"][2:]] == ["0"] * 7  # every variant, none run


def test_study_cells_numbers_changes_and_epochs(built):
    paper = {t[0][0]: t for t in parse(_study(built, "paper")).tables}
    rows = {(r[0], r[1]): r for r in paper["ML1M"][2:]}
    cells = [("existing", "all", "HR"), ("existing", "all", "NDCG"), ("existing", "head", "NDCG"),
             ("existing", "tail", "NDCG"), ("new", "all", "HR"), ("new", "all", "NDCG")]
    for i, (g, sub, m) in enumerate(cells):
        base = expected_cell("paper", "baseline", "baseline", "ml1m", "gru4rec", g, m, (0, 1, 2), subset=sub)
        tp = expected_cell("paper", "tp", "tp", "ml1m", "gru4rec", g, m, (0, 1, 2), subset=sub)
        assert rows[("GRU4Rec", "baseline")][4 + i] == ms_text(base)
        p = sps.ttest_rel(tp, base).pvalue
        assert rows[("GRU4Rec", "tp")][4 + i] == f"{ms_text(tp)} {fpct((tp - base).mean() / base.mean())}, {fpeq(p)}"
    # a TP row without a baseline shows its numbers and no change
    caser = expected_cell("paper", "tp", "tp", "ml1m", "caser", "existing", "HR", (0, 1))
    assert rows[("Caser", "tp")][4] == ms_text(caser)
    # epochs: best / run, mean over seeds (2, 4, 6 / 6, 8, 10), and the run at its cap (12 epochs, best 10)
    assert rows[("GRU4Rec", "baseline")][3] == "4 / 8"
    assert rows[("SASRec", "tp")][3] == "5 / 9 (1 capped)"  # (2 + 4 + 10) / 3, (6 + 8 + 12) / 3
    part = _study(built, "paper")
    assert "23 of 36 runs finished" in part and "0, 1, 2" in part
    assert "<code>tp</code> (TP; k 2, λ 0.1)" in part and "<code>baseline</code> (baseline; the backbone" in part
    for name, st in studies_config()["studies"].items():  # finished of declared: cells × variants × seeds
        declared = sum(map(len, st["cells"].values())) * len(st["variants"]) * len(st["seeds"])
        finished = sum(len(seeds) for study, *_, seeds in RUNS if study == name)
        assert f"{finished} of {declared} runs finished" in _study(built, name)
    assert "19 of 42 runs finished" in _study(built, "ablation")
    # a control variant (`against: tp`) is compared with TP, seed by seed, and says so
    abl = {t[0][0]: t for t in parse(_study(built, "ablation")).tables}
    abl_rows = {(r[0], r[1]): r for r in abl["ML1M"][2:]}
    tp = expected_cell("ablation", "tp", "tp", "ml1m", "gru4rec", "existing", "HR", (0, 1))
    lam0 = expected_cell("ablation", "tp-lam0", "tp", "ml1m", "gru4rec", "existing", "HR", (0, 1))
    # (the fixture's two TP variants share their seeds' noise: a constant difference, so no p-value is shown)
    assert abl_rows[("GRU4Rec", "tp-lam0")][4] == f"{ms_text(lam0)} vs tp: {fpct((lam0 - tp).mean() / tp.mean())}"
    assert fpct((lam0 - tp).mean() / tp.mean()) != fpct((lam0 - expected_cell(
        "ablation", "baseline", "baseline", "ml1m", "gru4rec", "existing", "HR", (0, 1))).mean() / tp.mean())
    assert "<code>tp-lam0</code> (TP; k 2, λ 0; compared with tp)" in _study(built, "ablation")
    # the verdict's class and words travel with the TP cell
    cls = [a for t, a in parse(part).tags if t == "td" and a.get("title") == "holds (p < 0.05)"]
    assert len(cls) == 6 and all("holds" in a["class"].split() for a in cls)


# ---------------------------------------------------------------------------------------------------------
# Protocol, provenance, costs


def test_protocol_rows_from_the_main_study(built):
    html, parsed = built["html"], built["parsed"]
    (proto,) = tables_with(parsed, "Choice")
    values = {r[0]: r[1] for r in proto[1:]}
    for key in ("Masking of seen items", "Tie rule", "Existing users' items", "Filter per source",
                "Existing / new users", "Head / tail", "Seeds run (main study)", "Seeds declared (main study)",
                "Model selection and stopping", "Caser's unseen users", "TP: inner updates k",
                "TP: inner lr α (plain SGD)", "TP: outer lr β (Adam)", "TP: adversarial weight λ",
                "TP: parallel chains P", "Significance"):
        assert key in values, key
    assert values["Existing / new users"].startswith("80% / 20%")
    assert values["Seeds run (main study)"] == "0, 1, 2 (per cell: 2–3)"
    assert values["Seeds declared (main study)"] == "0, 1, 2"
    assert values["TP: inner lr α (plain SGD)"] == "0.02"  # the overrides' setting for TP
    assert values["TP: inner updates k"] == "2" and values["TP: adversarial weight λ"] == "0.1"
    assert L.protocol_words(PROTOCOL) in values["Model selection and stopping"]
    assert "second-to-last = validation" in values["Existing users' items"]
    assert "tp.alpha: 0.02" in html  # config.yaml embedded
    (hp,) = tables_with(parsed, "weight decay")
    hp_rows = {(r[0], r[1]): r for r in hp[1:]}
    assert hp_rows[("ML1M", "SASRec")][3] == "200" and hp_rows[("Game", "SASRec")][3] == "50"  # Game: not run
    assert hp_rows[("Music", "SASRec")][2:] == ["not declared in study paper"]


def test_settings_are_the_runs_recorded_ones_else_the_declared_ones(built):
    """A cell's settings come from configs.jsonl: the config.json of its finished run of the lowest seed, else the
    config declared for its runs; a cell configs.jsonl does not hold has none."""
    agg = load_aggregate(built["agg"])
    row = L.config_row(agg, "paper", "ml1m", "sasrec", "tp")
    assert (row["source"], row["seed"]) == ("run", 0)
    recorded = json.loads((built["root"] / "runs/paper/ml1m/sasrec/tp/seed0/config.json").read_text())
    assert row["config"] == json.loads(json.dumps(recorded))
    row = L.config_row(agg, "paper", "game", "sasrec", "tp")  # declared, not run
    assert (row["source"], row["seed"], row["config"]["tp"]["alpha"]) == ("declared", None, 0.02)
    assert L.config_row(agg, "paper", "music", "sasrec", "tp") is None  # not declared
    with pytest.raises(DataError, match="no config of study paper, music/sasrec/tp"):
        L.cell_config(agg, "paper", "music", "sasrec", "tp")
    # a run that recorded other settings than the ones declared now: the page states the recorded ones
    configs = json.loads(json.dumps(agg.configs))
    for r in configs:
        if (r["study"], r["dataset"], r["backbone"], r["variant"], r["source"]) == ("paper", "ml1m", "sasrec", "tp",
                                                                                     "run"):
            r["config"]["model"]["d"] = 64
    edited = dataclasses.replace(agg, configs=configs)
    _, rows = R.hyperparameter_rows(edited, "paper", "tp", ["ml1m", "game"], ["sasrec"])
    assert [r["values"][0] for r in rows] == ["64", "50"]
    # settings the studies cannot build: the row says why; a section that states one config for the whole study
    # takes the first cell that has one, and stops with the first cell's problem when none has
    broken = [{**r, "config": None, "error": "model.d must be > 0, got 0"} if r["dataset"] == "game" else r
              for r in configs]
    broken_agg = dataclasses.replace(agg, configs=broken)
    _, rows = R.hyperparameter_rows(broken_agg, "paper", "tp", ["game"], ["sasrec"])
    assert rows == [{"dataset": "Game", "backbone": "SASRec", "error": "model.d must be > 0, got 0"}]
    with pytest.raises(DataError, match="no run config of study paper, game/sasrec/tp: model.d must be > 0"):
        L.cell_config(broken_agg, "paper", "game", "sasrec", "tp")
    cells = [("game", ["sasrec"]), ("ml1m", ["gru4rec", "sasrec"])]
    assert L.first_config(broken_agg, "paper", cells, "tp") == L.cell_config(agg, "paper", "ml1m", "gru4rec", "tp")
    with pytest.raises(DataError, match="game/sasrec/tp: model.d must be > 0"):
        L.first_config(broken_agg, "paper", cells[:1], "tp")


def test_no_report_module_rebuilds_a_config():
    """The report reads the runs' settings from the aggregate: no module of tplib.report imports tplib.grid, or
    from tplib.config more than its constants."""
    folder = Path(R.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not any(a.name in ("tplib.grid", "tplib.config") for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and node.module in ("tplib.grid", "tplib.config"):
                assert node.module == "tplib.config" and all(a.name.isupper() for a in node.names), path


def test_provenance_and_costs(built):
    html, parsed = built["html"], built["parsed"]
    assert "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f" in html
    assert "torch" in html and "pandas" in html and "NVIDIA H100" in html
    stamp = build_stamp(load_aggregate(built["agg"]))
    assert f"tables <code>{stamp['tables']}</code>" in html
    (cells,) = tables_with(parsed, "seconds (sum)")
    by = {tuple(r[:4]): r for r in cells[1:]}
    assert len(by) == len({(st, ds, bb, v) for st, ds, bb, v, _ in RUNS})
    r = by[("paper", "ML1M", "GRU4Rec", "baseline")]
    assert r[4] == "3" and r[5] == fint(sum(bench_seconds(s) for s in (0, 1, 2)))  # 303
    assert by[("long", "Music", "Caser", "tp")][4] == "2"
    n = sum(len(seeds) for *_, seeds in RUNS)
    assert f"Every run ({n})" in html and f"{n} finished runs in 3 studies" in html



# ---------------------------------------------------------------------------------------------------------
# The searches and a tuned study


def test_search_table_budgets_and_a_search_in_progress():
    """Per search: trials counted (finished or pruned) against the budget, the best finished trial's value and
    settings; a search short of its budget says so beside its count and its best; none at all reads "not run"."""
    from types import SimpleNamespace

    from tplib.report.tables import search_blocks

    space = {"train.lr": {"log": [1e-4, 1e-2]}}
    tu = {"title": "t", "about": "", "cells": {"music": ["sasrec", "caser"]}, "seed": 0, "trials": 3,
          "prune_after": 0, "protocol": {"eval_every": 2, "patience": 5, "max_epochs": 10, "min_epochs": 0},
          "spaces": {"baseline": space, "tp": {"tp.alpha": {"log": [0.01, 1]}}}}

    def rows(name, states, values, key, params, stopped=(), epochs=None):
        epochs = epochs or [10] * len(states)
        return [{"study": name, "trial": i, "state": s, "value": v, "interrupted": i in stopped, "epochs": e,
                 "best_epoch": e - 2 if s == "COMPLETE" else math.nan, f"params_{key}": p}
                for i, (s, v, p, e) in enumerate(zip(states, values, params, epochs))]

    trials = pd.DataFrame(
        rows("f-music-sasrec-baseline", ["COMPLETE", "PRUNED", "COMPLETE"], [0.02, 0.01, 0.03], "train.lr",
             [1e-3, 1e-4, 2e-3], epochs=[6, 4, 10])
        + rows("f-music-sasrec-tp", ["COMPLETE", "RUNNING"], [0.04, math.nan], "tp.alpha", [0.5, 0.1])
        + rows("f-music-caser-baseline", ["FAIL", "FAIL", "RUNNING"], [math.nan, 0.01, 0.01], "train.lr",
               [1e-2, 1e-3, 1e-3], stopped=(1,)))
    blocks = search_blocks(SimpleNamespace(config={"tunings": {"f": tu}}), trials)
    (block,) = blocks
    base, tp, caser_base, caser_tp = block["rows"]
    assert (base["budget"], base["pruned"], base["best"]) == ("3 of 3", "1", "0.0300 @ 8")
    assert base["capped"] == "1 of 2"  # one finished trial stopped early (epoch 6), one ran to the cap (10)
    assert base["chosen"][0]["value"] == "0.002"
    assert (tp["budget"], tp["best"]) == ("1 of 3 (in progress)", "0.0400 @ 8 so far")
    assert tp["chosen"][0]["value"] == "0.5" and not tp["not_run"]
    assert (caser_base["budget"], caser_base["failed"], caser_base["interrupted"], caser_base["best"]) == (
        "0 of 3 (in progress)", "1", "1", "none finished yet")  # an error and a stopped trial, told apart
    assert caser_tp["best"] == "not run" and caser_tp["budget"] == "0 of 3" and caser_tp["not_run"]
    assert caser_tp["capped"] == "—"
    assert [r["state"] for r in block["rows"]] == ["finished", "in progress", "in progress", "not run"]
    # the README's verdict says where the searches stand
    assert C.search_progress("f", blocks) == "its searches (tuning `f`, 3 trials per method and cell): 1 of 4 " \
                                             "finished, 2 in progress"
    assert C.search_progress("other", blocks) == ""



def test_a_tuned_studys_variants_say_they_start_from_their_search():
    """A study with ``tuned_from`` runs each method at its search's best settings, and says so (not "the
    backbone's own settings"); a control names what it changes on top and what it is compared with."""
    from tplib.report.tables import variant_settings

    best = "the best settings of its method's search (tuning fair)"
    assert variant_settings({"method": "baseline"}, "fair") == best
    assert variant_settings({"method": "tp", "set": {"tp.align": False}, "against": "tp"}, "fair") == \
        f"{best}, then tp.align false; compared with tp"
    assert variant_settings({"method": "tp", "set": {"tp.lam": 0}, "against": "tp"}, "fair") == \
        f"{best}, then λ 0; compared with tp"
    assert variant_settings({"method": "baseline"}) == "the backbone's own settings"
    assert variant_settings({"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}}) == "k 2, λ 0.1"
