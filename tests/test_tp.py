"""The TP trainer's meaning: the tests pin Algorithm 1 as docs/method.md describes it."""

import copy
import itertools
from collections import defaultdict

import numpy as np
import pytest
import torch

from tplib.config import build_config, parse_sets
from tplib.data.dataset import SeqDataset, make_split
from tplib.data.sampler import TrainSampler
from tplib.io import ConfigError
from tplib.models import build_model
from tplib.train.loss import bce_loss
from tplib.train.optim import adam
from tplib.train.algorithm import Discriminator, adversarial_loss, reptile_outer_step, reverse_grad
from tplib.train.capabilities import CAPABILITIES, Capabilities
from tplib.train.chains import ChainEngine
from tplib.train.tp import TPUpdater


def tiny(n_users=30, n_items=40, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(10, 30), replace=False) for _ in range(n_users)]
    return SeqDataset.from_sequences("tiny", seqs, n_items)


def setup(backbone="sasrec", sets=(), seed=0):
    ds = tiny()
    cfg = build_config(backbone, "tp", seed, "tiny", parse_sets(["model.dropout=0", "model.max_len=12", *sets]))
    torch.manual_seed(0)
    model = build_model(backbone, ds.n_items, ds.n_users, cfg.model)
    split = make_split(ds, seed)
    mode = "sequence" if model.all_positions else "window"
    return ds, cfg, model, split, twin_sampler(ds, split, model, mode, cfg)


def twin_sampler(ds, split, model, mode, cfg):
    """A sampler in the state `setup`'s starts in: it draws the same mini-batches."""
    return TrainSampler(ds, split, model.input_len, mode, np.random.default_rng(5), cfg.model.caser_T)


