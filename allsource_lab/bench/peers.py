"""The peers' figures, measured on the same kind of data as ours (``--only peers``): the
``eventsourcing`` library saving one event per call (in memory and on SQLite), a DuckDB
insert of the batch table, and plain pyarrow writing and reading the same files our
``append_batch``, checkpoint and reopen write and read (the floor under them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from allsource_lab.bench.common import (
    Figure,
    Sizes,
    order_aggregate,
    order_payload,
    repeat,
    scratch,
    tenths,
)

__all__ = ["bench_peers", "duckdb_insert_rate", "eventsourcing_save_rate", "parquet_floors"]


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
