"""Garbage in to every read: ``events``, ``state``, ``states``, ``get``, ``window``,
``sql`` and ``store.analytics`` raise only their documented errors and never change the
store; hostile text (quotes, ``'; DROP TABLE events; --``, backslashes, NUL) is data to
every SQL path, never SQL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

import allsource_lab as asl
from tests.fuzzing.test_fuzz_inputs import (
    FUZZ,
    SLOW_FUZZ,
    assert_documented,
    fingerprint,
    identifiers,
    nasty_text,
    same,
    timestamps,
    versions,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ENTITIES = ["order-1", "order-2", "é-3"]
TYPES = ["order.placed", "order.paid", "order.shipped"]


def _fill(store: asl.EventStore) -> None:
    for i in range(30):
        store.append(
            TYPES[i % 3],
            ENTITIES[i % 3 if i < 20 else 0],
            {"n": i, "amount": i * 1.5, "sku": f"s{i % 4}", "tier": {"name": "gold"}},
            timestamp=T0 + dt.timedelta(minutes=7 * i),
        )
    store.snapshot("order-1")


@pytest.fixture(scope="module", params=["memory", "folder"])
def read_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[asl.EventStore]:
    path = None if request.param == "memory" else tmp_path_factory.mktemp("reads") / "s.events"
    store = asl.open(path, checkpoint_every_events=12)
    _fill(store)
    yield store
    store.close()


def read_only(
    store: asl.EventStore, call: Callable[[], Any], allowed: tuple[type[BaseException], ...]
) -> Any:
    """Run a read; it may fail only with ``allowed``, and never changes the store."""
    before = fingerprint(store)
    try:
        result = call()
    except Exception as exc:
        assert_documented(exc, allowed)
        result = None
    assert same(before, fingerprint(store))
    return result


def good_or(
    good: st.SearchStrategy[Any], garbage: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Mostly a sensible value, garbage one time in three."""
    return st.integers(0, 2).flatmap(lambda k: garbage if k == 0 else good)


times = good_or(
    st.one_of(
        st.none(),
        st.integers(-5, 300).map(lambda m: T0 + dt.timedelta(minutes=m)),
        st.integers(-5, 300).map(lambda m: (T0 + dt.timedelta(minutes=m)).isoformat()),
    ),
    timestamps,
)
entity_args = good_or(st.one_of(st.none(), st.sampled_from([*ENTITIES, "nobody"])), identifiers)
type_args = good_or(st.one_of(st.none(), st.sampled_from([*TYPES, "never"])), identifiers)
counts = good_or(st.one_of(st.none(), st.integers(0, 40)), st.one_of(versions, st.integers()))


@st.composite
def event_queries(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "entity_id": draw(entity_args),
        "event_type": draw(type_args),
        "since": draw(times),
        "until": draw(times),
        "as_of": draw(times),
        "known_at": draw(st.one_of(st.none(), timestamps)),
        "after": draw(counts),
        "limit": draw(counts),
        "reverse": draw(
            good_or(
                st.booleans(),
                st.one_of(
                    st.none(),
                    st.integers(),
                    st.text(max_size=2),
                    st.lists(st.integers(), max_size=1),
                ),
            )
        ),
    }


def check_events(store: asl.EventStore, query: dict[str, Any]) -> None:
    def run() -> Any:
        frame = store.events(**query)
        return frame, len(frame), frame.to_arrow(), frame.next_cursor

    result = read_only(store, run, (asl.InvalidEvent,))
    if result is None:
        return
    _, n, table, _ = result
    assert table.num_rows == n
    rows = table.to_pylist()
    seqs = [r["sequence"] for r in rows]
    assert seqs == sorted(seqs, reverse=bool(query["reverse"]))
    for r in rows:
        if query["entity_id"] is not None:
            assert r["entity_id"] == query["entity_id"]
        if query["event_type"] is not None:
            assert r["event_type"] == query["event_type"]
        if query["after"] is not None:
            assert r["sequence"] > query["after"]
    if query["limit"] is not None:
        assert n <= query["limit"]


def test_events_with_fuzzed_filters_raise_only_invalid_event(read_store):
    @FUZZ
    @given(event_queries())
    def run(query: dict[str, Any]) -> None:
        check_events(read_store, query)

    run()


@pytest.mark.slow
def test_events_with_fuzzed_filters_raise_only_invalid_event_long(read_store):
    @SLOW_FUZZ
    @given(event_queries())
    def run(query: dict[str, Any]) -> None:
        check_events(read_store, query)

    run()