@pytest.fixture
def float64():
    """The test runs in float64 (in float32, Θ − (Θ − αg) rounds g's tiniest entries, which Adam's normalisation
    then magnifies), and float32 is restored whatever happens."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def twin_updaters(backbone, sets, seed):
    """Two TP updaters on identical copies of `setup`'s model and sampler, each built after torch.manual_seed(seed)
    (so their discriminators start equal): (ds, cfg, split, sampler, updater, twin's sampler, twin updater)."""
    ds, cfg, model, split, sampler = setup(backbone, sets)
    twin_model = copy.deepcopy(model)
    twin = twin_sampler(ds, split, model, sampler.mode, cfg)
    torch.manual_seed(seed)
    up = TPUpdater(cfg, model, sampler, split, ds)
    torch.manual_seed(seed)
    return ds, cfg, split, sampler, up, twin, TPUpdater(cfg, twin_model, twin, split, ds)


def assert_adam_on_alpha_summed_gradients(backbone, sets, steps):
    """Each of TP's outer steps (P 1, users `steps[i]`) equals one Adam step (lr β) on α times the summed gradient of
    those users' mini-batch losses, all taken at the step's start: compared parameter by parameter."""
    ds, cfg, model, split, sampler = setup(backbone, sets)
    ref_model = copy.deepcopy(model)
    ref_sampler = twin_sampler(ds, split, model, sampler.mode, cfg)
    ref_opt = adam(ref_model.parameters(), cfg.tp.beta)
    up = TPUpdater(cfg, model, sampler, split, ds)
    for step, users in enumerate(steps):
        up.outer_step(sampler, np.array([users]))
        loss = sum(bce_loss(ref_model, ref_sampler.user_batch(u, cfg.tp.user_batch)).loss for u in users)
        ref_opt.zero_grad()
        loss.backward()
        for p in ref_model.parameters():
            p.grad = cfg.tp.alpha * p.grad
        ref_opt.step()
        for (name, a), b in zip(model.named_parameters(), ref_model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=f"step {step}: {name}")


@pytest.mark.parametrize("backbone", ["sasrec", "caser"])
def test_k1_lambda0_is_adam_on_single_user_sgd_steps(backbone, float64):
    """k = 1, λ = 0: the inner step is plain SGD on one user's mini-batch (Θ − θ_1 = α ∇L), so the outer update
    is exactly an Adam step (lr β) on α·∇L of that single user's batch."""
    assert_adam_on_alpha_summed_gradients(backbone, ["tp.k=1", "tp.lam=0", "tp.alpha=0.05"], [[3], [7], [3], [11]])


def test_inner_step_is_plain_sgd():
    ds, cfg, model, split, sampler = setup("gru4rec", ["tp.k=1", "tp.lam=0", "tp.alpha=0.1"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    batch = sampler.user_batch(2, 64)
    g, g_d, _ = up.inner_grads(batch, up.labels[2])
    ref = copy.deepcopy(model)
    loss = bce_loss(ref, batch).loss
    loss.backward()
    for a, p in zip(g, ref.parameters()):
        torch.testing.assert_close(a, p.grad if p.grad is not None else torch.zeros_like(p))


def quadratic(A, b):
    """L(θ) = ½‖Aθ − b‖², gradient Aᵀ(Aθ − b), Hessian AᵀA."""
    return (lambda th: A.T @ (A @ th - b)), A.T @ A


def two_quadratics(d: int):
    """Two seeded d-dimensional quadratics' gradients g1, g2, the second's Hessian H2, and a start Θ (float64)."""
    torch.manual_seed(0)
    (g1, _), (g2, H2) = [quadratic(torch.randn(d, d, dtype=torch.float64), torch.randn(d, dtype=torch.float64))
                         for _ in range(2)]
    return g1, g2, H2, torch.randn(d, dtype=torch.float64)


def test_reptile_k2_direction_and_size_on_a_quadratic():
    d, alpha = 5, 0.05
    g1, g2, H2, Theta = two_quadratics(d)
    theta = Theta.clone().requires_grad_(True)
    grads = [g1, g2]
    inner = lambda c, i: [grads[i](theta.detach())]  # noqa: E731
    # An outer optimizer of plain SGD with lr 1 applies the outer "gradient" as it is: θ_new = Θ − (Θ − θ_2) = θ_2.
    opt = torch.optim.SGD([theta], lr=1.0)
    reptile_outer_step([theta], inner, 1, 2, alpha, [opt])
    # Reptile's expansion, exact for quadratics: Θ − θ_2 = α(g1(Θ) + g2(Θ)) − α² H2 g1(Θ)
    expected_delta = alpha * (g1(Theta) + g2(Theta)) - alpha**2 * H2 @ g1(Theta)
    torch.testing.assert_close(Theta - theta.detach(), expected_delta)
    # With Adam (the paper's outer optimizer) the step moves toward the inner result θ_2.
    theta2 = Theta - expected_delta
    th = Theta.clone().requires_grad_(True)
    inner = lambda c, i: [grads[i](th.detach())]  # noqa: E731
    reptile_outer_step([th], inner, 1, 2, alpha, [adam([th], 1e-3)])
    move = th.detach() - Theta
    assert torch.dot(move, theta2 - Theta) > 0
    assert move.norm() == pytest.approx(1e-3 * d**0.5, rel=1e-3)  # Adam's first step: β per coordinate


def test_without_alignment_every_inner_gradient_is_taken_at_the_start():
    """tp.align false on the quadratic of the test above: Θ − θ is α(g1(Θ) + g2(Θ)) exactly, without the
    −α² H2 g1(Θ) term that the moving inner steps add."""
    d, alpha = 5, 0.05
    g1, g2, H2, Theta = two_quadratics(d)
    theta = Theta.clone().requires_grad_(True)
    seen = []

    def inner(c, i):
        seen.append(theta.detach().clone())
        return [[g1, g2][i](theta.detach())]

    reptile_outer_step([theta], inner, 1, 2, alpha, [torch.optim.SGD([theta], lr=1.0)], align=False)
    torch.testing.assert_close(Theta - theta.detach(), alpha * (g1(Theta) + g2(Theta)))
    assert all(torch.equal(s, Theta) for s in seen)
    assert (alpha**2 * H2 @ g1(Theta)).norm() > 1e-4  # the term that is left out is not negligible here


@pytest.mark.parametrize("backbone", ["sasrec", "caser"])
def test_without_alignment_the_outer_step_is_adam_on_the_users_summed_gradient(backbone, float64):
    """tp.align false, k 2, λ 0: one outer step is exactly an Adam step (lr β) on α(∇L_u1 + ∇L_u2), both users'
    mini-batch losses differentiated at the same parameters."""
    assert_adam_on_alpha_summed_gradients(backbone, ["tp.k=2", "tp.lam=0", "tp.alpha=0.05", "tp.align=false"],
                                          [[3, 7], [3, 11], [5, 2]])


def test_P_chains_average_their_deltas():
    theta = torch.zeros(3, requires_grad=True)
    g = {0: torch.tensor([1.0, 0, 0]), 1: torch.tensor([0, 2.0, 0])}
    reptile_outer_step([theta], lambda c, i: [g[c]], 2, 1, 0.5, [torch.optim.SGD([theta], lr=1.0)])
    # chain deltas: 0.5*[1,0,0] and 0.5*[0,2,0]; mean [0.25, 0.5, 0] -> θ = −mean... moved toward both chains
    torch.testing.assert_close(theta.detach(), torch.tensor([-0.25, -0.5, 0.0]))


def test_reverse_grad_is_identity_forward_and_negates_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_grad(x, 0.7)
    assert torch.equal(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, -0.7))


def test_gradient_reversal_equals_the_explicit_min_max():
    """One backward through the reversal layer == (∇θ[L − λ BCE_d], ∇θd[BCE_d]) computed separately."""
    ds, cfg, model, split, sampler = setup("sasrec", ["tp.lam=0.3"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    u = int(np.flatnonzero(up.is_head)[0])
    batch = sampler.user_batch(u, 64)
    g, g_d, _ = up.inner_grads(batch, up.labels[u])
    out = bce_loss(model, batch)
    label = up.labels[u].expand(len(batch.users))
    # the plain BCE_d, no reversal layer in the graph
    logits = up.disc(out.phi)
    per = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, label[:, None].expand_as(logits), reduction="none"
    )
    bce_d = per[out.mask].mean()
    theta, theta_d = up.theta, up.theta_d
    gL = torch.autograd.grad(out.loss, theta, retain_graph=True, allow_unused=True)
    gD = torch.autograd.grad(bce_d, theta + theta_d, allow_unused=True)
    z = lambda t, p: torch.zeros_like(p) if t is None else t  # noqa: E731
    for a, l, dd, p in zip(g, gL, gD[: len(theta)], theta):
        torch.testing.assert_close(a, z(l, p) - 0.3 * z(dd, p), rtol=1e-5, atol=1e-7)
    for a, dd, p in zip(g_d, gD[len(theta) :], theta_d):
        torch.testing.assert_close(a, z(dd, p))


def test_adversarial_gradient_makes_head_and_tail_harder_to_tell_apart():
    torch.manual_seed(1)
    disc = Discriminator(6, 8)
    phi = torch.randn(10, 1, 6)
    labels = torch.tensor([1.0] * 5 + [0.0] * 5)
    # train the discriminator a little so it separates the classes somewhat
    phi[:5] += 1.0
    opt = torch.optim.SGD(disc.parameters(), lr=0.5)
    for _ in range(50):
        loss, _ = adversarial_loss(disc, _out(phi), labels, 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = phi.clone().requires_grad_(True)
    total, _ = adversarial_loss(disc, _out(x), labels, lam=1.0)
    (gx,) = torch.autograd.grad(total, x)
    before, _ = adversarial_loss(disc, _out(phi), labels, 0.0)
    after, _ = adversarial_loss(disc, _out(phi - 0.1 * gx), labels, 0.0)
    assert after > before  # the model's descent step raises the discriminator's loss
    # and with λ = 0 the discriminator does not touch φ's gradient
    x0 = phi.clone().requires_grad_(True)
    total0, _ = adversarial_loss(disc, _out(x0), labels, lam=0.0)
    (g0,) = torch.autograd.grad(total0, x0)
    assert torch.count_nonzero(g0) == 0


def _out(phi):
    from tplib.train.loss import LossOut

    return LossOut(torch.tensor(0.0), phi, torch.ones(phi.shape[:2], dtype=torch.bool))


def test_lambda0_model_gradient_ignores_the_discriminator():
    ds, cfg, model, split, sampler = setup("caser", ["tp.lam=0"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    batch = sampler.user_batch(1, 64)
    g, _, _ = up.inner_grads(batch, up.labels[1])
    gL = torch.autograd.grad(bce_loss(model, batch).loss, up.theta, allow_unused=True)
    for a, b in zip(g, gL):
        torch.testing.assert_close(a, torch.zeros_like(a) if b is None else b)


def test_epoch_visits_each_user_once_and_writes_diagnostics():
    ds, cfg, model, split, sampler = setup("sasrec", ["tp.k=2", "tp.diag_every=1"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    out = up.run_epoch(sampler, None)
    assert out["outer_steps"] == np.ceil(len(split.existing) / 2)
    assert sum(out[f"diag_pairs_{t}"] for t in ("hh", "ht", "tt")) == out["outer_steps"]
    assert 0.0 <= out["disc_acc"] <= 1.0 and out["loss"] > 0 and out["adv_loss"] > 0
    assert all(-1.0 <= out[f"diag_cos_{t}"] <= 1.0 for t in ("hh", "ht", "tt") if out[f"diag_pairs_{t}"])


@pytest.mark.parametrize(
    "sets, key",
    [(["tp.k=0"], "tp.k"), (["tp.lam=-1"], "tp.lam"), (["tp.P=0"], "tp.P"), (["tp.alpha=0"], "tp.alpha")],
)
def test_bad_tp_config(sets, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config("sasrec", "tp", 0, "x", parse_sets(sets))


def test_unknown_method():
    with pytest.raises(ConfigError, match="method"):
        build_config("sasrec", "reptile", 0, "x")


@pytest.mark.parametrize(
    "backbone, P, vectorize",
    [("sasrec", 1, True), ("sasrec", 3, True), ("gru4rec", 1, True), ("gru4rec", 2, True), ("gru4rec", 3, True),
     ("gru4rec", 3, False), ("caser", 1, True), ("caser", 3, True), ("caser", 3, False), ("caser", 3, "split"),
     ("sasrec", 3, "split"), ("sasrec", 4, "trim"), ("gru4rec", 4, "trim"), ("caser", 4, "k3"), ("sasrec", 4, "k3"),
     ("sasrec", 1, "noalign"), ("caser", 1, "noalign"), ("sasrec", 4, "noalign"), ("gru4rec", 4, "noalign"),
     ("caser", 4, "noalign")],
)
def test_fast_outer_step_equals_the_reference(backbone, P, vectorize, monkeypatch, float64):
    """The fast path (local sparse tables, vmap over chains) gives the same update as the plain reference.
    "split": vectorised, with the chains run in two vmap groups that change from one inner step to the next
    (chain 0, the diagnostics', second in the second group, then first in the first).
    "trim": vectorised, with max_len 40 (histories of 7-27 items): the chains are grouped by length and each
    group's inputs cut to its longest; the test checks that cutting happened.
    "k3": vectorised with k = 3 inner steps (each reads the rows that both earlier steps moved).
    "noalign": tp.align false (every inner gradient at Θ), k = 3, vectorised where P > 1."""
    widths: list[int] = []
    k = 3 if vectorize in ("k3", "noalign") else 2
    sets = [f"tp.k={k}", "tp.lam=0.5", "tp.alpha=0.1", f"tp.P={P}"]
    if vectorize == "noalign":
        sets.append("tp.align=false")
        vectorize = True
    elif vectorize == "split":
        calls = iter(range(1000))
        monkeypatch.setattr(ChainEngine, "group_chains", staticmethod(
            lambda sizes, lengths=None: [[2], [1, 0]] if next(calls) % 2 == 0 else [[0, 2], [1]]))
        vectorize = True
    elif vectorize == "k3":
        vectorize = True
    elif vectorize == "trim":
        stack = ChainEngine._stack

        def spy(self, *args):
            out = stack(self, *args)
            widths.append(out[0].shape[-1])
            return out

        monkeypatch.setattr(ChainEngine, "_stack", spy)
        sets.append("model.max_len=40")
        vectorize = True
    sets.append(f"tp.vectorize={vectorize}")
    ds, cfg, split, sampler, fast, ref_sampler, ref = twin_updaters(backbone, sets, 3)
    model = fast.model
    assert CAPABILITIES[backbone].vmappable  # so P > 1 with tp.vectorize really runs the chains under vmap
    rng = np.random.default_rng(0)
    d_fast: dict = defaultdict(list)
    d_ref: dict = defaultdict(list)
    for _ in range(3):
        users = rng.integers(0, len(sampler.users), size=(P, k))
        # the reference draws batches chain by chain, step by step: the fast path draws them in that order too
        s_fast = fast.outer_step(sampler, users, d_fast)
        s_ref = ref.outer_step_reference(ref_sampler, users, d_ref, draw_at_once=P > 1 and vectorize)
        for a, b in zip(s_fast, s_ref):
            assert a["loss"] == pytest.approx(b["loss"]) and a["adv_loss"] == pytest.approx(b["adv_loss"])
    for (n, a), b in zip(fast.objective.named_parameters(), ref.objective.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10, msg=n)
    # the mechanism diagnostics (chain 0's inner gradients, on local rows) agree with the full-table ones
    d_ref_share = list(d_ref["align_share"])
    assert sorted(d_fast) == sorted(d_ref) and len(d_ref.pop("align_share")) == 3  # one per outer step
    assert sum(len(v) for v in d_ref.values()) == 3 * k * (k - 1)
    assert d_fast.pop("align_share") == pytest.approx(d_ref_share, rel=1e-7)
    for key in d_ref:
        assert d_fast[key] == pytest.approx(d_ref[key], rel=1e-7), key
    if widths:  # "trim": every group was cut below max_len, and groups of different lengths ran
        assert model.input_len == 40 and max(widths) < 40 and len(set(widths)) > 1, widths


def test_group_chains_by_size():
    G = ChainEngine.group_chains
    assert G([2, 2, 2]) == [[0, 1, 2]]  # one size: one group, whatever a group costs
    sizes = [1, 97, 13, 4, 128, 17, 5, 64]
    # free groups: one per distinct size (no padding); very costly ones: everything in one group
    assert G(sizes, per_group=0) == [[4], [1], [7], [5], [2], [6], [3], [0]]
    assert G(sizes, per_group=1e9) == [[0, 3, 6, 2, 5, 7, 1, 4]]
    # by hand, cost 10 per group: {1, 4, 5} 10 + 3·5 = 25, {13, 17} 44, {64} 74, {97} 107, {128} 138
    # ({97, 128} would be 266 > 245; {64, 97} 204 > 181; {1, 4, 5, 13, 17} 95 > 69)
    assert G(sizes, per_group=10) == [[4], [1], [7], [2, 5], [0, 3, 6]]
    # size x length (SASRec and GRU4Rec: one row, inputs cut to the group's longest); equal work stays together
    assert G([1] * 6, [50, 3, 50, 4, 3, 49], per_group=20) == [[5, 0, 2], [1, 4, 3]]
    rng = np.random.default_rng(0)
    for _ in range(30):  # the cheapest contiguous cut, against every cut of the sorted distinct values
        sizes, c0 = list(rng.integers(1, 40, 9)), float(rng.integers(0, 60))
        groups = G(sizes, per_group=c0)
        assert sorted(c for g in groups for c in g) == list(range(9))  # every chain once
        cost = sum(c0 + len(g) * max(sizes[c] for c in g) for g in groups)
        vals = sorted(set(sizes))
        brute = min(
            sum(c0 + sum(n in part for n in sizes) * max(part) for part in np.split(vals, cuts))
            for r in range(len(vals)) for cuts in itertools.combinations(range(1, len(vals)), r)
        )
        assert cost == pytest.approx(brute)
        ranges = [(min(sizes[c] for c in g), max(sizes[c] for c in g)) for g in groups]
        assert all(lo_prev > hi for (lo_prev, _), (_, hi) in zip(ranges, ranges[1:]))  # contiguous, largest first


def test_sparse_kinds_must_cover_every_field_once(monkeypatch):
    """A backbone's sparse_kinds gives each batch field (seqs, pos, neg, users) exactly one table kind; the TP
    trainer refuses one that leaves a field out or names it twice."""
    ds, cfg, model, split, sampler = setup("caser")
    assert TPUpdater(cfg, model, sampler, split, ds).chains._kind_of["pos"] == "item_out"
    for bad in ({"item": (("seqs", "pos"), True), "user": (("users",), False)},
                {"item": (("seqs", "pos", "neg"), True), "user": (("users", "neg"), False)}):
        caps = CAPABILITIES["caser"]
        monkeypatch.setitem(CAPABILITIES, "caser", Capabilities(caps.sparse_tables, bad, caps.vmappable))
        with pytest.raises(ValueError, match="sparse_kinds must give each of"):
            TPUpdater(cfg, model, sampler, split, ds)


# ---------------------------------------------------------------------------------------------------------
# Knobs the fair test searches (each default is the behaviour above)


def test_outer_adam_beta2_is_a_setting_with_adams_default():
    ds, cfg, model, split, sampler = setup()
    assert cfg.tp.adam_beta2 == 0.999 and cfg.tp.loss_weighting == "user"
    up = TPUpdater(cfg, model, sampler, split, ds)
    assert up.opt.param_groups[0]["betas"] == (0.9, 0.999) == up.opt_d.param_groups[0]["betas"]
    ds, cfg, model, split, sampler = setup(sets=["tp.adam_beta2=0.98"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    assert up.opt.param_groups[0]["betas"] == (0.9, 0.98) == up.opt_d.param_groups[0]["betas"]
    for bad in ("0", "1", "1.5"):
        with pytest.raises(ConfigError, match="tp.adam_beta2"):
            build_config("sasrec", "tp", 0, "", parse_sets([f"tp.adam_beta2={bad}"]))
    with pytest.raises(ConfigError, match="tp.loss_weighting"):
        build_config("sasrec", "tp", 0, "", parse_sets(["tp.loss_weighting=sample"]))


def test_mean_user_targets_by_hand():
    """Sequence rows: one per user, min(len(train) − 1, L) real targets; windows of L = 2 with T = 1: a training
    part of n ≥ 3 items has n − 2 windows of one target each (shorter: one left-padded window), and a user capped
    at one window keeps that window's single target."""
    ds = tiny()
    split = make_split(ds, 0)
    n = np.array([len(ds.seq(u)) - 2 for u in split.existing])
    seq = TrainSampler(ds, split, 12, "sequence", np.random.default_rng(0))
    assert seq.mean_user_targets(128) == pytest.approx(np.minimum(n - 1, 12).mean())
    win = TrainSampler(ds, split, 2, "window", np.random.default_rng(0), targets=1)
    assert win.mean_user_targets(128) == pytest.approx(np.maximum(n - 2, 1).mean())
    assert win.mean_user_targets(1) == pytest.approx(1.0)


@pytest.mark.parametrize("backbone", ["sasrec", "caser"])
def test_per_target_weighting_sums_a_users_targets_over_the_mean_count(backbone):
    ds, cfg, model, split, sampler = setup(backbone, ["tp.loss_weighting=target", "tp.lam=0"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    mean = sampler.mean_user_targets(cfg.tp.user_batch)
    assert up.objective.per_target == mean
    for u in (0, 4):
        batch = sampler.user_batch(u, cfg.tp.user_batch)
        _, aux = up.objective(batch.seqs, batch.pos, batch.neg, batch.users, up.labels[u].expand(len(batch.users)))
        plain = bce_loss(model, batch).loss
        n = int((batch.pos != 0).sum())
        torch.testing.assert_close(aux[0], plain * n / mean)
    ds, cfg, model, split, sampler = setup(backbone, ["tp.lam=0"])
    assert TPUpdater(cfg, model, sampler, split, ds).objective.per_target is None  # the default: a user's mean


def test_per_target_weighting_reaches_the_vectorised_chains():
    """The same outer step at P = 4 under each weighting: the vectorised path's update changes with it."""
    after = {}
    for w in ("user", "target"):
        ds, cfg, model, split, sampler = setup("sasrec", [f"tp.loss_weighting={w}", "tp.P=4", "tp.lam=0"])
        up = TPUpdater(cfg, model, sampler, split, ds)
        up.outer_step(sampler, np.arange(8).reshape(4, 2))
        after[w] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert not torch.allclose(after["user"], after["target"])


# ---------------------------------------------------------------------------------------------------------
# Which user each inner step trains on, and with which head/tail label; the loss and the baseline's step


def test_each_inner_step_trains_on_its_own_user(float64):
    """P = 1, k = 2, λ = 0: the outer step is Adam on α(g_a(Θ) + g_b(Θ − α g_a(Θ))), users a then b."""
    ds, cfg, model, split, sampler = setup("sasrec", ["tp.k=2", "tp.lam=0", "tp.alpha=0.05"])
    ref = copy.deepcopy(model)
    ref_sampler = twin_sampler(ds, split, model, sampler.mode, cfg)
    up = TPUpdater(cfg, model, sampler, split, ds)
    drawn = up.draw(copy.deepcopy(sampler), np.array([[3, 7]]), False)
    assert [int(b.users.unique()) for b in drawn[0]] == [int(split.existing[3]), int(split.existing[7])]
    up.outer_step(sampler, np.array([[3, 7]]))
    # by hand: two plain SGD steps on the users' own mini-batches, then one Adam step on Θ − θ_2
    start = [p.detach().clone() for p in ref.parameters()]
    batches = [ref_sampler.user_batch(3, cfg.tp.user_batch), ref_sampler.user_batch(7, cfg.tp.user_batch)]
    for b in batches:
        grads = torch.autograd.grad(bce_loss(ref, b).loss, list(ref.parameters()), allow_unused=True)
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads):
                if g is not None:
                    p.sub_(cfg.tp.alpha * g)
    opt = adam(ref.parameters(), cfg.tp.beta)
    with torch.no_grad():
        for p, s in zip(ref.parameters(), start):
            p.grad = s - p.detach()
            p.copy_(s)
    opt.step()
    for (name, a), b in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.filterwarnings("ignore:There is a performance drop")
@pytest.mark.parametrize("k, P", [(2, 1), (5, 1), (2, 3)])
def test_an_epoch_draws_every_user_once_in_a_new_order(k, P):
    """run_epoch: a permutation of the existing users per epoch (k·P per outer step, the last one topped up with
    other users), each user in its own inner step: every user drawn, none twice before all are drawn."""
    ds, cfg, model, split, sampler = setup("sasrec", [f"tp.k={k}", f"tp.P={P}", "tp.diag_every=1000"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    drawn: list[int] = []
    rows = sampler.user_rows

    def spy(i, max_size):
        drawn.append(int(i))
        return rows(i, max_size)

    sampler.user_rows = spy
    n = len(split.existing)
    orders = []
    for _ in range(2):
        drawn.clear()
        out = up.run_epoch(sampler, None)
        steps = -(-n // (k * P))
        assert out["outer_steps"] == steps and len(drawn) == steps * k * P
        assert sorted(drawn[:n]) == list(range(n))  # the first n draws are a permutation of the users
        assert set(drawn) == set(range(n))
        orders.append(list(drawn[:n]))
    assert orders[0] != orders[1]  # a new permutation each epoch


def test_head_and_tail_labels_by_hand():
    """TPUpdater's R: 1 exactly for the 20% existing users with the most interactions (ties: lower index)."""
    ds, cfg, model, split, sampler = setup("sasrec", ["tp.lam=0.5", "tp.k=1"])
    up = TPUpdater(cfg, model, sampler, split, ds)
    users = [int(u) for u in split.existing]
    by_count = sorted(users, key=lambda u: (-len(ds.seq(u)), u))
    head = set(by_count[: round(0.2 * len(users))])
    assert 0 < len(head) < len(users)
    assert up.is_head.tolist() == [u in head for u in users]
    assert up.labels.tolist() == [1.0 if u in head else 0.0 for u in users]
    # the label reaches the adversarial loss: BCE_d of a head user's batch is −log σ(f_d(φ)), a tail user's
    # −log(1 − σ(f_d(φ))), averaged over the real subsequences
    for i in (users.index(min(head)), next(i for i, u in enumerate(users) if u not in head)):
        twin = copy.deepcopy(sampler)
        out = bce_loss(model, twin.user_batch(i, cfg.tp.user_batch))
        with torch.no_grad():
            logits = up.disc(out.phi)[out.mask]
            want = -torch.nn.functional.logsigmoid(logits if users[i] in head else -logits).mean()
        (st,) = up.outer_step(sampler, np.array([[i]]))
        assert st["adv_loss"] == pytest.approx(want.item(), rel=1e-5)


class _FixedLogits(torch.nn.Module):
    """A backbone stand-in whose score of item i is logit[i] whatever the input (φ = 0)."""

    def __init__(self, logits, all_positions):
        super().__init__()
        self.logit = torch.tensor(logits)
        self.all_positions = all_positions

    def encode_all(self, seqs, users):
        return torch.zeros(*seqs.shape, 1)

    def encode(self, seqs, users):
        return torch.zeros(seqs.shape[0], 1)

    def score(self, h, items):
        return self.logit[items] + 0 * h.sum(-1)


@pytest.mark.parametrize("all_positions", [True, False])
def test_bce_loss_by_hand(all_positions):
    """Eq. 2: mean over real targets of −log σ(s_pos) − log(1 − σ(s_neg)); padding targets do not count."""
    import math

    from tplib.data.sampler import Batch

    m = _FixedLogits([0.0, 2.0, -1.0, 0.5, 3.0], all_positions)
    batch = Batch(seqs=torch.tensor([[0, 1, 2], [1, 2, 3]]), pos=torch.tensor([[0, 1, 3], [0, 0, 4]]),
                  neg=torch.tensor([[0, 2, 4], [0, 0, 1]]), users=torch.tensor([0, 1]))
    def sp(x):  # softplus: −log σ(s) = sp(−s), −log(1 − σ(s)) = sp(s)
        return math.log1p(math.exp(x))

    want = ((sp(-2.0) + sp(-1.0)) + (sp(-0.5) + sp(3.0)) + (sp(-3.0) + sp(2.0))) / 3
    out = bce_loss(m, batch)
    assert out.loss.item() == pytest.approx(want, rel=1e-6)
    assert out.mask.tolist() == ([[False, True, True], [False, False, True]] if all_positions else [[True], [True]])


def test_a_baseline_epoch_is_one_adam_step_downhill():
    """BaselineUpdater: one mini-batch per epoch -> one Adam step from fresh moments: Δθ = −lr·g/(|g| + ε), with
    g the batch loss's gradient; so the loss on that batch goes down."""
    from tplib.train.baseline import BaselineUpdater

    ds = tiny()
    cfg = build_config("sasrec", "baseline", 0, "tiny",
                       parse_sets(["model.dropout=0", "model.max_len=12", "train.batch_size=1000", "train.lr=0.01"]))
    torch.manual_seed(0)
    model = build_model("sasrec", ds.n_items, ds.n_users, cfg.model)
    split = make_split(ds, 0)
    sampler = TrainSampler(ds, split, model.input_len, "sequence", np.random.default_rng(5))
    (batch,) = list(copy.deepcopy(sampler).epoch(1000))
    start = [p.detach().clone() for p in model.parameters()]
    before = bce_loss(model, batch).loss
    grads = torch.autograd.grad(before, list(model.parameters()), allow_unused=True)
    up = BaselineUpdater(cfg, model)
    out = up.run_epoch(sampler, None)
    assert out["loss"] == pytest.approx(before.item())
    moved = 0
    for (name, p), s, g in zip(model.named_parameters(), start, grads):
        g = torch.zeros_like(p) if g is None else g
        torch.testing.assert_close(p.detach() - s, -0.01 * g / (g.abs() + 1e-8), rtol=1e-3, atol=1e-7, msg=name)
        moved += int((p.detach() != s).sum())
    assert moved > 0
    assert bce_loss(model, batch).loss < before


def test_alignment_share_by_hand_and_training_unchanged(float64):
    """The share logged for chain 0 equals ||G − G_0|| / ||G|| computed by hand (two inner steps of plain autograd
    on copies, dropout off), and logging it changes no parameter of the step; with k = 1 it is exactly 0."""
    ds, cfg, split, sampler, up, twin, up_plain = twin_updaters(
        "sasrec", ["tp.k=2", "tp.alpha=0.5", "tp.lam=0.5", "model.dropout=0.3"], 1)
    model = up.model
    hand_model, hand_disc = copy.deepcopy(model), copy.deepcopy(up.disc)
    users = np.array([[4, 9]])
    diag: dict = defaultdict(list)
    torch.manual_seed(2)
    up.outer_step(sampler, users, diag)
    torch.manual_seed(2)
    up_plain.outer_step(twin, users)
    for a, b in zip(up.objective.parameters(), up_plain.objective.parameters()):
        assert torch.equal(a, b)  # the diagnostic drew nothing and restored everything

    # by hand: the same two mini-batches (a sampler in the same state draws them), dropout off
    third = twin_sampler(ds, split, model, sampler.mode, cfg)
    batches = [third.user_batch(int(u), cfg.tp.user_batch) for u in users[0]]
    hand_model.eval()
    hand_disc.eval()
    params = [*hand_model.parameters(), *hand_disc.parameters()]
    n_model = len(list(hand_model.parameters()))

    def grad_at(b, u):
        out = bce_loss(hand_model, b)
        bce_d, _ = adversarial_loss(hand_disc, out, up.labels[u].expand(b.users.shape[0]), cfg.tp.lam)
        return torch.autograd.grad(out.loss + bce_d, params, allow_unused=True)

    zero = [torch.zeros_like(p) for p in params]
    g1 = [z if g is None else g for z, g in zip(zero, grad_at(batches[0], users[0, 0]))]
    g2_start = [z if g is None else g for z, g in zip(zero, grad_at(batches[1], users[0, 1]))]
    with torch.no_grad():
        for p, g in zip(params, g1):
            p.sub_(cfg.tp.alpha * g)
    g2 = [z if g is None else g for z, g in zip(zero, grad_at(batches[1], users[0, 1]))]
    diff = sum(((a - b) ** 2).sum() for a, b in zip(g2[:n_model], g2_start[:n_model])).sqrt()
    norm = sum(((a + b) ** 2).sum() for a, b in zip(g1[:n_model], g2[:n_model])).sqrt()
    assert diag["align_share"] == [pytest.approx(float(diff / norm), rel=1e-9)]
    assert 0 < diag["align_share"][0] < 1

    ds, cfg, model, split, sampler = setup("caser", ["tp.k=1"])
    diag = defaultdict(list)
    TPUpdater(cfg, model, sampler, split, ds).outer_step(sampler, np.array([[3]]), diag)
    assert diag["align_share"] == [0.0]  # one inner step: G is the gradient at Θ
