"""The report's figures of the paper (Figures 4–7) and what every figure shares (panels, colours, saving), drawn
with matplotlib's Agg canvas from the aggregated tables only; training and search figures are in
:mod:`tplib.report.training_figures`.

Every function takes already-selected rows of ``summary.csv`` (or ``diagnostics.csv``) and returns a
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG and PDF and returns a ``data:`` URI of
the PNG for embedding. No pyplot: figures are plain objects on an Agg canvas, so nothing depends on a display or
on global state. A panel whose cell has no data says "not run" instead of being left out.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tplib.report.paper import BACKBONE_LABEL, DATASET_LABEL

__all__ = [
    "COLORS",
    "SavedFigure",
    "fig_ablation",
    "fig_headtail",
    "fig_topn",
    "save_figure",
]

COLORS = {"baseline": "#4C72B0", "tp": "#DD8452"}
GROUP_STYLE = {"existing": "-", "new": "--"}
PAIR_COLORS = {"hh": "#55A868", "ht": "#8172B3", "tt": "#C44E52"}
DPI = 110


@dataclass(frozen=True)
class SavedFigure:
    """A figure written to disk: its stem, the PNG and PDF paths, and the PNG as a ``data:`` URI."""

    stem: str
    title: str
    png: Path
    pdf: Path
    data_uri: str


def label(name: str) -> str:
    """The paper's spelling of a dataset or backbone name (the harness's name when the paper has none)."""
    return DATASET_LABEL.get(name, BACKBONE_LABEL.get(name, name))


def new_figure(nrows: int, ncols: int, w: float, h: float) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(w * ncols, h * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False))
    return fig, axes


def mark_not_run(ax: Axes, text: str = "not run") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#888888", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("#cccccc")


def finish_panel(ax: Axes, title: str, drawn: bool, xlabel: str, ylabel: str | None) -> None:
    """A one-row figure's panel: its title, a grid and the x label where something was drawn, else "not run"; the
    y label on the first panel only (``ylabel`` None elsewhere)."""
    ax.set_title(title)
    if drawn:
        ax.grid(alpha=0.3)
        ax.set_xlabel(xlabel)
    else:
        mark_not_run(ax)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)


def error_width(std: pd.Series | np.ndarray) -> np.ndarray:
    """Standard deviations for error bars; NaN (one seed) draws no bar."""
    return np.nan_to_num(np.asarray(std, dtype=np.float64), nan=0.0)


def pick_rows(df: pd.DataFrame, **eq: object) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for col, val in eq.items():
        mask &= (df[col] == val).to_numpy()
    return df[mask]


def figure_legend(fig: Figure, handles: list, labels: list[str], ncols: int | None = None) -> None:
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols or len(labels), frameon=False)


def fig_topn(base: pd.DataFrame, tp: pd.DataFrame, dataset: str, backbones: Sequence[str], tp_label: str) -> Figure:
    """Figure 4: HR@N and NDCG@N against N, baseline vs TP, for existing and new users (rows) and each backbone
    (columns) of one dataset; error bars are the standard deviation over seeds."""
    rows = [(g, m) for g in ("existing", "new") for m in ("HR", "NDCG")]
    fig, axes = new_figure(len(rows), len(backbones), 3.3, 2.2)
    handles: dict[str, object] = {}
    for j, bb in enumerate(backbones):
        for i, (group, metric) in enumerate(rows):
            ax = axes[i, j]
            drawn = False
            for method, df in (("baseline", base), ("tp", tp)):
                d = pick_rows(df, dataset=dataset, backbone=bb, group=group, subset="all", metric=metric)
                d = d.sort_values("N")
                if d.empty:
                    continue
                h = ax.errorbar(
                    d["N"],
                    d["mean"],
                    yerr=error_width(d["std"]),
                    color=COLORS[method],
                    marker="o",
                    ms=3.5,
                    capsize=2.5,
                    lw=1.4,
                )
                handles.setdefault(method, h)
                drawn = True
            if not drawn:
                mark_not_run(ax)
            else:
                ax.set_xticks(sorted(pd.concat([base, tp])["N"].unique()))
                ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(label(bb))
            if j == 0:
                ax.set_ylabel(f"{group}\n{metric}@N")
            if i == len(rows) - 1 and drawn:
                ax.set_xlabel("N")
    names = {"baseline": "baseline", "tp": tp_label}
    figure_legend(fig, list(handles.values()), [names[m] for m in handles])
    fig.suptitle(f"{label(dataset)}: top-N accuracy (mean ± std over seeds)", fontsize=11)
    return fig


def fig_headtail(
    base: pd.DataFrame, tp: pd.DataFrame, dataset: str, backbones: Sequence[str], tp_label: str, N: int = 10
) -> Figure:
    """Figure 5: HR@N and NDCG@N (rows) of head and tail users, existing and new, baseline vs TP, per backbone
    (columns) of one dataset; error bars are the standard deviation over seeds."""
    cats = [(g, s) for g in ("existing", "new") for s in ("head", "tail")]
    fig, axes = new_figure(2, len(backbones), 3.3, 2.5)
    handles: dict[str, object] = {}
    width = 0.38
    x = np.arange(len(cats))
    for j, bb in enumerate(backbones):
        for i, metric in enumerate(("HR", "NDCG")):
            ax = axes[i, j]
            drawn = False
            for off, (method, df) in zip((-width / 2, width / 2), (("baseline", base), ("tp", tp))):
                d = pick_rows(df, dataset=dataset, backbone=bb, metric=metric, N=N)
                means, stds = [], []
                for g, s in cats:
                    r = d[(d["group"] == g) & (d["subset"] == s)]
                    means.append(float(r["mean"].iloc[0]) if len(r) else math.nan)
                    stds.append(float(r["std"].iloc[0]) if len(r) else math.nan)
                if all(math.isnan(m) for m in means):
                    continue
                h = ax.bar(
                    x + off,
                    np.nan_to_num(means),
                    width,
                    yerr=error_width(stds),
                    color=COLORS[method],
                    capsize=2,
                    error_kw={"lw": 0.8},
                )
                handles.setdefault(method, h)
                drawn = True
            if not drawn:
                mark_not_run(ax)
            else:
                ax.set_xticks(x, [f"{g[:5]}.\n{s}" if g == "existing" else f"{g}\n{s}" for g, s in cats], fontsize=8)
                ax.grid(alpha=0.3, axis="y")
            if i == 0:
                ax.set_title(label(bb))
            if j == 0:
                ax.set_ylabel(f"{metric}@{N}")
    names = {"baseline": "baseline", "tp": tp_label}
    figure_legend(fig, list(handles.values()), [names[m] for m in handles])
    fig.suptitle(f"{label(dataset)}: head vs tail users (mean ± std over seeds)", fontsize=11)
    return fig


def fig_ablation(
    tp: pd.DataFrame,
    base: pd.DataFrame,
    dataset: str,
    backbones: Sequence[str],
    param: str,
    values: Sequence[float],
    N: int = 10,
    seeds: Mapping[str, Sequence[int]] | None = None,
) -> Figure:
    """Figures 6 and 7: TP's HR@N and NDCG@N (rows) against ``param`` ("k" or "lam") for existing (solid) and
    new (dashed) users, per backbone (columns); the baseline (summarised over the same seeds as its column's
    points: ``seeds[backbone]``, which the column's title names) as thin horizontal lines. λ is drawn at evenly
    spaced positions (its grid spans 0 and four decades)."""
    fig, axes = new_figure(2, len(backbones), 3.3, 2.4)
    categorical = param == "lam"
    pos = {v: (i if categorical else v) for i, v in enumerate(values)}
    handles: dict[str, object] = {}
    for j, bb in enumerate(backbones):
        for i, metric in enumerate(("HR", "NDCG")):
            ax = axes[i, j]
            drawn = False
            for group in ("existing", "new"):
                d = pick_rows(tp, dataset=dataset, backbone=bb, group=group, subset="all", metric=metric, N=N)
                d = d[d[param].isin(values)].sort_values(param)
                if d.empty:
                    continue
                xs = [pos[v] for v in d[param]]
                h = ax.errorbar(
                    xs,
                    d["mean"],
                    yerr=error_width(d["std"]),
                    color=COLORS["tp"],
                    ls=GROUP_STYLE[group],
                    marker="o",
                    ms=3.5,
                    capsize=2.5,
                    lw=1.4,
                )
                handles.setdefault(f"TP, {group} users", h)
                drawn = True
                b = pick_rows(base, dataset=dataset, backbone=bb, group=group, subset="all", metric=metric, N=N)
                if len(b):
                    hb = ax.axhline(float(b["mean"].iloc[0]), color=COLORS["baseline"], ls=GROUP_STYLE[group], lw=1)
                    handles.setdefault(f"baseline, {group} users", hb)
            if not drawn:
                mark_not_run(ax)
            else:
                ax.set_xticks([pos[v] for v in values], [_fmt_param(v) for v in values])
                ax.grid(alpha=0.3)
                have = set(pick_rows(tp, dataset=dataset, backbone=bb, metric=metric, N=N)[param].astype(float))
                for v in values:
                    if not any(np.isclose(v, h) for h in have):
                        ax.text(pos[v], 0.04, "not run", transform=ax.get_xaxis_transform(), rotation=90,
                                ha="center", va="bottom", color="#888888", fontsize=7)
            if i == 0:
                ax.set_title(f"{label(bb)} ({_seeds_text((seeds or {}).get(bb, ()))})" if drawn else label(bb))
            if j == 0:
                ax.set_ylabel(f"{metric}@{N}")
            if i == 1 and drawn:
                ax.set_xlabel("k (inner updates)" if param == "k" else "λ (adversarial weight)")
    order = sorted(handles, key=lambda s: (not s.startswith("TP"), "new" in s))
    figure_legend(fig, [handles[k] for k in order], order)
    what = "inner update count k" if param == "k" else "adversarial weight λ"
    fig.suptitle(f"{label(dataset)}: TP against the {what} (mean ± std over the seeds each column names)",
                 fontsize=11)
    return fig


def _seeds_text(seeds: Sequence[int]) -> str:
    if not seeds:
        return "seeds"
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(x) for x in seeds)


def _fmt_param(v: float) -> str:
    return f"{v:g}"


def save_figure(fig: Figure, stem: str, title: str, folder: Path) -> SavedFigure:
    """Write ``fig`` as ``folder/stem.png`` and ``folder/stem.pdf``; return both paths and the PNG as a data URI."""
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{stem}.png", folder / f"{stem}.pdf"
    fig.savefig(png, format="png", dpi=DPI)
    fig.set_layout_engine("none")  # keep the layout computed for the PNG: the PDF has the same size
    fig.savefig(pdf, format="pdf", metadata={"CreationDate": None})  # no clock: the same data, the same file
    uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    return SavedFigure(stem, title, png, pdf, uri)
