"""tplib.report on a small fixture of aggregated results (the five CSVs of `tp aggregate`, built here): the
page's structure (Table 2, Table 3 with the paper's values and "not run" cells, embedded figures, protocol,
provenance, costs), the figure files, the CLI, and, where chromium is installed, a headless screenshot at a
laptop's width."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tplib.aggregate import RUN_KEYS, summarise
from tplib.cli import main
from tplib.report.paper import PAPER_BACKBONES, PAPER_DATASETS, paper_table2, paper_table3
from tplib.report.render import choose_tp_setting, render_report, verdict

NS = (1, 5, 10, 15, 20)
SEEDS = (0, 1, 2)
BASE_HR10 = {"ml1m": 0.20, "music": 0.04}


def _run_rows(
    dataset: str, backbone: str, method: str, seed: int, k: int | None, lam: float | None, rng: np.random.Generator
) -> list[dict]:
    """runs.csv rows of one run: every group × subset × metric × N; TP a little better than the baseline."""
    rows = []
    lift = 0.0 if method == "baseline" else 0.012 - (0.008 if k == 1 else 0.0)
    for group in ("existing", "new"):
        for subset in ("all", "head", "tail"):
            scale = {"all": 1.0, "head": 1.3, "tail": 0.9}[subset] * (1.0 if group == "existing" else 0.92)
            for N in NS:
                hr = (BASE_HR10[dataset] + lift) * scale * math.sqrt(N / 10) + rng.normal(0, 0.002)
                for metric, v in (("HR", hr), ("NDCG", hr * 0.55)):
                    rows.append(
                        {
                            "dataset": dataset,
                            "backbone": backbone,
                            "method": method,
                            "seed": seed,
                            "k": k,
                            "lam": lam,
                            "group": group,
                            "subset": subset,
                            "metric": metric,
                            "N": N,
                            "value": max(v, 0.0),
                            "users": 100 if subset == "all" else 50,
                        }
                    )
    return rows


def _grid(datasets: tuple[str, ...] = ("ml1m", "music")) -> list[tuple[str, str, str, int, int | None, float | None]]:
    """ml1m: every backbone, both methods, seeds 0-2, plus k and λ ablations on GRU4Rec and SASRec (seeds 0-1);
    music: GRU4Rec both methods, Caser baseline only, SASRec not run; Game and MovieTweetings not run."""
    runs = []
    for bb in PAPER_BACKBONES:
        for s in SEEDS:
            runs.append(("ml1m", bb, "baseline", s, None, None))
            runs.append(("ml1m", bb, "tp", s, 2, 0.1))
    for bb in ("gru4rec", "sasrec"):
        for s in (0, 1):
            runs += [("ml1m", bb, "tp", s, k, 0.1) for k in (1, 3)]
            runs += [("ml1m", bb, "tp", s, 2, lam) for lam in (0.0, 1.0)]
    for s in SEEDS:
        runs.append(("music", "gru4rec", "baseline", s, None, None))
        runs.append(("music", "gru4rec", "tp", s, 2, 0.1))
        runs.append(("music", "caser", "baseline", s, None, None))
    return [r for r in runs if r[0] in datasets]


def write_fixture(folder: Path, datasets: tuple[str, ...] = ("ml1m", "music")) -> None:
    """runs.csv, summary.csv, costs.csv, diagnostics.csv and stats.csv with aggregate's columns."""
    rng = np.random.default_rng(0)
    grid = _grid(datasets)
    tidy = pd.DataFrame([r for run in grid for r in _run_rows(*run, rng)])
    tidy["k"] = tidy["k"].astype("Int64")
    tidy["lam"] = tidy["lam"].astype("float64")
    folder.mkdir(parents=True, exist_ok=True)
    tidy.to_csv(folder / "runs.csv", index=False)
    summarise(tidy).to_csv(folder / "summary.csv", index=False)
    costs, diags = [], []
    for ds, bb, me, s, k, lam in grid:
        keys = dict(zip(RUN_KEYS, (ds, bb, me, s, k, lam)))
        costs.append(
            {
                **keys,
                "seconds": 100.0 + s,
                "max_rss_mb": 900.0,
                "cpu_seconds": 95.0,
                "wall_seconds": 98.0 + s,
                "epochs": 20,
                "best_epoch": 15,
                "s_per_epoch": 4.9,
                "device": "cuda",
                "device_name": "NVIDIA H100",
                "torch_threads": 1,
                "rows_per_epoch": 4000,
                "run": f"r/{ds}/{bb}",
            }
        )
        if me == "tp":
            for e in range(1, 6):
                diags.append(
                    {
                        **keys,
                        "epoch": e,
                        "loss": 0.7 / e + 0.01 * s,
                        "adv_loss": 0.5 + 0.02 * e,
                        "disc_acc": 0.8 - 0.02 * e,
                        "outer_steps": 100.0,
                        "diag_cos_hh": 0.05 + 0.01 * e,
                        "diag_cos_ht": 0.03 + 0.01 * e,
                        "diag_cos_tt": 0.02 + 0.005 * e,
                        "diag_dot_hh": 0.5,
                        "diag_dot_ht": 0.3,
                        "diag_dot_tt": 0.2,
                        "diag_pairs_hh": 4.0,
                        "diag_pairs_ht": 10.0,
                        "diag_pairs_tt": 6.0,
                        "train_seconds": 4.9,
                        "valid_HR@10": 0.1,
                        "valid_NDCG@10": 0.05,
                    }
                )
        else:  # the baseline's log: no TP columns, validation every 2 epochs
            for e in range(1, 6):
                valid = 0.04 + 0.002 * e if e % 2 == 0 else math.nan
                diags.append({**keys, "epoch": e, "loss": 0.8 / e, "valid_NDCG@10": valid, "train_seconds": 1.0})
    pd.DataFrame(costs).to_csv(folder / "costs.csv", index=False)
    pd.DataFrame(diags).to_csv(folder / "diagnostics.csv", index=False)
    common = {
        "order_rule": "stable sort by timestamp per user, ties kept in file order",
        "verified": True,
        "verification_skipped": False,
        "index_rule": "items 1..I in order of raw id",
        "license": "terms",
    }
    stats = [
        {
            "dataset": "ml1m",
            "users": 6040,
            "items": 3416,
            "interactions": 999611,
            "records_per_user": 165.5,
            "records_per_item": 292.63,
            "density_percent": 4.845,
            "raw_users": 6040,
            "raw_items": 3706,
            "raw_interactions": 1000209,
            "filter": "items >= 5, then users >= 10, one pass",
            "source": "ml1m",
            "version": "MovieLens 1M",
            "url": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
            "raw_sha256": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
            "expected_sha256": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
            **common,
        },
        {
            "dataset": "music",
            "users": 2831,
            "items": 13410,
            "interactions": 63054,
            "records_per_user": 22.27,
            "records_per_item": 4.7,
            "density_percent": 0.166,
            "raw_users": 20165,
            "raw_items": 20356,
            "raw_interactions": 132595,
            "filter": "items >= 0, then users >= 10, one pass",
            "source": "music",
            "version": "MELT Music.txt",
            "url": "https://example.org/Music.txt",
            "raw_sha256": "ff4e",
            "expected_sha256": "ff4e",
            **common,
        },
        {
            "dataset": "mt-sample",
            "users": 450,
            "items": 641,
            "interactions": 9754,
            "records_per_user": 21.68,
            "records_per_item": 15.22,
            "density_percent": 3.382,
            "filter": "items >= 5, then users >= 10, one pass",
            "source": "mt-sample",
            "version": "slice",
            "url": None,
            "raw_sha256": "abc",
            "expected_sha256": "abc",
            **common,
        },
    ]
    pd.DataFrame(stats).to_csv(folder / "stats.csv", index=False)


