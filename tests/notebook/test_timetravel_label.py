"""The time-travel widget's label names the versions whose state it shows, on both axes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

import allsource_lab as asl
from allsource_lab.notebook import widgets
from allsource_lab.notebook.widgets.timetravel import TimeTravel


@pytest.fixture
def store() -> Iterator[asl.EventStore]:
    store = asl.open()
    yield store
    store.close()


def mark(version: int) -> dict[str, bool]:
    """A payload that leaves a trace of its version in the state: key ``v<version>``."""
    return {f"v{version}": True}


def labelled_versions(travel: TimeTravel) -> tuple[set[int], int]:
    """The versions the label says the state includes, and the newest it names."""
    found = re.search(r"state with (.+?) of (\d+)<br>", travel._where.value)
    assert found, travel._where.value
    versions: set[int] = set()
    for run in found.group(1).split(", "):
        first, _, last = run.partition("–")
        versions.update(range(int(first[1:]), int((last or first)[1:]) + 1))
    return versions, int(found.group(2))


def versions_in_state(travel: TimeTravel) -> set[int]:
    return {int(key[1:]) for key in travel.state}


def test_a_batch_recorded_as_one_moment_is_labelled_with_all_its_versions(store):
    store.append_batch(
        [
            {"event_type": "set", "entity_id": "e", "payload": mark(v), "timestamp": t}
            for v, t in zip(
                range(1, 5),
                [f"2026-01-01T00:0{m}:00Z" for m in range(4)],
                strict=True,
            )
        ]
    )
    travel = widgets.timetravel(store, "e")
    travel.position = 1  # event time: the moment of v2
    assert travel.version == 2 and labelled_versions(travel) == ({1, 2}, 4)
    travel.use_recorded_time = True  # one moment: the whole batch, state after v4
    assert travel.moments == 1 and travel.version == 2
    assert versions_in_state(travel) == {1, 2, 3, 4}
    assert labelled_versions(travel) == ({1, 2, 3, 4}, 4)
    assert "state with v1–v4 of 4" in travel._where.value
    assert travel.shown_versions == [1, 2, 3, 4]


def test_every_moment_on_both_axes_is_labelled_with_the_state_it_shows(store):
    store.append("set", "e", mark(1), timestamp="2026-01-01T00:10:00Z")
    store.append("set", "e", mark(2), timestamp="2026-01-01T00:30:00Z")
    store.append("set", "e", mark(3), timestamp="2026-01-01T00:20:00Z")  # late
    store.append_batch(
        [
            {"event_type": "set", "entity_id": "e", "payload": mark(v), "timestamp": t}
            for v, t in ((4, "2026-01-01T00:40:00Z"), (5, "2026-01-01T00:05:00Z"))  # 5 late
        ]
    )
    travel = widgets.timetravel(store, "e")
    seen = {}
    for recorded in (False, True):
        travel.use_recorded_time = recorded
        for position in range(travel.moments):
            travel.position = position
            labelled, newest = labelled_versions(travel)
            assert newest == 5
            assert labelled == versions_in_state(travel) == set(travel.shown_versions)
            seen[recorded, position] = labelled
    # Event time: 00:05 (v5), 00:10 (v1), 00:20 (v3), 00:30 (v2), 00:40 (v4).
    assert [seen[False, p] for p in range(5)] == [
        {5},
        {1, 5},
        {1, 3, 5},
        {1, 2, 3, 5},
        {1, 2, 3, 4, 5},
    ]
    # Recorded time: v1, v2, v3, then the batch of v4 and v5 as one moment.
    assert [seen[True, p] for p in range(4)] == [{1}, {1, 2}, {1, 2, 3}, {1, 2, 3, 4, 5}]
    travel.use_recorded_time = False
    travel.position = 2
    assert "state with v1, v3, v5 of 5" in travel._where.value
