"""to_pandas() of frames and batches: payloads as dicts, as text, or spread into columns."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import allsource_lab as asl

PAYLOADS = [
    {"amount": 42.5, "ship": {"city": "Oslo", "zip": "0150"}, "sku": "abc"},
    {"paid": True},
    {"amount": 7, "ship": {"city": "Bergen"}, "lines": [1, 2]},
    {},
    {"at": "2026-01-01T09:00:00Z", "day": "2026-01-01"},
]


def fill(store: asl.EventStore) -> None:
    """PAYLOADS, the first two sealed and the rest in the tail."""
    for i, payload in enumerate(PAYLOADS):
        store.append("order.changed", f"o{i % 2}", payload, metadata={"by": f"user{i}"})
        if i == 1:
            store.checkpoint()


def test_payload_and_metadata_are_the_events_dicts(store):
    fill(store)
    frame = store.events().to_pandas()
    events = list(store.events())
    assert frame["payload"].tolist() == [e.payload for e in events]
    assert frame["metadata"].tolist() == [e.metadata for e in events]
    assert frame["sequence"].tolist() == [1, 2, 3, 4, 5]


def test_json_text_keeps_the_stored_text(store):
    fill(store)
    frame = store.events().to_pandas(json="text")
    stored = store.sql("select payload::varchar from log").fetchall()
    assert frame["payload"].tolist() == [text for (text,) in stored]
    assert isinstance(frame["metadata"][0], str)


def test_columns_keep_their_order_whatever_the_json_mode(store):
    fill(store)
    expected = [f.name for f in store.events().to_arrow().schema]
    assert list(store.events().to_pandas().columns) == expected
    assert list(store.events().to_pandas(json="text").columns) == expected


def test_expand_payload_gives_one_column_per_field_with_na_where_missing(store):
    fill(store)
    frame = store.events().to_pandas(expand="payload")
    fields = [c for c in frame.columns if c.startswith("payload.")]
    assert sorted(fields) == sorted(
        [
            "payload.amount",
            "payload.ship.city",
            "payload.ship.zip",
            "payload.sku",
            "payload.paid",
            "payload.lines",
            "payload.at",
            "payload.day",
        ]
    )
    assert "payload" not in frame.columns
    # In place of the payload column: between entity's columns and metadata.
    names = list(frame.columns)
    assert names.index("recorded_at") < names.index(fields[0]) < names.index("metadata")
    for row, payload in zip(frame.to_dict("records"), PAYLOADS, strict=True):
        for field in fields:
            path = field.split(".")[1:]
            value: object = payload
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            got = row[field]
            if value is None:
                assert got is None or (isinstance(got, float) and math.isnan(got)), field
            elif isinstance(value, list):
                assert list(got) == value
            else:
                assert got == value, field


def test_expand_keeps_date_like_strings_as_strings(store):
    fill(store)
    frame = store.events().to_pandas(expand="payload")
    assert frame["payload.at"].iloc[4] == "2026-01-01T09:00:00Z"
    assert frame["payload.day"].iloc[4] == "2026-01-01"
    assert frame["payload.ship.zip"].iloc[0] == "0150"


def test_expand_copes_with_one_field_of_mixed_kinds(store):
    store.append("a", "x", {"v": 1})
    store.append("a", "x", {"v": "one"})
    store.append("a", "x", {"v": {"deep": 1}, "w": 2})
    frame = store.events().to_pandas(expand="payload")
    assert frame["payload.w"].isna().tolist() == [True, True, False]
    assert frame["payload.v"].tolist()[:2] == [1, "one"]


def test_expand_metadata_and_payload_together(store):
    fill(store)
    frame = store.events().to_pandas(expand=["payload", "metadata"])
    assert frame["metadata.by"].tolist() == [f"user{i}" for i in range(5)]
    assert "payload.amount" in frame.columns


def test_expand_of_empty_payloads_and_of_no_events(store):
    assert store.events().to_pandas(expand="payload").empty
    store.append("a", "x", {})
    frame = store.events().to_pandas(expand="payload")
    assert len(frame) == 1
    assert not [c for c in frame.columns if c.startswith("payload")]


def test_to_pandas_shows_payloads_upcast(store):
    store.schemas.register("user.joined", {"type": "object", "required": ["name"]})
    store.append("user.joined", "u1", {"name": "Ann Lee"})
    store.schemas.register("user.joined", {"type": "object"}, compatibility="NONE")

    @store.schemas.upcaster("user.joined", 1)
    def split_name(payload):
        first, _, last = payload.pop("name").partition(" ")
        return {**payload, "first": first, "last": last}

    assert store.events().to_pandas()["payload"].tolist() == [{"first": "Ann", "last": "Lee"}]
    wide = store.events().to_pandas(expand="payload")
    assert wide["payload.first"].tolist() == ["Ann"]
    assert "payload.name" not in wide.columns


def test_event_batch_to_pandas_matches_the_frame(store):
    fill(store)
    batch = store.feed.batch(0)
    frame = store.events()
    for options in ({}, {"json": "text"}, {"expand": "payload"}):
        pd.testing.assert_frame_equal(batch.to_pandas(**options), frame.to_pandas(**options))


@pytest.mark.parametrize(
    "options", [{"json": "dicts"}, {"expand": "state"}, {"expand": ["payload", "x"]}]
)
def test_bad_options_are_invalid_arguments(store, options):
    fill(store)
    with pytest.raises(asl.InvalidArgument, match=r"json must be|expand takes"):
        store.events().to_pandas(**options)