class _Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts; and every <img src>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.imgs: list[str] = []
        self._depth = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.imgs.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, _Tables]:
    root = tmp_path_factory.mktemp("report")
    write_fixture(root / "aggregate")
    config = root / "config.yaml"
    config.write_text(
        "seeds: [0, 1, 2]\ntp_default:\n  k: 2\n  lam: 0.1\noverrides:\n  all:\n"
        "    train.max_epochs: 50\n  methods:\n    tp: {tp.alpha: 0.02}\n"
    )
    out = root / "report" / "report.html"
    render_report(root / "aggregate", out, figures_dir=root / "figures", config_path=config)
    html = out.read_text(encoding="utf-8")
    parsed = _Tables()
    parsed.feed(html)
    return out, root / "figures", html, parsed


def _table_with(parsed: _Tables, header: str) -> list[list[list[str]]]:
    return [t for t in parsed.tables if t and any(header in c for c in t[0])]


def test_page_is_complete_html_without_template_leftovers(report):
    _, _, html, _ = report
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for leftover in ("{{", "}}", "{%", "%}", "Undefined"):
        assert leftover not in html
    for section in (
        'id="table2"',
        'id="table3"',
        'id="fig4"',
        'id="fig5"',
        'id="fig6"',
        'id="fig7"',
        'id="diag"',
        'id="protocol"',
        'id="provenance"',
        'id="costs"',
    ):
        assert section in html
    assert 'name="viewport"' in html and "overflow-x: auto" in html and "max-width: 100%" in html


