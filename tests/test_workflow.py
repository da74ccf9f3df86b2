"""The Snakemake workflow: the dry run lists every study's runs, a bad config stops before any job with a
message naming the key, a missing raw file stops before any job naming the file, and the smoke configuration
runs end to end (slow), leaves nothing to redo, never retrains a finished run whose checkpoint is gone, and stops
when a run folder holds other settings than its study asks for.

Every run uses ``--snakefile <repo>/Snakefile --directory <tmp>`` so that nothing is written into the checkout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"
SMOKE = ROOT / "config" / "smoke.yaml"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="Snakemake's shell rules need bash")


def snakemake(workdir: Path, *args: str, configfiles: tuple[Path, ...] = (CONFIG,), timeout: int = 120):
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", *map(str, configfiles),
        *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: {rule: count}."""
    table = output[output.index("Job stats:") :]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def write_config(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump(changes))
    return path


# ---------------------------------------------------------------------------------------------------------


def test_config_files_are_commented_and_match_the_schema():
    text = CONFIG.read_text()
    cfg = yaml.safe_load(text)
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for key in cfg:
        assert key in schema["properties"], key
        # every top-level key has a comment on its line or just above it
        lines = text.splitlines()
        i = next(n for n, line in enumerate(lines) if line.startswith(f"{key}:"))
        assert "#" in lines[i] or lines[i - 1].startswith("#") or lines[i - 1] == "", key

    def closed(node, where="schema"):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, f"{where} is not closed"
                for name, sub in node["properties"].items():
                    assert "description" in sub, f"{where}.{name} lacks a description"
                    assert "default" in sub or name in node.get("required", ()), f"{where}.{name} lacks a default"
            for k, v in node.items():
                closed(v, f"{where}.{k}")

    closed(schema)


def test_lint_and_format_are_clean(tmp_path):
    lint = snakemake(tmp_path, "--lint", "--config", "download=True")  # download: no raw files needed to parse
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snakefmt = shutil.which("snakefmt") or str(Path(sys.executable).parent / "snakefmt")
    if not Path(snakefmt).exists():
        pytest.skip("snakefmt is not installed (pip install -e '.[test]')")
    fmt = subprocess.run(
        [snakefmt, "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_slurm_profile_is_valid(tmp_path):
    """The SLURM profile's settings load and reach the jobs (the executor line is left out: the plugin is not
    installed here)."""
    profile = tmp_path / "slurm"
    profile.mkdir()
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    assert re.search(r"^executor: slurm$", text, re.M)
    (profile / "config.yaml").write_text(re.sub(r"^executor: slurm$", "", text, flags=re.M))
    args = ("-n", "--workflow-profile", str(profile), "--cores", "8", "aggregate")
    res = snakemake(tmp_path, *args, configfiles=(CONFIG, SMOKE))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "OMP_NUM_THREADS=4 tp train" in out and "--set train.threads=4" in out
    train_resources = re.search(r"rule train:[\s\S]*?\n\s*resources: ([^\n]*)", out).group(1)
    assert "gpu=1" in train_resources and "slurm_partition=<gpu-partition>" in train_resources


def test_dry_run_lists_every_study(tmp_path):
    res = snakemake(tmp_path, "-n", "--quiet", "rules", "--config", "download=True")
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout + res.stderr)
    cfg = yaml.safe_load(CONFIG.read_text())
    per_study = {n: sum(map(len, st["cells"].values())) * len(st["variants"]) * len(st["seeds"])
                 for n, st in cfg["studies"].items() if not st.get("tuned_from")}  # tuned: once searched
    assert per_study["paper"] == 4 * 3 * 2 * 10 == 240
    assert counts["train"] == counts["evaluate"] == sum(per_study.values())
    assert counts["tune"] == 2 * sum(sum(map(len, t["cells"].values())) for t in cfg["tunings"].values())
    assert counts["download"] == counts["prepare"] == 4
    assert counts["aggregate"] == counts["report"] == counts["all"] == 1
    assert not (tmp_path / "results").exists()


def test_a_study_is_run_by_name_and_in_parts(tmp_path):
    args = ("-n", "--quiet", "rules", "--config", "download=True", "run=[paper]")
    res = snakemake(tmp_path, *args, "select={datasets: [music], backbones: [sasrec], seeds: [0, 1]}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert job_counts(res.stdout + res.stderr)["train"] == 2 * 2  # two variants, two seeds
    res = snakemake(tmp_path, "-n", "--config", "download=True", "train=False")
    counts = job_counts(res.stdout + res.stderr)
    assert res.returncode == 0 and "train" not in counts and counts["aggregate"] == 1, res.stdout + res.stderr


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"run": "x"}, r"'x' is not of type 'array'[\s\S]*instance\['run'\]"),
        ({"seedz": [0]}, r"'seedz' was unexpected"),
        ({"studies": {"smoke": {"protocol": {"patiense": 3}}}}, r"'patiense' was unexpected"),
        ({"studies": {"smoke": {"cells": {"netflix": ["sasrec"]}}}}, r"'netflix' is not one of"),
        ({"overrides": {"all": {"train.lrr": 0.1}}}, r"unknown config key train\.lrr"),
        ({"overrides": {"backbones": {"caser": {"model.d": "big"}}}}, r"model\.d must be an integer"),
        ({"overrides": {"all": {"train.patience": 3}}}, r"overrides\.all: train\.patience is set by the study's protocol"),
        ({"studies": {"smoke": {"variants": {"tp": {"method": "tp", "set": {"train.max_epochs": 9}}}}}},
         r"studies\.smoke\.variants\.tp\.set: train\.max_epochs is set by the study's protocol"),
        ({"run": ["nosuch"]}, r"run: unknown study 'nosuch'"),
        ({"select": {"datasets": ["music"]}}, r"select\.datasets: 'music' is in none of the studies run"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, changes, expected):
    bad = write_config(tmp_path / "bad.yaml", **changes)
    res = snakemake(tmp_path, "--cores", "1", configfiles=(CONFIG, SMOKE, bad))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert re.search(expected, out), out
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def one_study(name: str, cells: dict, **protocol) -> dict:
    """A config overlay with one study (``name``, one baseline variant, seed 0) that is the only one run."""
    rule = {"eval_every": 1, "patience": 10, "max_epochs": 2, "min_epochs": 0} | protocol
    study = {"title": name, "about": name, "cells": cells, "seeds": [0], "protocol": rule,
             "variants": {"baseline": {"method": "baseline"}}}
    return {"run": [name], "studies": {name: study}, "report": {"main": name, "ablation": name}}


