"""Raw data sources: file formats, canonical URLs, checksums, local look-up and downloads.

Each dataset of the paper has one :class:`Source` in :data:`SOURCES`. A source knows the raw file's name, where
to find it inside a folder such as ``../shared/data`` (:func:`resolve_raw`), where to download it from, its
sha256, how to read it and the paper's filter for it (``item_min``/``user_min``; see docs/method.md).

Every reader returns a :class:`pandas.DataFrame` in **file order** with the columns

- ``user`` and ``item`` (raw ids, as strings),
- ``time`` (int64), only when the format has timestamps (without it, file order is time order),
- ``lineno`` (int64): the 1-based line of the record in the file, for messages.

Ratings' values are never read into the frame: every rating or review is one implicit interaction.

Every problem with the input raises :class:`~tplib.data.dataset.DataError` with a one-line message that names
the file (and line) and says what to do.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from tplib.io import DataError

__all__ = [
    "SOURCES",
    "RawFile",
    "Source",
    "download_source",
    "fetch",
    "get_source",
    "read_amazon_csv",
    "read_game",
    "read_generic",
    "read_ml1m",
    "read_movietweetings",
    "read_mt_sample",
    "read_music",
    "resolve_raw",
    "sample_path",
    "sha256_file",
]

ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
MUSIC_URL = (
    "https://raw.githubusercontent.com/rlqja1107/MELT/55d4eae54e0c67d9a402ce049ead3c47c0221107/dataset/Music.txt"
)
GAME_URL = "https://raw.githubusercontent.com/kang205/SASRec/641c378fcfac265ea8d1e5fe51d4d53eb892d1b4/data/Video.txt"
MOVIETWEETINGS_URL = "https://raw.githubusercontent.com/sidooms/MovieTweetings/8917fd3bf8b8e3c7ca3ae11cd1d1a8b946630e84/latest/ratings.dat"
#: The ~2019 version the paper most likely used (sidooms/MovieTweetings stats.md at this commit: 814,117 ratings,
#: 13,130 users with >= 10 ratings, last rating 2019-11-05). Its checksum and filtered counts are unknown here, so
#: it is not the default; use ``tp prepare --dataset movietweetings --raw FILE --no-verify`` with a copy of it.
MOVIETWEETINGS_2019_CANDIDATE_URL = "https://raw.githubusercontent.com/sidooms/MovieTweetings/0007302b1b63c8d17001e100db99bbc9a4554339/latest/ratings.dat"
#: The raw Amazon 2014 ratings-only CSVs (``user,item,rating,unix_time``, no header), served by SNAP.
AMAZON_MUSIC_CSV_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_Digital_Music.csv"
AMAZON_GAME_CSV_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_Video_Games.csv"

_AMAZON_TERMS = (
    "McAuley's Amazon product data (2014), research use; cite R. He & J. McAuley, WWW 2016 and "
    "J. McAuley et al., SIGIR 2015. Do not redistribute."
)
_MOVIETWEETINGS_TERMS = (
    "MIT licence, Copyright (c) 2013 Simon Dooms; cite S. Dooms, T. De Pessemier, L. Martens, "
    '"MovieTweetings: a Movie Rating Dataset Collected From Twitter", CrowdRec workshop at RecSys 2013.'
)


# ---------------------------------------------------------------------------------------------------------
# Checksums


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Fixed formats


@dataclass(frozen=True)
class _Format:
    """A headerless delimited format. Fields are 0-based; ``time`` is None when the format has no times."""

    sep: str
    fields: tuple[str, ...]  # field names, for messages
    user: int
    item: int
    time: int | None
    what: str  # "MovieLens ratings.dat": what the file should be, for messages
    fix: str  # what to do about a damaged file, for messages

    @property
    def n(self) -> int:
        return len(self.fields)


_ML1M = _Format(
    "::",
    ("UserID", "MovieID", "Rating", "Timestamp"),
    0,
    1,
    3,
    "MovieLens ratings.dat (UserID::MovieID::Rating::Timestamp)",
    f"re-download it from {ML1M_URL}",
)
_MOVIETWEETINGS = _Format(
    "::",
    ("user_id", "movie_id", "rating", "rating_timestamp"),
    0,
    1,
    3,
    "MovieTweetings ratings.dat (user_id::movie_id::rating::rating_timestamp)",
    f"re-download it from {MOVIETWEETINGS_URL}",
)
_MT_SAMPLE = _Format(
    "::",
    _MOVIETWEETINGS.fields,
    0,
    1,
    3,
    "the packaged MovieTweetings slice (user_id::movie_id::rating::rating_timestamp)",
    "reinstall tplib, or regenerate it with tplib.data.prepare.make_movietweetings_slice (see its PROVENANCE.md)",
)
_MUSIC = _Format(
    " ",
    ("user", "item", "unix_time"),
    0,
    1,
    2,
    "MELT's Music.txt (user item unix_time, separated by single spaces)",
    f"re-download it from {MUSIC_URL}",
)
_GAME = _Format(
    " ",
    ("user", "item"),
    0,
    1,
    None,
    "SASRec's Video.txt (user item, separated by a single space, no times)",
    f"re-download it from {GAME_URL}",
)
_AMAZON_CSV = _Format(
    ",",
    ("user", "item", "rating", "unix_time"),
    0,
    1,
    3,
    "an Amazon 2014 ratings-only CSV (user,item,rating,unix_time; no header)",
    f"re-download it (e.g. {AMAZON_MUSIC_CSV_URL})",
)

_INT_RE = re.compile(r"-?[0-9]+")


def _check_nonempty_file(path: Path, fix: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: not found; {fix}")
    if not path.is_file():
        raise DataError(f"{path}: not a file; {fix}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file; {fix}")


def _read_fixed(path: str | Path, fmt: _Format) -> pd.DataFrame:
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


def _line_problem(parts: list[str], fmt: _Format) -> str | None:
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


def _raise_first_bad_line(path: Path, fmt: _Format) -> NoReturn:
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
        if line.endswith("\r"):
            line = line[:-1]
        problem = _line_problem(line.split(fmt.sep), fmt)
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


# ---------------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Source:
    """One raw data source.

    ``filename`` is the raw file's name inside a folder (None: the user must name the file itself), ``subdirs``
    the folders under ``--raw`` (or the resources folder) where it is looked for, besides the folder itself; a
    download goes to ``subdirs[0]``. ``url`` is where it is downloaded from; for a zip, ``archive_md5`` checks
    the archive and ``archive_member`` names the file inside. ``sha256`` is the raw file's checksum (None: no
    reference, the file cannot be verified). ``reader(path, **options)`` returns the records (module docstring).
    ``item_min``/``user_min`` are the paper's filter for this source. ``default_path`` is used when no raw path
    is given (the packaged sample)."""

    name: str
    filename: str | None
    reader: Callable[..., pd.DataFrame]
    item_min: int
    user_min: int
    has_time: bool
    url: str | None = None
    sha256: str | None = None
    archive_md5: str | None = None
    archive_member: str | None = None
    subdirs: tuple[str, ...] = ()
    version: str = ""
    license: str = ""
    default_path: Callable[[], Path] | None = None


def sample_path() -> Path:
    """The packaged MovieTweetings slice (``tplib/data/sample/movietweetings-slice/ratings.dat``)."""
    ref = importlib_resources.files("tplib.data").joinpath("sample", "movietweetings-slice", "ratings.dat")
    return Path(str(ref))


#: sha256 of the packaged slice (see tplib/data/sample/movietweetings-slice/PROVENANCE.md).
MT_SAMPLE_SHA256 = "7f7f92b72ba6e9a7134d14d2d30ca0c17b64884daaa44907d28ba9a1dde7dd28"

SOURCES: dict[str, Source] = {
    "ml1m": Source(
        name="ml1m",
        filename="ratings.dat",
        reader=read_ml1m,
        item_min=5,
        user_min=10,
        has_time=True,
        url=ML1M_URL,
        sha256="506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
        archive_md5="c4d9eecfca2ab87c1945afe126590906",
        archive_member="ml-1m/ratings.dat",
        subdirs=("ml-1m",),
        version="MovieLens 1M (GroupLens, released 2003; ratings.dat md5 a89aa3591bc97d6d4e0c89459ff39362)",
        license=(
            "GroupLens terms: research use, no redistribution without permission, no endorsement implied; cite "
            "F. M. Harper & J. A. Konstan, The MovieLens Datasets: History and Context, ACM TiiS 5(4), 2015."
        ),
    ),
    "movietweetings": Source(
        name="movietweetings",
        filename="ratings.dat",
        reader=read_movietweetings,
        item_min=5,
        user_min=10,
        has_time=True,
        url=MOVIETWEETINGS_URL,
        sha256="38677e4a858d3356326dfe0db73cc381c29043a9da4ade8c00a45486e2488c37",
        subdirs=("movietweetings/latest_2013-11-06", "latest_2013-11-06", "movietweetings", "latest"),
        version=(
            "MovieTweetings latest/ratings.dat as of 2013-11-06 (sidooms/MovieTweetings commit 8917fd3; "
            "the paper used a ~2019 file, e.g. commit 0007302, whose checksum is unknown here)"
        ),
        license=_MOVIETWEETINGS_TERMS,
    ),
    "music": Source(
        name="music",
        filename="Music.txt",
        reader=read_music,
        item_min=0,
        user_min=10,
        has_time=True,
        url=MUSIC_URL,
        sha256="ff4e7c170eb6030b61586402e2e31923fddbff4761f1c33cc7b66d44f95d9322",
        subdirs=("amazon-proxies/digital-music-melt", "digital-music-melt", "music"),
        version=(
            "Amazon Digital Music 2014, SASRec-style >=5/>=5 cut with times: MELT's dataset/Music.txt "
            "(rlqja1107/MELT commit 55d4eae); the item cut is already applied, so only users >= 10 is filtered"
        ),
        license=_AMAZON_TERMS + " File from rlqja1107/MELT (cite Kim et al., SIGIR 2023).",
    ),
    "game": Source(
        name="game",
        filename="Video.txt",
        reader=read_game,
        item_min=0,
        user_min=10,
        has_time=False,
        url=GAME_URL,
        sha256="b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651",
        subdirs=("amazon-proxies/video-games-sasrec", "video-games-sasrec", "game"),
        version=(
            "Amazon Video Games 2014, SASRec's data/Video.txt (kang205/SASRec commit 641c378; no times, file order "
            "is chronological); the item cut is already applied, so only users >= 10 is filtered"
        ),
        license=_AMAZON_TERMS + " File from kang205/SASRec, Apache-2.0 (cite Kang & McAuley, ICDM 2018).",
    ),
    "amazon-csv": Source(
        name="amazon-csv",
        filename=None,
        reader=read_amazon_csv,
        item_min=5,
        user_min=10,
        has_time=True,
        version=(
            "a raw Amazon 2014 ratings-only CSV given by the user (e.g. ratings_Digital_Music.csv, sha256 "
            "fdf164882460ff26fa2521e01f6a9cf8005ad252ddce308dd03519064f02d80e, or ratings_Video_Games.csv from "
            "snap.stanford.edu/data/amazon/productGraph/categoryFiles/); the paper's filter applies in full"
        ),
        license=_AMAZON_TERMS,
    ),
    "generic": Source(
        name="generic",
        filename=None,
        reader=read_generic,
        item_min=5,
        user_min=10,
        has_time=True,
        version="a user-supplied delimited file with a header",
        license="as given by the file's owner",
    ),
    "mt-sample": Source(
        name="mt-sample",
        filename="ratings.dat",
        reader=read_mt_sample,
        item_min=5,
        user_min=10,
        has_time=True,
        sha256=MT_SAMPLE_SHA256,
        subdirs=("movietweetings-slice",),
        version=(
            "a slice of MovieTweetings latest/ratings.dat as of 2013-11-06 shipped with tplib: every rating of the "
            "users with >= 10 ratings whose id is divisible by 6 (see its PROVENANCE.md)"
        ),
        license=_MOVIETWEETINGS_TERMS,
        default_path=sample_path,
    ),
}


def get_source(source: str | Source) -> Source:
    """The :class:`Source` of a name (or the Source itself); DataError listing the known names otherwise."""
    if isinstance(source, Source):
        return source
    try:
        return SOURCES[source]
    except KeyError:
        raise DataError(f"unknown dataset {source!r}; known: {', '.join(sorted(SOURCES))}") from None


# ---------------------------------------------------------------------------------------------------------
# Finding, downloading and verifying the raw file


@dataclass(frozen=True)
class RawFile:
    """A resolved raw file: its path, sha256, and whether the sha256 matched the source's."""

    path: Path
    sha256: str
    verified: bool
    expected_sha256: str | None
    downloaded: bool = False


