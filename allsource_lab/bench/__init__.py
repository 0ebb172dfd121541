"""The benchmark behind DESIGN.md §6: ``python -m allsource_lab.bench`` (``make bench``).

Every figure is a median over several runs, printed beside its target and the Rust
reference's published figure, with ``pass``/``miss``; nothing here asserts a speed. Peers
run in the same process on the same kind of data: the ``eventsourcing`` library (in-memory
and SQLite), a DuckDB insert of the same Arrow table, and plain pyarrow file I/O as the floor
under our append_batch, checkpoint and reopen.

Options: ``--quick`` (small sizes, 2 repeats, for the test suite), ``--only a,b`` (names in
``BENCHES``), ``--json PATH`` (also write the machine facts and figures as JSON).

The events are orders over 10,000 entities with ~110-byte JSON payloads:

>>> len(orjson.dumps(order_payload(17)))
110
>>> [t.num_rows for t in tenths(arrow_events(25))]
[2, 3, 2, 3, 2, 3, 2, 3, 2, 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

import allsource_lab as asl

ENTITIES = 10_000
TYPES = ("order.placed", "order.paid")
# High enough that no automatic checkpoint happens inside a timed loop.
NO_CHECKPOINT = 10_000_000
# Every figure reported, by key: what it measures and its unit. A unit ending in "/s" is
# better higher, any other lower. Sizes are in the header: "the table" is the Arrow table
# of Sizes.batch events.
OPERATIONS: dict[str, tuple[str, str]] = {
    "append": ("append, one event per call, fsync=interval", "events/s"),
    "append_default_checkpoint": ("append, as above, default checkpointing", "events/s"),
    "append_batch": ("append_batch of the table, fsync=always", "events/s"),
    "append_batch_default_checkpoint": (
        "append_batch, as above, default checkpointing (seals in the call)",
        "events/s",
    ),
    "checkpoint": ("checkpoint of 1000 events to Parquet, after append_batch", "ms"),
    "checkpoint_singles": ("checkpoint of 1000 events to Parquet, after single appends", "ms"),
    "reopen": ("reopen a store of the table after a clean close (open only)", "s"),
    "reopen_first_in_process": ("reopen, as above, first open in a fresh process", "s"),
    "memory": ("resident memory per event at 10M events (the table 10x), since open", "B/event"),
    "memory_after_warmup": ("as above, growth since a first append + checkpoint", "B/event"),
    "memory_arrow": ("of which Arrow buffers held by the store", "B/event"),
    "memory_1m": ("resident memory per event at 1M events (the table once), since open", "B/event"),
    "import_open": ("import allsource_lab + open a new store, fresh process", "s"),
    "import_open_append": ("import + open + first append, fresh process", "s"),
    "load_ext_open": ("%load_ext allsource_lab + %allsource open, fresh IPython", "s"),
    "eventsourcing_popo": ("peer: eventsourcing Application.save, 1 event, POPO", "events/s"),
    "eventsourcing_sqlite": ("peer: eventsourcing Application.save, 1 event, SQLite", "events/s"),
    "duckdb_insert": ("peer: DuckDB insert of the table into a file table", "events/s"),
    "pyarrow_ipc_write": ("peer: pyarrow writes the table as Arrow IPC + fsync", "events/s"),
    "pyarrow_write_1000": ("peer: pyarrow writes 1000 events to Parquet + fsync", "ms"),
    "pyarrow_read_parquet": ("peer: pyarrow reads the table from 10 Parquet files", "s"),
    # Reads, on the read store (bench_reads.py): 100 events per entity, 20 types.
    "read_entity": ("events(entity_id=...) of a 100-event entity, to Arrow", "us"),
    "read_entity_positions": ("events(entity_id=...), len() only (index, no rows)", "us"),
    "read_type": ("events(event_type=...) to Arrow, 1/20 of the store", "ms"),
    "state": ("state(entity_id), current, kept hot", "us"),
    "state_fold": ("state(entity_id), first call: folds 100 payloads", "us"),
    "state_as_of": ("state(entity_id, as_of=mid-history), from a snapshot", "us"),
    "state_as_of_cold": ("state(entity_id, as_of=mid-history), no snapshot yet", "us"),
    "states_as_of": ("states(as_of=mid-history), every entity in one call", "s"),
    "sql_count_by_type": ("sql: select event_type, count(*) from events group by 1", "ms"),
    "eventsourcing_rebuild_100": ("peer: eventsourcing rebuilds a 100-event aggregate", "us"),
    # Schemas (bench_schemas.py): the table's size, ~170-byte payloads, 8-property schema.
    "append_batch_schema": ("append_batch with a registered 8-property schema", "events/s"),
    "append_batch_no_schema": ("append_batch of the same events, no schema", "events/s"),
    "jsonschema_validate": ("peer: jsonschema validates the same payloads alone", "events/s"),
    # Projections (bench_projections.py): replays over the read store, live on the table.
    "replay_counter": ("replay of the read store into EventCounter (batch path)", "s"),
    "replay_snapshots": ("replay of the read store into EntitySnapshots (batch path)", "s"),
    "replay_counter_rate": ("replay into EventCounter, as a rate", "events/s"),
    "replay_snapshots_rate": ("replay into EntitySnapshots, as a rate", "events/s"),
    "replay_counter_one_by_one": ("replay into EventCounter, one event at a time", "events/s"),
    "replay_snapshots_one_by_one": (
        "replay into EntitySnapshots, one event at a time",
        "events/s",
    ),
    "append_batch_projections": (
        "append_batch of the table, fsync=always, 2 live projections",
        "events/s",
    ),
    "append_batch_no_projections": ("append_batch of the table, as above, none", "events/s"),
    # Windows (bench_windows.py), on the read store; the peer is pandas on a DataFrame.
    "window_tumbling_count": ("window: tumbling 1-minute count over every event", "ms"),
    "window_hopping_keyed": ("window: hopping 5m/1m by type, sum+avg of payload.amount", "ms"),
    "window_session_entity": ("window: sessions per entity (gap 30 s)", "ms"),
    "pandas_resample_count": ("peer: pandas resample('1min').size() of the same events", "ms"),
    "pandas_groupby_keyed": ("peer: pandas groupby(5-minute Grouper, type) sum+mean", "ms"),
    "append_batch_pipeline": (
        "append_batch of the read events, fsync=always, a live windowed pipeline",
        "events/s",
    ),
    "append_batch_no_pipeline": ("append_batch of the read events, as above, none", "events/s"),
}
# DESIGN.md §6, by figure key: our target, and the reference's published figure.
TARGETS: dict[str, tuple[float, str]] = {
    "append": (500_000, "469K/s"),
    "append_batch": (3_000_000, ""),
    "checkpoint": (3.5, "3.5 ms"),
    "checkpoint_singles": (3.5, "3.5 ms"),
    "reopen": (0.5, "~2 s (164K ev.)"),
    "memory": (300, "~6 KB"),
    "import_open": (1.5, ""),
    "load_ext_open": (1.5, ""),
    "read_entity": (12, "11.9 us"),
    "read_type": (2.4, "2.4 ms"),
    "state": (3.5, "3.5 us"),
    "state_as_of": (60, ""),
    "append_batch_schema": (1_000_000, ""),
    "replay_counter": (0.5, ""),
    "replay_snapshots": (3.0, ""),
    "window_tumbling_count": (25, ""),
}


@dataclass(frozen=True)
class Figure:
    """One measured figure of an operation in ``OPERATIONS``.

    >>> Figure("append", (600_000.0,)).verdict(), Figure("checkpoint", (4.2, 3.0, 9.9)).value
    ('pass', 4.2)
    """

    key: str
    runs: tuple[float, ...]  # one result per run; the figure is their median

    @property
    def value(self) -> float:
        return statistics.median(self.runs)

    def spread(self) -> str:
        return f"{number(min(self.runs))}–{number(max(self.runs))}" if len(self.runs) > 1 else ""

    @property
    def name(self) -> str:
        return OPERATIONS[self.key][0]

    @property
    def unit(self) -> str:
        return OPERATIONS[self.key][1]

    def verdict(self) -> str:
        if self.key not in TARGETS:
            return ""
        goal = TARGETS[self.key][0]
        met = self.value >= goal if self.unit.endswith("/s") else self.value <= goal
        return "pass" if met else "miss"

    def target(self) -> str:
        if self.key not in TARGETS:
            return ""
        return f"{'>=' if self.unit.endswith('/s') else '<='} {number(TARGETS[self.key][0])}"

    def reference(self) -> str:
        return TARGETS.get(self.key, (0, ""))[1]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "runs": list(self.runs),
            "unit": self.unit,
            "target": self.target(),
            "reference": self.reference(),
            "verdict": self.verdict(),
        }


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    single: int  # events per timed single-append loop
    batch: int  # events in the Arrow table for append_batch, reopen, memory and DuckDB
    checkpoints: int  # timed checkpoints of 1000 events
    peer_saves: int  # eventsourcing saves per run
    repeats: int  # runs per median
    reads: int  # events in the read store (100 per entity)


FULL = Sizes(
    single=200_000, batch=1_000_000, checkpoints=20, peer_saves=20_000, repeats=5, reads=1_000_000
)
QUICK = Sizes(single=5_000, batch=20_000, checkpoints=5, peer_saves=300, repeats=2, reads=20_000)


# -- data --------------------------------------------------------------------------------


def order_payload(i: int) -> dict[str, Any]:
    """The ``i``-th order payload: ~110 bytes of JSON, varied so neighbours differ."""
    return {
        "amount": (i % 997) + 0.5,
        "sku": f"sku-{i % 50_000:05d}",
        "qty": i % 9 + 1,
        "note": "gift wrap, leave at the side door, ring twice, no signature",
    }


def arrow_events(n: int) -> pa.Table:
    """``n`` events over ``ENTITIES`` ids, payloads as JSON text (what ``append_batch`` takes)."""
    return pa.table(
        {
            "event_type": pa.array([TYPES[i & 1] for i in range(n)], pa.string()),
            "entity_id": pa.array([f"order-{i % ENTITIES}" for i in range(n)], pa.string()),
            "payload": pa.array([orjson.dumps(order_payload(i)).decode() for i in range(n)]),
        }
    )


def tenths(table: pa.Table) -> list[pa.Table]:
    """The table as ten consecutive slices (zero-copy), e.g. to append in ten batches."""
    n = table.num_rows
    return [table.slice(i * n // 10, (i + 1) * n // 10 - i * n // 10) for i in range(10)]


def single_rows(n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Arguments for ``n`` single appends, built outside the timing (1000 distinct payloads)."""
    payloads = [order_payload(i) for i in range(1000)]
    entities = [f"order-{i}" for i in range(ENTITIES)]
    return [(TYPES[i & 1], entities[i % ENTITIES], payloads[i % 1000]) for i in range(n)]


