"""The three backbones behind one interface (:class:`~tplib.models.base.SeqRecModel`), registered by name."""

from __future__ import annotations

from tplib.config import ModelConfig
from tplib.models.base import SeqRecModel
from tplib.models.caser import Caser
from tplib.models.gru4rec import GRU4Rec
from tplib.models.sasrec import SASRec

MODELS: dict[str, type[SeqRecModel]] = {"gru4rec": GRU4Rec, "caser": Caser, "sasrec": SASRec}


def build_model(backbone: str, n_items: int, n_users: int, cfg: ModelConfig) -> SeqRecModel:
    """A freshly initialised backbone (initialisation draws from torch's global RNG: seed it first)."""
    try:
        cls = MODELS[backbone]
    except KeyError:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(sorted(MODELS))}") from None
    return cls(n_items, n_users, cfg)


__all__ = ["MODELS", "Caser", "GRU4Rec", "SASRec", "SeqRecModel", "build_model"]
