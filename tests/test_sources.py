"""The registry, raw formats, checksums, local look-up and downloads (tplib.data.sources and the modules it
gathers). Tiny files in the exact raw formats."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tplib.data import catalog
from tplib.data.registry import REGISTRY, REGISTRY_FILE, load_registry
from tplib.data.sources import (
    SOURCES,
    download_target,
    fetch,
    find_raw,
    get_source,
    raw_candidates,
    read_amazon_csv,
    read_game,
    read_generic,
    read_ml1m,
    read_movietweetings,
    read_music,
    resolve_raw,
    sample_path,
    sha256_file,
    where_from,
)
from tplib.io import DataError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------- readers


def test_read_ml1m(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300000\n")
    df = read_ml1m(f)
    assert list(df.columns) == ["user", "item", "time", "lineno"]
    assert df["user"].tolist() == ["1", "1", "2"]
    assert df["item"].tolist() == ["1193", "661", "1193"]
    assert df["time"].dtype == np.int64 and df["time"].tolist() == [978300760, 978302109, 978300000]
    assert df["lineno"].tolist() == [1, 2, 3]


def test_read_movietweetings_keeps_zero_padded_ids(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::0054890::9::1381945744\n2::1408101::10::1382400295\n")
    df = read_movietweetings(f)
    assert df["item"].tolist() == ["0054890", "1408101"]
    assert df["time"].tolist() == [1381945744, 1382400295]


def test_read_music_txt(tmp_path):
    f = write(tmp_path / "Music.txt", "1 1421 1150243200\n1 3472 1157587200\n2 1 1158019200\n")
    df = read_music(f)
    assert df["user"].tolist() == ["1", "1", "2"]
    assert df["item"].tolist() == ["1421", "3472", "1"]
    assert df["time"].tolist() == [1150243200, 1157587200, 1158019200]


def test_read_video_txt_has_no_time(tmp_path):
    f = write(tmp_path / "Video.txt", "1 6393\n1 13504\n2 14087\n")
    df = read_game(f)
    assert "time" not in df.columns
    assert df["item"].tolist() == ["6393", "13504", "14087"]
    assert df["lineno"].tolist() == [1, 2, 3]


def test_read_amazon_csv(tmp_path):
    f = write(tmp_path / "r.csv", "A2EFCYXHNK06IS,5555991584,5.0,978480000\nAQZH7YTWQPOBE,5555991584,1.0,953424000\n")
    df = read_amazon_csv(f)
    assert df["user"].tolist() == ["A2EFCYXHNK06IS", "AQZH7YTWQPOBE"]
    assert df["item"].tolist() == ["5555991584", "5555991584"]
    assert df["time"].tolist() == [978480000, 953424000]


def test_read_generic_with_and_without_time(tmp_path):
    f = write(tmp_path / "x.tsv", "uid\tiid\tscore\tts\nu1\ti1\t3\t10\nu2\ti2\t4\t5\n")
    df = read_generic(f, sep="\t", user_col="uid", item_col="iid", time_col="ts")
    assert df["user"].tolist() == ["u1", "u2"] and df["time"].tolist() == [10, 5]
    assert df["lineno"].tolist() == [2, 3]  # line 1 is the header
    df = read_generic(f, sep="\t", user_col="uid", item_col="iid")
    assert "time" not in df.columns and df["item"].tolist() == ["i1", "i2"]


def test_read_generic_multichar_sep(tmp_path):
    f = write(tmp_path / "x.dat", "u::i::t\n1::a::3\n")
    df = read_generic(f, sep="::", user_col="u", item_col="i", time_col="t")
    assert df["item"].tolist() == ["a"] and df["time"].tolist() == [3]


def test_read_generic_errors(tmp_path):
    f = write(tmp_path / "x.csv", "user,item,time\nu1,i1,10\nu2,i2,soon\n")
    with pytest.raises(DataError, match=r"x\.csv:3: .*'soon'.*not an integer"):
        read_generic(f, time_col="time")
    with pytest.raises(DataError, match=r"no user column 'uid'.*'user', 'item', 'time'"):
        read_generic(f, user_col="uid")
    g = write(tmp_path / "y.csv", "user,item\nu1,\n")
    with pytest.raises(DataError, match=r"y\.csv:2: the item column 'item' is empty"):
        read_generic(g)


def test_last_line_without_newline_is_accepted_when_well_formed(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::2::3::4\n5::6::7::8")
    assert read_ml1m(f)["time"].tolist() == [4, 8]


# ----------------------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.dat: not found; re-download it from https://files.grouplens"):
        read_ml1m(tmp_path / "nope.dat")


def test_empty_file(tmp_path):
    f = write(tmp_path / "ratings.dat", "")
    with pytest.raises(DataError, match=r"ratings\.dat: empty file"):
        read_ml1m(f)


@pytest.mark.parametrize(
    "text, lineno, problem",
    [
        ("1::2::3::4\n1::2::3::4\n1::2::3\n1::2::3::4\n", 3, "expected 4 fields separated by '::', got 3"),
        ("1::2::3::4\n1::2::3::4::5\n", 2, "expected 4 fields separated by '::', got 5"),
        ("1::2::3::4\n1::2::3::x17\n", 2, "Timestamp 'x17' is not an integer"),
        ("1::2::3::4\n1::2::3::1.5\n", 2, "Timestamp '1.5' is not an integer"),
        ("1::2::3::4\n\n1::2::3::4\n", 2, "empty line"),
        ("1::2::3::4\n::2::3::4\n", 2, "field 1 (UserID) is empty"),
        ("1::2::3::4\n1:2::3::4\n", 2, "expected 4 fields separated by '::', got 3"),
    ],
)
def test_malformed_line_is_named(tmp_path, text, lineno, problem):
    f = write(tmp_path / "ratings.dat", text)
    with pytest.raises(DataError) as e:
        read_ml1m(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:{lineno}: {problem}")
    assert "MovieLens ratings.dat" in msg and "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("tail", ["1::2::3::", "1::2", "1::2::3::97830a"])
def test_truncated_last_line(tmp_path, tail):
    f = write(tmp_path / "ratings.dat", "1::2::3::4\n" + tail)
    with pytest.raises(DataError, match=r"ratings\.dat:2: .*no newline: the file looks truncated"):
        read_ml1m(f)


def test_not_utf8(tmp_path):
    f = write(tmp_path / "ratings.dat", b"1::2::3::4\n\xff\xfe::2::3::4\n")
    with pytest.raises(DataError, match=r"ratings\.dat:2: not UTF-8"):
        read_ml1m(f)


def test_space_formats_reject_other_separators(tmp_path):
    f = write(tmp_path / "Music.txt", "1 2 3\n1  2 3\n")
    with pytest.raises(DataError, match=r"Music\.txt:2: expected 3 fields separated by ' ', got 4"):
        read_music(f)
    g = write(tmp_path / "Video.txt", "1 2\n1 2 1150243200\n")
    with pytest.raises(DataError, match=r"Video\.txt:2: expected 2 fields separated by ' ', got 3.*SASRec"):
        read_game(g)
    h = write(tmp_path / "Video2.txt", "1\t2\n")
    with pytest.raises(DataError, match=r"Video2\.txt:1: expected 2 fields"):
        read_game(h)


def test_unknown_dataset():
    with pytest.raises(DataError, match=r"unknown dataset 'ml-10m'; known: .*game.*ml1m.*movietweetings.*music"):
        get_source("ml-10m")


# ----------------------------------------------------------------------------------------------- registry


def test_registry():
    assert {"ml1m", "movietweetings", "music", "game", "amazon-csv", "generic", "mt-sample"} <= set(SOURCES)
    for name, src in SOURCES.items():
        assert src.name == name and src.version and src.license
        assert src.sha256 is None or len(src.sha256) == 64
    assert (SOURCES["ml1m"].item_min, SOURCES["ml1m"].user_min) == (5, 10)
    assert (SOURCES["movietweetings"].item_min, SOURCES["movietweetings"].user_min) == (5, 10)
    assert (SOURCES["music"].item_min, SOURCES["music"].user_min) == (0, 10)
    assert (SOURCES["game"].item_min, SOURCES["game"].user_min) == (0, 10)
    assert SOURCES["ml1m"].archive_member == "ml-1m/ratings.dat"
    assert SOURCES["ml1m"].archive_md5 == "c4d9eecfca2ab87c1945afe126590906"
    assert "8917fd3bf8b8e3c7ca3ae11cd1d1a8b946630e84" in (SOURCES["movietweetings"].url or "")
    assert not SOURCES["game"].has_time


def test_registry_file_is_package_data():
    assert REGISTRY.path == REGISTRY_FILE and REGISTRY_FILE.parent == Path(sample_path()).parents[2]
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tplib"]
    rel = REGISTRY_FILE.relative_to(root / "tplib").as_posix()
    assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not in pyproject.toml's package-data"


def test_every_reader_has_its_format():
    names = {src.reader.__name__ for src in SOURCES.values()}
    assert names == {f"read_{n.replace('-', '_')}" for n in REGISTRY.sources}
    assert set(REGISTRY.formats) == {e.reader for e in REGISTRY.sources.values()} - {"generic"}


def registry_text(old: str, new: str) -> str:
    """The shipped registry's text with the first ``old`` replaced by ``new``."""
    text = REGISTRY_FILE.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "old, new, problem",
    [
        (
            "    has_time: false\n",
            "    has_time: false\n    hash: x\n",
            r"sources\.game\.hash: unknown key; known: .*sha256",
        ),
        ("    has_time: false\n", "", r"sources\.game\.has_time: missing key"),
        ("    user_min: 10\n", "    user_min: ten\n", r"sources\.ml1m\.user_min: 'ten' is not of type int"),
        ("    has_time: false\n", "    has_time: 0\n", r"sources\.game\.has_time: 0 is not of type bool"),
        ("    time: 3\n", "    time: 7\n", r"formats\.ml1m\.time: 7 is not a field position"),
        (
            "    fields: [user, item]\n",
            "    fields: user item\n",
            r"formats\.game\.fields: 'user item' is not of type list of str",
        ),
        ("    packaged: null\n\n  music:", "    packaged: null\n    packaged: null\n\n  music:", "given twice"),
        ("formats:\n", "format:\n", r": format: unknown key; known: formats, sources"),
        ("  music:\n    sep:", "  music:\n  - sep:", r"formats\.music: expected a mapping"),
    ],
)
def test_bad_registry_names_file_and_key(tmp_path, old, new, problem):
    f = write(tmp_path / "registry.yaml", registry_text(old, new))
    with pytest.raises(DataError, match=problem) as e:
        load_registry(f)
    assert str(e.value).startswith(str(f)) and "\n" not in str(e.value)


