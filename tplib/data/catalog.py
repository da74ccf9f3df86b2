"""The sources as Python objects: each registry entry (``registry.yaml``) with its reader function and, for the
source shipped with tplib, the path of its packaged file.

:data:`SOURCES` is built once from :data:`tplib.data.registry.REGISTRY`; :func:`get_source` looks a name up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path

import pandas as pd

from tplib.data.readers import READERS
from tplib.data.registry import REGISTRY, Registry, SourceEntry
from tplib.io import DataError

__all__ = ["SOURCES", "Source", "get_source", "sample_path"]


@dataclass(frozen=True)
class Source:
    """One raw data source.

    ``filename`` is the raw file's name inside a folder (None: the user must name the file itself), ``subdirs``
    the folders under ``--raw`` (or the resources folder) where it is looked for, besides the folder itself; a
    download goes to ``subdirs[0]``. ``url`` is where it is downloaded from; for a zip, ``archive_md5`` checks
    the archive and ``archive_member`` names the file inside. ``sha256`` is the raw file's checksum (None: no
    reference, the file cannot be verified). ``reader(path, **options)`` returns the records (see
    ``readers.py``). ``item_min``/``user_min`` are the paper's filter for this source. ``default_path`` is used
    when no raw path is given (the packaged sample). The facts come from ``registry.yaml``."""

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


def _package_file(relpath: str) -> Path:
    """The path of a file shipped inside ``tplib/data``."""
    return Path(str(importlib_resources.files("tplib.data").joinpath(*relpath.split("/"))))


def sample_path() -> Path:
    """The packaged MovieTweetings slice (``tplib/data/sample/movietweetings-slice/ratings.dat``)."""
    packaged = REGISTRY.sources["mt-sample"].packaged
    assert packaged is not None
    return _package_file(packaged)


@dataclass(frozen=True)
class _PackagedFile:
    """A ``default_path`` for a source shipped with tplib: the path of its file inside ``tplib/data``."""

    relpath: str

    def __call__(self) -> Path:
        return _package_file(self.relpath)


def _source(entry: SourceEntry, registry: Registry) -> Source:
    if entry.reader not in READERS:
        raise DataError(
            f"{registry.path}: sources.{entry.name}.reader: unknown reader {entry.reader!r}; known: "
            f"{', '.join(READERS)}"
        )
    return Source(
        name=entry.name,
        filename=entry.filename,
        reader=READERS[entry.reader],
        item_min=entry.item_min,
        user_min=entry.user_min,
        has_time=entry.has_time,
        url=entry.url,
        sha256=entry.sha256,
        archive_md5=entry.archive_md5,
        archive_member=entry.archive_member,
        subdirs=entry.subdirs,
        version=entry.version,
        license=entry.license,
        default_path=_PackagedFile(entry.packaged) if entry.packaged is not None else None,
    )


SOURCES: dict[str, Source] = {name: _source(entry, REGISTRY) for name, entry in REGISTRY.sources.items()}


def get_source(source: str | Source) -> Source:
    """The :class:`Source` of a name (or the Source itself); DataError listing the known names otherwise."""
    if isinstance(source, Source):
        return source
    try:
        return SOURCES[source]
    except KeyError:
        raise DataError(f"unknown dataset {source!r}; known: {', '.join(sorted(SOURCES))}") from None
