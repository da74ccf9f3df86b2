"""Print the README's result tables (markdown) from the committed aggregate, so that every number there can be
regenerated from results/aggregate/summary.csv and the paper's Table 3.

    python results/readme_tables.py comparison ml1m caser     # baseline vs TP (k 2, λ 0.1), paper beside
    python results/readme_tables.py grid music                # the same, every backbone, all users only
    python results/readme_tables.py ablation movietweetings gru4rec   # Figures 6-7: k at λ 0.1, λ at k 2
    python results/readme_tables.py variant movietweetings sasrec --aggregate results/stopping/aggregate
                                                              # a comparison with no paper columns (a variant's runs)
    python results/readme_tables.py schedule music            # TP to early stopping (results/schedule) vs baseline

Mean ± std over the seeds of each cell (ddof 1); TP vs baseline is the relative difference of the paired means and
p the paired t-test over the seeds both have (summary.csv's rel_improvement and p_ttest). An ablation point is
summarised over the seeds its row shares with every other point of the row that was run (as the report's Figures
6-7), and the table says which seeds those are.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from tplib.aggregate import paired_test
from tplib.report.paper import BACKBONE_LABEL, paper_table3
from tplib.report.render import shared_seeds

K_GRID = (1, 2, 3, 4, 5)
LAM_GRID = (0.0, 0.01, 0.1, 1.0, 10.0)
COMPARISON_ROWS = [("existing", "all", "HR"), ("existing", "all", "NDCG"), ("existing", "head", "HR"),
                   ("existing", "tail", "HR"), ("new", "all", "HR"), ("new", "all", "NDCG")]


def _ms(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "not run"
    return f"{mean:.4f}" if n == 1 or math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "—"
    if p < 0.0001:
        return f"{p:.0e}"  # e.g. 3e-06 (four decimals would print 0.0000)
    return f"{p:.4f}" if p < 0.001 else f"{p:.3f}"


def _rel(rel: float) -> str:
    return "—" if math.isnan(rel) else f"{rel * 100:+.0f}%"


def _cells(s: pd.DataFrame, paper: pd.DataFrame, group: str, subset: str, metric: str, k: int, lam: float) -> list[str]:
    """baseline, paper's baseline, TP, paper's TP, TP vs baseline, p for one row of a comparison."""
    cell = s[(s["group"] == group) & (s["subset"] == subset) & (s["metric"] == metric)]
    base = cell[cell["method"] == "baseline"]
    tp = cell[(cell["method"] == "tp") & (cell["k"] == k) & (cell["lam"] == lam)]

    def ours(c: pd.DataFrame) -> str:
        return _ms(c["mean"].item(), c["std"].item(), int(c["n"].item())) if len(c) else "not run"

    def pub(method: str) -> str:
        if subset != "all":
            return "—"
        v = paper[(paper["group"] == group) & (paper["method"] == method) & (paper["metric"] == metric)]
        return f"{v['value'].item():.4f}" if len(v) == 1 else "—"

    rel = tp["rel_improvement"].item() if len(tp) else math.nan
    pv = tp["p_ttest"].item() if len(tp) else math.nan
    return [ours(base), pub("baseline"), ours(tp), pub("tp"), _rel(rel), _p(pv)]


def _load(agg: Path, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    s = pd.read_csv(agg / "summary.csv")
    paper = paper_table3()
    return (s[(s["dataset"] == dataset) & (s["N"] == 10)],
            paper[(paper["dataset"] == dataset) & (paper["N"] == 10)])


def grid(agg: Path, dataset: str, backbones: list[str], k: int, lam: float) -> str:
    s, paper = _load(agg, dataset)
    out = [
        "| users | backbone | metric | baseline (ours) | paper | TP (ours) | paper | TP vs baseline | p (t-test) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for group in ("existing", "new"):
        for b in backbones:
            for metric in ("HR", "NDCG"):
                cells = _cells(s[s["backbone"] == b], paper[paper["backbone"] == b], group, "all", metric, k, lam)
                out.append(f"| {group} | {BACKBONE_LABEL[b]} | {metric}@10 | " + " | ".join(cells) + " |")
    return "\n".join(out)


def comparison(agg: Path, dataset: str, backbone: str, k: int, lam: float) -> str:
    s, paper = _load(agg, dataset)
    s, paper = s[s["backbone"] == backbone], paper[paper["backbone"] == backbone]
    out = [
        "| users | subset | metric | baseline (ours) | paper | TP (ours) | paper | TP vs baseline | p (t-test) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for group, subset, metric in COMPARISON_ROWS:
        cells = _cells(s, paper, group, subset, metric, k, lam)
        out.append(f"| {group} | {subset} | {metric}@10 | " + " | ".join(cells) + " |")
    return "\n".join(out)


# Tables over the seeds that two runs' sets share, from runs.csv (a study's aggregate may hold more seeds of one
# method than of the other; summary.csv's means are over each cell's own seeds, its paired tests over the shared).


def _seed_label(seeds: list[int]) -> str:
    """0, 1, 2, 5 -> '0–2, 5'."""
    parts, run = [], [seeds[0]] if seeds else []
    for s in seeds[1:]:
        if s == run[-1] + 1:
            run.append(s)
        else:
            parts.append(run)
            run = [s]
    parts += [run] if run else []
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in parts) or "none"


def _runs(agg: Path, dataset: str) -> pd.DataFrame:
    r = pd.read_csv(agg / "runs.csv")
    return r[(r["dataset"] == dataset) & (r["N"] == 10)]


def _per_seed(r: pd.DataFrame, method: str, k: int, lam: float) -> pd.Series:
    """One cell's values by seed (TP: at k, λ)."""
    r = r[r["method"] == method]
    if method == "tp":
        r = r[(r["k"] == k) & (r["lam"] == lam)]
    return r.set_index("seed")["value"]


