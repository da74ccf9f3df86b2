"""Shared fixtures: the read-only real data folder (``../shared/data``, or ``$TP_SHARED_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    """Where the real datasets are: ``$TP_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("TP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; skips the test when it is absent."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"real data folder {d} not found (set TP_SHARED_DATA to the folder holding ml-1m/ etc.)")
    return d


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread in the test process: the tests' tensors are tiny, and extra threads only spin (badly so
    when the workflow's smoke test runs jobs beside it)."""
    import torch

    torch.set_num_threads(1)
