"""The benchmark behind README's figures: ``python -m allsource_lab.bench`` (``make bench``).

Every figure is a median over several runs, printed beside its target and the Rust
reference's published figure, with ``pass``/``miss``; nothing here asserts a speed. Peers
run in the same process on the same kind of data: the ``eventsourcing`` library (in-memory
and SQLite), a DuckDB insert of the same Arrow table, and plain pyarrow file I/O as the floor
under our append_batch, checkpoint and reopen.

Options: ``--quick`` (small sizes, 2 repeats, for the test suite), ``--only a,b`` (names in
``BENCHES``), ``--json PATH`` (also write the machine facts and figures as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

import allsource_lab as asl
from allsource_lab.bench.common import ENTITIES, FULL, QUICK, Figure, Sizes, arrow_events, number
from allsource_lab.bench.eventsourcing_module import bench_eventsourcing_module
from allsource_lab.bench.follow import bench_follow
from allsource_lab.bench.peers import bench_peers
from allsource_lab.bench.projections import bench_projections
from allsource_lab.bench.reads import bench_reads
from allsource_lab.bench.schemas import bench_schemas
from allsource_lab.bench.windows import bench_windows
from allsource_lab.bench.writes import (
    bench_batch,
    bench_checkpoint,
    bench_import,
    bench_memory,
    bench_reopen,
    bench_single,
)

__all__ = ["BENCHES", "main", "run"]

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
    "eventsourcing",
    "follow",
)


def run(sizes: Sizes, only: set[str]) -> list[Figure]:
    """Run the chosen benchmarks in a scratch folder, printing each row as it is measured."""
    folder = Path(tempfile.mkdtemp(prefix="asl-bench-"))
    try:
        # Built once, outside every timing; only "single" and "import" do without it.
        own_data = {
            "single",
            "import",
            "reads",
            "schemas",
            "projections",
            "windows",
            "eventsourcing",
            "follow",
        }
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
            "eventsourcing": lambda: bench_eventsourcing_module(sizes, folder),
            "follow": lambda: bench_follow(sizes, folder),
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
        f"Single appends: {sizes.single_default:,} per run at default settings, "
        f"{sizes.single:,} otherwise; the table: {sizes.batch:,} events over "
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
