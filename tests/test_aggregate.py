"""tplib.aggregate on fake run folders written in the exact format of the workflow's `tp train` / `tp evaluate`
(config.json, run.json, train_summary.json, train_log.csv, metrics.json, ranks.csv.gz, benchmark.tsv): the tidy
table and its columns, per-cell summaries checked by hand, the paired tests against scipy (never across studies
or protocols), varied settings, costs, diagnostics, the runs' and the declared cells' settings (configs.jsonl),
the CLI."""

from __future__ import annotations

import gzip
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tplib.aggregate import aggregate, paired_test, read_runs_list, summarise
from tplib.cli import main
from tplib.config import build_config, parse_sets
from tplib.evaluate import metrics_by_group
from tplib.io import DataError
from tplib.run_configs import CONFIG_FIELDS, CONFIGS
from tplib.runs import load_run, tidy_metrics, varied_settings

NS = (1, 5, 10, 15, 20)
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
PROTOCOL = {"eval_every": 5, "patience": 10, "max_epochs": 200, "min_epochs": 0}
SHORT = {"eval_every": 1, "patience": 3, "max_epochs": 20, "min_epochs": 2}
KEY_COLUMNS = ["study", "dataset", "backbone", "variant", "method", "seed", "eval_every", "patience", "max_epochs",
               "min_epochs", "k", "lam", "alpha", "beta", "P"]
METRIC_COLUMNS = ["group", "subset", "metric", "N"]
TABLE_NAMES = ("runs", "summary", "costs", "diagnostics", "stats")


def fake_run(
    root: Path,
    *,
    study: str = "s",
    variant: str | None = None,
    method: str = "baseline",
    dataset: str = "mt-sample",
    backbone: str = "sasrec",
    seed: int = 0,
    sets: dict | None = None,
    protocol: dict | None = None,
    epochs: int = 3,
    bench_seconds: float | None = 12.5,
    resumed_at: tuple[int, ...] = (),
    label: bool | dict = True,
    folder: str | None = None,
) -> Path:
    """A finished, evaluated run folder as the workflow leaves it: config.json (the study's protocol and the
    variant's ``sets``), run.json (its study and variant; ``label=False``: none, as a run made by hand; a dict:
    that content), train_summary.json, train_log.csv, metrics.json and ranks.csv.gz (ranks drawn from a generator
    seeded by the run's keys), and its training job's benchmark.tsv (unless ``bench_seconds`` is None)."""
    variant = variant or method
    sets = dict(sets or {})
    if method == "tp":
        sets = {"tp.k": 2, "tp.lam": 0.1, **sets}
    proto = {**PROTOCOL, **(protocol or {})}
    run = root / (folder or f"{study or '_'}/{dataset}/{backbone}/{variant}/seed{seed}")
    run.mkdir(parents=True)
    pairs = [f"train.{k}={v}" for k, v in proto.items()] + [f"{k}={v}" for k, v in sets.items()]
    cfg = build_config(backbone, method, seed, dataset, parse_sets(pairs))
    (run / "config.json").write_text(cfg.to_json() + "\n")
    if label is not False:
        content = {"study": study, "variant": variant} if label is True else label
        (run / "run.json").write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    rng = np.random.default_rng(zlib.crc32(repr((study, dataset, backbone, variant, seed, sorted(sets.items()),
                                                 sorted(proto.items()))).encode()))
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
    (run / "ranks.csv.gz").write_bytes(gzip.compress(ranks.to_csv(index=False).encode(), mtime=0))
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
    if bench_seconds is not None:
        (run / "benchmark.tsv").write_text(
            BENCH_HEADER + f"{bench_seconds}\t0:00:12\t321.5\t900.1\t1\t1\t0\t0\t50.0\t11.9\n")
    return run


def _metric(run: Path, group: str, subset: str, name: str) -> float:
    return json.loads((run / "metrics.json").read_text())[group][subset][name]


def _metric_keys():
    return [(g, s, m, n) for g in ("existing", "new") for s in ("all", "head", "tail") for m in ("HR", "NDCG")
            for n in NS]


def _row(df: pd.DataFrame, **keys) -> pd.DataFrame:
    sel = np.ones(len(df), dtype=bool)
    for k, v in keys.items():
        sel &= (df[k] == v).to_numpy()
    return df[sel]


def _pairs_by_hand(treated: dict[int, Path], control: dict[int, Path]) -> dict[tuple, tuple]:
    """(group, subset, metric, N) -> (n_pairs, base_mean, diff_mean) of ``treated`` against ``control`` (seed ->
    run folder) over the seeds both have, from their metrics.json files."""
    seeds = sorted(set(treated) & set(control))
    out = {}
    for g, s, m, n in _metric_keys():
        t = [_metric(treated[i], g, s, f"{m}@{n}") for i in seeds]
        c = [_metric(control[i], g, s, f"{m}@{n}") for i in seeds]
        out[(g, s, m, n)] = (len(seeds), float(np.mean(c)), float(np.mean(np.subtract(t, c))))
    return out


