"""Typed, frozen configuration.

Every run is described by one :class:`RunConfig`, built from a plain dict (defaults, then the
per-dataset defaults, then the user's ``--set key=value`` overrides). An unknown key anywhere raises
:class:`ConfigError` naming the key; values are type-checked and range-checked.

Defaults follow each backbone's authors (see ``docs/method.md``):

- SASRec (Kang & McAuley 2018; kang205/SASRec): d = 50, 2 blocks, 1 head, dropout 0.2 on ML-1M and 0.5 on
  sparse data, max length 200 on ML-1M and 50 elsewhere, Adam lr 1e-3, betas (0.9, 0.98), batch 128.
- GRU4Rec (Hidasi et al. 2016), trained here with the paper's BCE loss: one GRU layer of d = 50 units, same
  max length and dropout as SASRec, Adam lr 1e-3, batch 128.
- Caser (Tang & Wang 2018; graytowne/caser_pytorch): d = 50, L = 5, T = 3, n_v = 4, n_h = 16, dropout 0.5,
  Adam lr 1e-3, weight decay 1e-6, batch 512.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args, get_origin

from tplib.io import ConfigError

BACKBONES = ("gru4rec", "caser", "sasrec")
METHODS = ("baseline", "tp")


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of a backbone. Keys that a backbone does not use are ignored by it."""

    d: int = 50  # embedding size (the paper tunes it in {10, 15, ..., 50})
    max_len: int = 50  # L: how many of the latest items the model reads (SASRec/GRU4Rec)
    dropout: float = 0.5
    n_blocks: int = 2  # SASRec self-attention blocks
    n_heads: int = 1  # SASRec heads
    gru_layers: int = 1  # GRU4Rec layers
    caser_L: int = 5  # Caser: input window length
    caser_T: int = 3  # Caser: targets per window
    caser_nv: int = 4  # Caser: vertical filters
    caser_nh: int = 16  # Caser: horizontal filters per height
    caser_new_user: Literal["mean", "zero"] = "mean"  # Caser's user embedding for users it never trained on

    def check(self) -> None:
        _positive(self, "d", "max_len", "n_blocks", "n_heads", "gru_layers", "caser_L", "caser_T")
        _nonneg(self, "caser_nv", "caser_nh")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.d % self.n_heads:
            raise ConfigError(f"model.d ({self.d}) must be divisible by model.n_heads ({self.n_heads})")
        if self.caser_nv + self.caser_nh == 0:
            raise ConfigError("model.caser_nv and model.caser_nh cannot both be 0")


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-3  # Adam learning rate (baseline); for TP this is unused (see TPConfig.beta)
    adam_beta2: float = 0.98
    weight_decay: float = 0.0  # L2 regularisation (Adam weight decay)
    batch_size: int = 128  # baseline: users (sequence backbones) or windows (Caser) per mini-batch
    max_epochs: int = 200
    patience: int = 10  # early stopping: evaluations without a better validation NDCG@10
    eval_every: int = 5  # epochs between validation evaluations
    min_epochs: int = 0  # never stop before this many epochs
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ... ("auto" picks cuda when available)
    threads: int = 0  # torch intra-op threads on CPU; 0 leaves torch's default
    eval_batch_users: int = 1024  # users scored at once in evaluation
    progress: bool = True  # tqdm bar (silent anyway when stderr is not a terminal)

    def check(self) -> None:
        _positive(self, "lr", "batch_size", "max_epochs", "eval_every", "eval_batch_users")
        _nonneg(self, "weight_decay", "patience", "min_epochs", "threads")
        if not 0.0 < self.adam_beta2 < 1.0:
            raise ConfigError(f"train.adam_beta2 must be in (0, 1), got {self.adam_beta2}")


@dataclass(frozen=True)
class TPConfig:
    """The TP trainer (paper Algorithm 1, read as in docs/method.md)."""

    k: int = 2  # inner updates per outer step
    alpha: float = 0.1  # inner plain-SGD learning rate (chosen on validation: the `alpha` study)
    beta: float = 1e-3  # outer Adam learning rate
    lam: float = 0.1  # adversarial weight lambda (0 switches the discriminator's influence off)
    P: int = 1  # parallel inner chains averaged per outer step (1 = the paper's algorithm)
    adam_beta2: float = 0.999  # the outer Adam's β2 (Adam's suggested setting)
    # L of one user's mini-batch: "user" = the mean over its targets (every user weighs the same); "target" = the
    # sum over its targets divided by the mean count per user (every target weighs the same, and an average
    # user's loss, so α's meaning, is as with "user")
    loss_weighting: Literal["user", "target"] = "user"
    # False: the control without alignment. Every inner gradient is taken at Θ (the inner steps do not move), so
    # the outer gradient is α Σ_i g_i(Θ): the same users, scale and Adam, without the term that rewards alignment
    align: bool = True
    vectorize: bool = True  # run the P > 1 chains at once with torch.func.vmap where the backbone allows it
    user_batch: int = 128  # cap on one user's mini-batch (Caser windows)
    disc_hidden: int = 50  # discriminator MLP hidden width
    diag_every: int = 10  # outer steps between mechanism diagnostics (gradient alignment between users)

    def check(self) -> None:
        if self.k < 1:
            raise ConfigError(f"tp.k must be >= 1, got {self.k}")
        if self.P < 1:
            raise ConfigError(f"tp.P must be >= 1, got {self.P}")
        if self.lam < 0:
            raise ConfigError(f"tp.lam must be >= 0, got {self.lam}")
        _positive(self, "alpha", "beta", "user_batch", "disc_hidden", "diag_every")
        if not 0.0 < self.adam_beta2 < 1.0:
            raise ConfigError(f"tp.adam_beta2 must be in (0, 1), got {self.adam_beta2}")