def _candidates(src: Source, folder: Path) -> list[Path]:
    assert src.filename is not None
    return [folder / src.filename] + [folder / sub / src.filename for sub in src.subdirs]


def _download_target(src: Source, folder: Path) -> Path:
    assert src.filename is not None
    return folder / src.subdirs[0] / src.filename if src.subdirs else folder / src.filename


def resolve_raw(
    source: str | Source,
    raw: str | Path | None = None,
    resources: str | Path | None = None,
    download: bool = False,
    *,
    verify: bool = True,
) -> RawFile:
    """Find (or download) the raw file of ``source`` and check its sha256.

    ``raw`` is a file (used as is) or a folder, searched for the source's file name in itself and its known
    sub-folders (so ``raw=../shared/data`` works for every dataset). ``resources`` is a folder searched the same
    way when ``raw`` is None, and where downloads go. With ``download=True`` a file that is not found is
    downloaded from the source's URL (into ``resources``, else into the ``raw`` folder), checked and renamed into
    place atomically. ``verify=False`` accepts a file whose sha256 differs (another version, knowingly); the
    result then says ``verified=False``, as it does for a source without a reference checksum."""
    src = get_source(source)
    raw_p = Path(raw) if raw is not None else None
    res_p = Path(resources) if resources is not None else None
    path: Path | None = None
    dest: Path | None = None
    searched: list[Path] = []
    if raw_p is not None and raw_p.is_file():
        path = raw_p
    elif raw_p is None and res_p is None:
        if src.default_path is None:
            raise DataError(f"no raw data given for {src.name!r}; pass --raw FILE_OR_FOLDER{_where_from(src)}")
        path = src.default_path()
        if not path.is_file():
            raise DataError(f"{path}: not found; the installation of tplib is incomplete: reinstall it")
    else:
        folder = raw_p if raw_p is not None else res_p
        assert folder is not None
        if src.filename is None:
            what = "is a folder" if folder.is_dir() else "not found"
            raise DataError(f"{folder}: {what}; the {src.name!r} source needs the raw file itself (--raw FILE)")
        if folder.is_dir():
            searched = _candidates(src, folder)
            path = next((p for p in searched if p.is_file()), None)
        elif not download:
            raise DataError(f"{folder}: not found; pass the raw file or a folder holding it{_where_from(src)}")
        if path is None:
            if res_p is not None:
                dest = _download_target(src, res_p)
            elif folder.is_dir() or not folder.suffix:
                dest = _download_target(src, folder)
            else:  # a file path that does not exist yet: download to it
                dest = folder

    downloaded = False
    if path is None:
        assert dest is not None and src.filename is not None
        if src.url is None:
            raise DataError(f"{dest}: not found, and the {src.name!r} source has no download; pass the file itself")
        if not download:
            looked = ", ".join(str(p) for p in searched)
            raise DataError(
                f"{src.filename} for {src.name!r} not found (looked in {looked}); put it at {dest}"
                f"{_where_from(src)}, or pass --download"
            )
        download_source(src, dest, verify=verify)
        path, downloaded = dest, True

    actual = sha256_file(path)
    expected = src.sha256
    if expected is not None and actual != expected and verify:
        raise DataError(
            f"{path}: sha256 {actual} does not match the expected {expected} ({src.version}); replace the file "
            f"with the canonical one{_where_from(src)}, or pass --no-verify (verify=False) to use this version "
            "knowingly"
        )
    return RawFile(path, actual, expected is not None and actual == expected, expected, downloaded)


