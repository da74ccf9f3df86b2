"""Where and how a job computes: the torch device, CUDA determinism, random generators, threads, the garbage
collector. Training and evaluation both use these; nothing here knows a model or a method."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA where this job sees a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device gets
    deterministic kernels (:func:`deterministic_cuda`)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.device={name} but CUDA is not available here; use train.device=cpu")
        deterministic_cuda()
    return dev


def deterministic_cuda() -> None:
    """Same seed, same GPU, same numbers: CUDA's atomic-add kernels (embedding and index backward passes) and
    cuBLAS's split reductions can otherwise sum in a different order on every run. PyTorch picks its deterministic
    kernels where it has them and warns (``warn_only``) where it has none, so a run never fails for it;
    ``tests/test_determinism.py`` checks the outcome on CUDA where a GPU is present. cuBLAS reads its workspace
    setting when it first starts, so this must run before any CUDA work (it does: the device is resolved first)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def set_threads(n: int) -> None:
    """Torch's intra-op threads (0: leave torch's default)."""
    if n:
        torch.set_num_threads(n)


def seed_everything(seed: int) -> None:
    """Seeds torch's global generator (initialisation, dropout); numpy generators are passed explicitly."""
    torch.manual_seed(seed)


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """An independent numpy generator per purpose (1 = training sampler, 2 = TP user order, ...)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


@contextlib.contextmanager
def gc_frozen() -> Iterator[None]:
    """Python's cyclic garbage collector ignores the objects alive when training starts (torch's modules, the
    data) until it ends: its full collections, triggered by the many small objects of each step, no longer walk
    them (about 6% of a vectorised TP epoch on CPU, nothing for the baseline). Changes no value."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
