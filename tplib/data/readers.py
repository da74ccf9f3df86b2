"""Readers of the raw formats: from a raw file to its records.

Every reader returns a :class:`pandas.DataFrame` in **file order** with the columns

- ``user`` and ``item`` (raw ids, as strings),
- ``time`` (int64), only when the format has timestamps (without it, file order is time order),
- ``lineno`` (int64): the 1-based line of the record in the file, for messages.

Ratings' values are never read into the frame: every rating or review is one implicit interaction.

The headerless formats (separator, fields, which field is the user, item and time) are facts of the registry
(``registry.yaml``, section ``formats``); :data:`READERS` maps the reader names the registry's sources use to
the functions here. Every problem with the input raises :class:`~tplib.io.DataError` with a one-line
message that names the file (and line) and says what to do.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from tplib.data.registry import REGISTRY, FileFormat
from tplib.io import DataError

__all__ = [
    "READERS",
    "read_amazon_csv",
    "read_game",
    "read_generic",
    "read_ml1m",
    "read_movietweetings",
    "read_mt_sample",
    "read_music",
]

_INT_RE = re.compile(r"-?[0-9]+")

_ML1M = REGISTRY.format("ml1m")
_MOVIETWEETINGS = REGISTRY.format("movietweetings")
_MT_SAMPLE = REGISTRY.format("mt-sample")
_MUSIC = REGISTRY.format("music")
_GAME = REGISTRY.format("game")
_AMAZON_CSV = REGISTRY.format("amazon-csv")


def _check_nonempty_file(path: Path, fix: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: not found; {fix}")
    if not path.is_file():
        raise DataError(f"{path}: not a file; {fix}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file; {fix}")


def _read_fixed(path: str | Path, fmt: FileFormat) -> pd.DataFrame:
    """Read a headerless delimited file fast (pandas' C parser), then validate; on any problem, locate the first
    bad line with :func:`_raise_first_bad_line` and raise a :class:`DataError` naming it."""
    path = Path(path)
    _check_nonempty_file(path, fmt.fix)
    if fmt.sep == "::":  # the C parser takes one-character separators: "a::b" reads as "a", "", "b"
        psep, ncols, col = ":", 2 * fmt.n - 1, (lambda k: 2 * k)
        must_be_empty = [2 * k + 1 for k in range(fmt.n - 1)]
    else:
        psep, ncols, col = fmt.sep, fmt.n, (lambda k: k)
        must_be_empty = []
    try:
        df = pd.read_csv(
            path,
            sep=psep,
            header=None,
            names=list(range(ncols)),
            dtype=str,
            engine="c",
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        _raise_first_bad_line(path, fmt)
    bad = np.zeros(len(df), dtype=bool)
    for c in must_be_empty:
        bad |= (df[c] != "").to_numpy()
    for k in range(fmt.n):
        bad |= (df[col(k)] == "").to_numpy()
    if fmt.time is not None:
        bad |= ~df[col(fmt.time)].str.fullmatch(_INT_RE.pattern).to_numpy(dtype=bool)
    if bad.any():
        _raise_first_bad_line(path, fmt)
    out = pd.DataFrame(
        {
            "user": df[col(fmt.user)].to_numpy(dtype=object),
            "item": df[col(fmt.item)].to_numpy(dtype=object),
        }
    )
    if fmt.time is not None:
        try:
            out["time"] = df[col(fmt.time)].astype(np.int64).to_numpy()
        except (OverflowError, ValueError):
            raise DataError(f"{path}: a timestamp does not fit in 64 bits; the file is not {fmt.what}") from None
    out["lineno"] = np.arange(1, len(df) + 1, dtype=np.int64)
    return out


def _line_problem(parts: list[str], fmt: FileFormat) -> str | None:
    """What is wrong with one line split into fields, or None."""
    if len(parts) == 1 and parts[0] == "":
        return "empty line"
    if len(parts) != fmt.n:
        return f"expected {fmt.n} fields separated by {fmt.sep!r}, got {len(parts)}"
    for k, name in enumerate(fmt.fields):
        if parts[k] == "":
            return f"field {k + 1} ({name}) is empty"
    if fmt.time is not None and not _INT_RE.fullmatch(parts[fmt.time]):
        return f"{fmt.fields[fmt.time]} {parts[fmt.time]!r} is not an integer"
    return None


def _raise_first_bad_line(path: Path, fmt: FileFormat) -> NoReturn:
    """Scan ``path`` line by line (slow; only on the error path) and raise a DataError for the first bad line."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    ends_with_newline = data.endswith(b"\n")
    if ends_with_newline:
        lines.pop()
    for i, raw in enumerate(lines):
        lineno = i + 1
        last = i == len(lines) - 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"{path}:{lineno}: not UTF-8 text; the file is damaged or is not {fmt.what} — {fmt.fix}"
            ) from None
        problem = _line_problem(line.removesuffix("\r").split(fmt.sep), fmt)
        if problem is None:
            continue
        if last and not ends_with_newline:
            raise DataError(
                f"{path}:{lineno}: {problem}, and the last line has no newline: the file looks truncated "
                f"(an interrupted download?) — {fmt.fix}"
            )
        raise DataError(f"{path}:{lineno}: {problem}; the file looks damaged or is not {fmt.what} — {fmt.fix}")
    raise DataError(f"{path}: could not be parsed as {fmt.what}, but no bad line was found; {fmt.fix}")


