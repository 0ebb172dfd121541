"""store.sql(): DuckDB over every event, sealed and not, with bound parameters."""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb
import pytest

import allsource_lab as asl

COLUMNS = [
    ("sequence", "BIGINT"),
    ("event_id", "UUID"),
    ("event_type", "VARCHAR"),
    ("entity_id", "VARCHAR"),
    ("version", "BIGINT"),
    ("timestamp", "TIMESTAMP WITH TIME ZONE"),
    ("recorded_at", "TIMESTAMP WITH TIME ZONE"),
    ("payload", "JSON"),
    ("metadata", "JSON"),
    ("partition", "SMALLINT"),
    ("schema_version", "INTEGER"),
]


def test_the_view_has_exactly_the_event_columns(store):
    store.append("a", "x", {})
    got = [(name, kind) for name, kind, *_ in store.sql("describe events").fetchall()]
    assert got == COLUMNS


def test_sql_reads_its_own_writes_across_segments_and_tail(store):
    store.append("order.placed", "o1", {"amount": 42.5, "lines": {"n": 2}}, metadata={"by": "ann"})
    store.checkpoint()
    store.append_batch(
        [{"event_type": "order.placed", "entity_id": "o2", "payload": {"amount": 7}}]
    )
    assert store.sql("select count(*) from events").fetchall()[0] == (2,)
    store.append("order.paid", "o1", {"paid": True})  # one line earlier: visible now
    rows = store.sql("select event_type, count(*) from events group by 1 order by 1").fetchall()
    assert rows == [("order.paid", 1), ("order.placed", 2)]
    got = store.sql(
        "select payload->>'amount', payload->'lines'->>'n', metadata->>'by' from events "
        "where event_type = 'order.placed' order by sequence"
    ).fetchall()
    assert got == [("42.5", "2", "ann"), ("7", None, None)]


def test_sql_types_round_trip(store):
    ev = store.append("a", "x", {"n": 1}, timestamp=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC))
    eid, ts, part = store.sql("select event_id, timestamp, partition from events").fetchall()[0]
    assert eid == uuid.UUID(str(ev.event_id))
    assert ts == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert part == ev.partition


def test_parameters_are_bound_never_formatted(store):
    store.append("a", "x", {})
    store.append("a", "it's; drop table events; --", {})
    hostile = "it's; drop table events; --"
    assert store.sql("select count(*) from events where entity_id = ?", [hostile]).fetchall()[
        0
    ] == (1,)
    got = store.sql("select version from events where entity_id = $who", {"who": hostile})
    assert got.fetchall() == [(1,)]
    assert store.sql("select count(*) from events").fetchall()[0] == (2,)


def test_a_relation_composes_and_converts(store):
    store.append_batch(
        [{"event_type": "t", "entity_id": f"e{i % 3}", "payload": {"v": i}} for i in range(30)]
    )
    rel = store.sql("select entity_id, sum((payload->>'v')::int) as total from events group by 1")
    table = rel.order("entity_id").to_arrow_table()
    assert table.column("total").to_pylist() == [135, 145, 155]
    assert len(rel.df()) == 3


def test_bad_sql_is_duckdbs_error_and_the_store_is_unharmed(store):
    store.append("a", "x", {})
    with pytest.raises(duckdb.Error):
        store.sql("select nonsense from events").fetchall()
    with pytest.raises(TypeError):
        store.sql(42)  # type: ignore[arg-type]
    assert store.sql("select count(*) from events").fetchall()[0] == (1,)


def test_segment_files_can_be_queried_without_the_store(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.append_batch(
            [{"event_type": "t", "entity_id": f"e{i}", "payload": {"v": i}} for i in range(10)]
        )
        store.checkpoint()
        store.append("t", "late", {"v": 100})  # unsealed: only the store's view has it
        files = store.segment_files()
        assert len(files) == 1 and files[0].endswith(".parquet")
        direct = duckdb.sql(
            f"select count(*), sum((payload->>'v')::int) from read_parquet({files})"
        )
        assert direct.fetchall()[0] == (10, 45)
        # The integer and time columns are delta-encoded (docs/format.md, "Segments").
        numbers = duckdb.sql(
            "select sum(sequence), sum(version), count(distinct timestamp) > 0,"
            f" max(recorded_at) >= min(timestamp), sum(partition) >= 0 from read_parquet({files})"
        )
        assert numbers.fetchall()[0] == (55, 10, True, True, True)
        assert store.sql("select count(*) from events").fetchall()[0] == (11,)
    assert asl.open().segment_files() == []


def test_stats_counts_what_the_store_holds(store):
    store.append_batch(
        [{"event_type": f"t{i % 4}", "entity_id": f"e{i % 7}", "payload": {}} for i in range(50)]
    )
    store.checkpoint()
    store.append("t9", "new", {})
    stats = store.stats()
    assert (stats["events"], stats["entities"], stats["event_types"]) == (51, 8, 5)
    assert (stats["segments"], stats["last_sequence"], stats["tail_events"]) == (1, 51, 1)
    assert stats["memory_bytes"] > 51 * 50
    store.flush()
    if store.path is not None:
        assert store.stats()["wal_bytes"] > 0
