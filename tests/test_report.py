"""tplib.report on a small set of studies built here the way the workflow builds them: fake run folders in the
exact format of `tp train` / `tp evaluate` (config.json from the studies' settings, run.json, train_summary.json,
train_log.csv, metrics.json, benchmark.tsv), aggregated by tplib.aggregate.aggregate, with the studies as
configured (config.yaml) beside the tables.

The fixture's numbers follow a formula (:func:`value`), so the tests check the page against numbers computed here,
not against the library's own tables. Checked: the page's structure, Table 2's arithmetic and notes, Table 3 and
the verdict grid (main study only: a TP run of another study never enters them), the study sections (protocol
in words once, every declared row, "not run"), Figures 4-7, curves and diagnostics (files and the numbers they
draw), the protocol and the hyperparameters (from the settings the aggregate records, configs.jsonl: a run's own
config.json before the declared one; no report module rebuilds a config), provenance (a stamp without clock time:
byte-identical pages, a hash that follows the tables, ``dirty`` in a git tree with uncommitted changes) and costs,
the CLI, the number formats and verdicts, and, where chromium is installed, a headless screenshot at a laptop's
width."""

from __future__ import annotations

import ast
import base64
import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import struct
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from tplib.aggregate import aggregate
from tplib.cli import main
from tplib.evaluate import metrics_by_group
from tplib.grid import Run, run_config
from tplib.io import DataError
from tplib.report import claims as C
from tplib.report import figures as F
from tplib.report import load as L
from tplib.report import protocol as R
from tplib.report import sections as S
from tplib.report import training_figures as TF
from tplib.report.load import (
    fint,
    flam,
    fnum,
    fp,
    fpct,
    fpeq,
    fstat,
    load_aggregate,
    verdict,
)
from tplib.report.paper import (
    BACKBONE_LABEL,
    DATASET_LABEL,
    PAPER_DATASETS,
    paper_table2,
    paper_table3,
)
from tplib.report.provenance import build_stamp
from tplib.report.render import render_report

NS = (1, 5, 10, 15, 20)
USERS = {("existing", "all"): 400, ("existing", "head"): 80, ("existing", "tail"): 320,
         ("new", "all"): 100, ("new", "head"): 20, ("new", "tail"): 80}
SCALE = {"all": 1.0, "head": 1.3, "tail": 0.9}
BASE_HR10 = {"ml1m": 0.20, "music": 0.04, "game": 0.03, "movietweetings": 0.15}
BACKBONE_FACTOR = {"gru4rec": 1.0, "caser": 0.9, "sasrec": 1.1}
NOISE = {"baseline": (0.0010, -0.0010, 0.0005), "tp": (0.0008, -0.0006, 0.0002)}  # by seed

# ---------------------------------------------------------------------------------------------------------
# The studies

PROTOCOL = {"eval_every": 2, "patience": 2, "max_epochs": 12, "min_epochs": 0}
ABLATION_PROTOCOL = {"eval_every": 1, "patience": 3, "max_epochs": 10, "min_epochs": 4}


