"""Following figures (``python -m allsource_lab.bench --only follow``): what a read-only
store pays to follow its writer, and how far behind it is.

- **The check on reads.** A read-only store checks for its writer's news before a read,
  at most once a millisecond. On the read store (``Sizes.reads`` events, 100 per entity,
  sealed), ``state(entity_id)`` kept hot and ``events(entity_id=...)`` to Arrow, timed on
  a read-only follower and on the writable store of the same folder, in a tight loop
  (most reads skip the check) and with reads more than a millisecond apart (each read
  makes the whole check: a ``stat`` of manifest.json, of the WAL folder and of the WAL
  file being read). The writer is idle: nothing new to take. Measured here (2 CPUs, load
  average ~4): spaced reads cost the follower ~8 us (state) and ~11 us (events) more
  than the writable store; the check forced alone in a tight loop takes ~6.5 us.
- **The lag.** A writer in another process appends one event at a time with
  ``fsync="always"``, at random gaps, and records when each append returned; a
  subscription on a read-only store in this process records when it got each event.
  p50 and p99 of the difference (both clocks are the machine's monotonic clock), with the
  default ``follow_interval_s`` and with 0.005 s.
- **Taking in the writer's work.** ``refresh()`` after the writer appended a tenth of the
  table (WAL records), after the writer sealed them (a checkpoint: the segment takes the
  place of what was read from the WAL), and after the writer compacted the whole table
  (the read side is rebuilt from the merged segment).

Nothing here asserts a speed.

>>> sizes = Sizes(
...     single=1, single_default=1, batch=2_000, checkpoints=1, peer_saves=1, repeats=1,
...     reads=1_000,
... )
>>> import tempfile
>>> figures = bench_follow(sizes, Path(tempfile.mkdtemp()), lag_events=5)
>>> sorted(f.key for f in figures) == sorted(FOLLOW_FIGURES)
True
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import allsource_lab as asl
from allsource_lab.bench.common import (
    NO_CHECKPOINT,
    PER_ENTITY,
    Figure,
    Sizes,
    arrow_events,
    expect_events,
    read_events,
    repeat,
    run_python,
    scratch,
    tenths,
)
from allsource_lab.settings import Settings

__all__ = ["FOLLOW_FIGURES", "bench_follow"]

FOLLOW_FIGURES = (
    "follow_state_reader",
    "follow_state_writer",
    "follow_entity_reader",
    "follow_entity_writer",
    "follow_state_spaced_reader",
    "follow_state_spaced_writer",
    "follow_entity_spaced_reader",
    "follow_entity_spaced_writer",
    "follow_lag_p50_default",
    "follow_lag_p99_default",
    "follow_lag_p50_fast",
    "follow_lag_p99_fast",
    "follow_take_wal",
    "follow_take_checkpoint",
    "follow_take_compaction",
)
# Reads this far apart make the whole check each time (it runs at most once a ms).
SPACED_S = 0.0012
# The lag writer's gaps between appends: random, so that appends do not fall in step
# with the follower's polling.
LAG_GAP_S = (0.004, 0.012)

# The writer of the lag figures: appends one event at a time, each at a random gap after
# the last, and prints the time each append returned (time.monotonic(), the same clock
# as the reader's), as JSON.
_LAG_WRITER = """
import json, random, sys, time
import allsource_lab as asl

path, n, low, high = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rng = random.Random(n)
acked = []
with asl.open(path, fsync="always") as store:
    store.append("lag.warm", "w", {"i": -1})  # the first append's one-time costs
    time.sleep(0.2)
    for i in range(n):
        time.sleep(rng.uniform(low, high))
        event = store.append("lag", "e", {"i": i})
        acked.append([event.sequence, time.monotonic()])
