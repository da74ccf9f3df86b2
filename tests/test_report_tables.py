"""The report's paper tables, on the studies of report_fixture.py: Table 2's arithmetic and notes beside the
paper's; Table 3 and the verdict grid from the main study only (a TP run of another study never enters them; the
baseline is the control the paired test used); the verdicts, the number formats and the README's verdict."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import stats as sps

from tplib.report import claims as C
from tplib.report import load as L
from tplib.report.load import fint, flam, fnum, fp, fpct, fpeq, fstat, verdict
from tplib.report.paper import BACKBONE_LABEL, DATASET_LABEL, PAPER_DATASETS, paper_table2, paper_table3

from report_fixture import chunk, expected_cell, ms_text, parse, tables_with

# ---------------------------------------------------------------------------------------------------------
# Table 2


def test_table2_reproduced_beside_paper_with_differences_named(built):
    html, parsed = built["text"], built["parsed"]
    (t2,) = tables_with(parsed, "#Interactions")
    body = t2[1:]
    start = next(i for i, r in enumerate(body) if r[0] == "ML1M")
    ml1m = body[start : start + 3]
    assert [r[1] for r in ml1m] == ["paper", "reproduced", "raw file, before the filter"]
    assert ml1m[0][:5] == ["ML1M", "paper", "6,040", "3,706", "1,000,209"]
    assert ml1m[1][2:] == ["6,040", "3,416", "999,611", "165.50", "292.63", "4.845", ""]
    # the raw row's ratios are computed from the raw counts: 1,000,209 / 6,040, / 3,706, and the density
    assert ml1m[2][2:8] == ["6,040", "3,706", "1,000,209", "165.60", "269.89", "4.468"]
    assert ml1m[0][-1] == "differs"
    # every paper dataset appears, then the other prepared ones; the unprepared ones say so
    names = [r[0] for r in body if r[0]]
    assert names == ["Music", "Game", "ML1M", "MovieTweetings", "mt-sample"]
    game = next(i for i, r in enumerate(body) if r[0] == "Game")
    assert body[game + 1][1:] == ["reproduced", *["not run"] * 6, ""] and body[game][-1] == "not prepared"
    mts = next(r for r in body if r[0] == "mt-sample")
    assert mts[1] == "reproduced" and mts[-1] == "not in the paper"
    # Music: the counts match; only the paper's own density slip (63,054 / (2,831 × 13,410) = 0.166%) differs
    music = next(r for r in body if r[0] == "Music")
    assert music[-1] == "counts match"
    # differences and their explanations
    assert "unfiltered" in html and "#Items: 3,416 here vs 3,706 in the paper (-7.8%)" in html
    assert "#Interactions: 999,611 here vs 1,000,209 in the paper (-0.06%)" in html  # small: two digits
    assert "2013-11-06" in html  # MovieTweetings version
    assert "MELT" in html and "Video.txt" in html  # Amazon copies
    assert "the paper's Density % 0.163 does not follow from its own counts (0.166)" in html
    assert "Density %: 0.166 here vs 0.163 in the paper" in html
    assert "items >= 5, then users >= 10, one pass" in html  # provenance under the note


def test_table2_block_statuses_follow_the_measured_rows():
    """C.table2 on hand-made stats: exact counts read "matches the paper", a count off by one "differs"."""
    paper = paper_table2()
    exact = paper.loc[["game"]].reset_index()
    (game,) = [b for b in C.table2(exact) if b["key"] == "game"]
    assert game["status"] == "matches the paper" and game["diffs"] == [] and game["checks"] == []
    off = exact.copy()
    off.loc[0, "users"] += 1
    (game,) = [b for b in C.table2(off) if b["key"] == "game"]
    assert game["status"] == "differs" and game["diffs"] == ["#Users: 7,520 here vs 7,519 in the paper (+0.01%)"]


def test_paper_tables_are_complete():
    t2 = paper_table2()
    assert list(t2.index) == list(PAPER_DATASETS)
    assert t2.loc["ml1m", "items"] == 3706 and t2.loc["ml1m", "interactions"] == 1000209
    t3 = paper_table3()
    assert len(t3) == 4 * 3 * 2 * 2 * 2 and not t3.isna().any().any()
    assert set(t3["N"]) == {10} and set(t3["method"]) == {"baseline", "tp"}


# ---------------------------------------------------------------------------------------------------------
# Table 3 and the verdicts: the main study only


def _table3(built) -> dict[tuple[str, str, str], list[str]]:
    """Table 3's rows by (group metric, dataset, backbone)."""
    parsed = parse(chunk(built["html"], 'id="table3"', 'id="studies"'))
    subtables = tables_with(parsed, "Baseline")
    assert len(subtables) == 4  # existing/new × HR@10/NDCG@10
    out = {}
    for t, name in zip(subtables, ("existing HR", "existing NDCG", "new HR", "new NDCG")):
        for r in t[2:]:
            assert len(r) == 14
            out[(name, r[0], r[1])] = r
    return out


