"""``tp report``: one self-contained HTML page from the aggregated tables (``tp aggregate``'s five CSVs, the runs'
and the declared cells' settings, ``configs.jsonl``, and the studies' ``config.yaml``), never from models,
checkpoints or run folders: every setting it states is one the aggregate recorded, none is rebuilt here.

The page holds the verdict grid and Table 3 (the main study only: every TP number beside a baseline of the same
study and protocol), Table 2 (dataset statistics beside the paper's), every study with its protocol stated once in
words and its results per dataset, Figures 4-7, the validation curves, TP's diagnostics, the protocol's every
stated choice, provenance and the measured costs. Figures are embedded as PNG ``data:`` URIs and also written as
PNG and PDF into a figures folder. Whatever was declared but not run reads "not run"; nothing is dropped silently.
The page carries no clock time: its stamp is the commit of its inputs and a hash of its tables
(:func:`tplib.report.provenance.build_stamp`), so the same commit renders the same page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from tplib.config import BACKBONES
from tplib.io import DataError, atomic_write_text
from tplib.report import claims as C
from tplib.report import load as L
from tplib.report import protocol as R
from tplib.report import provenance as P
from tplib.report import sections as S
from tplib.report import tables as T
from tplib.report.figures import label
from tplib.trials import IMPORTANCE_MIN_TRIALS
from tplib.report.load import ALPHA, Aggregate, load_aggregate
from tplib.report.paper import PAPER_BACKBONES, PAPER_DATASETS

__all__ = ["build_context", "render_report"]

TITLE = ("Reproduction report: Learning Transferrable Parameters for Long-tailed Sequential User Behavior Modeling "
         "(Yin et al., KDD 2020)")


def _order(present: set[str], first: tuple[str, ...]) -> list[str]:
    return [*first, *sorted(present - set(first))]


def build_context(
    agg: Aggregate, figures_dir: Path, repo: Path | None = None, trials: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Everything the template shows (``trials``: every search's trials, results/tuning/trials.csv)."""
    trials = trials if trials is not None else pd.DataFrame(columns=["study", "trial", "state", "value"])
    report = agg.config.get("report") or {}
    main, ablation = report.get("main"), report.get("ablation")
    for role, name in (("main", main), ("ablation", ablation)):
        if name not in agg.studies:
            raise DataError(f"{agg.folder / 'config.yaml'}: report.{role} names no declared study ({name!r})")
    cells = [(d, b) for st in agg.studies.values() for d, bbs in (st.get("cells") or {}).items() for b in bbs]
    datasets = _order({d for d, _ in cells}, PAPER_DATASETS)
    backbones = [b for b in _order({b for _, b in cells}, PAPER_BACKBONES) if b in BACKBONES]
    tp_name = L.tp_variant(agg, main)
    main_cells = S.declared(agg, main, datasets, backbones)
    cfg = L.first_config(agg, main, main_cells, tp_name or "baseline")
    t3 = C.table3(agg.study("summary", main), tp_name, backbones, [d for d, _ in main_cells],
                  base_name=L.control_variant(agg, main))
    hp_header, hp_rows = R.hyperparameter_rows(agg, main, tp_name or "baseline", [d for d, _ in main_cells],
                                               backbones)
    dg_header, dg_rows = T.diagnostics_rows(
        agg.study("diagnostics", main)[lambda d: d["variant"] == tp_name], [d for d, _ in main_cells], backbones)
    study_order = [main, ablation, *[s for s in agg.studies if s not in (main, ablation)]]
    return {
        "title": TITLE,
        "stamp": P.build_stamp(agg, repo),
        "n_runs": len(agg.costs),
        "main": agg.studies[main] | {"name": main, "protocol_words": L.protocol_words(agg.studies[main]["protocol"])},
        "alpha": ALPHA,
        "stat_labels": [C.STAT_LABELS[c] for c in C.STAT_COLS],
        "table2": C.table2(agg.stats),
        "table3": t3,
        "studies": [T.study_blocks(agg, s, datasets, backbones) for s in study_order],
        "searches": T.search_blocks(agg, trials),
        "tuning_importance_min": IMPORTANCE_MIN_TRIALS,
        "figures": [
            *S.main_figures(agg, main, datasets, backbones, figures_dir),
            *S.ablation_figures(agg, ablation, datasets, backbones, figures_dir),
            S.curves_section(agg, main, datasets, backbones, figures_dir),
            S.diagnostics_section(agg, main, datasets, backbones, figures_dir),
            *S.search_figures(agg, trials, figures_dir),
        ],
        "diag_header": dg_header,
        "diag_rows": dg_rows,
        "protocol": R.protocol_rows(cfg, agg.stats, agg.study("runs", main), agg.studies[main]),
        "hp_header": hp_header,
        "hp_rows": hp_rows,
        "config_text": agg.config_text,
        "packages": P.package_versions(),
        "run_env": P.run_environment(agg.costs),
        "run_env_versions": any(c in agg.costs for c in ("torch", "python")),
        "data": P.data_provenance(agg.stats),
        "costs": T.costs_rows(agg.costs),
        "label": label,
        "datasets": datasets,
        "backbones": backbones,
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tplib.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    aggregate_dir: str | Path, out: str | Path, *, figures_dir: str | Path = "results/figures",
    readme: str | Path | None = None, trials: str | Path | None = None,
) -> Path:
    """Render the report of the tables in ``aggregate_dir`` to ``out`` (one HTML file, written atomically); the
    figures also go to ``figures_dir`` as PNG and PDF. ``readme``: a README whose results block
    (:func:`tplib.report.tables.readme_block`) is rewritten from the same tables. ``trials``: every search's
    trials (results/tuning/trials.csv) for the fair test's section. Returns ``out``."""
    agg = load_aggregate(aggregate_dir)
    table = None
    if trials is not None:
        if not Path(trials).is_file():
            raise DataError(f"{trials}: not found; the workflow's aggregate rule writes it")
        table = pd.read_csv(trials, dtype={"study": str})
    ctx = build_context(agg, Path(figures_dir), trials=table)
    atomic_write_text(Path(out), _environment().get_template("report.html.j2").render(**ctx))
    if readme is not None:
        path = Path(readme)
        if not path.is_file():
            raise DataError(f"{path}: not found; --readme names the README whose results block is rewritten")
        text = path.read_text(encoding="utf-8")
        new = C.replace_readme_block(text, C.readme_block(agg, ctx["datasets"], ctx["backbones"], ctx["searches"]))
        if new != text:
            atomic_write_text(path, new)
    return Path(out)
