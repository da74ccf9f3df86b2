"""From raw records to a SeqDataset (tplib.data.prepare): order, filter, re-index, stats, failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tplib.data.dataset import SeqDataset
from tplib.data.prepare import build_dataset, filter_mask, index_by_raw_id, prepare
from tplib.io import DataError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def seqs(ds: SeqDataset) -> dict[str, list[str]]:
    """Each raw user's raw item sequence."""
    return {str(ds.user_ids[u]): [str(ds.item_ids[i]) for i in ds.seq(u)] for u in range(ds.n_users)}


def records(rows: list[tuple]) -> pd.DataFrame:
    cols = ["user", "item", "time"][: len(rows[0])]
    df = pd.DataFrame(rows, columns=cols).astype({"user": object, "item": object})
    df["lineno"] = np.arange(1, len(df) + 1)
    return df


# ----------------------------------------------------------------------------------------------- order


def test_time_order_ties_in_file_order(tmp_path):
    # user 7: times 5, 3, 5, 3, 1 -> items by time, ties (3: b then d; 5: a then c) in file order
    f = write(
        tmp_path / "ratings.dat",
        "7::a::1::5\n8::x::1::9\n7::b::1::3\n7::c::1::5\n8::y::1::2\n7::d::1::3\n7::e::1::1\n",
    )
    ds = prepare("movietweetings", f, tmp_path / "out", verify=False, item_min=0, user_min=0)
    assert seqs(ds) == {"7": ["e", "b", "d", "a", "c"], "8": ["y", "x"]}
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["time_ties"] == 2 and stats["raw_time_ties"] == 2


def test_no_time_column_keeps_file_order(tmp_path):
    f = write(tmp_path / "Video.txt", "2 30\n1 10\n2 20\n1 5\n2 10\n")
    ds = prepare("game", f, None, verify=False, user_min=0)
    assert seqs(ds) == {"1": ["10", "5"], "2": ["30", "20", "10"]}


def test_generic_without_time_keeps_file_order(tmp_path):
    f = write(tmp_path / "x.csv", "who,what\nb,z\na,y\nb,x\n")
    ds = prepare("generic", f, None, user_col="who", item_col="what", item_min=0, user_min=0, name="mine")
    assert ds.name == "mine" and seqs(ds) == {"a": ["y"], "b": ["z", "x"]}


def test_cli_sep_backslash_t_is_a_tab(tmp_path):
    """`tp prepare --sep '\t'` passes backslash and t; it means a tab, as in every other tool."""
    from tplib.cli import main

    f = write(tmp_path / "x.tsv", "who\twhat\nb\tz\na\ty\nb\tx\n")
    args = ["prepare", "--dataset", "generic", "--raw", str(f), "--out", str(tmp_path / "out"), "--sep", "\\t",
            "--user-col", "who", "--item-col", "what", "--item-min", "0", "--user-min", "0", "--name", "tabs"]
    assert main(args) == 0
    assert seqs(SeqDataset.load(tmp_path / "out")) == {"a": ["y"], "b": ["z", "x"]}


# ----------------------------------------------------------------------------------------------- filter

# item_min = 2, user_min = 2. Items: a 2, b 3, c 1, x 3 -> c dropped; then u2 has 1 row -> dropped. One pass:
# users u1 u3 u4, items a b x, 7 interactions. After that a has 1 record: k-core also drops a (u1 keeps b x).
FILTER_CASE = [
    ("u1", "a", 1), ("u1", "b", 2), ("u1", "x", 3),
    ("u2", "a", 1), ("u2", "c", 2),
    ("u3", "b", 1), ("u3", "x", 2),
    ("u4", "b", 1), ("u4", "x", 2),
]  # fmt: skip


