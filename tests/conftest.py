"""Shared fixtures: the read-only real data folder (``../shared/data``, or ``$TP_SHARED_DATA``) and headless
Chromium (``/usr/bin/chromium``) for the tests that load the report in a browser; the report tests' page, rendered
once."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """report_fixture.py's studies aggregated and rendered once for all the report tests (read only)."""
    from report_fixture import build_report

    return build_report(tmp_path_factory.mktemp("report"))


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Runs headless Chromium at a 1366 x 900 window with a throwaway profile and no network chatter:
    ``chromium(*args)`` appends ``args`` (an action such as ``--dump-dom`` or ``--screenshot=…``, then the page's
    URI) and returns the finished process. Skips the test when Chromium is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: the browser checks need chromium (apt-get install chromium)")

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1366,900", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    return run


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread in the test process: the tests' tensors are tiny, and extra threads only spin (badly so
    when the workflow's smoke test runs jobs beside it)."""
    import torch

    torch.set_num_threads(1)
