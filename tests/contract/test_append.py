"""The single-event write path, on both storages."""

from __future__ import annotations

import datetime as dt
import math
import pickle
import uuid

import pytest
import xxhash

import allsource_lab as asl


def test_sequences_and_versions_start_at_one_and_are_gapless(store):
    a = store.append("order.placed", "o1", {"n": 1})
    b = store.append("order.paid", "o1", {"n": 2})
    c = store.append("order.placed", "o2", {"n": 3})
    assert [a.sequence, b.sequence, c.sequence] == [1, 2, 3]
    assert [a.version, b.version, c.version] == [1, 2, 1]


def test_event_ids_are_time_ordered_uuid7_and_unique(store):
    ids = [store.append("t", "e", {"i": i}).event_id for i in range(200)]
    assert all(i.version == 7 for i in ids)
    assert [i.bytes for i in ids] == sorted(i.bytes for i in ids)
    assert len(set(ids)) == 200


def test_recorded_at_never_goes_backwards_and_timestamp_defaults_to_it(store):
    events = [store.append("t", "e", {}) for _ in range(100)]
    recorded = [e.recorded_at_us for e in events]
    assert recorded == sorted(recorded) and len(set(recorded)) == 100
    assert all(e.timestamp_us == e.recorded_at_us for e in events)
    assert events[0].recorded_at.tzinfo is not None


def test_caller_event_time_is_kept_and_recorded_time_is_the_store_clock(store):
    t = dt.datetime(2020, 5, 1, 12, 0, tzinfo=dt.UTC)
    ev = store.append("t", "e", {}, timestamp=t)
    assert ev.timestamp == t
    assert ev.recorded_at > t
    iso = store.append("t", "e", {}, timestamp="2021-01-01T00:00:00+02:00")
    assert iso.timestamp == dt.datetime(2020, 12, 31, 22, 0, tzinfo=dt.UTC)


def test_partition_is_xxh64_of_entity_id_modulo_partitions(store):
    for entity in ["order-17", "ü-entity", "x" * 255]:
        ev = store.append("t", entity, {})
        assert ev.partition == xxhash.xxh64_intdigest(entity.encode()) % 32


def test_payload_and_metadata_round_trip(store):
    ev = store.append("t", "e", {"a": [1, {"b": None}], "s": "ü"}, metadata={"user": "u1"})
    got = store.get(ev.event_id)
    assert got.payload == {"a": [1, {"b": None}], "s": "ü"}
    assert got.metadata == {"user": "u1"}
    assert got == ev


def test_an_event_is_equal_by_content_and_decodes_its_json_once(store):
    ev = store.append("t", "e", {"a": 1, "b": [2]}, metadata={"m": 1})
    assert ev.payload is ev.payload and ev.metadata is ev.metadata  # decoded once

    def like(payload_json: bytes, version: int = ev.version) -> asl.Event:
        return asl.Event(
            ev.sequence,
            ev.event_type,
            ev.entity_id,
            version,
            ev.timestamp_us,
            ev.recorded_at_us,
            ev.event_id_bytes,
            payload_json,
            b'{"m":1}',
            ev.partition,
            ev.schema_version,
        )

    # The same event with its JSON spelled differently is equal; other content is not.
    respelled = like(b'{ "b": [2], "a": 1 }')
    assert respelled == ev and hash(respelled) == hash(ev)
    assert like(b'{"a": 2, "b": [2]}') != ev and like(ev.payload_json, version=2) != ev
    assert ev != "not an event"
    assert pickle.loads(pickle.dumps(ev)) == ev
    assert ev.to_dict()["event_id"] == ev.event_id and ev.event_id.bytes == ev.event_id_bytes