def _assert_pairs(summary: pd.DataFrame, treated: dict[int, Path], control: dict[int, Path], **cell) -> None:
    """Every metric row of the TP cell ``cell`` carries the paired comparison with exactly ``control``."""
    for (g, s, m, n), (n_pairs, base_mean, diff_mean) in _pairs_by_hand(treated, control).items():
        row = _row(summary, **cell, group=g, subset=s, metric=m, N=n)
        assert len(row) == 1, (cell, g, s, m, n)
        assert row["n_pairs"].item() == n_pairs, (cell, g, s, m, n)
        assert row["base_mean"].item() == pytest.approx(base_mean), (cell, g, s, m, n)
        assert row["diff_mean"].item() == pytest.approx(diff_mean), (cell, g, s, m, n)
        assert row["n"].item() == len(treated), (cell, g, s, m, n)


def _csvs(folder: Path) -> dict[str, str]:
    """Every file aggregate writes: the five tables and configs.jsonl."""
    return {**{name: (folder / f"{name}.csv").read_text() for name in TABLE_NAMES},
            CONFIGS: (folder / CONFIGS).read_text()}


@pytest.fixture
def grid(tmp_path: Path):
    """Study s on sasrec: the baseline and TP (k 2, λ 0.1) on seeds 0-4 (runs[2 s], runs[2 s + 1]), TP k 1 on
    seed 0 only (runs[10]); study solo: one caser TP run and no baseline, under a 3-epoch cap it ran into and
    without a benchmark file (runs[11]); one stats.json."""
    runs = []
    for seed in range(5):
        runs.append(fake_run(tmp_path / "runs", seed=seed))
        runs.append(fake_run(tmp_path / "runs", method="tp", seed=seed))
    runs.append(fake_run(tmp_path / "runs", method="tp", variant="tp-k1", seed=0, sets={"tp.k": 1}))
    runs.append(fake_run(tmp_path / "runs", study="solo", backbone="caser", method="tp", bench_seconds=None,
                         protocol={"max_epochs": 3}))
    stats = tmp_path / "data" / "mt-sample" / "stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text(json.dumps({"dataset": "mt-sample", "users": 450, "items": 641, "reader_options": {}}))
    return runs, [stats]


# ---------------------------------------------------------------------------------------------------------
# The tidy table


def test_tidy_rows_and_columns(grid, tmp_path):
    runs, stats = grid
    tables = aggregate(runs, tmp_path / "agg", stats=stats)
    tidy = tables["runs"]
    assert len(tidy) == len(runs) * 2 * 3 * 2 * len(NS)
    assert list(tidy.columns) == [*KEY_COLUMNS, *METRIC_COLUMNS, "value", "users"]  # nothing varied here
    for name in TABLE_NAMES:
        assert (tmp_path / "agg" / f"{name}.csv").is_file()
    # study and variant from run.json, the rest from config.json
    assert set(zip(tidy["study"], tidy["variant"], tidy["method"], tidy["backbone"])) == {
        ("s", "baseline", "baseline", "sasrec"), ("s", "tp", "tp", "sasrec"), ("s", "tp-k1", "tp", "sasrec"),
        ("solo", "tp", "tp", "caser")}
    # baseline runs carry no TP settings; TP runs carry all five
    base = tidy[tidy["method"] == "baseline"]
    assert base[["k", "lam", "alpha", "beta", "P"]].isna().all().all()
    tp = tidy[tidy["method"] == "tp"]
    assert set(zip(tp["variant"], tp["k"].astype(int))) == {("tp", 2), ("tp-k1", 1)}
    assert set(tp["lam"]) == {0.1} and set(tp["alpha"]) == {0.1} and set(tp["beta"]) == {0.001}
    assert set(tp["P"].astype(int)) == {1}
    # the protocol, per study, from config.json
    s, solo = tidy[tidy["study"] == "s"], tidy[tidy["study"] == "solo"]
    assert set(zip(s.eval_every, s.patience, s.max_epochs, s.min_epochs)) == {(5, 10, 200, 0)}
    assert set(zip(solo.eval_every, solo.patience, solo.max_epochs, solo.min_epochs)) == {(5, 10, 3, 0)}
    # one value checked against the file
    row = _row(tidy, study="s", variant="tp", seed=3, group="new", subset="tail", metric="NDCG", N=10)
    assert len(row) == 1
    assert row["value"].item() == pytest.approx(_metric(runs[7], "new", "tail", "NDCG@10"))
    assert row["users"].item() == _metric(runs[7], "new", "tail", "users")
    # runs.csv as written: the same columns
    assert pd.read_csv(tmp_path / "agg" / "runs.csv").columns.tolist() == list(tidy.columns)


