"""Print the README's result tables (markdown) from the committed aggregate, so that every number there can be
regenerated from results/aggregate/summary.csv and the paper's Table 3.

    python results/readme_tables.py comparison ml1m caser     # baseline vs TP (k 2, λ 0.1), paper beside
    python results/readme_tables.py ablation movietweetings gru4rec   # Figures 6-7: k at λ 0.1, λ at k 2

Mean ± std over the seeds of each cell (ddof 1); TP vs baseline is the relative difference of the paired means and
p the paired t-test over the seeds both have (summary.csv's rel_improvement and p_ttest). An ablation point is
summarised over the seeds its row shares with every other point of the row (as the report's Figures 6-7), and the
table says which seeds those are.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from tplib.report.paper import BACKBONE_LABEL, paper_table3

K_GRID = (1, 2, 3, 4, 5)
LAM_GRID = (0.0, 0.01, 0.1, 1.0, 10.0)


def _ms(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "not run"
    return f"{mean:.4f}" if n == 1 or math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2g}"


def comparison(agg: Path, dataset: str, backbone: str, k: int, lam: float) -> str:
    s = pd.read_csv(agg / "summary.csv")
    s = s[(s["dataset"] == dataset) & (s["backbone"] == backbone) & (s["N"] == 10)]
    paper = paper_table3()
    paper = paper[(paper["dataset"] == dataset) & (paper["backbone"] == backbone) & (paper["N"] == 10)]
    out = [
        "| users | subset | metric | baseline (ours) | paper | TP (ours) | paper | TP vs baseline | p (t-test) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [("existing", "all", "HR"), ("existing", "all", "NDCG"), ("existing", "head", "HR"),
            ("existing", "tail", "HR"), ("new", "all", "HR"), ("new", "all", "NDCG")]
    for group, subset, metric in rows:
        cell = s[(s["group"] == group) & (s["subset"] == subset) & (s["metric"] == metric)]
        base = cell[cell["method"] == "baseline"]
        tp = cell[(cell["method"] == "tp") & (cell["k"] == k) & (cell["lam"] == lam)]

        def pub(method: str) -> str:
            if subset != "all":
                return "—"
            v = paper[(paper["group"] == group) & (paper["method"] == method) & (paper["metric"] == metric)]
            return f"{v['value'].item():.4f}" if len(v) == 1 else "—"

        b = _ms(base["mean"].item(), base["std"].item(), int(base["n"].item())) if len(base) else "not run"
        t = _ms(tp["mean"].item(), tp["std"].item(), int(tp["n"].item())) if len(tp) else "not run"
        rel = tp["rel_improvement"].item() if len(tp) else math.nan
        pv = tp["p_ttest"].item() if len(tp) else math.nan
        rel_s = "—" if math.isnan(rel) else f"{rel * 100:+.0f}%".replace("+-", "-")
        out.append(f"| {group} | {subset} | {metric}@10 | {b} | {pub('baseline')} | {t} | {pub('tp')} | {rel_s} | {_p(pv)} |")
    return "\n".join(out)


def ablation(agg: Path, dataset: str, backbone: str, k0: int, lam0: float) -> str:
    r = pd.read_csv(agg / "runs.csv")
    r = r[(r["dataset"] == dataset) & (r["backbone"] == backbone) & (r["method"] == "tp") & (r["N"] == 10)
          & (r["group"] == "existing") & (r["subset"] == "all")]
    out = []
    for name, points in (("k", [(k, lam0) for k in K_GRID]), ("λ", [(k0, lam) for lam in LAM_GRID])):
        seed_sets = [set(r[(r["k"] == k) & (r["lam"] == lam)]["seed"]) for k, lam in points]
        shared = sorted(set.intersection(*seed_sets)) if seed_sets else []
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
    ap.add_argument("kind", choices=["comparison", "ablation"])
    ap.add_argument("dataset")
    ap.add_argument("backbone")
    ap.add_argument("--aggregate", default="results/aggregate", help="a folder written by `tp aggregate`")
    ap.add_argument("--tp-k", type=int, default=2)
    ap.add_argument("--tp-lam", type=float, default=0.1)
    a = ap.parse_args()
    fn = comparison if a.kind == "comparison" else ablation
    print(fn(Path(a.aggregate), a.dataset, a.backbone, a.tp_k, a.tp_lam))


if __name__ == "__main__":
    main()
