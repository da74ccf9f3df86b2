"""The report's figures, on the studies of report_fixture.py: Figures 4-7 (the numbers they draw, seeds, "not
run" points), the curves and the discriminator diagnostics with the tail share, every figure as PNG and PDF for
every declared dataset, and a search's trial history."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tplib.report import figures as F
from tplib.report import load as L
from tplib.report import sections as S
from tplib.report import training_figures as TF
from tplib.report.load import fnum, load_aggregate

from report_fixture import NS, PROTOCOL, chunk, expected_cell, parse, tables_with

# ---------------------------------------------------------------------------------------------------------
# Figures


MAIN_DATASETS = ("ml1m", "music", "game")
ABLATION_DATASETS = ("ml1m", "movietweetings")


def test_figures_written_as_png_and_pdf_for_every_declared_dataset(built):
    figures = built["figures"]
    pngs = {p.stem for p in figures.glob("*.png")}
    pdfs = {p.stem for p in figures.glob("*.pdf")}
    want = {f"{kind}_{ds}" for kind in ("fig4_topn", "fig5_headtail", "curves", "diag") for ds in MAIN_DATASETS}
    want |= {f"{kind}_{ds}" for kind in ("fig6_k", "fig7_lambda") for ds in ABLATION_DATASETS}
    assert pngs == pdfs == want  # nothing from the study `long`, nothing missing
    for p in figures.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for p in figures.glob("*.pdf"):
        assert p.read_bytes()[:5] == b"%PDF-"
    # each embedded image is the file written
    html = built["html"]
    for stem in ("fig4_topn_game", "fig6_k_movietweetings", "diag_ml1m"):
        uri = "data:image/png;base64," + base64.b64encode((figures / f"{stem}.png").read_bytes()).decode()
        assert uri in html and f"<code>{stem}.png</code>" in html and f"<code>{stem}.pdf</code>" in html
    assert "Figure 6: TP against the inner update count k (λ = 0.1) (study ablation)" in html
    assert "Figure 7: TP against the adversarial weight λ (k = 2) (study ablation)" in html
    assert "Figure 4: top-N accuracy, baseline vs TP (study paper)" in html


@pytest.fixture(scope="module")
def drawn(built, tmp_path_factory):
    """The figure sections rebuilt from the fixture's aggregate with the drawing functions recorded: every
    call's arguments and every figure saved, by stem."""
    agg = load_aggregate(built["agg"])
    calls: dict[str, list] = {"fig_ablation": [], "fig_topn": [], "fig_headtail": []}
    saved: dict[str, object] = {}
    mp = pytest.MonkeyPatch()
    for name in calls:
        real = getattr(F, name)
        mp.setattr(F, name, lambda *a, _real=real, _name=name, **kw: calls[_name].append((a, kw)) or _real(*a, **kw))
    real_save = F.save_figure
    def save(fig, stem, *a):
        saved[stem] = fig
        return real_save(fig, stem, *a)

    mp.setattr(F, "save_figure", save)
    folder = tmp_path_factory.mktemp("figs")
    ds, bbs = ["music", "game", "ml1m", "movietweetings"], ["gru4rec", "caser", "sasrec"]
    try:
        sections = [*S.main_figures(agg, "paper", ds, bbs, folder), *S.ablation_figures(agg, "ablation", ds, bbs, folder),
                    S.curves_section(agg, "paper", ds, bbs, folder), S.diagnostics_section(agg, "paper", ds, bbs, folder)]
    finally:
        mp.undo()
    return {"agg": agg, "calls": calls, "saved": saved, "sections": sections}


