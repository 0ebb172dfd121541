"""Read-side figures for the benchmark (``python -m allsource_lab.bench --only reads``).

The store: ``Sizes.reads`` events over ``reads / 100`` entities (100 events each), 20 event
types, ~110-byte payloads, event times rising with the sequence; appended in ten batches
with the default settings (so 1M events are ten sealed segments), closed, reopened. Each
µs-scale figure is the median of thousands of individually timed calls on entities drawn
at random with a fixed seed; each run gives one median and the figure is the median of runs.

>>> table = read_events(2_000)
>>> table.num_rows, len(set(table.column("entity_id").to_pylist()))
(2000, 20)
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import allsource_lab as asl
from allsource_lab.bench.common import (
    PER_ENTITY,
    READ_TYPES,
    START,
    STEP_US,
    Figure,
    Sizes,
    order_aggregate,
    order_payload,
    read_events,
    scratch,
    tenths,
)

__all__ = ["bench_reads"]

COUNT_BY_TYPE = "select event_type, count(*) from events group by 1"

T = TypeVar("T")


def middle_of(entity: int, entities: int) -> dt.datetime:
    """An event time halfway through ``entity``'s history (just after its 50th event)."""
    i = entity + (PER_ENTITY // 2) * entities
    return START + dt.timedelta(microseconds=i * STEP_US + 1)


def median_us(calls: Sequence[T], call: Callable[[T], object]) -> float:
    """The median of timing ``call(x)`` for each ``x``, in microseconds."""
    times = []
    clock = time.perf_counter
    for x in calls:
        start = clock()
        call(x)
        times.append(clock() - start)
    return statistics.median(times) * 1e6


def bench_reads(sizes: Sizes, folder: Path) -> list[Figure]:
    n = sizes.reads
    entities = max(n // PER_ENTITY, 1)
    path = scratch(folder, "reads")
    with asl.open(path) as store:
        for part in tenths(read_events(n)):
            store.append_batch(part)
    # Untimed: the first states() in a process imports pandas and loads its numba kernels
    # from the cache (~13 ms, more than the whole call at QUICK sizes). A read-only open
    # pays it and keeps no snapshot past its close.
    with asl.open(path, read_only=True) as store:
        store.states(as_of=middle_of(0, entities))
    rng = random.Random(7)
    # Drawn without replacement: the cold and first-call figures must time each entity's
    # first call only (with replacement, 3,000 draws of 10,000 repeat ~14% of entities).
    calls = min(3_000, entities)
    picks = [rng.sample(range(entities), calls) for _ in range(sizes.repeats)]
    names = [f"entity-{e}" for e in range(entities)]
    figures: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        figures.setdefault(key, []).append(value)

    for run in picks:
        ids = [names[e] for e in run]
        moments = [(names[e], middle_of(e, entities)) for e in run]
        # Read-only opens write no snapshots, so every run starts with none.
        with asl.open(path, read_only=True) as store:
            add("read_entity_positions", median_us(ids, lambda e: len(store.events(entity_id=e))))
            add("read_entity", median_us(ids, lambda e: store.events(entity_id=e).to_arrow()))
            types = [f"type.{i % READ_TYPES}" for i in range(3 * READ_TYPES)]
            by_type = median_us(types, lambda t: store.events(event_type=t).to_arrow())
            add("read_type", by_type / 1000)
            add("state_as_of_cold", median_us(moments, lambda m: store.state(m[0], as_of=m[1])))
            # Those folds passed version 32 and snapshotted it: later ones start there.
            add("state_as_of", median_us(moments, lambda m: store.state(m[0], as_of=m[1])))
            start = time.perf_counter()
            store.states(as_of=middle_of(0, entities))
            add("states_as_of", time.perf_counter() - start)
            store.sql(COUNT_BY_TYPE).fetchall()  # the first query registers the view
            sql_us = median_us(range(10), lambda _: store.sql(COUNT_BY_TYPE).fetchall())
            add("sql_count_by_type", sql_us / 1000)
        with asl.open(path, read_only=True) as store:
            add("state_fold", median_us(ids, store.state))  # first call: folds all 100
            add("state", median_us(ids, store.state))  # then kept hot: a dict copy
    peer_runs = eventsourcing_rebuild_us(sizes.repeats)
    result = [Figure(key, tuple(runs)) for key, runs in figures.items()]
    result.append(Figure("eventsourcing_rebuild_100", peer_runs))
    return result


def eventsourcing_rebuild_us(repeats: int) -> tuple[float, ...]:
    """The peer: eventsourcing (in-memory) rebuilds a 100-event aggregate from its events."""
    from eventsourcing.application import Application

    order_cls = order_aggregate()
    runs = []
    for _ in range(repeats):
        app: Application[Any] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        orders = [order_cls("sku-00000") for _ in range(20)]
        for i in range(PER_ENTITY - 1):
            for order in orders:
                order.change(**order_payload(i))
        app.save(*orders)
        ids = [orders[i % 20].id for i in range(400)]
        get = cast(Callable[[Any], object], app.repository.get)
        runs.append(median_us(ids, get))
        app.close()
    return tuple(runs)
