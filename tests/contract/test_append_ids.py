"""Generated event ids of single appends: time-ordered version 7 UUIDs whatever the clock does.

The append path takes the generator's same-millisecond step itself and calls the
generator only on a new millisecond; these tests drive it with a clock that repeats,
jumps and steps back, and with batches in between (which move the generator on too).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab._store import log as log_module

_START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


class _Clock:
    """A wall clock in nanoseconds that moves only when told to."""

    def __init__(self) -> None:
        self.now = _START_NS

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    fake = _Clock()
    monkeypatch.setattr(log_module, "_time_ns", fake)
    yield fake


def _id_ms(event: asl.Event) -> int:
    return int.from_bytes(event.event_id_bytes[:6], "big")


# Clock steps between appends, in microseconds: repeats (0), small and large moves forward
# (within and across milliseconds), and steps back.
_steps = st.lists(
    st.one_of(
        st.just(0),
        st.integers(1, 999),
        st.integers(1_000, 5_000_000),
        st.integers(-5_000_000, -1),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(steps=_steps)
def test_single_append_ids_rise_and_carry_the_recorded_millisecond(steps: list[int]) -> None:
    clock = _Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_module, "_time_ns", clock)
        store = asl.open()
        events = []
        for step in steps:
            clock.now += step * 1000
            events.append(store.append("t", "e", {"i": len(events)}))
        store.close()
    ids = [e.event_id_bytes for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for event in events:
        assert event.event_id.version == 7
        assert event.event_id.variant == uuid.RFC_4122
        # recorded_at never goes back, so the id's millisecond is the recorded one.
        assert _id_ms(event) == event.recorded_at_us // 1000


def test_ids_rise_across_batches_and_single_appends_in_one_millisecond(
    store: asl.EventStore, clock: _Clock
) -> None:
    got = []
    for round_ in range(5):
        got.append(store.append("t", "e", {"r": round_}).event_id_bytes)
        store.append_batch([{"event_type": "t", "entity_id": "b", "payload": {"r": round_}}])
        got.append(store.append("t", "e", {"r": round_}).event_id_bytes)
        clock.now += 300_000  # 0.3 ms: a new millisecond every few rounds
    stored = [e.event_id_bytes for e in store.events()]
    assert stored == sorted(stored) and len(set(stored)) == len(stored)
    assert set(got) <= set(stored)
