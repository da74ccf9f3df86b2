"""tplib.aggregate on fake run folders written in the exact format of `tp train` / `tp evaluate`: the tidy
table, per-cell summaries checked by hand, the paired tests against scipy, costs, diagnostics, the CLI."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tplib.aggregate import aggregate, paired_test, read_runs_list, summarise, tidy_metrics
from tplib.cli import main
from tplib.config import build_config
from tplib.evaluate import metrics_by_group

NS = (1, 5, 10, 15, 20)
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def fake_run(
    root: Path,
    name: str,
    *,
    dataset: str = "mt-sample",
    backbone: str = "sasrec",
    method: str = "baseline",
    seed: int = 0,
    k: int = 2,
    lam: float = 0.1,
    epochs: int = 3,
    bench_seconds: float | None = 12.5,
    max_epochs: int = 200,
    resumed_at: tuple[int, ...] = (),
) -> tuple[Path, Path | None]:
    """A finished, evaluated run folder (config.json, train_summary.json, train_log.csv, metrics.json,
    ranks.csv) and its training benchmark file, with ranks drawn from a seeded generator."""
    run = root / name
    run.mkdir(parents=True)
    cfg = build_config(backbone, method, seed, dataset, {"tp": {"k": k, "lam": lam}, "train": {"max_epochs": max_epochs}})
    (run / "config.json").write_text(cfg.to_json() + "\n")
    rng = np.random.default_rng(zlib.crc32(repr((dataset, backbone, method, seed, k, lam)).encode()))
    n_users = 50
    ranks = pd.DataFrame(
        {
            "user": np.arange(n_users),
            "user_id": [str(u) for u in range(n_users)],
            "group": ["existing"] * 40 + ["new"] * 10,
            "head": [u % 5 == 0 for u in range(n_users)],
            "rank": rng.integers(1, 40, n_users),
        }
    )
    ranks.to_csv(run / "ranks.csv", index=False)
    (run / "metrics.json").write_text(json.dumps(metrics_by_group(ranks, NS), indent=2) + "\n")
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "loss": 1.0 / e, "train_seconds": 0.5}
        if method == "tp":
            row |= {"adv_loss": 0.5, "disc_acc": 0.8, "outer_steps": 10.0, "diag_cos_ht": 0.01 * e}
        row |= {"valid_HR@10": 0.1, "valid_NDCG@10": 0.05, "eval_seconds": 0.1}
        rows.append(row)
    pd.DataFrame(rows).to_csv(run / "train_log.csv", index=False)
    summary = {
        "best_epoch": epochs - 1,
        "best_valid_NDCG@10": 0.05,
        "epochs_run": epochs,
        "wall_seconds": 1.5 * epochs,
        "seconds_per_epoch": 0.5,
        "device": "cpu",
        "device_name": "cpu",
        "torch_threads": 1,
        "rows_per_epoch": 40,
        "resumed_at_epochs": list(resumed_at),
    }
    (run / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    bench = None
    if bench_seconds is not None:
        bench = root / "benchmarks" / f"{name}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text(BENCH_HEADER + f"{bench_seconds}\t0:00:12\t321.5\t900.1\t1\t1\t0\t0\t50.0\t11.9\n")
    return run, bench


@pytest.fixture
def grid(tmp_path: Path):
    """sasrec: baseline and TP (k=2, λ=0.1) on seeds 0-4, plus a TP k=1 run on seed 0 only, plus a caser TP run
    without any baseline that ran into its epoch cap; one stats.json."""
    runs, benches = [], []
    for seed in range(5):
        for method in ("baseline", "tp"):
            r, b = fake_run(tmp_path / "runs", f"sasrec-{method}-{seed}", method=method, seed=seed)
            runs.append(r)
            benches.append(b)
    r, b = fake_run(tmp_path / "runs", "sasrec-tp-k1-0", method="tp", seed=0, k=1)
    runs.append(r)
    benches.append(b)
    r, b = fake_run(tmp_path / "runs", "caser-tp-0", backbone="caser", method="tp", seed=0, bench_seconds=None,
                    max_epochs=3)
    runs.append(r)
    benches.append(b)
    stats = tmp_path / "data" / "mt-sample" / "stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text(json.dumps({"dataset": "mt-sample", "users": 450, "items": 641, "reader_options": {}}))
    return runs, benches, [stats]


def _metric(run: Path, group: str, subset: str, name: str) -> float:
    return json.loads((run / "metrics.json").read_text())[group][subset][name]


def test_tidy_rows_and_columns(grid, tmp_path):
    runs, benches, stats = grid
    tables = aggregate(runs, tmp_path / "agg", benchmarks=benches, stats=stats)
    tidy = tables["runs"]
    assert len(tidy) == len(runs) * 2 * 3 * 2 * len(NS)
    assert list(tidy.columns[:11]) == [
        "dataset", "backbone", "method", "seed", "k", "lam", "group", "subset", "metric", "N", "value",
    ]
    for name in ("runs", "summary", "costs", "diagnostics", "stats"):
        assert (tmp_path / "agg" / f"{name}.csv").is_file()
    # keys come from config.json; baseline runs carry no k / λ
    base = tidy[tidy["method"] == "baseline"]
    assert base["k"].isna().all() and base["lam"].isna().all()
    tp = tidy[(tidy["method"] == "tp") & (tidy["backbone"] == "sasrec")]
    assert set(tp["k"].astype(int)) == {1, 2} and set(tp["lam"]) == {0.1}
    # one value checked against the file
    row = tidy[
        (tidy["method"] == "tp") & (tidy["seed"] == 3) & (tidy["k"] == 2) & (tidy["group"] == "new")
        & (tidy["subset"] == "tail") & (tidy["metric"] == "NDCG") & (tidy["N"] == 10)
    ]
    assert len(row) == 1
    assert row["value"].item() == pytest.approx(_metric(runs[7], "new", "tail", "NDCG@10"))
    assert row["users"].item() == _metric(runs[7], "new", "tail", "users")


def test_summary_by_hand_and_paired_tests_match_scipy(grid, tmp_path):
    runs, benches, stats = grid
    summary = aggregate(runs, tmp_path / "agg", benchmarks=benches, stats=stats)["summary"]
    sel = (summary["dataset"] == "mt-sample") & (summary["backbone"] == "sasrec") & (summary["group"] == "existing")
    sel &= (summary["subset"] == "all") & (summary["metric"] == "HR") & (summary["N"] == 10)
    base_vals = [_metric(runs[2 * s], "existing", "all", "HR@10") for s in range(5)]
    tp_vals = [_metric(runs[2 * s + 1], "existing", "all", "HR@10") for s in range(5)]
    b = summary[sel & (summary["method"] == "baseline")]
    t = summary[sel & (summary["method"] == "tp") & (summary["k"] == 2)]
    assert len(b) == 1 and len(t) == 1
    assert b["mean"].item() == pytest.approx(sum(base_vals) / 5)
    assert b["std"].item() == pytest.approx(float(np.std(base_vals, ddof=1)))
    assert b["n"].item() == 5 and pd.isna(b["p_ttest"].item()) and pd.isna(b["n_pairs"].item())
    assert t["n"].item() == 5 and t["n_pairs"].item() == 5
    diffs = np.array(tp_vals) - np.array(base_vals)
    assert t["diff_mean"].item() == pytest.approx(diffs.mean())
    assert t["base_mean"].item() == pytest.approx(np.mean(base_vals))
    assert t["rel_improvement"].item() == pytest.approx(diffs.mean() / np.mean(base_vals))
    assert t["p_ttest"].item() == pytest.approx(sps.ttest_rel(tp_vals, base_vals).pvalue)
    if np.any(diffs != 0):
        assert t["p_wilcoxon"].item() == pytest.approx(sps.wilcoxon(tp_vals, base_vals).pvalue)
    # the k=1 cell has one seed: one pair, no p-values
    one = summary[sel & (summary["method"] == "tp") & (summary["k"] == 1)]
    assert one["n"].item() == 1 and pd.isna(one["std"].item())
    assert one["n_pairs"].item() == 1
    assert math.isnan(one["p_ttest"].item()) and math.isnan(one["p_wilcoxon"].item())
    # a TP cell without any baseline: zero pairs
    lone = summary[(summary["backbone"] == "caser")]
    assert (lone["n_pairs"] == 0).all() and lone["p_ttest"].isna().all()


def test_paired_test_edge_cases():
    a, b = [0.2, 0.3, 0.25, 0.4], [0.1, 0.35, 0.2, 0.3]
    r = paired_test(a, b)
    assert r["n_pairs"] == 4
    assert r["p_ttest"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert r["p_wilcoxon"] == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert math.isnan(paired_test([0.5], [0.4])["p_ttest"])
    assert math.isnan(paired_test([0.5], [0.4])["p_wilcoxon"])
    assert paired_test([0.5], [0.4])["diff_mean"] == pytest.approx(0.1)
    same = paired_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])  # no difference at all: no p-value, no error
    assert same["diff_mean"] == 0 and math.isnan(same["p_wilcoxon"])
    assert math.isnan(paired_test([0.1, 0.2], [0.0, 0.0])["rel_improvement"])  # baseline mean 0
    # every seed moved by exactly the same amount (HR is a count of users): the t-test is undefined, not p = 0
    const = paired_test([0.0477, 0.0336], [0.0601, 0.0460])
    assert const["diff_mean"] == pytest.approx(-0.0124) and math.isnan(const["p_ttest"])
    assert not math.isnan(paired_test([0.0477, 0.0336], [0.0601, 0.0461])["p_ttest"])
    empty = paired_test([], [])
    assert empty["n_pairs"] == 0 and math.isnan(empty["diff_mean"])
    with pytest.raises(ValueError):
        paired_test([1.0], [1.0, 2.0])


def test_summarise_empty_and_tidy_format():
    assert summarise(pd.DataFrame(columns=["dataset"])).empty
    ranks = pd.DataFrame(
        {"user": [0, 1, 2], "user_id": ["a", "b", "c"], "group": ["existing", "existing", "new"],
         "head": [True, False, True], "rank": [1, 3, 12]}
    )
    keys = {"dataset": "d", "backbone": "gru4rec", "method": "baseline", "seed": 0, "k": pd.NA, "lam": math.nan}
    tidy = tidy_metrics(metrics_by_group(ranks, (1, 10)), keys)
    assert len(tidy) == 2 * 3 * 2 * 2
    hr1 = tidy[(tidy.group == "existing") & (tidy.subset == "all") & (tidy.metric == "HR") & (tidy.N == 1)]
    assert hr1["value"].item() == pytest.approx(0.5) and hr1["users"].item() == 2


def test_costs_diagnostics_stats(grid, tmp_path):
    runs, benches, stats = grid
    t = aggregate(runs, tmp_path / "agg", benchmarks=benches, stats=stats)
    costs = t["costs"]
    assert len(costs) == len(runs)
    c = costs[(costs["method"] == "tp") & (costs["seed"] == 0) & (costs["k"] == 2) & (costs["backbone"] == "sasrec")]
    assert c["seconds"].item() == pytest.approx(12.5)
    assert c["max_rss_mb"].item() == pytest.approx(321.5)
    assert c["epochs"].item() == 3 and c["best_epoch"].item() == 2 and c["s_per_epoch"].item() == 0.5
    assert c["device"].item() == "cpu"
    # the stopping rule, from config.json: 3 epochs of at most 200 stopped early; caser's 3 of 3 hit the cap
    assert c["max_epochs"].item() == 200 and c["eval_every"].item() == 5 and c["patience"].item() == 10
    assert not c["capped"].item()
    assert costs.loc[costs["backbone"] == "caser", "capped"].item()
    assert costs.loc[costs["backbone"] == "caser", "seconds"].isna().all()  # no benchmark: NaN, not an error
    assert (costs["resumes"] == 0).all()
    diag = t["diagnostics"]
    assert len(diag) == 3 * len(runs) and set(diag["method"]) == {"baseline", "tp"}  # every run's log
    assert {"loss", "adv_loss", "disc_acc", "diag_cos_ht", "epoch", "k", "lam"} <= set(diag.columns)
    assert diag.loc[diag["method"] == "baseline", "adv_loss"].isna().all()  # TP's columns: TP's runs only
    st = t["stats"]
    assert list(st["dataset"]) == ["mt-sample"] and st["reader_options"].item() == "{}"


def test_a_resumed_run_costs_its_own_wall_time(tmp_path):
    """Its benchmark file times the last part only: the cost is the run's wall time over all its parts."""
    run, bench = fake_run(tmp_path / "runs", "r", epochs=4, bench_seconds=2.0, resumed_at=(2,))
    costs = aggregate([run], tmp_path / "agg", benchmarks=[bench])["costs"]
    assert costs["seconds"].item() == pytest.approx(6.0) and costs["resumes"].item() == 1
    assert costs["wall_seconds"].item() == pytest.approx(6.0)


