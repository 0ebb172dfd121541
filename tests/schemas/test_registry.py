"""store.schemas: registering, evolving, enforcing, upcasting, and surviving a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import allsource_lab as asl
from tests.conftest import open_after_crash

USER_V1 = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name"],
    "additionalProperties": False,
}
USER_V2 = {  # backward compatible: a new optional property where none was allowed
    **USER_V1,
    "properties": {**USER_V1["properties"], "email": {"type": "string"}},
}


def test_register_versions_and_reregistering_is_idempotent(store):
    v1 = store.schemas.register("user.joined", USER_V1)
    assert (v1.subject, v1.version) == ("user.joined", 1)
    reordered = dict(reversed(list(USER_V1.items())))  # key order is not identity
    assert store.schemas.register("user.joined", reordered) == v1
    v2 = store.schemas.register("user.joined", USER_V2)
    assert v2.version == 2 and v2.id != v1.id
    assert store.schemas.versions("user.joined") == [1, 2]
    assert store.schemas.get("user.joined") == v2
    assert store.schemas.get("user.joined", 1).schema == USER_V1
    assert store.schemas.subjects() == ["user.joined"]


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "strnig"}, "not a valid JSON Schema"),
        ({"properties": {"a": {"minimum": "zero"}}}, "#/properties/a/minimum"),
        ([1, 2], "a schema is a JSON object"),
        ("{not json", "not JSON"),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "unsupported $schema"),
    ],
)
def test_a_schema_that_is_not_json_schema_is_a_schema_error(store, schema, says):
    with pytest.raises(asl.SchemaError, match=says.replace("$", r"\$")):
        store.schemas.register("t", schema)
    assert store.schemas.subjects() == []


def test_draft_7_is_accepted(store):
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
    assert store.schemas.register("t", schema).version == 1


def test_incompatible_change_is_refused_with_its_report(store):
    store.schemas.register("user.joined", USER_V1)
    stricter = {**USER_V1, "required": ["name", "email"]}
    report = store.schemas.check("user.joined", stricter)
    assert not report.compatible and report.mode == "BACKWARD"
    assert report.problems == ["required property added: #/required/email"]
    with pytest.raises(asl.IncompatibleSchema, match="required property added") as caught:
        store.schemas.register("user.joined", stricter)
    assert caught.value.report == report
    assert store.schemas.versions("user.joined") == [1]
    store.schemas.set_compatibility("user.joined", "NONE")
    assert store.schemas.register("user.joined", stricter).version == 2


def test_compatibility_modes_per_subject_and_store_wide(store):
    assert store.schemas.compatibility() == "BACKWARD"
    store.schemas.set_compatibility(None, "FULL")
    assert store.schemas.compatibility("anything") == "FULL"
    store.schemas.set_compatibility("a", "forward_transitive")
    assert store.schemas.compatibility("a") == "FORWARD_TRANSITIVE"
    with pytest.raises(asl.SchemaError, match="BACKWARD_TRANSITIVE"):
        store.schemas.set_compatibility("a", "SIDEWAYS")
    v = store.schemas.register("b", USER_V1, compatibility="NONE")
    assert store.schemas.compatibility("b") == "NONE" and v.version == 1


def test_delete_is_soft(store):
    store.schemas.register("user.joined", USER_V1)
    store.append("user.joined", "u1", {"name": "ann"})
    store.schemas.set_compatibility("user.joined", "NONE")
    store.schemas.register("user.joined", {"type": "object", "required": ["email"]})
    deleted = store.schemas.delete("user.joined", 2)
    assert deleted.deleted and store.schemas.versions("user.joined") == [1]
    assert store.schemas.get("user.joined", 2).deleted  # history stays readable
    store.append("user.joined", "u2", {"name": "bob"})  # validated by version 1 again
    assert [e.schema_version for e in store.events()] == [1, 1]
    store.schemas.delete("user.joined", 1)
    assert store.schemas.subjects() == []
    store.append("user.joined", "u3", {"anything": True})  # no live schema: not enforced
    with pytest.raises(asl.NotFound):
        store.schemas.delete("user.joined", 1)
    with pytest.raises(asl.NotFound):
        store.schemas.get("user.joined")


def test_append_enforces_the_schema_and_records_its_version(store):
    store.schemas.register("user.joined", USER_V1)
    ev = store.append("user.joined", "u1", {"name": "ann", "age": 30})
    assert ev.schema_version == 1
    with pytest.raises(asl.SchemaViolation) as caught:
        store.append("user.joined", "u2", {"name": "bob", "age": "thirty"})
    assert caught.value.path is not None and "age" in caught.value.path
    assert "thirty" in str(caught.value) or "integer" in str(caught.value)
    with pytest.raises(ValueError):  # SchemaViolation is a ValueError too
        store.append("user.joined", "u2", {"age": 3})
    other = store.append("other.type", "x", {"free": "form"})
    assert other.schema_version is None
    assert store.stats()["events"] == 2
    table = store.events().to_arrow()
    assert table.column("schema_version").to_pylist() == [1, None]


def batch(rows):
    return [{"event_type": t, "entity_id": e, "payload": p} for t, e, p in rows]


ROWS = [
    ("user.joined", "u1", {"name": "ann"}),
    ("note", "n1", {"x": 1}),
    ("user.joined", "u2", {"name": 5}),
    ("user.joined", "u3", {"name": "cy", "age": 1.5}),
    ("user.joined", "u4", {"name": "dee"}),
]


def test_a_batch_with_an_invalid_row_writes_nothing_and_names_the_row(store):
    store.schemas.register("user.joined", USER_V1)
    with pytest.raises(asl.SchemaViolation) as caught:
        store.append_batch(batch(ROWS))
    assert caught.value.row == 2 and "name" in caught.value.path
    assert store.stats()["events"] == 0


def test_a_batch_can_skip_or_return_its_invalid_rows(store):
    store.schemas.register("user.joined", USER_V1)
    res = store.append_batch(batch(ROWS), on_invalid="skip")
    assert (res.count, res.rejected, res.rejected_rows) == (3, 2, None)
    assert [e.entity_id for e in store.events()] == ["u1", "n1", "u4"]
    assert [e.schema_version for e in store.events()] == [1, None, 1]
    res = store.append_batch(batch(ROWS), on_invalid="return")
    frame = res.rejected_rows
    assert frame["row"].tolist() == [2, 3] and frame["entity_id"].tolist() == ["u2", "u3"]
    assert list(frame.columns) == ["row", "event_type", "entity_id", "payload", "path", "reason"]
    assert all(frame["reason"].str.len() > 0)
    res = store.append_batch(batch([ROWS[2]]), on_invalid="return")
    assert (res.count, res.rejected, res.first_sequence) == (0, 1, 0)
    with pytest.raises(asl.InvalidEvent, match="on_invalid"):
        store.append_batch(batch(ROWS), on_invalid="ignore")


def test_validate_reports_rows_paths_and_messages(store):
    store.schemas.register("user.joined", USER_V1)
    assert store.schemas.validate("user.joined", {"name": "ann"}) == []
    problems = store.schemas.validate("user.joined", [{"name": "ann"}, {"age": 2}, '{"name": 1}'])
    assert [p.row for p in problems] == [1, 2]
    import pandas as pd

    frame = pd.DataFrame({"payload": [{"name": "x" * 30}]})
    (problem,) = store.schemas.validate("user.joined", frame)
    assert problem.row == 0 and "name" in problem.path
    with pytest.raises(asl.NotFound):
        store.schemas.validate("nobody", {})


def test_upcasters_change_what_reads_see_not_what_is_stored(store):
    store.schemas.register("user.joined", {"type": "object", "required": ["name"]})
    store.append("user.joined", "u1", {"name": "Ann Lee"})
    split = {"type": "object", "required": ["first"]}
    store.schemas.register("user.joined", split, compatibility="NONE")
    store.append("user.joined", "u2", {"first": "Bob"})

    @store.schemas.upcaster("user.joined", 1)
    def split_name(payload):
        first, _, last = payload.pop("name").partition(" ")
        return {**payload, "first": first, "last": last}

    assert [e.payload for e in store.events()] == [
        {"first": "Ann", "last": "Lee"},
        {"first": "Bob"},
    ]
    assert store.state("u1") == {"first": "Ann", "last": "Lee"}
    assert store.states()["state"].tolist() == [{"first": "Ann", "last": "Lee"}, {"first": "Bob"}]
    first = next(iter(store.events()))
    assert store.get(first.event_id).payload == {"first": "Ann", "last": "Lee"}
    stored = store.sql("select payload->>'name' from events order by sequence").fetchall()
    assert stored == [("Ann Lee",), (None,)]  # the original bytes are kept


def test_the_registry_survives_reopen(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.schemas.register("user.joined", USER_V1)
        store.schemas.register("user.joined", USER_V2)
        store.schemas.set_compatibility(None, "FULL")
        store.schemas.set_compatibility("user.joined", "NONE")
        store.schemas.delete("user.joined", 2)
    with asl.open(path) as store:
        assert store.schemas.versions("user.joined") == [1]
        assert store.schemas.get("user.joined", 2).deleted
        assert store.schemas.compatibility() == "FULL"
        assert store.schemas.compatibility("user.joined") == "NONE"
        with pytest.raises(asl.SchemaViolation):
            store.append("user.joined", "u", {"age": 1})
        assert store.schemas.register("user.joined", USER_V2).version == 3
    with asl.open(path, read_only=True) as store:
        assert store.schemas.versions("user.joined") == [1, 3]
        with pytest.raises(asl.StorageError, match="read_only"):
            store.schemas.register("other", USER_V1)


def test_a_damaged_registry_is_corruption_unless_salvaged(tmp_path):
    path = tmp_path / "s.events"
    with asl.open(path) as store:
        store.schemas.register("a", USER_V1)
        store.schemas.register("b", USER_V1)
    log = path / "schemas" / "registry.log"
    data = bytearray(log.read_bytes())
    data[12] ^= 0xFF  # inside the first record's body
    log.write_bytes(bytes(data))
    with pytest.raises(asl.CorruptionError, match="registry"):
        asl.open(path)
    with asl.open(path, recovery="salvage") as store:
        assert store.schemas.subjects() == ["b"]
        assert any("registry.log" in p for p in store.recovery_problems)


REGISTERING_CHILD = textwrap.dedent(
    """
    import sys
    import allsource_lab as asl
    store = asl.open(sys.argv[1])
    store.schemas.set_compatibility(None, "NONE")
    n = 0
    while True:
        n += 1
        store.schemas.register("t", {"type": "object", "maxProperties": n})
        print(n, flush=True)
    """
)


def test_acknowledged_registrations_survive_kill_9(tmp_path):
    path = tmp_path / "s.events"
    for round_ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", REGISTERING_CHILD, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        acked = 0
        deadline = time.monotonic() + 60
        while acked < 20 + 10 * round_ and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked = int(line)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert acked >= 20
        with open_after_crash(path) as store:
            versions = store.schemas.versions("t")
            # every acknowledged registration is there, in order, once
            assert versions[:acked] == list(range(1, acked + 1))
            assert versions == list(range(1, len(versions) + 1))
            assert store.verify().ok