def studies_config() -> dict:
    """config.yaml as the workflow's aggregate rule writes it: three studies, the report's roles, the overrides.

    paper (main): ml1m (GRU4Rec, Caser, SASRec), music (GRU4Rec, Caser), game (SASRec), baseline and tp.
    ablation: ml1m (GRU4Rec, SASRec) and movietweetings (SASRec), k in {1, 2, 3} at λ 0.1, λ in {0, 0.1, 1} at k 2,
    and k 4 at λ 0.01 (on neither of Figures 6-7's axes).
    long: music (Caser, GRU4Rec) under another protocol, its own baseline and a TP variant also named tp.
    """
    return {
        "studies": {
            "paper": {
                "title": "The paper's comparison",
                "about": "TP against the backbone alone.",
                "cells": {"ml1m": ["gru4rec", "caser", "sasrec"], "music": ["gru4rec", "caser"], "game": ["sasrec"]},
                "seeds": [0, 1, 2],
                "protocol": dict(PROTOCOL),
                "variants": {"baseline": {"method": "baseline"},
                             "tp": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}}},
            },
            "ablation": {
                "title": "TP's k and lambda",
                "about": "k 1..3 at lambda 0.1; lambda 0, 0.1, 1 at k 2.",
                "cells": {"ml1m": ["gru4rec", "sasrec"], "movietweetings": ["sasrec"]},
                "seeds": [0, 1],
                "protocol": dict(ABLATION_PROTOCOL),
                "variants": {
                    "baseline": {"method": "baseline"},
                    "tp-k1": {"method": "tp", "set": {"tp.k": 1, "tp.lam": 0.1}},
                    "tp": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}},
                    "tp-k3": {"method": "tp", "set": {"tp.k": 3, "tp.lam": 0.1}},
                    "tp-lam0": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0}, "against": "tp"},
                    "tp-lam1": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 1}},
                    "tp-k4-lam0.01": {"method": "tp", "set": {"tp.k": 4, "tp.lam": 0.01}},  # on neither axis
                },
            },
            "long": {
                "title": "A longer patience",
                "about": "The same comparison under another protocol.",
                "cells": {"music": ["caser", "gru4rec"]},
                "seeds": [0, 1],
                "protocol": {"eval_every": 2, "patience": 6, "max_epochs": 40, "min_epochs": 0},
                "variants": {"baseline": {"method": "baseline"},
                             "tp": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}}},
            },
        },
        "report": {"main": "paper", "ablation": "ablation"},
        "overrides": {"all": {"train.progress": False}, "datasets": {}, "backbones": {},
                      "methods": {"tp": {"tp.alpha": 0.02}}},
    }


# TP's relative lift over the baseline per (study, variant, dataset, backbone); absent: 0.
LIFT = {
    ("paper", "tp", "ml1m", "gru4rec"): 0.10,  # holds
    ("paper", "tp", "ml1m", "sasrec"): 0.004,  # level (under 1%)
    ("paper", "tp", "ml1m", "caser"): 0.05,  # no baseline run
    ("paper", "tp", "music", "gru4rec"): -0.08,  # reversed
    ("ablation", "tp-k1", "ml1m", "gru4rec"): 0.01,
    ("ablation", "tp", "ml1m", "gru4rec"): 0.05,
    ("ablation", "tp-lam0", "ml1m", "gru4rec"): 0.02,
    ("ablation", "tp-lam1", "ml1m", "gru4rec"): -0.03,
    ("ablation", "tp-k1", "ml1m", "sasrec"): 0.015,
    ("ablation", "tp", "ml1m", "sasrec"): 0.06,
    ("ablation", "tp-lam0", "ml1m", "sasrec"): 0.025,
    ("ablation", "tp-lam1", "ml1m", "sasrec"): -0.04,
    ("long", "tp", "music", "gru4rec"): 0.5,
    ("long", "tp", "music", "caser"): 0.5,
}
STUDY_SHIFT = {"paper": 0.0, "ablation": 0.003, "long": 0.007}  # another protocol, other numbers


def value(study: str, variant: str, method: str, dataset: str, backbone: str, seed: int, group: str, subset: str,
          metric: str, N: int) -> float:
    """The fixture's metric value of one run."""
    hr = (BASE_HR10[dataset] * BACKBONE_FACTOR[backbone] + STUDY_SHIFT[study]) * SCALE[subset]
    hr *= (1.0 if group == "existing" else 0.92) * math.sqrt(N / 10)
    hr *= 1 + LIFT.get((study, variant, dataset, backbone), 0.0)
    hr += NOISE[method][seed % 3]
    return hr * (0.55 if metric == "NDCG" else 1.0)


