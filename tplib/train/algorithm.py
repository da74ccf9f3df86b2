"""TP's update rule as the paper states it (Algorithm 1, §3.2–3.4), in plain PyTorch: the reference that the fast
path (:mod:`tplib.train.chains`) must match, and that ``tests/test_tp.py`` checks it against.

One outer step, with the sign slips of the printed Eq. 6 and Algorithm 1 fixed::

    Θ ← θ ; Θ_d ← θ_d
    for i in 1..k:                                  # k inner steps, plain SGD with learning rate α
        u ← the next user of a random permutation of the existing users
        D ← a mini-batch of u's L-length subsequences with their next items (the shared sampler)
        θ   ← θ   − α ∇θ  [ L(D; θ) − λ · BCE_d(D; θ, θ_d) ]
        θ_d ← θ_d − α ∇θd [ BCE_d(D; θ, θ_d) ]
    g ← Θ − θ ; g_d ← Θ_d − θ_d                     # from the start toward the inner result
    θ ← Θ ; θ_d ← Θ_d ; one Adam step (lr β) on θ with gradient g and on θ_d with g_d

``L`` is the baseline's loss (Eq. 2, :func:`tplib.train.loss.bce_loss`); ``BCE_d`` is the discriminator's binary
cross-entropy on φ with label R = 1 for head users (the top 20% of existing users by interactions). Both
gradients come from ONE backward pass through a gradient-reversal layer of weight λ placed between φ and the
discriminator: the discriminator's parameters receive ∇BCE_d and the model's receive −λ∇BCE_d, exactly the
min–max of Eq. 10 (``tests/test_tp.py`` checks this against the explicit two-gradient form). λ = 0 leaves the
model's gradient untouched.

``P`` (a harness extension; P = 1 is the paper's algorithm) runs P inner chains from the same Θ, each on its own k
users, and averages their deltas (batched Reptile). ``align`` False (the control without alignment) takes every
inner gradient at Θ: the chain's delta is α Σ_i g_i(Θ), Θ − θ_k without the inner steps' moves.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tplib.data.sampler import Batch
from tplib.models.base import SeqRecModel
from tplib.train.loss import LossOut, bce_loss


class Discriminator(nn.Module):
    """f_d: a small MLP on φ that predicts head (1) vs tail (0). Returns logits."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, phi: torch.Tensor) -> torch.Tensor:  # (..., D) -> (...)
        return self.net(phi).squeeze(-1)


def reverse_grad(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by −λ backward. Written with plain tensor ops (the forward value
    is exactly ``x``) so that it also works under ``torch.func`` transforms."""
    xd = x.detach()
    return xd + lam * (xd - x)


def adversarial_loss(
    disc: Discriminator, out: LossOut, labels: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE_d over the batch's real subsequences (through the gradient-reversal layer) and the discriminator's
    accuracy. ``labels`` (B,) float: 1 for a head user's row, 0 for a tail user's."""
    logits = disc(reverse_grad(out.phi, lam))  # (B, M')
    y = labels[:, None].expand_as(logits)
    m = out.mask.to(logits.dtype)
    n = m.sum().clamp(min=1)
    bce_d = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * m).sum() / n
    acc = ((((logits > 0).to(y.dtype) == y).to(m.dtype)) * m).sum() / n
    return bce_d, acc.detach()


def inner_grads(
    model: SeqRecModel, disc: Discriminator, batch: Batch, label: torch.Tensor, lam: float
) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, float]]:
    """Gradients of one inner step on one user's mini-batch ``batch`` (``label``: 1. for a head user, 0. for a tail
    user): (∇θ[L − λ·BCE_d] for the model's trainable parameters, ∇θd[BCE_d] for the discriminator's, stats)."""
    out = bce_loss(model, batch)
    bce_d, acc = adversarial_loss(disc, out, label.expand(batch.users.shape[0]), lam)
    theta = [p for p in model.parameters() if p.requires_grad]
    params = theta + list(disc.parameters())
    grads = torch.autograd.grad(out.loss + bce_d, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    n = len(theta)
    return grads[:n], grads[n:], {"loss": out.loss.item(), "adv_loss": bce_d.item(), "disc_acc": acc.item()}


def reptile_outer_step(
    params: list[torch.Tensor],
    inner_grad: Callable[[int, int], list[torch.Tensor]],
    P: int,
    k: int,
    alpha: float,
    optimizers: list[torch.optim.Optimizer],
    align: bool = True,
) -> None:
    """Algorithm 1's outer iteration on ``params`` (θ and θ_d together).

    ``inner_grad(c, i)`` returns the gradients, at the current parameters, for inner step ``i`` of chain ``c``.
    Each of the P chains starts from the snapshot Θ and takes k plain-SGD steps of size ``alpha``; the
    parameters are restored to Θ and the optimizers take one step with gradient mean_c(Θ − θ_k^c). Without
    ``align`` each inner step is undone after its gradient is taken, so every gradient is taken at Θ.
    """
    start = [p.detach().clone() for p in params]
    delta = [torch.zeros_like(p) for p in params]
    for c in range(P):
        for i in range(k):
            grads = inner_grad(c, i)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(alpha * g)
                if not align:  # bank the step's share of Θ − θ_k, and go back to Θ
                    for dl, s, p in zip(delta, start, params):
                        dl.add_(s - p)
                        p.copy_(s)
        with torch.no_grad():
            for dl, s, p in zip(delta, start, params):
                dl.add_(s - p)  # Θ − θ_k; the optimizer's step subtracts it, moving θ toward the inner result
                p.copy_(s)
    with torch.no_grad():
        for p, dl in zip(params, delta):
            p.grad = dl / P
    for opt in optimizers:
        opt.step()
        opt.zero_grad(set_to_none=True)