# -- measuring ---------------------------------------------------------------------------


def repeat(repeats: int, run: Callable[[], float]) -> tuple[float, ...]:
    """The results of ``repeats`` calls of ``run``, each after a full garbage collection."""
    results = []
    for _ in range(repeats):
        gc.collect()
        results.append(run())
    return tuple(results)


def scratch(folder: Path, name: str) -> Path:
    """A path under ``folder`` that no earlier run used."""
    return folder / f"{name}-{time.monotonic_ns()}"


def batch_append_rate(
    folder: Path,
    table: pa.Table,
    prepare: Callable[[asl.EventStore], None] | None = None,
    check: Callable[[asl.EventStore], bool] | None = None,
) -> float:
    """Events/s of one ``append_batch`` of ``table`` into a fresh store (fsync per batch,
    no checkpoint), after ``prepare(store)``; ``check(store)`` must hold afterwards."""
    path = scratch(folder, "append")
    store = asl.open(path, fsync="always", checkpoint_every_events=NO_CHECKPOINT)
    try:
        if prepare is not None:
            prepare(store)
        start = time.perf_counter()
        store.append_batch(table)
        seconds = time.perf_counter() - start
        if check is not None and not check(store):
            raise RuntimeError("the benchmark's batch was not seen where it should be")
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)
    return float(table.num_rows / seconds)