def test_unknown_reader_names_file_and_key():
    entry = dataclasses.replace(REGISTRY.sources["ml1m"], reader="ml-1m")
    with pytest.raises(DataError, match=r"registry\.yaml: sources\.ml1m\.reader: unknown reader 'ml-1m'; known: "):
        catalog._source(entry, REGISTRY)
    with pytest.raises(DataError, match=r"registry\.yaml: formats: no format 'ml-1m'"):
        REGISTRY.format("ml-1m")


def test_shipped_registry_loads_again():
    again = load_registry()
    assert again.sources == REGISTRY.sources and again.formats == REGISTRY.formats


def test_sample_is_packaged_and_verifies():
    p = sample_path()
    assert p.is_file() and p.stat().st_size < 1_000_000
    raw = resolve_raw("mt-sample")
    assert raw.path == p and raw.verified and raw.sha256 == SOURCES["mt-sample"].sha256


# ----------------------------------------------------------------------------------------------- checksums and look-up

MUSIC = b"1 1421 1150243200\n1 3472 1157587200\n"


def test_checksum_good(tmp_path):
    f = write(tmp_path / "Music.txt", MUSIC)
    src = dataclasses.replace(SOURCES["music"], sha256=sha(MUSIC))
    raw = resolve_raw(src, f)
    assert raw.verified and raw.sha256 == sha(MUSIC) and raw.path == f