def test_a_run_without_run_json_is_its_methods_variant_in_no_study(tmp_path):
    """A run made by hand (`tp train` without --study/--variant): study "", variant = method; it pairs with the
    unlabelled baseline of its protocol, never with a study's."""
    hand = [fake_run(tmp_path, study="", method=m, seed=s, label=False, folder=f"hand/{m}{s}")
            for m in ("baseline", "tp") for s in range(3)]
    study_base = [fake_run(tmp_path, seed=s) for s in range(3)]
    half = fake_run(tmp_path, study="x", method="tp", variant="tp", seed=0, label={"study": "x"})
    tables = aggregate([*hand, *study_base, half], tmp_path / "agg")
    tidy = tables["runs"]
    assert set(zip(tidy["study"], tidy["variant"], tidy["method"])) == {
        ("", "baseline", "baseline"), ("", "tp", "tp"), ("s", "baseline", "baseline"), ("x", "tp", "tp")}
    summary = tables["summary"]
    assert (_row(summary, study="", variant="tp")["control"] == "baseline").all()
    hand_tp, hand_base, s_base = dict(enumerate(hand[3:])), dict(enumerate(hand[:3])), dict(enumerate(study_base))
    _assert_pairs(summary, hand_tp, hand_base, study="", variant="tp")
    assert _pairs_by_hand(hand_tp, s_base) != _pairs_by_hand(hand_tp, hand_base)  # so the pairing is told apart
    x = _row(summary, study="x", variant="tp")
    assert (x["n_pairs"] == 0).all() and (x["control"] == "").all()  # study x has no baseline
    # written and read back, the study stays "" (the report reads it as text)
    back = pd.read_csv(tmp_path / "agg" / "runs.csv", dtype={"study": str}, keep_default_na=False)
    assert set(back["study"]) == {"", "s", "x"}



def test_runs_made_by_hand_with_other_settings_are_other_cells(tmp_path):
    """Two TP runs without run.json (both variant "tp") at k 1 and k 2 are two cells, never one average."""
    runs = [fake_run(tmp_path, study="", method="tp", seed=s, sets={"tp.k": k}, label=False, folder=f"h/k{k}s{s}")
            for k in (1, 2) for s in (0, 1)]
    summary = aggregate(runs, tmp_path / "agg")["summary"]
    cells = _row(summary, metric="HR", N=10, group="existing", subset="all")
    assert sorted(cells["k"].tolist()) == [1, 2] and (cells["n"] == 2).all()


# ---------------------------------------------------------------------------------------------------------
# Summaries and paired tests


def test_summary_by_hand_and_paired_tests_match_scipy(grid, tmp_path):
    runs, stats = grid
    summary = aggregate(runs, tmp_path / "agg", stats=stats)["summary"]
    assert list(summary.columns) == [
        "study", "dataset", "backbone", "variant", "method", "eval_every", "patience", "max_epochs", "min_epochs",
        "k", "lam", "alpha", "beta", "P", *METRIC_COLUMNS, "mean", "std", "n", "control", "n_pairs", "base_mean",
        "diff_mean", "rel_improvement", "p_ttest", "p_wilcoxon"]
    assert len(summary) == 4 * 2 * 3 * 2 * len(NS)  # cells: s baseline, s tp, s tp-k1, solo tp
    sel = {"study": "s", "dataset": "mt-sample", "backbone": "sasrec", "group": "existing", "subset": "all",
           "metric": "HR", "N": 10}
    base_vals = [_metric(runs[2 * s], "existing", "all", "HR@10") for s in range(5)]
    tp_vals = [_metric(runs[2 * s + 1], "existing", "all", "HR@10") for s in range(5)]
    b = _row(summary, variant="baseline", **sel)
    t = _row(summary, variant="tp", **sel)
    assert len(b) == 1 and len(t) == 1
    assert b["mean"].item() == pytest.approx(sum(base_vals) / 5)
    assert b["std"].item() == pytest.approx(float(np.std(base_vals, ddof=1)))
    assert b["n"].item() == 5 and pd.isna(b["p_ttest"].item()) and pd.isna(b["n_pairs"].item())
    assert b["control"].item() == "" and t["control"].item() == "baseline"
    assert t["n"].item() == 5 and t["n_pairs"].item() == 5 and t["k"].item() == 2
    diffs = np.array(tp_vals) - np.array(base_vals)
    assert np.ptp(diffs) > 0  # the fixture's values make every test defined
    assert t["diff_mean"].item() == pytest.approx(diffs.mean())
    assert t["base_mean"].item() == pytest.approx(np.mean(base_vals))
    assert t["rel_improvement"].item() == pytest.approx(diffs.mean() / np.mean(base_vals))
    assert t["p_ttest"].item() == pytest.approx(sps.ttest_rel(tp_vals, base_vals).pvalue)
    assert t["p_wilcoxon"].item() == pytest.approx(sps.wilcoxon(tp_vals, base_vals).pvalue)
    # the k=1 variant has one seed: one pair (seed 0), no p-values
    one = _row(summary, variant="tp-k1", **sel)
    assert one["n"].item() == 1 and pd.isna(one["std"].item()) and one["k"].item() == 1
    assert one["n_pairs"].item() == 1 and one["diff_mean"].item() == pytest.approx(
        _metric(runs[10], "existing", "all", "HR@10") - base_vals[0])
    assert math.isnan(one["p_ttest"].item()) and math.isnan(one["p_wilcoxon"].item())
    # a TP cell of a study without any baseline: zero pairs, no control
    lone = summary[summary["study"] == "solo"]
    assert len(lone) == 2 * 3 * 2 * len(NS)
    assert (lone["n_pairs"] == 0).all() and lone["p_ttest"].isna().all() and (lone["control"] == "").all()
    assert set(lone["max_epochs"]) == {3}