def test_state_states_and_get_with_fuzzed_arguments(read_store):
    known = [e.event_id for e in read_store.events(limit=3)]
    ids = good_or(
        st.one_of(st.sampled_from(known), st.sampled_from(known).map(str), st.uuids()),
        st.one_of(identifiers, st.binary(min_size=16, max_size=16)),
    )

    @FUZZ
    @given(
        good_or(st.sampled_from([*ENTITIES, "nobody"]), identifiers),
        type_args,
        times,
        st.one_of(st.none(), times),
        ids,
    )
    def run(entity: Any, kind: Any, as_of: Any, known_at: Any, event_id: Any) -> None:
        allowed = (asl.InvalidEvent, asl.NotFound)
        state = read_only(
            read_store, lambda: read_store.state(entity, as_of=as_of, known_at=known_at), allowed
        )
        assert state is None or isinstance(state, dict)
        frame = read_only(
            read_store,
            lambda: read_store.states(event_type=kind, as_of=as_of, known_at=known_at),
            (asl.InvalidEvent,),
        )
        if frame is not None and isinstance(entity, str) and state is not None and kind is None:
            row = frame[frame["entity_id"] == entity]
            assert row["state"].tolist() == [state]
        event = read_only(read_store, lambda: read_store.get(event_id), allowed)
        assert event is None or event.event_id in known

    run()


durations = good_or(
    st.sampled_from(["1m", "30s", "1h", "7m", dt.timedelta(minutes=5)]),
    st.one_of(
        nasty_text,
        st.integers(),
        st.floats(),
        st.sampled_from(["0s", "-1m", "9" * 400 + "s", "99999999999999w", "1us", "0.5us", "1e3s"]),
        st.just(dt.timedelta.max),
        st.just(dt.timedelta(0)),
    ),
)
keys = good_or(
    st.one_of(
        st.none(),
        st.sampled_from(["entity_id", "event_type", "payload.sku", "payload.tier.name"]),
        st.just(["entity_id", "payload.sku"]),
    ),
    st.one_of(
        identifiers,
        st.sampled_from(
            ["payload.a'); drop table events; --", "payload", "payload..x", "payload.é"]
        ),
        st.just(["entity_id", "entity_id"]),
    ),
)
aggs = good_or(
    st.one_of(
        st.none(),
        st.just({"*": "count"}),
        st.just({"payload.amount": ["sum", "avg", "p95"], "entity_id": "count_distinct"}),
    ),
    st.one_of(
        st.dictionaries(
            st.one_of(
                st.sampled_from(["*", "payload.amount", "entity_id"]),
                identifiers.filter(lambda v: not isinstance(v, list | dict)),
            ),
            st.one_of(
                st.sampled_from(["sum", "p101", "p99.5", "count", "stddev", "median"]),
                identifiers,
                st.lists(nasty_text, max_size=2),
            ),
            max_size=2,
        ),
        identifiers,
    ),
)


@st.composite
def window_calls(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event_type": draw(
            good_or(st.one_of(st.none(), st.sampled_from(TYPES), st.just(TYPES[:2])), identifiers)
        ),
        "every": draw(durations),
        "kind": draw(good_or(st.sampled_from(["tumbling", "hopping", "session"]), identifiers)),
        "hop": draw(st.one_of(st.none(), durations)),
        "gap": draw(st.one_of(st.none(), durations)),
        "by": draw(keys),
        "agg": draw(aggs),
        "since": draw(times),
        "until": draw(times),
        "as_of": draw(st.one_of(st.none(), times)),
        "known_at": draw(st.one_of(st.none(), times)),
        "fill": draw(st.booleans()),
    }


def test_window_with_fuzzed_arguments_raises_only_value_errors(read_store):
    total = read_store.stats()["events"]

    @FUZZ
    @given(window_calls())
    def run(call: dict[str, Any]) -> None:
        frame = read_only(read_store, lambda: read_store.window(**call), (ValueError,))
        if frame is None:
            return
        assert list(frame.columns[:2]) == ["window_start", "window_end"]
        plain = (
            call["kind"] == "tumbling"
            and call["agg"] in (None, {"*": "count"})
            and all(call[k] is None for k in ("event_type", "since", "until", "as_of", "known_at"))
        )
        if plain:
            assert int(frame["count"].sum()) == total

    run()


