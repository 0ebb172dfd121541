"""Checkpoints and compaction: the tail sealed into Parquet segments, segments merged.

A checkpoint *retires* the unsealed tail (under the store's locks, a few microseconds plus
writing out buffered WAL bytes): a new, empty tail takes appends at once, the WAL goes on in
a new file, and the retired tail stays readable where it was. A sealing thread then sorts it
by (partition, entity_id, sequence), writes it as a segment, commits it in the manifest and
removes the WAL files it made redundant; only the last step, putting the segment in the
retired chunks' place on the read side, takes the lock again. So appends never wait for a
seal — unless the next tail fills while the previous one is still being sealed: then the
append that filled it waits (backpressure: at most two tails are held in memory), until
the previous segment is in place; that seal's thread writes its derived files (index
file, entity index, snapshots) beside the next seal, the files of each seal after those
of the one before.

A seal that finds the disk full keeps its retired tail; the next checkpoint (automatic or
asked for) seals it together with what arrived since. Any other failure stops writes, as a
failed WAL write does. Compaction waits for a running seal and then holds the locks
throughout (~1-2 s per million events).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._query.reads import Reader, one_batch
from allsource_lab._query.state import Snapshot, Snapshots, encode_snapshot
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.log import EventLog, disk_full
from allsource_lab.errors import StorageError
from allsource_lab.settings import Settings

if TYPE_CHECKING:
    from allsource_lab._storage import Storage

__all__ = ["Sealer"]

# A sealed tail at least this long hands Arrow's freed pages back to the system.
_RELEASE_ROWS = 65_536


class _Job:
    """A retired tail on its way to a segment."""

    __slots__ = (
        "error",
        "events",
        "in_place",
        "placed",
        "previous",
        "seconds",
        "snapshots",
        "table",
        "thread",
        "through",
        "trim",
    )

    def __init__(
        self, table: pa.Table, through: int, trim: int | None, snapshots: list[Snapshot]
    ) -> None:
        self.table: pa.Table | None = table
        self.events = table.num_rows
        self.through = through
        self.trim = trim  # WAL files starting below this go once it is sealed
        self.snapshots = snapshots  # they fold only events of this tail or before
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        # Set when the thread is done with the read side: the segment is in the retired
        # tail's place (``in_place``), or the seal failed. Its derived files (index,
        # snapshots) may still be being written then, beside the next seal.
        self.placed = threading.Event()
        self.in_place = False
        # The seal before it, if still writing its derived files: this one's wait for it.
        self.previous: threading.Thread | None = None


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
        # The retired tail being sealed (or whose seal found the disk full), if any.
        self._job: _Job | None = None
        # A sealed job whose thread may still be writing its derived files.
        self._finishing: _Job | None = None
        # Held by whoever waits for or starts a seal: one at a time, in order.
        self._turn = threading.Lock()

    @property
    def sealed_through(self) -> int:
        """The last sequence in a committed segment (0: none)."""
        return self.segment_last[-1] if self.segment_last else 0

    def request(self) -> None:
        """The tail is full: start sealing it on the sealing thread and return.

        Waits only for the seal before it, if that one is still running.

        Raises:
            StorageError: the store refuses writes, or the seal before it failed.
        """
        with self._turn:
            job = self._job
            if job is not None and job.thread is not None:
                # Index the full tail beside the running seal: retiring it, under both
                # locks with appends waiting, then has little left to do (1M events:
                # ~0.06-0.17 s of indexing, measured, that appends no longer wait for).
                with self.log.lock:
                    self.reader.sync(self.log.tail)
            # Until the running seal's segment is in place, not until its derived files
            # are written: those are written beside the next seal.
            self._wait(whole=False)
            self._start()

    def seal(self) -> dict[str, Any] | None:
        """Seal the tail into a segment and wait for it; what was sealed (None if nothing
        was: the tail was empty and no earlier seal was waiting).

        Raises:
            StorageError: the store refuses writes, or the segment could not be written
                (nothing acknowledged is lost: the WAL still holds it).
        """
        started = time.perf_counter()
        with self._turn:
            self._wait()
            job = self._start()
            if job is None:
                return None
            self._wait()
        return {
            "events": job.events,
            "through_sequence": job.through,
            "seconds": time.perf_counter() - started,
        }

    def wait(self) -> None:
        """Wait for a running seal (before compaction, or closing).

        Raises:
            StorageError: it failed.
        """
        with self._turn:
            self._wait()

    def _wait(self, *, whole: bool = True) -> None:
        """Wait for the running seal (holding ``_turn``); raise what it failed with.

        ``whole=False`` waits only until its segment is in place: its thread may go on
        writing the derived files (a later wait collects it, and what it raised), and
        the one before it is collected then. A seal that found the disk full stays as
        the job, for the next one to take along. Of two failures, the earlier seal's is
        raised (either one has stopped writes).
        """
        job = self._job
        error: BaseException | None = None
        if job is not None and job.thread is not None:
            if not whole:
                job.placed.wait()
                if job.in_place:
                    self._job = None
                    before, self._finishing = self._finishing, job
                    self._collect(before)
                    return
            job.thread.join()
            job.thread = None
            error, job.error = job.error, None
            if error is None:
                self._job = None
        if whole or error is not None:
            finishing, self._finishing = self._finishing, None
            self._collect(finishing)
        if error is not None:
            raise error

    @staticmethod
    def _collect(finishing: _Job | None) -> None:
        """Join a sealed job that may still be writing its derived files; raise what it
        raised there."""
        if finishing is None or finishing.thread is None:
            return
        finishing.thread.join()
        error, finishing.error = finishing.error, None
        if error is not None:
            raise error

    def _start(self) -> _Job | None:
        """Retire the tail (with a seal the disk refused before, if any) and start its
        seal on a new thread (holding ``_turn``); the job, or None if nothing to seal."""
        log = self.log
        with log.io_lock, log.lock:
            if log.refuse:
                log.refuse_write(io_held=True)
            job = self._job
            if log.next_seq == log.tail_first:
                if job is None:
                    return None
            else:
                job = self._retire(job)
            self._job = job
        job.placed = threading.Event()
        job.previous = self._finishing.thread if self._finishing is not None else None
        job.thread = threading.Thread(
            target=self._run, args=(job,), name="allsource-sealer", daemon=True
        )
        job.thread.start()
        return job

    def _retire(self, job: _Job | None) -> _Job:
        """Hand the tail to a job (a new one, or the job the disk refused), start a new
        tail and WAL file; under both locks."""
        log = self.log
        data = log.take_unwritten()
        if data or log.wal_retry:
            try:
                log.write_log(data, locked=True)
            except OSError as exc:
                log.fail(exc)
        reader = self.reader
        reader.sync(log.tail)
        table = log.tail.table()
        through = log.next_seq - 1
        try:
            trim = self.storage.start_seal(through)
        except OSError:
            trim = None  # the WAL goes on in its current file; a later seal trims it
        if job is None:
            reader.retire_tail()
            job = _Job(table, through, trim, [])
        else:
            reader.extend_retired()
            assert job.table is not None
            job.table = pa.concat_tables([job.table, table])
            job.events = job.table.num_rows
            job.through = through
            job.trim = trim if trim is not None else job.trim
        job.snapshots += self.snapshots.unsaved
        self.snapshots.unsaved = []
        log.stream_base = log.stream_end()
        log.new_tail(through + 1)
        return job

    def _run(self, job: _Job) -> None:
        """The sealing thread: nothing it raises escapes it (whoever waits gets it)."""
        try:
            self._seal_job(job)
        except BaseException as exc:
            # Not an error of the disk (those are handled where they can happen), so an
            # interrupt or a bug: stop writes; whoever waits gets it as it was raised.
            self._stop(exc)
            job.error = exc
        finally:
            job.placed.set()  # a seal that failed before its segment was in place, too

    def _seal_job(self, job: _Job) -> None:
        """Write the segment, then put it in the retired tail's place."""
        started = time.perf_counter()
        log = self.log
        assert job.table is not None
        entities = None
        with log.lock:
            # The rows' entity numbers, from the index: the sort need not number the ids.
            sealing = self.reader.sealing
            if sealing is not None and sealing[3] == job.table.num_rows:
                base = sealing[2]
                entities = self.reader.index.ent.view[base : base + sealing[3]].copy()
        try:
            ordered, order = self.storage.seal(
                job.table, job.through, self.settings, job.trim, entities
            )
        except OSError as exc:
            if disk_full(exc):
                job.error = StorageError(
                    f"checkpoint found the disk full ({exc}); nothing was sealed and "
                    "nothing acknowledged was lost (the WAL holds it). Free space; the "
                    "next checkpoint tries again"
                )
                job.error.__cause__ = exc
                return
            self._stop(exc)
            job.error = StorageError(
                f"checkpoint failed ({exc}); nothing acknowledged was lost — the "
                "WAL still holds it. Free space or fix the disk, then reopen."
            )
            job.error.__cause__ = exc
            return
        batch = one_batch(ordered)
        with log.lock:
            self.segments.append(pa.Table.from_batches([batch]))
            self.segment_last.append(job.through)
            k = len(self.segments) - 1  # the next seal may commit before its files
            reader = self.reader
            piece, _, base, rows = reader.sealing  # type: ignore[misc]
            reader.seal(batch, order)
            index = reader.segment_index(piece)
            runs = index.run_numbers(reader.index.ent.view[base : base + rows])
            keys = self.entities.keys.key_buffers()
        job.table = None
        # The next seal may start now: sorting and encoding a million events takes it
        # ~0.3 s of CPU before its commit, and these derived files took 0.06-0.6 s on a
        # busy machine (measured); written here, they no longer hold it back. They are
        # written in seal order, each at its own segment's position (not "the newest").
        job.in_place = True
        job.placed.set()
        if job.previous is not None:
            job.previous.join()
            job.previous = None
        self.storage.write_index(k, index)  # what the next open would rebuild
        self.storage.write_entities(k, keys, [runs])
        if job.snapshots:  # everything they fold is sealed now
            with log.io_lock, contextlib.suppress(OSError):  # derived data: events are safe
                self.storage.write_snapshots([encode_snapshot(x) for x in job.snapshots])
        # The tail's buffers are free now, but Arrow's allocator keeps freed pages for
        # reuse; handing them back makes a sealed store's RSS its segments (1M events:
        # ~350 -> ~160 bytes per event, measured). Small tails free too little to be
        # worth the call (~1 ms).
        if batch.num_rows >= _RELEASE_ROWS:
            pa.default_memory_pool().release_unused()
        job.seconds = time.perf_counter() - started

    def _stop(self, exc: BaseException) -> None:
        """Refuse writes after a seal failed other than for room."""
        with self.log.lock:
            self.log.failed = exc
            self.log.refuse = True

    def compact(self) -> dict[str, Any] | None:
        """Merge every segment into one; what was merged (None if fewer than two).

        Raises:
            StorageError: the store refuses writes, or the merged segment could not be
                written (the store is unchanged).
        """
        started = time.perf_counter()
        with self._turn:
            self._wait()
            return self._compact(started)

    def _compact(self, started: float) -> dict[str, Any] | None:
        log = self.log
        with log.io_lock, log.lock:
            if log.refuse:
                log.refuse_write(io_held=True)
            if len(self.segments) < 2 or self._job is not None:
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
            index = reader.segment_index(0)
            self.storage.write_index(0, index)
            runs = index.run_numbers(reader.index.ent.view[: batch.num_rows])
            self.storage.write_entities(0, self.entities.keys.key_buffers(), [runs])
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
        """Every stored event as Arrow tables: segments, a tail being sealed, the tail
        (under lock)."""
        return self.tables_after(0)

    def tables_after(self, through: int) -> list[pa.Table]:
        """The tables that may hold sequences above ``through`` (under lock)."""
        reader = self.reader
        reader.sync(self.log.tail)
        found = [
            t for t, last in zip(self.segments, self.segment_last, strict=True) if last > through
        ]
        # After the segments, the read side's pieces are chunks in sequence order: those
        # of a tail being sealed, then the tail's.
        found += [
            pa.Table.from_batches([c])
            for c in reader.pieces[len(self.segments) :]
            if c.num_rows and c.column(0)[-1].as_py() > through
        ]
        return found
