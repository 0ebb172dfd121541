"""A soak run: ingest for a while, checkpointing, compacting, snapshotting, reopening and
verifying as it goes, and watch resident memory.

``python -m allsource_lab.bench.soak --duration SECONDS [--path DIR] [--report FILE.json]``

Each cycle appends single events and batches to a folder store (every payload carries
the version its entity must reach, so the store can be checked against a model), takes
snapshots, checkpoints, compacts every third cycle, runs ``verify()``, closes the store
and opens it again. After each reopen it checks the event count, a sample of entities
(gapless versions, states that match the model) and samples the resident set size.

It fails (exit status 1) when ``verify()`` reports a problem, an event is missing or
wrong, or memory grows past the bound: after a warm-up (a third of the run, at most a
minute; see ``WARM_UP_S``), anonymous resident memory (RssAnon) may grow by at most
``--memory-bound-mib`` (64 MiB) more than the store's own data grew
(``stats()["memory_bytes"]``, which counts its index, unsealed events, snapshots and
buffers; sealed segments are mapped files, outside RssAnon), so only growth beyond that
is a leak; 64 MiB covers what else
a long run may hold on to without leaking (structures the estimate leaves out, DuckDB's
and numba's caches): after the warm-up, a 90-second run on the 2-core development machine
(966,000 events, ~200 reopens, ~65 compactions) grew 12 MiB beyond its data. RSS is
sampled after handing free memory back to the OS (Arrow's mimalloc pool and glibc keep
freed pages: without that, a 60-second run's RSS swung between 1 and 2.8 GB at 800,000
events).

It prints a summary and writes a JSON report (``--report``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import allsource_lab as asl
from allsource_lab._argtypes import positive
from allsource_lab.bench.common import anonymous_bytes

__all__ = ["SoakReport", "main", "resident_bytes", "soak"]

MIB = 1024 * 1024
# Memory is compared from the end of the warm-up: at least this many cycles, and a third
# of the run or WARM_UP_S, whichever is shorter. Measured on the 2-core development machine
# (90-second run): RSS less the store's data rises from ~260 to ~350 MiB over the first
# ~200,000 events (~7 s; arenas, caches and JIT-compiled code filling up), then stays
# within a few MiB of 350 to 966,000 events.
WARM_UP_CYCLES = 2
WARM_UP_S = 60.0


def resident_bytes() -> int:
    """This process's anonymous resident memory in bytes (RssAnon): the heap, not the pages
    of the segment files a folder store maps, which the system reads in and drops."""
    return anonymous_bytes()


def settled_resident_bytes() -> int:
    """RSS after handing back memory that is free but cached: Arrow's pool (mimalloc or
    jemalloc) and glibc's arenas keep freed pages for reuse, which looks like growth but
    is not held by anything."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return resident_bytes()


@dataclass
class SoakReport:
    """What a soak run did and saw; ``ok`` is False with ``failures`` saying why."""

    duration_s: float
    path: str
    ok: bool = True
    failures: list[str] = field(default_factory=list)
    cycles: int = 0
    events: int = 0
    appends: int = 0
    batches: int = 0
    reopens: int = 0
    checkpoints: int = 0
    compactions: int = 0
    snapshots: int = 0
    verifies: int = 0
    memory_bound_mib: float = 64.0
    rss_start_mib: float = 0.0
    rss_warm_mib: float = 0.0
    rss_end_mib: float = 0.0
    store_memory_warm_mib: float = 0.0
    store_memory_end_mib: float = 0.0
    growth_beyond_data_mib: float = 0.0
    # (seconds since start, events, RSS MiB, store memory MiB) after each reopen
    samples: list[tuple[float, int, float, float]] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.failures.append(message)

    def summary(self) -> str:
        lines = [
            f"soak {'passed' if self.ok else 'FAILED'}: {self.duration_s:.0f} s, "
            f"{self.cycles} cycles, {self.events:,} events "
            f"({self.appends:,} appends, {self.batches:,} batches)",
            f"  reopens {self.reopens}, checkpoints {self.checkpoints}, compactions "
            f"{self.compactions}, snapshots {self.snapshots}, verifies {self.verifies}",
            f"  RSS {self.rss_start_mib:.0f} MiB at start, {self.rss_warm_mib:.0f} MiB after "
            f"warm-up, {self.rss_end_mib:.0f} MiB at the end; store data "
            f"{self.store_memory_warm_mib:.0f} -> {self.store_memory_end_mib:.0f} MiB; growth "
            f"beyond the data {self.growth_beyond_data_mib:.1f} MiB "
            f"(bound {self.memory_bound_mib:.0f} MiB)",
        ]
        lines += [f"  failure: {f}" for f in self.failures]
        return "\n".join(lines)