def test_missing_raw_files_stop_before_any_job(tmp_path):
    (tmp_path / "empty").mkdir()
    cells = {"ml1m": ["sasrec"], "music": ["sasrec"], "mt-sample": ["sasrec"]}
    cfg = write_config(tmp_path / "raw.yaml", raw_dir=str(tmp_path / "empty"), download=False,
                       **one_study("raw", cells))
    res = snakemake(tmp_path, "--cores", "1", configfiles=(CONFIG, SMOKE, cfg))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "raw data missing" in out
    assert f"put it at {tmp_path / 'empty' / 'ml-1m' / 'ratings.dat'}" in out
    assert "Music.txt not found" in out
    assert "mt-sample" not in out.split("raw data missing")[1]  # the shipped slice needs no raw file
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


SHARED_MUSIC = ROOT.parent / "shared" / "data" / "amazon-proxies" / "digital-music-melt" / "Music.txt"


@pytest.mark.skipif(not SHARED_MUSIC.is_file(), reason=f"real data not found: {SHARED_MUSIC} (the project's shared folder)")
def test_a_newer_raw_file_does_not_redo_the_grid(tmp_path):
    """A raw file's time is not its content (tp prepare checks the checksum): touching it redoes nothing."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(SHARED_MUSIC, raw / "Music.txt")
    cfg = write_config(tmp_path / "music.yaml", raw_dir=str(raw), **one_study("music", {"music": ["sasrec"]}))
    target = "results/data/music/dataset.npz"
    res = snakemake(tmp_path, "--cores", "1", target, configfiles=(CONFIG, cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    time.sleep(1.1)
    (raw / "Music.txt").touch()
    res = snakemake(tmp_path, "-n", target, configfiles=(CONFIG, cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------------------


SMOKE_RUN_FILES = ("config.json", "run.json", "model.pt", "train_log.csv", "train_summary.json", "benchmark.tsv",
                   "metrics.json", "ranks.csv.gz", "evaluate_config.json")


def smoke_runs(tuned: bool = True) -> list[str]:
    """The smoke run's run folders; ``tuned=False``: without the study that starts from a search."""
    studies = yaml.safe_load(SMOKE.read_text())["studies"]
    return [f"{n}/{d}/{b}/{v}/seed{seed}" for n, st in studies.items() for d, bbs in st["cells"].items()
            for b in bbs for v in st["variants"] for seed in st["seeds"] if tuned or not st.get("tuned_from")]


