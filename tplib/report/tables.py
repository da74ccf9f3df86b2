"""The report's tables: Table 2 (dataset statistics beside the paper's), Table 3 and its verdict grid (study
``main`` only), one results table per study and dataset, the protocol, the hyperparameters, TP's diagnostics
and the measured costs. Each function takes aggregated rows and returns plain dicts and strings for the
template."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from tplib.config import ConfigError, RunConfig
from tplib.data.dataset import DataError
from tplib.grid import Run, run_config
from tplib.report.figures import label
from tplib.report.load import ALPHA, Aggregate, _isnan, distinct, fint, fnum, fp, fpct, fpeq, fstat, verdict
from tplib.report.paper import DATASET_NOTES, METHOD_LABEL, PAPER_BACKBONES, PAPER_DATASETS, paper_table2, paper_table3

STAT_COLS = ("users", "items", "interactions", "records_per_user", "records_per_item", "density_percent")
STAT_LABELS = {
    "users": "#Users",
    "items": "#Items",
    "interactions": "#Interactions",
    "records_per_user": "#Records/user",
    "records_per_item": "#Records/item",
    "density_percent": "Density %",
}


def control_variant(agg: Aggregate, study: str) -> str | None:
    """The study's baseline variant that TP is compared with (as tplib.aggregate pairs them): the one named
    "baseline", else the study's only baseline-method variant."""
    variants = (agg.studies.get(study) or {}).get("variants") or {}
    bases = [v for v, spec in variants.items() if spec.get("method") == "baseline"]
    return "baseline" if "baseline" in bases else (bases[0] if len(bases) == 1 else None)


def tp_variant(agg: Aggregate, study: str) -> str | None:
    """The study's TP variant that Table 3 and Figures 4-5 show: "tp" if declared, else its only TP variant."""
    variants = (agg.studies.get(study) or {}).get("variants") or {}
    tps = [v for v, spec in variants.items() if spec.get("method") == "tp"]
    return "tp" if "tp" in tps else (tps[0] if len(tps) == 1 else None)


def study_config(agg: Aggregate, study: str, dataset: str, backbone: str, variant: str) -> RunConfig:
    """The resolved config of one (study, dataset, backbone, variant) cell, as the workflow builds it."""
    return run_config(agg.config, Run(study, dataset, backbone, variant, 0))


def protocol_words(protocol: dict[str, Any]) -> str:
    """A study's stopping rule in words."""
    e, p = int(protocol["eval_every"]), int(protocol["patience"])
    text = (f"validate every {e} epoch{'s' if e > 1 else ''} on validation NDCG@10; stop after {p} validations "
            f"({p * e} epochs) without a better one; at most {int(protocol['max_epochs'])} epochs")
    if int(protocol.get("min_epochs", 0)):
        text += f", at least {int(protocol['min_epochs'])}"
    return text + "; test metrics from the best validation epoch"


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


def _cell(
    df: pd.DataFrame, ds: str, bb: str, group: str, metric: str, N: int, subset: str = "all"
) -> dict[str, Any] | None:
    if df.empty:
        return None
    r = df[
        (df["dataset"] == ds)
        & (df["backbone"] == bb)
        & (df["group"] == group)
        & (df["subset"] == subset)
        & (df["metric"] == metric)
        & (df["N"] == N)
    ]
    if r.empty:
        return None
    return r.iloc[0].to_dict()


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
                    b = _cell(base, ds, bb, group, metric, N)
                    t = _cell(tp, ds, bb, group, metric, N)
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
                        "base": _ms(b),
                        "base_paper": fnum(pbase_v),
                        "base_rel": fpct(_rel(b and b["mean"], pbase_v)),
                        "tp": _ms(t),
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


def _ms(c: dict[str, Any] | None) -> dict[str, str]:
    if c is None:
        return {"text": "not run", "n": "", "cls": "notrun"}
    std = "" if _isnan(c.get("std")) else f" ± {float(c['std']):.4f}"
    return {"text": f"{fnum(c['mean'])}{std}", "n": f"n={int(c['n'])}", "cls": ""}