class _Model:
    """What the store must hold: events acknowledged, and each entity's version."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.events = 0
        self.versions: dict[str, int] = {}

    def entity(self) -> str:
        # New entities keep coming, old ones keep growing.
        if not self.versions or self.rnd.random() < 0.05:
            return f"entity-{len(self.versions):06d}"
        return f"entity-{self.rnd.randrange(len(self.versions)):06d}"

    def next_payload(self, entity: str) -> dict[str, Any]:
        n = self.versions.get(entity, 0) + 1
        self.versions[entity] = n
        self.events += 1
        return {"n": n, "sku": f"sku-{n % 97}", "amount": n * 1.25, "note": "x" * 40}


def _ingest(store: asl.EventStore, model: _Model, report: SoakReport, per_cycle: int) -> None:
    singles = per_cycle // 10
    for _ in range(singles):
        entity = model.entity()
        payload = model.next_payload(entity)
        store.append("soak.single", entity, payload, expected_version=payload["n"] - 1)
        report.appends += 1
    left = per_cycle - singles
    while left > 0:
        size = min(left, model.rnd.randint(100, 2_000))
        rows = []
        for _ in range(size):
            entity = model.entity()
            rows.append(
                {
                    "event_type": "soak.batch",
                    "entity_id": entity,
                    "payload": model.next_payload(entity),
                }
            )
        store.append_batch(rows)
        report.batches += 1
        left -= size


def _check(store: asl.EventStore, model: _Model, report: SoakReport) -> None:
    """The reopened store against the model: count, and a sample of entities."""
    stored = store.stats()["events"]
    if stored != model.events:
        report.fail(f"the store holds {stored:,} events after reopen; {model.events:,} were acked")
    sample = model.rnd.sample(sorted(model.versions), min(20, len(model.versions)))
    for entity in sample:
        want = model.versions[entity]
        versions = store.events(entity_id=entity).to_arrow().column("version").to_pylist()
        if versions != list(range(1, want + 1)):
            report.fail(f"{entity}: versions {versions[-3:]} after reopen, expected 1..{want}")
        elif store.state(entity).get("n") != want:
            report.fail(f"{entity}: state is {store.state(entity)}, expected n={want}")


def _verify(store: asl.EventStore, report: SoakReport) -> None:
    found = store.verify()
    report.verifies += 1
    if not found.ok:
        report.fail(f"verify() found problems: {found.problems[:5]}")


def soak(
    duration_s: float,
    path: Path,
    *,
    events_per_cycle: int = 6_000,
    memory_bound_mib: float = 64.0,
    seed: int = 7,
) -> SoakReport:
    """Run the soak for ``duration_s`` seconds on a store at ``path``; never raises for
    what it finds (the report says), only for bad arguments."""
    report = SoakReport(duration_s, str(path), memory_bound_mib=memory_bound_mib)
    model = _Model(random.Random(seed))
    started = time.monotonic()
    warm_at_s = min(duration_s / 3, WARM_UP_S)
    warm: tuple[int, int] | None = None  # (RSS, store memory) after the warm-up
    report.rss_start_mib = resident_bytes() / MIB
    settings: dict[str, Any] = {"fsync": "interval", "checkpoint_every_events": 25_000}
    store = asl.open(path, **settings)
    try:
        while report.ok and time.monotonic() - started < duration_s:
            report.cycles += 1
            _ingest(store, model, report, events_per_cycle)
            for entity in model.rnd.sample(sorted(model.versions), min(5, len(model.versions))):
                store.snapshot(entity)
                report.snapshots += 1
            if store.checkpoint() is not None:
                report.checkpoints += 1
            if report.cycles % 3 == 0 and store.compact() is not None:
                report.compactions += 1
            _verify(store, report)
            store.close()
            store = asl.open(path, **settings)
            report.reopens += 1
            _check(store, model, report)
            rss, data = settled_resident_bytes(), store.stats()["memory_bytes"]
            elapsed = time.monotonic() - started
            report.samples.append((round(elapsed, 2), model.events, rss / MIB, data / MIB))
            if warm is None and report.cycles >= WARM_UP_CYCLES and elapsed >= warm_at_s:
                warm = (rss, data)
            if warm is not None:
                beyond = ((rss - warm[0]) - (data - warm[1])) / MIB
                report.growth_beyond_data_mib = max(report.growth_beyond_data_mib, beyond)
                if beyond > memory_bound_mib:
                    report.fail(
                        f"resident memory grew {beyond:.1f} MiB beyond the store's data since "
                        f"the warm-up (bound {memory_bound_mib:.0f} MiB)"
                    )
        _verify(store, report)
    except Exception as exc:  # a crash of the run is a failure to report, with its kind
        report.fail(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    report.duration_s = round(time.monotonic() - started, 1)
    report.events = model.events
    report.rss_end_mib = settled_resident_bytes() / MIB
    if warm is not None:
        report.rss_warm_mib = warm[0] / MIB
        report.store_memory_warm_mib = warm[1] / MIB
        report.store_memory_end_mib = report.samples[-1][3]
    else:
        report.fail("the run ended before the warm-up did: give it a longer --duration")
    return report


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0: passed, 1: failed)."""
    parser = argparse.ArgumentParser(prog="python -m allsource_lab.bench.soak", description=__doc__)
    parser.add_argument("--duration", type=positive, required=True, metavar="SECONDS")
    parser.add_argument("--path", type=Path, help="the store folder (default: a temporary one)")
    parser.add_argument("--report", type=Path, metavar="FILE.json", help="write the report here")
    parser.add_argument("--events-per-cycle", type=positive, default=6_000, metavar="N")
    parser.add_argument("--memory-bound-mib", type=float, default=64.0, metavar="MIB")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    scratch = None
    path = args.path
    if path is None:
        scratch = tempfile.mkdtemp(prefix="allsource-soak-")
        path = Path(scratch) / "soak.events"
    elif path.exists() and any(path.iterdir()):
        parser.error(f"--path {path} is not empty; the soak needs a new store")
    try:
        report = soak(
            args.duration,
            path,
            events_per_cycle=args.events_per_cycle,
            memory_bound_mib=args.memory_bound_mib,
            seed=args.seed,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(report.summary())
    if args.report is not None:
        args.report.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