def test_table2_reproduced_beside_paper_with_differences_named(report):
    _, _, html, parsed = report
    (t2,) = _table_with(parsed, "#Interactions")
    body = [r for r in t2[1:]]
    start = next(i for i, r in enumerate(body) if r[0] == "ML1M")
    ml1m = body[start : start + 3]
    assert [r[1] for r in ml1m] == ["paper", "reproduced", "raw file, before the filter"]
    assert ml1m[0][:5] == ["ML1M", "paper", "6,040", "3,706", "1,000,209"]
    assert ml1m[1][2:5] == ["6,040", "3,416", "999,611"]
    assert ml1m[2][2:5] == ["6,040", "3,706", "1,000,209"]  # the raw file gives the paper's unfiltered counts
    # every paper dataset appears; the unprepared ones say so
    names = {r[0] for r in body if r[0]}
    assert {"Music", "Game", "ML1M", "MovieTweetings", "mt-sample"} <= names
    game = next(i for i, r in enumerate(body) if r[0] == "Game")
    assert body[game + 1][2] == "not run"
    assert "not prepared" in body[game][-1]
    # differences and their explanations
    assert "unfiltered" in html and "3,416 here vs 3,706 in the paper" in html
    assert "2013-11-06" in html  # MovieTweetings version
    assert "MELT" in html and "Video.txt" in html  # Amazon copies
    assert "does not follow from its own counts (0.166)" in html  # the paper's Music density slip


def test_table3_every_paper_cell_with_paper_values_and_not_run(report):
    _, _, html, parsed = report
    subtables = _table_with(parsed, "Baseline")
    assert len(subtables) == 4  # existing/new × HR@10/NDCG@10
    paper = paper_table3()
    for t, (group, metric) in zip(subtables, [(g, m) for g in ("existing", "new") for m in ("HR", "NDCG")]):
        rows = t[2:]
        assert len(rows) == len(PAPER_DATASETS) * len(PAPER_BACKBONES)  # nothing dropped
        byname = {(r[0], r[1]): r for r in rows}
        p = paper[(paper["group"] == group) & (paper["metric"] == metric)]
        for _, pr in p.iterrows():
            from tplib.report.paper import BACKBONE_LABEL, DATASET_LABEL

            row = byname[(DATASET_LABEL[pr["dataset"]], BACKBONE_LABEL[pr["backbone"]])]
            col = 3 if pr["method"] == "baseline" else 6
            assert row[col] == f"{pr['value']:.4f}"
        # not run: Game entirely; Music SASRec entirely; Music Caser TP only
        assert byname[("Game", "SASRec")][2] == "not run" and byname[("Game", "SASRec")][5] == "not run"
        assert byname[("Game", "SASRec")][-1] == "not run"
        assert byname[("Music", "SASRec")][-1] == "not run"
        assert byname[("Music", "Caser")][-1] == "TP not run"
        assert byname[("Music", "Caser")][2].endswith("n=3") and byname[("Music", "Caser")][5] == "not run"
        # run cells: mean ± std (n), pairs, a p-value and a verdict on the paper's claim
        ml = byname[("ML1M", "SASRec")]
        assert "±" in ml[2] and ml[2].endswith("n=3") and ml[5].endswith("n=3")
        assert ml[10] == "3"
        assert ml[-1] in ("holds (p<0.05)", "same direction, not significant")
    overview = _table_with(parsed, "existing HR@10")
    assert overview and len(overview[0]) - 1 == 12
    assert "hold" in html