print(json.dumps(acked))
"""


def bench_follow(sizes: Sizes, folder: Path, lag_events: int | None = None) -> list[Figure]:
    """Every figure of ``FOLLOW_FIGURES``; ``lag_events``: appends timed per lag figure
    (default 200, 50 at quick sizes)."""
    if lag_events is None:
        lag_events = 200 if sizes.reads >= 100_000 else 50
    figures = _read_figures(sizes, folder)
    default = Settings().follow_interval_s
    for name, interval in (("default", default), ("fast", 0.005)):
        runs = [_lag_ms(folder, interval, lag_events) for _ in range(max(sizes.repeats // 2, 1))]
        figures.append(Figure(f"follow_lag_p50_{name}", tuple(r[0] for r in runs)))
        figures.append(Figure(f"follow_lag_p99_{name}", tuple(r[1] for r in runs)))
    figures += _take_figures(sizes, folder)
    return figures


def _median_us(calls: list[str], call: Callable[[str], object], spaced: bool) -> float:
    """The median time of ``call(x)`` for each ``x`` in microseconds; ``spaced``: each
    call starts at least ``SPACED_S`` after the one before ended (the wait not timed)."""
    clock = time.perf_counter
    times = []
    for x in calls:
        if spaced:
            until = clock() + SPACED_S
            while clock() < until:
                pass  # a busy wait: a sleep's wake-up would cool the caches unevenly
        start = clock()
        call(x)
        times.append(clock() - start)
    return statistics.median(times) * 1e6


def _entity_reads(store: asl.EventStore) -> Callable[[str], object]:
    return lambda entity: store.events(entity_id=entity).to_arrow()


def _read_figures(sizes: Sizes, folder: Path) -> list[Figure]:
    n = sizes.reads
    entities = max(n // PER_ENTITY, 1)
    path = scratch(folder, "follow-reads")
    writer = asl.open(path, checkpoint_every_events=NO_CHECKPOINT)
    try:
        for part in tenths(read_events(n)):
            writer.append_batch(part)
        writer.checkpoint()
        reader = asl.open(path, read_only=True)
        try:
            expect_events(reader, n)
            rng = random.Random(11)
            names = [f"entity-{e}" for e in range(entities)]
            calls = min(2_000, entities)
            out: dict[str, list[float]] = {}
            for _ in range(sizes.repeats):
                ids = rng.sample(names, calls)
                for store, who in ((reader, "reader"), (writer, "writer")):
                    for e in ids:
                        store.state(e)  # hot from here on
                    for spaced, kind in ((False, ""), (True, "_spaced")):
                        state = _median_us(ids, store.state, spaced)
                        out.setdefault(f"follow_state{kind}_{who}", []).append(state)
                        entity = _median_us(ids, _entity_reads(store), spaced)
                        out.setdefault(f"follow_entity{kind}_{who}", []).append(entity)
            if reader.refresh() != 0:
                raise RuntimeError("the idle writer wrote: the read figures timed a catch-up")
        finally:
            reader.close()
    finally:
        writer.close()
    return [Figure(key, tuple(out[key])) for key in FOLLOW_FIGURES if key in out]


def _lag_ms(folder: Path, interval: float, n: int) -> tuple[float, float]:
    """p50 and p99 of the lag of ``n`` single appends, in milliseconds: from the return
    of the writer's append (in another process) to a reader's subscription handler."""
    path = scratch(folder, "follow-lag")
    asl.open(path).close()
    heard: dict[int, float] = {}
    done = threading.Event()
    with asl.open(path, read_only=True, follow_interval_s=interval) as reader:

        def handler(event: asl.Event) -> None:
            if event.event_type == "lag":
                heard[event.sequence] = time.monotonic()
                if len(heard) == n:
                    done.set()

        sub = reader.subscribe("lag", handler, start="end")
        try:
            acked = run_python(_LAG_WRITER, str(path), str(n), *map(str, LAG_GAP_S))
            if not done.wait(30):
                raise RuntimeError(f"the reader heard {len(heard)} of {n} events in 30 s")
        finally:
            sub.close()
    lags = np.array([heard[seq] - at for seq, at in acked]) * 1000
    return float(np.percentile(lags, 50)), float(np.percentile(lags, 99))


def _take_figures(sizes: Sizes, folder: Path) -> list[Figure]:
    """refresh() after a tenth of the table in the WAL, after its checkpoint, and after a
    compaction of the whole table (ms, ms, s)."""
    table = arrow_events(sizes.batch)
    parts = tenths(table)
    path = scratch(folder, "follow-take")
    writer = asl.open(path, fsync="always", checkpoint_every_events=NO_CHECKPOINT)
    reader = asl.open(path, read_only=True)
    wal_ms: list[float] = []
    seal_ms: list[float] = []
    compact_s: list[float] = []
    try:

        def timed_refresh(expect: int) -> float:
            start = time.perf_counter()
            got = reader.refresh()
            seconds = time.perf_counter() - start
            if got != expect:
                raise RuntimeError(f"refresh() took in {got} events, expected {expect}")
            return seconds

        for part in parts:
            writer.append_batch(part)
            wal_ms.append(timed_refresh(part.num_rows) * 1000)
            writer.checkpoint()
            seal_ms.append(timed_refresh(0) * 1000)
        expect_events(reader, table.num_rows)

        def compaction() -> float:
            writer.append_batch(parts[0].slice(0, 10))
            writer.checkpoint()
            reader.refresh()
            writer.compact()
            seconds = timed_refresh(0)
            if reader.stats()["segments"] != 1:
                raise RuntimeError("the reader did not take in the compaction")
            return seconds

        compact_s = list(repeat(min(sizes.repeats, 3), compaction))
    finally:
        reader.close()
        writer.close()
    return [
        Figure("follow_take_wal", tuple(wal_ms)),
        Figure("follow_take_checkpoint", tuple(seal_ms)),
        Figure("follow_take_compaction", tuple(compact_s)),
    ]
