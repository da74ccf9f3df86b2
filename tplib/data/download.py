"""Downloading a source's raw file, checked against its checksums, and the sha256 of a file.

A download is streamed (the raw files are tens of MB): never held in memory whole, hashed while it is written.
The raw file is written with :func:`tplib.io.atomic_write_bytes`, and the checksum is checked inside its write
callback, so a failed or interrupted download, or one with the wrong checksum, leaves nothing at the target.
"""

from __future__ import annotations

import hashlib
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from tplib.io import DataError, atomic_write_bytes

if TYPE_CHECKING:
    from tplib.data.catalog import Source

__all__ = ["download_source", "sha256_file"]

_BLOCK = 1 << 20


def sha256_file(path: str | Path, chunk: int = _BLOCK) -> str:
    """The sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stream_url(url: str, out: BinaryIO, put: str) -> tuple[str, str]:
    """Copy ``url`` into ``out`` block by block; its md5 and sha256. A DataError saying what to do on failure."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            while block := resp.read(_BLOCK):
                out.write(block)
                md5.update(block)
                sha.update(block)
    except urllib.error.HTTPError as e:
        raise DataError(f"could not download {url}: HTTP {e.code} {e.reason}; {put} by hand") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"could not download {url} ({reason}; offline?); {put} by hand") from None
    return md5.hexdigest(), sha.hexdigest()


def _check_sha256(src: Source, url: str, actual: str, put: str, verify: bool) -> None:
    if src.sha256 is not None and actual != src.sha256 and verify:
        raise DataError(
            f"{url}: the downloaded {src.filename} has sha256 {actual}, expected {src.sha256}; "
            f"{put} by hand, or pass --no-verify to accept this version"
        )


def _extract_member(src: Source, url: str, archive: BinaryIO, out: BinaryIO, put: str, verify: bool) -> None:
    """Copy the source's member of the zip ``archive`` into ``out``, then check its sha256."""
    assert src.archive_member is not None
    sha = hashlib.sha256()
    try:
        with zipfile.ZipFile(archive) as z, z.open(src.archive_member) as m:
            while block := m.read(_BLOCK):
                out.write(block)
                sha.update(block)
    except KeyError:
        raise DataError(f"{url}: the archive has no member {src.archive_member!r}; {put} by hand") from None
    except zipfile.BadZipFile as e:
        raise DataError(f"{url}: not a valid zip archive ({e}); {put} by hand") from None
    _check_sha256(src, url, sha.hexdigest(), put, verify)


def download_source(src: Source, dest: Path, *, url: str | None = None, verify: bool = True) -> Path:
    """Download ``src`` (from ``url`` or its URL) to ``dest`` atomically and checked (the archive's md5, then the
    raw file's sha256; ``verify=False`` accepts other checksums). A zip is first streamed into an anonymous
    temporary file in ``dest``'s folder, then its member is extracted. Nothing is left at ``dest`` on failure."""
    url = url or src.url
    if url is None:
        raise DataError(f"the {src.name!r} source has no download URL; pass the raw file itself")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    put = f"put {src.archive_member or src.filename} from {url} at {dest}"

    if src.archive_member is None:

        def write_raw(f: BinaryIO) -> None:
            _, sha = _stream_url(url, f, put)
            _check_sha256(src, url, sha, put, verify)

        atomic_write_bytes(dest, write_raw)
        return dest

    with tempfile.TemporaryFile(dir=dest.parent) as archive:
        md5, _ = _stream_url(url, archive, put)
        if src.archive_md5 is not None and md5 != src.archive_md5 and verify:
            raise DataError(
                f"{url}: the archive's md5 {md5} does not match the expected {src.archive_md5}; "
                f"the server has another version; {put} by hand, or pass --no-verify to accept it"
            )
        archive.seek(0)
        atomic_write_bytes(dest, lambda f: _extract_member(src, url, archive, f, put, verify))
    return dest
