"""Mechanism diagnostics of TP: inner products and cosines between the inner-step gradients of different users
(head–head, head–tail, tail–tail pairs), the quantities the paper's alignment argument is about (Eq. 8).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

PAIR_TYPES = ("hh", "ht", "tt")


def record_alignment(diag: dict[str, list[float]], flat: list[torch.Tensor], heads: np.ndarray) -> None:
    """For every pair of inner steps (i < j) of one chain: their gradients' dot product and cosine, filed under
    head–head, head–tail or tail–tail by the two users' labels."""
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            kind = PAIR_TYPES[2 - int(heads[i]) - int(heads[j])]
            dot = torch.dot(flat[i], flat[j]).item()
            norm = (flat[i].norm() * flat[j].norm()).item()
            diag[f"dot_{kind}"].append(dot)
            diag[f"cos_{kind}"].append(dot / norm if norm > 0 else float("nan"))


def summarise_alignment(diag: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in PAIR_TYPES:
        dots, coss = diag.get(f"dot_{kind}", []), diag.get(f"cos_{kind}", [])
        out[f"diag_dot_{kind}"] = float(np.mean(dots)) if dots else float("nan")
        out[f"diag_cos_{kind}"] = float(np.nanmean(coss)) if coss else float("nan")
        out[f"diag_pairs_{kind}"] = float(len(dots))
    return out