def test_analytics_with_fuzzed_arguments_raise_only_value_errors(read_store):
    types = good_or(st.sampled_from([*TYPES, "never"]), identifiers)

    @FUZZ
    @given(
        st.one_of(st.none(), types),
        durations,
        good_or(st.one_of(st.none(), st.sampled_from(ENTITIES)), identifiers),
        types,
        types,
        good_or(
            st.lists(st.sampled_from(TYPES), min_size=1, max_size=4),
            st.one_of(identifiers, st.lists(identifiers, max_size=2)),
        ),
    )
    def run(kind: Any, within: Any, entity: Any, a: Any, b: Any, steps: Any) -> None:
        analytics = read_store.analytics
        for call in (
            lambda: analytics.frequency(kind, bucket=within),
            lambda: analytics.summary(entity),
            lambda: analytics.correlation(a, b, within=within),
            lambda: analytics.funnel(steps, within=within),
        ):
            read_only(read_store, call, (ValueError,))

    run()


def test_sql_with_fuzzed_parameters_raises_only_sql_or_type_errors(read_store):
    # store.sql passes DuckDB's own errors through (a bad query, a parameter it cannot
    # bind) and raises TypeError for a query that is not text.
    params = st.one_of(
        st.none(),
        st.lists(
            st.one_of(nasty_text, st.integers(), st.floats(), st.none(), st.binary(max_size=3)),
            max_size=3,
        ),
        st.dictionaries(
            st.sampled_from(["who", "kind", "x"]), st.one_of(nasty_text, st.integers()), max_size=3
        ),
        st.integers(),
        st.just(object()),
    )
    queries = st.sampled_from(
        [
            "select count(*) from events where entity_id = $1",
            "select count(*) from events where entity_id = ?",
            "select count(*) from events where entity_id = $who and event_type = $kind",
            "select $x",
            "selec",
        ]
    )

    @FUZZ
    @given(st.one_of(queries, identifiers), params)
    def run(query: Any, values: Any) -> None:
        def call() -> Any:
            relation = read_store.sql(query, values)  # None for an empty statement
            return None if relation is None else relation.fetchall()

        read_only(read_store, call, (duckdb.Error, TypeError))

    run()


# -- hostile text is data -------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE events; --",
    "x' OR '1'='1",
    'quote"d',
    "back\\slash\\",
    "nul\x00byte",
    "$1 ? {who} $who",
    "$$ dollar $$",
    "-- comment",
    "/* open",
    "é'\"\\;",
]
# Event types may not hold control characters (docs/format.md, "The event"): the same texts
# without NUL.
HOSTILE_TYPES = [text.replace("\x00", "\\0") for text in HOSTILE]


@pytest.fixture
def hostile_store(tmp_path: Path) -> Iterator[asl.EventStore]:
    store = asl.open(tmp_path / "hostile.events")
    for i, text in enumerate(HOSTILE):
        for k in range(i + 1):  # entity i has i + 1 events, each of type i
            store.append(
                HOSTILE_TYPES[i],
                text,
                {"k": text, "n": k, text: 1},
                timestamp=T0 + dt.timedelta(minutes=k),
            )
    store.append("after", HOSTILE[0], {"k": "plain"}, timestamp=T0 + dt.timedelta(hours=1))
    yield store
    store.close()


def _objects(store: asl.EventStore) -> list[tuple[Any, ...]]:
    """Every table and view DuckDB knows of: a statement smuggled in would add or drop one."""
    return sorted(
        store.sql("select table_name, table_type from information_schema.tables").fetchall()
    )


def test_hostile_event_types_and_entity_ids_are_data_to_every_sql_path(hostile_store):
    store = hostile_store
    objects = _objects(store)
    total = store.stats()["events"]
    for i, (text, kind) in enumerate(zip(HOSTILE, HOSTILE_TYPES, strict=True)):
        n = i + 1 + (1 if i == 0 else 0)
        assert len(store.events(entity_id=text)) == n
        assert len(store.events(event_type=kind)) == i + 1
        assert store.state(text)["k"] == ("plain" if i == 0 else text)
        # Bound parameters, in both styles.
        assert store.sql("select count(*) from events where entity_id = ?", [text]).fetchall() == [
            (n,)
        ]
        assert store.sql(
            "select count(*) from events where event_type = $t", {"t": kind}
        ).fetchall() == [(i + 1,)]
        # Windows filter by type; keys come back as the text they are.
        frame = store.window(kind, every="1d", by="entity_id")
        assert frame["entity_id"].tolist() == [text] and frame["count"].tolist() == [i + 1]
        by_payload = store.window(kind, every="1d", by="payload.k")
        assert by_payload["payload.k"].tolist() == [text]
        # Analytics.
        assert store.analytics.summary(text)["count"].sum() == n
        assert store.analytics.frequency(kind, bucket="1d")["count"].sum() == i + 1
        follow = store.analytics.correlation(kind, "after", within="1d")
        assert follow["a_events"].tolist() == [i + 1]
        funnel = store.analytics.funnel([kind, "after"], within="1d")
        assert funnel["entities"].tolist() == [1, 1 if i == 0 else 0]
    by_type = store.window(every="1d", by="event_type")
    assert sorted(by_type["event_type"]) == sorted([*HOSTILE_TYPES, "after"])
    assert store.stats()["events"] == total
    assert _objects(store) == objects
    assert store.verify().ok


