"""The report page as a whole, on the studies of report_fixture.py: a complete self-contained page with no clock
time in it (the same inputs render the same bytes), the fixture's own layout, the build stamp (a hash that follows
the tables, the last commit of the inputs, ``dirty`` in a git tree with uncommitted changes, none outside git), bad
inputs that stop with a message, the CLI, an empty aggregate, and, where chromium is installed, a headless
screenshot at a laptop's width."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tplib.aggregate import aggregate
from tplib.cli import main
from tplib.evaluate import metrics_by_group
from tplib.io import DataError
from tplib.report import load as L
from tplib.report.load import load_aggregate
from tplib.report.provenance import build_stamp
from tplib.report.render import render_report

from report_fixture import NS, chunk, metrics_json, parse, studies_config, tables_with

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
