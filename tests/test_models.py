"""The three backbones: shapes, padding, causality, Caser's unseen users, learning, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tplib.config import ModelConfig
from tplib.models import MODELS, Caser, GRU4Rec, SASRec, SeqRecModel, build_model
from tplib.models.base import Dropout
from tplib.train.capabilities import CAPABILITIES, vmap_path

N_ITEMS, N_USERS = 20, 8
BACKBONES = sorted(MODELS)
SEQUENTIAL = ["gru4rec", "sasrec"]  # all-positions backbones


def small_cfg(**kw) -> ModelConfig:
    base = dict(d=16, max_len=8, dropout=0.2, n_blocks=2, n_heads=2, caser_L=3, caser_T=2, caser_nv=2, caser_nh=4)
    base.update(kw)
    return ModelConfig(**base)


def make(name: str, seed: int = 0, **kw) -> SeqRecModel:
    torch.manual_seed(seed)
    return build_model(name, N_ITEMS, N_USERS, small_cfg(**kw))


def batch(model: SeqRecModel, B: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    L = model.input_len
    seqs = torch.randint(1, N_ITEMS + 1, (B, L), generator=g)
    for b in range(B):  # left padding of varying length, including a fully padded row
        seqs[b, : min(b * 2, L)] = 0
    users = torch.arange(B) % N_USERS
    return seqs, users


# ---------------------------------------------------------------------------------------------------------
# Registry and shapes


def test_registry():
    assert MODELS == {"gru4rec": GRU4Rec, "caser": Caser, "sasrec": SASRec}
    with pytest.raises(ValueError, match="caser, gru4rec, sasrec"):
        build_model("bert4rec", N_ITEMS, N_USERS, small_cfg())


@pytest.mark.parametrize("name", BACKBONES)
def test_shapes(name):
    m = make(name).eval()
    seqs, users = batch(m)
    B, D = seqs.shape[0], m.embed_dim
    assert D == (2 * 16 if name == "caser" else 16)
    assert m.input_len == (3 if name == "caser" else 8)
    h = m.encode(seqs, users)
    assert h.shape == (B, D)
    if m.all_positions:
        assert m.encode_all(seqs, users).shape == (B, m.input_len, D)
    else:
        with pytest.raises(NotImplementedError):
            m.encode_all(seqs, users)
    assert m.score_all(h).shape == (B, N_ITEMS + 1)
    items = torch.randint(1, N_ITEMS + 1, (B, 4))
    s = m.score(h[:, None, :], items)  # one embedding per row, broadcast over 4 items
    assert s.shape == (B, 4)
    torch.testing.assert_close(s, m.score_all(h).gather(1, items))
    per_item = m.score(h[:, None, :].expand(B, 4, D), items)  # (B, M, D) against (B, M) items
    torch.testing.assert_close(per_item, s)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_encode_is_last_position(name):
    m = make(name).eval()
    seqs, users = batch(m)
    torch.testing.assert_close(m.encode(seqs, users), m.encode_all(seqs, users)[:, -1, :])


# ---------------------------------------------------------------------------------------------------------
# Padding and causality


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("train", [False, True])
def test_fully_padded_rows_are_finite(name, train):
    m = make(name).train(train)
    seqs = torch.zeros(3, m.input_len, dtype=torch.long)
    seqs[1, -1] = 5
    users = torch.tensor([0, -1, 2])
    out = m.encode_all(seqs, users) if m.all_positions else m.encode(seqs, users)
    assert torch.isfinite(out).all()
    out.sum().backward()
    for n, p in m.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("functional", [False, True])
@pytest.mark.parametrize("name", SEQUENTIAL)
def test_left_padding_does_not_change_real_positions(name, functional):
    # SASRec masks padded keys and counts positions from the right; GRU4Rec packs (its functional GRU keeps the
    # state at 0 over padding): so the width of the left padding does not matter (an input narrower than max_len
    # equals the same input padded to max_len). This is the contract of `trims_left_padding` in TP's capability
    # table, which lets its vectorised chains cut columns that are padding in every row.
    m = make(name).eval()
    assert CAPABILITIES[name].trims_left_padding
    m.vmap_path = functional
    short = torch.tensor([[3, 7, 1], [0, 4, 9]])
    wide = F.pad(short, (m.input_len - 3, 0))  # (2, max_len)
    torch.testing.assert_close(m.encode(short), m.encode(wide))
    torch.testing.assert_close(m.encode_all(short)[0], m.encode_all(wide)[0, -3:])
    torch.testing.assert_close(m.encode_all(short)[1, 1:], m.encode_all(wide)[1, -2:])
    # wider than max_len: cropped to the last max_len columns
    wider = torch.cat([torch.full((2, 4), 11), wide], 1)
    torch.testing.assert_close(m.encode(wider), m.encode(wide))


def test_caser_does_not_trim_left_padding():
    assert not CAPABILITIES["caser"].trims_left_padding  # its convolutions read a fixed window of L items


def test_gru4rec_padded_positions_are_zero():
    m = make("gru4rec").eval()
    seqs, _ = batch(m)
    out = m.encode_all(seqs)
    pad = seqs == 0
    pad[:, -1] = False  # an empty row still reports its one step on the padding at the last column
    assert (out[pad] == 0).all()


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_causality(name):
    m = make(name).eval()
    seqs, _ = batch(m)
    out = m.encode_all(seqs)
    for t in range(2, m.input_len):
        changed = seqs.clone()
        changed[:, t:] = torch.where(changed[:, t:] > 0, changed[:, t:] % N_ITEMS + 1, 0)
        other = m.encode_all(changed)
        torch.testing.assert_close(other[:, :t], out[:, :t])
        real = (seqs[:, t] != 0) & (seqs[:, t] != changed[:, t])
        assert (other[real, t] - out[real, t]).abs().max() > 1e-4


def test_sasrec_training_attention_path_matches_sdpa():
    # Training mode computes attention by hand (for the fast dropout mask); eval mode uses SDPA. With the
    # dropout masks switched off the two must agree.
    m = make("sasrec", dropout=0.3)
    seqs, _ = batch(m)
    want = m.eval().encode_all(seqs)
    m.train()
    for mod in m.modules():
        if isinstance(mod, Dropout):
            mod._cut = 0  # identity, but p > 0 so the hand-written path runs
    torch.testing.assert_close(m.encode_all(seqs), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Caser's users never trained on


def test_caser_unseen_user():
    seqs = torch.tensor([[1, 2, 3], [1, 2, 3], [4, 5, 6]])
    users = torch.tensor([3, -1, -1])
    mean_m = make("caser", caser_new_user="mean").eval()
    zero_m = make("caser", caser_new_user="zero").eval()
    zero_m.load_state_dict(mean_m.state_dict())
    d = 16
    hm, hz = mean_m.encode(seqs, users), zero_m.encode(seqs, users)
    W = mean_m.user_emb.weight.detach()
    torch.testing.assert_close(hm[:, :d], hz[:, :d])  # the sequence part z does not depend on the mode
    torch.testing.assert_close(hm[1:, d:], W.mean(0).expand(2, d))  # mean of all (trained) user rows
    assert (hz[1:, d:] == 0).all()
    torch.testing.assert_close(hm[0, d:], W[3])  # a trained user is unaffected, in both modes
    torch.testing.assert_close(hz[0, d:], W[3])
    assert not torch.allclose(mean_m.score_all(hm)[1], zero_m.score_all(hz)[1])
    # The mean runs over the users marked as trained only (e.g. not over the new users' own untrained rows).
    mean_m.set_trained_users(torch.tensor([0, 2, 5]))
    torch.testing.assert_close(mean_m.encode(seqs, users)[1, d:], W[[0, 2, 5]].mean(0))
    assert mean_m.state_dict()["trained_users"].tolist() == [i in (0, 2, 5) for i in range(N_USERS)]
    # Mixed batches: a row's result does not depend on the other rows.
    torch.testing.assert_close(mean_m.encode(seqs[:1], users[:1]), mean_m.encode(seqs, users)[:1])


# ---------------------------------------------------------------------------------------------------------
# Every backbone can learn a tiny data set


def tiny_sequences() -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [(rng.permutation(N_ITEMS)[:7] + 1).tolist() for _ in range(N_USERS)]


def train_tiny(name: str, steps: int) -> tuple[SeqRecModel, list[list[int]]]:
    seqs = tiny_sequences()
    m = make(name, dropout=0.0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    users = torch.arange(N_USERS)
    if m.all_positions:  # one row per user: input seq[:-2], targets seq[1:-1] (the last item is held out)
        L = m.input_len
        inp = torch.tensor([F.pad(torch.tensor(s[:-2]), (L - len(s[:-2]), 0)).tolist() for s in seqs])
        pos = torch.tensor([F.pad(torch.tensor(s[1:-1]), (L - len(s[1:-1]), 0)).tolist() for s in seqs])
        rows = users
    else:  # Caser: (window of L items, next T items) samples; T = 1 so that "the next item" is one item
        L, T = m.input_len, 1
        win, tgt, rows = [], [], []
        for u, s in enumerate(seqs):
            train = s[:-1]
            for t in range(1, len(train) - T + 1):
                w = train[max(0, t - L) : t]
                win.append([0] * (L - len(w)) + w)
                tgt.append(train[t : t + T])
                rows.append(u)
        inp, pos, rows = torch.tensor(win), torch.tensor(tgt), torch.tensor(rows)
    mask = (pos != 0).float()
    for _ in range(steps):
        neg = torch.randint(1, N_ITEMS + 1, pos.shape, generator=g)
        neg = torch.where(neg == pos, neg % N_ITEMS + 1, neg)
        h = m.encode_all(inp, rows) if m.all_positions else m.encode(inp, rows)[:, None, :]
        lp, ln = m.score(h, pos), m.score(h, neg)
        loss = F.binary_cross_entropy_with_logits(lp, torch.ones_like(lp), reduction="none")
        loss = loss + F.binary_cross_entropy_with_logits(ln, torch.zeros_like(ln), reduction="none")
        loss = (loss * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), seqs


@pytest.mark.parametrize("name", BACKBONES)
def test_overfits_tiny_dataset(name):
    m, seqs = train_tiny(name, steps=300)
    # Predict each user's training next items from their prefixes: seq[:t] -> seq[t] for the last positions.
    L = m.input_len
    hits, total = 0, 0
    with torch.no_grad():
        for u, s in enumerate(seqs):
            for t in range(len(s) - 3, len(s) - 1):
                x = torch.tensor([[0] * max(0, L - t) + s[max(0, t - L) : t]])
                scores = m.score_all(m.encode(x, torch.tensor([u])))[0]
                scores[0] = -float("inf")
                hits += int(scores.argmax().item() == s[t])
                total += 1
    assert hits >= 0.8 * total, f"{name}: {hits}/{total} next items ranked first"


# ---------------------------------------------------------------------------------------------------------
# Determinism and the dropout


@pytest.mark.parametrize("name", BACKBONES)
def test_same_seed_same_numbers(name):
    a, b = make(name, seed=3), make(name, seed=3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb), na
    c = make(name, seed=4)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    seqs, users = batch(a)
    outs = []
    for m in (a, b):  # training mode: the dropout masks come from the seeded global generator too
        torch.manual_seed(11)
        outs.append(m.train().encode(seqs, users))
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(a.eval().encode(seqs, users), b.eval().encode(seqs, users))


def test_padding_row_is_zero():
    for name in BACKBONES:
        assert (make(name).item_emb.weight[0] == 0).all(), name


def test_dropout_statistics():
    d = Dropout(0.2)
    x = torch.ones(200_000)
    torch.manual_seed(0)
    y = d.train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 65536 / (65536 - 13107)))
    assert torch.equal(d.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    xr = torch.randn(4, 5, requires_grad=True)
    torch.manual_seed(1)
    out = Dropout(0.5).train()(xr)
    out.sum().backward()
    torch.testing.assert_close(xr.grad, (out != 0).float() * 2.0)
    with pytest.raises(ValueError):
        Dropout(1.0)


@pytest.mark.filterwarnings("ignore:There is a performance drop")
@pytest.mark.parametrize("name", BACKBONES)
def test_functional_vmap_over_parameter_copies(name):
    # TP may run several inner chains at once with torch.func (functional_call + vmap over stacked parameters),
    # with vmap_path set (GRU4Rec's nn.GRU has no vmap batching rule; it switches to its functional GRU).
    from torch.func import functional_call, vmap

    m = make(name).train()
    assert CAPABILITIES[name].vmappable
    params = {k: torch.stack([v.detach(), v.detach() + 0.01]) for k, v in m.named_parameters()}
    seqs, users = batch(m)
    seqs2, users2 = torch.stack([seqs, seqs]), torch.stack([users, users])
    out = vmap(lambda p, s, u: functional_call(m, p, (s, u), strict=False), randomness="different")
    m.forward = m.encode  # functional_call calls forward
    with vmap_path(m):
        h = out(params, seqs2, users2)
        assert h.shape == (2, seqs.shape[0], m.embed_dim) and torch.isfinite(h).all()
        m.eval()
        h = out(params, seqs2, users2)
    torch.testing.assert_close(h[0], m.encode(seqs, users))


# ---------------------------------------------------------------------------------------------------------
# GRU4Rec's functional (vmap-safe) GRU against the packed nn.GRU


def gru_batch(B: int = 9, L: int = 8, seed: int = 2) -> torch.Tensor:
    """Random left-padded rows: every padding width 0..L (width L: a row with no item at all), then random ones."""
    g = torch.Generator().manual_seed(seed)
    seqs = torch.randint(1, N_ITEMS + 1, (B, L), generator=g)
    n_pad = torch.cat([torch.arange(L + 1), torch.randint(0, L + 1, (max(0, B - L - 1),), generator=g)])[:B]
    return torch.where(torch.arange(L)[None, :] < n_pad[:, None], 0, seqs)


@pytest.mark.parametrize("layers", [1, 2])
def test_gru4rec_functional_gru_equals_packed(layers):
    m = make("gru4rec", dropout=0.0, gru_layers=layers).double().train()
    assert m.vmap_path is False  # the packed nn.GRU is the default
    seqs = gru_batch(B=12, L=m.input_len)
    assert (seqs == 0).all(1).any() and (seqs != 0).all(1).any()
    gw = torch.Generator().manual_seed(3)
    w_all = torch.randn(seqs.shape[0], m.input_len, m.embed_dim, generator=gw, dtype=torch.float64)
    w_last = torch.randn(seqs.shape[0], m.embed_dim, generator=gw, dtype=torch.float64)
    res = {}
    for functional in (False, True):
        m.vmap_path = functional
        m.zero_grad(set_to_none=True)
        y, h = m.encode_all(seqs), m.encode(seqs)
        ((y * w_all).sum() + (h * w_last).sum()).backward()
        res[functional] = y.detach(), h.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}
    (y0, h0, g0), (y1, h1, g1) = res[False], res[True]
    exact = dict(rtol=0.0, atol=1e-10)
    torch.testing.assert_close(y1, y0, **exact)
    torch.testing.assert_close(h1, h0, **exact)
    torch.testing.assert_close(h1, y1[:, -1], rtol=0.0, atol=0.0)
    pad = seqs == 0
    pad[:, -1] = False  # an empty row reports its one step on the padding at the last column
    assert (y1[pad] == 0).all()
    assert sorted(g1) == sorted(g0) and any(n.startswith("gru.weight_hh_l") for n in g1)
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], **exact, msg=n)


@pytest.mark.parametrize("layers", [1, 2])
def test_gru4rec_vmap_over_parameter_copies_equals_each_copy(layers):
    from torch.func import functional_call, grad, vmap

    m = make("gru4rec", dropout=0.0, gru_layers=layers).double().eval()
    seqs = gru_batch(B=10, L=m.input_len)
    g = torch.Generator().manual_seed(4)
    copies = [{n: v.detach() + 0.05 * c * torch.randn(v.shape, generator=g, dtype=v.dtype)
               for n, v in m.named_parameters()} for c in range(3)]
    stacked = {n: torch.stack([c[n] for c in copies]) for n in copies[0]}
    w = torch.randn(seqs.shape[0], m.input_len, m.embed_dim, generator=g, dtype=torch.float64)

    def run(p, method):
        m.forward = getattr(m, method)  # functional_call calls forward
        return functional_call(m, p, (seqs,))

    def loss(p):
        return (run(p, "encode_all") * w).sum() + run(p, "encode").sum()

    with vmap_path(m):
        assert m.vmap_path
        v_all = vmap(lambda p: run(p, "encode_all"))(stacked)  # (3, B, L, d)
        v_last = vmap(lambda p: run(p, "encode"))(stacked)  # (3, B, d)
        v_grad = vmap(grad(loss))(stacked)
    assert m.vmap_path is False  # restored on leaving the block
    for c, p in enumerate(copies):  # each copy on its own, through the packed nn.GRU
        torch.testing.assert_close(v_all[c], run(p, "encode_all"), rtol=0.0, atol=1e-10)
        torch.testing.assert_close(v_last[c], run(p, "encode"), rtol=0.0, atol=1e-10)
        leaves = {n: t.clone().requires_grad_(True) for n, t in p.items()}
        grads = dict(zip(leaves, torch.autograd.grad(loss(leaves), list(leaves.values()))))
        for n in grads:
            torch.testing.assert_close(v_grad[n][c], grads[n], rtol=0.0, atol=1e-10, msg=f"copy {c}: {n}")
    assert not torch.allclose(v_last[0], v_last[2])  # the copies really differ


def test_caser_matmul_convolutions_equal_conv2d():
    # With vmap_path set Caser computes its convolutions as matmuls over windows (fast under vmap): same values and
    # gradients as the conv2d path, from the same parameters.
    m = make("caser", dropout=0.0).double().train()
    seqs, users = batch(m)
    w = torch.randn(seqs.shape[0], m.embed_dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    res = {}
    for path in (False, True):
        m.vmap_path = path
        m.zero_grad(set_to_none=True)
        h = m.encode(seqs, users)
        (h * w).sum().backward()
        res[path] = h.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    (h0, g0), (h1, g1) = res[False], res[True]
    torch.testing.assert_close(h1, h0, rtol=0.0, atol=1e-12)
    assert sorted(g1) == sorted(g0) and {"conv_v.weight", "conv_h.0.weight", "conv_h.2.weight"} <= set(g1)
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=0.0, atol=1e-12, msg=n)
    m.vmap_path = False
    with vmap_path(m):
        assert m.vmap_path
    assert m.vmap_path is False


def test_gru4rec_scan_backward_by_hand_equals_autograd():
    """_GRUScan's hand-written backward gives autograd's gradients of the plain scan (gi, w_hh, b_hh), on rows with
    left padding, on its own and under vmap over chains whose w_hh is shared (in_dims None, as in TP's first inner
    step) or their own."""
    from torch.func import grad, vmap

    from tplib.models.gru4rec import _GRUScan, _scan

    g = torch.Generator().manual_seed(7)
    B, L, d = 6, 7, 5
    seqs = gru_batch(B=B, L=L, seed=5)
    steps = torch.cat([seqs[:, :-1] != 0, torch.ones(B, 1, dtype=torch.bool)], 1).unsqueeze(-1)  # as the model
    gi = torch.randn(3, B, L, 3 * d, generator=g, dtype=torch.float64)  # 3 chains
    w_hh = torch.randn(3, 3 * d, d, generator=g, dtype=torch.float64) * 0.5
    b_hh = torch.randn(3, 3 * d, generator=g, dtype=torch.float64)
    w_out = torch.randn(B, L, d, generator=g, dtype=torch.float64)

    def by_hand(gi, w, b):
        return (_GRUScan.apply(gi, w, b, steps)[0] * w_out).sum()

    def by_autograd(gi, w, b):
        return (torch.stack(_scan(gi, w, b, steps.unbind(1)), 1) * w_out).sum()

    exact = dict(rtol=0.0, atol=1e-12)
    for c in range(3):  # one chain at a time, ordinary autograd
        leaves = [t[c].clone().requires_grad_(True) for t in (gi, w_hh, b_hh)]
        want = torch.autograd.grad(by_autograd(*leaves), leaves)
        got = torch.autograd.grad(by_hand(*leaves), leaves)
        assert by_hand(*leaves).item() == pytest.approx(by_autograd(*leaves).item(), rel=1e-14)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, **exact)
        assert (want[0] != 0).any() and (want[1] != 0).any()
    for dims, w, b in [((0, 0, 0), w_hh, b_hh), ((0, None, None), w_hh[0], b_hh[0])]:
        got = vmap(grad(by_hand, argnums=(0, 1, 2)), in_dims=dims)(gi, w, b)
        want = vmap(grad(by_autograd, argnums=(0, 1, 2)), in_dims=dims)(gi, w, b)
        for a, b_ in zip(got, want):
            assert a.shape[0] == 3
            torch.testing.assert_close(a, b_, **exact)


def test_training_marks_the_existing_users_for_casers_unseen_user():
    """build_training tells Caser its trained users: a new user's P_u is the mean over the split's existing users
    only (not over every row of the table, which includes the new users' own untrained rows)."""
    from tplib.config import build_config, parse_sets
    from tplib.data.dataset import SeqDataset, make_split
    from tplib.train.loop import build_training

    rng = np.random.default_rng(0)
    ds = SeqDataset.from_sequences("t", [rng.choice(np.arange(1, 21), 8, replace=False) for _ in range(10)], 20)
    cfg = build_config("caser", "baseline", 0, "t", parse_sets(["model.d=8"]))
    split = make_split(ds, 0)
    torch.manual_seed(0)
    model, _, _ = build_training(cfg, ds, split, torch.device("cpu"))
    assert model.trained_users.tolist() == [u in split.existing for u in range(ds.n_users)]
    W = model.user_emb.weight.detach()
    want = W[torch.as_tensor(split.existing)].mean(0)
    assert not torch.allclose(want, W.mean(0))
    torch.testing.assert_close(model.new_user_vector().detach(), want)
    h = model.eval().encode(torch.tensor([[1, 2, 3, 4, 5]]), torch.tensor([-1]))
    torch.testing.assert_close(h[0, 8:].detach(), want)
