"""Caser: convolutional sequence embedding.

Tang & Wang, "Personalized Top-N Sequential Recommendation via Convolutional Sequence Embedding", WSDM 2018.
Reference implementation followed: graytowne/caser_pytorch (``caser.py``).

φ(S, u): the last ``L = cfg.caser_L`` items as an (L, d) image E;

- horizontal filters of every height h = 1..L (``nh`` each, width d), ReLU, max-pooled over time -> (L·nh,);
- vertical filters (``nv`` of them, L x 1, no activation, as in caser_pytorch) -> (nv·d,);
- ``z = ReLU(fc1(dropout(concat)))`` (d,); ``φ = concat(z, P_u)`` (2d,) with P_u the user embedding.

h: ``score(φ, i) = φ · W2[i] + b2[i]`` with separate output item embeddings W2 (n_items+1, 2d) and biases b2.
Caser is trained on (window of L items, next T items) samples, not all positions: ``all_positions = False``.

Users never trained on, stated (the paper's new users have no trained P_u): such a user is passed as index -1.
Its P_u is then, by ``cfg.caser_new_user``:

- ``"mean"`` (default): the mean of the embeddings of the trained users (the average trained user);
- ``"zero"``: the zero vector (φ = [z, 0]: sequence part only).

The choice is made per row with ``torch.where``, so a batch may mix trained and new users and trained users are
unaffected. Which rows of the (n_users, d) table are trained is the boolean buffer ``trained_users`` (saved with
the state dict), set by :meth:`set_trained_users` before training; by default every row counts. Rows outside it
(e.g. the new users' own rows, when the table is indexed by the dataset's global user index) keep their
initial values and never enter the mean.

Other stated differences from caser_pytorch: item index 0 is padding (``padding_idx=0``, a zero row) for
windows shorter than L; inputs wider than L are cropped to their last L columns, narrower ones left-padded.
Initialisation as caser_pytorch: N(0, 1/d) for the item and user embeddings and N(0, 1/(2d)) for W2 (std = 1/dim,
as it writes it), b2 = 0, convolutions and fc1 at PyTorch's defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tplib.config import ModelConfig
from tplib.models.base import Dropout, SeqRecModel


class Caser(SeqRecModel):
    all_positions = False

    def __init__(self, n_items: int, n_users: int, cfg: ModelConfig) -> None:
        super().__init__()
        d, L = cfg.d, cfg.caser_L
        self.n_items = n_items
        self.n_users = n_users
        self.d = d
        self.input_len = L
        self.n_v, self.n_h = cfg.caser_nv, cfg.caser_nh
        self.new_user = cfg.caser_new_user
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.user_emb = nn.Embedding(n_users, d)
        self.register_buffer("trained_users", torch.ones(n_users, dtype=torch.bool))
        self.conv_v = nn.Conv2d(1, self.n_v, (L, 1)) if self.n_v else None
        self.conv_h = nn.ModuleList(nn.Conv2d(1, self.n_h, (h, d)) for h in range(1, L + 1)) if self.n_h else None
        self.fc1 = nn.Linear(self.n_v * d + self.n_h * L, d)
        self.drop = Dropout(cfg.dropout)
        self.W2 = nn.Embedding(n_items + 1, 2 * d)
        self.b2 = nn.Embedding(n_items + 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.item_emb.weight.normal_(0, 1.0 / self.d)
            self.item_emb.weight[0].zero_()
            self.user_emb.weight.normal_(0, 1.0 / self.d)
            self.W2.weight.normal_(0, 1.0 / (2 * self.d))
            self.b2.weight.zero_()

    @property
    def embed_dim(self) -> int:
        return 2 * self.d

    def set_trained_users(self, users: torch.Tensor) -> None:
        """Mark the user indices the model trains on: the "mean" new-user embedding averages these rows only."""
        users = torch.as_tensor(users, dtype=torch.long, device=self.trained_users.device)
        self.trained_users.zero_()
        self.trained_users[users] = True

    def new_user_vector(self) -> torch.Tensor:
        """P_u used for a user never trained on (d,): the mean trained user embedding, or 0."""
        W = self.user_emb.weight  # (n_users, d)
        if self.new_user == "zero":
            return W.new_zeros(self.d)  # (d,)
        m = self.trained_users.to(W.dtype)  # (n_users,)
        return (m @ W) / m.sum().clamp(min=1.0)  # (d,); 0 if no user is marked

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """P_u for each row (B, d); rows with ``users == -1`` get :meth:`new_user_vector`."""
        known = users >= 0  # (B,)
        p = self.user_emb(users.clamp(min=0))  # (B, d)
        return torch.where(known.unsqueeze(1), p, self.new_user_vector())  # (B, d)

    def encode(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        if users is None:
            raise ValueError("Caser needs user indices (-1 for a user it never trained on)")
        L = self.input_len
        seqs = seqs[:, -L:]  # (B, <=L)
        if seqs.shape[1] < L:
            seqs = F.pad(seqs, (L - seqs.shape[1], 0))  # (B, L), left-padded
        E = self.item_emb(seqs)  # (B, L, d)
        parts = self._convs_matmul(E) if self.vmap_path else self._convs(E)
        out = self.drop(torch.cat(parts, 1))  # (B, nv * d + nh * L)
        z = F.relu(self.fc1(out))  # (B, d)
        return torch.cat([z, self.user_vectors(users)], 1)  # (B, 2d)

    def _convs(self, E: torch.Tensor) -> list[torch.Tensor]:
        """The vertical and the (ReLU, max-pooled) horizontal convolutions of E (B, L, d), as caser_pytorch."""
        E = E.unsqueeze(1)  # (B, 1, L, d)
        parts = []
        if self.conv_v is not None:
            parts.append(self.conv_v(E).flatten(1))  # (B, nv * d)
        if self.conv_h is not None:
            for conv in self.conv_h:
                c = F.relu(conv(E).squeeze(3))  # (B, nh, L - h + 1)
                parts.append(c.amax(dim=2))  # (B, nh)
        return parts

    def _convs_matmul(self, E: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`_convs` written as matrix products over the windows of E, from the same parameters (with
        ``vmap_path`` set: TP's vectorised chains). Under ``vmap`` a conv2d with per-chain filters becomes
        a grouped convolution, whose CPU backward is slow; these products batch into ``bmm``. Same function,
        other rounding (``tests/test_models.py``)."""
        L = self.input_len
        parts = []
        if self.conv_v is not None:  # out[v, c] = Σ_l w[v, l] E[l, c] + bias[v]
            w = self.conv_v.weight.reshape(self.n_v, L)  # (nv, L)
            v = torch.matmul(w, E) + self.conv_v.bias.unsqueeze(-1)  # (B, nv, d)
            parts.append(v.flatten(1))  # (B, nv * d)
        if self.conv_h is not None:
            for h, conv in enumerate(self.conv_h, 1):
                win = torch.cat([E[:, i : L - h + 1 + i] for i in range(h)], -1)  # (B, L - h + 1, h * d)
                c = F.relu(F.linear(win, conv.weight.flatten(1), conv.bias))  # (B, L - h + 1, nh)
                parts.append(c.amax(dim=1))  # (B, nh)
        return parts

    def score(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # h (B, M, 2d) or (B, 1, 2d); items (B, M) -> (B, M)
        return (h * self.W2(items)).sum(-1) + self.b2(items).squeeze(-1)

    def score_all(self, h: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b2.weight.t(), h, self.W2.weight.t())  # (B, n_items + 1)