def test_checksum_bad(tmp_path):
    f = write(tmp_path / "Music.txt", MUSIC)
    expected = SOURCES["music"].sha256
    with pytest.raises(DataError) as e:
        fetch("music", f)
    msg = str(e.value)
    assert str(f) in msg and sha(MUSIC) in msg and str(expected) in msg
    assert "--no-verify" in msg and "replace the file" in msg
    raw = resolve_raw("music", f, verify=False)  # the escape hatch: accepted, but marked unverified
    assert not raw.verified and raw.sha256 == sha(MUSIC) and raw.expected_sha256 == expected


def test_no_reference_checksum_is_unverified(tmp_path):
    f = write(tmp_path / "r.csv", "a,b,1,2\n")
    raw = resolve_raw("amazon-csv", f)
    assert not raw.verified and raw.expected_sha256 is None


@pytest.mark.parametrize(
    "name, rel",
    [
        ("ml1m", "ml-1m/ratings.dat"),
        ("ml1m", "ratings.dat"),
        ("movietweetings", "movietweetings/latest_2013-11-06/ratings.dat"),
        ("music", "amazon-proxies/digital-music-melt/Music.txt"),
        ("game", "amazon-proxies/video-games-sasrec/Video.txt"),
    ],
)
def test_local_copy_lookup(tmp_path, name, rel):
    f = write(tmp_path / rel, "x")
    raw = resolve_raw(name, tmp_path, verify=False)
    assert raw.path == f
    assert resolve_raw(name, None, resources=tmp_path, verify=False).path == f


