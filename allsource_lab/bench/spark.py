"""Past one machine: the Delta export and the same queries on Spark, against the store.

``python -m allsource_lab.bench.spark --events 10M [--folder DIR] [--json PATH]`` (``make
bench-spark``). It builds a store of that many events (``append_batch`` in 1M-event
batches, 10,000 orders, event times 1 ms apart) and closes it; then, in this process:

- **export**: ``store.export_delta`` of the whole history from a read-only open (events/s),
  and the table's bytes and files against the store's Parquet segments; also the files
  and bytes of the first 1M events written partitioned by the store's ``partition``
  column, the layout the export does not use;
- **states(as_of=mid-history)** and a **1-hour tumbling window by event type** (count and
  sum of ``payload.amount``), each by the store (``store.states``, ``store.window``) and
  by ``allsource_lab.spark`` on a ``local[2]`` session over the exported table; Spark's
  states are written to the ``noop`` sink (computed in full, not collected), its window
  collected. Each figure is the median of ``--repeats`` runs after one warm-up run.

It prints a Markdown table and writes the figures as JSON to
``bench-results/spark-<date>.json``. Spark needs Java 17 and the ``spark`` extra.

>>> parse_count("10M"), parse_count("250K"), parse_count("1500")
(10000000, 250000, 1500)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import allsource_lab as asl
from allsource_lab.bench.common import START, STEP_US, arrow_events, number, timed_events

__all__ = ["main", "measure", "parse_count"]

BATCH = 1_000_000
MB = 1_000_000


def parse_count(text: str) -> int:
    """``10M``, ``250K`` or digits as a number of events."""
    text = text.strip().upper().replace(",", "").replace("_", "")
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    digits = text[:-1] if scale > 1 else text
    try:
        value = int(float(digits) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count like 10M or 250K") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"the count must be at least 1, not {text!r}")
    return value


def build(path: Path, n: int) -> None:
    """A store of ``n`` events at ``path``, sealed by ``close()``."""
    with asl.open(path) as store:
        for first in range(0, n, BATCH):
            store.append_batch(timed_events(arrow_events(min(BATCH, n - first)), first=first))


def folder_bytes(folder: Path, pattern: str) -> tuple[int, int]:
    """Bytes and number of the files matching ``pattern`` under ``folder``."""
    files = [p for p in folder.rglob(pattern) if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def timed(run: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``repeats`` runs, after one run that warms caches and JITs."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def partitioned_layout(store: asl.EventStore, folder: Path) -> tuple[int, int, int]:
    """(events, bytes, files) of the first 1M events written partitioned by ``partition``."""
    from deltalake import WriterProperties, write_deltalake

    from allsource_lab._export.delta import ROW_GROUP_ROWS, plain_rows

    batch = store.feed.batch(0, BATCH)
    rows = plain_rows(batch.to_arrow())
    target = folder / "partitioned.delta"
    # The export's own Parquet settings: only the partitioning differs.
    same = WriterProperties(compression="ZSTD", max_row_group_size=ROW_GROUP_ROWS)
    write_deltalake(
        str(target), rows, partition_by=["partition"], mode="overwrite", writer_properties=same
    )
    size, files = folder_bytes(target, "*.parquet")
    return rows.num_rows, size, files


def measure(spark: Any, n: int, folder: Path, repeats: int = 3) -> dict[str, Any]:
    """Every figure of the benchmark for a store of ``n`` events built under ``folder``."""
    from allsource_lab import spark as aspark

    path = folder / "bench.events"
    uri = folder / "bench.delta"
    started = time.perf_counter()
    build(path, n)
    built_s = time.perf_counter() - started
    figures: dict[str, Any] = {"events": n, "build_s": built_s}
    with asl.open(path, read_only=True) as store:
        started = time.perf_counter()
        done = store.export_delta(uri)
        seconds = time.perf_counter() - started
        figures["export"] = {
            "seconds": seconds,
            "events_per_s": done["exported"] / seconds,
            "commits": done["commits"],
        }
        seg_bytes, seg_files = folder_bytes(path / "segments", "*.parquet")
        table_bytes, table_files = folder_bytes(uri, "*.parquet")
        figures["layout"] = {
            "segments_bytes": seg_bytes,
            "segments_files": seg_files,
            "table_bytes": table_bytes,
            "table_files": table_files,
        }
        part_n, part_bytes, part_files = partitioned_layout(store, folder)
        figures["layout"].update(
            partitioned_events=part_n, partitioned_bytes=part_bytes, partitioned_files=part_files
        )
        mid = START + dt.timedelta(microseconds=n // 2 * STEP_US)
        window: dict[str, Any] = {
            "every": "1h",
            "by": "event_type",
            "agg": {"*": "count", "payload.amount": "sum"},
        }
        figures["store"] = {
            "states_as_of_s": timed(lambda: store.states(as_of=mid), repeats),
            "window_s": timed(lambda: store.window(**window), repeats),
        }
        expected_states = len(store.states(as_of=mid))
        expected_windows = len(store.window(**window))

    def spark_states() -> None:
        frame = aspark.states(spark, uri, as_of=mid)
        frame.write.format("noop").mode("overwrite").save()

    def spark_window() -> None:
        assert len(aspark.window(spark, uri, **window).collect()) == expected_windows

    figures["spark"] = {
        "states_as_of_s": timed(spark_states, repeats),
        "window_s": timed(spark_window, repeats),
    }
    assert aspark.states(spark, uri, as_of=mid).count() == expected_states
    return figures


def table(f: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    n, layout, store, on_spark = f["events"], f["layout"], f["store"], f["spark"]
    rows = [
        ("export_delta, whole history (events/s)", number(f["export"]["events_per_s"]), ""),
        (
            "table vs segments (MB, files)",
            f"{layout['table_bytes'] / MB:.1f} MB, {layout['table_files']} files",
            f"{layout['segments_bytes'] / MB:.1f} MB, {layout['segments_files']} files",
        ),
        (
            f"first {layout['partitioned_events']:,} events partitioned by `partition`",
            f"{layout['partitioned_bytes'] / MB:.1f} MB, {layout['partitioned_files']} files",
            "",
        ),
        (
            "states(as_of=mid-history) (s): Spark local[2] | store",
            f"{on_spark['states_as_of_s']:.2f}",
            f"{store['states_as_of_s']:.2f}",
        ),
        (
            "window(every='1h', by='event_type'), count + sum (s): Spark | store",
            f"{on_spark['window_s']:.2f}",
            f"{store['window_s']:.3f}",
        ),
    ]
    lines = [f"| {n:,} events | Delta / Spark | store |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def session() -> Any:
    """A ``local[2]`` session whose Python workers run this interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("allsource-lab-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main(argv: list[str] | None = None) -> int:
    """The command line; returns 0."""
    import warnings

    from allsource_lab.bench.run import machine_facts

    parser = argparse.ArgumentParser(
        prog="python -m allsource_lab.bench.spark", description=__doc__
    )
    parser.add_argument("--events", type=parse_count, default="10M", metavar="N")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure")
    parser.add_argument("--folder", type=Path, help="for the store and tables (default: temp)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    # pyspark 4.3 warns on every pandas conversion that pandas 3 is not fully supported.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="asl-spark-"))
    folder.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    print(
        f"AllSource Lab {facts['allsource_lab']} on Spark: {args.events:,} events on "
        f"{facts['cpu']}, {facts['cpu_count']} CPUs; load average {facts['load_average_at_start']}",
        flush=True,
    )
    spark = session()
    try:
        figures = measure(spark, args.events, folder, args.repeats)
    finally:
        spark.stop()
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n{table(figures)}\n")
    print(f"Load average at end {facts['load_average_at_end']} (on {facts['cpu_count']} CPUs).")
    out = args.json or Path(f"bench-results/spark-{dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": dt.date.today().isoformat(), "command": sys.orig_argv, "machine": facts}
    out.write_text(json.dumps({**payload, "figures": figures}, indent=2) + "\n")
    print(f"Figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
