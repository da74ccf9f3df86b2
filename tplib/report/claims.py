"""The paper's claims, reproduced: Table 2 (dataset statistics beside the paper's), Table 3 and its verdict grid
(the main study only: every TP number beside the baseline of the same study and protocol), and the README's
results block generated from the same tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from tplib.io import DataError, markdown_table
from tplib.report.figures import label
from tplib.report.load import (
    Aggregate,
    _isnan,
    cell,
    control_variant,
    fint,
    fnum,
    fp,
    fpeq,
    fpct,
    fstat,
    mean_std,
    protocol_words,
    tp_variant,
    verdict,
)
from tplib.report.paper import DATASET_NOTES, PAPER_DATASETS, paper_table2, paper_table3

STAT_COLS = ("users", "items", "interactions", "records_per_user", "records_per_item", "density_percent")
STAT_LABELS = {
    "users": "#Users",
    "items": "#Items",
    "interactions": "#Interactions",
    "records_per_user": "#Records/user",
    "records_per_item": "#Records/item",
    "density_percent": "Density %",
}


def table2(stats: pd.DataFrame) -> list[dict[str, Any]]:
    """One block per dataset (the paper's four, then any other prepared one): paper, reproduced and raw rows,
    the measured differences, and why they arise."""
    paper = paper_table2()
    ours = stats.set_index("dataset") if not stats.empty and "dataset" in stats else pd.DataFrame()
    names = list(PAPER_DATASETS) + [d for d in ours.index if d not in PAPER_DATASETS]
    blocks = []
    for ds in names:
        p = paper.loc[ds] if ds in paper.index else None
        o = ours.loc[ds] if ds in ours.index else None
        rows = []
        if p is not None:
            rows.append({"what": "paper", "cells": [fstat(c, p[c]) for c in STAT_COLS], "cls": "paper"})
        if o is not None:
            rows.append({"what": "reproduced", "cells": [fstat(c, o.get(c)) for c in STAT_COLS], "cls": "ours"})
            raw = [o.get(f"raw_{c}") for c in ("users", "items", "interactions")]
            if not all(_isnan(v) for v in raw):
                u, i, n = (float(v) if not _isnan(v) else math.nan for v in raw)
                derived = [
                    n / u if u else math.nan,
                    n / i if i else math.nan,
                    100 * n / (u * i) if u and i else math.nan,
                ]
                rows.append(
                    {
                        "what": "raw file, before the filter",
                        "cells": [fint(u), fint(i), fint(n), *[fstat(c, v) for c, v in zip(STAT_COLS[3:], derived)]],
                        "cls": "raw",
                    }
                )
        else:
            rows.append({"what": "reproduced", "cells": ["not run"] * len(STAT_COLS), "cls": "notrun"})
        diffs: list[str] = []
        if p is not None and o is not None:
            for c in STAT_COLS:
                pv, ov = p[c], o.get(c)
                if _isnan(ov):
                    continue
                tol = 0.5 if c in ("users", "items", "interactions") else (0.0005 if c == "density_percent" else 0.005)
                if abs(float(ov) - float(pv)) > tol:
                    rel = (float(ov) - float(pv)) / float(pv) if float(pv) else math.nan
                    diffs.append(f"{STAT_LABELS[c]}: {fstat(c, ov)} here vs {fstat(c, pv)} in the paper ({fpct(rel)})")
        checks: list[str] = []
        if p is not None:
            u, i, n = float(p["users"]), float(p["items"]), float(p["interactions"])
            implied = {"records_per_user": n / u, "records_per_item": n / i, "density_percent": 100 * n / (u * i)}
            for c, v in implied.items():
                if fstat(c, v) != fstat(c, p[c]):
                    checks.append(
                        f"the paper's {STAT_LABELS[c]} {fstat(c, p[c])} does not follow from its own counts "
                        f"({fstat(c, v)}); a rounding or arithmetic slip in the paper"
                    )
        counts_match = not any(lbl.startswith(("#Users", "#Items", "#Interactions")) for lbl in diffs)
        slips = {c for c in STAT_COLS if any(f"paper's {STAT_LABELS[c]} " in x for x in checks)}
        only_slips = counts_match and all(any(d.startswith(STAT_LABELS[c] + ":") for c in slips) for d in diffs)
        status = (
            "not prepared"
            if o is None
            else (
                "not in the paper"
                if p is None
                else "matches the paper" if not diffs else "counts match" if only_slips else "differs"
            )
        )
        prov = {}
        if o is not None:
            for col in ("version", "filter", "raw_sha256", "verified"):
                if col in o and not _isnan(o[col]):
                    prov[col] = str(o[col])
        blocks.append(
            {
                "dataset": label(ds),
                "key": ds,
                "rows": rows,
                "diffs": diffs,
                "checks": checks,
                "note": DATASET_NOTES.get(ds, ""),
                "status": status,
                "prov": prov,
            }
        )
    return blocks


def _rel(ours: Any, paper: Any) -> float:
    if _isnan(ours) or _isnan(paper) or float(paper) == 0:
        return math.nan
    return (float(ours) - float(paper)) / float(paper)


def table3(
    summary: pd.DataFrame, tp_name: str | None, backbones: Sequence[str], datasets: Sequence[str], N: int = 10,
    base_name: str | None = "baseline",
) -> dict[str, Any]:
    """HR@N and NDCG@N of every dataset × backbone (the paper's twelve, then any other run) of one study's rows
    (``summary``), its control baseline variant ``base_name`` and its TP variant ``tp_name``: ours (mean ± std, n), the paper's, the relative
    difference, TP's improvement (ours and the paper's), the paired tests and the verdict. Returns the
    sub-tables, an overview matrix and verdict counts."""
    paper = paper_table3()
    base = summary[(summary["variant"] == base_name).to_numpy(dtype=bool)] if len(summary) else summary
    tp = summary[(summary["variant"] == tp_name).to_numpy(dtype=bool)] if len(summary) else summary
    subtables, overview, counts = [], {}, {}
    for group in ("existing", "new"):
        for metric in ("HR", "NDCG"):
            rows = []
            for ds in datasets:
                for bb in backbones:
                    pb = paper[
                        (paper["dataset"] == ds)
                        & (paper["backbone"] == bb)
                        & (paper["group"] == group)
                        & (paper["metric"] == metric)
                        & (paper["N"] == N)
                    ]
                    pbase = pb.loc[pb["method"] == "baseline", "value"]
                    ptp = pb.loc[pb["method"] == "tp", "value"]
                    pbase_v = float(pbase.iloc[0]) if len(pbase) else math.nan
                    ptp_v = float(ptp.iloc[0]) if len(ptp) else math.nan
                    b = cell(base, ds, bb, group, metric, N)
                    t = cell(tp, ds, bb, group, metric, N)
                    text, cls = verdict(
                        t.get("diff_mean") if t else None,
                        t.get("p_ttest") if t else None,
                        t.get("n_pairs") if t else None,
                        b is not None,
                        t is not None,
                        t.get("rel_improvement") if t else math.nan,
                    )
                    in_paper = not _isnan(pbase_v)
                    row = {
                        "dataset": label(ds),
                        "backbone": label(bb),
                        "in_paper": in_paper,
                        "base": mean_std(b),
                        "base_paper": fnum(pbase_v),
                        "base_rel": fpct(_rel(b and b["mean"], pbase_v)),
                        "tp": mean_std(t),
                        "tp_paper": fnum(ptp_v),
                        "tp_rel": fpct(_rel(t and t["mean"], ptp_v)),
                        "impr": fpct(t.get("rel_improvement")) if t else "—",
                        "impr_abs": fnum(t.get("diff_mean")) if t else "",
                        "impr_paper": fpct(_rel(ptp_v, pbase_v)),
                        "n_pairs": fint(t.get("n_pairs")) if t else "—",
                        "p_t": fp(t.get("p_ttest")) if t else "—",
                        "p_w": fp(t.get("p_wilcoxon")) if t else "—",
                        "verdict": text,
                        "cls": cls,
                    }
                    rows.append(row)
                    overview.setdefault(
                        (row["dataset"], row["backbone"]),
                        {"dataset": row["dataset"], "backbone": row["backbone"], "in_paper": in_paper, "cells": []},
                    )
                    overview[(row["dataset"], row["backbone"])]["cells"].append({"verdict": text, "cls": cls})
                    if in_paper:
                        counts[cls] = counts.get(cls, 0) + 1
            subtables.append({"group": group, "metric": f"{metric}@{N}", "rows": rows})
    return {
        "subtables": subtables,
        "overview": list(overview.values()),
        "counts": counts,
        "columns": [f"{s['group']} {s['metric']}" for s in subtables],
    }


README_START = "<!-- results:start: generated by `make report` from results/aggregate; edits here are overwritten -->"
README_END = "<!-- results:end -->"


def verdict_cells(agg: Aggregate, study: str, datasets: Sequence[str], backbones: Sequence[str]
                  ) -> dict[str, list[str]]:
    """Existing users' HR@10 per cell of ``study`` (TP variant against its control), grouped by verdict class
    (holds, weak, level, reversed, notrun), each cell as "Music SASRec −18.1% (p = 0.005, 4 seeds)"."""
    st = agg.studies[study]
    summary = agg.study("summary", study)
    tp_name, base_name = tp_variant(agg, study), control_variant(agg, study)
    out: dict[str, list[str]] = {}
    for ds in [d for d in datasets if d in (st.get("cells") or {})]:
        for bb in [b for b in backbones if b in st["cells"][ds]]:
            b = cell(summary[(summary["variant"] == base_name).to_numpy(dtype=bool)], ds, bb, "existing", "HR", 10)
            t = cell(summary[(summary["variant"] == tp_name).to_numpy(dtype=bool)], ds, bb, "existing", "HR", 10)
            _, cls = verdict(t.get("diff_mean") if t else None, t.get("p_ttest") if t else None,
                             t.get("n_pairs") if t else None, b is not None, t is not None,
                             t.get("rel_improvement") if t else math.nan)
            what = f"{label(ds)} {label(bb)}"
            if cls != "notrun":
                what += f" {fpct(t.get('rel_improvement'))} ({fpeq(t.get('p_ttest'))}, {fint(t.get('n_pairs'))} seeds)"
            out.setdefault(cls, []).append(what)
    return out


def _verdict_sentence(agg: Aggregate, study: str, what: str, datasets: Sequence[str],
                      backbones: Sequence[str]) -> str:
    v = verdict_cells(agg, study, datasets, backbones)
    paired = sum(len(x) for c, x in v.items() if c != "notrun")
    total = paired + len(v.get("notrun", []))
    if not paired:
        return f"{what} (study `{study}`) has no cell with paired seeds yet (0 of {total})."
    n = {c: len(v.get(c, [])) for c in ("reversed", "holds", "weak", "level")}
    listed = "; ".join(x for c in n for x in v.get(c, []))
    if paired == 1:  # one cell: say what it is, not "1 of the 1 cells, ahead in 0, ..."
        word = {"reversed": "behind the baseline", "holds": "ahead of the baseline (p < 0.05)",
                "weak": "ahead of the baseline, not significantly", "level": "level with the baseline"}
        (cls,) = [c for c in n if n[c]]
        return (f"{what} (study `{study}`), TP is {word[cls]} in the only cell with paired seeds ({listed}); "
                f"{total - 1} of {total} cells have no paired seeds yet.")
    return (f"{what} (study `{study}`), TP is behind the baseline in {n['reversed']} of the {paired} cells with "
            f"paired seeds, ahead in {n['holds']} (p < 0.05), ahead but not significantly in {n['weak']} and level "
            f"in {n['level']} ({listed}); {total - paired} of {total} cells have no paired seeds yet.")


def search_progress(tuning: str, searches: Sequence[dict[str, Any]]) -> str:
    """Where a tuning's searches stand, from the report's search blocks (tables.search_blocks): "its searches
    (tuning `fair`, 20 trials per method and cell): 3 of 14 finished, 2 in progress"; "" if the tuning is not there."""
    block = next((b for b in searches if b["name"] == tuning), None)
    if block is None:
        return ""
    states = [r["state"] for r in block["rows"]]
    return (f"its searches (tuning `{tuning}`, {block['trials']} trials per method and cell): "
            f"{states.count('finished')} of {len(states)} finished, {states.count('in progress')} in progress")


def readme_verdict(agg: Aggregate, datasets: Sequence[str], backbones: Sequence[str],
                   searches: Sequence[dict[str, Any]] = ()) -> str:
    """The answer in two sentences, on existing users' HR@10: TP at the paper's settings (the main study), then
    the fair test (the first study whose settings come from equal-budget searches), with every cell named, and
    where its searches stand (``searches``: the report's search blocks)."""
    main = (agg.config.get("report") or {}).get("main")
    out = [_verdict_sentence(agg, main, "At the paper's settings", datasets, backbones)]
    fair = next((n for n, st in agg.studies.items() if st.get("tuned_from") and n != main), None)
    if fair is not None:
        out.append(_verdict_sentence(agg, fair, "In the fair test, each method at the best settings of its own "
                                     "equal-budget search on validation", datasets, backbones))
        progress = search_progress(agg.studies[fair]["tuned_from"], searches)
        if progress:
            out[-1] = f"{out[-1][:-1]}; {progress}."
    return " ".join(out)


def readme_block(agg: Aggregate, datasets: Sequence[str], backbones: Sequence[str],
                 searches: Sequence[dict[str, Any]] = ()) -> str:
    """The README's results: the main study's progress, its verdict counts on existing users' HR@10, and one
    row per dataset × backbone (mean over seeds, the paired change, its p-value), "not run" where no pair is."""
    main = (agg.config.get("report") or {}).get("main")
    st = agg.studies[main]
    tp_name, base_name = tp_variant(agg, main), control_variant(agg, main)
    summary, costs = agg.study("summary", main), agg.study("costs", main)
    cells = st.get("cells") or {}
    declared = sum(map(len, cells.values())) * len(st.get("variants") or {}) * len(st.get("seeds") or [])
    rows, verdicts = [], {}
    for ds in [d for d in datasets if d in cells]:
        for bb in [b for b in backbones if b in cells[ds]]:
            out = [label(ds), label(bb)]
            for group in ("existing", "new"):
                b = cell(summary[(summary["variant"] == base_name).to_numpy(dtype=bool)], ds, bb, group, "HR", 10)
                t = cell(summary[(summary["variant"] == tp_name).to_numpy(dtype=bool)], ds, bb, group, "HR", 10)
                text, cls = verdict(t.get("diff_mean") if t else None, t.get("p_ttest") if t else None,
                                    t.get("n_pairs") if t else None, b is not None, t is not None,
                                    t.get("rel_improvement") if t else math.nan)
                if group == "existing":
                    verdicts[cls] = verdicts.get(cls, 0) + 1
                    out.append(fint(t.get("n_pairs")) if t else "0")
                    out += [fnum(b["mean"]) if b else "not run", fnum(t["mean"]) if t else "not run"]
                paired = t is not None and cls != "notrun"
                out += [fpct(t.get("rel_improvement")) if paired else "—",
                        fp(t.get("p_ttest")) if paired else "—", text]
            rows.append(out)
    n = len(rows)
    counts = ", ".join(f"{verdicts.get(c, 0)} {w}" for c, w in (
        ("holds", "with TP ahead (p < 0.05)"), ("weak", "ahead but not significant"), ("level", "level (under 1%)"),
        ("reversed", "with TP behind"), ("notrun", "without paired seeds yet")))
    head = ["dataset", "backbone", "pairs", "baseline", "TP", "TP vs baseline", "p", "verdict",
            "new users: TP vs baseline", "p", "verdict"]
    lines = [
        README_START,
        f"**Verdict so far.** {readme_verdict(agg, datasets, backbones, searches)}",
        "",
        f"Study `{main}` — {st.get('title', main)}: {len(costs)} of {declared} runs finished. Both methods: "
        f"{protocol_words(st['protocol'])}. Existing users' HR@10 over the {n} cells: {counts}. "
        "Mean over seeds; TP vs baseline: the mean paired difference relative to the baseline; p: paired t-test "
        "across seeds.",
        "",
        markdown_table(head, rows),
        README_END,
    ]
    return "\n".join(lines)


def replace_readme_block(text: str, block: str) -> str:
    """``text`` (a README) with its results block replaced by ``block``; the markers must be there once."""
    a, e = text.find(README_START), text.find(README_END)
    if a < 0 or e < a or text.count(README_START) != 1:
        raise DataError(f"the README needs exactly one results block: a line {README_START!r} ... {README_END!r}")
    return text[:a] + block + text[e + len(README_END):]
