"""The committed results are the workflow's own output: the README's results block is what the committed aggregate
gives, the committed report was built from committed inputs, and every committed run folder is a complete run of
a declared study whose recorded settings are the ones its study asks for. (`.ci/run` also rebuilds the aggregate
and the report with `make report` and checks that nothing changes.)"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tplib.grid import Run, config_conflicts, run_config
from tplib.report.claims import README_END, README_START, readme_block
from tplib.report.load import load_aggregate
from tplib.report.paper import PAPER_BACKBONES, PAPER_DATASETS
from tplib.report.tables import search_blocks

ROOT = Path(__file__).resolve().parents[1]
AGG = ROOT / "results" / "aggregate"
RUNS = ROOT / "results" / "runs"
SMALL_FILES = {"config.json", "run.json", "train_log.csv", "train_summary.json", "benchmark.tsv", "metrics.json",
               "ranks.csv.gz", "evaluate_config.json"}


def test_readme_results_block_equals_the_committed_aggregate():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index(README_START) : text.index(README_END) + len(README_END)]
    agg = load_aggregate(AGG)
    searches = search_blocks(agg, pd.read_csv(ROOT / "results" / "tuning" / "trials.csv", dtype={"study": str}))
    assert block == readme_block(agg, PAPER_DATASETS, PAPER_BACKBONES, searches)


def test_committed_report_was_built_from_committed_inputs():
    html = (ROOT / "report" / "report.html").read_text(encoding="utf-8")
    assert "Built from" in html and "uncommitted changes" not in html


def committed_runs() -> list[Path]:
    return sorted(p.parent for p in RUNS.glob("*/*/*/*/seed*/metrics.json"))


@pytest.mark.skipif(not committed_runs(), reason="no run is committed under results/runs yet")
def test_every_committed_run_is_a_complete_run_of_its_study():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    agg = load_aggregate(AGG)
    for run in committed_runs():
        study, dataset, backbone, variant, seed = run.relative_to(RUNS).parts
        assert {p.name for p in run.iterdir()} == SMALL_FILES, run  # no checkpoint, nothing missing
        assert json.loads((run / "run.json").read_text()) == {"study": study, "variant": variant}
        r = Run(study, dataset, backbone, variant, int(seed.removeprefix("seed")))
        recorded = json.loads((run / "config.json").read_text())
        assert config_conflicts(recorded, run_config(config, r).to_dict()) == [], run
        listed = agg.costs[(agg.costs["run"] == str(run.relative_to(ROOT)))]
        assert len(listed) == 1, f"{run} is not in results/aggregate/costs.csv: run `make report`"


OVERFLOW_PROBE = """<script>
document.title = "OVERFLOW:" + [...document.querySelectorAll(".scroll")]
  .filter(d => d.scrollWidth > d.clientWidth + 1)
  .map(d => { let h = d.previousElementSibling;
              while (h && !/^H[1-4]$/.test(h.tagName)) h = h.previousElementSibling;
              return (h ? h.textContent : "?").slice(0, 80) + " (" + d.scrollWidth + " px > " + d.clientWidth + ")"; })
  .join(" | ") + ";OF " + document.querySelectorAll(".scroll").length;
</script>"""


def test_committed_report_cuts_no_table_off_at_1366px(tmp_path, chromium):
    """Every table of the committed report fits the page at 1366 px in headless Chromium: none of its
    horizontally scrolling boxes is wider than the page shows (a probe script lists those that are)."""
    import re

    html = (ROOT / "report" / "report.html").read_text(encoding="utf-8")
    end = html.rindex("</body>")
    page = tmp_path / "report.html"
    page.write_text(html[:end] + OVERFLOW_PROBE + html[end:], encoding="utf-8")
    res = chromium("--dump-dom", page.as_uri())
    m = re.search(r"<title>OVERFLOW:(.*?);OF (\d+)</title>", res.stdout, re.S)
    assert m, f"the probe did not run (rc {res.returncode}): {res.stderr[-2000:]}"
    assert int(m.group(2)) > 10  # the report's tables were there
    assert m.group(1) == "", f"cut off at 1366 px: {m.group(1)}"
