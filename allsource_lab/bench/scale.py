"""How each cost grows with the history: stores of 1M, 10M and 100M events on one machine.

``python -m allsource_lab.bench.scale --sizes 1M,10M,100M [--folder DIR]`` (``make
bench-scale``). For each size, smallest first, a fresh process builds a store as a user
would (``asl.open(path)``, default settings) with ``append_batch`` in 1M-event batches,
timed until ``close()`` returns; then another fresh process opens it and times the reads.
The history and both steps are in :mod:`allsource_lab.bench.scale_history`.

Nothing may run the machine out of memory or disk: before each size it scales the bytes
per event of the largest size already measured (anonymous memory at the peak of either
process, the store folder at its peak) and skips the size, saying why, when that does not
fit the memory available now and the folder's free disk with a 25% margin (``--force``
overrides the memory check, never the disk check). The stores go under ``--folder``, else
``BENCH_SCALE_DIR``, else a temporary folder, and are deleted once measured (``--keep``).

It prints a Markdown table, one column per size, and writes the figures as JSON to
``bench-results/scale-<date>.json`` (``--json`` elsewhere).

>>> parse_sizes("20K,1M, 1.5M")
[20000, 1000000, 1500000]
>>> [size_label(n) for n in (20_000, 1_000_000, 1_500_000, 12_345)]
['20K', '1M', '1.5M', '12,345']
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allsource_lab.bench.common import number
from allsource_lab.bench.scale_history import entity_count, proc_status

__all__ = ["ROWS", "Footprint", "estimate", "main", "parse_sizes", "size_label"]

# The rows of the table, in order, by key: what each measures and its unit.
ROWS: dict[str, tuple[str, str]] = {
    "ingest_rate": (
        "ingest: append_batch of 1M-event batches, default settings, to close()",
        "events/s",
    ),
    "ingest_peak_rss": ("ingest: peak resident memory (VmHWM; B/event: above it at open)", "MB"),
    "disk": ("disk: the store folder after close()", "MB"),
    "open": ("open: asl.open(path) in a fresh process, after import", "s"),
    "rss_anon": ("memory after open: RssAnon (B/event: what the open added)", "MB"),
    "rss_file": ("memory after open: RssFile (B/event: what the open added)", "MB"),
    "events_entity": ("events(entity_id=…).to_arrow() of one entity", "µs"),
    "state": ("state(entity_id), first call on the entity (folds it)", "µs"),
    "state_as_of": ("state(entity_id, as_of=mid-history), first call on the entity", "µs"),
    "states_as_of": ("states(as_of=mid-history), every entity", "s"),
    "sql_count_by_type": ("sql: select event_type, count(*) … group by 1, fetchall()", "ms"),
    "window_1h": ("window(every='1h'): tumbling 1-hour counts over every event", "ms"),
}
# Before anything is measured a size is assumed to need this much: the store kept ~300-500
# anonymous bytes an event in memory in December, and ~250 B an event of WAL on disk.
PRIOR_MEMORY_PER_EVENT = 600
PRIOR_DISK_PER_EVENT = 600
MARGIN = 1.25  # an estimate must fit this many times over
MB = 1_000_000


def parse_sizes(text: str) -> list[int]:
    """Event counts from ``"20K,1M,100M"`` (K, M, G: thousands, millions, billions)."""
    sizes = []
    for part in (p.strip().upper().replace("_", "") for p in text.split(",")):
        scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(part[-1:], 1)
        digits = part[:-1] if scale > 1 else part
        try:
            n = round(float(digits) * scale)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a size such as 20K or 1M") from None
        if n < 2:
            raise argparse.ArgumentTypeError(f"a size must be at least 2 events, not {part!r}")
        sizes.append(n)
    return sizes


def size_label(n: int) -> str:
    """``n`` as its column is headed: 20K, 1M, 1.5M, or the count itself."""
    for scale, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if n >= scale and (n * 10) % scale == 0:
            return f"{n / scale:g}{suffix}"
    return f"{n:,}"


# -- the fresh processes -----------------------------------------------------------------

CHILD = """
import json, sys
from allsource_lab.bench import scale_history
step = {"ingest": scale_history.ingest, "queries": scale_history.measure_queries}[sys.argv[1]]
print(json.dumps(step(sys.argv[2], int(sys.argv[3]))))
"""


def folder_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (as ``du``), files vanishing meanwhile."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def run_child(step: str, path: Path, n: int) -> dict[str, Any]:
    """Run ``step`` in a fresh interpreter, sampling its memory every 0.1 s (and the store's
    disk every second) from outside, so the sampling costs the measured process nothing."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, step, str(path), str(n)], stdout=out, stderr=err
        )
        peak_anon = peak_file = peak_disk = 0
        disk_at = 0.0
        while child.poll() is None:
            try:
                status = proc_status(child.pid)
            except (FileNotFoundError, ProcessLookupError):
                status = {}
            peak_anon = max(peak_anon, status.get("RssAnon", 0))
            peak_file = max(peak_file, status.get("RssFile", 0))
            if time.monotonic() - disk_at > 1.0:  # a walk of ~1,000 files takes ~10 ms
                peak_disk, disk_at = max(peak_disk, folder_bytes(path)), time.monotonic()
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            killed = " (killed: out of memory?)" if child.returncode == -9 else ""
            raise RuntimeError(
                f"the {step} process failed with status {child.returncode}{killed}:\n"
                + err.read()[-4000:]
            )
        result: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
    result.update(peak_rss_anon=peak_anon, peak_rss_file=peak_file, peak_disk=peak_disk)
    return result