def read_ml1m(path: str | Path) -> pd.DataFrame:
    """MovieLens 1M ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``."""
    return _read_fixed(path, _ML1M)


def read_movietweetings(path: str | Path) -> pd.DataFrame:
    """MovieTweetings ``ratings.dat``: ``user_id::movie_id::rating::rating_timestamp`` (movie ids are zero-padded
    IMDb ids, kept as strings)."""
    return _read_fixed(path, _MOVIETWEETINGS)


def read_mt_sample(path: str | Path) -> pd.DataFrame:
    """The packaged MovieTweetings slice: same format as :func:`read_movietweetings`."""
    return _read_fixed(path, _MT_SAMPLE)


def read_music(path: str | Path) -> pd.DataFrame:
    """MELT's Amazon Digital Music ``Music.txt``: ``user item unix_time`` separated by single spaces."""
    return _read_fixed(path, _MUSIC)


def read_game(path: str | Path) -> pd.DataFrame:
    """SASRec's Amazon Video Games ``Video.txt``: ``user item`` separated by a single space; no times (file order
    is each user's chronological order)."""
    return _read_fixed(path, _GAME)


def read_amazon_csv(path: str | Path) -> pd.DataFrame:
    """An Amazon 2014 ratings-only CSV: ``user,item,rating,unix_time``, no header."""
    return _read_fixed(path, _AMAZON_CSV)


def read_generic(
    path: str | Path,
    *,
    sep: str = ",",
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = None,
) -> pd.DataFrame:
    """A delimited file with a header line naming the columns. ``time_col=None``: the file has no times and
    file order is time order. Standard CSV quoting applies; line numbers assume no quoted line breaks."""
    path = Path(path)
    fix = "check the file and the --sep/--user-col/--item-col/--time-col options"
    _check_nonempty_file(path, fix)
    if not sep:
        raise DataError("generic source: the separator is empty")
    engine = "c" if len(sep) == 1 else "python"
    try:
        df = pd.read_csv(
            path,
            sep=sep if len(sep) == 1 else re.escape(sep),
            header=0,
            dtype=str,
            engine=engine,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        msg = " ".join(str(e).split())
        raise DataError(f"{path}: cannot be read as a {sep!r}-separated file with a header ({msg}); {fix}") from None
    wanted = [("user", user_col), ("item", item_col)] + ([("time", time_col)] if time_col is not None else [])
    for role, name in wanted:
        if name not in df.columns:
            known = ", ".join(repr(str(c)) for c in df.columns)
            raise DataError(f"{path}:1: no {role} column {name!r} in the header (columns: {known}); {fix}")
    if len(df) == 0:
        raise DataError(f"{path}: a header but no records; {fix}")
    lineno = np.arange(2, len(df) + 2, dtype=np.int64)
    for role, name in wanted:
        empty = (df[name] == "").to_numpy()
        if empty.any():
            k = int(np.argmax(empty))
            raise DataError(f"{path}:{lineno[k]}: the {role} column {name!r} is empty; {fix}")
    out = pd.DataFrame({"user": df[user_col].to_numpy(dtype=object), "item": df[item_col].to_numpy(dtype=object)})
    if time_col is not None:
        ok = df[time_col].str.fullmatch(_INT_RE.pattern).to_numpy(dtype=bool)
        if not ok.all():
            k = int(np.argmin(ok))
            raise DataError(
                f"{path}:{lineno[k]}: time {df[time_col].iloc[k]!r} in column {time_col!r} is not an integer; {fix}"
            )
        try:
            out["time"] = df[time_col].astype(np.int64).to_numpy()
        except (OverflowError, ValueError):
            raise DataError(f"{path}: a time in column {time_col!r} does not fit in 64 bits; {fix}") from None
    out["lineno"] = lineno
    return out


#: The reader of each name a registry source may give as its ``reader``.
READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "ml1m": read_ml1m,
    "movietweetings": read_movietweetings,
    "mt-sample": read_mt_sample,
    "music": read_music,
    "game": read_game,
    "amazon-csv": read_amazon_csv,
    "generic": read_generic,
}
