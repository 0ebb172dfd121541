"""The `log` view: every event in sequence order, beside `events` in storage order."""

from __future__ import annotations

import allsource_lab as asl

# Entities interleaved so that a segment sorted by entity differs from sequence order.
ENTITIES = 7


def fill(store: asl.EventStore) -> None:
    """Three sealed segments and an unsealed tail, every batch spread over ENTITIES."""
    sequence = 0
    for segment in range(4):
        rows = []
        for _ in range(25):
            rows.append(
                {
                    "event_type": f"t{sequence % 3}",
                    "entity_id": f"e{(sequence * 5) % ENTITIES}",
                    "payload": {"i": sequence},
                }
            )
            sequence += 1
        store.append_batch(rows)
        if segment < 3:
            store.checkpoint()


def test_head_of_the_log_view_is_the_first_ten_sequences(store):
    fill(store)
    head = store.sql("select sequence from log limit 10").fetchall()
    assert [s for (s,) in head] == list(range(1, 11))


def test_log_view_holds_every_event_in_sequence_order(store):
    fill(store)
    store.append("t0", "late", {"i": 100})  # a single append after the batches
    rows = store.sql("select sequence, payload->>'i' from log").fetchall()
    assert [s for s, _ in rows] == list(range(1, 102))
    assert [int(i) for _, i in rows] == list(range(101))


def test_events_view_in_storage_order_is_not_the_log_order(store):
    # Why `log` exists: sealed segments are sorted by entity.
    fill(store)
    head = [s for (s,) in store.sql("select sequence from events limit 10").fetchall()]
    assert head != list(range(1, 11))


def test_aggregates_over_log_and_events_agree(store):
    fill(store)
    query = "select event_type, count(*), sum(sequence) from {} group by 1 order by 1"
    by_events = store.sql(query.format("events")).fetchall()
    assert by_events == store.sql(query.format("log")).fetchall()
    assert sum(n for _, n, _ in by_events) == 100


def test_log_view_comes_back_after_a_query_drops_it(store):
    fill(store)
    store.sql("drop view log")
    assert store.sql("select min(sequence), count(*) from log").fetchall() == [(1, 100)]


def test_log_view_follows_later_appends(store):
    fill(store)
    assert store.sql("select count(*) from log").fetchall() == [(100,)]
    store.append("t0", "e0", {"i": 100})
    store.checkpoint()
    assert store.sql("select max(sequence), count(*) from log").fetchall() == [(101, 101)]


def test_log_view_is_in_order_after_reopen(store_factory):
    store = store_factory()
    fill(store)
    if store_factory.kind == "memory":
        return  # nothing to reopen
    store.close()
    again = store_factory()
    head = again.sql("select sequence from log limit 10").fetchall()
    assert [s for (s,) in head] == list(range(1, 11))


def test_a_table_of_ones_own_named_log_does_not_break_later_queries(store):
    fill(store)
    con = store.sql_connection()  # `log` and `events` are the store's names in store.sql
    con.execute("drop view log")
    con.execute("create table log as select 1 as x")
    store.append("t0", "e0", {"i": 100})  # the views are registered again on the next query
    assert store.sql("select count(*) from events").fetchall() == [(101,)]
    assert store.sql("select x from log").fetchall() == [(1,)]
