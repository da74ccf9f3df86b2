"""Finding a source's raw file (or downloading it) and checking its sha256.

A raw folder such as ``../shared/data`` is searched for the source's file name in the folder itself and in the
source's known sub-folders (``subdirs`` in ``registry.yaml``), so one folder serves every dataset. The workflow
(``workflow/rules/common.smk``) uses :func:`raw_candidates`, :func:`find_raw`, :func:`download_target` and
:func:`where_from` to look where ``tp prepare`` looks, before any job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tplib.data.catalog import Source, get_source
from tplib.data.download import download_source, sha256_file
from tplib.io import DataError

__all__ = ["RawFile", "download_target", "fetch", "find_raw", "raw_candidates", "resolve_raw", "where_from"]


@dataclass(frozen=True)
class RawFile:
    """A resolved raw file: its path, sha256, and whether the sha256 matched the source's."""

    path: Path
    sha256: str
    verified: bool
    expected_sha256: str | None
    downloaded: bool = False


def raw_candidates(source: str | Source, folder: str | Path) -> list[Path]:
    """Where the raw file of ``source`` is looked for under ``folder``, in order: ``folder`` itself when it is a
    file; else the source's file name in ``folder`` and in each of its known sub-folders (none for a source
    without a file name)."""
    src, folder = get_source(source), Path(folder)
    if folder.is_file():
        return [folder]
    if src.filename is None:
        return []
    return [folder / src.filename] + [folder / sub / src.filename for sub in src.subdirs]


def find_raw(source: str | Source, folder: str | Path) -> Path | None:
    """The first of :func:`raw_candidates` that is a file, or None."""
    return next((p for p in raw_candidates(source, folder) if p.is_file()), None)


def download_target(source: str | Source, folder: str | Path) -> Path:
    """Where a download of ``source`` into ``folder`` goes: its first known sub-folder, else ``folder`` itself."""
    src = get_source(source)
    if src.filename is None:
        raise DataError(f"the {src.name!r} source has no file name; pass the raw file itself")
    folder = Path(folder)
    return folder / src.subdirs[0] / src.filename if src.subdirs else folder / src.filename


def where_from(source: str | Source) -> str:
    """`` (FILE from URL)`` for a source that can be downloaded, for messages; empty otherwise."""
    src = get_source(source)
    if src.url is None:
        return ""
    if src.archive_member:
        return f" ({src.archive_member} from {src.url})"
    return f" (from {src.url})"


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
            raise DataError(f"no raw data given for {src.name!r}; pass --raw FILE_OR_FOLDER{where_from(src)}")
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
            searched = raw_candidates(src, folder)
            path = find_raw(src, folder)
        elif not download:
            raise DataError(f"{folder}: not found; pass the raw file or a folder holding it{where_from(src)}")
        if path is None:
            if res_p is not None:
                dest = download_target(src, res_p)
            elif folder.is_dir() or not folder.suffix:
                dest = download_target(src, folder)
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
                f"{where_from(src)}, or pass --download"
            )
        download_source(src, dest, verify=verify)
        path, downloaded = dest, True

    actual = sha256_file(path)
    expected = src.sha256
    if expected is not None and actual != expected and verify:
        raise DataError(
            f"{path}: sha256 {actual} does not match the expected {expected} ({src.version}); replace the file "
            f"with the canonical one{where_from(src)}, or pass --no-verify (verify=False) to use this version "
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