def test_payload_given_as_json_text_is_accepted(store):
    ev = store.append("t", "e", '{"a": 1}')
    assert ev.payload == {"a": 1}
    ev = store.append("t", "e", b'{"b": 2}')
    assert ev.payload == {"b": 2}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event_type": ""}, "event_type"),
        ({"event_type": "x" * 256}, "event_type"),
        ({"event_type": "bad\ntype"}, "event_type"),
        ({"event_type": 5}, "event_type"),
        ({"entity_id": ""}, "entity_id"),
        ({"entity_id": "é" * 128}, "entity_id"),  # 256 bytes of UTF-8
        ({"entity_id": None}, "entity_id"),
        ({"entity_id": "\ud800"}, "entity_id"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": 3}, "payload"),
        ({"payload": "[1]"}, "payload"),
        ({"payload": "{not json"}, "payload"),
        ({"payload": b'{"a": "\xff"}'}, "payload"),
        ({"payload": {"x": math.nan}}, "payload"),
        ({"payload": {"x": [math.inf]}}, "payload"),
        ({"payload": '{"x": NaN}'}, "payload"),
        ({"payload": {"x": 2**70}}, "payload"),
        ({"payload": {"x": object()}}, "payload"),
        ({"payload": {"s": "\ud800"}}, "payload"),
        ({"metadata": [1]}, "metadata"),
        ({"timestamp": dt.datetime(2020, 1, 1)}, "timestamp"),
        ({"timestamp": "2020-01-01T00:00:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": 12345}, "timestamp"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"expected_version": -1}, "expected_version"),
        ({"expected_version": "1"}, "expected_version"),
    ],
)
def test_bad_input_is_invalid_event_naming_the_field_and_writes_nothing(store, kwargs, field):
    store.append("t", "e", {"ok": True})
    args = {"event_type": "t", "entity_id": "e", "payload": {"a": 1}, **kwargs}
    with pytest.raises(asl.InvalidEvent) as info:
        store.append(**args)
    assert info.value.field == field
    assert field in str(info.value)
    assert store.stats()["events"] == 1
    assert store.append("t", "e", {}).sequence == 2


def test_nesting_past_the_limit_is_refused(store):
    deep: dict = {}
    node = deep
    for _ in range(70):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(asl.InvalidEvent, match="nest"):
        store.append("t", "e", deep)
    with pytest.raises(asl.InvalidEvent, match="nest"):
        store.append("t", "e", "{" + '"a":{' * 70 + "}" * 71)


def test_payload_over_the_size_limit_is_refused(store_factory):
    store = store_factory(max_payload_bytes=100)
    with pytest.raises(asl.InvalidEvent, match="limit"):
        store.append("t", "e", {"s": "x" * 200})


def test_expected_version_guards_against_concurrent_writers(store):
    store.append("t", "e", {}, expected_version=0)
    with pytest.raises(asl.ConcurrencyError) as info:
        store.append("t", "e", {}, expected_version=0)
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert "expected 0" in str(info.value) and "version 1" in str(info.value)
    assert store.append("t", "e", {}, expected_version=1).version == 2
    assert store.stats()["events"] == 2


def test_retrying_an_event_id_with_the_same_content_returns_the_stored_event(store):
    eid = uuid.uuid4()
    first = store.append("t", "e", {"a": 1}, event_id=eid, expected_version=0)
    again = store.append("t", "e", {"a": 1}, event_id=eid, expected_version=0)
    assert again == first
    assert store.stats()["events"] == 1
    with pytest.raises(asl.InvalidEvent, match="already stored"):
        store.append("t", "e", {"a": 2}, event_id=eid)
    # A generated id handed back is recognised too.
    gen = store.append("t", "f", {})
    assert store.append("t", "f", {}, event_id=gen.event_id) == gen


def test_get_unknown_event_is_not_found(store):
    with pytest.raises(asl.NotFound):
        store.get(uuid.uuid4())


def test_closed_store_refuses_writes_with_storage_error(store):
    store.close()
    with pytest.raises(asl.StorageError, match="closed"):
        store.append("t", "e", {})
