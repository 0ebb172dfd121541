"""What every benchmark shares: the figures it reports, the sizes of its work, its data and
its timing helpers. The runner (:mod:`allsource_lab.bench.run`) and every group of figures
import this module; it imports none of them.

The events are orders over 10,000 entities with ~110-byte JSON payloads:

>>> len(orjson.dumps(order_payload(17)))
110
>>> [t.num_rows for t in tenths(arrow_events(25))]
[2, 3, 2, 3, 2, 3, 2, 3, 2, 3]
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

import allsource_lab as asl

__all__ = [
    "ENTITIES",
    "FULL",
    "NO_CHECKPOINT",
    "OPERATIONS",
    "PER_ENTITY",
    "QUICK",
    "READ_TYPES",
    "START",
    "STEP_US",
    "TARGETS",
    "TYPES",
    "Figure",
    "Sizes",
    "arrow_events",
    "batch_append_rate",
    "expect_events",
    "number",
    "order_aggregate",
    "order_payload",
    "read_events",
    "repeat",
    "run_python",
    "scratch",
    "single_rows",
    "tenths",
    "timed_events",
]

ENTITIES = 10_000
TYPES = ("order.placed", "order.paid")
# High enough that no automatic checkpoint happens inside a timed loop.
NO_CHECKPOINT = 10_000_000
# The read store (reads, windows, projections): PER_ENTITY events per entity, READ_TYPES
# event types.
READ_TYPES = 20
PER_ENTITY = 100
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STEP_US = 1_000  # event time of event i: START + i ms
# Every figure reported, by key: what it measures and its unit. A unit ending in "/s" is
# better higher, any other lower. Sizes are in the header: "the table" is the Arrow table
# of Sizes.batch events.
# Headline rows say "default settings": what a user gets from ``asl.open(path)``; the
# other rows name the setting they change.
OPERATIONS: dict[str, tuple[str, str]] = {
    "append_default": (
        "append, 1 event per call, default settings, timed until close() returns",
        "events/s",
    ),
    "append": ("append, fsync=interval (automatic checkpoints off)", "events/s"),
    "append_default_checkpoint": (
        "append, fsync=interval, automatic checkpoints, close() not timed",
        "events/s",
    ),
    "append_batch_default": (
        "append_batch, 5 x the table, event times, default settings, to close()",
        "events/s",
    ),
    "append_batch": (
        "append_batch of the table, fsync=always (automatic checkpoints off)",
        "events/s",
    ),
    "append_batch_default_checkpoint": (
        "append_batch of the table, fsync=always, auto checkpoints, no close()",
        "events/s",
    ),
    "checkpoint": ("checkpoint of 1000 events to Parquet, after append_batch", "ms"),
    "checkpoint_singles": ("checkpoint of 1000 events to Parquet, after single appends", "ms"),
    "open_query_fresh_process": (
        "open the table's store + events(entity_id=...), new process, warm cache",
        "s",
    ),
    "open_query_cold_cache": ("as above, first run after install (empty numba cache)", "s"),
    "reopen": ("reopen the table's store, open only (warm: same process, opened before)", "s"),
    "reopen_first_in_process": ("reopen, as above, first open in a fresh process", "s"),
    "memory": (
        "anonymous memory (RssAnon) per event, 10M-event store, open + one read, fresh process",
        "B/event",
    ),
    "memory_ingest": ("RssAnon growth per event while ingesting those 10M, since open", "B/event"),
    "memory_after_warmup": ("as above, growth since a first append + checkpoint", "B/event"),
    "memory_arrow": ("of which Arrow heap buffers held by the store after ingest", "B/event"),
    "memory_1m": ("RssAnon per event, 1M-event store, open + one read, fresh process", "B/event"),
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
    # eventsourcing applications (bench/eventsourcing_module.py), by persistence module.
    "es_save_allsource": (
        "eventsourcing app.save, 1 event, allsource_lab.eventsourcing, folder",
        "events/s",
    ),
    "es_save_allsource_memory": ("as above, allsource_lab.eventsourcing in memory", "events/s"),
    "es_save_sqlite": ("as above, the library's SQLite module (a file)", "events/s"),
    "es_save_popo": ("as above, the library's POPO module (in memory)", "events/s"),
    "es_save10_allsource": (
        "eventsourcing app.save, 10 events of one aggregate, allsource, folder",
        "events/s",
    ),
    "es_save10_allsource_memory": ("as above, allsource in memory", "events/s"),
    "es_save10_sqlite": ("as above, SQLite", "events/s"),
    "es_save10_popo": ("as above, POPO", "events/s"),
    "es_get100_allsource": (
        "eventsourcing repository.get, 100-event aggregate, allsource, reopened",
        "us",
    ),
    "es_get100_allsource_memory": ("as above, allsource in memory", "us"),
    "es_get100_sqlite": ("as above, SQLite, reopened", "us"),
    "es_get100_popo": ("as above, POPO", "us"),
    # Following (bench/follow.py): a read-only store following its writer, on the read
    # store; "spaced": reads > 1 ms apart, so each makes the whole check (three stats).
    "follow_state_reader": ("follow: state(entity_id) hot, read-only follower", "us"),
    "follow_state_writer": ("follow: as above, on the writable store", "us"),
    "follow_entity_reader": ("follow: events(entity_id=...) to Arrow, follower", "us"),
    "follow_entity_writer": ("follow: as above, on the writable store", "us"),
    "follow_state_spaced_reader": ("follow: state(entity_id) hot, spaced, follower", "us"),
    "follow_state_spaced_writer": ("follow: as above, on the writable store", "us"),
    "follow_entity_spaced_reader": ("follow: events(entity_id=...), spaced, follower", "us"),
    "follow_entity_spaced_writer": ("follow: as above, on the writable store", "us"),
    "follow_lag_p50_default": (
        "follow: writer's append (fsync=always) to reader's handler, p50, default",
        "ms",
    ),
    "follow_lag_p99_default": ("follow: as above, p99, default follow_interval_s", "ms"),
    "follow_lag_p50_fast": ("follow: as above, p50, follow_interval_s=0.005", "ms"),
    "follow_lag_p99_fast": ("follow: as above, p99, follow_interval_s=0.005", "ms"),
    "follow_take_wal": ("follow: refresh() taking in the table/10 as WAL records", "ms"),
    "follow_take_checkpoint": ("follow: refresh() taking in their checkpoint", "ms"),
    "follow_take_compaction": ("follow: refresh() taking in a compaction of the table", "s"),
}
# By figure key: our target, and the reference's published figure (CONTRIBUTING.md says
# what a headline figure must include).
# The goals of issue 19 are set on the default-settings rows; rows of other settings have
# no target, so a pass there cannot stand in for the default.
TARGETS: dict[str, tuple[float, str]] = {
    "append_default": (500_000, "469K/s"),
    "append_batch_default": (2_000_000, ""),
    "checkpoint": (3.5, "3.5 ms"),
    "checkpoint_singles": (3.5, "3.5 ms"),
    "open_query_fresh_process": (0.5, "~2 s (164K ev.)"),
    "memory": (100, "~6 KB"),
    "import_open": (1.5, ""),
    "load_ext_open": (1.5, ""),
    "read_entity": (20, "11.9 us"),
    "read_type": (2, "2.4 ms"),
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

    >>> Figure("append_default", (600_000.0,)).verdict(), Figure("append", (9.0,)).verdict()
    ('pass', '')
    >>> Figure("checkpoint", (4.2, 3.0, 9.9)).value
    4.2
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

    single: int  # events per timed single-append loop (automatic checkpoints off)
    single_default: int  # events per timed single-append loop, default settings
    batch: int  # events in the Arrow table for append_batch, reopen, memory and DuckDB
    checkpoints: int  # timed checkpoints of 1000 events
    peer_saves: int  # eventsourcing saves per run
    repeats: int  # runs per median
    reads: int  # events in the read store (100 per entity)


FULL = Sizes(
    single=200_000,
    single_default=1_000_000,
    batch=1_000_000,
    checkpoints=20,
    peer_saves=20_000,
    repeats=5,
    reads=1_000_000,
)
QUICK = Sizes(
    single=5_000,
    single_default=5_000,
    batch=20_000,
    checkpoints=5,
    peer_saves=300,
    repeats=2,
    reads=20_000,
)


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


def timed_events(table: pa.Table, first: int = 0) -> pa.Table:
    """``table`` with a ``timestamp`` column: row ``i`` at ``START + (first + i) ms``.

    >>> timed_events(arrow_events(3), first=2).column("timestamp")[0].as_py().isoformat()
    '2026-01-01T00:00:00.002000+00:00'
    """
    start_us = int(START.timestamp() * 1_000_000) + first * STEP_US
    times = start_us + np.arange(table.num_rows, dtype=np.int64) * STEP_US
    return table.append_column("timestamp", pa.array(times, pa.timestamp("us", tz="UTC")))


def tenths(table: pa.Table) -> list[pa.Table]:
    """The table as ten consecutive slices (zero-copy), e.g. to append in ten batches."""
    n = table.num_rows
    return [table.slice(i * n // 10, (i + 1) * n // 10 - i * n // 10) for i in range(10)]


def single_rows(n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Arguments for ``n`` single appends, built outside the timing (1000 distinct payloads)."""
    payloads = [order_payload(i) for i in range(1000)]
    entities = [f"order-{i}" for i in range(ENTITIES)]
    return [(TYPES[i & 1], entities[i % ENTITIES], payloads[i % 1000]) for i in range(n)]


