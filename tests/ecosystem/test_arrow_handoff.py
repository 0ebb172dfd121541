"""Frames and batches handed to pyarrow, polars and DuckDB through the Arrow C stream.

Each consumer must read the same rows as ``to_arrow()`` holds, and where it keeps Arrow
buffers as they are (pyarrow: all of them; polars: fixed-width columns) its buffers must
be the very buffers of the frame's table: the same addresses, so no copy was made.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import allsource_lab as asl

FIXED = ("sequence", "version", "timestamp", "recorded_at", "partition")


def fill(store: asl.EventStore) -> None:
    """Events in a sealed segment and in the tail, so tables come in several chunks."""
    rows = [
        {
            "event_type": f"t{i % 3}",
            "entity_id": f"e{i % 7}",
            "payload": {"n": i, "name": f"n{i}"},
            "timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
        }
        for i in range(200)
    ]
    store.append_batch(rows[:120])
    store.checkpoint()
    store.append_batch(rows[120:])
    store.append("t0", "e1", {"n": -1, "name": "single"})


def addresses(array: pa.Array) -> set[int]:
    return {b.address for b in array.buffers() if b is not None and b.size}


def table_addresses(table: pa.Table, name: str) -> set[int]:
    found: set[int] = set()
    for chunk in table.column(name).chunks:
        found |= addresses(chunk)
    return found


@pytest.fixture
def filled(store: asl.EventStore) -> Iterator[asl.EventStore]:
    fill(store)
    yield store


@pytest.fixture(params=["all", "entity", "type"])
def frame(request: pytest.FixtureRequest, filled: asl.EventStore) -> asl.EventFrame:
    if request.param == "entity":
        return filled.events(entity_id="e3")
    if request.param == "type":
        return filled.events(event_type="t1", limit=50)
    return filled.events()


def test_pyarrow_reads_the_frames_own_buffers(frame: asl.EventFrame) -> None:
    table = frame.to_arrow()
    copy = pa.table(frame)
    assert copy.equals(table)
    assert copy.schema == table.schema  # the UUID and JSON extension types travel too
    for name in table.column_names:
        assert table_addresses(copy, name) == table_addresses(table, name), name


def test_polars_reads_fixed_width_columns_without_a_copy(frame: asl.EventFrame) -> None:
    table = frame.to_arrow()
    df = pl.DataFrame(frame)
    assert df.height == table.num_rows
    assert df["sequence"].to_list() == table.column("sequence").to_pylist()
    assert df["entity_id"].to_list() == table.column("entity_id").to_pylist()
    for name in FIXED:
        held: set[int] = set()
        for chunk in df[name].get_chunks():
            held |= addresses(chunk.to_arrow())
        values = set()
        for chunk in table.column(name).chunks:
            values |= {chunk.buffers()[1].address}
        assert values <= held, name


def test_to_polars_gives_json_as_text_and_keeps_the_buffers(frame: asl.EventFrame) -> None:
    table = frame.to_arrow()
    df = frame.to_polars()
    assert df.schema["payload"] == pl.String
    assert df.schema["event_id"] == pl.Binary
    decoded = df["payload"].str.json_decode(pl.Struct({"n": pl.Int64, "name": pl.String}))
    expected = [r["n"] for r in frame.to_pandas()["payload"]]
    assert decoded.struct.field("n").to_list() == expected
    assert [bytes(b) for b in df["event_id"].to_list()] == [
        u.bytes for u in table.column("event_id").to_pylist()
    ]
    for name in FIXED:
        held: set[int] = set()
        for chunk in df[name].get_chunks():
            held |= addresses(chunk.to_arrow())
        assert {c.buffers()[1].address for c in table.column(name).chunks} <= held, name


def test_duckdb_queries_a_frame_by_its_name(frame: asl.EventFrame) -> None:
    table = frame.to_arrow()
    rows = duckdb.sql(
        "select sequence, typeof(event_id), typeof(payload), payload->>'name' "
        "from frame order by sequence"
    ).fetchall()
    assert [r[0] for r in rows] == table.column("sequence").to_pylist()
    assert {(r[1], r[2]) for r in rows} <= {("UUID", "JSON")}
    names = [p["name"] for p in frame.to_pandas()["payload"]]
    assert [r[3] for r in rows] == names


def test_a_feed_batch_is_handed_over_the_same_way(filled: asl.EventStore) -> None:
    batch = filled.feed.batch(100, 50)
    table = batch.to_arrow()
    copy = pa.table(batch)
    assert copy.equals(table)
    for name in table.column_names:
        assert table_addresses(copy, name) == table_addresses(table, name), name
    assert pl.DataFrame(batch)["sequence"].to_list() == list(range(101, 151))
    assert batch.to_polars()["payload"].str.json_decode().struct.field("n").to_list() == list(
        range(100, 150)
    )
    assert duckdb.sql("select count(*) from batch").fetchall() == [(50,)]


def test_the_other_tabular_results_take_the_same_road(filled: asl.EventStore) -> None:
    """``states()`` and ``window()`` are pandas DataFrames and ``sql()`` a DuckDB relation:
    each implements the Arrow PyCapsule interface itself."""
    states = filled.states()
    assert pl.DataFrame(states)["entity_id"].to_list() == [f"e{i}" for i in range(7)]
    windows = filled.window(every="10m")
    assert pa.table(windows).column("count").to_pylist() == windows["count"].tolist()
    relation = filled.sql("select entity_id, count(*) as n from events group by 1 order by 1")
    assert pl.DataFrame(relation)["n"].sum() == 201


def test_to_polars_without_polars_says_which_extra_to_install(
    filled: asl.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match=r"allsource-lab\[polars\]"):
        filled.events().to_polars()
