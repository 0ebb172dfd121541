"""The benchmark behind DESIGN.md §6: ``python -m allsource_lab.bench`` (``make bench``).

Every figure is a median over several runs, printed beside its target and the Rust
reference's published figure; nothing here asserts a speed. Peers run in the same
process on the same data: the ``eventsourcing`` library (in-memory and SQLite) and a
plain DuckDB insert of the same Arrow table.

Options: ``--quick`` (small sizes, for the test suite), ``--only a,b``, ``--json PATH``.
"""

from __future__ import annotations

import argparse
import functools
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

import allsource_lab as asl

PAYLOAD = {"amount": 42.5, "sku": "sku-00017", "qty": 3, "note": "gift wrap, leave at door"}


@dataclass(frozen=True)
class Figure:
    """One measured figure with what it is compared against."""

    name: str
    value: float
    unit: str
    target: str
    reference: str

    def met(self) -> str:
        if not self.target:
            return ""
        op, number = self.target.split(" ", 1)
        goal = float(number)
        ok = self.value >= goal if op == ">=" else self.value <= goal
        return "yes" if ok else "no"


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    single: int
    batch: int
    reopen: int
    memory: int
    peers: int
    repeats: int


FULL = Sizes(
    single=200_000, batch=1_000_000, reopen=1_000_000, memory=1_000_000, peers=20_000, repeats=5
)
QUICK = Sizes(single=5_000, batch=20_000, reopen=20_000, memory=20_000, peers=500, repeats=2)


def median_of(repeats: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeats))


