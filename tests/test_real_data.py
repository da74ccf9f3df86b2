"""The real datasets give exactly the documented counts (README, Data; docs/method.md).

The four paper datasets are read from ``../shared/data`` (or ``$TP_SHARED_DATA``); those tests are skipped when it
is absent. The packaged MovieTweetings slice is always checked. (How long preparing takes: benchmarks/prepare_speed.py.)
"""

from __future__ import annotations

import json

import pytest

from tplib.data.dataset import make_split
from tplib.data.prepare import make_movietweetings_slice, prepare
from tplib.data.sources import SOURCES, resolve_raw, sample_path, sha256_file

# source: (users, items, interactions) after the paper's filter
EXPECTED = {
    "ml1m": (6040, 3416, 999_611),
    "music": (2831, 13_410, 63_054),
    "game": (7519, 19_977, 145_520),
    "movietweetings": (3361, 3453, 86_312),
}
RAW = {  # (users, items, lines) of the raw files
    "ml1m": (6040, 3706, 1_000_209),
    "music": (20_165, 20_356, 132_595),
    "game": (31_013, 23_715, 287_107),
    "movietweetings": (21_081, 12_611, 141_695),
}
SAMPLE = (450, 641, 9754)  # tplib/data/sample/movietweetings-slice/PROVENANCE.md


@pytest.mark.realdata
@pytest.mark.parametrize("name", list(EXPECTED))
def test_real_counts(shared_data, tmp_path, name):
    ds = prepare(name, shared_data, tmp_path)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == EXPECTED[name]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert (stats["users"], stats["items"], stats["interactions"]) == EXPECTED[name]
    assert (stats["raw_users"], stats["raw_items"], stats["raw_interactions"]) == RAW[name]
    assert stats["verified"] is True and stats["raw_sha256"] == SOURCES[name].sha256
    assert ds.lengths.min() >= 10 and ds.items.min() == 1 and ds.items.max() == ds.n_items


@pytest.mark.realdata
def test_music_ties_match_provenance(shared_data, tmp_path):
    """digital-music-melt/PROVENANCE.md: 36,045 tied lines in the file, 17,055 after the filter."""
    prepare("music", shared_data, tmp_path)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert (stats["raw_time_ties"], stats["time_ties"]) == (36_045, 17_055)


@pytest.mark.realdata
def test_game_keeps_file_order(shared_data):
    """Video.txt has no times: each user's sequence is the user's lines in file order."""
    raw = resolve_raw("game", shared_data)
    ds = prepare("game", raw.path, None)
    by_user: dict[str, list[str]] = {}
    with open(raw.path) as f:
        for line in f:
            u, i = line.split()
            by_user.setdefault(u, []).append(i)
    kept = {u: s for u, s in by_user.items() if len(s) >= 10}
    assert ds.user_ids.tolist() == sorted(kept, key=int)
    for u, raw_user in enumerate(ds.user_ids.tolist()):
        assert ds.item_ids[ds.seq(u)].tolist() == kept[raw_user]


@pytest.mark.realdata
def test_slice_regenerates_byte_identical(shared_data, tmp_path):
    src = resolve_raw("movietweetings", shared_data).path
    info = make_movietweetings_slice(src, tmp_path / "ratings.dat")
    assert info["sha256"] == SOURCES["mt-sample"].sha256 == sha256_file(sample_path())
    # every line of the slice is a line of the original, in the original order
    original = src.read_bytes().split(b"\n")
    sliced = (tmp_path / "ratings.dat").read_bytes().split(b"\n")[:-1]
    chosen = set(sliced)
    assert [line for line in original if line in chosen] == sliced


def test_packaged_sample_counts(tmp_path):
    ds = prepare("mt-sample", None, tmp_path)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == SAMPLE
    assert sample_path().stat().st_size < 1_000_000
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["verified"] is True and stats["source"] == "mt-sample"
    split = make_split(ds, 0)
    assert len(split.new) == 90 and len(split.existing_head) == 72