def test_figures_embedded_and_written_as_png_and_pdf(report):
    _, figures, html, parsed = report
    pngs = sorted(figures.glob("*.png"))
    pdfs = sorted(figures.glob("*.pdf"))
    assert {p.stem for p in pngs} == {p.stem for p in pdfs}
    stems = {p.stem for p in pngs}
    assert {
        "fig4_topn_ml1m",
        "fig4_topn_music",
        "fig5_headtail_ml1m",
        "fig6_k_ml1m",
        "fig7_lambda_ml1m",
        "diag_ml1m",
        "diag_music",
        "curves_ml1m",
        "curves_music",
    } <= stems
    assert "fig6_k_music" not in stems  # no ablation there
    uris = [s for s in parsed.imgs if s.startswith("data:image/png;base64,")]
    assert len(uris) == len(parsed.imgs) == len(pngs)
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for p in pdfs:
        assert p.read_bytes()[:5] == b"%PDF-"
    # the paper's ablation datasets that were not run are named, not dropped
    assert "Not run: MovieTweetings" in html


def test_protocol_provenance_and_costs(report):
    _, _, html, parsed = report
    (proto,) = _table_with(parsed, "Choice")
    values = {r[0]: r[1] for r in proto[1:]}
    for key in (
        "Masking of seen items",
        "Tie rule",
        "Existing users' items",
        "Filter per source",
        "Existing / new users",
        "Head / tail",
        "Seeds run",
        "Model selection",
        "Caser's unseen users",
        "TP: inner updates k",
        "TP: inner lr α (plain SGD)",
        "TP: outer lr β (Adam)",
        "TP: adversarial weight λ",
        "TP: parallel chains P",
    ):
        assert key in values, key
    assert values["Existing / new users"].startswith("80% / 20%")
    assert values["Seeds run"].startswith("0, 1, 2")
    assert values["TP: inner lr α (plain SGD)"] == "0.02"  # the config file's override for TP
    assert "at most 50 epochs" in values["Model selection"]
    assert "second-to-last = validation" in values["Existing users' items"]
    assert "train.max_epochs: 50" in html  # the config embedded
    assert "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f" in html
    assert "git commit" in html and "torch" in html and "pandas" in html
    assert "NVIDIA H100" in html
    (cells,) = _table_with(parsed, "seconds (sum)")
    ml_sasrec_base = next(r for r in cells[1:] if r[:3] == ["ML1M", "SASRec", "baseline"])
    assert ml_sasrec_base[5] == "3" and ml_sasrec_base[6] == "303"  # 100 + 101 + 102 s


def test_paper_tables_are_complete():
    t2 = paper_table2()
    assert list(t2.index) == list(PAPER_DATASETS)
    assert t2.loc["ml1m", "items"] == 3706 and t2.loc["ml1m", "interactions"] == 1000209
    t3 = paper_table3()
    assert len(t3) == 4 * 3 * 2 * 2 * 2 and not t3.isna().any().any()