def arrow_events(n: int, entities: int = 10_000) -> pa.Table:
    """``n`` events over ``entities`` ids with ~110-byte JSON payloads."""
    payloads = [
        f'{{"amount":{i % 997}.5,"sku":"sku-{i % 50_000:05d}","qty":{i % 9},'
        f'"note":"gift wrap, leave at door, ring twice"}}'
        for i in range(n)
    ]
    return pa.table(
        {
            "event_type": pa.array(["order.placed", "order.paid"] * (n // 2) + ["x"] * (n % 2)),
            "entity_id": pa.array([f"order-{i % entities}" for i in range(n)]),
            "payload": pa.array(payloads),
        }
    )


def bench_single(sizes: Sizes, folder: Path) -> list[Figure]:
    entities = [f"order-{i}" for i in range(10_000)]
    n = sizes.single

    def run(checkpoint_every: int) -> float:
        path = folder / f"single-{time.monotonic_ns()}"
        store = asl.open(path, fsync="interval", checkpoint_every_events=checkpoint_every)
        for i in range(2_000):  # warm: entities known, first allocations done
            store.append("order.placed", entities[i % 10_000], PAYLOAD)
        append = store.append
        start = time.perf_counter()
        for i in range(n):
            append("order.placed", entities[i % 10_000], PAYLOAD)
        seconds = time.perf_counter() - start
        store.close()
        shutil.rmtree(path)
        return n / seconds

    return [
        Figure(
            "append, one event per call (fsync=interval)",
            median_of(sizes.repeats, lambda: run(10**9)),
            "events/s",
            ">= 500000",
            "469K/s",
        ),
        Figure(
            "append, with default checkpointing",
            median_of(sizes.repeats, lambda: run(asl.Settings().checkpoint_every_events)),
            "events/s",
            "",
            "",
        ),
    ]


def bench_batch(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    def run() -> float:
        path = folder / f"batch-{time.monotonic_ns()}"
        store = asl.open(path, fsync="always", checkpoint_every_events=10**9)
        start = time.perf_counter()
        store.append_batch(table)
        seconds = time.perf_counter() - start
        store.close()
        shutil.rmtree(path)
        return float(table.num_rows / seconds)

    return [
        Figure(
            f"append_batch, {table.num_rows:,} events from Arrow (fsync per batch)",
            median_of(sizes.repeats, run),
            "events/s",
            ">= 3000000",
            "",
        )
    ]


def bench_checkpoint(sizes: Sizes, folder: Path) -> list[Figure]:
    table = arrow_events(1_000)
    path = folder / "checkpoint"
    store = asl.open(path, checkpoint_every_events=10**9)

    def run() -> float:
        store.append_batch(table)
        start = time.perf_counter()
        store.checkpoint()
        return (time.perf_counter() - start) * 1000

    result = median_of(max(20, sizes.repeats), run)
    store.close()
    return [Figure("checkpoint of 1000 events to Parquet", result, "ms", "<= 3.5", "3.5 ms")]


def bench_reopen(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    path = folder / "reopen"
    with asl.open(path, checkpoint_every_events=10**9) as store:
        store.append_batch(table)

    def run() -> float:
        gc.collect()
        start = time.perf_counter()
        store = asl.open(path)
        seconds = time.perf_counter() - start
        store.close()
        return seconds

    return [
        Figure(
            f"reopen a {table.num_rows:,}-event store (clean close)",
            median_of(sizes.repeats, run),
            "s",
            "<= 0.5",
            "~2 s",
        )
    ]


MEMORY_SCRIPT = """
import sys, psutil, allsource_lab as asl
from allsource_lab.bench import arrow_events
n, path = int(sys.argv[1]), sys.argv[2]
tables = [arrow_events(n // 10) for _ in range(10)]
proc = psutil.Process()
store = asl.open(path, checkpoint_every_events=10**9)
store.append_batch(tables[0].slice(0, 10))
before = proc.memory_info().rss
for t in tables:
    store.append_batch(t)
store.checkpoint()
del tables
import gc; gc.collect()
print((proc.memory_info().rss - before) / n)
"""


def bench_memory(sizes: Sizes, folder: Path) -> list[Figure]:
    # Tables built before the baseline: their memory is the caller's, not the store's.
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(sizes.memory), str(folder / "memory")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        Figure(
            f"resident memory per event at {sizes.memory:,} events",
            float(out.strip().splitlines()[-1]),
            "B/event",
            "<= 300",
            "~6 KB",
        )
    ]


def bench_import(sizes: Sizes, folder: Path) -> list[Figure]:
    script = (
        "import time; t = time.perf_counter(); import allsource_lab as asl; "
        f"s = asl.open({str(folder / 'import')!r}); s.append('a', 'b', {{}}); "
        "print(time.perf_counter() - t); s.close()"
    )

    def run() -> float:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        return float(out.strip().splitlines()[-1])

    run()  # fills the numba cache if it is cold
    return [
        Figure(
            "import allsource_lab + open (warm numba cache)",
            median_of(sizes.repeats, run),
            "s",
            "<= 1.5",
            "",
        )
    ]


def bench_peers(sizes: Sizes, folder: Path, table: pa.Table) -> list[Figure]:
    figures = []
    for label, env in (
        ("eventsourcing save, in memory (POPO)", {}),
        (
            "eventsourcing save, SQLite",
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(folder / "es.sqlite"),
            },
        ),
    ):
        rate = median_of(sizes.repeats, functools.partial(_eventsourcing, env, sizes.peers))
        figures.append(Figure(label, rate, "events/s", "", ""))
    import duckdb

    def duck() -> float:
        con = duckdb.connect(str(folder / f"duck-{time.monotonic_ns()}.db"))
        con.register("incoming", table)
        start = time.perf_counter()
        con.execute("create table events as select * from incoming")
        seconds = time.perf_counter() - start
        con.close()
        return float(table.num_rows / seconds)

    figures.append(
        Figure(
            "DuckDB: insert the same Arrow table",
            median_of(sizes.repeats, duck),
            "events/s",
            "",
            "",
        )
    )
    return figures


_ORDER_CLASS: list[type] = []


def _order_aggregate() -> type:
    """The peer's aggregate class, defined once (eventsourcing registers classes by name)."""
    if not _ORDER_CLASS:
        from eventsourcing.domain import Aggregate, event

        class Order(Aggregate):
            @event("Placed")
            def __init__(self, amount: float) -> None:
                self.amount = amount

            @event("Changed")
            def change(self, amount: float) -> None:
                self.amount = amount

        _ORDER_CLASS.append(Order)
    return _ORDER_CLASS[0]


def _eventsourcing(env: dict[str, str], n: int) -> float:
    from eventsourcing.application import Application

    Order = _order_aggregate()
    app: Application[Any] = Application(env=env)
    orders = [Order(1.0) for _ in range(100)]
    for order in orders:
        app.save(order)
    start = time.perf_counter()
    for i in range(n):
        order = orders[i % 100]
        order.change(float(i))
        app.save(order)
    return n / (time.perf_counter() - start)


BENCHES = ("single", "batch", "checkpoint", "reopen", "memory", "import", "peers")


def run(sizes: Sizes, only: set[str]) -> list[Figure]:
    """Run the chosen benchmarks in a scratch folder and return their figures."""
    folder = Path(tempfile.mkdtemp(prefix="asl-bench-"))
    try:
        figures: list[Figure] = []
        empty = pa.table({})
        table = arrow_events(sizes.batch) if only & {"batch", "peers"} else empty
        reopen_table = arrow_events(sizes.reopen) if "reopen" in only else empty
        steps: dict[str, Callable[[], list[Figure]]] = {
            "single": lambda: bench_single(sizes, folder),
            "batch": lambda: bench_batch(sizes, folder, table),
            "checkpoint": lambda: bench_checkpoint(sizes, folder),
            "reopen": lambda: bench_reopen(sizes, folder, reopen_table),
            "memory": lambda: bench_memory(sizes, folder),
            "import": lambda: bench_import(sizes, folder),
            "peers": lambda: bench_peers(sizes, folder, table),
        }
        for name in BENCHES:
            if name in only:
                new = steps[name]()
                for figure in new:
                    print_row(figure)
                figures.extend(new)
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def print_row(f: Figure) -> None:
    value = f"{f.value:,.0f}" if f.value >= 100 else f"{f.value:.3g}"
    print(
        f"| {f.name:<58} | {value:>12} {f.unit:<8} | {f.target:>11} | {f.reference:>7} "
        f"| {f.met():>3} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allsource_lab.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repeats")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHES)}")
    sizes = QUICK if args.quick else FULL
    print(
        f"AllSource Lab {asl.__version__} benchmark: Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, medians of {sizes.repeats}"
    )
    print(f"| {'operation':<58} | {'measured':>21} | {'target':>11} | {'ref.':>7} | met |")
    print(f"|{'-' * 60}|{'-' * 23}|{'-' * 13}|{'-' * 9}|-----|")
    figures = run(sizes, only)
    if args.json:
        args.json.write_text(json.dumps([f.__dict__ for f in figures], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
