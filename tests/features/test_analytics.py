"""store.analytics against brute force on random histories, and its errors."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
TYPES = ["visit", "cart", "buy"]

histories = st.lists(
    st.tuples(
        st.integers(0, 3600), st.sampled_from(TYPES), st.sampled_from(["u1", "u2", "u3", "u4"])
    ),
    max_size=40,
)


def build(rows: list[tuple[int, str, str]]) -> tuple[asl.EventStore, list[tuple[int, str, str]]]:
    store = asl.open()
    for seconds, kind, who in rows:
        store.append(kind, who, {}, timestamp=T0 + dt.timedelta(seconds=seconds))
    return store, rows


def funnel_reference(rows: list[tuple[int, str, str]], steps: list[str], within: int) -> list[int]:
    reached = [0] * len(steps)
    for who in {r[2] for r in rows}:
        mine = sorted((t, k) for t, k, w in rows if w == who)
        entry = [t for t, k in mine if k == steps[0]]
        if not entry:
            continue
        start = at = min(entry)
        reached[0] += 1
        for i, step in enumerate(steps[1:], 1):
            later = [t for t, k in mine if k == step and at < t <= start + within]
            if not later:
                break
            at = min(later)
            reached[i] += 1
    return reached


@settings(max_examples=60, deadline=None)
@given(histories, st.sampled_from([60, 600, 3600]))
def test_funnel_equals_brute_force(rows, within):
    store, _ = build(rows)
    frame = store.analytics.funnel(TYPES, within=f"{within}s")
    want = funnel_reference(rows, TYPES, within)
    assert frame["entities"].tolist() == want
    assert frame["event_type"].tolist() == TYPES
    if want[0]:
        assert frame["conversion"].tolist() == pytest.approx([w / want[0] for w in want])


@settings(max_examples=60, deadline=None)
@given(histories, st.sampled_from([30, 300]))
def test_correlation_equals_brute_force(rows, within):
    store, _ = build(rows)
    delays = []
    visits = [(t, w) for t, k, w in rows if k == "visit"]
    for t, who in visits:
        after = [u for u, k, w in rows if w == who and k == "buy" and u > t]
        if after and min(after) - t <= within:
            delays.append(min(after) - t)
    row = store.analytics.correlation("visit", "buy", within=f"{within}s").iloc[0]
    assert row["a_events"] == len(visits) and row["followed"] == len(delays)
    if delays:
        assert row["rate"] == pytest.approx(len(delays) / len(visits))
        assert row["median_delay_s"] == pytest.approx(statistics.median(delays))
        assert row["mean_delay_s"] == pytest.approx(statistics.mean(delays))
    else:
        assert math.isnan(row["median_delay_s"])


def test_summary_and_frequency():
    store, _ = build([(0, "visit", "u1"), (1800, "visit", "u2"), (3600, "buy", "u1")])
    summary = store.analytics.summary().set_index("event_type")
    assert summary.loc["visit", "count"] == 2 and summary.loc["visit", "entities"] == 2
    assert summary.loc["visit", "per_hour"] == pytest.approx(4.0)
    assert summary.loc["buy", "per_hour"] == 1.0
    assert store.analytics.summary("u2")["event_type"].tolist() == ["visit"]
    assert store.analytics.frequency("visit", bucket="10m")["count"].tolist() == [1, 0, 0, 1]
    by_type = store.analytics.frequency(bucket="1h")
    assert by_type[["event_type", "count"]].values.tolist() == [
        ["buy", 0], ["visit", 2], ["buy", 1], ["visit", 0]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda a: a.funnel("visit", within="1h"), "list of event types"),
        (lambda a: a.funnel(["visit", 3], within="1h"), "each step"),
        (lambda a: a.funnel(["visit"], within="an hour"), "'30s'"),
        (lambda a: a.correlation("", "buy", within="1h"), "event_a"),
        (lambda a: a.frequency(bucket="weekly"), "'1h'"),
        (lambda a: a.summary(entity_id=5), "entity_id"),
    ],
)
def test_bad_arguments_are_clear(call, says):
    with pytest.raises(ValueError, match=says):
        call(asl.open().analytics)
