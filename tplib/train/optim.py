"""The one Adam used by every trainer: PyTorch's fused implementation (the same update, computed in one kernel
per parameter group: ~10x faster than the default per-tensor loop on CPU for ML-1M/Game item tables)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adam(params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
         weight_decay: float = 0.0) -> torch.optim.Adam:
    return torch.optim.Adam(list(params), lr=lr, betas=betas, weight_decay=weight_decay, fused=True)
