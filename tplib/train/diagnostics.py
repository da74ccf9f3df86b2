"""Mechanism diagnostics of TP, measured on chain 0 of every ``tp.diag_every``-th outer step:

- inner products and cosines between the inner-step gradients of different users (head–head, head–tail,
  tail–tail pairs), the quantities the paper's alignment argument is about (Eq. 8);
- the alignment term's share of the outer update (:func:`alignment_share`): how far the chain's Θ − θ_k is from
  the sum of its users' gradients all taken at Θ. Near 0, TP is Adam on the k users' summed gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from tplib.data.sampler import Batch

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
    shares = diag.get("align_share", [])
    out["diag_align_share"] = float(np.nanmean(shares)) if shares else float("nan")
    return out


def alignment_share(objective: nn.Module, steps: list[tuple[Batch, torch.Tensor]], alpha: float) -> float:
    """The alignment term's share of one chain's outer update, ||G − G_0|| / ||G|| over the model's parameters.

    G = α Σ_i g_i(θ_{i−1}) is the chain's Θ − θ_k (plain SGD from Θ over its k inner steps); G_0 = α Σ_i g_i(Θ)
    is the same users' gradients all taken at Θ, what TP would use if the inner steps did not move (k = 1 steps
    on the same users, summed). For k = 2, G − G_0 ≈ −α² H_2 g_1, the term whose expectation rewards aligned
    gradients (Eq. 8). ``steps``: the chain's mini-batches with each row's head/tail label; ``objective``: the
    inner step's loss (:class:`tplib.train.chains.Objective`: the model and the discriminator, which also moves
    in the inner steps). Computed with dropout off, so that G and G_0 differ by the parameters' movement alone;
    the parameters are restored exactly and no random number is drawn, so training is unchanged."""
    named = [(n, p) for n, p in objective.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    model = [i for i, (n, _) in enumerate(named) if n.startswith("model.")]
    start = [p.detach().clone() for p in params]
    was_training = objective.training
    objective.eval()

    def grads(b: Batch, labels: torch.Tensor) -> list[torch.Tensor]:
        loss = objective(b.seqs, b.pos, b.neg, b.users, labels)[0]
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]

    try:
        later = [grads(b, lab) for b, lab in steps[1:]]  # steps 2..k at Θ (step 1's is the trajectory's first)
        g = [torch.zeros_like(p) for p in params]
        first: list[torch.Tensor] = []
        for b, lab in steps:
            gi = grads(b, lab)
            first = first or gi
            for acc, x, p in zip(g, gi, params):
                acc.add_(x)
                with torch.no_grad():
                    p.sub_(alpha * x)
        g0 = [sum(gs) for gs in zip(first, *later)]
    finally:
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
        objective.train(was_training)
    diff = torch.sqrt(sum(((g[i] - g0[i]) ** 2).sum() for i in model))
    norm = torch.sqrt(sum((g[i] ** 2).sum() for i in model))
    return float(diff / norm) if norm > 0 else float("nan")
