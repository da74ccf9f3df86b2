"""Raw data sources: the public interface of the dataset registry, the raw formats' readers, the local look-up
and downloads.

Each dataset of the paper has one :class:`Source` in :data:`SOURCES`. A source knows the raw file's name, where
to find it inside a folder such as ``../shared/data`` (:func:`resolve_raw`), where to download it from, its
sha256, how to read it and the paper's filter for it (``item_min``/``user_min``; see docs/method.md).

The parts live in their own modules; this one gathers them, so callers import from one place:

- ``registry.yaml``: the facts of every source and raw format, as data; ``registry.py`` loads and checks it;
- ``readers.py``: the readers of the raw formats (every reader returns the records in file order);
- ``catalog.py``: :class:`Source`, :data:`SOURCES` and :func:`get_source`, built from the registry;
- ``lookup.py``: finding the raw file in a folder, or downloading it, and checking its sha256;
- ``download.py``: the checked, atomic download, and :func:`sha256_file`.

Every problem with the input raises :class:`~tplib.io.DataError` with a one-line message that names the file
(and line, or registry key) and says what to do.
"""

from __future__ import annotations

from tplib.data.catalog import SOURCES, Source, get_source, sample_path
from tplib.data.download import download_source, sha256_file
from tplib.data.lookup import (
    RawFile,
    download_target,
    fetch,
    find_raw,
    raw_candidates,
    resolve_raw,
    where_from,
)
from tplib.data.readers import (
    read_amazon_csv,
    read_game,
    read_generic,
    read_ml1m,
    read_movietweetings,
    read_mt_sample,
    read_music,
)

__all__ = [
    "SOURCES",
    "RawFile",
    "Source",
    "download_source",
    "download_target",
    "fetch",
    "find_raw",
    "get_source",
    "raw_candidates",
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
    "where_from",
]
