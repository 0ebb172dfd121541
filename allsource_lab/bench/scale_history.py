"""The history of the scale benchmark (:mod:`allsource_lab.bench.scale`), and the two steps
that each run in a fresh process: ``ingest`` builds a store of it, ``measure_queries``
opens that store and times the reads.

The history of ``n`` events: ``entity_count(n)`` entities (n / 100, kept within 10K–1M),
each with one event in every round of ``entities`` events (so ~100 events per entity from
1M events on, spread evenly over the history and so over every sealed segment), five event
types, ~110-byte JSON payloads, and event times in a ``timestamp`` column spread over 30
days whatever the size, 1% of them late (earlier than events recorded before them, by 1
minute to 6 hours).

>>> [entity_count(n) for n in (5_000, 20_000, 1_000_000, 10**7, 10**8, 10**9)]
[2500, 10000, 10000, 100000, 1000000, 1000000]
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

import allsource_lab as asl
from allsource_lab.bench.common import order_payload
from allsource_lab.bench.reads import median_us
from allsource_lab.bench.soak import settled_resident_bytes

__all__ = ["MID", "History", "entity_count", "entity_name", "ingest", "measure_queries"]

BATCH_EVENTS = 1_000_000
SPAN_US = 30 * 86_400 * 1_000_000  # every history spans 30 days of event time
START_US = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1_000_000)
MID = dt.datetime(2026, 1, 16, tzinfo=dt.UTC)  # halfway through the history
LATE_SHARE = 0.01
TYPES = ("order.placed", "order.paid", "order.packed", "order.shipped", "order.delivered")
SEED = 7
REPEATS = 5  # runs per figure; each µs-scale run is the median of CALLS timed calls
CALLS = 500
STATES_REPEATS = 3  # states() of every entity takes seconds from 10M events on
COUNT_BY_TYPE = "select event_type, count(*) as n from events group by 1"


def entity_count(n: int) -> int:
    """Entities of an ``n``-event history: n / 100 within 10K–1M, and at most n / 2 (every
    entity then has an event in the first half, so ``as_of=MID`` finds each one)."""
    return min(max(n // 100, 10_000), 1_000_000, max(n // 2, 1))


def entity_name(e: int) -> str:
    return f"order-{e:07d}"


class History:
    """The events of an ``n``-event history, made batch by batch, the same on every run.

    Round ``r`` (events ``r * entities`` to ``(r + 1) * entities - 1``) gives every entity
    one event, in a random order of its own. Making a 1M-event batch takes ~60-90 ms (the
    entity ids' ``take`` ~30 ms, a permutation of 1M entities ~10 ms; measured on the 2-core
    development machine). It stays inside the timed ingest, since background sealing goes
    on while a batch is made; ``ingest`` reports how long it took.

    >>> t = pa.concat_tables(History(20).batches())
    >>> t.num_rows, len(set(t.column("entity_id").to_pylist())), t.column_names
    (20, 10, ['event_type', 'entity_id', 'payload', 'timestamp'])
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.entities = entity_count(n)
        self.step_us = SPAN_US // n
        self.ids = pa.array([entity_name(e) for e in range(self.entities)], pa.string())
        self.types = pa.array(TYPES, pa.string())
        # One batch's payloads, reused by every batch (as the main benchmark reuses its
        # table): each batch pairs them with other entities, types and times.
        self.payloads = pa.array(
            [orjson.dumps(order_payload(i)).decode() for i in range(min(BATCH_EVENTS, n))],
            pa.string(),
        )

    def batches(self) -> Iterator[pa.Table]:
        for first in range(0, self.n, BATCH_EVENTS):
            yield self.batch(first, min(BATCH_EVENTS, self.n - first))

    def batch(self, first: int, size: int) -> pa.Table:
        entities = self.entities
        entity = np.empty(size, np.int64)
        for r in range(first // entities, (first + size - 1) // entities + 1):
            lo, hi = max(r * entities, first), min((r + 1) * entities, first + size)
            order = np.random.default_rng([SEED, r]).permutation(entities)
            entity[lo - first : hi - first] = order[lo - r * entities : hi - r * entities]
        rng = np.random.default_rng([SEED, 1 << 40, first])
        times = START_US + (first + np.arange(size, dtype=np.int64)) * self.step_us
        late = np.flatnonzero(rng.random(size) < LATE_SHARE)
        times[late] -= 2 * self.step_us + rng.integers(60_000_000, 6 * 3_600_000_000, late.size)
        return pa.table(
            {
                "event_type": self.types.take(rng.integers(0, len(TYPES), size)),
                "entity_id": self.ids.take(entity),
                "payload": self.payloads.slice(0, size),
                "timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            }
        )


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """The memory lines of ``/proc/<pid>/status`` (VmHWM, VmRSS, RssAnon, ...) in bytes."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if value.strip().endswith(" kB"):
                fields[name] = int(value.split()[0]) * 1024
    return fields


def ingest(path: str, n: int) -> dict[str, Any]:
    """Build the ``n``-event store at ``path`` with default settings, timed from the open
    until ``close()`` returns with every event sealed."""
    history = History(n)
    settled_resident_bytes()  # hands back what making the payloads freed (~250 MB at 1M)
    before = proc_status()
    making = 0.0
    stored = 0
    start = time.perf_counter()
    store = asl.open(path)
    batches = history.batches()
    while True:
        began = time.perf_counter()
        table = next(batches, None)
        making += time.perf_counter() - began
        if table is None:
            break
        stored += store.append_batch(table).count
    store.close()
    seconds = time.perf_counter() - start
    if stored != n:
        raise RuntimeError(f"append_batch stored {stored:,} events, expected {n:,}")
    return {
        "seconds": seconds,
        "rate": n / seconds,
        "making_batches_s": making,
        "rss_before_open": before["VmRSS"],
        "rss_anon_before_open": before["RssAnon"],
        "rss_file_before_open": before["RssFile"],
        "vm_hwm": proc_status()["VmHWM"],
    }


def timed_s(run: Callable[[], Any], check: Callable[[Any], bool]) -> float:
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    if not check(result):
        raise RuntimeError("a scale benchmark query returned a wrong answer")
    return seconds


def measure_queries(path: str, n: int) -> dict[str, Any]:
    """Open the ``n``-event store at ``path`` (after import), note its resident memory, and
    time the reads: medians of ``REPEATS`` runs, the µs-scale ones each the median of up to
    ``CALLS`` calls on entities drawn at random."""
    before = proc_status()
    start = time.perf_counter()
    store = asl.open(path)
    opened = time.perf_counter() - start
    memory = proc_status()
    import pandas  # noqa: F401  # states() and window() import it once; not their cost

    entities = entity_count(n)
    stats = store.stats()
    if (stats["events"], stats["entities"]) != (n, entities):
        raise RuntimeError(f"the store holds {stats['events']:,} events, expected {n:,}")
    # Each call on an entity no earlier call touched: every state is folded, none cached.
    calls = min(CALLS, entities // (3 * REPEATS))
    picks = random.Random(SEED).sample(range(entities), 3 * REPEATS * calls)
    names = [entity_name(e) for e in picks]
    runs = [names[i * calls : (i + 1) * calls] for i in range(3 * REPEATS)]
    figures: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        figures.setdefault(key, []).append(value)

    def by_entity(entity: str) -> pa.Table:
        return store.events(entity_id=entity).to_arrow()

    if by_entity(names[0]).num_rows not in (n // entities, -(-n // entities)):
        raise RuntimeError("an entity of the scale benchmark lacks events it was given")
    for r in range(REPEATS):
        add("events_entity", median_us(runs[3 * r], by_entity))
        add("state", median_us(runs[3 * r + 1], store.state))
        add("state_as_of", median_us(runs[3 * r + 2], lambda e: store.state(e, as_of=MID)))

    def sql_s() -> float:
        return timed_s(
            lambda: store.sql(COUNT_BY_TYPE).fetchall(), lambda rows: sum(c for _, c in rows) == n
        )

    def window_s() -> float:
        return timed_s(lambda: store.window(every="1h"), lambda w: int(w["count"].sum()) == n)

    first_sql, first_window = sql_s(), window_s()  # the first query registers the view
    for _ in range(REPEATS):
        add("sql_count_by_type", sql_s() * 1000)
        add("window_1h", window_s() * 1000)
    for _ in range(STATES_REPEATS):
        add("states_as_of", timed_s(lambda: store.states(as_of=MID), lambda f: len(f) == entities))
    store.close()
    return {
        "open_s": opened,
        "rss_anon_before_open": before["RssAnon"],
        "rss_file_before_open": before["RssFile"],
        "rss_anon": memory["RssAnon"],
        "rss_file": memory["RssFile"],
        "segments": stats["segments"],
        "calls_per_run": calls,
        "first_sql_s": first_sql,
        "first_window_s": first_window,
        "runs": figures,
        "vm_hwm": proc_status()["VmHWM"],
    }
