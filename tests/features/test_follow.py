"""A read-only store follows its writer: every answer equals the writer's after a catch-up.

The writer and the reader share this process here (a read-only open takes no lock), so
that each step can be compared at once; tests/durability/test_follow_processes.py runs
them as separate processes, with kills. Hypothesis drives random histories through every
way the folder changes under a reader: WAL records (singles and batches), automatic and
explicit checkpoints, compactions, WAL rotation and a writer that closes and reopens.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allsource_lab as asl

ENTITIES = [f"e{i}" for i in range(6)]
TYPES = ["made", "moved", "paid"]
WRITER = {"checkpoint_every_events": 40, "wal_segment_bytes": 4096, "fsync": "always"}


def open_writer(path: Path) -> asl.EventStore:
    return asl.open(path, **WRITER)


def rows(store: asl.EventStore) -> pa.Table:
    return store.events().to_arrow().sort_by("sequence")


def assert_same(writer: asl.EventStore, reader: asl.EventStore) -> None:
    """Every kind of answer the reader gives equals the writer's."""
    assert rows(reader).equals(rows(writer))
    w, r = writer.stats(), reader.stats()
    for key in ("events", "entities", "event_types", "last_sequence"):
        assert r[key] == w[key], key
    for entity in ENTITIES:
        mine = reader.events(entity_id=entity).to_arrow()
        assert mine.equals(writer.events(entity_id=entity).to_arrow()), entity
        if len(mine):
            assert reader.state(entity) == writer.state(entity), entity
            middle = mine.column("timestamp")[len(mine) // 2]
            assert reader.state(entity, as_of=middle.as_py()) == writer.state(
                entity, as_of=middle.as_py()
            )
        else:
            with pytest.raises(asl.NotFound):
                reader.state(entity)
    for event_type in TYPES:
        assert (
            reader.events(event_type=event_type)
            .to_arrow()
            .equals(writer.events(event_type=event_type).to_arrow())
        )
    query = "select event_type, count(*), sum(version) from events group by 1 order by 1"
    assert reader.sql(query).fetchall() == writer.sql(query).fetchall()
    if len(rows(writer)):
        first = rows(writer).column("event_id")[0].as_py()
        assert reader.get(first).sequence == 1


event = st.fixed_dictionaries(
    {
        "entity_id": st.sampled_from(ENTITIES),
        "event_type": st.sampled_from(TYPES),
        "payload": st.dictionaries(
            st.sampled_from(["a", "b", "n"]), st.none() | st.integers(0, 9), max_size=2
        ),
        # Event times that step back and forth: late events, as users' data has.
        "timestamp": st.integers(0, 3_599).map(
            lambda s: f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}Z"
        ),
    }
)
step = st.one_of(
    st.tuples(st.just("append"), st.lists(event, min_size=1, max_size=30)),
    st.tuples(st.just("batch"), st.lists(event, min_size=1, max_size=90)),
    st.tuples(st.just("checkpoint"), st.none()),
    st.tuples(st.just("compact"), st.none()),
    st.tuples(st.just("reopen"), st.none()),
)


def apply(writer: asl.EventStore, path: Path, kind: str, arg: list[dict] | None) -> asl.EventStore:
    if kind == "append":
        for e in arg or []:
            writer.append(e["event_type"], e["entity_id"], e["payload"], timestamp=e["timestamp"])
    elif kind == "batch":
        writer.append_batch(arg or [])
    elif kind == "checkpoint":
        writer.checkpoint()
    elif kind == "compact":
        writer.compact()
    else:
        writer.close()
        writer = open_writer(path)
    return writer


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(step, min_size=1, max_size=12), opened_after=st.integers(0, 4))
def test_a_reader_answers_as_its_writer_after_every_step(tmp_path_factory, history, opened_after):
    path = tmp_path_factory.mktemp("follow") / "s.events"
    writer = open_writer(path)
    reader = None
    try:
        for i, (kind, arg) in enumerate(history):
            if i == opened_after:
                reader = asl.open(path, read_only=True)
            writer = apply(writer, path, kind, arg)
            if reader is not None:
                reader.refresh()
                assert_same(writer, reader)
        if reader is None:
            reader = asl.open(path, read_only=True)
        writer.checkpoint()
        reader.refresh()
        assert_same(writer, reader)
        # A fresh read-only open agrees with the reader that followed all along.
        with asl.open(path, read_only=True) as fresh:
            assert rows(fresh).equals(rows(reader))
        assert reader.verify().ok, reader.verify().problems
    finally:
        writer.close()
        if reader is not None:
            reader.close()


def test_reads_catch_up_on_their_own(tmp_path):
    path = tmp_path / "s.events"
    with open_writer(path) as writer:
        writer.append("made", "e0", {"n": 1})
        reader = asl.open(path, read_only=True)
        try:
            assert len(reader.events()) == 1
            writer.append("moved", "e0", {"n": 2})
            writer.append_batch([{"event_type": "made", "entity_id": "e1", "payload": {}}] * 3)
            time.sleep(0.002)  # past the check's millisecond
            assert len(reader.events()) == 5
            assert reader.state("e0") == {"n": 2}
            for i in range(100):  # past two checkpoints and several WAL files
                writer.append("paid", "e2", {"n": i})
            time.sleep(0.002)
            assert reader.state("e2") == {"n": 99}
            assert reader.stats()["segments"] == writer.stats()["segments"] >= 2
            assert reader.refresh() == 0  # nothing new
        finally:
            reader.close()