def test_filter_item_cut_then_user_cut_one_pass():
    ds, stats = build_dataset(records(FILTER_CASE), "t", item_min=2, user_min=2)
    assert seqs(ds) == {"u1": ["a", "b", "x"], "u3": ["b", "x"], "u4": ["b", "x"]}
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 3, 7)
    assert (stats["raw_users"], stats["raw_items"], stats["raw_interactions"]) == (4, 4, 9)


def test_filter_kcore():
    ds, _ = build_dataset(records(FILTER_CASE), "t", item_min=2, user_min=2, kcore=True)
    assert seqs(ds) == {"u1": ["b", "x"], "u3": ["b", "x"], "u4": ["b", "x"]}
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 2, 6)


def test_filter_order_matters():
    # users first would keep u2 (2 rows) and then drop c; items first drops c, then u2 (1 row)
    keep = filter_mask(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 2, 1, 0]), item_min=2, user_min=2)
    assert keep.tolist() == [True, True, False, False, True, True]


def test_prepare_overrides_source_filter(tmp_path):
    lines = "".join(f"{u}::{i}::1::{i}\n" for u in range(1, 4) for i in range(1, 4 + u))  # users 4, 5, 6 rows
    f = write(tmp_path / "ratings.dat", lines)
    assert prepare("movietweetings", f, None, verify=False, item_min=0, user_min=5).n_users == 2
    assert prepare("movietweetings", f, None, verify=False, item_min=3, user_min=0).n_items == 4


# ----------------------------------------------------------------------------------------------- re-indexing


def test_reindex_items_1_to_n_by_numeric_raw_id():
    rows = [("10", "100", 1), ("10", "9", 2), ("2", "10", 1), ("2", "9", 2), ("10", "010", 3)]
    ds, _ = build_dataset(records(rows), "t", 0, 0)
    assert ds.user_ids.tolist() == ["2", "10"]  # numeric order, not "10" < "2"
    assert ds.item_ids.tolist() == ["", "9", "010", "10", "100"]  # 0 = padding; "010" == "10" as numbers: by string
    assert sorted(set(ds.items.tolist())) == [1, 2, 3, 4]
    assert seqs(ds) == {"2": ["10", "9"], "10": ["100", "9", "010"]}


def test_reindex_string_ids_and_gaps():
    rows = [("bob", "zz", 1), ("bob", "aa", 2), ("al", "mm", 1), ("al", "aa", 2), ("cy", "qq", 1)]
    ds, _ = build_dataset(records(rows), "t", item_min=2, user_min=0)  # only "aa" survives
    assert ds.item_ids.tolist() == ["", "aa"] and ds.items.tolist() == [1, 1]
    assert ds.user_ids.tolist() == ["al", "bob"] and ds.offsets.tolist() == [0, 1, 2]


def test_index_by_raw_id():
    codes, ids = index_by_raw_id(np.array(["3", "20", "3", "1"], dtype=object))
    assert ids.tolist() == ["1", "3", "20"] and codes.tolist() == [1, 2, 1, 0]
    codes, ids = index_by_raw_id(np.array(["b", "10", "a"], dtype=object))
    assert ids.tolist() == ["10", "a", "b"] and codes.tolist() == [2, 0, 1]


def test_duplicates_kept_and_counted():
    ds, stats = build_dataset(records([("1", "5", 1), ("1", "5", 2), ("1", "6", 3)]), "t", 0, 0)
    assert ds.n_interactions == 3 and stats["duplicate_pairs"] == 1


# ----------------------------------------------------------------------------------------------- failures, stats


