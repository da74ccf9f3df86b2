"""The report's figure sections: Figures 4-5 (the main study's baseline and TP), Figures 6-7 (the ablation
study's k and λ), TP's training diagnostics and the validation curves that show where each method stopped. Every
declared dataset gets its figure; a panel or point without a finished run says "not run"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tplib.aggregate import summarise
from tplib.report import figures as F
from tplib.report import training_figures as TF
from tplib.report.load import (
    Aggregate,
    control_variant,
    first_config,
    protocol_words,
    setting,
    tp_variant,
)

__all__ = ["FigureSection", "ablation_figures", "curves_section", "diagnostics_section", "main_figures"]


@dataclass
class FigureSection:
    key: str
    nav: str
    title: str
    caption: str
    figures: list[F.SavedFigure] = field(default_factory=list)


def _rows(df: pd.DataFrame, **eq: object) -> pd.DataFrame:
    if df.empty:
        return df
    m = np.ones(len(df), dtype=bool)
    for col, val in eq.items():
        m &= (df[col] == val).to_numpy(dtype=bool)
    return df[m]


def declared(agg: Aggregate, study: str, datasets: Sequence[str], backbones: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The study's (dataset, backbones) cells in the report's order."""
    cells = (agg.studies.get(study) or {}).get("cells") or {}
    order = [d for d in datasets if d in cells] + [d for d in cells if d not in datasets]
    return [(d, [b for b in backbones if b in cells[d]] + [b for b in cells[d] if b not in backbones]) for d in order]


def main_figures(agg: Aggregate, study: str, datasets: Sequence[str], backbones: Sequence[str], folder: Path
                 ) -> list[FigureSection]:
    """Figures 4 and 5 of the main study, one figure per declared dataset."""
    s = agg.study("summary", study)
    tp_name = tp_variant(agg, study)
    base, tp = _rows(s, variant=control_variant(agg, study)), _rows(s, variant=tp_name)
    sections = []
    for key, title, caption, draw, prefix in (
        ("fig4", "Figure 4: top-N accuracy, baseline vs TP",
         ("HR@N and NDCG@N for N in the evaluated cut-offs, existing (top two rows) and new users (bottom two), per "
          "backbone; error bars: standard deviation over seeds."), F.fig_topn, "fig4_topn"),
        ("fig5", "Figure 5: head vs tail users",
         ("HR@10 and NDCG@10 of head (top 20% by interactions) and tail users, existing and new, baseline vs TP; "
          "error bars: standard deviation over seeds. The paper shows Game and MovieTweetings; every dataset of the "
          "study is shown here."), F.fig_headtail, "fig5_headtail"),
    ):
        sec = FigureSection(key, f"Figure {key[-1]}", f"{title} (study {study})", caption)
        for ds, bbs in declared(agg, study, datasets, backbones):
            fig = draw(base, tp, ds, bbs, "TP")
            sec.figures.append(F.save_figure(fig, f"{prefix}_{ds}", F.label(ds), folder))
        sections.append(sec)
    return sections


def _shared_seeds(tp_runs: pd.DataFrame, param: str) -> list[int]:
    """The seeds that every ``param`` value present in ``tp_runs`` (one backbone's) has (may be none)."""
    groups = tp_runs.groupby(param, dropna=False)["seed"]
    return sorted(int(x) for x in set.intersection(*(set(g) for _, g in groups)))


def ablation_figures(agg: Aggregate, study: str, datasets: Sequence[str], backbones: Sequence[str], folder: Path
                     ) -> list[FigureSection]:
    """Figures 6 (k at the study TP variant's λ) and 7 (λ at its k) of the ablation study: the values its variants
    declare, each backbone's points over the seeds all of them have, the baseline over the same seeds."""
    st = agg.studies.get(study) or {}
    ref = tp_variant(agg, study)
    sections = []
    if ref is None:
        return sections
    cells = declared(agg, study, datasets, backbones)
    ref_cfg = first_config(agg, study, cells, ref)
    ref_k, ref_lam = setting(ref_cfg, "tp.k"), setting(ref_cfg, "tp.lam")
    runs = agg.study("runs", study)
    tp_specs = {v: spec for v, spec in (st.get("variants") or {}).items() if spec.get("method") == "tp"}
    for key, param, fixed_col, fixed, title in (
        ("fig6", "k", "lam", ref_lam, f"Figure 6: TP against the inner update count k (λ = {ref_lam:g})"),
        ("fig7", "lam", "k", ref_k, f"Figure 7: TP against the adversarial weight λ (k = {ref_k})"),
    ):
        values = set()
        for v in tp_specs:
            c = first_config(agg, study, cells, v)
            if np.isclose(setting(c, f"tp.{fixed_col}"), fixed):
                values.add(float(setting(c, f"tp.{param}")))
        values = sorted(values)
        sec = FigureSection(
            key, title.split(":")[0], f"{title} (study {study})",
            "TP's HR@10 and NDCG@10 for existing (solid) and new (dashed) users at each value the study declares; "
            "the study's baseline as thin horizontal lines; error bars: standard deviation over seeds. Every point "
            "of a backbone's column, and its baseline, uses the seeds that all of that column's points have (named "
            "in its title); a value without a finished run is marked \"not run\". The paper shows ML1M and "
            "MovieTweetings (k: worst at 1, flat from 2; λ: best in the middle).",
        )
        if len(values) < 2:
            continue
        for ds, bbs in cells:
            d = runs[(runs["method"] == "tp").to_numpy(dtype=bool) & (runs["dataset"] == ds).to_numpy(dtype=bool)]
            d = d[np.isclose(d[fixed_col].astype(float), fixed)] if len(d) else d
            seeds, parts = {}, []
            for bb, g in d.groupby("backbone"):
                seeds[bb] = _shared_seeds(g, param)
                use = seeds[bb] or sorted(int(x) for x in set(g["seed"]))
                same = _rows(runs, dataset=ds, backbone=bb, variant=control_variant(agg, study))
                parts += [same[same["seed"].isin(use)], g[g["seed"].isin(use)]]
            cells_df = summarise(pd.concat(parts)) if parts else agg.study("summary", study).iloc[0:0]
            fig = F.fig_ablation(_rows(cells_df, method="tp"), _rows(cells_df, method="baseline"), ds, bbs, param,
                                 values, seeds=seeds)
            sec.figures.append(F.save_figure(fig, f"{key}_{'k' if param == 'k' else 'lambda'}_{ds}", F.label(ds),
                                             folder))
        sections.append(sec)
    return sections


