"""The training methods: each an update rule behind one interface, in one table. The training loop
(:mod:`tplib.train.loop`) looks a run's method up here and knows none by name."""

from __future__ import annotations

from typing import Any, Protocol

from tqdm import tqdm

from tplib.config import RunConfig
from tplib.data.dataset import SeqDataset, Split
from tplib.data.sampler import TrainSampler
from tplib.models.base import SeqRecModel
from tplib.train.baseline import BaselineUpdater
from tplib.train.tp import TPUpdater


class Updater(Protocol):
    """A method's update rule: one epoch of parameter updates over the sampler's data; its own state (optimisers,
    discriminator, random generator) as a dict, for resuming. Built as ``Updater(cfg, model, sampler, split, ds)``
    after the model and the shared sampler."""

    def run_epoch(self, sampler: TrainSampler, bar: tqdm) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


#: ``train.method`` -> its update rule (RunConfig.check() rejects any other name).
UPDATERS: dict[str, type] = {"baseline": BaselineUpdater, "tp": TPUpdater}


def make_updater(cfg: RunConfig, model: SeqRecModel, sampler: TrainSampler, split: Split, ds: SeqDataset) -> Updater:
    return UPDATERS[cfg.method](cfg, model, sampler, split, ds)