def test_table3_rows_are_the_main_studys_datasets_by_every_backbone(built):
    rows = _table3(built)
    assert len(rows) == 4 * 3 * 3  # ml1m, music, game (the main study's) × GRU4Rec, Caser, SASRec
    assert {(d, b) for _, d, b in rows} == {(DATASET_LABEL[d], BACKBONE_LABEL[b]) for d in ("music", "game", "ml1m")
                                            for b in ("gru4rec", "caser", "sasrec")}
    assert not [k for k in rows if k[1] == "MovieTweetings"]  # only the ablation declares it


def test_table3_numbers_are_the_main_studys_with_the_papers_beside(built):
    rows = _table3(built)
    paper = paper_table3()
    for (name, ds, bb), r in rows.items():
        group, metric = name.split()
        dsk = {v: k for k, v in DATASET_LABEL.items()}[ds]
        bbk = {v: k for k, v in BACKBONE_LABEL.items()}[bb]
        p = paper[(paper.group == group) & (paper.metric == metric) & (paper.dataset == dsk) & (paper.backbone == bbk)]
        pb, pt = (p.loc[p.method == m, "value"].item() for m in ("baseline", "tp"))
        assert r[3] == f"{pb:.4f}" and r[6] == f"{pt:.4f}"
        assert r[9] == fpct(pt / pb - 1)
    # ML1M GRU4Rec: TP 10% better on every seed, tested over the 3 seeds both have
    r = rows[("existing HR", "ML1M", "GRU4Rec")]
    base = expected_cell("paper", "baseline", "baseline", "ml1m", "gru4rec", "existing", "HR", (0, 1, 2))
    tp = expected_cell("paper", "tp", "tp", "ml1m", "gru4rec", "existing", "HR", (0, 1, 2))
    assert r[2] == f"{ms_text(base)} n=3" and r[5] == f"{ms_text(tp)} n=3"
    assert r[4] == fpct(base.mean() / 0.2036 - 1)  # vs the paper's 0.2036
    assert r[8] == f"{fpct((tp - base).mean() / base.mean())} {fnum((tp - base).mean())}"
    assert r[10] == "3" and r[11] == fp(sps.ttest_rel(tp, base).pvalue) and r[12] == "0.250"
    assert r[13] == "holds (p < 0.05)"
    # new users' rows read the new users' numbers (the fixture puts them 8% below the existing users')
    for group, metric in (("new", "HR"), ("new", "NDCG"), ("existing", "NDCG")):
        r = rows[(f"{group} {metric}", "ML1M", "GRU4Rec")]
        base = expected_cell("paper", "baseline", "baseline", "ml1m", "gru4rec", group, metric, (0, 1, 2))
        tp = expected_cell("paper", "tp", "tp", "ml1m", "gru4rec", group, metric, (0, 1, 2))
        assert r[2] == f"{ms_text(base)} n=3" and r[5] == f"{ms_text(tp)} n=3", (group, metric)
    # ML1M SASRec: under 1% better: level, whatever the p-value
    assert rows[("new NDCG", "ML1M", "SASRec")][13] == "level (under 1%)"
    # Music GRU4Rec: 8% worse
    assert rows[("existing NDCG", "Music", "GRU4Rec")][13] == "reversed (p < 0.05)"