@pytest.mark.slow
def test_smoke_run_end_to_end(tmp_path):
    """The whole DAG of config/smoke.yaml on two cores; then nothing is left to do, even once the checkpoints are
    gone and the data prepared again (a committed run is finished); a changed study setting stops the workflow."""
    # its duration (budget: 10 minutes on 2 cores) is in the test command's --durations report
    res = snakemake(tmp_path, "--cores", "2", configfiles=(CONFIG, SMOKE), timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    assert not (tmp_path / "results" / "runs" / "smoke-tuned").exists()  # its searches had not finished at parse
    trials = pd.read_csv(tmp_path / "results" / "tuning" / "trials.csv")
    assert sorted(trials["method"]) == ["baseline"] * 2 + ["tp"] * 2 and set(trials["state"]) == {"COMPLETE"}
    base_best = json.loads((tmp_path / "results/tuning/smoke-fair/mt-sample/sasrec/baseline/best.json").read_text())
    tp_best = json.loads((tmp_path / "results/tuning/smoke-fair/mt-sample/sasrec/tp/best.json").read_text())
    assert f"model.d={base_best['params']['model.d']}" in tp_best["sets"]  # TP on the baseline's architecture
    second = snakemake(tmp_path, "--cores", "2", configfiles=(CONFIG, SMOKE), timeout=900)
    assert second.returncode == 0, (second.stdout + second.stderr)[-5000:]
    tuned = json.loads((tmp_path / "results/runs/smoke-tuned/mt-sample/sasrec/tp/seed0/config.json").read_text())
    assert tuned["tp"]["alpha"] == tp_best["params"]["tp.alpha"] and tuned["model"]["d"] == base_best["params"]["model.d"]
    assert tuned["train"]["max_epochs"] == 2  # the study's protocol

    runs = smoke_runs()
    assert len(runs) == 3 * 2 * 2 + 1 * 4 * 2 + 1 * 2 * 2 == 24
    for f in ("dataset.npz", "stats.json"):
        assert (tmp_path / "results" / "data" / "mt-sample" / f).is_file()
    for run in runs:
        # exactly the declared outputs of train and evaluate: no job writes anything else into a run folder
        assert sorted(p.name for p in (tmp_path / "results" / "runs" / run).iterdir()) == sorted(SMOKE_RUN_FILES), run
        assert (tmp_path / "logs" / "train" / f"{run}.log").is_file()
        assert (tmp_path / "logs" / "evaluate" / f"{run}.log").is_file()
        assert yaml.safe_load((tmp_path / "results" / "runs" / run / "run.json").read_text())["study"] == run.split("/")[0]
    made = {str(p.parent.relative_to(tmp_path / "results" / "runs")) for p in tmp_path.glob("results/runs/**/model.pt")}
    assert made == set(runs)  # nothing more, nothing less
    agg = tmp_path / "results" / "aggregate"
    tidy = pd.read_csv(agg / "runs.csv")
    assert len(tidy) == 24 * 2 * 3 * 2 * 5
    assert {"study", "variant", "eval_every", "patience", "max_epochs", "min_epochs", "k", "lam", "alpha", "beta",
            "P"} <= set(tidy.columns)
    assert set(tidy.loc[tidy["study"] == "smoke-ablation", "max_epochs"]) == {2}
    summary = pd.read_csv(agg / "summary.csv")
    tp = summary[summary["method"] == "tp"]
    assert (tp["n_pairs"] == 2).all() and set(tp["control"]) == {"baseline"}
    costs = pd.read_csv(agg / "costs.csv")
    assert len(costs) == 24 and costs["seconds"].notna().all()
    assert set(pd.read_csv(agg / "diagnostics.csv")["method"]) == {"baseline", "tp"}
    assert list(pd.read_csv(agg / "stats.csv")["dataset"]) == ["mt-sample"]
    assert set(yaml.safe_load((agg / "config.yaml").read_text())["studies"]) == {"smoke", "smoke-ablation", "smoke-tuned"}
    html = (tmp_path / "report" / "report.html").read_text()
    assert "smoke-ablation" in html and "Tuning <code>smoke-fair</code>" in html
    assert any((tmp_path / "results" / "figures").glob("search_smoke-fair_*.png"))

    again = snakemake(tmp_path, "-n", configfiles=(CONFIG, SMOKE))
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout + again.stderr

    # As after a clone: no checkpoints (never committed), no Snakemake metadata, every file's time arbitrary (here:
    # each run's training outputs newer than its metrics), no prepared data (prepared anew by this very run)
    for p in tmp_path.glob("results/runs/**/model.pt"):
        p.unlink()
    shutil.rmtree(tmp_path / ".snakemake")
    time.sleep(1.1)
    for p in [*tmp_path.glob("results/runs/**/train_summary.json"), *tmp_path.glob("results/runs/**/config.json")]:
        p.touch()
    shutil.rmtree(tmp_path / "results" / "data")
    clone = snakemake(tmp_path, "-n", configfiles=(CONFIG, SMOKE))
    counts = job_counts(clone.stdout + clone.stderr) if "Job stats" in clone.stdout + clone.stderr else {}
    assert clone.returncode == 0 and counts.get("prepare") == 1, clone.stdout + clone.stderr
    assert "train" not in counts and "evaluate" not in counts and "tune" not in counts, clone.stdout + clone.stderr

    # A study setting changed after its runs finished: the workflow stops and names the folders
    changed = write_config(tmp_path / "changed.yaml", studies={"smoke": {"variants": {"tp": {"method": "tp", "set": {"tp.lam": 1}}}}})
    res = snakemake(tmp_path, "-n", configfiles=(CONFIG, SMOKE, changed))
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "results/runs/smoke/mt-sample/gru4rec/tp/seed0: tp.lam: 0.1 -> 1.0" in out, out


@pytest.mark.slow
def test_a_killed_training_job_resumes_when_the_workflow_restarts(tmp_path):
    """Ctrl-C in the middle of a training job, then the same command: the job continues from its last validation
    (Snakemake removes the job's declared outputs, not its resume state), and the finished folder holds exactly
    the declared files."""
    import os
    import signal

    cfg = write_config(tmp_path / "long.yaml",
                       **one_study("long", {"mt-sample": ["sasrec"]}, max_epochs=40, patience=40))
    run = tmp_path / "results" / "runs" / "long" / "mt-sample" / "sasrec" / "baseline" / "seed0"
    target = str(run.relative_to(tmp_path) / "train_summary.json")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(CONFIG), str(SMOKE), str(cfg), "--cores", "1", "--", target]  # fmt: skip
    out = tmp_path / "first-run.log"
    with out.open("w") as fh:
        # A process started in the background by a shell without job control (`make test &`, nohup) inherits
        # SIGINT as ignored, and Python then installs no KeyboardInterrupt handler: Ctrl-C would do nothing. Give
        # the workflow a terminal's default, as a user's Ctrl-C meets it.
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (run / "resume.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    seen = (run / "resume.pt").exists(), proc.poll(), time.time() > deadline
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: to the whole process group, the job's `tp train` included
    rc = proc.wait(timeout=60)
    train_log = tmp_path / "logs" / "train" / "long" / "mt-sample" / "sasrec" / "baseline" / "seed0.log"
    why = f"(resume.pt seen, rc before SIGINT, deadline passed) = {seen}\n" + out.read_text()[-3000:] + (
        train_log.read_text()[-2000:] if train_log.exists() else "")
    assert rc != 0, why  # interrupted, not finished
    assert (run / "resume.pt").is_file() and not (run / "train_summary.json").exists(), why

    # the very same command again (the config must not change for the run to resume)
    res = snakemake(tmp_path, "--cores", "1", "--", target, configfiles=(CONFIG, SMOKE, cfg), timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    log = train_log.read_text()
    assert "resuming from" in log
    summary = yaml.safe_load((run / "train_summary.json").read_text())
    assert len(summary["resumed_at_epochs"]) == 1 and 1 <= summary["resumed_at_epochs"][0] < 40
    assert summary["epochs_run"] == 40
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["benchmark.tsv", "config.json", "model.pt", "run.json", "train_log.csv", "train_summary.json"])


def test_results_made_outside_the_workflow_do_not_hide_missing_runs(tmp_path):
    """Snakemake (7.7 and later) treats a missing input of an existing, up-to-date output as a deleted intermediate
    and does not rebuild it. This repository commits results/aggregate and the report, so after a clone they
    exist without Snakemake's metadata, and a run the config asks for but no folder holds would be skipped. The
    default target therefore asks for every run's metrics.json itself."""
    for f in ("dataset.npz", "stats.json"):
        p = tmp_path / "results" / "data" / "mt-sample" / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("prepared earlier\n")
    time.sleep(1.1)
    for f in ("runs", "summary", "costs", "diagnostics", "stats"):
        p = tmp_path / "results" / "aggregate" / f"{f}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("made by tp aggregate, not by Snakemake\n")
    (tmp_path / "results" / "aggregate" / "config.yaml").write_text("{}\n")
    (tmp_path / "results" / "figures").mkdir()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.html").write_text("<html></html>\n")
    res = snakemake(tmp_path, "-n", configfiles=(CONFIG, SMOKE))
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts["train"] == counts["evaluate"] == len(smoke_runs(tuned=False)) == 20, counts
    assert counts["tune"] == 2, counts
    assert counts["aggregate"] == counts["report"] == 1, counts