def _col(v: pd.Series, seeds: list[int]) -> str:
    v = v.reindex(seeds).dropna()
    return _ms(v.mean(), v.std(ddof=1), len(v)) if len(v) else "—"


def _vs(t: pd.Series, b: pd.Series, seeds: list[int]) -> tuple[str, str]:
    """Relative difference of the paired means and the paired t-test p (tplib.aggregate.paired_test, as
    summary.csv) over ``seeds``."""
    if not seeds:
        return "—", "—"
    pt = paired_test(t.loc[seeds].to_numpy(), b.loc[seeds].to_numpy())
    return _rel(pt["rel_improvement"]), _p(pt["p_ttest"])


def variant(agg: Path, dataset: str, backbone: str, k: int, lam: float) -> str:
    """Baseline vs TP in a study's own aggregate (results/stopping, results/patience), no paper columns, each row
    over the seeds both methods ran."""
    r = _runs(agg, dataset)
    r = r[r["backbone"] == backbone]
    out = ["| users | subset | metric | seeds | baseline | TP | TP vs baseline | p |", "|---" * 8 + "|"]
    for group, subset, metric in COMPARISON_ROWS:
        cell = r[(r["group"] == group) & (r["subset"] == subset) & (r["metric"] == metric)]
        base, tp = _per_seed(cell, "baseline", k, lam), _per_seed(cell, "tp", k, lam)
        seeds = sorted(set(base.index) & set(tp.index))
        rel, pv = _vs(tp, base, seeds)
        out.append(f"| {group} | {subset} | {metric}@10 | {_seed_label(seeds)} | {_col(base, seeds)} | "
                   f"{_col(tp, seeds)} | {rel} | {pv} |")
    return "\n".join(out)