def test_pairs_stay_within_their_study_and_protocol(tmp_path):
    """Three studies on the same dataset, backbone and seeds: A (protocol P, seeds 0-4), B (protocol SHORT;
    baseline seeds 0-2, TP seeds 1-3) and C (baseline and TP under P, and tp-long under SHORT). Each TP cell pairs
    with its own study's baseline under its own protocol, over the seeds both have; tp-long with nothing."""
    root = tmp_path / "runs"
    a_base = {s: fake_run(root, study="A", seed=s) for s in range(5)}
    a_tp = {s: fake_run(root, study="A", method="tp", seed=s) for s in range(5)}
    b_base = {s: fake_run(root, study="B", seed=s, protocol=SHORT) for s in range(3)}
    b_tp = {s: fake_run(root, study="B", method="tp", seed=s, protocol=SHORT) for s in (1, 2, 3)}
    c_base = {s: fake_run(root, study="C", seed=s) for s in range(3)}
    c_tp = {s: fake_run(root, study="C", method="tp", seed=s) for s in (0, 1)}
    c_long = {s: fake_run(root, study="C", method="tp", variant="tp-long", seed=s, protocol=SHORT) for s in range(3)}
    every = [*a_base.values(), *a_tp.values(), *b_base.values(), *b_tp.values(), *c_base.values(),
             *c_tp.values(), *c_long.values()]
    summary = aggregate(every, tmp_path / "agg")["summary"]
    _assert_pairs(summary, a_tp, a_base, study="A", variant="tp")  # 5 pairs
    _assert_pairs(summary, b_tp, b_base, study="B", variant="tp")  # seeds 1 and 2
    _assert_pairs(summary, c_tp, c_base, study="C", variant="tp")  # seeds 0 and 1
    # the other studies' baselines would give other numbers: the checks above tell the pairings apart
    assert _pairs_by_hand(b_tp, a_base) != _pairs_by_hand(b_tp, b_base)
    assert _pairs_by_hand(c_tp, a_base) != _pairs_by_hand(c_tp, c_base)
    # the p-values of one row, against scipy
    row = _row(summary, study="A", variant="tp", group="existing", subset="all", metric="HR", N=10)
    t = [_metric(a_tp[i], "existing", "all", "HR@10") for i in range(5)]
    c = [_metric(a_base[i], "existing", "all", "HR@10") for i in range(5)]
    assert row["p_ttest"].item() == pytest.approx(sps.ttest_rel(t, c).pvalue)
    assert row["p_wilcoxon"].item() == pytest.approx(sps.wilcoxon(t, c).pvalue)
    # another protocol in the same study: no pairs, though the study has a baseline on the same seeds
    long = summary[summary["variant"] == "tp-long"]
    assert len(long) == len(_metric_keys()) and (long["n_pairs"] == 0).all() and long["diff_mean"].isna().all()
    assert (long["control"] == "baseline").all() and set(long["n"]) == {3}
    assert set(zip(long.eval_every, long.patience, long.max_epochs, long.min_epochs)) == {(1, 3, 20, 2)}
    b = summary[summary["study"] == "B"]
    assert set(zip(b.eval_every, b.patience, b.max_epochs, b.min_epochs)) == {(1, 3, 20, 2)}


def test_the_control_is_the_studys_baseline_variant(tmp_path):
    """The variant named "baseline", else the study's only baseline-method variant; with two and neither named
    so, no control (and no pairs)."""
    root = tmp_path / "runs"
    runs = [fake_run(root, study="p", variant="plain", seed=s) for s in (0, 1)]
    runs += [fake_run(root, study="p", method="tp", seed=s) for s in (0, 1)]
    runs += [fake_run(root, study="q", variant=v, seed=s) for v in ("b1", "b2") for s in (0, 1)]
    runs += [fake_run(root, study="q", method="tp", seed=s) for s in (0, 1)]
    runs += [fake_run(root, study="r", variant=v, seed=s, sets=sets) for v, sets in
             (("baseline", {}), ("b-wide", {"model.d": 64})) for s in (0, 1)]
    runs += [fake_run(root, study="r", method="tp", seed=s) for s in (0, 1)]
    summary = aggregate(runs, tmp_path / "agg")["summary"]
    tp = summary[summary["method"] == "tp"]
    assert dict(zip(tp["study"], tp["control"])) == {"p": "plain", "q": "", "r": "baseline"}
    _assert_pairs(summary, dict(enumerate(runs[2:4])), dict(enumerate(runs[0:2])), study="p", variant="tp")
    q = _row(summary, study="q", variant="tp")
    assert (q["n_pairs"] == 0).all() and q["diff_mean"].isna().all()
    r_tp, r_base, r_wide = (dict(enumerate(runs[i:i + 2])) for i in (14, 10, 12))
    _assert_pairs(summary, r_tp, r_base, study="r", variant="tp")  # r's "baseline", not b-wide
    assert _pairs_by_hand(r_tp, r_wide) != _pairs_by_hand(r_tp, r_base)
    assert (summary.loc[summary["method"] == "baseline", "control"] == "").all()


