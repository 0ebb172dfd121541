"""Figures of our own store's write side and start-up: single appends, batches,
checkpoints, reopening, resident memory, and import + open in a fresh process
(``python -m allsource_lab.bench --only single,batch,checkpoint,reopen,memory,import``).

The headline rows (``append_default``, ``append_batch_default``,
``open_query_fresh_process``) are what a user gets from ``asl.open(path)``: default
settings, writes timed until ``close()`` returns with every event sealed, open + first
query in a fresh process. The other rows change one setting and say which.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

import allsource_lab as asl
from allsource_lab.bench.common import (
    NO_CHECKPOINT,
    Figure,
    Sizes,
    expect_events,
    repeat,
    run_python,
    scratch,
    single_rows,
    tenths,
    timed_events,
)

__all__ = [
    "bench_batch",
    "bench_checkpoint",
    "bench_import",
    "bench_memory",
    "bench_reopen",
    "bench_single",
    "checkpoint_ms",
]


def bench_single(sizes: Sizes, folder: Path) -> list[Figure]:
    rows = single_rows(sizes.single)
    warm = single_rows(2_000)

    def run(checkpoint_every: int) -> float:
        path = scratch(folder, "single")
        store = asl.open(path, fsync="interval", checkpoint_every_events=checkpoint_every)
        append = store.append
        for args in warm:  # untimed: kernels loaded, first entities interned
            append(*args)
        start = time.perf_counter()
        for event_type, entity_id, payload in rows:
            append(event_type, entity_id, payload)
        seconds = time.perf_counter() - start
        expect_events(store, len(warm) + len(rows))
        store.close()
        shutil.rmtree(path)
        return len(rows) / seconds

    def as_a_user() -> float:
        # Default settings; the clock stops when close() returns, so the automatic
        # checkpoints and the last seal are all paid inside the figure.
        path = scratch(folder, "single-default")
        store = asl.open(path)
        append = store.append
        for args in warm:  # untimed: kernels loaded, first entities interned
            append(*args)
        start = time.perf_counter()
        for event_type, entity_id, payload in default_rows:
            append(event_type, entity_id, payload)
        expect_events(store, len(warm) + len(default_rows))
        store.close()
        seconds = time.perf_counter() - start
        shutil.rmtree(path)
        return len(default_rows) / seconds

    default_rows = single_rows(sizes.single_default)
    default = repeat(sizes.repeats, as_a_user)
    default_rows.clear()  # freed before the other runs
    every = asl.Settings().checkpoint_every_events
    plain = repeat(sizes.repeats, lambda: run(NO_CHECKPOINT))
    checkpointed = repeat(sizes.repeats, lambda: run(every))
    return [
        Figure("append_default", default),
        Figure("append", plain),
        Figure("append_default_checkpoint", checkpointed),
    ]


BATCHES = 5  # the default-settings batch figure: this many batches of the table


def bench_batch(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    n = int(table.num_rows)

    def run(checkpoint_every: int) -> float:
        path = scratch(folder, "batch")
        store = asl.open(path, fsync="always", checkpoint_every_events=checkpoint_every)
        start = time.perf_counter()
        store.append_batch(table)
        seconds = time.perf_counter() - start
        expect_events(store, n)
        store.close()
        shutil.rmtree(path)
        return n / seconds

    with asl.open(scratch(folder, "batch-warm"), fsync="always") as store:
        store.append_batch(table.slice(0, 1000))  # untimed: kernels loaded from the cache
    # Each batch its own event times, rising across batches, built outside the timing.
    timed = [timed_events(table, first=k * n) for k in range(BATCHES)]

    def as_a_user() -> float:
        # A fresh store, default settings; timed from the first call until close() returns
        # (every event sealed to Parquet).
        path = scratch(folder, "batch-default")
        start = time.perf_counter()
        store = asl.open(path)
        for part in timed:
            store.append_batch(part)
        expect_events(store, BATCHES * n)
        store.close()
        seconds = time.perf_counter() - start
        shutil.rmtree(path)
        return BATCHES * n / seconds

    default = repeat(sizes.repeats, as_a_user)
    timed.clear()  # freed before the other runs
    plain = repeat(sizes.repeats, lambda: run(NO_CHECKPOINT))
    checkpointed = repeat(sizes.repeats, lambda: run(asl.Settings().checkpoint_every_events))
    return [
        Figure("append_batch_default", default),
        Figure("append_batch", plain),
        Figure("append_batch_default_checkpoint", checkpointed),
    ]


def bench_checkpoint(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    thousand = table.slice(0, 1000)
    singles = single_rows(1000)

    def by_batch(store: asl.EventStore) -> None:
        store.append_batch(thousand)

    def one_by_one(store: asl.EventStore) -> None:
        for args in singles:
            store.append(*args)

    return [
        Figure(key, checkpoint_ms(scratch(folder, "checkpoint"), fill, sizes.checkpoints))
        for key, fill in (("checkpoint", by_batch), ("checkpoint_singles", one_by_one))
    ]


def checkpoint_ms(
    path: Path, fill: Callable[[asl.EventStore], None], repeats: int
) -> tuple[float, ...]:
    """Ms of each ``store.checkpoint()`` right after ``fill`` put 1000 events in the tail."""

    def run() -> float:
        fill(store)
        start = time.perf_counter()
        store.checkpoint()
        return (time.perf_counter() - start) * 1000

    with asl.open(path, checkpoint_every_events=NO_CHECKPOINT) as store:
        run()  # untimed: the first checkpoint loads the Parquet writer
        return repeat(repeats, run)


FIRST_OPEN_SCRIPT = """
import json, sys, time
import allsource_lab as asl
start = time.perf_counter()
store = asl.open(sys.argv[1])
seconds = time.perf_counter() - start
store.close()
print(json.dumps(seconds))
"""


def bench_reopen(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    n = int(table.num_rows)
    path = folder / "reopen"
    with asl.open(path) as store:  # as a user would fill it: default settings, ten segments
        for part in tenths(table):
            store.append_batch(part)

    def run() -> float:
        start = time.perf_counter()
        store = asl.open(path)
        seconds = time.perf_counter() - start
        expect_events(store, n)
        store.close()
        return seconds

    run()  # untimed: the first open in this process loads its kernels
    again = repeat(sizes.repeats, run)
    first = repeat(min(sizes.repeats, 3), lambda: run_python(FIRST_OPEN_SCRIPT, str(path)))
    entity = str(table.column("entity_id")[0])
    fresh = repeat(sizes.repeats, lambda: run_python(OPEN_QUERY_SCRIPT, str(path), entity))

    def cold() -> float:
        # The very first open after install: numba compiles every kernel it reaches.
        with tempfile.TemporaryDirectory(prefix="asl-numba-") as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            return float(run_python(OPEN_QUERY_SCRIPT, str(path), entity, env=env))

    return [
        Figure("open_query_fresh_process", fresh),
        Figure("open_query_cold_cache", repeat(max(sizes.repeats // 2, 1), cold)),
        Figure("reopen", again),
        Figure("reopen_first_in_process", first),
    ]


OPEN_QUERY_SCRIPT = """
import json, sys, time
import allsource_lab as asl
start = time.perf_counter()
store = asl.open(sys.argv[1])
rows = store.events(entity_id=sys.argv[2]).to_arrow().num_rows
seconds = time.perf_counter() - start
store.close()
if not rows:
    raise SystemExit("the benchmark's entity query found no events")
