"""A read-only store that follows its writer in another process.

A read-only open reads what the folder held at that moment; a :class:`Follower` then keeps
the store up with the writer, doing in this process what the writer did in its own:

- **new WAL records** (the writer's appends, once written: within its ``fsync_interval_s``
  under the default policy) are read from where the last read stopped, decoded and added
  to the tail, as the writer's append path added them to its own;
- **a new segment** (a checkpoint: the manifest names one more) takes the place of the
  tail's rows it holds, as the writer's seal put it in place of its retired tail; rows the
  follower never read from the WAL (trimmed before it looked) come from the segment;
- **anything else in the manifest** (a compaction merged the segments) rebuilds the read
  side from the segments the manifest names, as the writer's compaction did;
- **WAL rotation** is a new file after the one being read, read once that one is done.

What is known is never read again: a check asks three ``stat`` calls (manifest.json, the
WAL folder, the WAL file being read), and reads only the bytes added since. Reads check
at most once a millisecond (``CHECK_EVERY_NS``): a read sees what the writer had written
a millisecond before it (its schema registry's log is looked at every 0.1 s, and at every
catch-up). Followers (subscriptions, live projections, pipelines, the live
tail) are called after each catch-up that added events; while any is registered, a thread
checks every ``follow_interval_s`` (polling: see docs/architecture.md for the measured
choice). Nothing here writes a byte or takes the store's folder lock, so a reader never
blocks the writer; the writer's files are replaced by rename and removed only once the
manifest no longer names them, and a mapped file stays readable after its removal, so a
checkpoint or a compaction never breaks a read under way.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._query.reads import Reader, one_batch
from allsource_lab._storage.arrowbuf import fixed_values
from allsource_lab._storage.records import decode_frames
from allsource_lab._storage.tail import Tail
from allsource_lab.errors import CorruptionError, StorageError
from allsource_lab.events import EVENT_SCHEMA

if TYPE_CHECKING:
    from allsource_lab._storage.folder import FolderStorage
    from allsource_lab._storage.manifest import Manifest, SegmentInfo
    from allsource_lab._store.entities import EntityTable
    from allsource_lab._store.log import EventLog
    from allsource_lab._store.sealing import Sealer
    from allsource_lab.schemas.registry import SchemaRegistry

__all__ = ["CHECK_EVERY_NS", "Follower"]

# A read checks for the writer's news at most this often (a check costs ~3-6 us: three
# stat calls; a hot state() ~1 us).
CHECK_EVERY_NS = 1_000_000
# A read looks at the schema registry's log at most this often.
_REGISTRY_EVERY_NS = 100_000_000
# Catch-up rounds before giving up on a folder that keeps changing under it.
_ROUNDS = 20


class _Again(Exception):
    """The writer moved on while a catch-up looked (a file removed): look again."""


class Follower:
    """Keeps a read-only store's log, tail and read side up with the folder's writer."""

    def __init__(
        self,
        log: EventLog,
        sealer: Sealer,
        entities: EntityTable,
        storage: FolderStorage,
        problems: list[str],
        interval: float,
    ) -> None:
        self.log = log
        self.sealer = sealer
        self.entities = entities
        self.storage = storage
        self.problems = problems  # the store's recovery_problems
        self.interval = interval
        assert storage.manifest is not None
        self._files = [s.file for s in storage.manifest.segments]
        self._busy = threading.Lock()  # one catch-up at a time
        self._checked = 0  # time.monotonic_ns() of the last check
        self._pending: list[pa.RecordBatch] = []  # read from the WAL past a gap
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None  # what stopped the watching thread
        # The schema registry (see follow_registry): its log's size and records taken.
        self._registry: SchemaRegistry | None = None
        self._on_schemas: Callable[[], None] = lambda: None
        self._registry_size = -1
        self._registry_records = 0
        self._registry_checked = 0

    def follow_registry(self, registry: SchemaRegistry, on_change: Callable[[], None]) -> None:
        """Follow the writer's schema registry too: ``registry`` as loaded at open;
        ``on_change`` is called after records the writer added are applied."""
        self._registry, self._on_schemas = registry, on_change
        self._registry_size = self._registry_log_size()
        self._registry_records = len(self.storage.load_registry()[0])

    def _registry_log_size(self) -> int:
        try:
            return os.stat(self.storage.registry_log).st_size
        except FileNotFoundError:
            return 0

    # -- asking --------------------------------------------------------------------------

    def check(self) -> None:
        """Catch up if the writer may have written since the last look (a read's check:
        at most once every ``CHECK_EVERY_NS``). A catch-up under way on another thread
        (the watching one, say) is waited for, never skipped."""
        now = time.monotonic_ns()
        if now - self._checked < CHECK_EVERY_NS:
            return
        with self._busy:
            if now - self._checked < CHECK_EVERY_NS:
                return  # a catch-up that began less than a millisecond before this read
            storage = self.storage
            moved = storage.manifest_moved() or storage.log_follower.changed()
            if not moved and now - self._registry_checked >= _REGISTRY_EVERY_NS:
                # Schemas change rarely: their log is looked at less often (and at every
                # catch-up, so a writer's events never arrive before their schemas).
                self._registry_checked = now
                moved = self._registry_log_size() != self._registry_size
            if not moved:
                self._checked = now
                return
            added, last = self._catch_up(now)
        if added:
            self.log.notify(last)

    def refresh(self) -> int:
        """Catch up with everything the writer has written; how many events came in.

        Raises:
            CorruptionError: the writer's files are damaged (the store stays as it was).
            StorageError: the folder kept changing under twenty catch-ups in a row.
        """
        started = time.monotonic_ns()
        with self._busy:
            added, last = self._catch_up(started)
        if added:
            self.log.notify(last)
        return added

    def _catch_up(self, started: int) -> tuple[int, int]:
        """Take in what the writer wrote (holding ``_busy``): how many events came in and
        the last sequence. What was written before ``started`` is in, so reads that
        begin within a millisecond of it need not look again."""
        log = self.log
        if log.closed:
            return 0, 0
        before = log.next_seq
        again = False  # the last round met a gap or a removed file
        for _ in range(_ROUNDS):
            try:
                if again or self.storage.manifest_moved():
                    self._follow_manifest(self.storage.reread_manifest())
                if self._follow_log(gap_allowed=again):
                    break
            except _Again:
                pass
            again = True
        else:
            raise StorageError(
                f"{self.storage.path} kept changing under {_ROUNDS} catch-ups in a row; "
                "call store.refresh() again"
            )
        self._follow_registry()
        self._checked = max(self._checked, started)
        return log.next_seq - before, log.next_seq - 1

    # -- the schema registry -------------------------------------------------------------

    def _follow_registry(self) -> None:
        """Apply the registry records the writer added (a schema registered, deleted, a
        compatibility mode set). A record still being written is taken next time."""
        registry = self._registry
        size = self._registry_log_size()
        if registry is None or size == self._registry_size:
            return
        bodies, _ = self.storage.load_registry()  # whole records only; open said the rest
        with self.log.lock:
            fresh = bodies[self._registry_records :]
            self.problems.extend(registry.load(fresh))
        self._registry_size, self._registry_records = size, len(bodies)
        if fresh:
            self._on_schemas()

    # -- the WAL -------------------------------------------------------------------------

    def _follow_log(self, *, gap_allowed: bool) -> bool:
        """Add the WAL's new records; False if they start past a gap or a file was gone
        (the writer sealed and trimmed what lies between: the manifest it had committed
        first, read again, has it). ``gap_allowed``: the manifest was just read, so a gap
        left is one no segment fills (a salvaged WAL), and the events go on after it."""
        storage = self.storage
        found, gone = storage.log_follower.read()
        self.problems.extend(storage.log_follower.problems)
        for path, data, starts in found:
            self._pending += decode_frames(data, starts, str(path))
        log = self.log
        with log.lock:
            last = log.next_seq - 1
            fresh = [b for b in (_after(b, last) for b in self._pending) if b is not None]
            gap = bool(fresh) and int(fresh[0].column(0)[0].as_py()) > last + 1
            if (gap or gone) and not gap_allowed:
                return False  # keep them pending: the segment comes first
            for batch in fresh:
                self._add(batch)
            self._pending = []
        return True

    def _add(self, batch: pa.RecordBatch) -> None:
        """Events new to this process, in sequence order, into the tail (under lock)."""
        log = self.log
        if batch.schema != EVENT_SCHEMA:
            batch = batch.cast(EVENT_SCHEMA)
        self.entities.absorb(batch)
        log.tail.add_batch(batch)
        log.next_seq = int(batch.column(0)[-1].as_py()) + 1
        log.last_rec = max(log.last_rec, _last_recorded(batch))

    # -- the manifest --------------------------------------------------------------------

    def _follow_manifest(self, manifest: Manifest) -> None:
        """Take in the segments a checkpoint added, or rebuild after a compaction."""
        infos = manifest.segments
        files = [s.file for s in infos]
        if files == self._files:
            return
        grown = files[: len(self._files)] == self._files
        fresh = infos[len(self._files) :] if grown else infos
        try:
            tables, problems = self.storage.open_segments(fresh)
        except CorruptionError:
            if self.storage.manifest_moved():
                raise _Again() from None  # compacted away meanwhile
            raise
        self.problems.extend(problems)
        with self.log.lock:
            placed = grown and all(self._place(i, t) for i, t in zip(fresh, tables, strict=True))
            if not placed:  # a compaction, or segments that do not match the tail
                self._rebuild(manifest, None if grown else tables)
        self._files = files

    def _place(self, info: SegmentInfo, table: pa.Table) -> bool:
        """Put a new segment in place of the tail's rows it holds (under lock); False if
        they do not match it (the read side is then untouched, and rebuilt)."""
        log, sealer = self.log, self.sealer
        through = info.last_sequence
        if through <= sealer.sealed_through:
            return False
        batch = one_batch(table)
        seq = fixed_values(batch.column("sequence"))
        last = log.next_seq - 1
        if through > last:
            missing = batch.filter(pc.greater(batch.column("sequence"), last))
            self._add(one_batch(pa.Table.from_batches([missing]).sort_by("sequence")))
        reader = sealer.reader
        tail = log.tail
        rows = tail.table()
        tail_seq = fixed_values(rows.column("sequence"))
        cut = int(np.searchsorted(tail_seq, through, side="right"))
        held = tail_seq[:cut]
        order = np.searchsorted(held, seq)
        if not cut or cut != len(seq) or not np.array_equal(held[np.minimum(order, cut - 1)], seq):
            return False
        reader.sync(tail)
        rest = rows.slice(cut)
        if rest.num_rows:
            # Two chunks, split where the segment ends: the first is retired, the second
            # is the new tail's (its positions stay as they are).
            split = Tail([one_batch(rows.slice(0, cut)), one_batch(rest)])
            split.generation = tail.generation + 1
            reader.sync(split)
            reader.retire_tail(pieces=1)
        else:
            reader.retire_tail()
        reader.seal(batch, order)
        sealer.segments.append(pa.Table.from_batches([batch]))
        sealer.segment_last.append(through)
        log.new_tail(through + 1)
        if rest.num_rows:
            log.tail.add_batch(one_batch(rest))
        return True

    def _rebuild(self, manifest: Manifest, tables: list[pa.Table] | None) -> None:
        """A new read side over the manifest's segments (``tables``, or opened here) and
        the tail's rows past them, as a compaction builds one (under lock)."""
        log, sealer, entities = self.log, self.sealer, self.entities
        infos = manifest.segments
        if tables is None:
            tables, problems = self.storage.open_segments(infos)
            self.problems.extend(problems)
        batches = [one_batch(t) for t in tables if t.num_rows]
        through = manifest.sealed_through  # at or past every segment's last sequence
        kept = log.tail.table()
        kept = kept.filter(pc.greater(kept.column("sequence"), through))
        reader = Reader(entities.keys)
        reader.index.expect(sum(b.num_rows for b in batches) + kept.num_rows)
        last_rec = log.last_rec
        for batch in batches:
            reader.add_segment(batch, entities.absorb(batch))
            last_rec = max(last_rec, _last_recorded(batch))
        reader.finish_open()
        log.new_tail(through + 1)
        if kept.num_rows:
            log.tail.add_batch(one_batch(kept))
        log.next_seq = max(log.next_seq, through + 1)
        log.last_rec = last_rec
        reader.sync(log.tail)
        sealer.reader = reader
        sealer.segments[:] = [pa.Table.from_batches([b]) for b in batches]
        sealer.segment_last[:] = [i.last_sequence for i in infos if i.rows]
        sealer.generation += 1

    # -- watching ------------------------------------------------------------------------

    def watch(self) -> None:
        """Check every ``interval`` seconds on a thread of its own, so that followers
        hear of the writer's events without anyone reading (started once; stops with
        the store)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name="allsource-follow", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        stop, log = self._stop, self.log
        while not stop.wait(self.interval):
            if log.closed:
                return
            if not log.listeners:
                continue
            try:
                self._checked = 0
                self.check()
            except Exception as exc:  # damage the writer left: say it once and stop
                self.error = exc
                self.problems.append(f"following the writer stopped: {exc}")
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


def _after(batch: pa.RecordBatch, last: int) -> pa.RecordBatch | None:
    """The rows of ``batch`` (in sequence order) past sequence ``last``; None if none."""
    seq = fixed_values(batch.column("sequence"))
    skip = int(np.searchsorted(seq, last, side="right"))
    return batch.slice(skip) if skip < batch.num_rows else None


def _last_recorded(batch: pa.RecordBatch) -> int:
    """The latest ``recorded_at`` of a batch, in microseconds."""
    return int(pc.max(batch.column("recorded_at").cast(pa.int64())).as_py())