def test_duplicate_and_unfinished_runs(grid, tmp_path):
    from tplib.data.dataset import DataError

    runs, _, _ = grid
    with pytest.raises(DataError, match="same run"):
        aggregate([runs[0], runs[0]], tmp_path / "agg")
    (runs[1] / "metrics.json").unlink()
    with pytest.raises(DataError, match="metrics.json"):
        aggregate(runs[:2], tmp_path / "agg")
    with pytest.raises(DataError, match="benchmark"):
        aggregate(runs[:1], tmp_path / "agg", benchmarks=[])


def test_cli_runs_list(grid, tmp_path, capsys):
    runs, benches, stats = grid
    listing = tmp_path / "runs.txt"
    listing.write_text("# run\tbenchmark\n" + "".join(f"{r}\t{b or ''}\n" for r, b in zip(runs, benches)))
    assert read_runs_list(listing)[0] == [str(r) for r in runs]
    out = tmp_path / "agg_cli"
    assert main(["aggregate", "--runs-list", str(listing), "--stats", str(stats[0]), "--out", str(out)]) == 0
    assert "runs.csv" in capsys.readouterr().out
    costs = pd.read_csv(out / "costs.csv")
    assert costs["seconds"].notna().sum() == len(runs) - 1
    summary = pd.read_csv(out / "summary.csv")
    assert {"mean", "std", "n", "n_pairs", "diff_mean", "rel_improvement", "p_ttest", "p_wilcoxon"} <= set(
        summary.columns
    )
    (runs[0] / "metrics.json").unlink()
    assert main(["aggregate", "--runs", str(runs[0]), "--out", str(out)]) == 2
    assert "metrics.json" in capsys.readouterr().err
    assert main(["aggregate", "--out", str(out)]) == 2