print(json.dumps(seconds))
"""


MEMORY_SCRIPT = """
import gc, json, sys
import pyarrow as pa
import allsource_lab as asl
from allsource_lab.bench.common import anonymous_bytes, tenths
source, path, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
# The input is read from an Arrow file into exact-size buffers and stays alive throughout,
# so it counts on neither side of the difference. Built here from Python lists instead, the
# builders' freed slack stays resident, the store reuses it, and the figure halves.
with pa.OSFile(source) as f:
    table = pa.ipc.open_file(f).read_all()
gc.collect()
pa.default_memory_pool().release_unused()
store = asl.open(path)
opened = anonymous_bytes()
store.append_batch(table.slice(0, 100))
store.checkpoint()
gc.collect()
warmed, arrow = anonymous_bytes(), pa.total_allocated_bytes()
# The same rows ``copies`` times (zero-copy slices): the store gives each its own
# sequence, version and event id, so the store holds copies x the table's events.
for _ in range(copies):
    for part in tenths(table):
        store.append_batch(part)
store.checkpoint()
gc.collect()
after, arrow = anonymous_bytes(), pa.total_allocated_bytes() - arrow
store.close()
n = table.num_rows * copies
print(json.dumps([(after - opened) / n, (after - warmed) / n, arrow / n]))
"""

# Opens a store in a fresh process and reads one entity: what the open added to anonymous
# memory (the heap, not the pages of mapped files), per event.
OPENED_MEMORY_SCRIPT = """
import gc, json, sys
import allsource_lab as asl
from allsource_lab.bench.common import anonymous_bytes
gc.collect()
before = anonymous_bytes()
store = asl.open(sys.argv[1])
store.events(entity_id="order-1").to_arrow()
gc.collect()
print(json.dumps((anonymous_bytes() - before) / store.stats()["events"]))
"""


def bench_memory(folder: Path, table: pa.Table) -> list[Figure]:
    source = folder / "memory-input.arrow"
    with pa.OSFile(str(source), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    # The memory target is at 10M events, where a store's fixed costs (kernels, writers:
    # ~40 MB) are ~4 B an event; at 1M they are ~40.
    ten, one = folder / "memory", folder / "memory-1m"
    since_open, since_warm, arrow = run_python(
        MEMORY_SCRIPT, str(source), str(ten), str(MEMORY_COPIES)
    )
    run_python(MEMORY_SCRIPT, str(source), str(one), "1")
    return [
        Figure("memory", (run_python(OPENED_MEMORY_SCRIPT, str(ten)),)),
        Figure("memory_ingest", (since_open,)),
        Figure("memory_after_warmup", (since_warm,)),
        Figure("memory_arrow", (arrow,)),
        Figure("memory_1m", (run_python(OPENED_MEMORY_SCRIPT, str(one)),)),
    ]


MEMORY_COPIES = 10  # the memory run's store: the table this many times


IMPORT_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import allsource_lab as asl
store = asl.open(sys.argv[1])
opened = time.perf_counter() - start
store.append("order.placed", "order-1", {"amount": 42.5})
appended = time.perf_counter() - start
store.close()
print(json.dumps([opened, appended]))
"""


LOAD_EXT_SCRIPT = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "allsource_lab")
shell.run_line_magic("allsource", "open " + sys.argv[1])
seconds = time.perf_counter() - start
shell.run_line_magic("allsource", "close")
print(json.dumps(seconds))
"""


def bench_import(sizes: Sizes, folder: Path) -> list[Figure]:
    def run() -> list[float]:
        return list(run_python(IMPORT_SCRIPT, str(scratch(folder, "import"))))

    def load_ext() -> float:
        return float(run_python(LOAD_EXT_SCRIPT, str(scratch(folder, "load-ext"))))

    run()  # untimed: fills the numba cache if it is cold
    runs = [run() for _ in range(max(sizes.repeats, 3))]
    opened = tuple(r[0] for r in runs)
    appended = tuple(r[1] for r in runs)
    return [
        Figure("import_open", opened),
        Figure("import_open_append", appended),
        Figure("load_ext_open", tuple(load_ext() for _ in range(max(sizes.repeats, 3)))),
    ]