def test_table3_not_run_cells_and_tp_of_another_study(built):
    """Music Caser has a baseline in the main study and a TP run only in study `long`: Table 3 says "TP not run"
    (a TP number never appears without its study's baseline, nor one from another study); ML1M Caser has TP but no
    baseline in the main study; Game and Music SASRec have nothing."""
    rows = _table3(built)
    long_tp = expected_cell("long", "tp", "tp", "music", "caser", "existing", "HR", (0, 1))
    for name in ("existing HR", "existing NDCG", "new HR", "new NDCG"):
        mc = rows[(name, "Music", "Caser")]
        assert mc[2].endswith("n=3") and mc[5] == "not run" and mc[13] == "TP not run"
        assert mc[8] == "—" and mc[10] == "—" and mc[11] == "—"
        c = rows[(name, "ML1M", "Caser")]
        assert c[2] == "not run" and c[5].endswith("n=2") and c[10] == "0" and c[13] == "baseline not run"
        for cell in (("Game", "SASRec"), ("Game", "GRU4Rec"), ("Music", "SASRec")):
            assert rows[(name, *cell)][2] == rows[(name, *cell)][5] == "not run"
            assert rows[(name, *cell)][13] == "not run"
    assert f"{long_tp.mean():.4f}" not in chunk(built["html"], 'id="verdicts"', 'id="studies"')
    # the ablation's own `tp` variant on ML1M SASRec (6% better) does not replace the main study's (0.4%)
    main_tp = expected_cell("paper", "tp", "tp", "ml1m", "sasrec", "existing", "HR", (0, 1, 2))
    assert rows[("existing HR", "ML1M", "SASRec")][5] == f"{ms_text(main_tp)} n=3"


def test_verdict_grid_counts_and_cells(built):
    html = built["html"]
    part = chunk(html, 'id="verdicts"', 'id="table2"')
    (grid,) = tables_with(parse(part), "existing HR@10")
    assert grid[0] == ["Dataset", "Backbone", "existing HR@10", "existing NDCG@10", "new HR@10", "new NDCG@10"]
    by = {(r[0], r[1]): r[2:] for r in grid[1:]}
    assert len(by) == 9
    assert by[("ML1M", "GRU4Rec")] == ["holds (p < 0.05)"] * 4
    assert by[("ML1M", "SASRec")] == ["level (under 1%)"] * 4
    assert by[("Music", "GRU4Rec")] == ["reversed (p < 0.05)"] * 4
    assert by[("Music", "Caser")] == ["TP not run"] * 4
    assert by[("ML1M", "Caser")] == ["baseline not run"] * 4
    assert by[("Game", "SASRec")] == ["not run"] * 4
    # counts over the paper's cells (all 36 here are in the paper): 4 hold, 4 level, 4 reversed, 24 not run
    assert "Of the 36 cells of the paper’s table that this study declares" in part
    for badge in ("4 hold", "0 same direction, not significant", "4 level", "4 reversed", "24 not run"):
        assert f">{badge}</span>" in part, badge


def test_verdicts():
    assert verdict(0.01, 0.01, 5, True, True) == ("holds (p < 0.05)", "holds")
    assert verdict(0.01, 0.2, 5, True, True) == ("same direction, not significant", "weak")
    assert verdict(0.01, math.nan, 5, True, True) == ("same direction, not significant", "weak")
    assert verdict(-0.01, 0.01, 5, True, True) == ("reversed (p < 0.05)", "reversed")
    assert verdict(-0.01, 0.3, 5, True, True) == ("reversed, not significant", "reversed")
    # level: a relative difference under 1%, significant or not, either sign; exactly 1% is not level
    assert verdict(0.001, 0.0001, 5, True, True, rel=0.009) == ("level (under 1%)", "level")
    assert verdict(-0.001, 0.0001, 5, True, True, rel=-0.0099) == ("level (under 1%)", "level")
    assert verdict(0.001, 0.0001, 5, True, True, rel=0.01) == ("holds (p < 0.05)", "holds")
    assert verdict(0.0, 0.5, 5, True, True) == ("level (under 1%)", "level")
    # p exactly at α is not significant
    assert verdict(0.01, 0.05, 5, True, True)[1] == "weak"
    # what was not run, or not paired
    assert verdict(None, None, None, True, False) == ("TP not run", "notrun")
    assert verdict(None, None, None, False, True) == ("baseline not run", "notrun")
    assert verdict(None, None, None, False, False) == ("not run", "notrun")
    assert verdict(0.01, math.nan, 0, True, True) == ("no paired seeds", "notrun")
    assert verdict(math.nan, math.nan, 3, True, True) == ("no data", "notrun")
    assert verdict(0.01, math.nan, 1, True, True) == ("same direction, untested (1 seed)", "weak")
    assert verdict(-0.01, math.nan, 1, True, True) == ("reversed, untested (1 seed)", "reversed")


