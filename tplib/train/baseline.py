"""The baseline's update rule: Adam on the BCE loss of mini-batches that mix users (ordinary training)."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from tplib.config import RunConfig
from tplib.data.sampler import TrainSampler
from tplib.models.base import SeqRecModel
from tplib.train.loss import bce_loss
from tplib.train.optim import adam


class BaselineUpdater:
    def __init__(self, cfg: RunConfig, model: SeqRecModel, *_: object) -> None:
        """Adam (``train.lr``, β2 ``train.adam_beta2``, L2 ``train.weight_decay``) on ``model``; the sampler,
        split and dataset the other methods take are not needed."""
        self.model = model
        self.batch_size = cfg.train.batch_size
        self.opt = adam(model.parameters(), cfg.train.lr, (0.9, cfg.train.adam_beta2), cfg.train.weight_decay)

    def run_epoch(self, sampler: TrainSampler, bar: tqdm) -> dict[str, float]:
        total, n = 0.0, 0
        for batch in sampler.epoch(self.batch_size):
            loss = bce_loss(self.model, batch).loss
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item()
            n += 1
        return {"loss": total / max(n, 1)}

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