def schedule(agg: Path, schedule_agg: Path, dataset: str, k: int, lam: float) -> str:
    """results/schedule: the baseline, TP capped at 20 epochs (the main run), TP trained to early stopping and TP's
    k = 1, λ = 0 control, each row over the seeds where the baseline and TP-to-early-stopping both ran (the
    control: the seeds it shares with the baseline), for the backbones that have TP runs there (its aggregate also
    holds the other backbones' baselines). Mean ± std (ddof 1); "vs baseline": relative difference of the paired
    means and the paired t-test."""
    main, sched = _runs(agg, dataset), _runs(schedule_agg, dataset)
    out = ["| users | backbone | metric | seeds | baseline | TP, 20-epoch cap | TP to early stopping | vs baseline "
           "| control k=1, λ=0 | vs baseline |", "|---|---|---|---|---|---|---|---|---|---|"]

    def vs(t: pd.Series, b: pd.Series, seeds: list[int]) -> str:
        rel, pv = _vs(t, b, seeds)
        return "—" if not seeds else f"{rel} (p {pv})"

    with_tp = set(sched.loc[sched["method"] == "tp", "backbone"])
    for group, subset in (("existing", "all"), ("existing", "tail"), ("new", "all")):
        for b in [b for b in BACKBONE_LABEL if b in with_tp]:
            for metric in ("HR", "NDCG"):
                cell = lambda r: r[(r["backbone"] == b) & (r["group"] == group) & (r["subset"] == subset)  # noqa: E731
                                   & (r["metric"] == metric)]
                base = _per_seed(cell(sched), "baseline", k, lam)
                early, ctrl = _per_seed(cell(sched), "tp", k, lam), _per_seed(cell(sched), "tp", 1, 0.0)
                capped = _per_seed(cell(main), "tp", k, lam)
                seeds = sorted(set(base.index) & set(early.index))
                c_seeds = sorted(set(base.index) & set(ctrl.index))
                users = group if subset == "all" else f"{group}, {subset}"
                out.append(f"| {users} | {b} | {metric}@10 | {_seed_label(seeds)} | {_col(base, seeds)} | "
                           f"{_col(capped, seeds)} | {_col(early, seeds)} | {vs(early, base, seeds)} | "
                           f"{_col(ctrl, c_seeds)} | {vs(ctrl, base, c_seeds)} |")
    return "\n".join(out)


def ablation(agg: Path, dataset: str, backbone: str, k0: int, lam0: float) -> str:
    r = _runs(agg, dataset)
    r = r[(r["backbone"] == backbone) & (r["method"] == "tp") & (r["group"] == "existing") & (r["subset"] == "all")]
    out = []
    for name, points in (("k", [(k, lam0) for k in K_GRID]), ("λ", [(k0, lam) for lam in LAM_GRID])):
        # the seeds every point that was run has, as the report's ablation figures take them (points not run at
        # all are shown as such)
        at = pd.concat([r[(r["k"] == k) & (r["lam"] == lam)] for k, lam in points])
        shared = shared_seeds(at, "k" if name == "k" else "lam") if len(at) else []
        head = [f"k = {k}" if name == "k" else f"λ = {lam:g}" for k, lam in points]
        name_ = BACKBONE_LABEL.get(backbone, backbone)
        label = f"{name_}, seed{'s' if len(shared) > 1 else ''} {', '.join(map(str, shared))}" if shared else f"{name_}, no shared seed"
        out += [f"| {label} | " + " | ".join(head) + " |", "|---|" + "---|" * len(points)]
        for metric in ("HR", "NDCG"):
            cells = []
            for k, lam in points:
                v = r[(r["k"] == k) & (r["lam"] == lam) & (r["metric"] == metric) & r["seed"].isin(shared)]["value"]
                cells.append(_ms(v.mean(), v.std(ddof=1), len(v)) if len(v) else "not run")
            out.append(f"| {metric}@10 | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["comparison", "ablation", "grid", "variant", "schedule"])
    ap.add_argument("dataset")
    ap.add_argument("backbone", nargs="*", help="one for comparison, ablation, variant; grid: those to show (default all); schedule: none")
    ap.add_argument("--aggregate", default="results/aggregate", help="a folder written by `tp aggregate`")
    ap.add_argument("--schedule-aggregate", default="results/schedule/aggregate",
                    help="schedule: the aggregate of results/schedule (TP to early stopping, the baselines)")
    ap.add_argument("--tp-k", type=int, default=2)
    ap.add_argument("--tp-lam", type=float, default=0.1)
    a = ap.parse_args()
    agg = Path(a.aggregate)
    if a.kind == "schedule":
        print(schedule(agg, Path(a.schedule_aggregate), a.dataset, a.tp_k, a.tp_lam))
        return
    if a.kind == "grid":
        print(grid(agg, a.dataset, a.backbone or list(BACKBONE_LABEL), a.tp_k, a.tp_lam))
        return
    if len(a.backbone) != 1:
        ap.error(f"{a.kind} takes one backbone")
    fn = {"comparison": comparison, "ablation": ablation, "variant": variant}[a.kind]
    print(fn(agg, a.dataset, a.backbone[0], a.tp_k, a.tp_lam))


if __name__ == "__main__":
    main()
