"""store.window against a brute-force Python reference, and its errors."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
T0_US = int(T0.timestamp() * 1_000_000)
MIN = 60_000_000


def build(rows: list[tuple[int, str, str, Any]]) -> asl.EventStore:
    """rows: (minute offset in seconds, type, entity, amount) appended in the given order."""
    store = asl.open()
    for seconds, kind, entity, amount in rows:
        payload = {} if amount is None else {"amount": amount, "sku": f"s{int(amount) % 3}"}
        store.append(kind, entity, payload, timestamp=T0 + dt.timedelta(seconds=seconds))
    return store


def us(event: asl.Event) -> int:
    return (event.timestamp - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(
        microseconds=1
    )


def key_of(event: asl.Event, key: str) -> Any:
    if key in ("entity_id", "event_type"):
        return getattr(event, key)
    value = event.payload.get(key.split(".", 1)[1])
    return None if value is None else str(value)


def reference(
    events: list[asl.Event], kind: str, size: int, step: int, gap: int, by: list[str]
) -> dict[tuple[int, int, tuple[Any, ...]], list[asl.Event]]:
    """(start, end, keys) -> events, by the rules in allsource_lab._query.windows."""
    out: dict[tuple[int, int, tuple[Any, ...]], list[asl.Event]] = defaultdict(list)
    if kind == "session":
        groups: dict[tuple[Any, ...], list[asl.Event]] = defaultdict(list)
        for e in events:
            groups[tuple(key_of(e, k) for k in by)].append(e)
        for keys, group in groups.items():
            group.sort(key=lambda e: (us(e), e.sequence))
            sessions: list[list[asl.Event]] = []
            for e in group:
                if sessions and us(e) - us(sessions[-1][-1]) <= gap:
                    sessions[-1].append(e)
                else:
                    sessions.append([e])
            for s in sessions:
                out[(us(s[0]), us(s[-1]) + gap, keys)] = s
        return out
    for e in events:
        keys = tuple(key_of(e, k) for k in by)
        start = (us(e) // step) * step
        while start > us(e) - size:
            out[(start, start + size, keys)].append(e)
            start -= step
    return out


def amounts(group: list[asl.Event]) -> list[float]:
    return [float(e.payload["amount"]) for e in group if "amount" in e.payload]


def check(store: asl.EventStore, kind: str, size: int, step: int, gap: int, by: list[str]) -> None:
    events = [e for e in store.events()]
    want = reference(events, kind, size, step, gap, by)
    frame = store.window(
        every=f"{size // 1_000_000}s",
        kind=kind,
        hop=f"{step // 1_000_000}s" if kind == "hopping" else None,
        gap=f"{gap // 1_000_000}s" if kind == "session" else None,
        by=by or None,
        agg={"*": "count", "payload.amount": ["sum", "max", "p50"], "entity_id": "count_distinct"},
    )
    got = {}
    for row in frame.to_dict("records"):
        start = int(row["window_start"].timestamp() * 1_000_000)
        end = int(row["window_end"].timestamp() * 1_000_000)
        got[(start, end, tuple(row[k] for k in by))] = row
    assert set(got) == set(want)
    for window, group in want.items():
        row = got[window]
        values = amounts(group)
        assert row["count"] == len(group)
        assert row["entity_id_count_distinct"] == len({e.entity_id for e in group})
        if values:
            assert math.isclose(row["payload.amount_sum"], sum(values))
            assert row["payload.amount_max"] == max(values)
            assert math.isclose(row["payload.amount_p50"], statistics.median(values))
        else:
            assert math.isnan(row["payload.amount_sum"])
    starts = [
        (r["window_start"], tuple((r[k] is None, str(r[k])) for k in by))  # missing keys last
        for r in frame.to_dict("records")
    ]
    assert starts == sorted(starts)


rows = st.lists(
    st.tuples(
        st.integers(-300, 3000),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["e1", "e2", "e3"]),
        st.one_of(st.none(), st.integers(-5, 50)),
    ),
    min_size=1,
    max_size=40,
)
keys = st.sampled_from([[], ["entity_id"], ["event_type", "payload.sku"]])


@settings(max_examples=40, deadline=None)
@given(rows, st.sampled_from([60, 90, 600]), keys)
def test_tumbling_equals_brute_force(data, every, by):
    check(build(data), "tumbling", every * 1_000_000, every * 1_000_000, 0, by)


@settings(max_examples=40, deadline=None)
@given(rows, st.sampled_from([(120, 30), (300, 120), (60, 60), (90, 40)]), keys)
def test_hopping_equals_brute_force(data, sizes, by):
    every, hop = sizes
    check(build(data), "hopping", every * 1_000_000, hop * 1_000_000, 0, by)


@settings(max_examples=40, deadline=None)
@given(rows, st.sampled_from([1, 60, 200]), keys)
def test_sessions_equal_brute_force(data, gap, by):
    check(build(data), "session", 0, 0, gap * 1_000_000, by)


def test_fill_adds_empty_windows_with_zero_counts_and_since_until_bound_them():
    store = build([(0, "a", "e1", 1), (250, "a", "e1", 2), (260, "b", "e2", 3)])
    frame = store.window(every="1m", fill=True)
    assert frame["count"].tolist() == [1, 0, 0, 0, 2]
    assert frame["window_end"].tolist()[0] == frame["window_start"].tolist()[1]
    bounded = store.window(
        every="1m",
        fill=True,
        since=T0 - dt.timedelta(minutes=2),
        until=T0 + dt.timedelta(minutes=3),
    )
    assert bounded["count"].tolist() == [0, 0, 1, 0, 0]
    keyed = store.window(every="2m", fill=True, by="entity_id", agg={"payload.amount": "sum"})
    assert keyed["entity_id"].tolist() == ["e1", "e2", "e1", "e2", "e1", "e2"]
    assert keyed["payload.amount_sum"].isna().tolist() == [False, True, True, True, False, False]


def test_event_type_as_of_and_known_at_restrict_the_events():
    store = build([(0, "a", "e1", 1), (30, "b", "e1", 2), (70, "a", "e2", 3)])
    assert store.window("a", every="1h")["count"].tolist() == [2]
    assert store.window(["a", "b"], every="1h")["count"].tolist() == [3]
    assert store.window(every="1h", as_of=T0 + dt.timedelta(seconds=30))["count"].tolist() == [2]
    known = next(iter(store.events())).recorded_at
    assert store.window(every="1h", known_at=known)["count"].tolist() == [1]
    late = store.append("a", "e3", {}, timestamp=T0 - dt.timedelta(hours=2))
    assert late.sequence == 4
    assert store.window(every="1h")["count"].tolist() == [1, 3]
    assert store.window(every="1h", known_at=known)["count"].tolist() == [1]


def test_an_empty_result_has_the_columns():
    frame = asl.open().window(every="5m", by="entity_id", agg={"payload.x": "avg"})
    assert list(frame.columns) == ["window_start", "window_end", "entity_id", "payload.x_avg"]
    assert frame.empty


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"every": "5 minutes"}, "'30s', '5m'"),
        ({"every": "0s"}, "positive"),
        ({"every": 5}, "timedelta"),
        ({"kind": "sliding"}, "tumbling"),
        ({"kind": "hopping"}, "needs hop"),
        ({"kind": "session"}, "needs gap"),
        ({"agg": {"payload.x": "total"}}, "unknown aggregate 'total'"),
        ({"agg": {"*": "sum"}}, "only 'count'"),
        ({"agg": {"entity_id": "avg"}}, "makes no sense"),
        ({"agg": {}}, "agg must be"),
        ({"by": "payload.a b"}, "path like 'payload.sku'"),
        ({"by": "timestamp"}, "path like"),
        ({"by": ["entity_id", "entity_id"]}, "twice"),
        ({"event_type": 3}, "event_type must be"),
    ],
)
def test_bad_arguments_name_the_accepted_forms(kwargs, says):
    store = build([(0, "a", "e1", 1)])
    with pytest.raises(ValueError, match=says):
        store.window(**kwargs)


def test_a_naive_time_is_refused():
    with pytest.raises(asl.InvalidEvent, match="since"):
        asl.open().window(since=dt.datetime(2026, 1, 1))