def test_verdicts():
    assert verdict(0.01, 0.01, 5, True, True) == ("holds (p<0.05)", "holds")
    assert verdict(0.01, 0.2, 5, True, True)[0] == "same direction, not significant"
    assert verdict(-0.01, 0.01, 5, True, True)[0] == "reversed (p<0.05)"
    assert verdict(-0.01, 0.3, 5, True, True)[0] == "reversed, not significant"
    assert verdict(None, None, None, True, False)[0] == "TP not run"
    assert verdict(None, None, None, False, False)[0] == "not run"
    assert verdict(0.01, math.nan, 1, True, True)[0].startswith("same direction, untested")


def test_tp_setting_defaults_to_the_most_run_lambda():
    runs = pd.DataFrame(
        {
            "dataset": ["a"] * 5,
            "backbone": ["b"] * 5,
            "method": ["tp"] * 4 + ["baseline"],
            "seed": [0, 1, 2, 0, 0],
            "k": [2, 2, 2, 2, pd.NA],
            "lam": [1.0, 1.0, 1.0, 0.0, math.nan],
        }
    )
    assert choose_tp_setting(runs)[:2] == (2, 1.0)
    assert choose_tp_setting(runs, k=3, lam=0.5)[:2] == (3, 0.5)
    assert choose_tp_setting(runs, config={"tp_default": {"k": 4, "lam": 10}})[:2] == (4, 10.0)