def _csvs(folder: Path) -> dict[str, str]:
    return {name: (folder / f"{name}.csv").read_text() for name in ("runs", "summary", "costs", "diagnostics", "stats")}


def test_merging_earlier_aggregates_equals_aggregating_every_run_at_once(grid, tmp_path):
    """Runs aggregated in two parts (the second merging the first) give the same five files, byte for byte, as
    all runs at once; merging a folder with no new runs reproduces it; --merge DIR may be --out itself."""
    runs, benches, stats = grid
    aggregate(runs, tmp_path / "all", benchmarks=benches, stats=stats)
    aggregate(runs[:5], tmp_path / "part", benchmarks=benches[:5])  # no stats: they come with the second part
    aggregate(runs[5:], tmp_path / "merged", benchmarks=benches[5:], stats=stats, merge=[tmp_path / "part"])
    assert _csvs(tmp_path / "merged") == _csvs(tmp_path / "all")
    assert main(["aggregate", "--merge", str(tmp_path / "merged"), "--out", str(tmp_path / "merged")]) == 0
    assert _csvs(tmp_path / "merged") == _csvs(tmp_path / "all")
    # the summary really pools both parts: the baseline cell has all five seeds
    summary = pd.read_csv(tmp_path / "merged" / "summary.csv")
    base = summary[(summary["method"] == "baseline") & (summary["backbone"] == "sasrec")]
    assert set(base["n"]) == {5}