def test_lookup_helpers_of_the_workflow(tmp_path):
    assert raw_candidates("music", tmp_path) == [
        tmp_path / "Music.txt",
        tmp_path / "amazon-proxies/digital-music-melt/Music.txt",
        tmp_path / "digital-music-melt/Music.txt",
        tmp_path / "music/Music.txt",
    ]
    assert find_raw("music", tmp_path) is None
    f = write(tmp_path / "digital-music-melt/Music.txt", MUSIC)
    assert find_raw("music", tmp_path) == f
    assert raw_candidates("music", f) == [f] and find_raw("ml1m", f) == f  # a file is used as it is
    assert raw_candidates("generic", tmp_path) == [] and find_raw("generic", tmp_path) is None
    assert download_target("ml1m", "resources/raw") == Path("resources/raw/ml-1m/ratings.dat")
    assert download_target("music", tmp_path) == tmp_path / "amazon-proxies/digital-music-melt/Music.txt"
    with pytest.raises(DataError, match=r"'generic' source has no file name"):
        download_target("generic", tmp_path)
    assert where_from("ml1m") == " (ml-1m/ratings.dat from https://files.grouplens.org/datasets/movielens/ml-1m.zip)"
    assert where_from("music") == f" (from {SOURCES['music'].url})" and where_from("generic") == ""


def test_local_copy_missing(tmp_path):
    with pytest.raises(DataError) as e:
        fetch("music", tmp_path)
    msg = str(e.value)
    assert "Music.txt for 'music' not found" in msg and "--download" in msg
    assert str(tmp_path / "amazon-proxies/digital-music-melt/Music.txt") in msg
    assert "rlqja1107/MELT" in msg
    with pytest.raises(DataError, match=r"nothing-here: not found"):
        fetch("music", tmp_path / "nothing-here")
    with pytest.raises(DataError, match=r"is a folder; the 'generic' source needs the raw file itself"):
        fetch("generic", tmp_path)


# ----------------------------------------------------------------------------------------------- downloads


def no_temp_files(folder: Path) -> bool:
    """No temporary file of a download is left (they are hidden files beside the target)."""
    return not [p for p in folder.rglob(".*") if p.is_file()]