def bench_size(n: int, path: Path, keep: bool) -> dict[str, Any]:
    """Build the ``n``-event store at ``path`` in one fresh process and read it in another."""
    try:
        built = run_child("ingest", path, n)
        built["disk"] = folder_bytes(path)
        built["peak_disk"] = max(built["peak_disk"], built["disk"])
        read = run_child("queries", path, n)
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
    return {"ingest": built, "queries": read}


# -- what a size needs -------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """What a measured size took: anonymous memory before its store opened and at its peak
    (in whichever of the two processes grew more), and disk at its peak."""

    events: int
    memory_base: int
    memory_peak: int
    disk_peak: int

    @classmethod
    def of(cls, n: int, figures: dict[str, Any]) -> Footprint:
        built, read = figures["ingest"], figures["queries"]
        steps = [
            (built["rss_anon_before_open"], built["peak_rss_anon"]),
            (read["rss_anon_before_open"], max(read["peak_rss_anon"], read["rss_anon"])),
        ]
        base, peak = max(steps, key=lambda step: step[1] - step[0])
        return cls(n, base, peak, built["peak_disk"])


def estimate(measured: Footprint | None, n: int) -> tuple[int, int]:
    """Memory and disk bytes an ``n``-event size needs, scaled from the bytes per event of
    the largest measured size (its fixed costs counted per event too, so the estimate errs
    high), or from the prior figures when none has been measured.

    >>> estimate(None, 1_000_000)
    (600000000, 600000000)
    >>> estimate(Footprint(1_000_000, 100 * MB, 500 * MB, 300 * MB), 10_000_000)
    (4100000000, 3000000000)
    """
    if measured is None:
        return n * PRIOR_MEMORY_PER_EVENT, n * PRIOR_DISK_PER_EVENT
    per_event = (measured.memory_peak - measured.memory_base) / measured.events
    memory = measured.memory_base + per_event * n
    return round(memory), round(measured.disk_peak / measured.events * n)


def available_memory() -> int:
    """MemAvailable of /proc/meminfo: what can be allocated without swapping, right now."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable line: this benchmark needs Linux")


def refusal(n: int, measured: Footprint | None, folder: Path, force: bool) -> str | None:
    """Why the ``n``-event size must not be built in ``folder`` now, or None if it fits."""
    memory, disk = estimate(measured, n)
    if measured is None:
        basis = f"assuming {PRIOR_MEMORY_PER_EVENT} B/event, as no smaller size was measured"
    else:
        basis = f"scaled from {size_label(measured.events)}"
    free = shutil.disk_usage(folder).free
    if disk * MARGIN > free:
        return (
            f"needs ~{disk / 1e9:.1f} GB of disk ({basis}) and {folder} has {free / 1e9:.1f} GB "
            f"free: give --folder (or BENCH_SCALE_DIR) on a disk with {disk * MARGIN / 1e9:.1f} GB"
        )
    room = available_memory()
    if memory * MARGIN > room and not force:
        return (
            f"needs ~{memory / 1e9:.1f} GB of memory ({basis}) and {room / 1e9:.1f} GB is "
            f"available (with a {MARGIN:g}x margin); --force builds it anyway"
        )
    return None


# -- reporting ---------------------------------------------------------------------------