def fetch(
    source_name: str | Source,
    raw: str | Path | None,
    resources: str | Path | None = None,
    download: bool = False,
    *,
    verify: bool = True,
) -> Path:
    """The path of the verified raw file of ``source_name`` (see :func:`resolve_raw`)."""
    return resolve_raw(source_name, raw, resources, download, verify=verify).path


def _where_from(src: Source) -> str:
    if src.url is None:
        return ""
    if src.archive_member:
        return f" ({src.archive_member} from {src.url})"
    return f" (from {src.url})"


def download_source(src: Source, dest: Path, *, url: str | None = None, verify: bool = True) -> Path:
    """Download ``src`` (from ``url`` or its URL) to ``dest`` atomically: into a temporary file in the same
    folder, checked (archive md5, then the raw file's sha256), extracted from the zip if it is one, then renamed
    over ``dest``. Nothing is left at ``dest`` on failure."""
    url = url or src.url
    if url is None:
        raise DataError(f"the {src.name!r} source has no download URL; pass the raw file itself")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    put = f"put {src.archive_member or src.filename} from {url} at {dest}"
    tmps: list[str] = []
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmps.append(tmp)
        md5, sha = hashlib.md5(), hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as resp:
                while block := resp.read(1 << 20):
                    f.write(block)
                    md5.update(block)
                    sha.update(block)
        except urllib.error.HTTPError as e:
            raise DataError(f"could not download {url}: HTTP {e.code} {e.reason}; {put} by hand") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            raise DataError(f"could not download {url} ({reason}; offline?); {put} by hand") from None
        if src.archive_member is not None:
            if src.archive_md5 is not None and md5.hexdigest() != src.archive_md5 and verify:
                raise DataError(
                    f"{url}: the archive's md5 {md5.hexdigest()} does not match the expected {src.archive_md5}; "
                    f"the server has another version; {put} by hand, or pass --no-verify to accept it"
                )
            fd2, tmp2 = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            tmps.append(tmp2)
            sha = hashlib.sha256()
            try:
                with os.fdopen(fd2, "wb") as f, zipfile.ZipFile(tmp) as z, z.open(src.archive_member) as m:
                    while block := m.read(1 << 20):
                        f.write(block)
                        sha.update(block)
            except KeyError:
                raise DataError(f"{url}: the archive has no member {src.archive_member!r}; {put} by hand") from None
            except zipfile.BadZipFile as e:
                raise DataError(f"{url}: not a valid zip archive ({e}); {put} by hand") from None
            final = tmp2
        else:
            final = tmp
        if src.sha256 is not None and sha.hexdigest() != src.sha256 and verify:
            raise DataError(
                f"{url}: the downloaded {src.filename} has sha256 {sha.hexdigest()}, expected {src.sha256}; "
                f"{put} by hand, or pass --no-verify to accept this version"
            )
        os.replace(final, dest)
        tmps.remove(final)
    finally:
        for t in tmps:
            Path(t).unlink(missing_ok=True)
    return dest
