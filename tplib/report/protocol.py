"""The report's protocol section: every stated choice of the method's reading with its value and where it is set,
and the backbones' hyperparameters per dataset. The values are the runs' own settings as the aggregate records
them (``configs.jsonl``: a finished run's config.json, else the config the workflow declares for the cell's runs;
see :func:`tplib.report.load.config_row`), never rebuilt here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from tplib.report.figures import label
from tplib.report.load import (
    ALPHA,
    Aggregate,
    _isnan,
    config_row,
    protocol_words,
    setting,
)

__all__ = ["HP_COLS", "hyperparameter_rows", "protocol_rows"]


def protocol_rows(
    cfg: dict[str, Any], stats: pd.DataFrame, runs: pd.DataFrame, study: dict[str, Any]
) -> list[dict[str, str]]:
    """Every stated choice of the method's reading with its value and where the value comes from; ``cfg`` is the
    resolved config of the main study's TP variant (the layout of a run's config.json), ``runs`` the main study's
    rows of runs.csv."""
    cfg_src = "tplib.config + config"

    def s(key: str) -> Any:
        return setting(cfg, key)

    def stat_col(col: str) -> str:
        if col not in stats or stats.empty:
            return "— (not in stats.csv)"
        per = {str(r["dataset"]): str(r[col]) for _, r in stats.iterrows() if not _isnan(r[col])}
        if len(set(per.values())) == 1:
            return next(iter(per.values()))
        return "; ".join(f"{d}: {v}" for d, v in per.items())

    seeds_run = sorted({int(x) for x in runs["seed"].dropna()}) if not runs.empty else []
    per_cell = (
        runs.drop_duplicates(["dataset", "backbone", "variant", "seed"]).groupby(["dataset", "backbone", "variant"]).size()
        if not runs.empty
        else None
    )
    seeds_cfg = study.get("seeds")
    new_frac, head_frac, mask_seen, P = s("split.new_frac"), s("split.head_frac"), s("eval.mask_seen"), s("tp.P")
    caser_new_user = s("model.caser_new_user")
    new_user = {
        "mean": "the mean of the trained users' embeddings (the average trained user)",
        "zero": "a zero vector",
    }.get(caser_new_user, caser_new_user)
    rows = [
        ("Interactions", "every rating or review, whatever its value, is one implicit interaction", "tplib.data"),
        ("Order within a user", stat_col("order_rule"), "stats.csv"),
        ("Filter per source", stat_col("filter"), "stats.csv (tplib.data.sources per-source setting)"),
        ("Re-indexing", stat_col("index_rule"), "stats.csv"),
        (
            "Existing / new users",
            (f"{1 - new_frac:.0%} / {new_frac:.0%} of the users at random "
             "per seed; baseline and TP of one seed share the split"),
            f"split.new_frac ({cfg_src})",
        ),
        (
            "Existing users' items",
            ("last = test, second-to-last = validation (early stopping and model selection "
             "only: the harness's choice, the paper names none), the rest = training"),
            "tplib.data.dataset",
        ),
        (
            "New users",
            "never trained on; evaluated on their last item with all earlier items as input",
            "tplib.data.dataset",
        ),
        (
            "Head / tail",
            (f"inside each group the {head_frac:.0%} of users with the most interactions are "
             "head; count ties broken by user index"),
            f"split.head_frac ({cfg_src})",
        ),
        ("Adversary's labels", "head/tail of the existing users by training counts", "tplib.train.tp"),
        (
            "Loss",
            "binary cross-entropy, one negative per positive, uniform over items the user has not interacted with",
            "tplib.train.loss",
        ),
        ("Ranking", "full ranking over all items (no sampled negatives)", "tplib.evaluate"),
        (
            "Masking of seen items",
            (
                "on: items of the input sequence are excluded (never the target)"
                if mask_seen
                else "off: every item is ranked"
            ),
            f"eval.mask_seen = {str(mask_seen).lower()} ({cfg_src})",
        ),
        (
            "Tie rule",
            "rank = 1 + #{items scored ≥ the target, other than the target}: ties count against the target",
            "tplib.metrics",
        ),
        ("Cut-offs N", ", ".join(map(str, s("eval.Ns"))), f"eval.Ns ({cfg_src})"),
        (
            "Model selection and stopping",
            f"best validation {s('eval.select_metric')}; the main study's rule, the same for both methods: "
            + protocol_words(study["protocol"]) + " (every study states its own rule in Studies)",
            "the study's protocol (config)",
        ),
        ("Caser's unseen users", f"{caser_new_user}: {new_user}", f"model.caser_new_user ({cfg_src})"),
        ("TP: inner updates k", str(s("tp.k")), f"tp.k ({cfg_src})"),
        ("TP: inner lr α (plain SGD)", f"{s('tp.alpha'):g}", f"tp.alpha ({cfg_src})"),
        ("TP: outer lr β (Adam)", f"{s('tp.beta'):g}", f"tp.beta ({cfg_src})"),
        ("TP: adversarial weight λ", f"{s('tp.lam'):g}", f"tp.lam ({cfg_src})"),
        (
            "TP: parallel chains P",
            (f"{P} ({'the paper' if P == 1 else 'batched Reptile, a harness'}"
             f"{'’s algorithm' if P == 1 else ' extension'})"),
            f"tp.P ({cfg_src})",
        ),
        ("TP: one user's mini-batch cap", str(s("tp.user_batch")), f"tp.user_batch ({cfg_src})"),
        ("TP: discriminator hidden width", str(s("tp.disc_hidden")), f"tp.disc_hidden ({cfg_src})"),
        ("TP: diagnostics every", f"{s('tp.diag_every')} outer steps", f"tp.diag_every ({cfg_src})"),
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
            (f"two-sided paired t-test across seeds (TP vs the baseline of the same study and seed), α = {ALPHA}; "
             "Wilcoxon signed-rank shown beside it; no correction for multiple comparisons"),
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
    """Per dataset × backbone: the backbone's main hyperparameters as the main study's TP variant gets them (its
    finished runs' recorded config, else the declared one); a cell the study does not declare, or whose settings
    do not build a config, says so instead."""
    header = ["dataset", "backbone", *[c for c, _ in HP_COLS]]
    cells = (agg.studies.get(study) or {}).get("cells") or {}
    rows = []
    for ds in datasets:
        for bb in backbones:
            row = config_row(agg, study, ds, bb, variant)
            if row is None or row["config"] is None:
                declared = bb in cells.get(ds, [])
                error = (row or {}).get("error") or (
                    "no config in configs.jsonl; rerun the aggregate rule" if declared
                    else f"not declared in study {study}")
                rows.append({"dataset": label(ds), "backbone": label(bb), "error": error})
                continue
            m = {k: setting(row["config"], f"model.{k}") for k in ("d", "max_len", "dropout", "n_blocks", "n_heads",
                                                                    "caser_L", "caser_T", "caser_nv", "caser_nh")}
            t = {k: setting(row["config"], f"train.{k}") for k in ("lr", "adam_beta2", "weight_decay", "batch_size")}
            vals = [
                m["d"],
                m["max_len"] if bb != "caser" else "—",
                f"{m['dropout']:g}",
                f"{m['n_blocks']}×{m['n_heads']}" if bb == "sasrec" else "—",
                f"{m['caser_L']}/{m['caser_T']}/{m['caser_nv']}/{m['caser_nh']}" if bb == "caser" else "—",
                f"{t['lr']:g}",
                f"{t['adam_beta2']:g}",
                f"{t['weight_decay']:g}",
                t["batch_size"],
            ]
            rows.append({"dataset": label(ds), "backbone": label(bb), "values": [str(v) for v in vals]})
    return header, rows