def test_offline_download(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as e:
        fetch("music", tmp_path, download=True)
    msg = str(e.value)
    dest = tmp_path / "amazon-proxies/digital-music-melt/Music.txt"
    assert SOURCES["music"].url in msg and str(dest) in msg and "offline" in msg
    assert not dest.exists() and no_temp_files(tmp_path)
    with pytest.raises(DataError, match=r"ml-1m/ratings\.dat from https://files\.grouplens\.org.* at .*ml-1m"):
        fetch("ml1m", None, resources=tmp_path / "res", download=True)


def test_http_error(tmp_path, monkeypatch):
    def not_found(url, *args, **kwargs):
        raise urllib.error.HTTPError(url, 404, "Not Found", None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(DataError, match=r"HTTP 404 Not Found"):
        fetch("game", tmp_path, download=True)
    assert no_temp_files(tmp_path)


def test_download_file_url(tmp_path):
    origin = write(tmp_path / "origin" / "Music.txt", MUSIC)
    src = dataclasses.replace(SOURCES["music"], url=origin.as_uri(), sha256=sha(MUSIC))
    raw = resolve_raw(src, tmp_path / "data", download=True)
    dest = tmp_path / "data/amazon-proxies/digital-music-melt/Music.txt"
    assert raw.path == dest and raw.downloaded and raw.verified
    assert dest.read_bytes() == MUSIC and no_temp_files(tmp_path)
    again = resolve_raw(src, tmp_path / "data", download=True)  # found locally now: not downloaded again
    assert again.path == dest and not again.downloaded
    # into a resources folder, and to an explicit file path
    assert resolve_raw(src, None, resources=tmp_path / "res", download=True).path == (
        tmp_path / "res/amazon-proxies/digital-music-melt/Music.txt"
    )
    assert resolve_raw(src, tmp_path / "x" / "M.txt", download=True).path == tmp_path / "x" / "M.txt"


def test_download_bad_checksum_leaves_nothing(tmp_path):
    origin = write(tmp_path / "origin" / "Music.txt", MUSIC)
    src = dataclasses.replace(SOURCES["music"], url=origin.as_uri())
    with pytest.raises(DataError, match=r"has sha256 [0-9a-f]{64}, expected ff4e7c17"):
        resolve_raw(src, tmp_path / "data", download=True)
    assert not (tmp_path / "data/amazon-proxies/digital-music-melt/Music.txt").exists()
    assert no_temp_files(tmp_path)
    raw = resolve_raw(src, tmp_path / "data", download=True, verify=False)
    assert raw.downloaded and not raw.verified


def make_zip(path: Path, member: str, data: bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
    return path.read_bytes()


def test_download_zip(tmp_path):
    ratings = b"1::1193::5::978300760\n"
    zbytes = make_zip(tmp_path / "origin" / "ml-1m.zip", "ml-1m/ratings.dat", ratings)
    src = dataclasses.replace(
        SOURCES["ml1m"],
        url=(tmp_path / "origin" / "ml-1m.zip").as_uri(),
        archive_md5=hashlib.md5(zbytes).hexdigest(),
        sha256=sha(ratings),
    )
    raw = resolve_raw(src, tmp_path / "data", download=True)
    assert raw.path == tmp_path / "data/ml-1m/ratings.dat" and raw.verified
    assert raw.path.read_bytes() == ratings and no_temp_files(tmp_path)
    assert read_ml1m(raw.path)["item"].tolist() == ["1193"]


def test_download_zip_errors(tmp_path):
    ratings = b"1::1193::5::978300760\n"
    zbytes = make_zip(tmp_path / "origin" / "ml-1m.zip", "other/ratings.dat", ratings)
    url = (tmp_path / "origin" / "ml-1m.zip").as_uri()
    src = dataclasses.replace(SOURCES["ml1m"], url=url, archive_md5=hashlib.md5(zbytes).hexdigest())
    with pytest.raises(DataError, match=r"no member 'ml-1m/ratings\.dat'"):
        resolve_raw(src, tmp_path / "data", download=True)
    with pytest.raises(DataError, match=r"archive's md5 [0-9a-f]{32} does not match the expected c4d9eecf"):
        resolve_raw(dataclasses.replace(SOURCES["ml1m"], url=url), tmp_path / "data", download=True)
    assert not (tmp_path / "data/ml-1m/ratings.dat").exists() and no_temp_files(tmp_path)


def test_sha256_file(tmp_path):
    f = write(tmp_path / "a", b"abc")
    assert sha256_file(f) == sha(b"abc")


def test_crlf_line_endings(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::2::3::4\r\n5::6::7::8\r\n")
    assert read_ml1m(f)["time"].tolist() == [4, 8]
    g = write(tmp_path / "Video.txt", "1 2\r\n1 3\r\n")
    assert read_game(g)["item"].tolist() == ["2", "3"]
