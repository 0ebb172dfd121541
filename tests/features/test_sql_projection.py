"""SqlProjection: a query's result over the events fed equals store.sql over the same events,
merged batch by batch where the query allows, recomputed otherwise, and durable as JSON."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pandas.testing as pdt
import pytest

import allsource_lab as asl
from allsource_lab.projections.sql import SqlProjection

TYPES = ["order.placed", "order.paid", "order.cancelled"]
SKUS = ["tea", "jam", "bun", None]

BY_TYPE = (
    "select event_type, count(*) as n, sum((payload->>'qty')::bigint) as qty, "
    "min((payload->>'amount')::double) as lo, max(timestamp) as last "
    "from events group by event_type"
)
BY_SKU = (
    "select payload->>'sku' as sku, count(*), count(payload->>'amount') as priced, "
    "sum((payload->>'amount')::double) as amount, max(version) as top, "
    "min(event_id) as first_id from events group by 1"
)
GLOBAL = (
    "select count(*) as n, sum((payload->>'qty')::bigint) as qty, min(sequence) as first, "
    "max(recorded_at) as latest, sum((payload->>'missing')::double) as never, "
    "sum((payload->>'amount')::decimal(10, 2)) as exact from events"
)
FILTERED = (
    "select event_type, entity_id, count(*) filter (where version > 1) as later, "
    "min(payload) as first_body, max(payload->>'sku') as sku from events "
    "where event_type <> 'order.cancelled' group by all"
)
INCREMENTAL = [BY_TYPE, BY_SKU, GLOBAL, FILTERED]

AVERAGE = "select event_type, avg((payload->>'qty')::bigint) as mean from events group by 1"
ORDERED = "select entity_id, count(*) as n from events group by entity_id order by entity_id"
HAVING = "select payload->>'sku' as sku, count(*) as n from events group by sku having n > 3"
RECOMPUTED = [AVERAGE, ORDERED, HAVING]


def random_events(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Orders with some fields missing, so keys and aggregated values are sometimes NULL.
    Amounts are quarters: exactly representable, so float sums do not depend on order."""
    events = []
    for _ in range(count):
        payload: dict[str, Any] = {"qty": rng.randrange(1, 9)}
        sku = rng.choice(SKUS)
        if sku is not None:
            payload["sku"] = sku
        if rng.random() < 0.8:
            payload["amount"] = rng.randrange(0, 400) / 4
        events.append(
            {
                "event_type": rng.choice(TYPES),
                "entity_id": f"order-{rng.randrange(12)}",
                "payload": payload,
            }
        )
    return events


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its rows in a canonical order (results of GROUP BY have none)."""
    return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pdt.assert_frame_equal(rows(got), rows(want), check_exact=True)


def feed(store: asl.EventStore, projection: SqlProjection, after: int) -> int:
    """Feed ``projection`` every event after ``after``; returns the last sequence fed."""
    batch = store.feed.batch(after, event_types=projection.event_types)
    if len(batch):
        projection.apply_batch(batch)
    return store.feed.head()


def grow(store: asl.EventStore, rng: random.Random, projections: list[SqlProjection]) -> None:
    """Append a batch of random size and feed it to each projection."""
    after = store.feed.head()
    store.append_batch(random_events(rng, rng.choice([1, 2, 5, 17, 40, 90])))
    for projection in projections:
        feed(store, projection, after)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mergeable_queries_equal_the_query_over_all_events_after_every_batch(seed):
    rng = random.Random(seed)
    store = asl.open()
    projections = [SqlProjection(f"q{i}", q) for i, q in enumerate(INCREMENTAL)]
    assert all(p.incremental and p.reason is None for p in projections)
    for p, query in zip(projections, INCREMENTAL, strict=True):
        assert_same_rows(p.state(), store.sql(query).df())  # before any event
    for _ in range(12):
        grow(store, rng, projections)
        for p, query in zip(projections, INCREMENTAL, strict=True):
            assert_same_rows(p.state(), store.sql(query).df())


def test_results_equal_on_both_storages_across_checkpoints(store):
    rng = random.Random(7)
    projections = [SqlProjection("by_type", BY_TYPE), SqlProjection("avg", AVERAGE)]
    for round_ in range(6):
        grow(store, rng, projections)
        if round_ == 2:
            store.checkpoint()
    for p, query in zip(projections, [BY_TYPE, AVERAGE], strict=True):
        assert_same_rows(p.state(), store.sql(query).df())


def test_global_aggregate_over_no_events_is_one_row_of_zero_and_nulls():
    p = SqlProjection("totals", GLOBAL)
    state = p.state()
    assert len(state) == 1 and state["n"].tolist() == [0]
    assert state[["qty", "first", "latest", "never", "exact"]].isna().all(axis=None)
    assert_same_rows(state, asl.open().sql(GLOBAL).df())


def test_waiting_rows_are_merged_once_they_outnumber_the_kept_ones(monkeypatch):
    monkeypatch.setattr("allsource_lab.projections.sql.FOLD_EVERY_EVENTS", 1)
    rng = random.Random(11)
    store = asl.open()
    p = SqlProjection("by_sku", BY_SKU)
    for _ in range(8):
        grow(store, rng, [p])
        assert p._kept_rows > 0 and p._pending_events < max(1, p._kept_rows)
    assert_same_rows(p.state(), store.sql(BY_SKU).df())


@pytest.mark.parametrize(
    ("query", "why"),
    [(AVERAGE, "avg()"), (ORDERED, "ORDER BY"), (HAVING, "HAVING")],
)
def test_queries_that_do_not_merge_are_recomputed_and_say_why(query, why):
    rng = random.Random(5)
    store = asl.open()
    p = SqlProjection("q", query)
    assert p.incremental is False and why in p.reason
    for _ in range(5):
        grow(store, rng, [p])
        want = store.sql(query).df()
        if query == ORDERED:  # the query's own order is kept
            pdt.assert_frame_equal(p.state(), want)
        else:
            assert_same_rows(p.state(), want)


def test_recomputed_result_is_cached_until_the_next_batch(monkeypatch):
    store = asl.open()
    store.append_batch(random_events(random.Random(3), 30))
    p = SqlProjection("avg", AVERAGE)
    feed(store, p, 0)
    runs = []
    compute = SqlProjection._compute
    monkeypatch.setattr(SqlProjection, "_compute", lambda self: runs.append(1) or compute(self))
    first = p.state()
    first.loc[:, "mean"] = -1.0  # a caller's change does not reach the cached result
    assert_same_rows(p.state(), store.sql(AVERAGE).df())
    assert len(runs) == 1
    grow(store, random.Random(4), [p])
    assert_same_rows(p.state(), store.sql(AVERAGE).df())
    assert len(runs) == 2


def test_many_small_batches_are_joined_for_the_recompute(monkeypatch):
    monkeypatch.setattr("allsource_lab.projections.sql.JOIN_EVERY_BATCHES", 4)
    store = asl.open()
    p = SqlProjection("avg", AVERAGE)
    for event in random_events(random.Random(8), 10):
        after = store.feed.head()
        store.append(event["event_type"], event["entity_id"], event["payload"])
        feed(store, p, after)
    assert len(p._fed) == 4  # two joined tables of four batches, then two loose ones
    assert_same_rows(p.state(), store.sql(AVERAGE).df())


@pytest.mark.parametrize("query", [BY_TYPE, BY_SKU, GLOBAL, FILTERED, AVERAGE, ORDERED])
def test_saved_state_reads_back_exactly_and_keeps_folding(query):
    rng = random.Random(13)
    store = asl.open()
    p = SqlProjection("q", query)
    for _ in range(4):
        grow(store, rng, [p])
    data = p.dump_state()
    assert p.durable
    assert json.loads(json.dumps(data)) == data  # JSON only, as the store keeps it
    restored = SqlProjection("q", query)
    restored.load_state(orjson.loads(orjson.dumps(data)))
    pdt.assert_frame_equal(rows(restored.state()), rows(p.state()), check_exact=True)
    for _ in range(4):
        grow(store, rng, [p, restored])
    for projection in (p, restored):
        got, want = projection.state(), store.sql(query).df()
        if query == ORDERED:
            pdt.assert_frame_equal(got, want)
        else:
            assert_same_rows(got, want)


def test_saved_values_keep_their_types():
    store = asl.open()
    store.append("order.placed", "o-1", {"qty": 2, "amount": 0.1, "sku": 'j"am, [x]'})
    query = (
        "select payload->>'sku' as sku, min(timestamp) as t, sum((payload->>'qty')::bigint) as q,"
        " max((payload->>'amount')::double) as a, min(event_id) as id, max(payload) as body,"
        " max([payload->>'sku', NULL]) as l from events group by sku"
    )
    p = SqlProjection("typed", query)
    feed(store, p, 0)
    data = p.dump_state()
    types = [column["type"] for column in data["columns"]]
    assert types == [
        "VARCHAR",
        "TIMESTAMP WITH TIME ZONE",
        "HUGEINT",
        "DOUBLE",
        "UUID",
        "JSON",
        "VARCHAR[]",
    ]
    restored = SqlProjection("typed", query)
    restored.load_state(data)
    pdt.assert_frame_equal(restored.state(), p.state(), check_exact=True)
    assert restored.state()["l"][0].tolist() == ['j"am, [x]', None]


def test_state_of_another_query_is_refused_and_changes_nothing():
    store = asl.open()
    store.append_batch(random_events(random.Random(2), 20))
    p = SqlProjection("q", BY_TYPE)
    feed(store, p, 0)
    other = SqlProjection("q", BY_SKU)
    with pytest.raises(ValueError, match="another query"):
        p.load_state(other.dump_state())
    with pytest.raises(ValueError, match="not a saved SqlProjection state"):
        p.load_state({"rows": []})
    assert_same_rows(p.state(), store.sql(BY_TYPE).df())


def test_reset_forgets_every_event():
    store = asl.open()
    store.append_batch(random_events(random.Random(6), 20))
    for query in (GLOBAL, AVERAGE):
        p = SqlProjection("q", query)
        feed(store, p, 0)
        p.reset()
        assert_same_rows(p.state(), asl.open().sql(query).df())


def test_state_of_a_key_is_the_rows_whose_first_column_equals_it():
    store = asl.open()
    store.append_batch(random_events(random.Random(9), 50))
    p = SqlProjection("by_type", BY_TYPE)
    feed(store, p, 0)
    want = store.sql(BY_TYPE + " having event_type = 'order.paid'").df()
    pdt.assert_frame_equal(p.state("order.paid"), want)
    assert p.state("no.such.type").empty


def test_event_types_limit_what_is_folded():
    store = asl.open()
    store.append_batch(random_events(random.Random(10), 60))
    p = SqlProjection("paid", BY_SKU, event_types=["order.paid"])
    p.apply_batch(store.feed.batch(0))  # other types in a batch are ignored
    want = store.sql(BY_SKU.replace("from events", "from events where event_type = 'order.paid'"))
    assert_same_rows(p.state(), want.df())


def test_a_batch_the_query_fails_on_leaves_the_result_as_it_was():
    store = asl.open()
    store.append("order.placed", "o-1", {"qty": 2})
    p = SqlProjection("qty", "select count(*) as n, sum((payload->>'qty')::int) as q from events")
    feed(store, p, 0)
    before = p.state()
    store.append("order.placed", "o-2", {"qty": "many"})
    with pytest.raises(ValueError, match=r"failed on events 2\.\.2"):
        feed(store, p, 1)
    pdt.assert_frame_equal(p.state(), before)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("selct count(*) from events", "does not parse"),
        ("select nope from events", "nope"),
        ("select count(*) from orders", "orders"),
        ("select 42", "does not"),
        ("select 1; select 2", "single SELECT"),
        ("delete from events", "single SELECT"),
    ],
)
def test_invalid_query_is_refused_at_construction(query, problem):
    with pytest.raises(ValueError, match="must") as error:
        SqlProjection("bad", query)
    assert problem in str(error.value) and "`events`" in str(error.value)


def test_trailing_semicolon_and_comment_are_allowed():
    store = asl.open()
    store.append_batch(random_events(random.Random(12), 10))
    p = SqlProjection("q", BY_TYPE + " ; -- by type")
    assert p.incremental
    feed(store, p, 0)
    assert_same_rows(p.state(), store.sql(BY_TYPE).df())


@pytest.mark.parametrize(
    "query",
    [
        "select count(distinct entity_id) from events",
        "select event_type, count(*) + 1 from events group by event_type",
        "select count(*) from events group by event_type",
        "select upper(event_type), count(*) from events group by event_type",
        "select event_type, entity_id, count(*) from events group by rollup(1, 2)",
        "select count(*) from events where version in (select max(version) from events)",
        "select count(*) from events a join events b using (entity_id)",
        "with e as (select * from events) select count(*) from e",
        "select sum(version) over () from events",
        "select event_type from events",
        "select distinct event_type from events",
        "select event_type, random() < 2 as r, count(*) from events group by event_type",
    ],
)
def test_queries_whose_parts_do_not_merge_are_not_incremental(query):
    store = asl.open()
    store.append_batch(random_events(random.Random(14), 30))
    p = SqlProjection("q", query)
    assert not p.incremental and p.reason
    feed(store, p, 0)
    if "random" not in query:
        assert_same_rows(p.state(), store.sql(query).df())


def test_reading_while_another_thread_feeds():
    store = asl.open()
    rng = random.Random(15)
    p = SqlProjection("by_sku", BY_SKU)
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                p.state()
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(10):
            grow(store, rng, [p])
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert_same_rows(p.state(), store.sql(BY_SKU).df())


def test_live_projection_resumes_from_its_saved_state_after_reopen(tmp_path: Path):
    path = tmp_path / "shop.events"
    rng = random.Random(16)
    with asl.open(path) as store:
        store.append_batch(random_events(rng, 40))
        p = store.projections.add(SqlProjection("by_type", BY_TYPE))
        store.append_batch(random_events(rng, 25))
        assert_same_rows(p.state(), store.sql(BY_TYPE).df())
    with asl.open(path) as store:
        p = store.projections.add(SqlProjection("by_type", BY_TYPE))
        assert not store.recovery_problems
        store.append_batch(random_events(rng, 25))
        assert_same_rows(p.state(), store.sql(BY_TYPE).df())


def test_a_query_that_reads_the_clock_is_not_merged_and_never_cached():
    store = asl.open()
    store.append_batch(random_events(random.Random(17), 5))
    query = "select count(*) filter (where timestamp <= now()) as n, now() as at from events"
    p = SqlProjection("recent", query)
    assert not p.incremental and "now()" in p.reason
    feed(store, p, 0)
    first = p.state()
    time.sleep(0.002)
    second = p.state()
    assert first["n"].tolist() == [5]
    assert second["at"][0] > first["at"][0]


def test_state_with_no_events_fed_saves_and_reads_back():
    for query in (BY_TYPE, GLOBAL, AVERAGE):
        p = SqlProjection("q", query)
        restored = SqlProjection("q", query)
        restored.load_state(orjson.loads(orjson.dumps(p.dump_state())))
        pdt.assert_frame_equal(restored.state(), p.state())


@pytest.mark.parametrize("query", [BY_TYPE, AVERAGE])
def test_damaged_saved_state_is_refused(query):
    p = SqlProjection("q", query)
    data = p.dump_state()
    data.pop("columns" if p.incremental else "events")
    with pytest.raises(ValueError, match="damaged"):
        p.load_state(data)