def expect_events(store: asl.EventStore, n: int) -> None:
    """Refuse to report a fast figure for work that was not done."""
    got = store.stats()["events"]
    if got != n:
        raise RuntimeError(f"benchmark store holds {got} events, expected {n}")


def run_python(script: str, *args: str) -> Any:
    """Run ``script`` in a fresh interpreter and return the JSON its last line prints."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600
    )
    if done.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- our store ---------------------------------------------------------------------------


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

    every = asl.Settings().checkpoint_every_events
    plain = repeat(sizes.repeats, lambda: run(NO_CHECKPOINT))
    checkpointed = repeat(sizes.repeats, lambda: run(every))
    return [Figure("append", plain), Figure("append_default_checkpoint", checkpointed)]


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
    plain = repeat(sizes.repeats, lambda: run(NO_CHECKPOINT))
    checkpointed = repeat(sizes.repeats, lambda: run(asl.Settings().checkpoint_every_events))
    return [Figure("append_batch", plain), Figure("append_batch_default_checkpoint", checkpointed)]


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
    return [Figure("reopen", again), Figure("reopen_first_in_process", first)]


MEMORY_SCRIPT = """
import gc, json, sys
import psutil
import pyarrow as pa
import allsource_lab as asl
from allsource_lab.bench import tenths
source, path, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
# The input is read from an Arrow file into exact-size buffers and stays alive throughout,
# so it counts on neither side of the difference. Built here from Python lists instead, the
# builders' freed slack stays resident, the store reuses it, and the figure halves.
with pa.OSFile(source) as f:
    table = pa.ipc.open_file(f).read_all()
