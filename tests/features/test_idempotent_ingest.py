"""``append_batch(..., idempotency="content")``: the same rows sent again are stored once."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest

import allsource_lab as asl
from allsource_lab.cli import main


def rows(n: int, **extra: object) -> list[dict[str, object]]:
    return [
        {"event_type": "click", "entity_id": f"u{i % 3}", "payload": {"i": i}, **extra}
        for i in range(n)
    ]


def test_a_batch_sent_twice_with_content_ids_is_stored_once(store):
    first = store.append_batch(rows(5), idempotency="content")
    again = store.append_batch(rows(5), idempotency="content")
    assert (first.count, first.duplicates) == (5, 0)
    assert (again.count, again.duplicates) == (0, 5)
    assert (again.first_sequence, again.last_sequence) == (1, 5)
    assert store.stats()["events"] == 5


def test_without_idempotency_the_same_batch_is_stored_twice(store):
    store.append_batch(rows(5))
    assert store.append_batch(rows(5)).count == 5
    assert store.stats()["events"] == 10


def test_content_ids_are_recognised_after_reopening(tmp_path):
    with asl.open(tmp_path / "s.events") as store:
        store.append_batch(rows(4), idempotency="content")
    with asl.open(tmp_path / "s.events") as reopened:
        assert reopened.append_batch(rows(4), idempotency="content").duplicates == 4
        assert reopened.stats()["events"] == 4


def test_only_the_new_rows_of_a_grown_batch_are_written(store):
    store.append_batch(rows(3), idempotency="content")
    grown = store.append_batch(list(reversed(rows(5))), idempotency="content")
    assert (grown.count, grown.duplicates) == (2, 3)
    assert sorted(e.payload["i"] for e in store.events()) == [0, 1, 2, 3, 4]


def test_identical_rows_in_one_batch_are_two_events_stored_once(store):
    twice = rows(1) * 2
    assert store.append_batch(twice, idempotency="content").count == 2
    assert store.append_batch(twice, idempotency="content").count == 0
    thrice = store.append_batch(rows(1) * 3, idempotency="content")
    assert (thrice.count, thrice.duplicates) == (1, 2)
    assert store.stats()["events"] == 3


@pytest.mark.parametrize(
    "change",
    [
        {"event_type": "view"},
        {"entity_id": "other"},
        {"payload": {"i": 99}},
        {"metadata": {"by": "me"}},
        {"timestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    ],
)
def test_a_change_to_any_field_is_new_content(store, change):
    base = {"event_type": "click", "entity_id": "u", "payload": {"i": 1}}
    store.append_batch([base], idempotency="content")
    assert store.append_batch([{**base, **change}], idempotency="content").count == 1


def test_a_dataframe_and_an_arrow_table_of_the_same_rows_give_the_same_ids(store):
    frame = pd.DataFrame(
        {
            "event_type": ["a", "a"],
            "entity_id": ["x", "y"],
            "payload": ['{"n":1}', '{"n":2}'],
            "timestamp": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]),
        }
    )
    store.append_batch(frame, idempotency="content")
    import pyarrow as pa

    again = store.append_batch(pa.Table.from_pandas(frame), idempotency="content")
    assert again.duplicates == 2


def test_derived_ids_are_uuid_version_8(store):
    store.append_batch(rows(3), idempotency="content")
    ids = [e.event_id for e in store.events()]
    assert {i.version for i in ids} == {8} and {i.variant for i in ids} == {uuid.RFC_4122}
    assert len(set(ids)) == 3


def test_rows_that_bring_their_own_id_keep_it(store):
    own = uuid.uuid4()
    batch = [{**rows(1)[0], "event_id": str(own)}, *rows(2)[1:]]
    store.append_batch(batch, idempotency="content")
    assert next(iter(store.events())).event_id == own
    assert store.append_batch(batch, idempotency="content").duplicates == 2


def test_a_stored_id_with_other_content_is_refused_and_nothing_is_written(store):
    own = str(uuid.uuid4())
    store.append_batch([{**rows(1)[0], "event_id": own}])
    changed = [*rows(3)[1:], {**rows(1)[0], "payload": {"i": -1}, "event_id": own}]
    with pytest.raises(asl.InvalidEvent, match=f"row 2, field 'event_id': event_id {own} is"):
        store.append_batch(changed, idempotency="content")
    assert store.stats()["events"] == 1


def test_an_unknown_idempotency_mode_is_refused(store):
    with pytest.raises(asl.InvalidArgument, match="idempotency must be None or 'content'"):
        store.append_batch(rows(1), idempotency="rows")
    assert store.stats()["events"] == 0


def test_the_cli_ingesting_a_file_twice_stores_it_once(tmp_path, capsys):
    source = tmp_path / "clicks.csv"
    source.write_text("entity_id,event_type,n\na,t,1\na,t,1\nb,t,2\n")
    store = str(tmp_path / "s.events")
    assert main(["ingest", store, str(source), "--quiet"]) == 0
    assert main(["ingest", store, str(source), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "appended 0 events" in out and "3 already there" in out
    with asl.open(store, read_only=True) as opened:
        assert opened.stats()["events"] == 3


def test_retries_spread_over_a_sealed_segment_and_the_tail_are_recognised(store):
    store.append_batch(rows(4), idempotency="content")
    store.checkpoint()
    store.append_batch(rows(8), idempotency="content")  # 4 retries from the segment
    again = store.append_batch(list(reversed(rows(8))), idempotency="content")
    assert (again.count, again.duplicates) == (0, 8)
    assert store.stats()["events"] == 8


def test_a_retry_whose_json_is_written_differently_is_still_a_retry(store):
    own = str(uuid.uuid4())
    store.append_batch([{**rows(1)[0], "payload": '{"i":0,"j":[1,2]}', "event_id": own}])
    spaced = {**rows(1)[0], "payload": '{"j": [1, 2], "i": 0}', "event_id": own}
    assert store.append_batch([spaced]).duplicates == 1
    changed = {**spaced, "metadata": {"by": "someone"}}
    with pytest.raises(asl.InvalidEvent, match="already stored"):
        store.append_batch([changed])
    assert store.stats()["events"] == 1


def test_the_cli_takes_ids_from_id_col_and_refuses_a_bad_one_writing_nothing(tmp_path, capsys):
    key = str(uuid.uuid4())
    source = tmp_path / "rows.csv"
    source.write_text(f"key,entity_id,event_type,n\n{key},a,t,1\nnope,b,t,2\n")
    store = str(tmp_path / "s.events")
    assert main(["ingest", store, str(source), "--id-col", "key", "--batch-size", "1"]) == 1
    assert "row 1, field 'key': 'nope' is not a UUID" in capsys.readouterr().err
    source.write_text(f"key,entity_id,event_type,n\n{key},a,t,1\n")
    assert main(["ingest", store, str(source), "--id-col", "key", "--quiet"]) == 0
    with asl.open(store, read_only=True) as opened:
        (event,) = opened.events()
        assert (str(event.event_id), event.payload) == (key, {"n": 1})