# ---------------------------------------------------------------------------------------------------------
# Studies

STUDY_CELLS = (  # (group, subset, metric) at N = 10
    ("existing", "all", "HR"),
    ("existing", "all", "NDCG"),
    ("existing", "head", "NDCG"),
    ("existing", "tail", "NDCG"),
    ("new", "all", "HR"),
    ("new", "all", "NDCG"),
)
SETTING_NAMES = {"tp.k": "k", "tp.lam": "λ", "tp.alpha": "α", "tp.beta": "β", "tp.P": "P"}


def _settings_text(spec: dict[str, Any]) -> str:
    sets = spec.get("set") or {}
    return ", ".join(f"{SETTING_NAMES.get(k, k)} {v}" for k, v in sets.items()) or "the backbone's own settings"


def _epochs_text(costs: pd.DataFrame) -> str:
    """'best / run' epochs, mean over runs, and how many ran into the epoch cap."""
    if costs.empty:
        return "—"
    text = f"{pd.to_numeric(costs['best_epoch']).mean():.0f} / {pd.to_numeric(costs['epochs']).mean():.0f}"
    capped = int(costs["capped"].astype(str).str.lower().eq("true").sum())
    return text + (f" ({capped} capped)" if capped else "")


def study_blocks(agg: Aggregate, name: str, datasets: Sequence[str], backbones: Sequence[str]) -> dict[str, Any]:
    """One study as the report shows it: its words, its protocol (once, for every variant), its variants and
    their settings, and per dataset one table with a row per backbone × variant: mean ± std (n) on STUDY_CELLS,
    and for TP variants the change against the study's baseline with the paired t-test and a verdict. Every
    declared row that has no finished run reads "not run"."""
    st = agg.studies[name]
    summary, costs = agg.study("summary", name), agg.study("costs", name)
    cells = st.get("cells") or {}
    declared = [d for d in datasets if d in cells] + [d for d in cells if d not in datasets]
    n_runs = len(costs)
    n_declared = sum(len(bbs) for bbs in cells.values()) * len(st.get("variants") or {}) * len(st.get("seeds") or [])
    tables = []
    for ds in declared:
        rows = []
        for bb in [b for b in backbones if b in cells[ds]] + [b for b in cells[ds] if b not in backbones]:
            for variant, spec in (st.get("variants") or {}).items():
                rows_df = summary[((summary["dataset"] == ds) & (summary["variant"] == variant)).to_numpy(dtype=bool)]
                runs = costs[((costs["dataset"] == ds) & (costs["backbone"] == bb)
                              & (costs["variant"] == variant)).to_numpy(dtype=bool)]
                out = []
                for g, sub, m in STUDY_CELLS:
                    c = _cell(rows_df, ds, bb, g, m, 10, sub)
                    cell = {**_ms(c), "extra": "", "vcls": ""}
                    if c is not None and spec.get("method") == "tp":
                        text, cls = verdict(c.get("diff_mean"), c.get("p_ttest"), c.get("n_pairs"), True, True,
                                            c.get("rel_improvement"))
                        if cls != "notrun":
                            cell["extra"] = ", ".join(x for x in (fpct(c.get("rel_improvement")),
                                                                   fpeq(c.get("p_ttest"))) if x)
                        cell["vcls"] = cls
                        cell["verdict"] = text
                    out.append(cell)
                rows.append({"backbone": label(bb), "variant": variant, "method": spec.get("method"),
                             "seeds": str(len(runs)), "epochs": _epochs_text(runs), "cells": out,
                             "not_run": runs.empty})
        tables.append({"dataset": label(ds), "key": ds, "rows": rows})
    protocol = st.get("protocol") or {}
    return {
        "name": name,
        "title": st.get("title", name),
        "about": st.get("about", ""),
        "protocol": protocol_words(protocol) if protocol else "—",
        "variants": [{"name": v, "method": METHOD_LABEL.get(spec.get("method"), spec.get("method")),
                      "settings": _settings_text(spec)} for v, spec in (st.get("variants") or {}).items()],
        "seeds": ", ".join(map(str, st.get("seeds") or [])),
        "runs": f"{n_runs} of {n_declared} runs finished",
        "header": [f"{'' if s == 'all' else s + ' '}{m}@10" for _g, s, m in STUDY_CELLS],
        "tables": tables,
    }