def read_events(n: int) -> pa.Table:
    """``n`` events, ``n // 100`` entities of 100 events each, 20 types, rising times."""
    entities = max(n // PER_ENTITY, 1)
    start_us = int(START.timestamp() * 1_000_000)
    return pa.table(
        {
            "event_type": pa.array([f"type.{i % READ_TYPES}" for i in range(n)], pa.string()),
            "entity_id": pa.array([f"entity-{i % entities}" for i in range(n)], pa.string()),
            "payload": pa.array([orjson.dumps(order_payload(i)).decode() for i in range(n)]),
            "timestamp": pa.array(
                start_us + np.arange(n, dtype=np.int64) * STEP_US, pa.timestamp("us", tz="UTC")
            ),
        }
    )


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


def anonymous_bytes() -> int:
    """This process's anonymous resident memory (RssAnon: heap, not mapped files' pages)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no RssAnon line (not Linux?)")


def run_python(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``script`` in a fresh interpreter (``env``: its whole environment, if given) and
    return the JSON its last line prints."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600, env=env
    )
    if done.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the peer's aggregate (eventsourcing): saved by peers, rebuilt by reads --------------


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


# -- reporting ---------------------------------------------------------------------------


def number(value: float) -> str:
    """A figure as people read it.

    >>> number(1234567.8), number(0.01234), number(4.5)
    ('1,234,568', '0.0123', '4.5')
    """
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
