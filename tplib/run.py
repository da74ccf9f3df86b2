"""Loading a finished run and evaluating it on the test items (``tp evaluate``): the model and the evaluation
only, no trainer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import torch

from tplib.config import RunConfig, config_from_dict, deep_merge, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.evaluate import metrics_by_group, ranks_on_test
from tplib.io import ConfigError, DataError, atomic_write_bytes, atomic_write_text
from tplib.models import build_model
from tplib.models.base import SeqRecModel
from tplib.runtime import resolve_device

EVAL_OVERRIDABLE = ("eval", "train.device", "train.eval_batch_users")


def load_run(run: Path, ds: SeqDataset, overrides: list[str] | None = None) -> tuple[RunConfig, SeqRecModel]:
    """The run's config (with evaluation-time overrides) and its best checkpoint, on the configured device."""
    summary, ckpt_path = run / "train_summary.json", run / "model.pt"
    if not summary.is_file() or not ckpt_path.is_file():
        raise DataError(f"{run}: not a finished run (no train_summary.json or model.pt); run `tp train --out {run}`")
    sets = parse_sets(overrides or [])
    for section, value in sets.items():
        keys = [section] if not isinstance(value, dict) else [f"{section}.{k}" for k in value]
        for key in keys:
            if section != "eval" and key not in EVAL_OVERRIDABLE:
                raise ConfigError(f"--set {key}: only {', '.join(EVAL_OVERRIDABLE)} can change at evaluation")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    cfg = config_from_dict(deep_merge(ckpt["config"], sets))
    if ckpt["n_items"] != ds.n_items or ckpt["n_users"] != ds.n_users or ckpt["dataset"] != ds.name:
        raise DataError(
            f"{ckpt_path}: trained on {ckpt['dataset']} ({ckpt['n_users']} users, {ckpt['n_items']} items), but "
            f"--data holds {ds.name} ({ds.n_users} users, {ds.n_items} items); pass the data the run was trained on"
        )
    model = build_model(cfg.backbone, ds.n_items, ds.n_users, cfg.model).to(resolve_device(cfg.train.device))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return cfg, model


def evaluate_run(ds: SeqDataset, run: Path, out: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Test metrics of existing and new users (all/head/tail) -> ``out`` (metrics.json), with ``ranks.csv.gz``
    (gzip without a time stamp: the same ranks give the same bytes) and ``evaluate_config.json`` beside it.
    Returns the metrics."""
    cfg, model = load_run(run, ds, overrides)
    split = make_split(ds, cfg.seed, cfg.split.new_frac, cfg.split.head_frac)
    ranks = ranks_on_test(model, ds, split, cfg.eval.mask_seen, cfg.train.eval_batch_users)
    metrics = metrics_by_group(ranks, cfg.eval.Ns)
    out.parent.mkdir(parents=True, exist_ok=True)
    packed = gzip.compress(ranks.to_csv(index=False).encode(), mtime=0)
    atomic_write_bytes(out.parent / "ranks.csv.gz", lambda f: f.write(packed))
    atomic_write_text(out.parent / "evaluate_config.json", cfg.to_json() + "\n")
    atomic_write_text(out, json.dumps(metrics, indent=2) + "\n")  # last: marks a complete evaluation
    return metrics