def test_a_variant_named_against_another_is_paired_with_it(tmp_path):
    """A study's controls: TP without alignment declares `against: tp`, so its paired test is against TP seed by
    seed (not the baseline); TP itself is still paired with the baseline, and an undeclared variant too."""
    root = tmp_path / "runs"
    base = {s: fake_run(root, study="c", seed=s) for s in (0, 1, 2)}
    tp = {s: fake_run(root, study="c", method="tp", seed=s) for s in (0, 1, 2)}
    no_align = {s: fake_run(root, study="c", method="tp", variant="tp-noalign", seed=s, sets={"tp.align": False})
                for s in (0, 1)}
    no_adv = {s: fake_run(root, study="c", method="tp", variant="tp-lam0", seed=s, sets={"tp.lam": 0})
              for s in (0, 1, 2)}
    studies = {"studies": {"c": {"variants": {"baseline": {"method": "baseline"}, "tp": {"method": "tp"},
                                              "tp-noalign": {"method": "tp", "against": "tp"},
                                              "tp-lam0": {"method": "tp"}}}}}
    runs = [*base.values(), *tp.values(), *no_align.values(), *no_adv.values()]
    summary = aggregate(runs, tmp_path / "agg", studies=studies)["summary"]
    controls = summary.drop_duplicates("variant").set_index("variant")["control"]
    assert controls.to_dict() == {"baseline": "", "tp": "baseline", "tp-noalign": "tp", "tp-lam0": "baseline"}
    _assert_pairs(summary, no_align, {s: tp[s] for s in (0, 1)}, study="c", variant="tp-noalign")  # 2 seeds
    _assert_pairs(summary, tp, base, study="c", variant="tp")
    _assert_pairs(summary, no_adv, base, study="c", variant="tp-lam0")
    assert _pairs_by_hand(no_align, tp) != _pairs_by_hand(no_align, base)  # so the pairing is told apart


def test_a_setting_a_study_varies_becomes_a_column(tmp_path):
    """model.d differs between variants of study dims on sasrec: a `model.d` column. Settings that differ only
    across backbones (caser's batch size, weight decay, Adam β2), only across studies (study other's model.d) or
    only in where a run ran (device, threads) are no columns; tp.alpha is TP's own `alpha` column."""
    root = tmp_path / "runs"
    runs = [fake_run(root, study="dims", seed=s) for s in (0, 1)]
    runs += [fake_run(root, study="dims", method="tp", seed=0),
             fake_run(root, study="dims", method="tp", seed=1, sets={"train.device": "cuda", "train.threads": 2})]
    runs += [fake_run(root, study="dims", method="tp", variant="tp-d32", seed=s, sets={"model.d": 32}) for s in (0, 1)]
    runs += [fake_run(root, study="dims", method="tp", variant="tp-alpha", seed=s, sets={"tp.alpha": 0.01})
             for s in (0, 1)]
    runs += [fake_run(root, study="dims", backbone="caser", method=m, seed=0) for m in ("baseline", "tp")]
    runs += [fake_run(root, study="other", method=m, seed=0, sets={"model.d": 16}) for m in ("baseline", "tp")]
    assert varied_settings([load_run(r) for r in runs]) == ["model.d"]
    assert varied_settings([load_run(r) for r in runs if "tp-d32" not in str(r)]) == []
    tables = aggregate(runs, tmp_path / "agg")
    tidy = tables["runs"]
    assert list(tidy.columns) == [*KEY_COLUMNS, "model.d", *METRIC_COLUMNS, "value", "users"]
    d = tidy.drop_duplicates(["study", "backbone", "variant", "seed"]).set_index(
        ["study", "backbone", "variant", "seed"])["model.d"]
    assert d[("dims", "sasrec", "tp-d32", 0)] == 32 and d[("dims", "sasrec", "tp", 1)] == 50
    assert d[("dims", "caser", "tp", 0)] == 50 and d[("other", "sasrec", "baseline", 0)] == 16
    alpha = tidy.drop_duplicates("variant").set_index("variant")["alpha"]
    assert alpha["tp-alpha"] == 0.01 and alpha["tp"] == 0.1 and math.isnan(alpha["baseline"])
    summary = tables["summary"]
    assert list(summary.columns[:16]) == [*KEY_COLUMNS[:5], *KEY_COLUMNS[6:], "model.d", "group"]
    s = _row(summary, study="dims", backbone="sasrec", variant="tp-d32", group="existing", subset="all",
             metric="HR", N=10)
    assert s["model.d"].item() == 32 and s["n_pairs"].item() == 2  # paired with the baseline (model.d 50)
    assert pd.read_csv(tmp_path / "agg" / "summary.csv")["model.d"].notna().all()