def protocol_rows(cfg: RunConfig, stats: pd.DataFrame, runs: pd.DataFrame, study: dict[str, Any]) -> list[dict[str, str]]:
    """Every stated choice of the method's reading with its value and where the value comes from; ``cfg`` is the
    resolved config of the main study's TP variant, ``runs`` the main study's rows of runs.csv."""
    cfg_src = "tplib.config + config"
    k, lam = cfg.tp.k, cfg.tp.lam

    def stat_col(col: str) -> str:
        if col not in stats or stats.empty:
            return "— (not in stats.csv)"
        per = {str(r["dataset"]): str(r[col]) for _, r in stats.iterrows() if not _isnan(r[col])}
        if len(set(per.values())) == 1:
            return next(iter(per.values()))
        return "; ".join(f"{d}: {v}" for d, v in per.items())

    seeds_run = sorted({int(s) for s in runs["seed"].dropna()}) if not runs.empty else []
    per_cell = (
        runs.drop_duplicates(["dataset", "backbone", "variant", "seed"]).groupby(["dataset", "backbone", "variant"]).size()
        if not runs.empty
        else None
    )
    seeds_cfg = study.get("seeds")
    new_user = {
        "mean": "the mean of the trained users' embeddings (the average trained user)",
        "zero": "a zero vector",
    }.get(cfg.model.caser_new_user, cfg.model.caser_new_user)
    rows = [
        ("Interactions", "every rating or review, whatever its value, is one implicit interaction", "tplib.data"),
        ("Order within a user", stat_col("order_rule"), "stats.csv"),
        ("Filter per source", stat_col("filter"), "stats.csv (tplib.data.sources per-source setting)"),
        ("Re-indexing", stat_col("index_rule"), "stats.csv"),
        (
            "Existing / new users",
            f"{1 - cfg.split.new_frac:.0%} / {cfg.split.new_frac:.0%} of the users at random "
            "per seed; baseline and TP of one seed share the split",
            f"split.new_frac ({cfg_src})",
        ),
        (
            "Existing users' items",
            "last = test, second-to-last = validation (early stopping and model selection "
            "only: the harness's choice, the paper names none), the rest = training",
            "tplib.data.dataset",
        ),
        (
            "New users",
            "never trained on; evaluated on their last item with all earlier items as input",
            "tplib.data.dataset",
        ),
        (
            "Head / tail",
            f"inside each group the {cfg.split.head_frac:.0%} of users with the most interactions are "
            "head; count ties broken by user index",
            f"split.head_frac ({cfg_src})",
        ),
        ("Adversary's labels", "head/tail of the existing users by training counts", "tplib.train.tp"),
        (
            "Loss",
            "binary cross-entropy, one negative per positive, uniform over items the user has not " "interacted with",
            "tplib.train.loss",
        ),
        ("Ranking", "full ranking over all items (no sampled negatives)", "tplib.evaluate"),
        (
            "Masking of seen items",
            (
                "on: items of the input sequence are excluded (never the target)"
                if cfg.eval.mask_seen
                else "off: every item is ranked"
            ),
            f"eval.mask_seen = {str(cfg.eval.mask_seen).lower()} ({cfg_src})",
        ),
        (
            "Tie rule",
            "rank = 1 + #{items scored ≥ the target, other than the target}: ties count against the target",
            "tplib.metrics",
        ),
        ("Cut-offs N", ", ".join(map(str, cfg.eval.Ns)), f"eval.Ns ({cfg_src})"),
        (
            "Model selection and stopping",
            f"best validation {cfg.eval.select_metric}; the main study's rule, the same for both methods: "
            + protocol_words(study["protocol"]) + " (every study states its own rule in Studies)",
            "the study's protocol (config)",
        ),
        ("Caser's unseen users", f"{cfg.model.caser_new_user}: {new_user}", f"model.caser_new_user ({cfg_src})"),
        ("TP: inner updates k", str(k), f"tp.k ({cfg_src})"),
        ("TP: inner lr α (plain SGD)", f"{cfg.tp.alpha:g}", f"tp.alpha ({cfg_src})"),
        ("TP: outer lr β (Adam)", f"{cfg.tp.beta:g}", f"tp.beta ({cfg_src})"),
        ("TP: adversarial weight λ", f"{lam:g}", f"tp.lam ({cfg_src})"),
        (
            "TP: parallel chains P",
            f"{cfg.tp.P} ({'the paper' if cfg.tp.P == 1 else 'batched Reptile, a harness'}"
            f"{'’s algorithm' if cfg.tp.P == 1 else ' extension'})",
            f"tp.P ({cfg_src})",
        ),
        ("TP: one user's mini-batch cap", str(cfg.tp.user_batch), f"tp.user_batch ({cfg_src})"),
        ("TP: discriminator hidden width", str(cfg.tp.disc_hidden), f"tp.disc_hidden ({cfg_src})"),
        ("TP: diagnostics every", f"{cfg.tp.diag_every} outer steps", f"tp.diag_every ({cfg_src})"),
        (
            "Seeds run (main study)",
            (", ".join(map(str, seeds_run)) or "none")
            + (
                f" (per cell: {int(per_cell.min())}–{int(per_cell.max())})"
                if per_cell is not None and len(per_cell)
                else ""
            ),
            "runs.csv",
        ),
        ("Seeds declared (main study)", ", ".join(map(str, seeds_cfg)) if seeds_cfg else "—", "config"),
        (
            "Significance",
            f"two-sided paired t-test across seeds (TP vs the baseline of the same study and seed), α = {ALPHA}; "
            "Wilcoxon signed-rank shown beside it; no correction for multiple comparisons",
            "tplib.aggregate",
        ),
    ]
    return [{"item": a, "value": b, "source": c} for a, b, c in rows]


