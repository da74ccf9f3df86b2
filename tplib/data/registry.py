"""The dataset registry: the facts about each raw data source, read from ``registry.yaml`` beside this module.

The registry is data, not code: each source's raw file name, the sub-folders where it is looked for, its URL
and checksums, its reader and filter, its version and terms of use, and the headerless formats the readers
parse. This module only loads that file into frozen dataclasses and checks it: every key is required (null
where it does not apply), an unknown key, a missing key or a value of the wrong type stops with one message
naming the file and the key, so a typo in the registry cannot silently change what ``tp prepare`` accepts.

The readers (``readers.py``) and the :class:`~tplib.data.catalog.Source` objects (``catalog.py``) are built on
top of :data:`REGISTRY`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

from tplib.io import DataError

__all__ = ["REGISTRY", "REGISTRY_FILE", "FileFormat", "Registry", "SourceEntry", "load_registry"]

#: The registry shipped with tplib (package data, see pyproject.toml).
REGISTRY_FILE = Path(str(importlib_resources.files("tplib.data").joinpath("registry.yaml")))


@dataclass(frozen=True)
class FileFormat:
    """A headerless delimited format, one record per line.

    ``sep`` separates the fields, ``fields`` names them (for messages); ``user``, ``item`` and ``time`` are
    0-based field positions, ``time`` None for a format without timestamps. ``what`` says what the file should
    be and ``fix`` what to do about a damaged one; both appear in error messages."""

    sep: str
    fields: tuple[str, ...]
    user: int
    item: int
    time: int | None
    what: str
    fix: str

    @property
    def n(self) -> int:
        """The number of fields of a line."""
        return len(self.fields)


@dataclass(frozen=True)
class SourceEntry:
    """One raw data source as the registry describes it (see :class:`tplib.data.catalog.Source`, which adds the
    reader function and the packaged file's path).

    ``filename`` is the raw file's name (None: the user names the file itself); ``reader`` the name of its reader
    in ``readers.READERS``; ``item_min``/``user_min`` the paper's filter; ``has_time`` whether the records carry
    timestamps; ``url`` where it is downloaded from (None: no download); ``sha256`` the raw file's checksum (None:
    it cannot be verified); ``archive_md5``/``archive_member`` the zip archive's md5 and the file inside it, for a
    download that is a zip; ``subdirs`` the folders under a raw folder where the file is looked for besides the
    folder itself (a download goes to the first); ``version`` and ``license`` are recorded in stats.json;
    ``packaged`` is the path, relative to ``tplib/data``, of a copy shipped with tplib (None: none)."""

    name: str
    filename: str | None
    reader: str
    item_min: int
    user_min: int
    has_time: bool
    url: str | None
    sha256: str | None
    archive_md5: str | None
    archive_member: str | None
    subdirs: tuple[str, ...]
    version: str
    license: str
    packaged: str | None


@dataclass(frozen=True)
class Registry:
    """The loaded registry: the formats and the sources, each by name, in file order."""

    path: Path
    formats: dict[str, FileFormat]
    sources: dict[str, SourceEntry]

    def format(self, name: str) -> FileFormat:
        """The format of that name; a DataError naming the registry file otherwise."""
        try:
            return self.formats[name]
        except KeyError:
            raise DataError(f"{self.path}: formats: no format {name!r}; known: {', '.join(self.formats)}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error, not a silent override."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a value read from YAML has the type ``hint`` (str, int, bool, X | None, tuple[X, ...])."""
    if hint is type(None):
        return value is None
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, list) and all(_conforms(v, typing.get_args(hint)[0]) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    """``str``, ``str or null``, ``list of str``: a type as the YAML file spells it, for messages."""
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    return str(hint.__name__)


def _mapping(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


_T = typing.TypeVar("_T")


def _build(cls: type[_T], raw: Any, path: Path, where: str, **given: Any) -> _T:
    """An instance of the dataclass ``cls`` from the mapping ``raw``, whose keys must be exactly the fields of
    ``cls`` not in ``given``, each of the field's type (a YAML list becomes a tuple)."""
    raw = _mapping(raw, path, where)
    hints = typing.get_type_hints(cls)
    wanted = [f.name for f in dataclasses.fields(cls) if f.name not in given]  # type: ignore[arg-type]
    unknown = [k for k in raw if k not in wanted]
    if unknown:
        raise DataError(f"{path}: {where}.{unknown[0]}: unknown key; known: {', '.join(wanted)}")
    missing = [k for k in wanted if k not in raw]
    if missing:
        raise DataError(f"{path}: {where}.{missing[0]}: missing key (use null where it does not apply)")
    values = dict(given)
    for key in wanted:
        if not _conforms(raw[key], hints[key]):
            raise DataError(f"{path}: {where}.{key}: {raw[key]!r} is not of type {_type_name(hints[key])}")
        values[key] = tuple(raw[key]) if isinstance(raw[key], list) else raw[key]
    return cls(**values)


def load_registry(path: str | Path = REGISTRY_FILE) -> Registry:
    """Read and check a registry file (default: the one shipped with tplib). Any problem raises a DataError
    naming the file and the key."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_UniqueKeyLoader)  # a SafeLoader that refuses repeated keys
    except OSError as e:
        raise DataError(
            f"{path}: cannot be read ({e.strerror}); the installation of tplib is incomplete: reinstall it"
        ) from None
    except yaml.YAMLError as e:
        msg = " ".join(str(e).split())
        raise DataError(f"{path}: not valid YAML ({msg})") from None
    data = _mapping(data, path, "the file")
    for key in data:
        if key not in ("formats", "sources"):
            raise DataError(f"{path}: {key}: unknown key; known: formats, sources")
    for key in ("formats", "sources"):
        if key not in data:
            raise DataError(f"{path}: {key}: missing key")
    formats = {
        str(name): _build(FileFormat, raw, path, f"formats.{name}")
        for name, raw in _mapping(data["formats"], path, "formats").items()
    }
    sources = {
        str(name): _build(SourceEntry, raw, path, f"sources.{name}", name=str(name))
        for name, raw in _mapping(data["sources"], path, "sources").items()
    }
    for name, fmt in formats.items():
        for role in ("user", "item", "time"):
            pos = getattr(fmt, role)
            if pos is not None and not 0 <= pos < fmt.n:
                raise DataError(f"{path}: formats.{name}.{role}: {pos} is not a field position (0..{fmt.n - 1})")
    return Registry(path, formats, sources)


#: The registry shipped with tplib, loaded once when tplib.data is first used.
REGISTRY = load_registry()