def test_cli_report(tmp_path, capsys):
    write_fixture(tmp_path / "agg", datasets=("music",))
    out = tmp_path / "r" / "report.html"
    rc = main(
        [
            "report",
            "--aggregate",
            str(tmp_path / "agg"),
            "--out",
            str(out),
            "--figures",
            str(tmp_path / "f"),
            "--tp-k",
            "2",
            "--tp-lam",
            "1",
        ]
    )
    assert rc == 0 and out.is_file() and (tmp_path / "f" / "fig4_topn_music.pdf").is_file()
    html = out.read_text(encoding="utf-8")
    assert "k = 2, λ = 1 (k = 2 from --tp-k; λ = 1 from --tp-lam)" in html
    assert "No workflow config given" in html
    assert main(["report", "--aggregate", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "tp: error:" in capsys.readouterr().err


def test_variant_shown_beside_the_main_runs(tmp_path, capsys):
    """--variant LABEL=DIR: a table of baseline, main TP and the variant's TP per cell the variant ran (with the
    paired p-value from the variant's own aggregate), and the variant's curve; a malformed spec stops clearly."""
    write_fixture(tmp_path / "main", datasets=("ml1m", "music"))
    write_fixture(tmp_path / "long", datasets=("music",))
    summary = pd.read_csv(tmp_path / "long" / "summary.csv")
    tp = summary["method"] == "tp"
    summary.loc[tp, "mean"] = 0.4321  # tell the variant's numbers apart from the main runs'
    summary.to_csv(tmp_path / "long" / "summary.csv", index=False)
    out = tmp_path / "report.html"
    args = ["report", "--aggregate", str(tmp_path / "main"), "--out", str(out), "--figures", str(tmp_path / "f")]
    assert main([*args, "--variant", f"200 epochs={tmp_path / 'long'}"]) == 0
    html = out.read_text(encoding="utf-8")
    parsed = _Tables()
    parsed.feed(html)
    (table,) = _table_with(parsed, "Runs")
    assert {row[0] for row in table[1:]} == {"Music"}  # only the cells the variant ran
    names = [row[2] for row in table[1:]]
    assert names[:3] == ["Baseline", "TP (k=2, λ=0.1), main runs", "TP (k=2, λ=0.1), 200 epochs"]
    variant_rows = [row for row in table[1:] if row[2] == "TP (k=2, λ=0.1), 200 epochs"]
    assert variant_rows and all("0.4321" in row[4] for row in variant_rows)
    assert all("0.4321" not in row[4] for row in table[1:] if row[2].endswith("main runs"))
    assert "p=" in variant_rows[0][4]
    assert (tmp_path / "f" / "curves_music.png").is_file()
    assert 'Other runs (200 epochs)' in html and 'href="#variants"' in html  # the verdicts point to it
    # a variant with several TP settings (ML1M's ablation points) lists each, its main setting first
    write_fixture(tmp_path / "abl", datasets=("ml1m",))
    assert main([*args, "--variant", f"ablation={tmp_path / 'abl'}"]) == 0
    parsed = _Tables()
    parsed.feed(out.read_text(encoding="utf-8"))
    (table,) = _table_with(parsed, "Runs")
    sasrec = [row[2] for row in table[1:] if row[0] == "ML1M" and row[1] == "SASRec"]
    assert sasrec == [
        "Baseline",
        "TP (k=2, λ=0.1), main runs",
        "TP (k=2, λ=0.1), ablation",
        "TP (k=1, λ=0.1), ablation",
        "TP (k=2, λ=0), ablation",
        "TP (k=2, λ=1), ablation",
        "TP (k=3, λ=0.1), ablation",
    ]
    # a variant with baselines of its own (other run folders: trained under its rule) shows them before its TP
    write_fixture(tmp_path / "rule", datasets=("music",))
    for name, col, value in (("costs", "run", "elsewhere/music"), ("summary", "mean", 0.2468)):
        t = pd.read_csv(tmp_path / "rule" / f"{name}.csv")
        t.loc[t["method"] == "baseline", col] = value
        t.to_csv(tmp_path / "rule" / f"{name}.csv", index=False)
    assert main([*args, "--variant", f"min 60 epochs={tmp_path / 'rule'}"]) == 0
    parsed = _Tables()
    parsed.feed(out.read_text(encoding="utf-8"))
    (table,) = _table_with(parsed, "Runs")
    rows = [row for row in table[1:] if row[1] == "GRU4Rec"]
    assert [row[2] for row in rows] == ["Baseline", "TP (k=2, λ=0.1), main runs", "Baseline, min 60 epochs",
                                        "TP (k=2, λ=0.1), min 60 epochs"]
    assert "0.2468" in rows[2][4] and "0.2468" not in rows[0][4]
    assert main([*args, "--variant", "no-equals-sign"]) == 2
    assert "expected LABEL=DIR" in capsys.readouterr().err


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_headless_chromium_screenshot(report, tmp_path):
    """Load the page in headless chromium at 1366 px and take a screenshot (skipped where chromium is absent)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    out, _, _, _ = report
    shot = tmp_path / "shot.png"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1366,900",
        out.resolve().as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert shot.is_file(), f"no screenshot (rc {res.returncode}): {res.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert _png_size(shot) == (1366, 900)


def test_empty_aggregate_renders_everything_as_not_run(tmp_path):
    """No finished run at all (header-only tables, an empty stats.csv): every paper cell reads "not run"."""
    agg = tmp_path / "agg"
    agg.mkdir()
    keys = ",".join(RUN_KEYS)
    (agg / "runs.csv").write_text(f"{keys},group,subset,metric,N,value,users\n")
    (agg / "summary.csv").write_text(
        "dataset,backbone,method,k,lam,group,subset,metric,N,mean,std,n,n_pairs,base_mean,diff_mean,"
        "rel_improvement,p_ttest,p_wilcoxon\n"
    )
    (agg / "costs.csv").write_text(f"{keys},seconds,wall_seconds,epochs,best_epoch,s_per_epoch,device\n")
    (agg / "diagnostics.csv").write_text(f"{keys},epoch\n")
    (agg / "stats.csv").write_text("")
    out = render_report(agg, tmp_path / "report.html", figures_dir=tmp_path / "fig")
    html = out.read_text(encoding="utf-8")
    parsed = _Tables()
    parsed.feed(html)
    for t in _table_with(parsed, "Baseline"):
        assert len(t) - 2 == 12 and all(r[-1] == "not run" for r in t[2:])
    assert "{{" not in html and not parsed.imgs and not list((tmp_path / "fig").glob("*.png"))
    assert "Not run: Music, Game, ML1M, MovieTweetings" in html


def _ablation_calls(tmp_path, monkeypatch, drop=None):
    """Figures 6-7 built from the ML1M fixture (without the tidy rows ``drop`` selects): fig_ablation's calls."""
    from tplib.report import figures as F
    from tplib.report.render import build_figures, load_aggregate

    write_fixture(tmp_path / "agg", datasets=("ml1m",))
    if drop is not None:
        runs = pd.read_csv(tmp_path / "agg" / "runs.csv")
        runs[~drop(runs)].to_csv(tmp_path / "agg" / "runs.csv", index=False)
    agg = load_aggregate(tmp_path / "agg")
    calls = []
    real = F.fig_ablation
    monkeypatch.setattr(F, "fig_ablation", lambda tp, base, *a, **kw: calls.append((tp, base, a, kw)) or real(
        tp, base, *a, **kw))
    build_figures(agg, 2, 0.1, ["ml1m"], list(PAPER_BACKBONES), tmp_path / "figs")
    assert len(calls) == 2  # Figure 6 (k) and Figure 7 (λ) for ML1M
    return agg, calls


def test_ablation_seeds_are_chosen_per_backbone(tmp_path, monkeypatch):
    """GRU4Rec's ablations without seed 1: its column uses seed 0 (baseline included), SASRec's keeps 0-1."""

    def drop(r):
        return (r.backbone == "gru4rec") & (r.seed == 1) & (r.method == "tp") & ~((r.k == 2) & (r.lam == 0.1))

    agg, calls = _ablation_calls(tmp_path, monkeypatch, drop)
    for tp, base, args, kw in calls:
        assert kw["seeds"]["gru4rec"] == [0] and kw["seeds"]["sasrec"] == [0, 1]
        assert set(tp.loc[tp.backbone == "gru4rec", "n"]) == {1} and set(tp.loc[tp.backbone == "sasrec", "n"]) == {2}
        assert set(base.loc[base.backbone == "gru4rec", "n"]) == {1}
        assert set(base.loc[base.backbone == "sasrec", "n"]) == {2}


def test_ablation_figures_use_the_seeds_every_point_has(tmp_path, monkeypatch):
    """ML1M's ablation points (GRU4Rec, SASRec) have seeds 0-1 while their main point (k=2, λ=0.1) and baseline
    have 0-2: every point of those columns of Figures 6-7, and the baseline line, is summarised over seeds 0-1
    only, and the figure is told so. Caser has only its main point: seeds 0-2."""
    agg, calls = _ablation_calls(tmp_path, monkeypatch)
    runs = agg.runs
    for tp, base, args, kw in calls:
        assert kw["seeds"] == {"caser": [0, 1, 2], "gru4rec": [0, 1], "sasrec": [0, 1]}
        assert set(tp.loc[tp.backbone != "caser", "n"]) == {2}  # the main point too, not its 3 seeds
        assert set(base.loc[base.backbone != "caser", "n"]) == {2}
        assert set(tp.loc[tp.backbone == "caser", "n"]) == {3}
        b = base[(base.backbone == "sasrec") & (base.group == "existing") & (base.subset == "all")
                 & (base.metric == "HR") & (base.N == 10)]
        want = runs[(runs.method == "baseline") & (runs.backbone == "sasrec") & (runs.group == "existing")
                    & (runs.subset == "all") & (runs.metric == "HR") & (runs.N == 10) & runs.seed.isin([0, 1])]
        assert b["mean"].item() == pytest.approx(want["value"].mean())
        assert want["value"].mean() != pytest.approx(
            runs[(runs.method == "baseline") & (runs.backbone == "sasrec") & (runs.group == "existing")
                 & (runs.subset == "all") & (runs.metric == "HR") & (runs.N == 10)]["value"].mean())