HP_COLS = (
    ("d", "model.d"),
    ("max_len", "model.max_len"),
    ("dropout", "model.dropout"),
    ("blocks×heads", None),
    ("Caser L/T/nv/nh", None),
    ("lr", "train.lr"),
    ("Adam β2", "train.adam_beta2"),
    ("weight decay", "train.weight_decay"),
    ("batch", "train.batch_size"),
)


def hyperparameter_rows(
    agg: Aggregate, study: str, variant: str, datasets: Sequence[str], backbones: Sequence[str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Per dataset × backbone: the backbone's main hyperparameters as the main study's TP variant gets them."""
    header = ["dataset", "backbone", *[c for c, _ in HP_COLS]]
    rows = []
    for ds in datasets:
        for bb in backbones:
            try:
                c = study_config(agg, study, ds, bb, variant)
            except ConfigError as e:
                rows.append({"dataset": ds, "backbone": bb, "error": str(e)})
                continue
            m, t = c.model, c.train
            vals = [
                m.d,
                m.max_len if bb != "caser" else "—",
                f"{m.dropout:g}",
                f"{m.n_blocks}×{m.n_heads}" if bb == "sasrec" else "—",
                f"{m.caser_L}/{m.caser_T}/{m.caser_nv}/{m.caser_nh}" if bb == "caser" else "—",
                f"{t.lr:g}",
                f"{t.adam_beta2:g}",
                f"{t.weight_decay:g}",
                t.batch_size,
            ]
            rows.append({"dataset": label(ds), "backbone": label(bb), "values": [str(v) for v in vals]})
    return header, rows


DIAG_SUMMARY = (
    "loss",
    "adv_loss",
    "disc_acc",
    "diag_cos_hh",
    "diag_cos_ht",
    "diag_cos_tt",
    "diag_dot_hh",
    "diag_dot_ht",
    "diag_dot_tt",
)


def diagnostics_rows(
    diag: pd.DataFrame, datasets: Sequence[str], backbones: Sequence[str]
) -> tuple[list[str], list[dict]]:
    """Per dataset × backbone (TP at the report's setting): seeds, epochs, the last epoch's loss, adversarial loss
    and discriminator accuracy, and the mean over epochs of the gradient alignment between users."""
    header = [
        "seeds",
        "epochs",
        "loss (last)",
        "adv_loss (last)",
        "disc_acc (last)",
        "cos hh",
        "cos ht",
        "cos tt",
        "dot hh",
        "dot ht",
        "dot tt",
    ]
    rows = []
    for ds in datasets:
        for bb in backbones:
            d = diag[(diag["dataset"] == ds) & (diag["backbone"] == bb)] if not diag.empty else diag
            if d.empty:
                rows.append(
                    {
                        "dataset": label(ds),
                        "backbone": label(bb),
                        "cells": ["not run"] * len(header),
                        "cls": "notrun",
                    }
                )
                continue
            last = d.sort_values("epoch").groupby("seed").tail(1)
            cells = [str(d["seed"].nunique()), f"{last['epoch'].mean():.1f}"]
            for col in ("loss", "adv_loss", "disc_acc"):
                cells.append(fnum(last[col].mean()) if col in last else "—")
            for col in DIAG_SUMMARY[3:]:
                cells.append(fnum(d[col].mean(), 4) if col in d else "—")
            rows.append({"dataset": label(ds), "backbone": label(bb), "cells": cells, "cls": ""})
    return header, rows


def costs_rows(costs: pd.DataFrame) -> dict[str, Any]:
    """Measured cost per cell (summed over its runs) and per run."""
    if costs.empty or "dataset" not in costs:
        return {"cells": [], "runs": [], "total_hours": "—", "by_method": []}
    c = costs.copy()
    for col in ("seconds", "wall_seconds", "epochs", "best_epoch", "s_per_epoch", "max_rss_mb"):
        c[col] = pd.to_numeric(c[col], errors="coerce") if col in c else math.nan
    c["cost_s"] = c["seconds"].fillna(c["wall_seconds"])
    keys = ["study", "dataset", "backbone", "variant"]
    rank = {name: i for i, name in enumerate([*PAPER_DATASETS, *PAPER_BACKBONES])}
    c["_d"], c["_b"] = (c[col].map(lambda v: rank.get(v, len(rank))) for col in ("dataset", "backbone"))
    c = c.sort_values(["study", "_d", "dataset", "_b", "backbone", "variant", "seed"], na_position="first")
    cells = []
    for key, g in c.groupby(keys, dropna=False, sort=False):
        study, ds, bb, variant = key
        cells.append(
            {
                "study": str(study),
                "dataset": label(str(ds)),
                "backbone": label(str(bb)),
                "variant": str(variant),
                "runs": str(len(g)),
                "seconds": fint(g["cost_s"].sum()),
                "epochs": f"{g['epochs'].mean():.1f}" if g["epochs"].notna().any() else "—",
                "best_epoch": f"{g['best_epoch'].mean():.1f}" if g["best_epoch"].notna().any() else "—",
                "s_per_epoch": fnum(g["s_per_epoch"].mean(), 2),
                "max_rss_mb": fint(g["max_rss_mb"].max()),
                "device": distinct(g.get("device_name", g.get("device", pd.Series(dtype=str)))),
            }
        )
    runs = []
    for _, r in c.iterrows():
        runs.append(
            [
                str(r["study"]),
                label(str(r["dataset"])),
                label(str(r["backbone"])),
                str(r["variant"]),
                fint(r["seed"]),
                fnum(r["seconds"], 1),
                fnum(r["wall_seconds"], 1),
                fint(r["epochs"]),
                fint(r["best_epoch"]),
                fnum(r["s_per_epoch"], 2),
                fint(r["max_rss_mb"]),
                str(r.get("device", "")) if not _isnan(r.get("device")) else "",
            ]
        )
    by_method = [
        {"method": METHOD_LABEL.get(str(m), str(m)), "runs": len(g), "hours": f"{g['cost_s'].sum() / 3600:.2f}"}
        for m, g in c.groupby("method")
    ]
    return {
        "cells": cells,
        "runs": runs,
        "total_hours": f"{c['cost_s'].sum() / 3600:.2f}",
        "by_method": by_method,
        "fallback": bool(c["seconds"].isna().any() and c["wall_seconds"].notna().any()),
    }


# ---------------------------------------------------------------------------------------------------------
# The README's results block

README_START = "<!-- results:start: generated by `make report` from results/aggregate; edits here are overwritten -->"
README_END = "<!-- results:end -->"


def readme_block(agg: Aggregate, datasets: Sequence[str], backbones: Sequence[str]) -> str:
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
                b = _cell(summary[(summary["variant"] == base_name).to_numpy(dtype=bool)], ds, bb, group, "HR", 10)
                t = _cell(summary[(summary["variant"] == tp_name).to_numpy(dtype=bool)], ds, bb, group, "HR", 10)
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
        f"Study `{main}` — {st.get('title', main)}: {len(costs)} of {declared} runs finished. Both methods: "
        f"{protocol_words(st['protocol'])}. Existing users' HR@10 over the {n} cells: {counts}. "
        "Mean over seeds; TP vs baseline: the mean paired difference relative to the baseline; p: paired t-test "
        "across seeds.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
        README_END,
    ]
    return "\n".join(lines)


def replace_readme_block(text: str, block: str) -> str:
    """``text`` (a README) with its results block replaced by ``block``; the markers must be there once."""
    a, e = text.find(README_START), text.find(README_END)
    if a < 0 or e < a or text.count(README_START) != 1:
        raise DataError(f"the README needs exactly one results block: a line {README_START!r} ... {README_END!r}")
    return text[:a] + block + text[e + len(README_END):]


# ---------------------------------------------------------------------------------------------------------
# The fair test: the searches

#: The paper's settings, for the chosen hyperparameters' table ("—": the paper gives none).
PAPER_SETTINGS = {"train.lr": "—", "model.d": "10–50 (grid)", "model.dropout": "—", "train.weight_decay": "—",
                  "tp.alpha": "—", "tp.beta": "0.001", "tp.adam_beta2": "— (Adam)", "tp.lam": "0, 0.01, 0.1, 1, 10",
                  "tp.P": "1", "tp.loss_weighting": "—", "tp.k": "2"}


def _fmt_param(v: Any) -> str:
    if isinstance(v, float) and not _isnan(v):
        return f"{v:.3g}"
    return "—" if _isnan(v) else str(v)


def search_blocks(agg: Aggregate, trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Per search (tuning × cell): each method's budget (trials finished, pruned, failed), best validation score
    and chosen settings beside the paper's; "not run" where a search has no trial yet."""
    blocks = []
    for name, tu in (agg.config.get("tunings") or {}).items():
        rows = []
        for ds, bbs in (tu.get("cells") or {}).items():
            for bb in bbs:
                for method in ("baseline", "tp"):
                    t = trials[(trials["study"] == f"{name}-{ds}-{bb}-{method}").to_numpy(dtype=bool)] \
                        if len(trials) else trials
                    states = t["state"].value_counts().to_dict() if len(t) else {}
                    done = t[t["state"] == "COMPLETE"] if len(t) else t
                    best = done.sort_values(["value", "trial"], ascending=[False, True]).iloc[0] if len(done) else None
                    keys = list(tu["spaces"][method])
                    chosen = [{"key": k, "value": _fmt_param(best[f"params_{k}"]) if best is not None
                               and f"params_{k}" in best else "not run", "paper": PAPER_SETTINGS.get(k, "—")}
                              for k in keys]
                    rows.append({"dataset": label(ds), "backbone": label(bb), "method": METHOD_LABEL.get(method, method),
                                 "budget": f"{len(done) + states.get('PRUNED', 0)} of {tu['trials']}",
                                 "pruned": str(states.get("PRUNED", 0)), "failed": str(states.get("FAIL", 0)),
                                 "best": fnum(best["value"]) if best is not None else "not run",
                                 "chosen": chosen, "not_run": best is None})
        blocks.append({"name": name, "title": tu.get("title", name), "about": tu.get("about", ""),
                       "protocol": protocol_words(tu["protocol"]), "trials": tu["trials"], "seed": tu.get("seed", 0),
                       "rows": rows})
    return blocks