gc.collect()
pa.default_memory_pool().release_unused()
rss = psutil.Process().memory_info
store = asl.open(path)
opened = rss().rss
store.append_batch(table.slice(0, 100))
store.checkpoint()
gc.collect()
warmed, arrow = rss().rss, pa.total_allocated_bytes()
# The same rows ``copies`` times (zero-copy slices): the store gives each its own
# sequence, version and event id, so the store holds copies x the table's events.
for _ in range(copies):
    for part in tenths(table):
        store.append_batch(part)
store.checkpoint()
gc.collect()
after, arrow = rss().rss, pa.total_allocated_bytes() - arrow
n = table.num_rows * copies
print(json.dumps([(after - opened) / n, (after - warmed) / n, arrow / n]))
"""


def bench_memory(folder: Path, table: pa.Table) -> list[Figure]:
    source = folder / "memory-input.arrow"
    with pa.OSFile(str(source), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    # DESIGN's target is at 10M events, where a store's fixed costs (kernels, writers:
    # ~40 MB) are ~4 B an event; at 1M they are ~40.
    since_open, since_warm, arrow = run_python(
        MEMORY_SCRIPT, str(source), str(folder / "memory"), str(MEMORY_COPIES)
    )
    one = run_python(MEMORY_SCRIPT, str(source), str(folder / "memory-1m"), "1")[0]
    return [
        Figure("memory", (since_open,)),
        Figure("memory_after_warmup", (since_warm,)),
        Figure("memory_arrow", (arrow,)),
        Figure("memory_1m", (one,)),
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


# -- peers -------------------------------------------------------------------------------


def bench_peers(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    repeats = min(sizes.repeats, 3)

    def popo() -> float:
        return eventsourcing_save_rate(
            {"PERSISTENCE_MODULE": "eventsourcing.popo"}, sizes.peer_saves
        )

    def sqlite() -> float:
        db = scratch(folder, "es").with_suffix(".db")
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}
        return eventsourcing_save_rate(env, sizes.peer_saves)

    return [
        Figure("eventsourcing_popo", repeat(repeats, popo)),
        Figure("eventsourcing_sqlite", repeat(repeats, sqlite)),
        Figure("duckdb_insert", repeat(repeats, lambda: duckdb_insert_rate(folder, table))),
        *parquet_floors(sizes, folder, table),
    ]


_ORDER_CLASS: list[type] = []


def order_aggregate() -> type:
    """The peer's aggregate, defined once: eventsourcing resolves event classes by name."""
    if not _ORDER_CLASS:
        from eventsourcing.domain import Aggregate, event

        class Order(Aggregate):
            @event("Placed")
            def __init__(self, sku: str) -> None:
                self.sku = sku

            @event("Changed")
            def change(self, amount: float, sku: str, qty: int, note: str) -> None:
                self.amount, self.sku, self.qty, self.note = amount, sku, qty, note

        _ORDER_CLASS.append(Order)
    return _ORDER_CLASS[0]