def test_figures_4_5_draw_the_main_studys_baseline_and_tp(drawn):
    for a, _ in drawn["calls"]["fig_topn"] + drawn["calls"]["fig_headtail"]:
        base, tp, ds, bbs = a[:4]
        assert set(base["study"]) == set(tp["study"]) == {"paper"}
        assert set(base["variant"]) == {"baseline"} and set(tp["variant"]) == {"tp"}
        assert list(bbs) == {"ml1m": ["gru4rec", "caser", "sasrec"], "music": ["gru4rec", "caser"],
                             "game": ["sasrec"]}[ds]
    assert [a[2] for a, _ in drawn["calls"]["fig_topn"]] == ["music", "game", "ml1m"]
    # Music (GRU4Rec, Caser): both methods in GRU4Rec's column; in Caser's the baseline's points only, though
    # study `long` ran TP there
    fig = drawn["saved"]["fig4_topn_music"]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["GRU4Rec", "Caser"] and len(fig.axes) == 8
    assert [len(ax.containers) for ax in fig.axes] == [2, 1] * 4
    # Game: declared, not run: every panel says so
    game = drawn["saved"]["fig4_topn_game"]
    assert all(any(t.get_text() == "not run" for t in ax.texts) for ax in game.axes)
    # the plotted means are the study's: ML1M GRU4Rec, existing HR@N
    ml = drawn["saved"]["fig4_topn_ml1m"]
    ax = next(ax for ax in ml.axes if ax.get_title() == "GRU4Rec")
    lines = [c.lines[0] for c in ax.containers]
    for line, (variant, method) in zip(lines, (("baseline", "baseline"), ("tp", "tp"))):
        want = [expected_cell("paper", variant, method, "ml1m", "gru4rec", "existing", "HR", (0, 1, 2), N=N).mean()
                for N in NS]
        assert list(line.get_xdata()) == list(NS) and np.allclose(line.get_ydata(), want)


def test_ablation_figures_values_seeds_and_not_run_points(drawn):
    """Figures 6-7 from the ablation study: the values its TP variants declare (k 1-3 at λ 0.1; λ 0, 0.1, 1 at
    k 2; not the variant at k 4 and λ 0.01, on neither axis), each backbone's points and its baseline over the seeds
    all of its points have; the declared value that has no run (k 3) is marked "not run"; MovieTweetings, declared
    and not run, gets its figure."""
    calls = drawn["calls"]["fig_ablation"]
    assert [(a[2], a[4]) for a, _ in calls] == [("ml1m", "k"), ("movietweetings", "k"), ("ml1m", "lam"),
                                                ("movietweetings", "lam")]
    for (tp, base, ds, bbs, param, values), kw in calls:
        assert list(values) == ([1.0, 2.0, 3.0] if param == "k" else [0.0, 0.1, 1.0])
        assert list(bbs) == (["gru4rec", "sasrec"] if ds == "ml1m" else ["sasrec"])
        if ds == "movietweetings":
            assert tp.empty and kw["seeds"] == {}
            continue
        assert set(tp["study"]) == {"ablation"} and set(base["study"]) == {"ablation"}
        # λ 1 on SASRec ran seed 0 only: Figure 7's SASRec column (points and baseline) uses seed 0
        want = {"gru4rec": [0, 1], "sasrec": [0, 1] if param == "k" else [0]}
        assert kw["seeds"] == want
        for bb, seeds in want.items():
            assert set(tp.loc[tp.backbone == bb, "n"]) == {len(seeds)}
            assert set(base.loc[base.backbone == bb, "n"]) == {len(seeds)}
            b = base[(base.backbone == bb) & (base.group == "new") & (base.subset == "all") & (base.metric == "NDCG")
                     & (base.N == 10)]
            exp = expected_cell("ablation", "baseline", "baseline", "ml1m", bb, "new", "NDCG", seeds)
            assert b["mean"].item() == pytest.approx(exp.mean())
        # the fixed setting: k's points at λ 0.1 only, λ's at k 2 only
        if param == "k":
            assert np.allclose(tp["lam"], 0.1) and set(tp["k"]) == {1, 2}
        else:
            assert set(tp["k"]) == {2} and set(np.round(tp["lam"], 6)) == {0.0, 0.1, 1.0}
    fig6 = drawn["saved"]["fig6_k_ml1m"]
    top = [ax for ax in fig6.axes if ax.get_title().startswith("SASRec")]
    assert top and top[0].get_title() == "SASRec (seeds 0, 1)"
    marks = [t for ax in fig6.axes for t in ax.texts if t.get_text() == "not run"]
    assert len(marks) == 4 and {t.get_position()[0] for t in marks} == {3.0}  # k 3, both backbones, HR and NDCG
    fig7 = drawn["saved"]["fig7_lambda_ml1m"]
    assert [ax.get_title() for ax in fig7.axes[:2]] == ["GRU4Rec (seeds 0, 1)", "SASRec (seed 0)"]
    assert not [t for ax in fig7.axes for t in ax.texts if t.get_text() == "not run"]
    mt = drawn["saved"]["fig6_k_movietweetings"]
    assert all(any(t.get_text() == "not run" for t in ax.texts) for ax in mt.axes)


