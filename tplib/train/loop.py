"""The training loop shared by every method: epochs, validation, early stopping, checkpoints, logs.

Methods differ only in their update rule (an :class:`~tplib.train.methods.Updater`, looked up by name in
:mod:`tplib.train.methods`: the baseline's Adam step on mixed mini-batches, or TP's inner/outer steps). Model selection uses validation NDCG@10 of existing users only (never test items).

A run folder receives (each written atomically):
- ``config.json``: the resolved config;
- ``model.pt``: the best checkpoint (by validation), with its config;
- ``train_log.csv``: one row per epoch (losses, seconds, validation metrics where evaluated);
- ``train_summary.json``: best epoch, best validation score, epochs run, wall time, device, versions. Written last:
  its presence marks a finished run.

While a run is in progress the folder also holds ``resume.pt``, rewritten (atomically) after every validation:
the model, the method's optimiser(s) and discriminator, every random generator's state, the best checkpoint so far
and the log rows. Training the same config into the same folder again continues from it, and the finished run is
the one an uninterrupted run gives, bit for bit (a test proves it), so a run killed by a job's time limit, a cluster's
time limit or Ctrl-C loses at most the epochs since its last validation. A ``resume.pt`` from another config is
ignored (and replaced). It is deleted once ``train_summary.json`` is written.
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from tplib.config import RunConfig, with_defaults
from tplib.data.dataset import SeqDataset, Split, make_split
from tplib.data.sampler import TrainSampler
from tplib.evaluate import validation_ranks
from tplib.io import atomic_torch_save, atomic_write_text
from tplib.metrics import metrics_from_ranks
from tplib.models import build_model
from tplib.models.base import SeqRecModel
from tplib.runtime import (
    gc_frozen,
    resolve_device,
    rng_for,
    seed_everything,
    set_threads,
)
from tplib.train import methods

log = logging.getLogger(__name__)


RESUME = "resume.pt"


def build_for(cfg: RunConfig, ds: SeqDataset, device: torch.device) -> SeqRecModel:
    return build_model(cfg.backbone, ds.n_items, ds.n_users, cfg.model).to(device)


def build_training(
    cfg: RunConfig, ds: SeqDataset, split: Split, device: torch.device
) -> tuple[SeqRecModel, TrainSampler, methods.Updater]:
    """A fresh model, the shared sampler (seeded from ``cfg.seed``) and the method's update rule."""
    model = build_for(cfg, ds, device)
    model.set_trained_users(split.existing)  # Caser's "mean" embedding for unseen users averages these only
    mode = "sequence" if model.all_positions else "window"
    sampler = TrainSampler(ds, split, model.input_len, mode, rng_for(cfg.seed, 1), cfg.model.caser_T, device)
    return model, sampler, methods.make_updater(cfg, model, sampler, split, ds)