def test_nothing_left_raises_and_writes_nothing(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::2::3::4\n1::3::3::5\n2::2::1::6\n")
    out = tmp_path / "out"
    with pytest.raises(
        DataError, match=r"\(movietweetings\): nothing left after filtering \(items >= 5, then users >= 10"
    ):
        prepare("movietweetings", f, out, verify=False)
    assert not (out / "stats.json").exists()


def test_generic_options_only_for_generic(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::2::3::4\n")
    with pytest.raises(DataError, match=r"--sep: only for the 'generic' source"):
        prepare("movietweetings", f, None, verify=False, sep=",")
    with pytest.raises(DataError, match=r"user_min must be >= 0"):
        prepare("movietweetings", f, None, verify=False, user_min=-1)


def test_stats_and_roundtrip(tmp_path):
    lines = "".join(f"{u}::{i:07d}::7::{1000 + i}\n" for u in range(1, 13) for i in range(1, 13))
    f = write(tmp_path / "ratings.dat", lines)
    ds = prepare("movietweetings", f, tmp_path / "out", verify=False)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    for key in (
        "dataset", "users", "items", "interactions", "source", "version", "license", "url", "raw_path", "raw_sha256",
        "expected_sha256", "verified", "verification_skipped", "item_min", "user_min", "kcore", "filter",
        "raw_users", "raw_items", "raw_interactions", "time_ties", "raw_time_ties", "has_time", "duplicate_pairs",
        "order_rule", "index_rule",
    ):  # fmt: skip
        assert key in stats, key
    assert stats["source"] == "movietweetings" and stats["dataset"] == "movietweetings"
    assert (stats["users"], stats["items"], stats["interactions"]) == (12, 12, 144)
    assert stats["verified"] is False and stats["verification_skipped"] is True
    assert (stats["item_min"], stats["user_min"], stats["kcore"]) == (5, 10, False)
    assert stats["raw_path"] == str(f) and len(stats["raw_sha256"]) == 64
    back = SeqDataset.load(tmp_path / "out")
    assert np.array_equal(back.items, ds.items) and np.array_equal(back.offsets, ds.offsets)
    assert back.item_ids.tolist() == ds.item_ids.tolist() and back.item_ids[1] == "0000001"


def test_rerun_replaces_old_output(tmp_path):
    f = write(tmp_path / "Video.txt", "".join(f"{u} {i}\n" for u in (1, 2) for i in range(1, 11)))
    out = tmp_path / "out"
    prepare("game", f, out, verify=False)
    prepare("game", f, out, verify=False, user_min=0)
    assert json.loads((out / "stats.json").read_text())["user_min"] == 0


# ----------------------------------------------------------------------------------------------- property


def reference(rows: list[tuple[int, int, int]], item_min: int, user_min: int, kcore: bool) -> dict[str, list[str]]:
    """A plain-Python statement of the protocol, for comparison."""
    kept = list(enumerate(rows))
    while True:
        n = len(kept)
        items = [r[1] for _, r in kept]
        kept = [(k, r) for k, r in kept if items.count(r[1]) >= item_min]
        users = [r[0] for _, r in kept]
        kept = [(k, r) for k, r in kept if users.count(r[0]) >= user_min]
        if not kcore or len(kept) == n:
            break
    out: dict[str, list[str]] = {}
    for _, (u, i, _t) in sorted(kept, key=lambda kr: (kr[1][0], kr[1][2], kr[0])):  # user, time, file position
        out.setdefault(str(u), []).append(str(i))
    return out


row = st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=40), st.integers(0, 3), st.integers(0, 4), st.booleans())
def test_prepare_matches_reference(rows, item_min, user_min, kcore):
    expect = reference(rows, item_min, user_min, kcore)
    df = records([(str(u), str(i), t) for u, i, t in rows])
    if not expect:
        with pytest.raises(DataError, match="nothing left"):
            build_dataset(df, "t", item_min, user_min, kcore)
        return
    ds, stats = build_dataset(df, "t", item_min, user_min, kcore)
    assert seqs(ds) == expect
    assert list(expect) == ds.user_ids.tolist()  # users in numeric raw-id order (dict built in that order)
    assert sorted(set(ds.items.tolist())) == list(range(1, ds.n_items + 1))
    assert [int(x) for x in ds.item_ids[1:]] == sorted(int(x) for x in ds.item_ids[1:])
    assert stats["raw_interactions"] == len(rows)
