"""The write path and its durability: single appends, batch records, the WAL writer.

Everything an append changes — the next sequence, versions, the unsealed tail and its
log buffer, the WAL stream position — changes here, under one lock (``lock``); WAL file
writes and fsyncs run under a second (``io_lock``, always taken first) so that appends
go on while a write is in flight. A single append frames its WAL record straight into the
tail's log buffer; the flusher thread (or an append that finds the buffer full, or
``flush()``) writes the buffer out, and fsyncs it by the ``fsync`` policy: group commit,
one write for everything buffered. A full disk is not a failure: refused bytes are kept
and written first once there is room. Any other failed write or fsync stops the store
(see :meth:`EventLog.fail`).

The write path and durability are one part because they share the lock discipline: the
order in which bytes enter the buffer is the order they reach the file.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import crc32c as _crc32c
import orjson
import pyarrow as pa

from allsource_lab._ingest import inputs
from allsource_lab._storage.direct import DIRECT_BYTES
from allsource_lab._storage.records import FRAMED_SINGLE_HEADER, SINGLE_HEADER
from allsource_lab._storage.tail import Numbered, Tail
from allsource_lab._storage.wal import FRAME, fill_checksums
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.validation import validate_one
from allsource_lab.errors import ConcurrencyError, InvalidEvent, StorageError, _DiskFull
from allsource_lab.events import Event, IdGenerator
from allsource_lab.settings import Settings

if TYPE_CHECKING:
    from allsource_lab._storage import Storage
    from allsource_lab.schemas.registry import SchemaRegistry

__all__ = ["EventLog", "disk_full"]

_EMPTY_OBJECT = b"{}"
_dumps = orjson.dumps
_crc = _crc32c.crc32c
_pack_framed = FRAMED_SINGLE_HEADER.pack
_SINGLE_FIXED = SINGLE_HEADER.size  # a single record's body before its four texts
_pack_frame = FRAME.pack
_time_ns = time.time_ns
_new_object = object.__new__
_init_event = Event.__init__
# A batch record this large is written behind its append (see EventLog.write_batch):
# the size from which writes go straight to the disk (allsource_lab/_storage/direct.py).
BEHIND_BYTES = DIRECT_BYTES
_ID_LOW_MASK = IdGenerator.LOW_MASK
# Unwritten WAL buffers the flusher may fall behind by before appends write themselves.
_WAL_BACKLOG = 4

# Finds a stored event with this id and checks a retry matches it (under the lock):
# (event_id, event_type, entity_id, payload, metadata, timestamp) -> the event or None.
RetryLookup = Callable[[bytes, str, str, bytes, bytes, "int | None"], "Event | None"]


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says the disk has no room."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


class EventLog:
    """The store's write side: sequence, tail, WAL stream, and whether writes are taken.

    ``next_seq`` is the sequence the next event gets; ``tail_first`` the first sequence
    of the unsealed tail; the WAL stream counts every byte ever put in it
    (``stream_base`` + the tail's size) and ``synced`` how many of them are written and
    fsynced. ``listeners`` are called with the last stored sequence after every append,
    outside the locks; ``recent`` is the last single append while anyone listens.
    """

    # Slots, not an instance dict: past 30 attributes CPython 3.11 keeps an instance's
    # attributes in a real dict, and the append path reads or writes ~25 of them a call.
    # With id_until below (no division per append): ~670 fewer instructions an append of
    # ~23,000 (callgrind, 20K appends to a memory store).
    __slots__ = (
        "_flusher",
        "_stop",
        "_wake",
        "_writer",
        "always",
        "busy_at",
        "by_id",
        "checkpoint_every",
        "closed",
        "depth_scan_bytes",
        "disk_full",
        "entities",
        "failed",
        "find_retry",
        "id_until",
        "ids",
        "io_lock",
        "last_rec",
        "listeners",
        "lock",
        "log",
        "next_seq",
        "on_full",
        "read_only",
        "recent",
        "refuse",
        "schemas",
        "schemas_active",
        "seal_at",
        "settings",
        "storage",
        "stream_base",
        "synced",
        "tail",
        "tail_first",
        "types",
        "versions",
        "wal_limit",
        "wal_retry",
    )

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        entities: EntityTable,
        tail: Tail,
        next_seq: int,
        last_rec: int,
        *,
        read_only: bool,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.entities = entities
        self.read_only = read_only
        self.lock = threading.Lock()  # in-memory state and the WAL buffer
        self.io_lock = threading.Lock()  # WAL file writes and fsyncs; taken before lock
        self.tail = tail
        self.log = tail.log  # the append path adds its records here
        self.ids = IdGenerator()
        # The first microsecond past ids.ms (see append): batches may move ids.ms on,
        # which only sends the next append the slow way, through ids.next.
        self.id_until = 0
        self.next_seq = next_seq
        self.last_rec = last_rec  # recorded_at never goes backwards
        self.stream_base = 0
        self.synced = 0
        # WAL bytes a full disk refused, in order: written before anything newer, and
        # until they are, the store takes no writes (see retry_full_disk).
        self.wal_retry = bytearray()
        self.disk_full: OSError | None = None
        self.failed: BaseException | None = None
        self.closed = True  # until start(): a store that fails to open is never written
        self.refuse = True  # closed, failed, full or read-only: one flag for the hot path
        self.listeners: list[Callable[[int], None]] = []  # changed in place, never rebound
        self.recent: Event | None = None
        # Set by the store once its other parts exist.
        self.schemas: SchemaRegistry | None = None
        self.schemas_active = False
        self.find_retry: RetryLookup = lambda *_: None
        self.on_full: Callable[[], object] = lambda: None  # seals the tail
        # Facts the append path reads on every call, computed once.
        self.types = entities.types
        self.by_id = entities.by_id
        self.versions = entities.versions
        self.always = storage.durable and settings.fsync == "always"
        # Payload texts up to this long need no size or depth check (see append).
        self.depth_scan_bytes = min(2 * settings.max_json_depth, settings.max_payload_bytes)
        self.wal_limit = settings.wal_buffer_bytes
        self.busy_at = self.wal_limit  # log length past which the WAL buffer is full
        self.checkpoint_every = settings.checkpoint_every_events
        self.tail_first = next_seq - sum(c.num_rows for c in tail.chunks)
        self.seal_at = self.tail_first + self.checkpoint_every - 1  # a sequence
        self._stop = threading.Event()
        self._wake = threading.Event()  # a WAL buffer is full: the flusher writes it
        self._flusher: threading.Thread | None = None
        self._writer: ThreadPoolExecutor | None = None  # writes large batches behind

    def start(self) -> None:
        """Take writes (unless read-only), with a flusher thread if the policy needs one."""
        if self.storage.durable and not self.read_only and self.settings.fsync != "always":
            self._flusher = threading.Thread(
                target=self._flush_loop, name="allsource-wal-flusher", daemon=True
            )
            self._flusher.start()
        self.closed = False
        self.refuse = self.read_only

    def stop_flusher(self) -> None:
        """Stop the flusher thread and the batch writer, and wait for both (they write
        nothing more; a batch appended after this is written by its append)."""
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    # -- one event -----------------------------------------------------------------------

    def append(
        self,
        event_type: str,
        entity_id: str,
        payload: Any,
        metadata: Any = None,
        timestamp: Any = None,
        event_id: Any = None,
        expected_version: int | None = None,
    ) -> Event:
        """Append one event and return it as stored.

        ``expected_version``: ``None`` accepts any version, ``0`` requires that the entity
        does not exist yet, ``N`` that it is at version N. An ``event_id`` that is already
        stored with the same content returns the stored event (a safe retry).

        Raises:
            InvalidEvent: bad input (names the field); nothing was written.
            ConcurrencyError: ``expected_version`` did not match.
            StorageError: the store is closed, read-only, or its disk failed.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> ev = store.append("order.placed", "order-17", {"amount": 42.5})
        >>> (ev.sequence, ev.version, ev.payload)
        (1, 1, {'amount': 42.5})
        """
        # The hot path (~2 us an event in a tight loop here). It stays one method that
        # reads its state from attributes of self: a Python call costs ~0.08 us, measured
        # as a delegating method around this one, and it would pay that for each helper.
        # Every step that can be done before the lock is.
        tb = self.types.get(event_type) if type(event_type) is str else None
        if tb is None:
            tb = self.entities.new_type(event_type)
        if type(payload) is dict:
            try:
                pb = _dumps(payload)
            except (TypeError, orjson.JSONEncodeError):
                pb = inputs.encode_json_object(payload, "payload", self.settings)
            else:
                # orjson writes NaN as null and checks neither size nor depth: the rare
                # texts where that can matter get the full check. Nesting past the limit
                # needs more brackets than a short text holds. (find is 3x faster than
                # `in` here, measured.)
                if pb.find(b"null") >= 0 or (
                    len(pb) > self.depth_scan_bytes
                    and (
                        len(pb) > self.settings.max_payload_bytes
                        or pb.count(b"{") + pb.count(b"[") > self.settings.max_json_depth
                    )
                ):
                    pb = inputs.encode_json_object(payload, "payload", self.settings)
        else:
            pb = inputs.encode_json_object(payload, "payload", self.settings)
        mb = (
            _EMPTY_OBJECT
            if metadata is None
            else inputs.encode_json_object(metadata, "metadata", self.settings)
        )
        ts = None if timestamp is None else inputs.parse_time(timestamp)
        eid = None if event_id is None else inputs.parse_event_id(event_id)
        sv = validate_one(self.schemas, event_type, pb) if self.schemas_active else -1  # type: ignore[arg-type]
        if expected_version is not None and (
            type(expected_version) is not int or expected_version < 0
        ):
            raise InvalidEvent(
                f"expected_version must be None or an int >= 0, not {expected_version!r}",
                field="expected_version",
            )
        lock = self.lock
        lock.acquire()  # (acquire/release: half the cost of `with`, measured)
        try:
            if self.refuse:
                self.refuse_write()
            ent = self.by_id.get(entity_id) if type(entity_id) is str else None
            if ent is None:
                ent = self.entities.new_entity(entity_id)
            no, eb, part = ent
            if eid is not None:
                existing = self.find_retry(eid, event_type, entity_id, pb, mb, ts)
                if existing is not None:
                    return existing
            version = self.versions[no]
            if expected_version is not None and expected_version != version:
                raise ConcurrencyError(entity_id, expected_version, version)
            version += 1
            rec = _time_ns() // 1000
            if rec <= self.last_rec:
                rec = self.last_rec + 1  # recorded_at never goes backwards
            self.last_rec = rec
            if ts is None:
                ts = rec
            if eid is None:
                # IdGenerator.next's same-millisecond step, written out here. id_until is
                # the first microsecond past the generator's millisecond, so that the
                # common case needs no division.
                ids = self.ids
                value = ids.value + 1
                if rec < self.id_until and value & _ID_LOW_MASK:
                    ids.value = value
                    eid = value.to_bytes(16, "big")
                else:
                    eid = ids.next(rec // 1000)
                    self.id_until = (ids.ms + 1) * 1000
            seq = self.next_seq
            # One framed record: frame and record headers packed together, the CRC left
            # for the WAL writer to fill in (see write_log), one join, one append.
            lt = len(tb)
            le = len(eb)
            lm = len(mb)
            lp = len(pb)
            log = self.log  # the WAL writer and the tail's decoder both read it
            log += b"".join(
                (
                    _pack_framed(
                        _SINGLE_FIXED + lt + le + lm + lp,
                        0,
                        1,
                        seq,
                        version,
                        ts,
                        rec,
                        eid,
                        sv,
                        part,
                        lt,
                        le,
                        lm,
                        lp,
                    ),
                    tb,
                    eb,
                    mb,
                    pb,
                )
            )
            self.versions[no] = version
            self.next_seq = seq + 1
            # Work for after the lock: the stream end to fsync through, or -1 for a
            # full WAL buffer or tail (see _after_append), or nothing.
            if self.always:
                after = self.stream_end()
            elif len(log) > self.busy_at or seq >= self.seal_at:
                after = -1
            else:
                after = 0
        finally:
            lock.release()
        if after:
            self._after_append(seq, after)
        # Event.__init__ called as a plain function on a bare instance: calling the class
        # goes through type.__call__ and a bound __init__ with an argument tuple; this
        # way is ~400 instructions an append fewer (callgrind, as above).
        event = _new_object(Event)
        _init_event(
            event,
            seq,
            event_type,
            entity_id,
            version,
            ts,
            rec,
            eid,
            pb,
            mb,
            part,
            None if sv < 0 else sv,
        )
        if self.listeners:
            self.recent = event
            self.notify(seq)
        return event

    def _after_append(self, seq: int, after: int) -> None:
        """What a single append leaves for after the store lock: fsync through the stream
        position ``after`` (fsync "always"), else write out a full WAL buffer; and seal a
        full tail."""
        if after > 0:
            self.write_wal(sync=True, target=after)
        elif len(self.log) > self.busy_at:
            self._wal_buffer_full()
        if seq >= self.seal_at:
            self.on_full()

    def _wal_buffer_full(self) -> None:
        """Hand a full WAL buffer to the flusher thread, whose write runs beside the
        appending thread (the GIL is released while it writes); write it here if there is
        no flusher, or it has fallen behind by several buffers."""
        with self.lock:
            unwritten = self.tail.unwritten
            if unwritten <= self.wal_limit:
                return  # taken meanwhile
            wake = self._flusher is not None and unwritten < _WAL_BACKLOG * self.wal_limit
            if wake:
                self.busy_at = len(self.log) + self.wal_limit  # one wake per buffer
        if wake:
            self._wake.set()
        else:
            self.write_wal(sync=False)

    def notify(self, last: int) -> None:
        """Tell listeners that events through sequence ``last`` are stored."""
        for listener in list(self.listeners):
            listener(last)

    # -- batches (the caller holds io_lock and lock) -------------------------------------

    def next_recorded(self) -> int:
        """The recorded time for a batch: now, but never at or before the last one."""
        return max(_time_ns() // 1000, self.last_rec + 1)

    def add_batch(
        self,
        record_batch: pa.RecordBatch,
        pieces: list[Any],
        first: int,
        rec: int,
        numbered: Numbered | None = None,
    ) -> tuple[bytearray, int, bool]:
        """Take a batch record into the tail and the WAL stream, under both locks.

        Returns the single records buffered before it (to be written first), the stream
        position through which it is written, and whether the tail is full.
        """
        n = record_batch.num_rows
        buffered = self.take_unwritten()
        self.stream_base += sum(memoryview(p).nbytes for p in pieces)
        upto = self.stream_end()
        self.tail.add_batch(record_batch, numbered)
        self.last_rec = rec
        self.next_seq = first + n
        return buffered, upto, first + n - 1 >= self.seal_at

    def write_batch(self, buffered: bytearray, pieces: list[Any], upto: int) -> bool:
        """Write a batch record after the single records buffered before it, under
        io_lock (still held since add_batch: nothing can be written in between, so the
        file stays in sequence order); fsync it under fsync "always".

        Under "interval" and "never" a record of ``BEHIND_BYTES`` or more is written
        *behind*: the writer thread takes the io lock over, writes it, and releases the
        lock (True is returned: the caller must not release it). The append returns
        meanwhile, as a single append returns before the flusher writes its record: what
        those policies promise (RELIABILITY.md) is unchanged, and the next write, fsync,
        seal or close waits for the lock. The batch's own work no longer waits for the
        disk: a 1M-event record (~200 MB) takes ~0.1-0.2 s to write, beside the next
        batch's checks. A failed write stops the store, as a failed flusher write does;
        the next call says so.
        """
        if not self.storage.durable:
            return False
        if not self.always and sum(memoryview(p).nbytes for p in pieces) >= BEHIND_BYTES:
            writer = self._writer
            if writer is None:
                writer = self._writer = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="allsource-wal-writer"
                )
            try:
                writer.submit(self._write_behind, buffered, pieces)
                return True
            except RuntimeError:  # shut down: the store is closing; write it here
                pass
        try:
            self.write_log(buffered, *pieces)
            if self.always:
                self.storage.sync_log()
                self.synced = upto
        except OSError as exc:
            self.fail(exc)
        return False

    def _write_behind(self, buffered: bytearray, pieces: list[Any]) -> None:
        """The writer thread: a batch record written behind its append; releases the io
        lock its append took (see write_batch)."""
        try:
            self.write_log(buffered, *pieces)
        except OSError as exc:
            # Recorded by fail (a full disk keeps the bytes for the next write to retry);
            # there is no caller left to raise it to: the next call refuses with it.
            with contextlib.suppress(OSError, StorageError):
                self.fail(exc)
        finally:
            self.io_lock.release()

    @staticmethod
    def frame(pieces: list[Any]) -> list[Any]:
        """A batch record's pieces with the frame (length, CRC32C) in front."""
        crc = 0
        for piece in pieces:
            crc = _crc(piece, crc)
        length = sum(memoryview(p).nbytes for p in pieces)
        return [_pack_frame(length, crc), *pieces]

    # -- whether writes are taken --------------------------------------------------------

    def refuse_write(self, io_held: bool = False) -> None:
        """Raise the reason writes are refused, under lock; returns only if a full disk
        has room again (``io_held``: the caller holds io_lock too)."""
        if self.disk_full is not None and self.failed is None and not self.closed:
            if self._retry_full_disk(io_held):
                return
            if self.failed is None:  # else the retry met a worse error, reported below
                raise _DiskFull(self.disk_full)
        if self.failed is not None:
            raise StorageError(
                f"the store stopped accepting writes after a disk error ({self.failed}); "
                "acknowledged events are safe — close and reopen the store"
            )
        if self.read_only:
            raise StorageError("the store was opened with read_only=True; open it for writing")
        raise StorageError("the store is closed; open it again with asl.open(...)")

    def _retry_full_disk(self, io_held: bool) -> bool:
        """Write the bytes a full disk refused; True if they are written (under lock)."""
        if not io_held and not self.io_lock.acquire(blocking=False):
            return False  # a writer is busy: the next call tries again
        try:
            self.write_log(locked=True)
        except _DiskFull:
            return False
        except OSError as exc:
            self.failed = exc
            return False
        finally:
            if not io_held:
                self.io_lock.release()
        return True

    def fail(self, exc: OSError) -> None:
        """Stop accepting writes after a failed WAL write or fsync, and say so.

        Never retry an fsync and carry on: the kernel may have dropped the dirty pages, so
        a second fsync that succeeds proves nothing about the first write. A full disk
        (_DiskFull) is no such failure: it is raised as it is, and writes resume once
        there is room.
        """
        if isinstance(exc, _DiskFull):
            raise exc
        self.failed = exc
        self.refuse = True
        raise StorageError(
            f"the WAL could not be written or synced ({exc}); the store refuses further "
            "writes — reopen it once the disk is healthy"
        ) from exc

    # -- the WAL stream ------------------------------------------------------------------

    def stream_end(self) -> int:
        """Bytes ever put in the WAL stream (single records and batches), under lock."""
        return self.stream_base + self.tail.size

    def take_unwritten(self) -> bytearray:
        """The single records no WAL write has taken yet, under lock: the tail's log
        buffer itself, which the append path leaves for a new one."""
        data = self.tail.take_unwritten()
        self.log = self.tail.log
        self.busy_at = self.wal_limit
        return data

    def new_tail(self, first: int) -> None:
        """An empty tail whose first event will have sequence ``first``, under lock."""
        self.tail = Tail()
        self.log = self.tail.log
        self.busy_at = self.wal_limit
        self.tail_first = first
        self.seal_at = first + self.checkpoint_every - 1

    def write_log(
        self, singles: bytearray | None = None, *pieces: Any, locked: bool = False
    ) -> None:
        """Write WAL bytes after any a full disk refused earlier (under io_lock, and
        under lock too if ``locked``): ``singles``, records taken from the tail's log,
        whose checksums are filled in first, then ``pieces`` as they are.

        Raises:
            _DiskFull: no room; the bytes are kept and nothing more is accepted until a
                later write (or flush) gets them out.
            OSError: any other failure (the caller stops the store).
        """
        if singles:
            if self.storage.durable:
                fill_checksums(singles)
            pieces = (singles, *pieces)
        if self.wal_retry:
            pieces = (self.wal_retry, *pieces)
        try:
            self.storage.write_log(*pieces)
        except OSError as exc:
            if not disk_full(exc):
                raise
            kept = bytearray()
            for piece in pieces:
                kept += memoryview(piece).cast("B")
            with contextlib.nullcontext() if locked else self.lock:
                self.wal_retry = kept
                self.disk_full = exc
                self.refuse = True
            raise _DiskFull(exc) from exc
        if self.wal_retry:
            with contextlib.nullcontext() if locked else self.lock:
                self.wal_retry = bytearray()
                self.disk_full = None
                self.refuse = self.closed or self.read_only or self.failed is not None

    def write_wal(self, *, sync: bool, target: int | None = None) -> None:
        """Write the WAL buffer out (and fsync it if ``sync``): one caller writes for all.

        Group commit: a thread that finds its bytes already written and synced by another
        returns at once; otherwise it takes everything buffered so far.
        """
        with self.io_lock:
            if self.failed is not None and isinstance(self.failed, OSError):
                # A write that had no caller to raise to (the flusher's, or a batch
                # written behind its append) failed: say so rather than fsync around it.
                raise StorageError(
                    f"the WAL could not be written ({self.failed}); events acknowledged "
                    "since the last flush may be lost, and the store refuses further "
                    "writes — reopen it once the disk is healthy"
                ) from self.failed
            if target is not None and sync and self.synced >= target:
                return
            with self.lock:
                data = self.take_unwritten()
                upto = self.stream_end()
                next_seq = self.next_seq
                if self.closed and not data:
                    return
            try:
                if data or self.wal_retry:
                    self.write_log(data)
                if sync:
                    self.storage.sync_log()
                    self.synced = upto
                if self.storage.log_size() > self.settings.wal_segment_bytes:
                    try:
                        self.storage.rotate_log(next_seq)
                    except OSError as exc:
                        # No room for a new WAL file: the current one goes on growing
                        # (rotation is housekeeping) and the next write tries again.
                        if not disk_full(exc):
                            raise
            except OSError as exc:
                self.fail(exc)

    def _flush_loop(self) -> None:
        """The background WAL writer: every ``fsync_interval_s`` it writes what appends
        buffered (and fsyncs it under fsync "interval"); in between it writes a full
        buffer when an append wakes it."""
        interval = self.settings.fsync_interval_s
        sync = self.settings.fsync == "interval"
        wake, stop = self._wake, self._stop
        due = time.monotonic() + interval
        while True:
            woken = wake.wait(max(0.0, due - time.monotonic()))
            if stop.is_set() or self.failed is not None:
                return
            if woken:
                wake.clear()
            now = time.monotonic()
            try:
                if now >= due:
                    due = now + interval
                    if (
                        self.tail.unwritten
                        or self.wal_retry
                        or (sync and self.synced < self.stream_end())
                    ):
                        self.write_wal(sync=sync)
                elif self.tail.unwritten > self.wal_limit:
                    self.write_wal(sync=False)
            except _DiskFull:
                continue  # try again next interval: the store works once there is room
            except StorageError:
                return

    def flush(self) -> None:
        """Write and fsync everything appended so far (nothing new: no fsync)."""
        if self.closed or self.read_only or not self.storage.durable:
            return
        self.write_wal(sync=True, target=self.stream_end())
