"""Window figures (``python -m allsource_lab.bench --only windows``).

On the read store of :mod:`allsource_lab.bench.reads` (``Sizes.reads`` events, event i at
START + i ms, 100 events per entity, 20 types), reopened read-only: a tumbling 1-minute
count over every event, a hopping window (5 minutes every minute) keyed by type with the
sum and average of ``payload.amount``, and session windows per entity (gap 30 s). The
peer is pandas on the same data already in a DataFrame (``resample`` and ``groupby``).
Live pipeline overhead: ``append_batch`` of the same events into a fresh store with and
without a windowed pipeline.

>>> sizes = Sizes(
...     single=1, single_default=1, batch=1, checkpoints=1, peer_saves=1, repeats=1, reads=2_000
... )
>>> import tempfile
>>> sorted(f.key for f in bench_windows(sizes, Path(tempfile.mkdtemp()))) == sorted(WINDOW_FIGURES)
True
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import allsource_lab as asl
from allsource_lab.bench.common import (
    Figure,
    Sizes,
    batch_append_rate,
    read_events,
    repeat,
    scratch,
    tenths,
)

__all__ = ["WINDOW_FIGURES", "bench_windows"]

WINDOW_FIGURES = (
    "window_tumbling_count",
    "window_hopping_keyed",
    "window_session_entity",
    "pandas_resample_count",
    "pandas_groupby_keyed",
    "append_batch_pipeline",
    "append_batch_no_pipeline",
)
HOPPING: dict[str, Any] = {
    "every": "5m",
    "kind": "hopping",
    "hop": "1m",
    "by": "event_type",
    "agg": {"payload.amount": ["sum", "avg"]},
}


def timed_ms(run: Callable[[], Any], check: Callable[[Any], bool]) -> float:
    start = time.perf_counter()
    result = run()
    ms = (time.perf_counter() - start) * 1000
    if not check(result):
        raise RuntimeError("a window benchmark returned a wrong answer")
    return ms


def bench_windows(sizes: Sizes, folder: Path) -> list[Figure]:
    import pandas as pd

    table = read_events(sizes.reads)
    path = scratch(folder, "windows")
    store = asl.open(path)
    for part in tenths(table):
        store.append_batch(part)
    store.close()
    store = asl.open(path, read_only=True)
    n = sizes.reads
    frame = pd.DataFrame(
        {
            "timestamp": table.column("timestamp").to_pandas(),
            "event_type": table.column("event_type").to_pandas(),
            "entity_id": table.column("entity_id").to_pandas(),
            "amount": [orjson.loads(p)["amount"] for p in table.column("payload").to_pylist()],
        }
    )
    try:

        def counted(result: Any) -> bool:
            return int(result["count"].sum()) == n

        def tumbling() -> float:
            return timed_ms(lambda: store.window(every="1m"), counted)

        def hopping() -> float:
            return timed_ms(lambda: store.window(**HOPPING), lambda r: len(r) > 0)

        def sessions() -> float:
            return timed_ms(
                lambda: store.window(kind="session", gap="30s", by="entity_id"), counted
            )

        def resample() -> float:
            return timed_ms(
                lambda: frame.resample("1min", on="timestamp").size(), lambda r: r.sum() == n
            )

        def groupby() -> float:
            grouper = [pd.Grouper(key="timestamp", freq="5min"), "event_type"]
            return timed_ms(
                lambda: frame.groupby(grouper)["amount"].agg(["sum", "mean"]),
                lambda r: len(r) > 0,
            )

        tumbling()  # untimed: DuckDB's first query on the view
        figures = [
            Figure("window_tumbling_count", repeat(sizes.repeats, tumbling)),
            Figure("window_hopping_keyed", repeat(sizes.repeats, hopping)),
            Figure("window_session_entity", repeat(sizes.repeats, sessions)),
            Figure("pandas_resample_count", repeat(sizes.repeats, resample)),
            Figure("pandas_groupby_keyed", repeat(sizes.repeats, groupby)),
        ]
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)
    return [*figures, *bench_live_pipeline(sizes, folder, table)]


def bench_live_pipeline(sizes: Sizes, folder: Path, table: Any) -> list[Figure]:
    """``append_batch`` of the table (fsync per batch) with and without a live pipeline:
    a filter, then a tumbling 1-minute window by type with count and sum."""
    pipeline = (
        asl.Pipeline("by_minute")
        .filter("payload.qty", "ge", 2)
        .window("tumbling", "1m", by="event_type")
        .reduce({"*": "count", "payload.amount": "sum"})
    )

    def live(store: asl.EventStore) -> None:
        store.pipelines.add(pipeline, start="now")

    def saw_all(store: asl.EventStore) -> bool:
        return bool(store.pipelines.stats("by_minute")["events_in"] == table.num_rows)

    def append(with_pipeline: bool) -> float:
        if not with_pipeline:
            return batch_append_rate(folder, table)
        return batch_append_rate(folder, table, live, saw_all)

    append(True)  # untimed warm-up
    return [
        Figure("append_batch_pipeline", repeat(sizes.repeats, lambda: append(True))),
        Figure("append_batch_no_pipeline", repeat(sizes.repeats, lambda: append(False))),
    ]