def test_paired_test_edge_cases():
    a, b = [0.2, 0.3, 0.25, 0.4], [0.1, 0.35, 0.2, 0.3]
    r = paired_test(a, b)
    assert r["n_pairs"] == 4
    assert r["base_mean"] == pytest.approx(0.2375) and r["diff_mean"] == pytest.approx(0.05)
    assert r["rel_improvement"] == pytest.approx(0.05 / 0.2375)
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
    empty = summarise(pd.DataFrame(columns=[*KEY_COLUMNS, *METRIC_COLUMNS, "value", "users"]))
    assert empty.empty and {"mean", "control", "n_pairs", "p_wilcoxon"} <= set(empty.columns)
    ranks = pd.DataFrame(
        {"user": [0, 1, 2], "user_id": ["a", "b", "c"], "group": ["existing", "existing", "new"],
         "head": [True, False, True], "rank": [1, 3, 12]}
    )
    keys = {"study": "s", "dataset": "d", "backbone": "gru4rec", "variant": "baseline", "method": "baseline",
            "seed": 0, "k": math.nan, "lam": math.nan}
    tidy = tidy_metrics(metrics_by_group(ranks, (1, 10)), keys)
    assert list(tidy.columns) == [*keys, *METRIC_COLUMNS, "value", "users"]
    assert len(tidy) == 2 * 3 * 2 * 2
    hr1 = _row(tidy, group="existing", subset="all", metric="HR", N=1)
    assert hr1["value"].item() == pytest.approx(0.5) and hr1["users"].item() == 2
    hr10_new = _row(tidy, group="new", subset="all", metric="HR", N=10)
    assert hr10_new["value"].item() == 0.0 and hr10_new["users"].item() == 1  # rank 12 is past 10
    ndcg = _row(tidy, group="existing", subset="tail", metric="NDCG", N=10)  # user b, rank 3: 1 / log2(4)
    assert ndcg["value"].item() == pytest.approx(0.5) and ndcg["users"].item() == 1


def test_the_summary_of_runs_csv_read_back_is_the_summary(grid, tmp_path):
    """The report re-summarises runs.csv as read from disk: it must give the summary written beside it."""
    runs, _ = grid
    aggregate(runs, tmp_path / "agg")
    back = summarise(pd.read_csv(tmp_path / "agg" / "runs.csv", dtype={"study": str, "variant": str}))
    assert back.to_csv(index=False) == (tmp_path / "agg" / "summary.csv").read_text()


# ---------------------------------------------------------------------------------------------------------
# Costs, diagnostics, stats


def test_costs_diagnostics_stats(grid, tmp_path):
    runs, stats = grid
    t = aggregate(runs, tmp_path / "agg", stats=stats)  # benchmarks: each folder's benchmark.tsv
    costs = t["costs"]
    assert len(costs) == len(runs) and list(costs.columns[:15]) == KEY_COLUMNS
    c = _row(costs, study="s", variant="tp", seed=0)
    assert c["seconds"].item() == pytest.approx(12.5)
    assert c["max_rss_mb"].item() == pytest.approx(321.5) and c["cpu_seconds"].item() == pytest.approx(11.9)
    assert c["epochs"].item() == 3 and c["best_epoch"].item() == 2 and c["s_per_epoch"].item() == 0.5
    assert c["device"].item() == "cpu" and c["run"].item() == str(runs[1])
    # the stopping rule, from config.json: 3 epochs of at most 200 stopped early; solo's 3 of 3 hit the cap
    assert c["max_epochs"].item() == 200 and c["eval_every"].item() == 5 and c["patience"].item() == 10
    assert not c["capped"].item()
    solo = costs[costs["study"] == "solo"]
    assert solo["capped"].item() and math.isnan(solo["seconds"].item())  # no benchmark: NaN, not an error
    assert (costs["resumes"] == 0).all()
    assert list(zip(costs["study"], costs["variant"], costs["seed"]))[:3] == [
        ("s", "baseline", 0), ("s", "baseline", 1), ("s", "baseline", 2)]  # sorted by the run's identity
    diag = t["diagnostics"]
    assert len(diag) == 3 * len(runs) and set(diag["method"]) == {"baseline", "tp"}  # every run's log
    assert list(diag.columns[:7]) == ["study", "dataset", "backbone", "variant", "method", "seed", "epoch"]
    assert {"loss", "adv_loss", "disc_acc", "diag_cos_ht"} <= set(diag.columns)
    assert diag.loc[diag["method"] == "baseline", "adv_loss"].isna().all()  # TP's columns: TP's runs only
    assert set(_row(diag, variant="tp-k1")["epoch"]) == {1, 2, 3}
    st = t["stats"]
    assert list(st["dataset"]) == ["mt-sample"] and st["reader_options"].item() == "{}"


