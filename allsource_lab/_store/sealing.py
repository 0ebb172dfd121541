"""Checkpoints and compaction: the tail sealed into Parquet segments, segments merged.

A checkpoint writes the unsealed tail as one segment sorted by (partition, entity_id,
sequence), commits it in the manifest, and starts an empty tail; the read side keeps the
sealed rows (the segment's Arrow data) and moves their index entries to the new order.
Compaction rewrites every segment as one and builds the read side anew over it. Both hold
the store's locks throughout: appends and reads wait (~1-2 s per million events).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._query.reads import Reader, one_batch
from allsource_lab._query.state import Snapshots, encode_snapshot
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.log import EventLog, disk_full
from allsource_lab.errors import StorageError
from allsource_lab.settings import Settings

if TYPE_CHECKING:
    from allsource_lab._storage import Storage

__all__ = ["Sealer"]

# A sealed tail at least this long hands Arrow's freed pages back to the system.
_RELEASE_ROWS = 65_536


class Sealer:
    """The sealed history — segments as Arrow tables — and the read side over everything.

    ``reader`` is replaced by compaction: other parts reach it through this object each
    time, never keep it. ``generation`` counts compactions (SQL registers its view again).
    """

    def __init__(
        self,
        log: EventLog,
        storage: Storage,
        settings: Settings,
        entities: EntityTable,
        snapshots: Snapshots,
        reader: Reader,
        segments: list[pa.Table],
        segment_last: list[int],
    ) -> None:
        self.log = log
        self.storage = storage
        self.settings = settings
        self.entities = entities
        self.snapshots = snapshots
        self.reader = reader
        self.segments = segments  # each segment as a one-batch table
        self.segment_last = segment_last  # its last sequence: catch-up skips whole segments
        self.generation = 0

    def seal(self) -> dict[str, Any] | None:
        """Seal the tail into a segment; what was sealed, or None for an empty tail.

        Raises:
            StorageError: the store refuses writes, or the segment could not be written
                (nothing acknowledged is lost: the WAL still holds it).
        """
        log = self.log
        with log.io_lock, log.lock:
            if log.refuse:
                log.refuse_write(io_held=True)
            if log.next_seq == log.tail_first:
                return None
            started = time.perf_counter()
            data = log.take_unwritten()
            if data or log.wal_retry:
                try:
                    log.write_log(data, locked=True)
                except OSError as exc:
                    log.fail(exc)
            try:
                self.reader.sync(log.tail)
                table = log.tail.table()
                through = log.next_seq - 1
                ordered, order = self.storage.seal(table, through, self.settings)
            except OSError as exc:
                if disk_full(exc):
                    raise StorageError(
                        f"checkpoint found the disk full ({exc}); nothing was sealed and "
                        "nothing acknowledged was lost (the WAL holds it). Free space; the "
                        "next checkpoint tries again"
                    ) from exc
                log.failed = exc
                log.refuse = True
                raise StorageError(
                    f"checkpoint failed ({exc}); nothing acknowledged was lost — the "
                    "WAL still holds it. Free space or fix the disk, then reopen."
                ) from exc
            batch = one_batch(ordered)
            self.segments.append(pa.Table.from_batches([batch]))
            self.segment_last.append(through)
            self.reader.seal(batch, order)
            log.synced = log.stream_base = log.stream_end()
            log.new_tail(through + 1)
            unsaved = self.snapshots.unsaved
            if unsaved:  # everything they fold is sealed now
                self.snapshots.unsaved = []
                with contextlib.suppress(OSError):  # derived data: the events are safe
                    self.storage.write_snapshots([encode_snapshot(x) for x in unsaved])
            # The tail's buffers are free now, but Arrow's allocator keeps freed pages for
            # reuse; handing them back makes a sealed store's RSS its segments (1M events:
            # ~350 -> ~160 bytes per event, measured). Small tails free too little to be
            # worth the call (~1 ms).
            if batch.num_rows >= _RELEASE_ROWS:
                pa.default_memory_pool().release_unused()
            return {
                "events": batch.num_rows,
                "through_sequence": through,
                "seconds": time.perf_counter() - started,
            }

    def compact(self) -> dict[str, Any] | None:
        """Merge every segment into one; what was merged (None if fewer than two).

        Raises:
            StorageError: the store refuses writes, or the merged segment could not be
                written (the store is unchanged).
        """
        started = time.perf_counter()
        log = self.log
        with log.io_lock, log.lock:
            if log.refuse:
                log.refuse_write(io_held=True)
            if len(self.segments) < 2:
                return None
            merged = pa.concat_tables(self.segments)
            try:
                stored = self.storage.compact(merged, self.settings)
            except OSError as exc:
                raise StorageError(
                    f"compaction failed ({exc}); the store is unchanged (reopen it if this "
                    "was a disk error)"
                ) from exc
            count = len(self.segments)
            batch = one_batch(stored)
            reader = Reader(self.entities.keys)
            reader.index.expect(batch.num_rows + log.next_seq - log.tail_first)
            reader.add_segment(batch, self.entities.intern_column(batch.column("entity_id")))
            reader.finish_open()
            reader.sync(log.tail)
            self.reader = reader
            self.segments[:] = [pa.Table.from_batches([batch])]
            self.segment_last[:] = [int(pc.max(batch.column("sequence")).as_py())]
            self.generation += 1
        # The merge freed every old segment's buffers; Arrow's pool would keep the pages.
        pa.default_memory_pool().release_unused()
        return {
            "segments": count,
            "events": batch.num_rows,
            "seconds": time.perf_counter() - started,
        }

    def tables(self) -> list[pa.Table]:
        """Every stored event as Arrow tables: the segments, then the tail (under lock)."""
        return [*self.segments, self.log.tail.table()]

    def tables_after(self, through: int) -> list[pa.Table]:
        """The tables that may hold sequences above ``through`` (under lock)."""
        tail = self.log.tail
        tail.freeze()
        found = [
            t for t, last in zip(self.segments, self.segment_last, strict=True) if last > through
        ]
        found += [
            pa.Table.from_batches([c])
            for c in tail.chunks
            if c.num_rows and c.column(0)[-1].as_py() > through
        ]
        return found