# Every finished run: (study, dataset, backbone, variant, seeds).
RUNS = [
    ("paper", "ml1m", "gru4rec", "baseline", (0, 1, 2)),
    ("paper", "ml1m", "gru4rec", "tp", (0, 1, 2)),
    ("paper", "ml1m", "sasrec", "baseline", (0, 1, 2)),
    ("paper", "ml1m", "sasrec", "tp", (0, 1, 2)),
    ("paper", "ml1m", "caser", "tp", (0, 1)),  # its baseline never finished
    ("paper", "music", "gru4rec", "baseline", (0, 1, 2)),
    ("paper", "music", "gru4rec", "tp", (0, 1, 2)),
    ("paper", "music", "caser", "baseline", (0, 1, 2)),  # TP not run; game not run at all
    *[("ablation", "ml1m", "gru4rec", v, (0, 1)) for v in ("baseline", "tp-k1", "tp", "tp-lam0", "tp-lam1")],
    *[("ablation", "ml1m", "sasrec", v, (0, 1)) for v in ("baseline", "tp-k1", "tp", "tp-lam0")],
    ("ablation", "ml1m", "sasrec", "tp-lam1", (0,)),  # tp-k3 not run; movietweetings not run
    ("long", "music", "gru4rec", "baseline", (0, 1)),
    ("long", "music", "gru4rec", "tp", (0, 1)),
    ("long", "music", "caser", "tp", (0, 1)),  # TP on music Caser: the main study has none
]
CAPPED = ("paper", "ml1m", "sasrec", "tp", 2)  # ran into its epoch cap


def metrics_json(study: str, variant: str, method: str, dataset: str, backbone: str, seed: int) -> dict:
    """metrics.json in the layout of tplib.evaluate.metrics_by_group with the fixture's values."""
    return {
        group: {
            subset: {
                **{f"{m}@{N}": value(study, variant, method, dataset, backbone, seed, group, subset, m, N)
                   for N in NS for m in ("HR", "NDCG")},
                "users": USERS[(group, subset)],
            }
            for subset in ("all", "head", "tail")
        }
        for group in ("existing", "new")
    }


def bench_seconds(seed: int) -> float:
    return 100.0 + seed


def epochs_of(study: str, dataset: str, backbone: str, variant: str, seed: int, max_epochs: int) -> tuple[int, int]:
    """(best epoch, epochs run) of a run."""
    if (study, dataset, backbone, variant, seed) == CAPPED:
        return max_epochs - 2, max_epochs
    return 2 + 2 * seed, 6 + 2 * seed


