"""From raw records to a :class:`~tplib.data.dataset.SeqDataset` (docs/method.md).

1. Every rating or review, whatever its value, is one implicit interaction (duplicates are kept and counted).
2. Each user's interactions are ordered by a **stable** sort on the timestamp: ties keep file order. A format
   without times (SASRec's ``Video.txt``) keeps file order.
3. The filter: drop items with fewer than ``item_min`` records, then users with fewer than ``user_min`` — one
   pass, in that order (``kcore=True`` repeats both until nothing changes). Music and Game carry the item cut
   already, so their sources set ``item_min=0``.
4. Re-indexing: users are 0..U-1 and items 1..I (0 is padding), both **in order of their raw ids**, compared as
   integers when every id of that kind is a decimal number (ties between e.g. ``"07"`` and ``"7"`` broken by the
   string), as strings otherwise. So the indices do not depend on the file's row order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import tplib
from tplib.data.dataset import SeqDataset
from tplib.data.sources import Source, get_source, resolve_raw
from tplib.io import DataError, atomic_write_text

__all__ = ["build_dataset", "filter_mask", "index_by_raw_id", "make_movietweetings_slice", "prepare"]

ORDER_RULE = "stable sort by timestamp per user, ties kept in file order (no times: file order)"
INDEX_RULE = (
    "users 0..U-1 and items 1..I in order of raw id (numerically when all ids are decimal numbers, else as strings)"
)


def _numeric_key(s: str) -> tuple[int, str]:
    return int(s), s


def _string_key(s: str) -> str:
    return s


def index_by_raw_id(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..K-1 of ``values`` in order of the raw id (numeric when every id is a decimal number), and the K
    sorted raw ids."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    uniq = np.asarray(uniques, dtype=object)
    numeric = all(isinstance(s, str) and s.isascii() and s.isdigit() for s in uniq)
    key: Callable[[str], Any] = _numeric_key if numeric else _string_key
    order = np.array(sorted(range(len(uniq)), key=lambda k: key(uniq[k])), dtype=np.int64)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq), dtype=np.int64)
    return rank[codes], uniq[order].astype(str) if len(uniq) else np.zeros(0, dtype=str)


def filter_mask(users: np.ndarray, items: np.ndarray, item_min: int, user_min: int, kcore: bool = False) -> np.ndarray:
    """Rows kept by the filter: items with >= ``item_min`` records, then users with >= ``user_min`` records
    among the rows left (one pass; ``kcore=True``: repeated to a fixed point). ``users``/``items`` are codes."""
    keep = np.ones(len(users), dtype=bool)
    n_u = int(users.max()) + 1 if len(users) else 0
    n_i = int(items.max()) + 1 if len(items) else 0
    while True:
        before = int(keep.sum())
        item_count = np.bincount(items[keep], minlength=n_i)
        keep &= item_count[items] >= item_min
        user_count = np.bincount(users[keep], minlength=n_u)
        keep &= user_count[users] >= user_min
        if not kcore or int(keep.sum()) == before:
            return keep


def _chrono_order(users: np.ndarray, times: np.ndarray | None) -> np.ndarray:
    """Row order grouping by user, each user's rows by time with ties in file order (file order if no times)."""
    pos = np.arange(len(users), dtype=np.int64)
    if times is None:
        return np.lexsort((pos, users))
    return np.lexsort((pos, times, users))


def _count_ties(users: np.ndarray, times: np.ndarray | None) -> int:
    """Rows (in chronological order) whose timestamp equals the previous row's of the same user."""
    if times is None or len(users) < 2:
        return 0
    return int(np.sum((users[1:] == users[:-1]) & (times[1:] == times[:-1])))


def build_dataset(
    records: pd.DataFrame,
    name: str,
    item_min: int,
    user_min: int,
    kcore: bool = False,
    *,
    what: str = "",
) -> tuple[SeqDataset, dict[str, Any]]:
    """The dataset built from reader records (columns ``user``, ``item``, optional ``time``) and its statistics
    before/after filtering. ``what`` names the input in messages. DataError if no interaction is left."""
    u_all, _ = index_by_raw_id(records["user"].to_numpy())
    i_all, _ = index_by_raw_id(records["item"].to_numpy())
    t_all = records["time"].to_numpy(dtype=np.int64) if "time" in records.columns else None
    raw_order = _chrono_order(u_all, t_all)
    raw_ties = _count_ties(u_all[raw_order], None if t_all is None else t_all[raw_order])

    keep = filter_mask(u_all, i_all, item_min, user_min, kcore)
    if not keep.any():
        rule = "iterated to a fixed point" if kcore else "one pass"
        raise DataError(
            f"{what or name}: nothing left after filtering (items >= {item_min}, then users >= {user_min}, {rule}) "
            f"out of {len(records)} records; lower --item-min/--user-min or check the file"
        )
    rows = raw_order[keep[raw_order]]  # kept rows, chronological per user
    users_raw, items_raw = records["user"].to_numpy(dtype=object)[rows], records["item"].to_numpy(dtype=object)[rows]
    u_codes, user_ids = index_by_raw_id(users_raw)
    i_codes, item_ids = index_by_raw_id(items_raw)
    # rows are grouped by the old user rank, and the new user codes keep that order: offsets follow directly
    counts = np.bincount(u_codes, minlength=len(user_ids)).astype(np.int64)
    offsets = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    assert np.all(np.diff(u_codes) >= 0)
    ds = SeqDataset(
        name=name,
        n_items=len(item_ids),
        offsets=offsets,
        items=i_codes.astype(np.int64) + 1,
        user_ids=np.asarray(user_ids, dtype=str),
        item_ids=np.concatenate([np.array([""]), np.asarray(item_ids, dtype=str)]),
    )
    pair = np.sort(u_codes.astype(np.int64) * (len(item_ids) + 1) + i_codes)
    stats: dict[str, Any] = {
        "raw_users": int(u_all.max()) + 1 if len(u_all) else 0,
        "raw_items": int(i_all.max()) + 1 if len(i_all) else 0,
        "raw_interactions": int(len(records)),
        "raw_time_ties": raw_ties,
        "time_ties": _count_ties(u_codes, None if t_all is None else t_all[rows]),
        "has_time": t_all is not None,
        "duplicate_pairs": int(np.sum(pair[1:] == pair[:-1])),  # repeated (user, item) rows, all kept
        "item_min": int(item_min),
        "user_min": int(user_min),
        "kcore": bool(kcore),
        "order_rule": ORDER_RULE,
        "index_rule": INDEX_RULE,
    }
    return ds, stats