def test_benchmarks_given_explicitly_replace_the_folders(tmp_path):
    a = fake_run(tmp_path / "runs", seed=0, bench_seconds=12.5)
    b = fake_run(tmp_path / "runs", seed=1, bench_seconds=None)
    other = tmp_path / "elsewhere.tsv"
    other.write_text(BENCH_HEADER + "99.0\t0:01:39\t10.0\t900.1\t1\t1\t0\t0\t50.0\t98.0\n")
    costs = aggregate([a, b], tmp_path / "agg", benchmarks=[None, other])["costs"].set_index("seed")
    assert costs.loc[0, "seconds"] == 12.5 and costs.loc[1, "seconds"] == 99.0 and costs.loc[1, "max_rss_mb"] == 10.0
    costs = aggregate([a, b], tmp_path / "agg", benchmarks=[other, None])["costs"].set_index("seed")
    assert costs.loc[0, "seconds"] == 99.0 and math.isnan(costs.loc[1, "seconds"])


def test_a_resumed_run_costs_its_own_wall_time(tmp_path):
    """Its benchmark file times the last part only: the cost is the run's wall time over all its parts."""
    run = fake_run(tmp_path / "runs", epochs=4, bench_seconds=2.0, resumed_at=(2,))
    costs = aggregate([run], tmp_path / "agg")["costs"]
    assert costs["seconds"].item() == pytest.approx(6.0) and costs["resumes"].item() == 1
    assert costs["wall_seconds"].item() == pytest.approx(6.0) and costs["cpu_seconds"].item() == pytest.approx(11.9)


# ---------------------------------------------------------------------------------------------------------
# Errors, the CLI, determinism


def test_duplicate_and_unfinished_runs(grid, tmp_path):
    runs, _ = grid
    with pytest.raises(DataError, match="same run"):
        aggregate([runs[0], runs[0]], tmp_path / "agg")
    # the same (study, dataset, backbone, variant, seed) in another folder, even under another protocol
    twin = fake_run(tmp_path / "copy", seed=0, protocol=SHORT)
    with pytest.raises(DataError, match="same run") as e:
        aggregate([runs[0], twin], tmp_path / "agg")
    assert str(twin) in str(e.value) and str(runs[0]) in str(e.value)
    assert not (tmp_path / "agg").exists()  # nothing written
    # the same cell and seed in another study is another run
    elsewhere = fake_run(tmp_path / "copy", study="s2", seed=0)
    assert len(aggregate([runs[0], elsewhere], tmp_path / "agg")["costs"]) == 2
    (runs[1] / "metrics.json").unlink()
    with pytest.raises(DataError, match="metrics.json"):
        aggregate(runs[:2], tmp_path / "agg")
    with pytest.raises(DataError, match="benchmark"):
        aggregate(runs[:1], tmp_path / "agg", benchmarks=[])
    (runs[2] / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="run.json: not valid JSON"):
        aggregate([runs[2]], tmp_path / "agg")


def _configs(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / CONFIGS).read_text().splitlines()]


def test_configs_jsonl_holds_each_runs_recorded_config_and_each_declared_cells(grid, tmp_path):
    """configs.jsonl: one line per run with its config.json as recorded; given the studies as configured, also one
    line per declared cell with the config the workflow builds for its runs (or the error that says why it builds
    none); a cell's declared line first, then its runs by seed."""
    runs, stats = grid
    aggregate(runs, tmp_path / "plain", stats=stats)
    rows = _configs(tmp_path / "plain")
    assert all(list(r) == CONFIG_FIELDS for r in rows)
    assert len(rows) == len(runs) and {r["source"] for r in rows} == {"run"}
    by_folder = {(r["study"], r["variant"], r["seed"]): r for r in rows}
    for run in runs:
        label = json.loads((run / "run.json").read_text())
        recorded = json.loads((run / "config.json").read_text())
        row = by_folder[(label["study"], label["variant"], recorded["seed"])]
        assert row["config"] == recorded and row["error"] is None
        assert (row["dataset"], row["backbone"], row["method"]) == (recorded["dataset"], recorded["backbone"],
                                                                    recorded["method"])
    studies = {
        "studies": {
            "s": {"cells": {"mt-sample": ["sasrec", "caser"]}, "seeds": [0, 1, 2, 3, 4], "protocol": dict(PROTOCOL),
                  "variants": {"baseline": {"method": "baseline"},
                               "tp": {"method": "tp", "set": {"tp.k": 2, "tp.lam": 0.1}},
                               "tp-k1": {"method": "tp", "set": {"tp.k": 1, "tp.lam": 0.1}}}},
            "bad": {"cells": {"mt-sample": ["sasrec"]}, "seeds": [3], "protocol": dict(PROTOCOL),
                    "variants": {"d0": {"method": "baseline", "set": {"model.d": 0}}}},
        },
        "overrides": {"all": {}, "datasets": {}, "backbones": {}, "methods": {}},
    }
    aggregate(runs, tmp_path / "agg", stats=stats, studies=studies)
    rows = _configs(tmp_path / "agg")
    declared = [r for r in rows if r["source"] == "declared"]
    assert [(r["study"], r["backbone"], r["variant"]) for r in declared] == [
        ("bad", "sasrec", "d0"), *[("s", bb, v) for bb in ("caser", "sasrec") for v in ("baseline", "tp", "tp-k1")]]
    assert all(r["seed"] is None for r in declared)
    # the declared config of a cell is the one its runs recorded (built at the study's first seed)
    for r in declared[1:]:
        runs_of = [x for x in rows if x["source"] == "run" and x["study"] == "s" and x["backbone"] == r["backbone"]
                   and x["variant"] == r["variant"]]
        assert all(x["config"] == r["config"] for x in runs_of if x["seed"] == 0)
    assert declared[0]["config"] is None and "model.d must be > 0" in declared[0]["error"]
    # a cell's declared line, then its runs by seed
    tp = [(r["source"], r["seed"]) for r in rows if (r["study"], r["backbone"], r["variant"]) == ("s", "sasrec", "tp")]
    assert tp == [("declared", None), *[("run", s) for s in range(5)]]