def eventsourcing_save_rate(env: dict[str, str], n: int) -> float:
    """Events/s of ``Application.save`` with one new event per save, over 100 aggregates."""
    from eventsourcing.application import Application

    order_cls = order_aggregate()
    app: Application[Any] = Application(env=env)
    orders = [order_cls("sku-00000") for _ in range(100)]
    app.save(*orders)
    payloads = [order_payload(i) for i in range(1000)]
    start = time.perf_counter()
    for i in range(n):
        order = orders[i % 100]
        order.change(**payloads[i % 1000])
        app.save(order)
    seconds = time.perf_counter() - start
    app.close()
    return n / seconds


def duckdb_insert_rate(folder: Path, table: pa.Table) -> float:
    """Rows/s of one ``INSERT ... SELECT`` of an Arrow table into a file-backed DuckDB table."""
    import duckdb

    con = duckdb.connect(str(scratch(folder, "duck").with_suffix(".db")))
    try:
        con.register("incoming", table)
        con.execute("create table events as select * from incoming limit 0")
        start = time.perf_counter()
        con.execute("insert into events select * from incoming")
        return int(table.num_rows) / (time.perf_counter() - start)
    finally:
        con.close()


def parquet_floors(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    """Plain pyarrow doing the file part of an append_batch, a checkpoint and a reopen."""
    thousand = table.slice(0, 1000)
    parts = folder / "parquet-parts"
    parts.mkdir()
    for i, part in enumerate(tenths(table)):
        pq.write_table(part, parts / f"{i}.parquet", compression="zstd", compression_level=1)

    def write_ipc() -> float:
        path = scratch(folder, "table").with_suffix(".arrow")
        start = time.perf_counter()
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
            out.write_table(table)
        fsync(path)
        return int(table.num_rows) / (time.perf_counter() - start)

    def write_thousand() -> float:
        path = scratch(folder, "thousand").with_suffix(".parquet")
        start = time.perf_counter()
        pq.write_table(thousand, path, compression="zstd", compression_level=1)
        fsync(path)
        return (time.perf_counter() - start) * 1000

    def read_all() -> float:
        start = time.perf_counter()
        for path in sorted(parts.iterdir()):
            pq.read_table(path)
        return time.perf_counter() - start

    return [
        Figure("pyarrow_ipc_write", repeat(sizes.repeats, write_ipc)),
        Figure("pyarrow_write_1000", repeat(sizes.checkpoints, write_thousand)),
        Figure("pyarrow_read_parquet", repeat(sizes.repeats, read_all)),
    ]


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- running and reporting ---------------------------------------------------------------

BENCHES = (
    "single",
    "batch",
    "checkpoint",
    "reopen",
    "memory",
    "import",
    "peers",
    "reads",
    "schemas",
    "projections",
    "windows",
)


def run(sizes: Sizes, only: set[str]) -> list[Figure]:
    """Run the chosen benchmarks in a scratch folder, printing each row as it is measured."""
    from allsource_lab.bench.projections import bench_projections
    from allsource_lab.bench.reads import bench_reads  # they import this module
    from allsource_lab.bench.schemas import bench_schemas
    from allsource_lab.bench.windows import bench_windows

    folder = Path(tempfile.mkdtemp(prefix="asl-bench-"))
    try:
        # Built once, outside every timing; only "single" and "import" do without it.
        own_data = {"single", "import", "reads", "schemas", "projections", "windows"}
        table = arrow_events(sizes.batch if only - own_data else 0)
        steps: dict[str, Callable[[], list[Figure]]] = {
            "single": lambda: bench_single(sizes, folder),
            "batch": lambda: bench_batch(sizes, folder, table),
            "checkpoint": lambda: bench_checkpoint(sizes, folder, table),
            "reopen": lambda: bench_reopen(sizes, folder, table),
            "memory": lambda: bench_memory(folder, table),
            "import": lambda: bench_import(sizes, folder),
            "peers": lambda: bench_peers(sizes, folder, table),
            "reads": lambda: bench_reads(sizes, folder),
            "schemas": lambda: bench_schemas(sizes, folder),
            "projections": lambda: bench_projections(sizes, folder),
            "windows": lambda: bench_windows(sizes, folder),
        }
        figures: list[Figure] = []
        for name in BENCHES:
            if name in only:
                for figure in steps[name]():
                    print_row(figure)
                    figures.append(figure)
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def number(value: float) -> str:
    """A figure as people read it.

    >>> number(1234567.8), number(0.01234), number(4.5)
    ('1,234,568', '0.0123', '4.5')
    """
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


ROW = "| {:<72} | {:>18} | {:>21} | {:>14} | {:>15} | {:>4} |"


def print_row(f: Figure) -> None:
    value = f"{number(f.value)} {f.unit}"
    print(ROW.format(f.name, value, f.spread(), f.target(), f.reference(), f.verdict()), flush=True)


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on."""
    import duckdb
    import numba
    import numpy

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")  # Linux names the model here; elsewhere, processor()
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    names = [s for s in text.splitlines() if s.startswith("model name")]
    if names:
        model = names[0].split(":", 1)[1].strip()
    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "allsource_lab": asl.__version__,
        "pyarrow": pa.__version__,
        "duckdb": duckdb.__version__,
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        # Other work on the machine skews every figure; this shows whether there was any.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def print_header(facts: dict[str, Any], sizes: Sizes) -> None:
    print(
        f"AllSource Lab {facts['allsource_lab']} benchmark on {facts['cpu']}, "
        f"{facts['cpu_count']} CPUs ({facts['cpus_usable']} usable), {facts['python']}, "
        f"{facts['platform']}; pyarrow {facts['pyarrow']}, duckdb {facts['duckdb']}, "
        f"numba {facts['numba']}, numpy {facts['numpy']}; "
        f"load average at start {facts['load_average_at_start']}"
    )
    print(
        f"Single appends: {sizes.single:,} per run; the table: {sizes.batch:,} events over "
        f"{ENTITIES:,} entities, ~110-byte payloads; the read store: {sizes.reads:,} events, "
        f"100 per entity, 20 types; eventsourcing: {sizes.peer_saves:,} saves. "
        f"Medians of {sizes.repeats} runs ({sizes.checkpoints} checkpoints, 1 memory run)."
    )
    print(ROW.format("operation", "median", "min–max of runs", "target", "reference", "met"))
    print(ROW.format(*("-" * w for w in (72, 18, 21, 14, 15, 4))).replace(" ", "-"))


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the table, and write the JSON if asked."""
    parser = argparse.ArgumentParser(prog="python -m allsource_lab.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 repeats")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only or only - set(BENCHES):
        parser.error(f"--only takes names from {', '.join(BENCHES)}; got {args.only!r}")
    sizes = QUICK if args.quick else FULL
    facts = machine_facts()
    print_header(facts, sizes)
    figures = run(sizes, only)
    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"Load average at end {facts['load_average_at_end']} (on {facts['cpu_count']} CPUs).")
    if args.json:
        rows = [f.as_json() for f in figures]
        report = {"machine": facts, "sizes": asdict(sizes), "figures": rows}
        args.json.write_text(json.dumps(report, indent=2))
    return 0
