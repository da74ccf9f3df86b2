"""TP's update rule as a training method: the epoch, the outer step's bookkeeping and its state for resuming.

What one outer step computes is Algorithm 1 (:mod:`tplib.train.algorithm`, the plain reference); how it is
computed fast is :mod:`tplib.train.chains`; ``docs/method.md`` describes both and every reading of the paper
they take. One TP epoch visits every existing user's mini-batch once (as the baseline's epoch does), in
``ceil(n_users / (k · P))`` outer steps.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tplib.config import RunConfig
from tplib.data.dataset import SeqDataset, Split
from tplib.data.sampler import Batch, TrainSampler
from tplib.models.base import SeqRecModel
from tplib.runtime import rng_for
from tplib.train.algorithm import Discriminator, inner_grads, reptile_outer_step
from tplib.train.chains import ChainEngine, Objective, FlatBatch
from tplib.train.diagnostics import alignment_share, record_alignment, summarise_alignment
from tplib.train.optim import adam


class TPUpdater:
    def __init__(
        self, cfg: RunConfig, model: SeqRecModel, sampler: TrainSampler, split: Split, ds: SeqDataset
    ) -> None:
        self.cfg, self.tp, self.model = cfg, cfg.tp, model
        device = next(model.parameters()).device
        self.disc = Discriminator(model.embed_dim, cfg.tp.disc_hidden).to(device)
        self.theta = [p for p in model.parameters() if p.requires_grad]
        self.theta_d = list(self.disc.parameters())
        # Outer optimiser: Adam (the paper: lr β = 0.001; β2 Adam's suggested 0.999 unless tp.adam_beta2 says else).
        self.opt = adam(self.theta, cfg.tp.beta, betas=(0.9, cfg.tp.adam_beta2))
        self.opt_d = adam(self.theta_d, cfg.tp.beta, betas=(0.9, cfg.tp.adam_beta2))
        self.rng = rng_for(cfg.seed, 2)
        # R per training user (aligned with sampler.users): 1 = head.
        self.is_head = np.isin(sampler.users, split.existing_head)
        self.labels = torch.as_tensor(self.is_head, dtype=torch.get_default_dtype(), device=device)
        self.outer_steps = 0
        per_target = sampler.mean_user_targets(cfg.tp.user_batch) if cfg.tp.loss_weighting == "target" else None
        self.objective = Objective(model, self.disc, cfg.tp.lam, per_target)
        self.chains = ChainEngine(cfg, model, self.objective, self.labels)

    def inner_grads(self, batch: Batch, label: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], dict]:
        """Gradients of one inner step: (∇θ[L − λ·BCE_d], ∇θd[BCE_d], stats)."""
        return inner_grads(self.model, self.disc, batch, label, self.tp.lam)

    def outer_step_reference(
        self, sampler: TrainSampler, users: np.ndarray, diag: dict | None = None, draw_at_once: bool = False
    ) -> list[dict[str, float]]:
        """One outer iteration, written plainly (full parameters, one autograd pass per inner step, chains one
        after another). The reference that :meth:`outer_step` must match; tests compare the two (drawing the
        mini-batches as the fast path does: ``draw_at_once`` where it runs the chains vectorised)."""
        stats: list[dict[str, float]] = []
        flat: list[torch.Tensor] = []
        batches = self.draw(sampler, users, draw_at_once)
        if diag is not None:
            self._record_share(diag, batches[0], users[0])

        def inner(c: int, i: int) -> list[torch.Tensor]:
            u = int(users[c, i])
            g, g_d, st = self.inner_grads(batches[c][i], self.labels[u])
            stats.append(st)
            if diag is not None and c == 0:
                flat.append(torch.cat([x.reshape(-1) for x in g]))
            return g + g_d

        reptile_outer_step(self.theta + self.theta_d, inner, users.shape[0], users.shape[1], self.tp.alpha,
                           [self.opt, self.opt_d], self.tp.align)
        if diag is not None:
            record_alignment(diag, flat, self.is_head[users[0]])
        self.outer_steps += 1
        return stats

    def outer_step(
        self, sampler: TrainSampler, users: np.ndarray, diag: dict | None = None
    ) -> list[dict[str, float]]:
        """One outer iteration on a (P, k) array of training-user positions. Returns per-inner-step stats. The same
        update as :meth:`outer_step_reference`, computed faster and exactly (:mod:`tplib.train.chains`)."""
        P, _ = users.shape
        if self.chains.vectorises(P):  # all P·k mini-batches in one flat batch (one sampler call)
            batches = self.chains.flat_batches(sampler, users)
        else:
            batches = self.draw(sampler, users, False)
        if diag is not None:
            self._record_share(diag, batches.chain(0) if isinstance(batches, FlatBatch) else batches[0], users[0])
        flat: list[torch.Tensor] = []
        rows, aux = self.chains.set_outer_grads(batches, users, flat if diag is not None else None)
        self.opt.step()
        self.opt_d.step()
        self.chains.clear(rows)
        self.opt.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        if diag is not None:
            record_alignment(diag, flat, self.is_head[users[0]])
        self.outer_steps += 1
        vals = aux.tolist()
        return [{"loss": a, "adv_loss": b, "disc_acc": c} for a, b, c in vals]

    def _record_share(self, diag: dict, batches: list[Batch], users: np.ndarray) -> None:
        """The alignment term's share of chain 0's update (``users``: its k users), at the parameters before the
        outer step (:func:`tplib.train.diagnostics.alignment_share`); 0 without ``tp.align``, whose update has no
        such term."""
        if not self.tp.align:
            diag["align_share"].append(0.0)
            return
        steps = [(b, self.labels[int(u)].expand(b.users.shape[0])) for b, u in zip(batches, users)]
        diag["align_share"].append(alignment_share(self.objective, steps, self.tp.alpha))

    def draw(self, sampler: TrainSampler, users: np.ndarray, at_once: bool) -> list[list[Batch]]:
        """The (P, k) users' mini-batches, chain by chain: one :meth:`TrainSampler.user_batch` call per user (as
        the paper's P = 1 runs always drew them), or, ``at_once`` (the vectorised chains), one
        :meth:`TrainSampler.user_batches` call for all (the same distributions, other draws)."""
        P, k = users.shape
        cap = self.tp.user_batch
        if at_once:
            flat = sampler.user_batches(users.reshape(-1), cap)
            return [flat[c * k : (c + 1) * k] for c in range(P)]
        return [[sampler.user_batch(int(users[c, i]), cap) for i in range(k)] for c in range(P)]

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs beyond the model: the discriminator, both Adams, the user-order generator and
        the outer-step count (it paces the diagnostics). ``_gbuf`` is all zeros between outer steps."""
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict(), "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.bit_generator.state, "outer_steps": self.outer_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.bit_generator.state = state["rng"]
        self.outer_steps = state["outer_steps"]

    def run_epoch(self, sampler: TrainSampler, bar: tqdm) -> dict[str, float]:
        n = len(sampler.users)
        per_step = self.tp.k * self.tp.P
        order = self.rng.permutation(n)
        n_steps = math.ceil(n / per_step)
        if len(order) < n_steps * per_step:  # top up the last outer step with random other users
            order = np.concatenate([order, self.rng.choice(n, n_steps * per_step - len(order))])
        users = order.reshape(n_steps, self.tp.P, self.tp.k)
        sums: dict[str, float] = defaultdict(float)
        count = 0
        diag: dict[str, list[float]] = defaultdict(list)
        for s in range(n_steps):
            want_diag = self.outer_steps % self.tp.diag_every == 0
            for st in self.outer_step(sampler, users[s], diag if want_diag else None):
                for key, v in st.items():
                    sums[key] += v
                count += 1
        out = {key: v / max(count, 1) for key, v in sums.items()}
        out["outer_steps"] = float(n_steps)
        out.update(summarise_alignment(diag))
        return out