def fake_run(root: Path, config: dict, study: str, dataset: str, backbone: str, variant: str, seed: int) -> Path:
    """A finished, evaluated run folder of one study, as the workflow writes it (its config.json resolved from the
    studies' settings by tplib.grid.run_config), with its training benchmark file."""
    run = root / study / dataset / backbone / variant / f"seed{seed}"
    run.mkdir(parents=True)
    cfg = run_config(config, Run(study, dataset, backbone, variant, seed))
    (run / "config.json").write_text(cfg.to_json() + "\n")
    (run / "run.json").write_text(json.dumps({"study": study, "variant": variant}) + "\n")
    method = cfg.method
    (run / "metrics.json").write_text(
        json.dumps(metrics_json(study, variant, method, dataset, backbone, seed), indent=2) + "\n")
    best, epochs = epochs_of(study, dataset, backbone, variant, seed, cfg.train.max_epochs)
    rows = []
    for e in range(1, epochs + 1):
        valid = e % cfg.train.eval_every == 0
        row = {"epoch": e, "loss": 0.7 / e + 0.01 * seed, "train_seconds": 0.5,
               "valid_HR@10": 0.1 + 0.001 * e if valid else math.nan,
               "valid_NDCG@10": 0.05 + 0.001 * e if valid else math.nan,
               "eval_seconds": 0.1 if valid else math.nan}
        if method == "tp":
            row |= {"adv_loss": 0.5 + 0.02 * e, "disc_acc": 0.85 - 0.01 * e, "outer_steps": 100.0,
                    "diag_cos_hh": 0.05 + 0.01 * e, "diag_cos_ht": 0.03 + 0.01 * e, "diag_cos_tt": 0.02,
                    "diag_dot_hh": 0.5, "diag_dot_ht": 0.3, "diag_dot_tt": 0.2,
                    "diag_pairs_hh": 4.0, "diag_pairs_ht": 10.0, "diag_pairs_tt": 6.0}
        rows.append(row)
    pd.DataFrame(rows).to_csv(run / "train_log.csv", index=False)
    summary = {"best_epoch": best, "best_valid_NDCG@10": 0.05, "epochs_run": epochs, "wall_seconds": 98.0 + seed,
               "seconds_per_epoch": 4.9, "device": "cuda", "device_name": "NVIDIA H100", "torch_threads": 1,
               "rows_per_epoch": 4000, "resumed_at_epochs": []}
    (run / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (run / "benchmark.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        f"{bench_seconds(seed)}\t0:01:40\t900.0\t1200.0\t1\t1\t0\t0\t95.0\t95.0\n"
    )
    return run


COMMON_STATS = {
    "order_rule": "stable sort by timestamp per user, ties kept in file order",
    "verified": True,
    "verification_skipped": False,
    "index_rule": "items 1..I in order of raw id",
    "license": "terms",
}
STATS = [
    {"dataset": "ml1m", "users": 6040, "items": 3416, "interactions": 999611, "records_per_user": 165.5,
     "records_per_item": 292.63, "density_percent": 4.845, "raw_users": 6040, "raw_items": 3706,
     "raw_interactions": 1000209, "filter": "items >= 5, then users >= 10, one pass", "source": "ml1m",
     "version": "MovieLens 1M", "url": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
     "raw_sha256": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
     "expected_sha256": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f", **COMMON_STATS},
    {"dataset": "music", "users": 2831, "items": 13410, "interactions": 63054, "records_per_user": 22.27,
     "records_per_item": 4.7, "density_percent": 0.166, "raw_users": 20165, "raw_items": 20356,
     "raw_interactions": 132595, "filter": "items >= 0, then users >= 10, one pass", "source": "music",
     "version": "MELT Music.txt", "url": "https://example.org/Music.txt", "raw_sha256": "ff4e",
     "expected_sha256": "ff4e", **COMMON_STATS},
    {"dataset": "mt-sample", "users": 450, "items": 641, "interactions": 9754, "records_per_user": 21.68,
     "records_per_item": 15.22, "density_percent": 3.382, "filter": "items >= 5, then users >= 10, one pass",
     "source": "mt-sample", "version": "slice", "url": None, "raw_sha256": "abc", "expected_sha256": "abc",
     **COMMON_STATS},
]


def write_aggregate(root: Path, config: dict | None = None, runs: list | None = None) -> Path:
    """Run folders of ``runs`` (default: :data:`RUNS`) under root/runs, stats.json files, and root/aggregate: the
    five tables and configs.jsonl of tplib.aggregate.aggregate, and config.yaml. Returns the aggregate folder."""
    config = config or studies_config()
    dirs = [fake_run(root / "runs", config, st, ds, bb, v, s)
            for st, ds, bb, v, seeds in (RUNS if runs is None else runs) for s in seeds]
    stats = []
    for st in STATS:
        p = root / "data" / st["dataset"] / "stats.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(st))
        stats.append(p)
    out = root / "aggregate"
    aggregate(dirs, out, stats=stats, studies=config)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out


# ---------------------------------------------------------------------------------------------------------
# Reading the page


class _Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts; every <img src>; the attributes of every tag."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.imgs: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.imgs.append(dict(attrs).get("src") or "")
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    return p


def chunk(html: str, start: str, end: str | None = None) -> str:
    """The page from the first ``start`` up to the next ``end`` (or the end of the page)."""
    i = html.index(start)
    j = html.index(end, i + len(start)) if end else len(html)
    return html[i:j]


def tables_with(parsed: _Tables, header: str) -> list[list[list[str]]]:
    return [t for t in parsed.tables if t and any(header in c for c in t[0])]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    agg = write_aggregate(root)
    out = root / "report" / "report.html"
    assert render_report(agg, out, figures_dir=root / "figures") == out
    html = out.read_text(encoding="utf-8")
    visible = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", html)  # the page without its images
    return {"root": root, "agg": agg, "out": out, "figures": root / "figures", "html": html, "parsed": parse(html),
            "text": unescape(visible)}


def expected_cell(study: str, variant: str, method: str, dataset: str, backbone: str, group: str, metric: str,
                  seeds, N: int = 10, subset: str = "all") -> np.ndarray:
    return np.array([value(study, variant, method, dataset, backbone, s, group, subset, metric, N) for s in seeds])


def ms_text(v: np.ndarray) -> str:
    """mean ± std (ddof 1) as the report writes it."""
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


# ---------------------------------------------------------------------------------------------------------
# The fixture itself


def test_fixture_metrics_have_the_layout_of_tp_evaluate():
    """The fixture's metrics.json has exactly the keys tplib.evaluate.metrics_by_group writes."""
    ranks = pd.DataFrame({"user": range(10), "group": ["existing"] * 8 + ["new"] * 2,
                          "head": [True, False] * 5, "rank": np.arange(1, 11)})
    real = metrics_by_group(ranks, NS)
    ours = metrics_json("paper", "tp", "tp", "ml1m", "sasrec", 0)
    assert {g: {s: sorted(b) for s, b in v.items()} for g, v in real.items()} == {
        g: {s: sorted(b) for s, b in v.items()} for g, v in ours.items()}


# ---------------------------------------------------------------------------------------------------------
# The page


def test_page_is_complete_self_contained_html(built):
    html, parsed, figures = built["html"], built["parsed"], built["figures"]
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    text = built["text"].split("<pre>")[0]  # without the images and the config file shown verbatim
    for leftover in ("{{", "}}", "{%", "%}", "Undefined"):
        assert leftover not in html, leftover
    assert not re.search(r">\s*(nan|NaN|None|<NA>)\s*<|\bnan\b|\bNone\b", text), "a missing value shown raw"
    for section in ("verdicts", "table2", "table3", "studies", "study-paper", "study-ablation", "study-long", "fig4",
                    "fig5", "fig6", "fig7", "curves", "diag", "protocol", "provenance", "costs"):
        assert f'id="{section}"' in html, section
    assert 'name="viewport"' in html and "overflow-x: auto" in html and "max-width: 100%" in html
    # self-contained: no external stylesheet, script, font or image; every image embedded, one per PNG written
    assert not [t for t, a in parsed.tags if t in ("link", "script", "iframe", "object", "embed")]
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "url(" not in html and "@import" not in html
    pngs = sorted(figures.glob("*.png"))
    assert parsed.imgs and all(s.startswith("data:image/png;base64,") for s in parsed.imgs)
    assert len(parsed.imgs) == len(pngs)
    # every in-page link points at an anchor of the page
    ids = {a["id"] for _, a in parsed.tags if "id" in a}
    hrefs = [a["href"] for t, a in parsed.tags if t == "a" and "href" in a]
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)


def test_no_clock_time_and_the_same_inputs_render_the_same_bytes(built, tmp_path):
    """The page carries no clock time: a second rendering of the same tables (here through the CLI, into another
    figures folder) is byte-identical, and today's date appears nowhere."""
    html = built["text"]
    today = datetime.date.today()
    for text in (today.isoformat(), today.strftime("%d %B %Y"), today.strftime("%B %d, %Y"), today.strftime("%d/%m/%Y")):
        assert text not in html
    assert not re.search(r"\b\d{1,2}:\d{2}:\d{2}\b", html.split("<pre>")[0])  # no time of day
    out = tmp_path / "again.html"
    assert main(["report", "--aggregate", str(built["agg"]), "--out", str(out), "--figures",
                 str(tmp_path / "figs")]) == 0
    assert out.read_bytes() == built["out"].read_bytes()
    for p in sorted(built["figures"].iterdir()):
        assert (tmp_path / "figs" / p.name).read_bytes() == p.read_bytes(), p.name


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
# The stamp


def test_stamp_hashes_the_tables(built, tmp_path):
    agg_dir = tmp_path / "agg"
    shutil.copytree(built["agg"], agg_dir)
    first = build_stamp(load_aggregate(agg_dir))
    assert re.fullmatch(r"[0-9a-f]{16}", first["tables"])
    assert build_stamp(load_aggregate(agg_dir))["tables"] == first["tables"]
    summary = pd.read_csv(agg_dir / "summary.csv")
    summary.loc[0, "mean"] += 0.001
    summary.to_csv(agg_dir / "summary.csv", index=False)
    second = build_stamp(load_aggregate(agg_dir))
    assert second["tables"] != first["tables"]
    with open(agg_dir / "config.yaml", "a") as f:
        f.write("# edited\n")
    third = build_stamp(load_aggregate(agg_dir))
    assert third["tables"] != second["tables"]
    lines = (agg_dir / "configs.jsonl").read_text().splitlines()
    (agg_dir / "configs.jsonl").write_text("\n".join(lines[1:]) + "\n")
    assert build_stamp(load_aggregate(agg_dir))["tables"] != third["tables"]


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": "2021-03-04T12:00:00+00:00",
           "GIT_COMMITTER_DATE": "2021-03-04T12:00:00+00:00", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_stamp_names_the_last_commit_of_the_inputs_and_dirty_trees(built, tmp_path):
    repo = tmp_path / "repo"
    for path in ("tplib/x.py", "config/config.yaml", "Snakefile", "workflow/rules/a.smk",
                 "results/runs/paper/seed0/metrics.json", "README.md"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("1\n")
    (repo / ".gitignore").write_text("results/aggregate/\n")
    shutil.copytree(built["agg"], repo / "results" / "aggregate")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "inputs")
    inputs = _git(repo, "rev-parse", "HEAD")
    agg = load_aggregate(repo / "results" / "aggregate")
    stamp = build_stamp(agg, repo=repo)
    assert stamp["commit"] == inputs and stamp["date"] == "2021-03-04" and stamp["dirty"] is False
    assert build_stamp(agg)["commit"] == inputs  # found from the aggregate folder inside the tree
    # a commit that touches none of the inputs does not move the stamp; a change outside them is not dirty
    (repo / "README.md").write_text("2\n")
    _git(repo, "commit", "-q", "-am", "docs")
    (repo / "README.md").write_text("3\n")
    assert build_stamp(agg, repo=repo) == stamp
    # an uncommitted change to the code, or a new run not committed, is
    (repo / "tplib" / "x.py").write_text("2\n")
    dirty = build_stamp(agg, repo=repo)
    assert dirty["dirty"] is True and dirty["commit"] == inputs
    _git(repo, "checkout", "-q", "--", "tplib/x.py")
    assert build_stamp(agg, repo=repo)["dirty"] is False
    (repo / "results" / "runs" / "paper" / "seed1").mkdir()
    (repo / "results" / "runs" / "paper" / "seed1" / "metrics.json").write_text("{}\n")
    assert build_stamp(agg, repo=repo)["dirty"] is True
    # the page says so
    out = render_report(repo / "results" / "aggregate", tmp_path / "r.html", figures_dir=tmp_path / "f")
    html = out.read_text(encoding="utf-8")
    assert f"<strong>uncommitted changes</strong> on top of commit <code>{inputs}</code> (2021-03-04)" in html
    assert "with uncommitted changes" in html


def test_stamp_outside_git(built, tmp_path):
    if _inside_git(tmp_path):
        pytest.skip(f"{tmp_path} lies inside a git work tree")
    stamp = build_stamp(load_aggregate(built["agg"]))
    assert stamp["commit"] == "unknown" and stamp["dirty"] is None and stamp["date"] == ""
    assert "commit <code>unknown</code>" in built["html"] and "uncommitted" not in built["html"]


def _inside_git(path: Path) -> bool:
    if shutil.which("git") is None:
        return False
    res = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                         check=False)
    return res.returncode == 0