def fit(
    cfg: RunConfig, ds: SeqDataset, out: str | Path, resume: bool = True,
    on_validation: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train ``cfg.backbone`` with ``cfg.method`` on ``ds``; write the run folder ``out``; return the summary.

    With ``resume`` (the default), continue from ``out/resume.pt`` when it was written for this very config and
    dataset; otherwise start from scratch. ``on_validation(epoch, score)`` is called after every validation with
    its score (the selection metric); an exception it raises (e.g. a tuner's pruning) ends training there, with the
    run folder left unfinished."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_summary.json").unlink(missing_ok=True)  # a rerun is not finished until it says so
    atomic_write_text(out / "config.json", cfg.to_json() + "\n")
    set_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.seed)

    split = make_split(ds, cfg.seed, cfg.split.new_frac, cfg.split.head_frac)
    model, sampler, updater = build_training(cfg, ds, split, device)

    metric = cfg.eval.select_metric
    best_score, best_epoch, best_state = -1.0, 0, copy.deepcopy(model.state_dict())
    evals_since_best, rows = 0, []
    quiet = not (cfg.train.progress and sys.stderr.isatty())
    t0 = time.perf_counter()
    epoch, wall_before, resumed_at = 0, 0.0, []
    saved = _load_resume(out / RESUME, cfg, ds, device) if resume else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        updater.load_state_dict(saved["updater"])
        sampler.rng.bit_generator.state = saved["sampler_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        epoch, rows = saved["epoch"], saved["rows"]
        best_score, best_epoch, best_state = saved["best_score"], saved["best_epoch"], saved["best_state"]
        evals_since_best, wall_before = saved["evals_since_best"], saved["wall_seconds"]
        resumed_at = [*saved["resumed_at"], epoch]
        atomic_torch_save(_checkpoint(cfg, ds, best_state, best_epoch, best_score), out / "model.pt")
        log.info("resuming from %s at epoch %d (best %.4f @ %d)", out / RESUME, epoch, best_score, best_epoch)
    log.info(
        "training %s/%s on %s (seed %d): %d existing users, %d rows per epoch, device %s",
        cfg.backbone, cfg.method, ds.name, cfg.seed, len(split.existing), sampler.n_units, device,
    )
    last = epoch if saved is not None and saved["stopped"] else cfg.train.max_epochs  # stopped: nothing left
    with gc_frozen(), tqdm(total=cfg.train.max_epochs, initial=epoch, desc=f"{cfg.backbone}/{cfg.method}",
                           disable=quiet, unit="ep") as bar:
        for epoch in range(epoch + 1, last + 1):
            t_ep = time.perf_counter()
            model.train()
            losses = updater.run_epoch(sampler, bar)
            row: dict[str, Any] = {"epoch": epoch, **losses, "train_seconds": time.perf_counter() - t_ep}
            if epoch % cfg.train.eval_every == 0 or epoch == cfg.train.max_epochs:
                t_ev = time.perf_counter()
                ranks = validation_ranks(model, ds, split, cfg.eval.mask_seen, cfg.train.eval_batch_users)
                valid = metrics_from_ranks(ranks, tuple(sorted({10, int(metric.split("@")[1])})))
                score = valid[metric]
                row.update({f"valid_{k}": v for k, v in valid.items() if k != "users"})
                row["eval_seconds"] = time.perf_counter() - t_ev
                if score > best_score:
                    best_score, best_epoch, evals_since_best = score, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                    atomic_torch_save(_checkpoint(cfg, ds, best_state, epoch, score), out / "model.pt")
                else:
                    evals_since_best += 1
                bar.set_postfix(loss=f"{losses.get('loss', float('nan')):.4f}", valid=f"{score:.4f}", best=best_epoch)
                log.info("epoch %d loss %.4f valid %s %.4f (best %.4f @ %d)", epoch, losses.get("loss", float("nan")),
                         metric, score, best_score, best_epoch)
                if on_validation is not None:
                    on_validation(epoch, score)
            rows.append(row)
            bar.update(1)
            stop = "eval_seconds" in row and evals_since_best > cfg.train.patience and epoch >= cfg.train.min_epochs
            if "eval_seconds" in row:
                atomic_torch_save(
                    {
                        "config": cfg.to_dict(), "dataset": _dataset_id(ds), "epoch": epoch, "rows": rows,
                        "stopped": stop, "model": model.state_dict(), "updater": updater.state_dict(),
                        "sampler_rng": sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        "best_score": best_score, "best_epoch": best_epoch, "best_state": best_state,
                        "evals_since_best": evals_since_best, "resumed_at": resumed_at,
                        "wall_seconds": wall_before + time.perf_counter() - t0,
                    },
                    out / RESUME,
                )
            if stop:
                log.info("early stop at epoch %d: no better validation %s in %d evaluations", epoch, metric,
                         evals_since_best)
                break

    wall = wall_before + time.perf_counter() - t0
    if not (out / "model.pt").exists():  # max_epochs reached without any evaluation cannot happen, but be safe
        atomic_torch_save(_checkpoint(cfg, ds, best_state, best_epoch, best_score), out / "model.pt")
    atomic_write_text(out / "train_log.csv", pd.DataFrame(rows).to_csv(index=False))
    summary = {
        "best_epoch": best_epoch,
        f"best_valid_{metric}": best_score,
        "epochs_run": epoch,
        "wall_seconds": round(wall, 3),
        "seconds_per_epoch": round(float(np.mean([r["train_seconds"] for r in rows])), 4),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "existing_users": len(split.existing),
        "new_users": len(split.new),
        "rows_per_epoch": int(sampler.n_units),
        "resumed_at_epochs": resumed_at,
    }
    atomic_write_text(out / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    (out / RESUME).unlink(missing_ok=True)
    return summary


def _dataset_id(ds: SeqDataset) -> dict[str, Any]:
    return {"name": ds.name, "n_items": ds.n_items, "n_users": ds.n_users, "interactions": int(ds.n_interactions)}


def _load_resume(path: Path, cfg: RunConfig, ds: SeqDataset, device: torch.device) -> dict[str, Any] | None:
    """The saved state at ``path`` if it belongs to this config and dataset, else None (with a log line)."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # an unreadable file cannot be resumed from; it will be overwritten
        log.warning("ignoring %s (unreadable: %s); training from scratch", path, e)
        return None
    if with_defaults(saved.get("config")) != cfg.to_dict() or saved.get("dataset") != _dataset_id(ds):
        log.warning("ignoring %s: written for another config or dataset; training from scratch", path)
        return None
    saved["torch_rng"] = saved["torch_rng"].cpu()
    if saved.get("cuda_rng") is not None:
        saved["cuda_rng"] = saved["cuda_rng"].cpu()
    return saved


def _checkpoint(cfg: RunConfig, ds: SeqDataset, state: dict, epoch: int, score: float) -> dict[str, Any]:
    return {
        "config": cfg.to_dict(),
        "state_dict": state,
        "epoch": epoch,
        "valid_score": score,
        "n_items": ds.n_items,
        "n_users": ds.n_users,
        "dataset": ds.name,
    }