def test_unflushed_appends_are_seen_once_written(tmp_path):
    """Under fsync="interval" a reader sees what the writer has written to its WAL: the
    flusher's next interval, or flush()."""
    path = tmp_path / "s.events"
    with asl.open(path, fsync_interval_s=30) as writer:
        writer.append("made", "e0", {})
        writer.flush()
        with asl.open(path, read_only=True) as reader:
            writer.append("made", "e1", {})
            assert reader.refresh() == 0  # still in the writer's buffer
            writer.flush()
            assert reader.refresh() == 1
            assert [e.entity_id for e in reader.events()] == ["e0", "e1"]


def test_a_reader_follows_the_writers_schemas(tmp_path):
    path = tmp_path / "s.events"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with open_writer(path) as writer, asl.open(path, read_only=True) as reader:
        assert reader.schemas.subjects() == []
        writer.schemas.register("made", schema)
        writer.append("made", "e0", {"n": 1})
        assert reader.refresh() == 1
        assert reader.schemas.subjects() == ["made"]
        assert reader.schemas.get("made").schema == schema
        assert reader.events().to_arrow().column("schema_version").to_pylist() == [1]


def test_refresh_without_a_writer_to_follow_is_zero(tmp_path):
    assert asl.open().refresh() == 0
    with asl.open(tmp_path / "s.events") as writer:
        writer.append("made", "e0", {})
        assert writer.refresh() == 0
    reader = asl.open(tmp_path / "s.events", read_only=True)
    reader.close()
    assert reader.refresh() == 0


def test_a_torn_record_is_waited_for_not_taken(tmp_path):
    """The newest WAL file's last frame may be a write still under way: the reader takes
    the records before it, and the rest once the writer (here: a new one, which cuts the
    torn bytes, as it would after a crash) has written them whole."""
    path = tmp_path / "s.events"
    with asl.open(path) as writer:
        writer.append("made", "e0", {})
    reader = asl.open(path, read_only=True)
    try:
        wal = sorted((path / "wal").glob("*.wal"))[-1]
        with open(wal, "ab") as fh:
            fh.write(b"\x40\x00\x00\x00\x01\x02")  # a frame header cut short
        assert reader.refresh() == 0
        with pytest.warns(asl.RecoveryWarning, match="torn"), asl.open(path) as writer:
            writer.append("made", "e1", {})  # after cutting the torn bytes
        assert reader.refresh() == 1
        assert [e.entity_id for e in reader.events()] == ["e0", "e1"]
    finally:
        reader.close()


def test_a_damaged_manifest_is_a_clear_error_and_changes_nothing(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path) as writer:
        writer.append("made", "e0", {})
    reader = asl.open(path, read_only=True)
    try:
        manifest = path / "manifest.json"
        saved = manifest.read_bytes()
        manifest.write_bytes(saved.replace(b'"partitions"', b'"partitionz"'))
        with pytest.raises(asl.CorruptionError, match="manifest") as info:
            reader.refresh()
        assert info.value.path == str(manifest)
        manifest.write_bytes(saved)
        os.utime(manifest, ns=(0, 0))  # another time: the reader reads it again
        assert reader.refresh() == 0
        assert [e.entity_id for e in reader.events()] == ["e0"]
    finally:
        reader.close()


def test_a_checkpoint_is_taken_in_without_reading_what_is_known(tmp_path, monkeypatch):
    """A new segment takes the place of the tail rows the reader read from the WAL (the
    read side is not rebuilt), also when the reader has read past it into the next WAL
    file; only a compaction rebuilds it."""
    from allsource_lab._store.following import Follower

    rebuilds = []
    rebuild = Follower._rebuild
    monkeypatch.setattr(
        Follower, "_rebuild", lambda self, *a: (rebuilds.append(1), rebuild(self, *a))[1]
    )
    path = tmp_path / "s.events"
    with asl.open(path, checkpoint_every_events=1_000_000) as writer:
        writer.append_batch(
            [{"event_type": "made", "entity_id": f"e{i % 7}", "payload": {}} for i in range(50)]
        )
        with asl.open(path, read_only=True) as reader:
            writer.append_batch([{"event_type": "moved", "entity_id": "e1", "payload": {}}] * 30)
            reader.refresh()  # 30 from the WAL
            writer.checkpoint()  # sealed through 80; the WAL goes on in a new file
            writer.append("paid", "e2", {"n": 1})
            writer.flush()
            assert reader.refresh() == 1
            assert reader.stats()["segments"] == 1 and reader.stats()["tail_events"] == 1
            assert rebuilds == []
            assert_same(writer, reader)
            # The writer seals and trims WAL files the reader never read: the segment
            # brings those events.
            writer.append_batch([{"event_type": "moved", "entity_id": "e3", "payload": {}}] * 20)
            writer.checkpoint()
            writer.append("paid", "e4", {"n": 2})
            writer.checkpoint()
            assert reader.refresh() == 21
            assert rebuilds == []
            assert_same(writer, reader)
            writer.compact()
            assert reader.refresh() == 0
            assert rebuilds == [1]
            assert_same(writer, reader)