# ---------------------------------------------------------------------------------------------------------
# Input errors, the CLI, an empty aggregate


def test_bad_inputs_stop_with_a_message(built, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--aggregate", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "tp: error:" in capsys.readouterr().err and not out.exists()
    agg = tmp_path / "agg"
    shutil.copytree(built["agg"], agg)
    (agg / "config.yaml").unlink()
    with pytest.raises(DataError, match="config.yaml: not found"):
        load_aggregate(agg)
    (agg / "config.yaml").write_text("report: {main: paper}\n")
    with pytest.raises(DataError, match="expected a mapping with `studies`"):
        load_aggregate(agg)
    config = studies_config()
    config["report"]["main"] = "nope"
    (agg / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DataError, match=r"report.main names no declared study \('nope'\)"):
        render_report(agg, out, figures_dir=tmp_path / "f")
    assert not out.exists()
    (agg / "config.yaml").write_text(yaml.safe_dump(studies_config()))
    configs = (agg / "configs.jsonl").read_text()
    (agg / "configs.jsonl").unlink()
    with pytest.raises(DataError, match="configs.jsonl: not found"):
        load_aggregate(agg)
    (agg / "configs.jsonl").write_text(configs + "{not json\n")
    with pytest.raises(DataError, match="not valid JSON"):
        load_aggregate(agg)
    (agg / "configs.jsonl").write_text(configs)
    pd.read_csv(agg / "summary.csv").drop(columns=["control"]).to_csv(agg / "summary.csv", index=False)
    with pytest.raises(DataError, match="lacks the column"):
        load_aggregate(agg)


def test_tp_variant_is_tp_or_the_only_tp_variant(built):
    agg = load_aggregate(built["agg"])
    assert L.tp_variant(agg, "paper") == "tp" and L.tp_variant(agg, "ablation") == "tp"
    config = studies_config()
    config["studies"]["x"] = {"variants": {"baseline": {"method": "baseline"}, "tp-long": {"method": "tp"}}}
    config["studies"]["y"] = {"variants": {"a": {"method": "tp"}, "b": {"method": "tp"}}}
    agg = dataclasses.replace(agg, config=config)
    assert L.tp_variant(agg, "x") == "tp-long" and L.tp_variant(agg, "y") is None


def test_empty_aggregate_renders_everything_as_not_run(tmp_path):
    """No finished run at all (header-only tables, no stats): every Table 3 cell and every study row reads "not
    run", every declared dataset still gets its figures."""
    config = studies_config()
    config["studies"] = {k: config["studies"][k] for k in ("paper", "ablation")}
    config["studies"]["paper"]["cells"] = {"music": ["gru4rec"]}
    config["studies"]["ablation"]["cells"] = {"ml1m": ["sasrec"]}
    agg = tmp_path / "agg"
    aggregate([], agg, studies=config)
    (agg / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = render_report(agg, tmp_path / "report.html", figures_dir=tmp_path / "fig")
    html = out.read_text(encoding="utf-8")
    parsed = parse(chunk(html, 'id="table3"', 'id="studies"'))
    t3 = tables_with(parsed, "Baseline")
    assert len(t3) == 4
    for t in t3:
        # the main study's dataset by the paper's three backbones
        assert [(r[0], r[1]) for r in t[2:]] == [("Music", "GRU4Rec"), ("Music", "Caser"), ("Music", "SASRec")]
        assert all(r[2] == r[5] == r[-1] == "not run" for r in t[2:])
    for name in ("paper", "ablation"):
        for t in parse(chunk(html, f'id="study-{name}"', "</table>")).tables:
            assert all(r[4:] == ["not run"] * 6 for r in t[2:])
    assert "0 of 6 runs finished" in html and "0 of 14 runs finished" in html  # 1 × 2 × 3 seeds, 1 × 7 × 2
    assert "{{" not in html and "No run recorded (costs.csv is empty)." in html
    assert {p.stem for p in (tmp_path / "fig").glob("*.png")} == {
        "fig4_topn_music", "fig5_headtail_music", "curves_music", "diag_music", "fig6_k_ml1m", "fig7_lambda_ml1m"}
    assert len(parse(html).imgs) == 6


# ---------------------------------------------------------------------------------------------------------
# In a browser


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_headless_chromium_screenshot(built, tmp_path, chromium):
    """Load the page in headless chromium at 1366 px and take a screenshot."""
    shot = tmp_path / "shot.png"
    res = chromium(f"--screenshot={shot}", built["out"].resolve().as_uri())
    assert shot.is_file(), f"no screenshot (rc {res.returncode}): {res.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert _png_size(shot) == (1366, 900)


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
