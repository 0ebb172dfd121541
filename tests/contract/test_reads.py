"""The minimum reads: events() filters and paging, get()."""

from __future__ import annotations

import datetime as dt

import pytest

import allsource_lab as asl

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def filled(store):
    for i in range(30):
        store.append(
            "even" if i % 2 == 0 else "odd",
            f"e{i % 3}",
            {"i": i},
            timestamp=T0 + dt.timedelta(minutes=i),
        )
        if i == 14:
            store.checkpoint()  # half in a segment, half in the tail
    return store


def test_filters_combine_and_results_are_in_sequence_order(filled):
    got = [e.payload["i"] for e in filled.events(entity_id="e1", event_type="odd")]
    assert got == [1, 7, 13, 19, 25]
    frame = filled.events(since=T0 + dt.timedelta(minutes=10), until=T0 + dt.timedelta(minutes=13))
    assert [e.payload["i"] for e in frame] == [10, 11, 12]
    assert [e.sequence for e in filled.events(after=27)] == [28, 29, 30]
    assert [e.sequence for e in filled.events(reverse=True, limit=2)] == [30, 29]


def test_paging_with_next_cursor_visits_every_event_once(filled):
    seen = []
    after = None
    while True:
        page = filled.events(after=after, limit=7)
        seen.extend(e.sequence for e in page)
        after = page.next_cursor
        if after is None:
            break
    assert seen == list(range(1, 31))


def test_event_frame_is_lazy_and_converts(filled):
    frame = filled.events(entity_id="e0")
    assert frame._positions is None and frame._table is None  # nothing selected yet
    assert len(frame) == 10
    df = frame.to_pandas()
    assert list(df.columns)[:3] == ["sequence", "event_id", "event_type"]
    assert frame.to_arrow().schema.field("timestamp").type.tz == "UTC"
    assert "EventFrame: 10 events" in repr(frame)
    assert "showing 10 of 10" in frame._repr_html_()


def test_get_finds_sealed_and_tail_events(filled):
    for e in filled.events():
        assert filled.get(e.event_id) == e


def test_bad_query_arguments_are_invalid_event(filled):
    with pytest.raises(asl.InvalidEvent):
        filled.events(limit=-1)
    with pytest.raises(asl.InvalidEvent):
        filled.events(since=dt.datetime(2020, 1, 1))


def test_reads_between_single_appends_stay_right_as_tail_chunks_merge(store_factory):
    store = store_factory(checkpoint_every_events=150)
    want: dict[str, list[int]] = {}
    for i in range(400):  # a read after each append: one tail chunk each, merged past 64
        entity = f"e{i % 7}"
        store.append("t", entity, {"i": i})
        want.setdefault(entity, []).append(i)
        got = [e.payload["i"] for e in store.events(entity_id=entity)]
        assert got == want[entity]
    assert store.stats()["segments"] == 2
    for entity, values in want.items():
        assert [e.version for e in store.events(entity_id=entity)] == list(
            range(1, len(values) + 1)
        )
    assert len(store.events(event_type="t")) == 400


def test_making_events_leaves_the_garbage_collector_as_it_was(filled, monkeypatch):
    import gc

    from allsource_lab import eventframe as frame

    seen: list[bool] = []
    real = frame._events_from_table

    def spy(table):
        seen.append(gc.isenabled())
        return real(table)

    monkeypatch.setattr(frame, "_events_from_table", spy)
    assert gc.isenabled()
    assert len(list(filled.events(limit=5))) == 5
    assert seen == [False] and gc.isenabled()  # paused while building, then back on
    gc.disable()
    try:
        list(filled.events(limit=5))
        assert seen[-1] is False and not gc.isenabled()  # the caller's pause is kept
    finally:
        gc.enable()

    def broken(table):
        raise RuntimeError("broken")

    monkeypatch.setattr(frame, "_events_from_table", broken)
    with pytest.raises(RuntimeError):
        list(filled.events(limit=5))
    assert gc.isenabled()
