"""benchmarks/speed.py and benchmarks/gpu_check.sh run end to end on the shipped MovieTweetings slice, and speed.py
writes the CSV that benchmarks/grid_cost.py reads (its numbers are timings, so only their form is checked here)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from tplib.cli import main as tp_main

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_speed_benchmark_refuses_a_missing_gpu():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        load("speed").main(["--data", "unused", "--device", "cuda"])


def test_speed_benchmark_rejects_a_bad_repeat(capsys):
    with pytest.raises(SystemExit):
        load("speed").main(["--data", "unused", "--repeat", "0"])
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_gpu_check_script_runs_its_stages_on_a_cpu(tmp_path):
    """benchmarks/gpu_check.sh waits for a machine with a GPU; its plumbing (stages, limits, files) and the speed
    table it writes (a row per setting) are checked here with DEVICE=cpu on the shipped slice, so that the GPU call
    does not fail on a typo."""
    data = tmp_path / "data"
    assert tp_main(["prepare", "--dataset", "mt-sample", "--out", str(data)]) == 0
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "DEVICE": "cpu", "PY": sys.executable, "DATASETS": str(data),
           "RUN_DATA": str(data), "RUN_EPOCHS": "2", "SPEED_ARGS": "--backbones sasrec --tp-P 4 --fraction 0.05 --repeat 2"}
    subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, check=True, capture_output=True)
    stages = (out / "stages.txt").read_text()
    for name in ("tests", "speed", "train"):
        assert f"{name}: rc 0 " in stages, stages
    assert "passed" in (out / "tests.log").read_text()
    speed_log = (out / "speed.log").read_text()
    assert "(cpu)" in speed_log and "| mt-sample | sasrec |" in speed_log
    table = pd.read_csv(out / "speed-gpu.csv")
    assert list(zip(table.method, table.P)) == [("baseline", 1), ("tp", 1), ("tp", 4)]
    assert (table.device == "cpu").all() and (table.train_s_per_epoch > 0).all() and (table.repeats == 2).all()
    # with two rounds the median is their mean: between the fastest and the slowest
    assert ((table.train_s_min <= table.train_s_per_epoch) & (table.train_s_per_epoch <= table.train_s_max)).all()
    assert (table.eval_all_users_s > 0).all()
    assert len(pd.read_csv(out / "train_log.csv")) == 2


def test_ab_swap_times_both_variants(tmp_path, capsys):
    """benchmarks/ab_swap.py on the shipped slice, the 'old' version a copy of the current tplib/: both variants
    run and are printed; a --old folder without the module stops with a message naming the file."""
    import shutil

    data = tmp_path / "data"
    assert tp_main(["prepare", "--dataset", "mt-sample", "--out", str(data)]) == 0
    shutil.copytree(ROOT / "tplib", tmp_path / "old" / "tplib")
    ab = load("ab_swap")
    ab.main(["--old", str(tmp_path / "old"), "--data", str(data), "--backbone", "gru4rec", "--P", "4", "--steps", "1",
             "--rounds", "2", "--swap", "tplib.models.gru4rec:_GRUScan,_scan"])
    out = capsys.readouterr().out
    import tplib.models.gru4rec as live

    assert live._GRUScan.__module__ == "tplib.models.gru4rec"  # the live module is left as it was
    assert "mt-sample gru4rec P=4" in out and "A (old) median" in out and "B/A median of paired ratios" in out
    with pytest.raises(SystemExit, match="no such file"):
        ab.main(["--old", str(tmp_path / "nothing"), "--data", str(data), "--backbone", "gru4rec",
                 "--swap", "tplib.models.gru4rec:_GRUScan"])


def test_profile_tp_prints_the_step_time_and_operator_calls(tmp_path, capsys):
    """benchmarks/profile_tp.py on the shipped slice, as RESULTS.md runs it: the settings given with --set are the
    ones profiled (a shrunk model: about as many operator calls, each on smaller tensors)."""
    data = tmp_path / "data"
    assert tp_main(["prepare", "--dataset", "mt-sample", "--out", str(data)]) == 0
    prof = load("profile_tp")
    for sets in ([], ["model.d=4", "model.max_len=5"]):
        prof.main(["--data", str(data), "--backbone", "sasrec", "--P", "1", "--steps", "2", "--top", "3",
                   "--set", *sets])
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "per outer step" in ln]
    assert len(lines) == 2 and lines[1].startswith("mt-sample sasrec P=1 k=2 model.d=4 model.max_len=5:")
    calls = [float(ln.split("; ")[-1].split()[0]) for ln in lines]
    assert calls[0] > 0 and abs(calls[1] - calls[0]) <= 0.01 * calls[0] and "Self CPU" in out
    with pytest.raises(Exception, match="model.nope"):
        prof.main(["--data", str(data), "--backbone", "sasrec", "--steps", "1", "--set", "model.nope=1"])


def test_adam_eps_share_grows_as_alpha_shrinks(tmp_path, capsys):
    """benchmarks/adam_eps.py on the shipped slice: one row per α, and ε decides more of the outer step at a tiny α
    (the outer gradient scales with α, ε does not)."""
    data = tmp_path / "data"
    assert tp_main(["prepare", "--dataset", "mt-sample", "--out", str(data)]) == 0
    load("adam_eps").main(["--data", str(data), "--backbone", "sasrec", "--alpha", "0.00001", "0.1", "--steps", "5",
                           "--set", "model.d=8"])
    rows = [ln.split("|")[1:-1] for ln in capsys.readouterr().out.splitlines() if ln.startswith("| 1e-05") or
            ln.startswith("| 0.1 ")]
    assert [r[0].strip() for r in rows] == ["1e-05", "0.1"]
    medians = [float(r[2]) for r in rows]
    assert medians[0] > 10 * medians[1] and 0 < medians[1] < medians[0] < 1


def test_fair_cost_prints_every_search_and_tuned_cell_from_the_committed_trials():
    out = subprocess.run([sys.executable, "benchmarks/fair_cost.py"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("| kind | name | dataset |")
    # the shipped config: 7 cells, two searches each, and study tuned's four variants per cell
    assert sum(line.startswith("| search | fair |") for line in lines) == 14
    assert sum(line.startswith("| runs | tuned |") for line in lines) == 28
    assert lines[-1].startswith("core-hours left: search ") and "days on 2 one-thread jobs" in lines[-1]