def test_a_study_from_a_search_is_declared_with_the_searchs_settings_once_they_are_there(tmp_path, monkeypatch):
    """A study with ``tuned_from``: a cell whose search has finished is declared with its best settings (read where
    the workflow reads them); a cell whose search has not has no config yet, and says so."""
    monkeypatch.chdir(tmp_path)
    studies = {
        "studies": {"t": {"cells": {"mt-sample": ["sasrec", "caser"]}, "seeds": [1], "protocol": dict(PROTOCOL),
                          "variants": {"tp": {"method": "tp", "set": {"tp.k": 2}}}, "tuned_from": "srch"}},
        "overrides": {"all": {}, "datasets": {}, "backbones": {}, "methods": {}},
    }
    best = tmp_path / "results" / "tuning" / "srch" / "mt-sample" / "sasrec" / "tp" / "best.json"
    best.parent.mkdir(parents=True)
    best.write_text(json.dumps({"sets": ["tp.alpha=0.05", "model.d=32"]}))
    aggregate([], tmp_path / "agg", studies=studies)
    rows = {r["backbone"]: r for r in _configs(tmp_path / "agg")}
    assert rows["sasrec"]["config"]["tp"]["alpha"] == 0.05 and rows["sasrec"]["config"]["model"]["d"] == 32
    assert rows["sasrec"]["config"]["seed"] == 1 and rows["sasrec"]["error"] is None
    assert rows["caser"]["config"] is None and "search srch has no best settings" in rows["caser"]["error"]


def test_cli_runs_list(grid, tmp_path, capsys):
    runs, stats = grid
    listing = tmp_path / "runs.txt"
    # the benchmark column may name another file; empty: the folder's own benchmark.tsv
    other = tmp_path / "b.tsv"
    other.write_text(BENCH_HEADER + "42.0\t0:00:42\t321.5\t900.1\t1\t1\t0\t0\t50.0\t41.0\n")
    lines = [f"{r}\t{other if i == 0 else ''}\n" for i, r in enumerate(runs)]
    listing.write_text("# run\tbenchmark\n\n" + "".join(lines))
    listed, benches = read_runs_list(listing)
    assert listed == [str(r) for r in runs] and benches == [str(other)] + [None] * (len(runs) - 1)
    out = tmp_path / "agg_cli"
    assert main(["aggregate", "--runs-list", str(listing), "--stats", str(stats[0]), "--out", str(out)]) == 0
    assert f"runs.csv: {len(runs) * 60} rows" in capsys.readouterr().out
    costs = pd.read_csv(out / "costs.csv")
    assert costs["seconds"].notna().sum() == len(runs) - 1  # solo has no benchmark
    assert sorted(costs["seconds"].dropna().unique()) == [12.5, 42.0]
    summary = pd.read_csv(out / "summary.csv")
    assert {"mean", "std", "n", "control", "n_pairs", "diff_mean", "rel_improvement", "p_ttest",
            "p_wilcoxon"} <= set(summary.columns)
    assert main(["aggregate", "--runs", *map(str, runs[:2]), "--out", str(tmp_path / "two")]) == 0
    assert len(pd.read_csv(tmp_path / "two" / "costs.csv")) == 2
    (runs[0] / "metrics.json").unlink()
    capsys.readouterr()
    assert main(["aggregate", "--runs", str(runs[0]), "--out", str(out)]) == 2
    assert "metrics.json" in capsys.readouterr().err
    assert main(["aggregate", "--out", str(out)]) == 2
    assert "no runs given" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # --merge is gone: every aggregate reads its runs
        main(["aggregate", "--merge", str(out), "--out", str(out)])
    assert e.value.code == 2


def test_the_tables_do_not_depend_on_the_order_of_the_runs(grid, tmp_path):
    runs, stats = grid
    extra = [fake_run(tmp_path / "more", method="tp", variant="tp-d32", seed=s, sets={"model.d": 32})
             for s in (0, 1)]
    aggregate([*runs, *extra], tmp_path / "a", stats=stats)
    aggregate([*extra, *runs][::-1], tmp_path / "b", stats=stats)
    assert _csvs(tmp_path / "a") == _csvs(tmp_path / "b")
    assert "model.d" in (tmp_path / "a" / "runs.csv").read_text().splitlines()[0].split(",")
    aggregate([*runs, *extra], tmp_path / "a", stats=stats)  # again, over the first: the same bytes
    assert _csvs(tmp_path / "a") == _csvs(tmp_path / "b")