@dataclass(frozen=True)
class EvalConfig:
    mask_seen: bool = True  # exclude the items of the user's input history from the ranking (never the target)
    Ns: tuple[int, ...] = (1, 5, 10, 15, 20)
    select_metric: str = "NDCG@10"  # validation metric for early stopping and model selection

    def check(self) -> None:
        if not self.Ns or any(n < 1 for n in self.Ns):
            raise ConfigError(f"eval.Ns must be positive integers, got {self.Ns}")
        name, _, n = self.select_metric.partition("@")
        if name not in ("HR", "NDCG") or not n.isdigit():
            raise ConfigError(f"eval.select_metric must look like NDCG@10 or HR@10, got {self.select_metric!r}")


@dataclass(frozen=True)
class SplitConfig:
    new_frac: float = 0.2  # share of users held out as new users (never trained on)
    head_frac: float = 0.2  # share of users, inside each group, that are head users

    def check(self) -> None:
        for k in ("new_frac", "head_frac"):
            v = getattr(self, k)
            if not 0.0 < v < 1.0:
                raise ConfigError(f"split.{k} must be in (0, 1), got {v}")


@dataclass(frozen=True)
class RunConfig:
    backbone: str = "sasrec"
    method: str = "baseline"
    seed: int = 0
    dataset: str = ""  # filled from the prepared data's stats.json
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tp: TPConfig = field(default_factory=TPConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def check(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}; got {self.backbone!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        for f in ("model", "train", "tp", "eval", "split"):
            getattr(self, f).check()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------------------
# Defaults that depend on the backbone and the dataset (the backbones' authors' settings).

DENSE_DATASETS = ("ml1m",)  # SASRec's authors: max_len 200 and dropout 0.2 on ML-1M, 50 / 0.5 elsewhere


def default_overrides(backbone: str, dataset: str) -> dict[str, Any]:
    """Per-backbone and per-dataset defaults, as a nested dict applied on top of the dataclass defaults."""
    dense = dataset in DENSE_DATASETS
    seq = {"max_len": 200 if dense else 50, "dropout": 0.2 if dense else 0.5}
    if backbone == "sasrec":
        return {"model": seq, "train": {"lr": 1e-3, "batch_size": 128, "adam_beta2": 0.98}}
    if backbone == "gru4rec":
        return {"model": seq, "train": {"lr": 1e-3, "batch_size": 128, "adam_beta2": 0.999}}
    if backbone == "caser":
        return {
            "model": {"dropout": 0.5},
            "train": {"lr": 1e-3, "batch_size": 512, "weight_decay": 1e-6, "adam_beta2": 0.999},
        }
    raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}; got {backbone!r}")


# ---------------------------------------------------------------------------------------------------------
# Building from dicts, with unknown keys rejected.


def _positive(obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if not v > 0:
            raise ConfigError(f"{_section(obj)}.{n} must be > 0, got {v}")


def _nonneg(obj: Any, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if v < 0:
            raise ConfigError(f"{_section(obj)}.{n} must be >= 0, got {v}")


_SECTIONS = {
    ModelConfig: "model",
    TrainConfig: "train",
    TPConfig: "tp",
    EvalConfig: "eval",
    SplitConfig: "split",
}


def _section(obj: Any) -> str:
    return _SECTIONS.get(type(obj), type(obj).__name__)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (possibly a string from the command line) to the annotated type ``tp``."""
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(_coerce(v, item_tp, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - a programming error


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s}; known keys under "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key + ".")
        else:
            kwargs[name] = _coerce(value, tp, key)
    return cls(**kwargs)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_sets(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["train.lr=0.01", "model.d=64"]`` -> ``{"train": {"lr": "0.01"}, "model": {"d": "64"}}``.

    Values stay strings here; :func:`build_config` converts them to the annotated types.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p} is not a section")
        node[parts[-1]] = value.strip()
    return out


def build_config(
    backbone: str,
    method: str,
    seed: int,
    dataset: str = "",
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Defaults, then the backbone/dataset defaults, then ``overrides``; checked."""
    if backbone not in BACKBONES:
        raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}; got {backbone!r}")
    data: dict[str, Any] = {"backbone": backbone, "method": method, "seed": seed, "dataset": dataset}
    data = deep_merge(data, default_overrides(backbone, dataset))
    data = deep_merge(data, overrides or {})
    cfg = _build(RunConfig, data, "")
    cfg.check()
    return cfg


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a config written by :meth:`RunConfig.to_dict` (a run's ``config.json``)."""
    cfg = _build(RunConfig, data, "")
    cfg.check()
    return cfg


def with_defaults(recorded: Any) -> Any:
    """A config written by :meth:`RunConfig.to_dict`, with every setting it lacks (it predates the setting) at
    its default, which is the behaviour it was written with: a new setting's default is always the old behaviour.
    A config this version cannot read (a setting since removed, a required one missing) comes back as it is, and
    so compares unequal."""
    try:
        return config_from_dict(recorded).to_dict()
    except (ConfigError, TypeError):  # TypeError: a required field (backbone, method, ...) is missing
        return recorded