def test_a_new_run_replaces_its_namesake_in_a_merged_aggregate(grid, tmp_path):
    runs, benches, _ = grid
    aggregate(runs, tmp_path / "old", benchmarks=benches)
    rerun, rb = fake_run(tmp_path / "rerun", "sasrec-baseline-0", seed=0, epochs=7, bench_seconds=99.0)
    tables = aggregate([rerun], tmp_path / "new", benchmarks=[rb], merge=[tmp_path / "old"])
    costs = tables["costs"]
    mine = costs[(costs["method"] == "baseline") & (costs["seed"] == 0)]
    assert len(mine) == 1 and mine["epochs"].item() == 7 and mine["seconds"].item() == 99.0
    assert len(costs) == len(runs)
    diag = tables["diagnostics"]
    assert len(diag[(diag["method"] == "baseline") & (diag["seed"] == 0)]) == 7
    assert len(tables["runs"]) == len(pd.read_csv(tmp_path / "old" / "runs.csv"))


def test_merge_errors_name_the_folder(grid, tmp_path, capsys):
    from tplib.data.dataset import DataError

    runs, benches, _ = grid
    aggregate(runs[:3], tmp_path / "a")
    aggregate(runs[2:4], tmp_path / "b")  # runs[2] is in both
    with pytest.raises(DataError, match="both hold the run"):
        aggregate([], tmp_path / "out", merge=[tmp_path / "a", tmp_path / "b"])
    aggregate([runs[2]], tmp_path / "out", merge=[tmp_path / "a", tmp_path / "b"])  # unless it is a new run
    (tmp_path / "empty").mkdir()
    assert main(["aggregate", "--merge", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert f"{tmp_path / 'empty' / 'runs.csv'}: not found" in capsys.readouterr().err
    (tmp_path / "a" / "costs.csv").write_text("seconds\n1\n")
    with pytest.raises(DataError, match=r"costs.csv: lacks the column\(s\) dataset"):
        aggregate([], tmp_path / "out", merge=[tmp_path / "a"])


def test_an_aggregate_from_before_the_resumes_column_merges_with_it_blank(grid, tmp_path):
    """Costs written before `resumes` existed: merged, their rows leave it empty (unknown), new rows keep a count."""
    runs, benches, _ = grid
    aggregate(runs[:5], tmp_path / "old", benchmarks=benches[:5])
    old = pd.read_csv(tmp_path / "old" / "costs.csv").drop(columns="resumes")
    old.to_csv(tmp_path / "old" / "costs.csv", index=False)
    aggregate(runs[5:], tmp_path / "new", benchmarks=benches[5:], merge=[tmp_path / "old"])
    col = [line.split(",")[-4] for line in (tmp_path / "new" / "costs.csv").read_text().splitlines()[1:]]
    assert sorted(set(col)) == ["", "0"], col  # not "0.0"


def test_merge_runs_script_finds_finished_runs_and_merges_into_its_output(tmp_path):
    """results/merge_runs.sh (the studies' aggregate.sh call it): finished runs under the given folders, a
    workflow run with its benchmark file, a study's run without; an unfinished run skipped; the dataset's stats;
    then a later call adds its new run to the tables the first one wrote, and a call with nothing new keeps them."""
    import os
    import subprocess
    import sys

    def evaluated_after_training(run: Path, yes: bool = True) -> None:  # fake_run writes metrics.json first
        t = (run / "train_summary.json").stat().st_mtime
        os.utime(run / ("metrics.json" if yes else "train_summary.json"), (t + 10, t + 10))

    res = tmp_path / "results"
    study, _ = fake_run(res / "study" / "runs" / "mt-sample" / "sasrec", "baseline/seed0", seed=0)
    wf, _ = fake_run(res / "runs" / "mt-sample" / "sasrec", "baseline/seed1", seed=1, bench_seconds=None)
    bench = res / "benchmarks" / "train" / "mt-sample" / "sasrec" / "baseline" / "seed1.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text(BENCH_HEADER + "42.0\t0:00:42\t321.5\t900.1\t1\t1\t0\t0\t50.0\t41.0\n")
    unfinished, _ = fake_run(res / "study" / "runs" / "mt-sample" / "sasrec", "tp/k2_lam0.1/seed0", method="tp")
    for run in (study, wf):
        evaluated_after_training(run)
    evaluated_after_training(unfinished, False)  # trained again after its evaluation: not finished
    stats = res / "data" / "mt-sample" / "stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text(json.dumps({"dataset": "mt-sample", "users": 450, "items": 641, "reader_options": {}}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = Path(__file__).resolve().parents[1] / "results" / "merge_runs.sh"

    def merge(*dirs: str) -> None:
        out = subprocess.run(["bash", str(script), "results/agg", *dirs], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr

    merge("results/study/runs", "results/runs")
    costs = pd.read_csv(res / "agg" / "costs.csv").set_index("seed")
    assert sorted(costs.index) == [0, 1] and set(costs["method"]) == {"baseline"}
    assert costs.loc[1, "seconds"] == 42.0 and str(wf).endswith(costs.loc[1, "run"])
    assert math.isnan(costs.loc[0, "seconds"])  # a study's run has no Snakemake benchmark
    assert pd.read_csv(res / "agg" / "stats.csv")["dataset"].tolist() == ["mt-sample"]

    evaluated_after_training(unfinished)  # evaluated after its training now: finished
    merge("results/study/runs/mt-sample/sasrec/tp")  # only the new run's folder: the first two come from agg
    costs = pd.read_csv(res / "agg" / "costs.csv")
    assert sorted(zip(costs["method"], costs["seed"])) == [("baseline", 0), ("baseline", 1), ("tp", 0)]
    before = _csvs(res / "agg")
    merge("results/nothing-here")
    assert _csvs(res / "agg") == before