def test_hostile_paths_and_aggregates_are_refused_before_any_sql(hostile_store):
    store = hostile_store
    objects = _objects(store)
    for text in HOSTILE:
        for arguments in (
            {"by": f"payload.{text}"},
            {"by": text},
            {"agg": {f"payload.{text}": "sum"}},
            {"agg": {"payload.n": text}},
            {"every": text},
            {"kind": text},
        ):
            with pytest.raises(ValueError) as info:
                store.window(**arguments)
            assert not type(info.value).__module__.startswith(("duckdb", "_duckdb"))
    assert _objects(store) == objects


def test_a_query_that_drops_the_events_view_does_not_break_later_reads():
    store = asl.open()
    store.append("t", "e", {"n": 1})
    store.sql("drop view events")
    assert store.sql("select count(*) from events").fetchall() == [(1,)]
    store.sql("create or replace view events as select 42 as x")
    assert len(store.window(every="1h")) == 1


def test_sql_from_two_threads_at_once():
    store = asl.open()
    store.append_batch(
        [{"event_type": "t", "entity_id": f"e{i}", "payload": {}} for i in range(100)]
    )
    errors: list[BaseException] = []

    def query() -> None:
        try:
            for _ in range(200):
                assert store.sql("select count(*) from events").fetchall() == [(100,)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[0]


def test_unknown_entity_and_surrogate_filters_read_nothing(read_store):
    for text in ["\ud800", "nobody", " ", "order-1\x00"]:
        assert len(read_store.events(entity_id=text)) == 0
        assert len(read_store.events(event_type=text)) == 0
        with pytest.raises(asl.NotFound):
            read_store.state(text)
    with pytest.raises(asl.NotFound):
        read_store.get(uuid.UUID(int=0))


# -- what the fuzzing found, one case each ------------------------------------------------------

FOUND_EVENTS = {
    "a limit past 64 bits": {"limit": 2**70},
    "an after past 64 bits": {"after": 2**63},
    "reverse that is not a bool": {"reverse": []},
}


@pytest.mark.parametrize("case", FOUND_EVENTS)
def test_found_by_fuzzing_events_arguments_are_invalid_event(read_store, case):
    with pytest.raises(asl.InvalidEvent) as info:
        len(read_store.events(**FOUND_EVENTS[case]))
    assert info.value.field == next(iter(FOUND_EVENTS[case]))


FOUND_WINDOWS = {
    "a duration of 400 digits": {"every": "9" * 400 + "s"},
    "a hop past int64": {"kind": "hopping", "every": "1h", "hop": "99999999999999w"},
    "an event in too many hopping windows": {"kind": "hopping", "every": "1w", "hop": "1us"},
    "a by that is a number": {"by": 5},
    "an aggregate that is a number": {"agg": {"payload.n": 5}},
    "an event type with a lone surrogate": {"event_type": "\ud800"},
    "filling a year of microsecond windows": {
        "every": "1us",
        "fill": True,
        "since": "2026-01-01T00:00:00Z",
        "until": "2027-01-01T00:00:00Z",
    },
}


@pytest.mark.parametrize("case", FOUND_WINDOWS)
def test_found_by_fuzzing_window_arguments_are_value_errors(read_store, case):
    with pytest.raises(ValueError) as info:
        read_store.window(**FOUND_WINDOWS[case])
    assert not type(info.value).__module__.startswith(("duckdb", "_duckdb"))


def test_found_by_fuzzing_a_one_step_funnel_counts_its_entities(read_store):
    funnel = read_store.analytics.funnel(["order.placed"], within="1h")
    assert funnel["entities"].tolist() == [
        len({e.entity_id for e in read_store.events(event_type="order.placed")})
    ]
    for steps in (5, None, {"order.placed": 1}, (s for s in TYPES)):
        with pytest.raises(ValueError):
            read_store.analytics.funnel(steps, within="1h")
    with pytest.raises(ValueError):
        read_store.analytics.summary("\ud800")