def test_number_formats():
    assert fp(0.0004) == "< 0.001" and fp(0.001) == "0.001" and fp(0.0123) == "0.012" and fp(math.nan) == "—"
    assert fpeq(0.0004) == "p < 0.001" and fpeq(0.0123) == "p = 0.012" and fpeq(None) == "" and fpeq(math.nan) == ""
    assert fnum(0.123456) == "0.1235" and fnum(0.5, 2) == "0.50" and fnum(None) == "—" and fnum(pd.NA) == "—"
    assert fint(1000209) == "1,000,209" and fint(2.6) == "3" and fint(math.nan) == "—"
    assert fpct(0.1234) == "+12.3%" and fpct(-0.05) == "-5.0%" and fpct(0.0004) == "+0.04%"
    assert fpct(0.5, sign=False) == "50.0%" and fpct(math.nan) == "—"
    assert flam(0.1) == "0.1" and flam(10.0) == "10" and flam(0) == "0" and flam(math.nan) == "—"
    assert fstat("users", 6040) == "6,040" and fstat("density_percent", 4.4681) == "4.468"
    assert fstat("records_per_user", 165.5) == "165.50" and fstat("items", math.nan) == "—"


def test_p_values_are_written_with_spaces_on_the_page(built):
    text = built["text"]
    assert not re.search(r"\bp\s*=\s*<|\bp=|\bp<", text)
    assert "p < 0.05" in text and "p < 0.001" in text and re.search(r"p = 0\.\d{3}\b", text)



def test_table3_shows_the_studys_control_baseline_not_any_baseline():
    """A main study with two baseline variants: Table 3's baseline is the control the paired test used."""
    from tplib.report.claims import table3

    rows = []
    for variant, method, mean in (("alt", "baseline", 0.30), ("baseline", "baseline", 0.20), ("tp", "tp", 0.22)):
        for group in ("existing", "new"):
            for metric in ("HR", "NDCG"):
                rows.append({"study": "paper", "dataset": "ml1m", "backbone": "sasrec", "variant": variant,
                             "method": method, "group": group, "subset": "all", "metric": metric, "N": 10,
                             "mean": mean, "std": 0.01, "n": 3, "n_pairs": 3 if method == "tp" else np.nan,
                             "diff_mean": 0.02 if method == "tp" else np.nan, "rel_improvement": 0.1,
                             "p_ttest": 0.01, "p_wilcoxon": 0.25})
    t3 = table3(pd.DataFrame(rows), "tp", ["sasrec"], ["ml1m"], base_name="baseline")
    row = next(r for r in t3["subtables"][0]["rows"] if r["backbone"] == "SASRec")
    assert row["base"]["text"].startswith("0.2000") and row["tp"]["text"].startswith("0.2200")


def test_readme_verdict_names_every_paired_cell_by_class(built):
    """The README's two-sentence answer counts the main study's cells by verdict as the grid does, names each
    paired cell with its change and p-value, and says where the fair test stands."""
    from tplib.report.paper import PAPER_BACKBONES, PAPER_DATASETS

    agg = L.load_aggregate(built["agg"])
    v = C.verdict_cells(agg, "paper", PAPER_DATASETS, PAPER_BACKBONES)
    assert [c.split(" ")[:2] for c in v["holds"]] == [["ML1M", "GRU4Rec"]]
    assert [c.split(" ")[:2] for c in v["reversed"]] == [["Music", "GRU4Rec"]]
    assert [c.split(" ")[:2] for c in v["level"]] == [["ML1M", "SASRec"]]
    text = C.readme_verdict(agg, PAPER_DATASETS, PAPER_BACKBONES)
    assert "TP is behind the baseline in 1 of the 3 cells with paired seeds, ahead in 1 (p < 0.05)" in text
    for c in v["holds"] + v["reversed"] + v["level"]:
        assert c in text and "seeds)" in c and "p " in c


def test_readme_verdict_with_one_paired_cell_says_what_it_is(monkeypatch):
    """One paired cell: "TP is behind the baseline in the only cell ...", not "in 1 of the 1 cells, ahead in 0"."""
    cells = {"reversed": ["Music SASRec -18.1% (p = 0.005, 4 seeds)"], "notrun": ["x"] * 11}
    monkeypatch.setattr(C, "verdict_cells", lambda *a: cells)
    text = C._verdict_sentence(None, "paper", "At the paper's settings", [], [])
    assert text == ("At the paper's settings (study `paper`), TP is behind the baseline in the only cell with paired "
                    "seeds (Music SASRec -18.1% (p = 0.005, 4 seeds)); 11 of 12 cells have no paired seeds yet.")
    monkeypatch.setattr(C, "verdict_cells", lambda *a: {"level": ["ML1M SASRec +0.2% (p = 0.9, 3 seeds)"]})
    assert "TP is level with the baseline in the only cell with paired seeds" in C._verdict_sentence(
        None, "tuned", "x", [], [])
