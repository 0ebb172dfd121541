"""Projection and replay figures (``python -m allsource_lab.bench --only projections``).

Replays run on the read store of :mod:`allsource_lab.bench.reads` (``Sizes.reads``
events, 100 per entity, 20 types), reopened so that its events are sealed segments:
``EventCounter`` and ``EntitySnapshots`` through their batch path (``apply_batch``) with
the default batch size, and the same projections fed one :class:`~allsource_lab.Event` at
a time (their ``apply``) over a tenth of the store. Live overhead: ``append_batch`` of
the table with fsync, into a store with no projection and into one with both.

>>> sizes = Sizes(
...     single=1, single_default=1, batch=200, checkpoints=1, peer_saves=1, repeats=1, reads=300
... )
>>> import tempfile
>>> figures = bench_projections(sizes, Path(tempfile.mkdtemp()))
>>> sorted(f.key for f in figures) == sorted(PROJECTION_FIGURES)
True
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import allsource_lab as asl
from allsource_lab.bench.common import (
    Figure,
    Sizes,
    arrow_events,
    batch_append_rate,
    read_events,
    repeat,
    scratch,
    tenths,
)

__all__ = ["PROJECTION_FIGURES", "bench_projections"]

PROJECTION_FIGURES = (
    "replay_counter",
    "replay_snapshots",
    "replay_counter_rate",
    "replay_snapshots_rate",
    "replay_counter_one_by_one",
    "replay_snapshots_one_by_one",
    "append_batch_projections",
    "append_batch_no_projections",
)


class _CounterOneByOne(asl.EventCounter):
    def apply_batch(self, batch: asl.EventBatch) -> None:
        for event in batch:
            self.apply(event)


class _SnapshotsOneByOne(asl.EntitySnapshots):
    def apply_batch(self, batch: asl.EventBatch) -> None:
        for event in batch:
            self.apply(event)


def bench_projections(sizes: Sizes, folder: Path) -> list[Figure]:
    path = scratch(folder, "replays")
    store = asl.open(path)
    for part in tenths(read_events(sizes.reads)):
        store.append_batch(part)
    store.close()
    store = asl.open(path, read_only=True)
    n = sizes.reads
    try:

        def replay_seconds(make: Callable[[], asl.Projection], until: int | None = None) -> float:
            start = time.perf_counter()
            job = store.replay(make(), until=until, background=False)
            seconds = time.perf_counter() - start
            if job.status != "done" or job.progress.processed != (
                n if until is None else until - 1
            ):
                raise RuntimeError(f"the replay did not do the work: {job}")
            return seconds

        replay_seconds(asl.EventCounter)  # untimed: warms kernels and the pieces' caches
        counter = repeat(sizes.repeats, lambda: replay_seconds(asl.EventCounter))
        snapshots = repeat(sizes.repeats, lambda: replay_seconds(asl.EntitySnapshots))
        part = max(n // 10, 1)
        one_counter = repeat(
            sizes.repeats, lambda: part / replay_seconds(_CounterOneByOne, until=part + 1)
        )
        one_snapshots = repeat(
            sizes.repeats, lambda: part / replay_seconds(_SnapshotsOneByOne, until=part + 1)
        )
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)

    table = arrow_events(sizes.batch)

    def live(store: asl.EventStore) -> None:
        store.projections.add(asl.EventCounter())
        store.projections.add(asl.EntitySnapshots())

    def saw_all(store: asl.EventStore) -> bool:
        return bool(store.projections["event_counter"].state("total") == table.num_rows)

    def append(with_projections: bool) -> float:
        if not with_projections:
            return batch_append_rate(folder, table)
        return batch_append_rate(folder, table, live, saw_all)

    append(True)  # untimed warm-up
    return [
        Figure("replay_counter", counter),
        Figure("replay_snapshots", snapshots),
        Figure("replay_counter_rate", tuple(n / s for s in counter)),
        Figure("replay_snapshots_rate", tuple(n / s for s in snapshots)),
        Figure("replay_counter_one_by_one", one_counter),
        Figure("replay_snapshots_one_by_one", one_snapshots),
        Figure("append_batch_projections", repeat(sizes.repeats, lambda: append(True))),
        Figure("append_batch_no_projections", repeat(sizes.repeats, lambda: append(False))),
    ]