def test_diagnostics_carry_the_tail_share_and_curves_both_methods(drawn):
    diag = drawn["saved"]["diag_ml1m"]
    acc = [ax for ax in diag.axes if any(line.get_linestyle() == ":" for line in ax.lines)]
    # the accuracy panels of GRU4Rec, Caser and SASRec (all three have TP runs in the main study)
    assert len(acc) == 3
    for ax in acc:
        (ref,) = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert np.allclose(ref.get_ydata(), 0.8)  # 1 - split.head_frac
    legend_texts = [t.get_text() for lg in diag.legends for t in lg.get_texts()]
    assert "tail share (80%)" in legend_texts
    (sec,) = [s for s in drawn["sections"] if s.key == "diag"]
    assert "tail share (80% of the users drawn)" in sec.caption
    # disc_acc drawn is the main study's TP: mean over seeds per epoch (0.85 - 0.01 e)
    sasrec_acc = acc[2]
    data = next(line for line in sasrec_acc.lines if line.get_linestyle() != ":")
    assert np.allclose(data.get_ydata(), 0.85 - 0.01 * np.asarray(data.get_xdata()))
    assert max(data.get_xdata()) == 12  # the capped run's epochs
    # the curves: baseline and TP of the main study, validation epochs only
    (cur,) = [s for s in drawn["sections"] if s.key == "curves"]
    assert L.protocol_words(PROTOCOL) in cur.caption
    fig = drawn["saved"]["curves_music"]
    ax = next(ax for ax in fig.axes if ax.get_title() == "GRU4Rec")
    assert len(ax.lines) == 2 and all(list(line.get_xdata()) == [2, 4, 6, 8, 10] for line in ax.lines)
    caser = next(ax for ax in fig.axes if ax.get_title() == "Caser")
    assert len(caser.lines) == 1  # baseline only: study long's TP on Music Caser is not drawn


def test_diagnostics_tail_share_follows_the_recorded_config(drawn, tmp_path, monkeypatch):
    """With split.head_frac 0.3 in the settings the aggregate records, the reference line sits at 0.7."""
    agg = drawn["agg"]
    configs = json.loads(json.dumps(agg.configs))
    for row in configs:
        if row["config"] is not None:
            row["config"]["split"]["head_frac"] = 0.3
    figs = {}
    real = F.save_figure
    monkeypatch.setattr(F, "save_figure", lambda fig, stem, *a: figs.setdefault(stem, fig) and real(fig, stem, *a))
    sec = S.diagnostics_section(dataclasses.replace(agg, configs=configs), "paper", ["ml1m"], ["sasrec"], tmp_path)
    assert "tail share (70% of the users drawn)" in sec.caption
    assert sorted(figs) == ["diag_game", "diag_ml1m", "diag_music"]  # every declared dataset, named or not
    refs = [line for ax in figs["diag_ml1m"].axes for line in ax.lines if line.get_linestyle() == ":"]
    assert len(refs) == 3 and all(np.allclose(ref.get_ydata(), 0.7) for ref in refs)


def test_diagnostics_table_is_the_main_studys_tp(built):
    parsed = parse(chunk(built["html"], 'id="diag"', 'id="protocol"'))
    (t,) = tables_with(parsed, "disc_acc (last)")
    rows = {(r[0], r[1]): r[2:] for r in t[1:]}
    assert len(rows) == 9  # main datasets × backbones
    # ML1M SASRec: seeds 0-2 ran 6, 8, 12 epochs: mean last epoch 8.7, disc_acc at the last epoch 0.85 - 0.01 e
    r = rows[("ML1M", "SASRec")]
    assert r[:2] == ["3", "8.7"] and r[4] == fnum(np.mean([0.85 - 0.01 * e for e in (6, 8, 12)]))
    assert rows[("Music", "Caser")] == ["not run"] * 11  # study long's TP there is not the main study's
    assert rows[("ML1M", "Caser")][0] == "2"



def test_a_search_plot_carries_its_best_so_far_past_pruned_and_failed_trials():
    """The line is the best finished value so far at every trial after the first finished one, pruned and failed
    trials included (they neither raise it nor break it)."""
    states = ["PRUNED", "COMPLETE", "PRUNED", "FAIL", "COMPLETE", "PRUNED", "COMPLETE"]
    values = [0.05, 0.02, 0.09, np.nan, 0.04, 0.01, 0.03]
    trials = pd.DataFrame({"study": "fair-music-sasrec-baseline", "trial": range(7), "state": states, "value": values})
    fig = TF.fig_trials(trials, "fair", "music", ["sasrec"])
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == list(range(7))
    np.testing.assert_array_equal(line.get_ydata(), [np.nan, 0.02, 0.02, 0.02, 0.04, 0.04, 0.04])