def diagnostics_section(agg: Aggregate, study: str, datasets: Sequence[str], backbones: Sequence[str],
                        folder: Path) -> FigureSection:
    """TP's per-epoch diagnostics in the main study, the discriminator's accuracy against the tail share."""
    tp_name = tp_variant(agg, study)
    diag = _rows(agg.study("diagnostics", study), variant=tp_name)
    cells = declared(agg, study, datasets, backbones)
    tail = 1 - setting(first_config(agg, study, cells, tp_name), "split.head_frac") if tp_name else 0.8
    sec = FigureSection(
        "diag", "Diagnostics", f"TP training diagnostics (study {study})",
        "Per epoch, mean over seeds (band: ±1 std): the prediction loss, the discriminator's BCE (adv_loss) and "
        "accuracy (disc_acc), and the alignment between different users' inner-step gradients (cosine and dot "
        "product; head–head, head–tail, tail–tail pairs). Gradient alignment is what TP's k ≥ 2 rewards (Eq. 8). "
        f"The dotted line in the accuracy panels is the tail share ({tail:.0%} of the users drawn): a "
        "discriminator that always answers “tail” scores it, so an accuracy at or below it means head and tail "
        "sequence embeddings are not separable.",
    )
    for ds, bbs in cells:
        fig = TF.fig_diagnostics(diag, ds, bbs, f"(study {study})", tail_share=tail)
        sec.figures.append(F.save_figure(fig, f"diag_{ds}", F.label(ds), folder))
    return sec


def curves_section(agg: Aggregate, study: str, datasets: Sequence[str], backbones: Sequence[str], folder: Path,
                   metric: str = "valid_NDCG@10") -> FigureSection:
    """Validation accuracy per epoch of the main study's baseline and TP: where each run peaked and stopped."""
    diag = agg.study("diagnostics", study)
    tp_name = tp_variant(agg, study)
    protocol = (agg.studies.get(study) or {}).get("protocol") or {}
    series = [("Baseline", _rows(diag, variant=control_variant(agg, study)), F.COLORS["baseline"]),
              ("TP", _rows(diag, variant=tp_name), F.COLORS["tp"])]
    sec = FigureSection(
        "curves", "Curves", f"Validation accuracy per epoch (study {study})",
        f"{metric.replace('valid_', 'Validation ')} (existing users' second-to-last items, the model-selection "
        "signal) at each validation, mean over the seeds still training at that epoch (band: ±1 std), per "
        "backbone. Both methods follow one rule: " + (protocol_words(protocol) if protocol else "—") + ". A curve "
        "still rising where its runs end at the epoch cap means the cap cut them off; the study tables count such "
        "runs (\"capped\").",
    )
    for ds, bbs in declared(agg, study, datasets, backbones):
        fig = TF.fig_curves(series, ds, bbs, metric)
        sec.figures.append(F.save_figure(fig, f"curves_{ds}", F.label(ds), folder))
    return sec


def search_figures(agg: Aggregate, trials: pd.DataFrame, folder: Path) -> list[FigureSection]:
    """The fair test's trial histories: per search and dataset, every trial's validation score and the best so far,
    the baseline's and TP's searches in one plot per backbone."""
    sections = []
    for name, tu in (agg.config.get("tunings") or {}).items():
        sec = FigureSection(
            f"search-{name}", "Searches", f"The searches of tuning {name}: every trial",
            "Each trial's best validation NDCG@10 (dots; a pruned trial's best before it was stopped) and the best so "
            f"far (line), the baseline's search and TP's, {tu['trials']} trials each on seed {tu.get('seed', 0)}'s "
            "split. Only validation items are read.",
        )
        for ds, bbs in (tu.get("cells") or {}).items():
            fig = TF.fig_trials(trials, name, ds, bbs)
            sec.figures.append(F.save_figure(fig, f"search_{name}_{ds}", F.label(ds), folder))
        sections.append(sec)
    return sections
