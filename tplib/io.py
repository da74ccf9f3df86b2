"""The errors every layer raises for bad input, atomic writes, and the Markdown tables the scripts print.

An error's message names the file, line or key at fault and what to do about it; the command line prints it as
one line (``tp: error: ...``) instead of a traceback.

Every result file is written atomically: to a temporary file in the same folder, then renamed over the target.
A reader (or a run killed halfway) sees the old file or the complete new one, never a half-written one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class DataError(ValueError):
    """Bad or missing input data. The message names the file (and line) and what to do."""


class ConfigError(ValueError):
    """A bad configuration value or an unknown key. The message names the key."""


def _umask_mode() -> int:
    """0o666 less the process umask: what ``open()`` would give a new file (mkstemp gives 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``: a reader sees the old file
    or the complete new one, never a half-written one. The file gets the usual umask-based mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``text`` as UTF-8, whatever the platform's default encoding."""
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def atomic_write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch

    atomic_write_bytes(path, lambda f: torch.save(obj, f))


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table: the header line, its rule, then one line per row (each cell as ``str``)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)])
