"""The report tests' studies, built the way the workflow builds them: fake run folders in the exact format of
`tp train` / `tp evaluate` (config.json from the studies' settings, run.json, train_summary.json, train_log.csv,
metrics.json, benchmark.tsv), aggregated by tplib.aggregate.aggregate, with the studies as configured (config.yaml)
beside the tables; and the helpers that read the rendered page.

The numbers follow a formula (:func:`value`), so the tests check the page against numbers computed here, not
against the library's own tables. conftest.py's ``built`` fixture renders the page once for all the report tests."""

from __future__ import annotations

import json
import math
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tplib.aggregate import aggregate
from tplib.grid import Run, run_config
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


def build_report(root: Path) -> dict:
    """The fixture's studies aggregated and rendered under ``root``: the aggregate folder, the page, its figures, the
    page's text and its parsed tables (shared by every report test; read it, never write into it)."""
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
