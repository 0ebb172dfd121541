"""append_batch: every input form, atomicity, and the errors that name the row."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allsource_lab as asl


def rows(n: int, entities: int = 3) -> list[dict]:
    return [
        {"event_type": f"t{i % 2}", "entity_id": f"e{i % entities}", "payload": {"i": i}}
        for i in range(n)
    ]


def contents(store: asl.EventStore) -> list[tuple]:
    return [(e.sequence, e.entity_id, e.version, e.payload) for e in store.events()]


def test_dicts_pandas_and_arrow_give_the_same_events(store_factory):
    data = rows(10)
    results = []
    for form in (
        data,
        pd.DataFrame(data),
        pa.Table.from_pandas(
            pd.DataFrame(
                {
                    "event_type": [r["event_type"] for r in data],
                    "entity_id": [r["entity_id"] for r in data],
                    "payload": [f'{{"i":{r["payload"]["i"]}}}' for r in data],
                }
            )
        ),
    ):
        store = asl.open()
        res = store.append_batch(form)
        assert (res.first_sequence, res.last_sequence, res.count) == (1, 10, 10)
        results.append(contents(store))
    assert results[0] == results[1] == results[2]
    assert [v for _, _, v, _ in results[0][:6]] == [1, 1, 1, 2, 2, 2]


def test_record_batch_with_payload_json_text(store):
    batch = pa.RecordBatch.from_pydict(
        {"event_type": ["a", "b"], "entity_id": ["x", "x"], "payload": ['{"n":1}', '{"n":2}']}
    )
    store.append_batch(batch)
    assert [e.payload for e in store.events()] == [{"n": 1}, {"n": 2}]


def test_batch_versions_continue_from_single_appends(store):
    store.append("t", "e0", {})
    store.append_batch(rows(6))
    store.append("t", "e0", {})
    versions = {}
    for e in store.events():
        versions.setdefault(e.entity_id, []).append(e.version)
    assert versions == {"e0": [1, 2, 3, 4], "e1": [1, 2], "e2": [1, 2]}


def test_optional_columns_timestamp_metadata_event_id(store):
    t = dt.datetime(2021, 3, 4, tzinfo=dt.UTC)
    ids = [uuid.uuid4(), None]
    store.append_batch(
        [
            {
                "event_type": "a",
                "entity_id": "x",
                "payload": {},
                "timestamp": t,
                "metadata": {"m": 1},
                "event_id": ids[0],
            },
            {"event_type": "a", "entity_id": "x", "payload": {}},
        ]
    )
    first, second = list(store.events())
    assert first.timestamp == t and first.metadata == {"m": 1} and first.event_id == ids[0]
    assert second.metadata == {} and second.event_id.version == 7
    assert second.timestamp == second.recorded_at


def test_pandas_timestamp_column_with_timezone(store):
    df = pd.DataFrame(rows(3))
    df["timestamp"] = pd.to_datetime(["2021-01-01", "2021-01-02", "2021-01-03"]).tz_localize("UTC")
    store.append_batch(df)
    assert [e.timestamp.day for e in store.events()] == [1, 2, 3]


@pytest.mark.parametrize(
    ("change", "row", "field"),
    [
        ({"event_type": ""}, 3, "event_type"),
        ({"event_type": None}, 3, "event_type"),
        ({"entity_id": ""}, 3, "entity_id"),
        ({"entity_id": "x" * 256}, 3, "entity_id"),
        ({"payload": [1]}, 3, "payload"),
        ({"payload": "[1]"}, 3, "payload"),
        ({"payload": "{bad"}, 3, "payload"),
        ({"payload": None}, 3, "payload"),
        ({"payload": {"x": float("nan")}}, 3, "payload"),
        ({"timestamp": dt.datetime(2020, 1, 1)}, 3, "timestamp"),
        ({"timestamp": "nope"}, 3, "timestamp"),
        ({"event_id": "zzz"}, 3, "event_id"),
        ({"metadata": "[]"}, 3, "metadata"),
    ],
)
def test_a_bad_row_rejects_the_whole_batch_and_names_row_and_field(store, change, row, field):
    store.append("t", "e0", {})
    data = rows(6)
    data[row] = {**data[row], **change}
    with pytest.raises(asl.InvalidEvent) as info:
        store.append_batch(data)
    assert info.value.row == row and info.value.field == field
    assert f"row {row}" in str(info.value)
    assert store.stats()["events"] == 1
    assert store.append("t", "e0", {}).version == 2


def test_bad_json_text_row_in_arrow_is_named(store):
    table = pa.table(
        {"event_type": ["a"] * 3, "entity_id": ["x"] * 3, "payload": ["{}", '{"a":1}', '{"a":']}
    )
    with pytest.raises(asl.InvalidEvent) as info:
        store.append_batch(table)
    assert info.value.row == 2 and info.value.field == "payload"


def test_naive_timestamp_column_is_refused(store):
    df = pd.DataFrame(rows(2))
    df["timestamp"] = pd.to_datetime(["2021-01-01", "2021-01-02"])
    with pytest.raises(asl.InvalidEvent, match="timezone"):
        store.append_batch(df)


def test_missing_required_column_is_refused(store):
    with pytest.raises(asl.InvalidEvent, match="payload"):
        store.append_batch([{"event_type": "a", "entity_id": "x"}])
    with pytest.raises(asl.InvalidEvent):
        store.append_batch("not a batch")


def test_expected_versions_are_checked_before_anything_is_written(store):
    store.append_batch(rows(3))
    with pytest.raises(asl.ConcurrencyError) as info:
        store.append_batch(rows(3), expected_versions={"e0": 1, "e1": 5})
    assert (info.value.entity_id, info.value.expected, info.value.actual) == ("e1", 5, 1)
    assert store.stats()["events"] == 3
    res = store.append_batch(rows(3), expected_versions={"e0": 1, "e1": 1, "new": 0})
    assert res.count == 3


def test_retried_batch_with_same_event_ids_is_not_written_twice(store):
    data = [{**r, "event_id": uuid.uuid4()} for r in rows(5)]
    first = store.append_batch(data)
    again = store.append_batch(data)
    assert again.count == 0 and again.duplicates == 5
    assert (again.first_sequence, again.last_sequence) == (
        first.first_sequence,
        first.last_sequence,
    )
    assert store.stats()["events"] == 5
    changed = [dict(r) for r in data]
    changed[2]["payload"] = {"other": True}
    with pytest.raises(asl.InvalidEvent) as info:
        store.append_batch(changed)
    assert info.value.row == 2 and "already stored" in str(info.value)


def test_same_event_id_twice_in_one_batch_is_refused(store):
    eid = uuid.uuid4()
    data = rows(3)
    data[0]["event_id"] = eid
    data[2]["event_id"] = eid
    with pytest.raises(asl.InvalidEvent, match="twice") as info:
        store.append_batch(data)
    assert info.value.row == 2
    assert store.stats()["events"] == 0


def test_large_batch_versions_match_a_python_model(store):
    n = 50_000
    df = pd.DataFrame(
        {
            "event_type": ["t"] * n,
            "entity_id": [f"e{(i * 7919) % 1000}" for i in range(n)],
            "payload": ['{"v":1}'] * n,
        }
    )
    store.append_batch(df)
    table = store.events().to_arrow()
    model: dict[str, int] = {}
    expected = []
    for entity in df["entity_id"]:
        model[entity] = model.get(entity, 0) + 1
        expected.append(model[entity])
    assert table.column("version").to_pylist() == expected


def test_bad_row_deep_in_a_big_batch_is_named(store):
    # Big enough that the JSON check runs split across threads.
    n = 70_000
    payloads = ['{"i":1}'] * n
    payloads[69_001] = '{"i":1,}'
    table = pa.table({"event_type": ["t"] * n, "entity_id": ["e"] * n, "payload": payloads})
    with pytest.raises(asl.InvalidEvent) as info:
        store.append_batch(table)
    assert info.value.row == 69_001 and info.value.field == "payload"
    assert store.stats()["events"] == 0


@pytest.mark.parametrize("kind", ["memory", "folder"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["arrow", "dicts", "single", "retry", "read"]),
            st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=30),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_entity_and_type_reads_match_a_model_whatever_numbered_the_rows(
    tmp_path_factory, kind, steps
):
    """A batch hands the reader the entity numbers and type codes its checks found; reads
    by entity and by type must answer as if the reader had hashed every row itself: with
    types first seen in any order, retried rows dropped from a batch (its codes taken
    along), single appends between batches, reads in between, and after a reopen."""
    path = None if kind == "memory" else tmp_path_factory.mktemp("numbered") / "s.events"
    store = asl.open(path, checkpoint_every_events=40)
    model: list[tuple[str, str, int]] = []  # (entity, type, i) in sequence order
    sent: list[dict] = []
    counter = 0
    for kind, pairs in steps:
        data = []
        for entity, kind_no in pairs:
            data.append(
                {
                    "event_type": f"type-{kind_no}",
                    "entity_id": f"entity-{entity}",
                    "payload": {"i": counter},
                    "event_id": uuid.uuid4(),
                }
            )
            counter += 1
        if kind == "single":
            for row in data:
                store.append(row["event_type"], row["entity_id"], row["payload"])
        elif kind == "read":
            store.events(entity_id="entity-0").to_arrow()
            continue
        else:
            if kind == "retry" and sent:
                data = sent[-len(data) :] + data  # rows already stored come back
            table = pa.table(
                {
                    "event_type": [r["event_type"] for r in data],
                    "entity_id": [r["entity_id"] for r in data],
                    "payload": [json.dumps(r["payload"]) for r in data],
                    "event_id": [r["event_id"].bytes for r in data],
                }
            )
            store.append_batch(data if kind == "dicts" else table)
            stored = {r["event_id"] for r in sent}
            data = [r for r in data if r["event_id"] not in stored]
            sent.extend(data)
        model.extend((r["entity_id"], r["event_type"], r["payload"]["i"]) for r in data)

    def check(s: asl.EventStore) -> None:
        for entity in {m[0] for m in model} | {"entity-missing"}:
            got = [e.payload["i"] for e in s.events(entity_id=entity)]
            assert got == [m[2] for m in model if m[0] == entity]
        for kind_no in range(5):
            got = [e.payload["i"] for e in s.events(event_type=f"type-{kind_no}")]
            assert got == [m[2] for m in model if m[1] == f"type-{kind_no}"]

    check(store)
    store.close()
    if path is not None:
        with asl.open(path) as reopened:
            check(reopened)


def test_a_sliced_arrow_table_is_stored_as_its_rows(store_factory):
    """A batch's Arrow string columns are stored as they came (no copy): a slice of a
    table, whose arrays start past their buffers' first byte, must read back as the slice's
    rows, also after a checkpoint and a reopen."""
    table = pa.table(
        {
            "event_type": [f"t{i % 3}" for i in range(50)],
            "entity_id": [f"e{i % 7}" for i in range(50)],
            "payload": [json.dumps({"i": i, "s": "x" * (i % 5)}) for i in range(50)],
        }
    )
    store = store_factory()
    store.append_batch(table.slice(13, 20))
    store.append_batch(table.slice(40))

    def check(s: asl.EventStore) -> None:
        got = [(e.event_type, e.entity_id, e.payload["i"]) for e in s.events()]
        want = [(f"t{i % 3}", f"e{i % 7}", i) for i in [*range(13, 33), *range(40, 50)]]
        assert got == want

    check(store)
    store.checkpoint()
    check(store)
    if store_factory.kind != "memory":
        store.close()
        check(store_factory())