def row_values(n: int, figures: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Each row's value for one measured size, in the row's unit; and for the rows in MB,
    bytes per event of what the store added (above the process before the open: the
    interpreter, the libraries and, when ingesting, the batches' data)."""
    built, read = figures["ingest"], figures["queries"]
    values = {"ingest_rate": built["rate"], "open": read["open_s"]}
    values.update({key: statistics.median(runs) for key, runs in read["runs"].items()})
    in_bytes = {
        "ingest_peak_rss": (built["vm_hwm"], built["rss_before_open"]),
        "disk": (built["disk"], 0),
        "rss_anon": (read["rss_anon"], read["rss_anon_before_open"]),
        "rss_file": (read["rss_file"], read["rss_file_before_open"]),
    }
    values.update({key: total / MB for key, (total, _) in in_bytes.items()})
    per_event = {key: (total - base) / n for key, (total, base) in in_bytes.items()}
    return values, per_event


def table(results: dict[int, dict[str, Any]]) -> str:
    """The Markdown table: one row per figure, one column per size."""
    lines = [
        "| operation | " + " | ".join(size_label(n) for n in results) + " |",
        "|---" * (len(results) + 1) + "|",
    ]
    for key, (name, unit) in ROWS.items():
        cells = []
        for result in results.values():
            if "values" not in result:
                cells.append(result["status"])
            elif unit == "MB":
                value, per_event = result["values"][key], result["per_event"][key]
                cells.append(f"{number(value)} MB ({number(per_event)} B/event)")
            else:
                cells.append(f"{number(result['values'][key])} {unit}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: dict[int, dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: the machine, every size's measurements, and the table's rows."""
    rows = [
        {
            "key": key,
            "name": name,
            "unit": unit,
            "values": {size_label(n): r.get("values", {}).get(key) for n, r in results.items()},
            "bytes_per_event": {
                size_label(n): r.get("per_event", {}).get(key) for n, r in results.items()
            },
        }
        for key, (name, unit) in ROWS.items()
    ]
    return {
        "date": dt.date.today().isoformat(),
        "command": sys.orig_argv,
        "machine": facts,
        "sizes": {size_label(n): result for n, result in results.items()},
        "rows": rows,
    }


def json_path() -> Path:
    stem = f"bench-results/scale-{dt.date.today().isoformat()}"
    path = Path(f"{stem}.json")
    if path.exists():  # a second run the same day keeps the first
        path = Path(f"{stem}-{time.strftime('%H%M%S')}.json")
    return path


# -- the command line --------------------------------------------------------------------


def run(sizes: list[int], folder: Path, force: bool, keep: bool) -> dict[int, dict[str, Any]]:
    """Measure each size in turn, or say why it was skipped; a failure skips the rest."""
    results: dict[int, dict[str, Any]] = {}
    measured: Footprint | None = None
    failed: str | None = None  # the label of a size that failed
    for n in sizes:
        label = size_label(n)
        result: dict[str, Any] = {"events": n, "entities": entity_count(n), "status": "measured"}
        results[n] = result
        why = f"{failed} failed" if failed else refusal(n, measured, folder, force)
        if why is not None:
            result.update(status="skipped", reason=why)
            print(f"{label}: skipped: {why}", flush=True)
            continue
        print(f"{label}: building {n:,} events over {entity_count(n):,} entities", flush=True)
        try:
            figures = bench_size(n, folder / f"scale-{label}.events", keep)
        except RuntimeError as exc:
            failed = label
            result.update(status="failed", reason=str(exc))
            print(f"{label}: failed: {exc}", flush=True)
            continue
        values, per_event = row_values(n, figures)
        result.update(figures, values=values, per_event=per_event)
        measured = Footprint.of(n, figures)
        built = figures["ingest"]
        print(
            f"{label}: ingest {built['seconds']:.1f} s (of which {built['making_batches_s']:.1f} "
            f"s making the batches), {figures['queries']['segments']} segments",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line; returns 1 if a size failed, else 0 (a skipped size is reported)."""
    from allsource_lab.bench.run import machine_facts

    parser = argparse.ArgumentParser(
        prog="python -m allsource_lab.bench.scale", description=__doc__
    )
    parser.add_argument("--sizes", type=parse_sizes, default="1M,10M,100M", metavar="1M,10M,...")
    parser.add_argument("--folder", type=Path, help="for the stores (default: BENCH_SCALE_DIR)")
    parser.add_argument("--json", type=Path, help="write the figures here instead")
    parser.add_argument("--force", action="store_true", help="skip the memory check")
    parser.add_argument("--keep", action="store_true", help="keep the stores it builds")
    args = parser.parse_args(argv)
    sizes: list[int] = sorted(set(args.sizes))
    given = args.folder or os.environ.get("BENCH_SCALE_DIR")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="asl-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    taken = [
        f"scale-{size_label(n)}.events"
        for n in sizes
        if (folder / f"scale-{size_label(n)}.events").exists()
    ]
    if taken:
        parser.error(
            f"{folder} already holds {', '.join(taken)}: remove them or give another --folder"
        )
    facts = machine_facts()
    facts["memory_available_at_start"] = available_memory()
    print(
        f"AllSource Lab {facts['allsource_lab']} at scale on {facts['cpu']}, "
        f"{facts['cpu_count']} CPUs, {facts['python']}; "
        f"{facts['memory_available_at_start'] / 1e9:.1f} GB memory available, "
        f"{shutil.disk_usage(folder).free / 1e9:.1f} GB free at {folder}; "
        f"load average at start {facts['load_average_at_start']}",
        flush=True,
    )
    try:
        results = run(sizes, folder, args.force, args.keep)
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n{table(results)}\n")
    print(f"Load average at end {facts['load_average_at_end']} (on {facts['cpu_count']} CPUs).")
    for n, result in results.items():
        if result["status"] != "measured":
            print(f"{size_label(n)} {result['status']}: {result['reason']}")
    out = args.json or json_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report(results, facts), indent=2) + "\n")
    print(f"Figures written to {out}")
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
