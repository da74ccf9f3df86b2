"""The report's figures of how runs and searches went: TP's training diagnostics, validation curves and the
searches' trials, drawn like every figure of the report (:mod:`tplib.report.figures`) from aggregated tables only.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from tplib.report.figures import (
    COLORS,
    PAIR_COLORS,
    error_width,
    figure_legend,
    finish_panel,
    label,
    mark_not_run,
    new_figure,
    pick_rows,
)
from tplib.tune import search_name

__all__ = ["fig_curves", "fig_diagnostics", "fig_trials"]

DIAG_ROWS = (
    ("loss", "prediction loss", ("loss",)),
    ("adv_loss", "discriminator BCE", ("adv_loss",)),
    ("disc_acc", "discriminator acc.", ("disc_acc",)),
    ("cos", "gradient cosine", ("diag_cos_hh", "diag_cos_ht", "diag_cos_tt")),
    ("dot", "gradient dot product", ("diag_dot_hh", "diag_dot_ht", "diag_dot_tt")),
)


def fig_diagnostics(
    diag: pd.DataFrame, dataset: str, backbones: Sequence[str], title_suffix: str, tail_share: float | None = None
) -> Figure:
    """TP's per-epoch training diagnostics of one dataset: loss, adversarial loss, discriminator accuracy, and the
    alignment (cosine and dot product) between different users' inner-step gradients, head–head / head–tail /
    tail–tail (rows), per backbone (columns); mean over seeds with a ±1 std band. ``tail_share``: a dotted
    reference line in the accuracy panels (what a discriminator that always answers "tail" scores)."""
    fig, axes = new_figure(len(DIAG_ROWS), len(backbones), 3.3, 1.9)
    handles: dict[str, object] = {}
    for j, bb in enumerate(backbones):
        d = pick_rows(diag, dataset=dataset, backbone=bb)
        for i, (_key, ylabel, cols) in enumerate(DIAG_ROWS):
            ax = axes[i, j]
            drawn = False
            for col in cols:
                if col not in d or d[col].isna().all():
                    continue
                g = d.groupby("epoch")[col].agg(["mean", "std"]).dropna(subset=["mean"])
                color = PAIR_COLORS.get(col[-2:], COLORS["tp"]) if col.startswith("diag_") else COLORS["tp"]
                (h,) = ax.plot(g.index, g["mean"], color=color, lw=1.3)
                ax.fill_between(
                    g.index, g["mean"] - error_width(g["std"]), g["mean"] + error_width(g["std"]), color=color, alpha=0.18, lw=0
                )
                if col.startswith("diag_"):
                    handles.setdefault({"hh": "head–head", "ht": "head–tail", "tt": "tail–tail"}[col[-2:]], h)
                drawn = True
            if not drawn:
                mark_not_run(ax, "not run" if d.empty else "not logged")
            else:
                ax.grid(alpha=0.3)
                if cols[0].startswith("diag_"):
                    ax.axhline(0.0, color="#999999", lw=0.7)
                if cols[0] == "disc_acc" and tail_share is not None:
                    h = ax.axhline(tail_share, color="#555555", lw=0.9, ls=":")
                    handles.setdefault(f"tail share ({tail_share:.0%})", h)
            if i == 0:
                ax.set_title(label(bb))
            if j == 0:
                ax.set_ylabel(ylabel, fontsize=9)
            if i == len(DIAG_ROWS) - 1 and drawn:
                ax.set_xlabel("epoch")
    figure_legend(fig, list(handles.values()), [k if k.startswith("tail share") else f"user pairs: {k}" for k in handles])
    fig.suptitle(f"{label(dataset)}: TP training diagnostics {title_suffix}", fontsize=11)
    return fig


def fig_curves(
    series: Sequence[tuple[str, pd.DataFrame, str]], dataset: str, backbones: Sequence[str], metric: str
) -> Figure:
    """Validation ``metric`` (a train_log column, e.g. ``valid_NDCG@10``) against the epoch, per backbone: one
    line per ``(label, per-epoch log rows, colour)`` series, mean over seeds with a ±1 std band. Epochs without a
    validation (the baseline validates every few epochs) are skipped, not drawn as zero."""
    fig, axes = new_figure(1, len(backbones), 3.3, 2.6)
    handles: dict[str, object] = {}
    for j, bb in enumerate(backbones):
        ax = axes[0, j]
        drawn = False
        for name, rows, color in series:
            d = pick_rows(rows, dataset=dataset, backbone=bb)
            if d.empty or metric not in d or d[metric].isna().all():
                continue
            g = d.dropna(subset=[metric]).groupby("epoch")[metric].agg(["mean", "std"])
            (h,) = ax.plot(g.index, g["mean"], color=color, lw=1.3)
            lo, hi = g["mean"] - error_width(g["std"]), g["mean"] + error_width(g["std"])
            ax.fill_between(g.index, lo, hi, color=color, alpha=0.15, lw=0)
            handles.setdefault(name, h)
            drawn = True
        finish_panel(ax, label(bb), drawn, "epoch", metric.replace("valid_", "validation ") if j == 0 else None)
    figure_legend(fig, list(handles.values()), list(handles), ncols=min(len(handles), 2))  # long labels: two a row
    fig.suptitle(f"{label(dataset)}: validation accuracy per epoch (mean ± std over seeds)", fontsize=11)
    return fig


def fig_trials(trials: pd.DataFrame, tuning: str, dataset: str, backbones: Sequence[str]) -> Figure:
    """One search per method and backbone of one dataset: each trial's value (dots: finished; crosses: pruned)
    and the best finished value so far (line), against the trial number."""
    fig, axes = new_figure(1, len(backbones), 3.3, 2.6)
    handles: dict[str, object] = {}
    for j, bb in enumerate(backbones):
        ax = axes[0, j]
        drawn = False
        for method in ("baseline", "tp"):
            t = trials[(trials["study"] == search_name(tuning, dataset, bb, method)).to_numpy(dtype=bool)] \
                if len(trials) else trials
            if t.empty:
                continue
            t = t.sort_values("trial")
            done = t[t["state"] == "COMPLETE"]
            pruned = t[t["state"] == "PRUNED"]
            ax.scatter(done["trial"], done["value"], color=COLORS[method], s=12)
            ax.scatter(pruned["trial"], pruned["value"], color=COLORS[method], s=14, marker="x")
            best = t["value"].where(t["state"] == "COMPLETE").cummax().ffill()  # carried past unfinished trials
            (h,) = ax.plot(t["trial"], best, color=COLORS[method], lw=1.3, drawstyle="steps-post")
            handles.setdefault("baseline" if method == "baseline" else "TP", h)
            drawn = True
        finish_panel(ax, label(bb), drawn, "trial", "validation NDCG@10" if j == 0 else None)
    figure_legend(fig, list(handles.values()), list(handles))
    fig.suptitle(f"{label(dataset)}: search {tuning} (dots: trials, x: pruned, line: best so far)", fontsize=11)
    return fig
