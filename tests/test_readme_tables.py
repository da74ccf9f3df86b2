"""The README's result tables are what results/readme_tables.py prints from the committed aggregate: a number
edited by hand, or a table left stale after new runs were merged, fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLES = [
    ("grid", "music"),
    ("grid", "game"),
    ("grid", "movietweetings"),
    ("comparison", "ml1m", "sasrec"),
    ("comparison", "ml1m", "gru4rec"),
    ("comparison", "ml1m", "caser"),
    ("ablation", "ml1m", "sasrec"),
    ("ablation", "movietweetings", "sasrec"),
    ("ablation", "movietweetings", "gru4rec"),
    ("ablation", "movietweetings", "caser"),
]


def _table_rows(*args: str) -> list[str]:
    """The table lines (header included, separator not) that results/readme_tables.py prints for ``args``."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "results" / "readme_tables.py"), *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]


@pytest.mark.parametrize("args", TABLES, ids=["-".join(a) for a in TABLES])
def test_readme_table_matches_the_committed_aggregate(args):
    kind = args[0]
    readme = (ROOT / "README.md").read_text()
    rows = _table_rows(*args)
    if kind in ("comparison", "grid"):
        rows = rows[1:]  # the README names the TP column by its protocol (e.g. "TP, 20-epoch cap")
    assert rows, f"readme_tables.py {' '.join(args)} printed no table"
    missing = [row for row in rows if row not in readme]
    assert not missing, "README rows that differ from results/aggregate:\n" + "\n".join(missing)


def _variant_rows(backbone: str, aggregate: str, dataset: str = "movietweetings") -> list[str]:
    return _table_rows("variant", dataset, backbone, "--aggregate", str(ROOT / aggregate))


STUDY_TABLES = [("stopping", "movietweetings", "sasrec"), ("stopping", "movietweetings", "gru4rec"),
                ("patience", "movietweetings", "gru4rec"), ("patience", "music", "gru4rec"),
                ("patience", "music", "sasrec"), ("patience", "music", "caser")]


@pytest.mark.parametrize("study,dataset,backbone", STUDY_TABLES, ids=["-".join(t) for t in STUDY_TABLES])
def test_study_readme_tables_match_their_aggregate(study, dataset, backbone):
    """results/stopping/README.md (minimum-epochs rule) and results/patience/README.md (patience 100 epochs): each
    dataset's and backbone's table is what its study's aggregate gives."""
    rows = _variant_rows(backbone, f"results/{study}/aggregate", dataset)
    readme = (ROOT / "results" / study / "README.md").read_text()
    assert len(rows) == 7
    missing = [row for row in rows if row not in readme]
    assert not missing, f"rows that differ from results/{study}/aggregate:\n" + "\n".join(missing)


def test_stopping_readme_batched_table_joins_the_aggregates():
    """The batched-TP table sets TP with P = 64 and P = 256 (aggregate-P64, aggregate-P256) beside the same baselines
    and P = 1 TP (aggregate)."""
    cells = lambda row: row.strip("| ").split(" | ")  # noqa: E731
    parts = [_variant_rows("sasrec", f"results/stopping/{a}")[1:]
             for a in ("aggregate", "aggregate-P64", "aggregate-P256")]
    readme = (ROOT / "results" / "stopping" / "README.md").read_text()
    joined = []
    for rows in zip(*parts, strict=True):
        c = [cells(r) for r in rows]
        assert all(x[:5] == c[0][:5] for x in c)  # the same rows, seeds and baselines
        joined.append("| " + " | ".join(c[0] + c[1][5:] + c[2][5:]) + " |")
    missing = [row for row in joined if row not in readme]
    assert not missing, "rows that differ from results/stopping/aggregate(-P64, -P256):\n" + "\n".join(missing)


SCHEDULE_TABLES = [(page, dataset, n_backbones) for page in ("README.md", "results/schedule/README.md")
                   for dataset, n_backbones in (("music", 3), ("game", 2))]


@pytest.mark.parametrize("page,dataset,n_backbones", SCHEDULE_TABLES,
                         ids=["-".join(map(str, t)) for t in SCHEDULE_TABLES])
def test_schedule_table_matches_its_aggregates(page, dataset, n_backbones):
    """TP trained to early stopping (results/schedule/aggregate) beside the main run's capped TP: Music's three
    backbones, Game's GRU4Rec and SASRec (the backbones with TP runs there)."""
    rows = _table_rows("schedule", dataset)
    assert len(rows) == 1 + 3 * n_backbones * 2, rows  # header; existing / existing tail / new × backbones × HR, NDCG
    text = (ROOT / page).read_text()
    missing = [row for row in rows if row not in text]
    assert not missing, f"{page}: rows that differ from results/schedule/aggregate:\n" + "\n".join(missing)