_GENERIC_OPTIONS = ("sep", "user_col", "item_col", "time_col")


def prepare(
    source_name: str | Source,
    raw_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    *,
    resources: str | Path | None = None,
    verify: bool = True,
    download: bool = False,
    item_min: int | None = None,
    user_min: int | None = None,
    kcore: bool = False,
    name: str | None = None,
    sep: str | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
) -> SeqDataset:
    """Read the raw file of ``source_name``, order, filter and re-index it, and save it to ``out_dir`` (when
    given) with its Table 2 statistics and provenance in ``stats.json``.

    ``raw_path``/``resources``/``download``/``verify``: where the raw file is (see
    :func:`tplib.data.sources.resolve_raw`). ``item_min``/``user_min`` override the source's filter (the
    paper's: items >= 5, then users >= 10; Music and Game: users >= 10 only). ``kcore``: repeat the filter to a
    fixed point. ``name``: the dataset's name (default: the source's). ``sep``/``user_col``/``item_col``/
    ``time_col``: options of the ``generic`` source only (``time_col=None``: file order is time order).

    On failure nothing that looks complete is written: an old ``stats.json`` in ``out_dir`` is removed before
    the new files are written, and ``stats.json`` is written last."""
    src = get_source(source_name)
    options = {k: v for k, v in zip(_GENERIC_OPTIONS, (sep, user_col, item_col, time_col)) if v is not None}
    if options and src.name != "generic":
        raise DataError(f"--{'/--'.join(k.replace('_', '-') for k in options)}: only for the 'generic' source")
    for label, value in (("item_min", item_min), ("user_min", user_min)):
        if value is not None and value < 0:
            raise DataError(f"{label} must be >= 0, got {value}")
    raw = resolve_raw(src, raw_path, resources, download, verify=verify)
    records = src.reader(raw.path, **options)
    imin = src.item_min if item_min is None else int(item_min)
    umin = src.user_min if user_min is None else int(user_min)
    ds, stats = build_dataset(records, name or src.name, imin, umin, kcore, what=f"{raw.path} ({src.name})")
    extra: dict[str, Any] = {
        "source": src.name,
        "version": src.version,
        "license": src.license,
        "url": src.url,
        "raw_path": str(raw.path),
        "raw_sha256": raw.sha256,
        "expected_sha256": raw.expected_sha256,
        "verified": raw.verified,
        "verification_skipped": not verify,
        "downloaded": raw.downloaded,
        "filter": (
            f"items >= {imin}, then users >= {umin}"
            + (", iterated to a fixed point (k-core)" if kcore else ", one pass")
        ),
        "reader_options": options,
        "tplib_version": tplib.__version__,
        **stats,
    }
    if out_dir is not None:
        out = Path(out_dir)
        (out / "stats.json").unlink(missing_ok=True)  # an old stats.json must not vouch for new, partial files
        ds.save(out, extra_stats=extra)
    return ds


def make_movietweetings_slice(
    src: str | Path, dst: str | Path, *, modulus: int = 6, min_ratings: int = 10
) -> dict[str, Any]:
    """Write the packaged MovieTweetings slice: every line of ``src`` (a MovieTweetings ``ratings.dat``) whose
    user has >= ``min_ratings`` lines in ``src`` and a numeric id divisible by ``modulus``, byte-identical and in
    the original order. Returns the slice's line count, user count, size and sha256."""
    data = Path(src).read_bytes()
    if not data.endswith(b"\n"):
        raise DataError(f"{src}: the last line has no newline: the file looks truncated")
    lines = data.split(b"\n")[:-1]
    users = [line.split(b"::", 1)[0] for line in lines]
    count: dict[bytes, int] = {}
    for u in users:
        count[u] = count.get(u, 0) + 1
    chosen = {u for u, c in count.items() if c >= min_ratings and int(u) % modulus == 0}
    out = b"".join(line + b"\n" for line, u in zip(lines, users) if u in chosen)
    # atomic_write_text writes text; the lines are ASCII/UTF-8, so decoding and re-encoding is lossless
    atomic_write_text(dst, out.decode("utf-8"))
    os.chmod(dst, 0o644)  # mkstemp creates 0600 files; the slice is shipped data
    if Path(dst).read_bytes() != out:
        raise DataError(f"{dst}: the slice was not written byte-identically (newline translation?)")
    return {
        "lines": out.count(b"\n"),
        "users": len(chosen),
        "bytes": len(out),
        "sha256": hashlib.sha256(out).hexdigest(),
    }
