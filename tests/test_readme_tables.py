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


@pytest.mark.parametrize("args", TABLES, ids=["-".join(a) for a in TABLES])
def test_readme_table_matches_the_committed_aggregate(args):
    kind = args[0]
    out = subprocess.run(
        [sys.executable, str(ROOT / "results" / "readme_tables.py"), *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    if kind in ("comparison", "grid"):
        rows = rows[1:]  # the README names the TP column by its protocol (e.g. "TP, 20-epoch cap")
    assert rows, out
    missing = [row for row in rows if row not in readme]
    assert not missing, "README rows that differ from results/aggregate:\n" + "\n".join(missing)
