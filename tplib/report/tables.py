"""The report's study tables: every study with its protocol in words and its results per dataset, TP's
diagnostics, the measured costs and the fair test's searches (the protocol's every stated choice and the
hyperparameters: :mod:`tplib.report.protocol`). Each function takes aggregated rows and returns plain dicts and
strings for the template."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from tplib.report.figures import label
from tplib.report.load import (
    Aggregate,
    _isnan,
    cell,
    distinct,
    fint,
    fnum,
    fpct,
    fpeq,
    mean_std,
    protocol_words,
    verdict,
)
from tplib.report.paper import METHOD_LABEL, PAPER_BACKBONES, PAPER_DATASETS
from tplib.trials import importances_of
from tplib.tune import search_name

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


def variant_settings(spec: dict[str, Any], tuned_from: str | None = None) -> str:
    """A variant's settings in words: those it sets, after its method's best settings where its study starts from
    a search (``tuned_from``), else after the backbone's own; and the variant it is compared with, if named."""
    own = ", ".join(f"{SETTING_NAMES.get(k, k)} {str(v).lower() if isinstance(v, bool) else v}"
                    for k, v in (spec.get("set") or {}).items())
    if tuned_from:
        text = f"the best settings of its method's search (tuning {tuned_from})" + (f", then {own}" if own else "")
    else:
        text = own or "the backbone's own settings"
    return text + (f"; compared with {spec['against']}" if spec.get("against") else "")


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
    and for TP variants the change against the study's baseline (a variant with ``against``: against that
    variant, "vs <name>: ...") with the paired t-test and a verdict. Every declared row that has no finished run
    reads "not run"."""
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
                    c = cell(rows_df, ds, bb, g, m, 10, sub)
                    shown = {**mean_std(c), "extra": "", "vcls": ""}
                    against = spec.get("against") or ""
                    if c is not None and (spec.get("method") == "tp" or against):
                        text, cls = verdict(c.get("diff_mean"), c.get("p_ttest"), c.get("n_pairs"), True, True,
                                            c.get("rel_improvement"))
                        if cls != "notrun":
                            shown["extra"] = (f"vs {against}: " if against else "") + ", ".join(
                                x for x in (fpct(c.get("rel_improvement")), fpeq(c.get("p_ttest"))) if x)
                        shown["vcls"] = cls
                        shown["verdict"] = text
                    out.append(shown)
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
                      "settings": variant_settings(spec, st.get("tuned_from"))}
                     for v, spec in (st.get("variants") or {}).items()],
        "seeds": ", ".join(map(str, st.get("seeds") or [])),
        "runs": f"{n_runs} of {n_declared} runs finished",
        "header": [f"{'' if s == 'all' else s + ' '}{m}@10" for _g, s, m in STUDY_CELLS],
        "tables": tables,
    }


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
# The fair test: the searches

#: The paper's settings, for the chosen hyperparameters' table ("—": the paper gives none).
PAPER_SETTINGS = {"train.lr": "—", "model.d": "10–50 (grid)", "model.dropout": "—", "train.weight_decay": "—",
                  "tp.alpha": "—", "tp.beta": "0.001", "tp.adam_beta2": "— (Adam)", "tp.lam": "0, 0.01, 0.1, 1, 10",
                  "tp.P": "1", "tp.loss_weighting": "—", "tp.k": "2"}


def _fmt_param(v: Any) -> str:
    if isinstance(v, float) and not _isnan(v):
        return f"{v:.3g}"
    return "—" if _isnan(v) else str(v)


def _importances(trials: pd.DataFrame, space: dict[str, Any]) -> list[tuple[str, str]]:
    """A search's settings by how much they mattered (tplib.trials.importances_of), largest first; [] if unknown."""
    if not len(trials) or (trials["state"] == "COMPLETE").sum() < 2:
        return []
    shares = importances_of(trials, space)
    return [(k, f"{v:.2f}") for k, v in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))]


def search_blocks(agg: Aggregate, trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Per search (tuning × cell): each method's budget (trials finished, pruned, failed with an error, interrupted:
    stopped with their job and tried again, counted in neither), how many finished trials ran to the protocol's
    epoch cap (still improving within the patience when it stopped them), best validation score and its epoch
    and chosen settings beside the paper's; "not run" where a search has no trial yet, "so far" beside the best of a
    search short of its budget (in progress: its settings are not final and no tuned run starts from them), "none
    finished yet" where its only trials were stopped before they finished."""
    blocks = []
    for name, tu in (agg.config.get("tunings") or {}).items():
        rows = []
        for ds, bbs in (tu.get("cells") or {}).items():
            for bb in bbs:
                for method in ("baseline", "tp"):
                    t = trials[(trials["study"] == search_name(name, ds, bb, method)).to_numpy(dtype=bool)] \
                        if len(trials) else trials
                    states = t["state"].value_counts().to_dict() if len(t) else {}
                    stopped = int(t["interrupted"].astype(bool).sum()) if len(t) else 0
                    done = t[t["state"] == "COMPLETE"] if len(t) else t
                    best = done.sort_values(["value", "trial"], ascending=[False, True]).iloc[0] if len(done) else None
                    counted = len(done) + states.get("PRUNED", 0)
                    capped = int((done["epochs"] >= tu["protocol"]["max_epochs"]).sum()) if len(done) else 0
                    at = f" @ {int(best['best_epoch'])}" if best is not None and not _isnan(best["best_epoch"]) else ""
                    in_progress = len(t) > 0 and counted < tu["trials"]
                    keys = list(tu["spaces"][method])
                    chosen = [{"key": k, "value": _fmt_param(best[f"params_{k}"]) if best is not None
                               and f"params_{k}" in best else "not run", "paper": PAPER_SETTINGS.get(k, "—")}
                              for k in keys]
                    rows.append({"dataset": label(ds), "backbone": label(bb), "method": METHOD_LABEL.get(method, method),
                                 "budget": f"{counted} of {tu['trials']}" + (" (in progress)" if in_progress else ""),
                                 "pruned": str(states.get("PRUNED", 0)), "failed": str(states.get("FAIL", 0) - stopped),
                                 "interrupted": str(stopped),
                                 "capped": f"{capped} of {len(done)}" if len(done) else "—",
                                 "best": (fnum(best["value"]) + at + (" so far" if in_progress else "")) if best is not None
                                 else "none finished yet" if in_progress else "not run",
                                 "chosen": chosen, "not_run": best is None,
                                 "state": "in progress" if in_progress else "finished" if len(t) else "not run",
                                 "importances": _importances(t, tu["spaces"][method])})
        blocks.append({"name": name, "title": tu.get("title", name), "about": tu.get("about", ""),
                       "protocol": protocol_words(tu["protocol"]), "trials": tu["trials"], "seed": tu.get("seed", 0),
                       "prune_after": tu.get("prune_after", 0),
                       "rows": rows})
    return blocks
