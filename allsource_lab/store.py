"""The event store: the write path, checkpoints, recovery, and the reads built on them."""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import crc32c as _crc32c
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._ingest import inputs, retries
from allsource_lab._kernels import timetravel
from allsource_lab._kernels import versions as version_kernels
from allsource_lab._kernels.hashing import partitions_of
from allsource_lab._kernels.keytable import KeyTable
from allsource_lab._query.analytics import Analytics
from allsource_lab._query.idindex import IdIndex
from allsource_lab._query.reads import Reader, one_batch
from allsource_lab._query.state import (
    HotStates,
    Snapshot,
    Snapshots,
    copy_state,
    decode_snapshot,
    encode_snapshot,
    merge_patch,
)
from allsource_lab._storage import FolderStorage, Loaded, MemoryStorage, Storage
from allsource_lab._storage.arrowbuf import string_array_from_buffers, string_buffers
from allsource_lab._storage.records import (
    FRAMED_SINGLE_HEADER,
    SINGLE_HEADER,
    ColumnBatch,
    encode_batch,
    to_record_batch,
)
from allsource_lab._storage.tail import Tail
from allsource_lab._storage.wal import FRAME, fill_checksums
from allsource_lab.errors import (
    ConcurrencyError,
    CorruptionError,
    InvalidEvent,
    NotFound,
    SchemaViolation,
    StorageError,
)
from allsource_lab.eventframe import EventFrame, Query, events_from_table
from allsource_lab.events import EVENT_SCHEMA, Event, IdGenerator
from allsource_lab.integrity import IntegrityReport, check_tables
from allsource_lab.pipelines import Pipelines
from allsource_lab.projections.base import EventBatch, EventList, Projection
from allsource_lab.projections.runner import Projections
from allsource_lab.settings import Settings

__all__ = ["BatchResult", "EventStore", "open"]

if TYPE_CHECKING:
    from allsource_lab.replay import ReplayJob
    from allsource_lab.subscriptions import Subscription

_EMPTY_OBJECT = b"{}"
_NO_POSITIONS = np.empty(0, np.int64)
_INT64_MAX = int(np.iinfo(np.int64).max)
_dumps = orjson.dumps
_crc = _crc32c.crc32c
_pack_framed = FRAMED_SINGLE_HEADER.pack
_SINGLE_FIXED = SINGLE_HEADER.size  # a single record's body before its four texts
_pack_frame = FRAME.pack
_time_ns = time.time_ns
_ID_LOW_MASK = IdGenerator.LOW_MASK
# Unwritten WAL buffers the flusher may fall behind by before appends write themselves.
_WAL_BACKLOG = 4

_open_stores: weakref.WeakSet[EventStore] = weakref.WeakSet()


class _DiskFull(StorageError):
    """No room on the disk (ENOSPC, EDQUOT): writes resume once there is."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(
            f"the disk is full ({cause}); the store takes no writes until there is room. "
            "Acknowledged events are safe: those not yet on disk are kept in memory and "
            "written first once space is freed (the next write or store.flush() tries again)"
        )


# SQL that may drop, create or replace views (the `events` view among them).
_DDL = re.compile(r"\b(drop|create|alter|replace|attach|detach|unregister)\b", re.IGNORECASE)


def _disk_full(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def _max_int(column: pa.Array | pa.ChunkedArray) -> int:
    """The largest value of an integer or timestamp column, as an int."""
    return int(pc.max(column.cast(pa.int64())).as_py())


@atexit.register
def _flush_open_stores() -> None:
    # A kernel that exits without close() still gets its acknowledged events onto disk.
    for store in list(_open_stores):
        with contextlib.suppress(Exception):
            store.flush()
        with contextlib.suppress(Exception):
            store._close_sql()  # DuckDB complains at exit about connections left open


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What ``append_batch`` wrote: a contiguous sequence range.

    ``count`` rows were written; ``duplicates`` rows were exact retries of events already
    stored (same ``event_id`` and content) and were not written again. When nothing new
    was written, ``first_sequence``/``last_sequence`` span the stored duplicates (or are
    0 when every row was rejected). With ``on_invalid="skip"`` or ``"return"``,
    ``rejected`` rows failed their schema and were left out; ``"return"`` also gives them
    back in ``rejected_rows``: a DataFrame (row, event_type, entity_id, payload, path,
    reason), ``row`` counting from 0 in the data passed.
    """

    first_sequence: int
    last_sequence: int
    count: int
    duplicates: int = 0
    rejected: int = 0
    rejected_rows: Any = None


class EventStore:
    """An append-only event store in a folder (durable) or in memory (scratch).

    Open one with :func:`allsource_lab.open`.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, settings: Settings, *, read_only: bool = False
    ) -> None:
        self.settings = settings
        self.read_only = read_only
        self._lock = threading.Lock()  # in-memory state and the WAL buffer
        self._io_lock = threading.Lock()  # WAL file writes and fsyncs; taken before _lock
        self._closed = True  # until fully open, so __del__ of a failed open does nothing
        self._failed: BaseException | None = None
        self._refuse = True  # closed, failed or read-only: one flag for the hot path
        self._storage: Storage = (
            FolderStorage(Path(path), settings, read_only=read_only)
            if path is not None
            else MemoryStorage(settings)
        )
        self.path = self._storage.path
        try:
            self._open(self._storage.load(), settings)
        except BaseException:
            self._storage.close()
            raise
        self._stop = threading.Event()
        self._wake = threading.Event()  # a WAL buffer is full: the flusher writes it
        self._flusher: threading.Thread | None = None
        if self._storage.durable and not read_only and settings.fsync != "always":
            self._flusher = threading.Thread(
                target=self._flush_loop, name="allsource-wal-flusher", daemon=True
            )
            self._flusher.start()
        self.projections = Projections(self)
        self.pipelines = Pipelines(self)
        self.analytics = Analytics(self)
        self._closed = False
        self._refuse = read_only
        _open_stores.add(self)

    # -- open ----------------------------------------------------------------------------

    def _open(self, loaded: Loaded, settings: Settings) -> None:
        """In-memory state from what the storage loaded."""
        self._partitions = loaded.manifest.partitions
        self.store_id = loaded.manifest.store_id
        self.recovery_problems = loaded.problems
        # Each segment as a one-batch table: the reader's pieces share its buffers.
        self._segments: list[pa.Table] = []
        # Last sequence of each segment, so catch-up work can skip whole segments.
        self._segment_last: list[int] = []
        self._tail = Tail(loaded.tail)
        self._ids = IdGenerator()
        self._id_index: IdIndex | None = None
        self._types: dict[str, bytes] = {}
        self._entities: dict[str, tuple[int, bytes, int]] = {}  # id -> (number, utf8, partition)
        self._keys = KeyTable()
        self._versions = array("q")
        self._entity_partition = array("h")
        self._log = self._tail.log  # the append path adds its records here
        # Bytes ever put in the WAL stream = _stream_base + the tail's size (see _stream_end).
        self._stream_base = 0
        self._synced = 0  # of those, bytes written and fsynced
        # WAL bytes a full disk refused, in order: written before anything newer, and
        # until they are, the store takes no writes (see _retry_full_disk).
        self._wal_retry = bytearray()
        self._disk_full: OSError | None = None
        self._reader = Reader(self._keys)
        self._hot = HotStates(settings.state_cache_entities)
        # DuckDB connections by thread (made on first use; a connection serves one query
        # at a time), each with the key of the `events` it has registered.
        self._sql: dict[int, tuple[Any, tuple[int, int, int]]] = {}
        self._sql_generation = 0  # bumped when `events` must be registered again
        self._snapshots = Snapshots()
        # Called with the last stored sequence after every append/append_batch, outside
        # the store's locks (live projections, subscriptions).
        self._listeners: list[Callable[[int], None]] = []
        self._recent: Event | None = None  # the last single append, while followed
        self._replays: list[ReplayJob] = []
        # Open subscriptions by name (allsource_lab.subscriptions manages them).
        self._subscriptions: dict[str, Subscription] = {}
        self._rebuild(loaded.segments, loaded.manifest.sealed_through)
        self._load_snapshots()
        self._open_registry(settings)
        # Facts the append path reads on every call, computed once.
        self._always = self._storage.durable and settings.fsync == "always"
        # Payload texts up to this long need no size or depth check (see append).
        self._depth_scan_bytes = min(2 * settings.max_json_depth, settings.max_payload_bytes)
        self._wal_limit = settings.wal_buffer_bytes
        self._busy_at = self._wal_limit  # log length past which the WAL buffer is full
        self._checkpoint_every = settings.checkpoint_every_events
        self._tail_first = self._next_seq - sum(c.num_rows for c in self._tail.chunks)
        self._seal_at = self._tail_first + self._checkpoint_every - 1  # a sequence

    def _rebuild(self, segments: list[pa.Table], sealed_through: int) -> None:
        """Entity numbers, versions, the index, next sequence and clock from what loaded."""
        last_seq = 0
        last_rec = 0
        reader = self._reader
        tail_rows = sum(c.num_rows for c in self._tail.chunks)
        reader.index.expect(sum(t.num_rows for t in segments) + tail_rows)
        for segment in segments:
            if not segment.num_rows:
                continue
            batch = one_batch(segment)
            self._segments.append(pa.Table.from_batches([batch]))
            nos = self._absorb(batch)
            reader.add_segment(batch, nos)
            seq = batch.column("sequence")
            self._segment_last.append(int(pc.max(seq).as_py()))
            last_seq = max(last_seq, self._segment_last[-1])
            last_rec = max(last_rec, _max_int(batch.column("recorded_at")))
        reader.finish_open()
        for chunk in self._tail.chunks:
            self._absorb(chunk)
            last_seq = max(last_seq, int(pc.max(chunk.column("sequence")).as_py()))
            last_rec = max(last_rec, _max_int(chunk.column("recorded_at")))
        reader.sync(self._tail)
        self._next_seq = max(last_seq, sealed_through) + 1
        self._last_rec = last_rec

    def _open_registry(self, settings: Settings) -> None:
        """The schema registry from its log; damage is corruption unless salvaging."""
        from allsource_lab.schemas.registry import SchemaRegistry

        self.schemas = SchemaRegistry(self._write_registry)
        bodies, problems = self._storage.load_registry()
        if problems and settings.recovery != "salvage":
            where = re.search(r"^(.*?): .* at byte (\d+)$", problems[0])
            raise CorruptionError(
                f"the schema registry is damaged ({problems[0]}); open with "
                'recovery="salvage" to skip damaged records (their schemas are lost)',
                path=None if where is None else where.group(1),
                offset=None if where is None else int(where.group(2)),
            )
        self.recovery_problems.extend(problems)
        self.recovery_problems.extend(self.schemas.load(bodies))
        self.schemas.on_change = self._schemas_changed
        self._schemas_active = bool(self.schemas.subjects())
        self._upcasting = False

    def _write_registry(self, bodies: list[bytes]) -> None:
        if self._refuse:
            self._refuse_write()
        with self._io_lock:
            try:
                self._storage.write_registry(bodies)
            except OSError as exc:
                raise StorageError(
                    f"the schema registry could not be written ({exc}); nothing changed"
                ) from exc

    def _schemas_changed(self) -> None:
        """Schemas or upcasters changed: what is validated and folded changes with them."""
        with self._lock:
            self._schemas_active = bool(self.schemas.subjects())
            self._upcasting = bool(self.schemas.upcasters)
            self._hot.items.clear()  # folded with the old upcasters

    def _load_snapshots(self) -> None:
        """Snapshots from storage; ones that do not fit the stored events are dropped."""
        bodies, problems = self._storage.load_snapshots()
        self.recovery_problems.extend(problems)
        for body in bodies:
            try:
                snap = decode_snapshot(body)
            except ValueError as exc:
                self.recovery_problems.append(f"a snapshot record is damaged ({exc}); ignored")
                continue
            no = self._keys.lookup(snap.entity_id.encode("utf-8", "surrogatepass"))
            if no < 0 or self._versions[no] < snap.version:
                self.recovery_problems.append(
                    f"snapshot of {snap.entity_id!r} at version {snap.version} is ahead of "
                    "the stored events (they were not durable); ignored"
                )
                continue
            self._snapshots.add(no, snap, save=False)

    def _absorb(self, batch: pa.RecordBatch) -> np.ndarray:
        """Intern a loaded batch's entities and raise their versions; their numbers."""
        nos = self._intern_entities(batch.column("entity_id"))
        versions = np.frombuffer(self._versions, np.int64)
        version_kernels.raise_to(nos, batch.column("version").to_numpy(), versions)
        del versions
        return nos

    def _intern_entities(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        data, offsets = string_buffers(column)
        before = len(self._keys)
        numbers = self._keys.intern_many(data, offsets)
        added = len(self._keys) - before
        if added:
            hashes = self._keys.hashes()[before:]
            self._versions.frombytes(bytes(8 * added))
            self._entity_partition.extend(partitions_of(hashes, self._partitions).tolist())
        return numbers

    # -- the single-event write path -----------------------------------------------------

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
        tb = self._types.get(event_type) if type(event_type) is str else None
        if tb is None:
            tb = self._new_type(event_type)
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
                    len(pb) > self._depth_scan_bytes
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
        sv = self._validate_one(event_type, pb) if self._schemas_active else -1
        if expected_version is not None and (
            type(expected_version) is not int or expected_version < 0
        ):
            raise InvalidEvent(
                f"expected_version must be None or an int >= 0, not {expected_version!r}",
                field="expected_version",
            )
        lock = self._lock
        lock.acquire()  # (acquire/release: half the cost of `with`, measured)
        try:
            if self._refuse:
                self._refuse_write()
            ent = self._entities.get(entity_id) if type(entity_id) is str else None
            if ent is None:
                ent = self._new_entity(entity_id)
            no, eb, part = ent
            if eid is not None:
                existing = self._find_retry(eid, event_type, entity_id, pb, mb, ts)
                if existing is not None:
                    return existing
            version = self._versions[no]
            if expected_version is not None and expected_version != version:
                raise ConcurrencyError(entity_id, expected_version, version)
            version += 1
            rec = _time_ns() // 1000
            if rec <= self._last_rec:
                rec = self._last_rec + 1  # recorded_at never goes backwards
            self._last_rec = rec
            if ts is None:
                ts = rec
            if eid is None:
                # IdGenerator.next's same-millisecond step, written out here.
                ms = rec // 1000
                ids = self._ids
                value = ids.value + 1
                if ms <= ids.ms and value & _ID_LOW_MASK:
                    ids.value = value
                    eid = value.to_bytes(16, "big")
                else:
                    eid = ids.next(ms)
            seq = self._next_seq
            # One framed record: frame and record headers packed together, the CRC left
            # for the WAL writer to fill in (see _write_log), one join, one append.
            lt = len(tb)
            le = len(eb)
            lm = len(mb)
            lp = len(pb)
            log = self._log  # the WAL writer and the tail's decoder both read it
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
            self._versions[no] = version
            self._next_seq = seq + 1
            # Work for after the lock: the stream end to fsync through, or -1 for a
            # full WAL buffer or tail (see _after_append), or nothing.
            if self._always:
                after = self._stream_end()
            elif len(log) > self._busy_at or seq >= self._seal_at:
                after = -1
            else:
                after = 0
        finally:
            lock.release()
        if after:
            self._after_append(seq, after)
        event = Event(
            seq, event_type, entity_id, version, ts, rec, eid, pb, mb, part, None if sv < 0 else sv
        )
        if self._listeners:
            self._recent = event
            self._notify(seq)
        return event

    def _after_append(self, seq: int, after: int) -> None:
        """What a single append leaves for after the store lock: fsync through the stream
        position ``after`` (fsync "always"), else write out a full WAL buffer; and seal a
        full tail."""
        if after > 0:
            self._write_wal(sync=True, target=after)
        elif len(self._log) > self._busy_at:
            self._wal_buffer_full()
        if seq >= self._seal_at:
            self.checkpoint()

    def _wal_buffer_full(self) -> None:
        """Hand a full WAL buffer to the flusher thread, whose write runs beside the
        appending thread (the GIL is released while it writes); write it here if there is
        no flusher, or it has fallen behind by several buffers."""
        with self._lock:
            unwritten = self._tail.unwritten
            if unwritten <= self._wal_limit:
                return  # taken meanwhile
            wake = self._flusher is not None and unwritten < _WAL_BACKLOG * self._wal_limit
            if wake:
                self._busy_at = len(self._log) + self._wal_limit  # one wake per buffer
        if wake:
            self._wake.set()
        else:
            self._write_wal(sync=False)

    def _validate_one(self, event_type: str, pb: bytes) -> int:
        """The schema version ``pb`` is valid under (-1: no schema); SchemaViolation if not."""
        found = self.schemas.validator(event_type) if type(event_type) is str else None
        if found is None:
            return -1
        version, validator = found
        data = np.frombuffer(pb, np.uint8)
        if len(validator.invalid_rows(data, np.array([0, len(pb)], np.int64))):
            raise self._violation(event_type, version, validator, pb, None)
        return version

    @staticmethod
    def _violation(
        event_type: str, version: int, validator: Any, text: bytes, row: int | None
    ) -> SchemaViolation:
        problems = validator.problems(text)
        path, reason = problems[0] if problems else ("#", "does not match the schema")
        return SchemaViolation(
            f"payload of {event_type!r} fails schema version {version}: {reason}",
            row=row,
            path=path,
            reason=reason,
        )

    def _new_type(self, event_type: object) -> bytes:
        tb = inputs.check_event_type(event_type, self.settings)
        self._types[event_type] = tb  # type: ignore[index]
        return tb

    def _new_entity(self, entity_id: object) -> tuple[int, bytes, int]:
        eb = inputs.check_entity_id(entity_id, self.settings)
        no, key_hash = self._keys.intern_hashed(eb)
        if no == len(self._versions):
            self._versions.append(0)
            self._entity_partition.append(key_hash % self._partitions)
        ent = (no, eb, self._entity_partition[no])
        self._entities[entity_id] = ent  # type: ignore[index]
        return ent

    def _refuse_write(self, io_held: bool = False) -> None:
        """Raise the reason writes are refused, under _lock; returns only if a full disk
        has room again (``io_held``: the caller holds _io_lock too)."""
        if self._disk_full is not None and self._failed is None and not self._closed:
            if self._retry_full_disk(io_held):
                return
            if self._failed is None:  # else the retry met a worse error, reported below
                raise _DiskFull(self._disk_full)
        if self._failed is not None:
            raise StorageError(
                f"the store stopped accepting writes after a disk error ({self._failed}); "
                "acknowledged events are safe — close and reopen the store"
            )
        if self.read_only:
            raise StorageError("the store was opened with read_only=True; open it for writing")
        raise StorageError("the store is closed; open it again with asl.open(...)")

    def _retry_full_disk(self, io_held: bool) -> bool:
        """Write the bytes a full disk refused; True if they are written (under _lock)."""
        if not io_held and not self._io_lock.acquire(blocking=False):
            return False  # a writer is busy: the next call tries again
        try:
            self._write_log(locked=True)
        except _DiskFull:
            return False
        except OSError as exc:
            self._failed = exc
            return False
        finally:
            if not io_held:
                self._io_lock.release()
        return True

    def _write_log(
        self, singles: bytearray | None = None, *pieces: Any, locked: bool = False
    ) -> None:
        """Write WAL bytes after any a full disk refused earlier (under _io_lock, and
        under _lock too if ``locked``): ``singles``, records taken from the tail's log,
        whose checksums are filled in first, then ``pieces`` as they are.

        Raises:
            _DiskFull: no room; the bytes are kept and nothing more is accepted until a
                later write (or flush) gets them out.
            OSError: any other failure (the caller stops the store).
        """
        if singles:
            if self._storage.durable:
                fill_checksums(singles)
            pieces = (singles, *pieces)
        if self._wal_retry:
            pieces = (self._wal_retry, *pieces)
        try:
            self._storage.write_log(*pieces)
        except OSError as exc:
            if not _disk_full(exc):
                raise
            kept = bytearray()
            for piece in pieces:
                kept += memoryview(piece).cast("B")
            with contextlib.nullcontext() if locked else self._lock:
                self._wal_retry = kept
                self._disk_full = exc
                self._refuse = True
            raise _DiskFull(exc) from exc
        if self._wal_retry:
            with contextlib.nullcontext() if locked else self._lock:
                self._wal_retry = bytearray()
                self._disk_full = None
                self._refuse = self._closed or self.read_only or self._failed is not None

    # -- batches -------------------------------------------------------------------------

    def append_batch(
        self,
        data: Any,
        expected_versions: Mapping[str, int] | None = None,
        on_invalid: str = "raise",
    ) -> BatchResult:
        """Append many events atomically: all of them are written, or none.

        ``data`` is a pandas DataFrame, a pyarrow Table/RecordBatch or an iterable of dicts
        with columns ``event_type``, ``entity_id``, ``payload`` (dict or JSON text) and
        optionally ``timestamp``, ``metadata``, ``event_id``. ``expected_versions`` maps
        entity ids to the version each must be at before the batch.

        Payloads of event types with a registered schema are validated first;
        ``on_invalid`` says what a failure does: ``"raise"`` (default) a SchemaViolation
        naming the row, and nothing is written; ``"skip"`` writes the valid rows;
        ``"return"`` writes them too and returns the rejected ones with reasons
        (``BatchResult.rejected_rows``).

        Raises:
            InvalidEvent: naming the first bad row and field; nothing was written.
            ConcurrencyError: an expected version did not match; nothing was written.
            SchemaViolation: a payload fails its schema (``on_invalid="raise"``).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> res = store.append_batch([
        ...     {"event_type": "a", "entity_id": "x", "payload": {"n": 1}},
        ...     {"event_type": "b", "entity_id": "x", "payload": '{"n": 2}'},
        ... ])
        >>> (res.first_sequence, res.last_sequence, res.count)
        (1, 2, 2)
        """
        if on_invalid not in ("raise", "skip", "return"):
            raise InvalidEvent(
                f"on_invalid must be 'raise', 'skip' or 'return', not {on_invalid!r}",
                field="on_invalid",
            )
        batch = inputs.normalize_batch(data, self.settings)
        rejected: Any = None
        n_rejected = 0
        if self._schemas_active:
            checked, rejected, n_rejected = self._validate_batch(batch, on_invalid)
            if checked is None:
                return BatchResult(0, 0, 0, 0, n_rejected, rejected)
            batch = checked
        if expected_versions is not None and not isinstance(expected_versions, Mapping):
            raise InvalidEvent(
                "expected_versions must be a mapping of entity_id to version",
                field="expected_versions",
            )
        # The io lock first (the order every writer takes them): the record is written
        # straight from its column buffers, after whatever single appends are buffered.
        with self._io_lock:
            with self._lock:
                if self._refuse:
                    self._refuse_write(io_held=True)
                if batch.event_id_given is not None:
                    kept, dup_seqs = retries.split_batch(
                        batch,
                        lambda ids: self._index_ids().lookup_many(ids),
                        lambda seq: self._event_at(seq, locked=True),
                    )
                    if kept is None:
                        return BatchResult(
                            int(dup_seqs.min()), int(dup_seqs.max()), 0, len(dup_seqs)
                        )
                    duplicates = len(dup_seqs)
                    batch = kept
                else:
                    duplicates = 0
                if expected_versions:
                    self._check_expected(expected_versions)
                n = batch.n
                if n == 0:
                    raise InvalidEvent("the batch is empty; nothing to append")
                nos = self._intern_entities(batch.entity_id)
                versions = np.frombuffer(self._versions, np.int64)
                assigned = version_kernels.assign(nos, versions)
                try:
                    rec = max(_time_ns() // 1000, self._last_rec + 1)
                    first = self._next_seq
                    cols = self._batch_columns(batch, nos, assigned, first, rec)
                    record_batch = to_record_batch(cols)
                    pieces: list[Any] = []
                    if self._storage.durable:
                        pieces = encode_batch(first, rec, cols)
                        crc = 0
                        for piece in pieces:
                            crc = _crc(piece, crc)
                        length = sum(memoryview(p).nbytes for p in pieces)
                        pieces.insert(0, _pack_frame(length, crc))
                except BaseException:
                    version_kernels.undo(nos, assigned, versions)
                    raise
                finally:
                    del versions
                buffered = self._take_unwritten()
                self._stream_base += sum(memoryview(p).nbytes for p in pieces)
                upto = self._stream_end()
                self._tail.add_batch(record_batch)
                self._last_rec = rec
                self._next_seq = first + n
                full = first + n - 1 >= self._seal_at
            # Still under the io lock: nothing can be written between the buffered single
            # appends and this record, so the file stays in sequence order.
            if self._storage.durable:
                try:
                    self._write_log(buffered, *pieces)
                    if self._always:
                        self._storage.sync_log()
                        self._synced = upto
                except OSError as exc:
                    self._fail(exc)
        if full:
            self.checkpoint()
        if self._listeners:
            self._notify(first + n - 1)
        return BatchResult(first, first + n - 1, n, duplicates, n_rejected, rejected)

    def _validate_batch(
        self, batch: inputs.BatchInput, on_invalid: str
    ) -> tuple[inputs.BatchInput | None, Any, int]:
        """(rows to write with their schema versions, rejected rows or None, how many)."""
        types = batch.event_type
        names = pc.unique(types).to_pylist()
        found = {t: self.schemas.validator(t) for t in names}
        if not any(found.values()):
            return batch, None, 0
        versions = np.full(batch.n, -1, np.int32)
        texts = None
        bad: list[np.ndarray] = []
        for name, hit in found.items():
            if hit is None:
                continue
            version, validator = hit
            if len(names) == 1:
                rows = np.arange(batch.n)
                data, offsets = batch.payload
            else:
                rows = np.flatnonzero(pc.equal(types, name).to_numpy(zero_copy_only=False))
                if texts is None:
                    texts = string_array_from_buffers(*batch.payload)
                data, offsets = string_buffers(texts.take(pa.array(rows)))
            versions[rows] = version
            invalid = validator.invalid_rows(data, offsets)
            if len(invalid):
                bad.append(rows[invalid])
        batch.schema_version = versions
        if not bad:
            return batch, None, 0
        rejected = np.sort(np.concatenate(bad))
        data, offsets = batch.payload

        def text(row: int) -> bytes:
            return data[offsets[row] : offsets[row + 1]].tobytes()

        if on_invalid == "raise":
            row = int(rejected[0])
            name = types[row].as_py()
            version, validator = found[name]  # type: ignore[misc]
            raise self._violation(name, version, validator, text(row), row)
        report = None
        if on_invalid == "return":
            import pandas as pd

            records = []
            for row in rejected.tolist():
                name = types[row].as_py()
                _, validator = found[name]  # type: ignore[misc]
                problems = validator.problems(text(row))
                path, reason = problems[0] if problems else ("#", "does not match the schema")
                records.append(
                    (row, name, batch.entity_id[row].as_py(), text(row).decode(), path, reason)
                )
            columns = ["row", "event_type", "entity_id", "payload", "path", "reason"]
            report = pd.DataFrame.from_records(records, columns=columns)
        keep = np.setdiff1d(np.arange(batch.n), rejected)
        if not len(keep):
            return None, report, len(rejected)
        return inputs.take_rows(batch, keep), report, len(rejected)

    def _batch_columns(
        self, batch: inputs.BatchInput, nos: np.ndarray, assigned: np.ndarray, first: int, rec: int
    ) -> ColumnBatch:
        n = batch.n
        if batch.timestamp is None:
            ts = np.full(n, rec, np.int64)
        else:
            ts = np.where(batch.timestamp == inputs.MISSING_TIME, rec, batch.timestamp)
        ids = self._ids.next_many(rec // 1000, n)
        if batch.event_id is not None and batch.event_id_given is not None:
            given = np.repeat(batch.event_id_given, 16)
            ids = np.where(given, batch.event_id, ids)
        partitions = np.frombuffer(self._entity_partition, np.int16)[nos].copy()
        if batch.metadata is None:
            meta_off = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
            meta_data = np.frombuffer(_EMPTY_OBJECT * n, np.uint8)
        else:
            meta_data, meta_off = batch.metadata
        t_data, t_off = string_buffers(batch.event_type)
        e_data, e_off = string_buffers(batch.entity_id)
        p_data, p_off = batch.payload
        return ColumnBatch(
            sequence=np.arange(first, first + n, dtype=np.int64),
            version=assigned,
            timestamp=ts.astype(np.int64, copy=False),
            recorded=np.full(n, rec, np.int64),
            event_id=ids,
            schema_version=(
                np.full(n, -1, np.int32) if batch.schema_version is None else batch.schema_version
            ),
            partition=partitions,
            event_type=(t_off, t_data),
            entity_id=(e_off, e_data),
            metadata=(meta_off, meta_data),
            payload=(p_off, p_data),
        )

    def _check_expected(self, expected: Mapping[str, int]) -> None:
        for entity_id, want in expected.items():
            if type(want) is not int or want < 0:
                raise InvalidEvent(
                    f"expected version for {entity_id!r} must be an int >= 0, not {want!r}",
                    field="expected_versions",
                )
            eb = inputs.check_entity_id(entity_id, self.settings)
            no = self._keys.lookup(eb)
            actual = self._versions[no] if no >= 0 else 0
            if actual != want:
                raise ConcurrencyError(entity_id, want, actual)

    # -- idempotent retries ----------------------------------------------------------------

    def _index_ids(self) -> IdIndex:
        index = self._id_index
        if index is None:
            index = self._id_index = IdIndex()
        if index.through < self._next_seq - 1:
            self._tail.freeze()
            candidates = [
                t
                for t, last in zip(self._segments, self._segment_last, strict=True)
                if last > index.through
            ]
            candidates += [
                pa.Table.from_batches([c])
                for c in self._tail.chunks
                if c.num_rows and c.column(0)[-1].as_py() > index.through
            ]
            for table in candidates:
                seq = table.column("sequence")
                part = table.filter(pc.greater(seq, index.through)).sort_by("sequence")
                ids = part.column("event_id").combine_chunks().storage
                raw = np.frombuffer(ids.buffers()[1], np.uint8)[
                    ids.offset * 16 : (ids.offset + len(ids)) * 16
                ]
                index.extend(raw, part.column("sequence").to_numpy())
        return index

    def _find_retry(
        self, eid: bytes, event_type: str, entity_id: str, pb: bytes, mb: bytes, ts: int | None
    ) -> Event | None:
        seq = self._index_ids().lookup(eid)
        if seq < 0:
            return None
        stored = self._event_at(seq, locked=True)
        retries.check_same(stored, event_type, entity_id, pb, mb, ts)
        return stored

    # -- durability ----------------------------------------------------------------------

    def _stream_end(self) -> int:
        """Bytes ever put in the WAL stream (single records and batches), under _lock."""
        return self._stream_base + self._tail.size

    def _take_unwritten(self) -> bytearray:
        """The single records no WAL write has taken yet, under _lock: the tail's log
        buffer itself, which the append path leaves for a new one."""
        data = self._tail.take_unwritten()
        self._log = self._tail.log
        self._busy_at = self._wal_limit
        return data

    def _new_tail(self, first: int) -> None:
        """An empty tail whose first event will have sequence ``first``, under _lock."""
        self._tail = Tail()
        self._log = self._tail.log
        self._busy_at = self._wal_limit
        self._tail_first = first
        self._seal_at = first + self._checkpoint_every - 1

    def _write_wal(self, *, sync: bool, target: int | None = None) -> None:
        """Write the WAL buffer out (and fsync it if ``sync``): one caller writes for all.

        Group commit: a thread that finds its bytes already written and synced by another
        returns at once; otherwise it takes everything buffered so far.
        """
        with self._io_lock:
            if target is not None and sync and self._synced >= target:
                return
            with self._lock:
                data = self._take_unwritten()
                upto = self._stream_end()
                next_seq = self._next_seq
                if self._closed and not data:
                    return
            try:
                if data or self._wal_retry:
                    self._write_log(data)
                if sync:
                    self._storage.sync_log()
                    self._synced = upto
                if self._storage.log_size() > self.settings.wal_segment_bytes:
                    try:
                        self._storage.rotate_log(next_seq)
                    except OSError as exc:
                        # No room for a new WAL file: the current one goes on growing
                        # (rotation is housekeeping) and the next write tries again.
                        if not _disk_full(exc):
                            raise
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        """Stop accepting writes after a failed WAL write or fsync, and say so.

        Never retry an fsync and carry on: the kernel may have dropped the dirty pages, so
        a second fsync that succeeds proves nothing about the first write. A full disk
        (_DiskFull) is no such failure: it is raised as it is, and writes resume once
        there is room.
        """
        if isinstance(exc, _DiskFull):
            raise exc
        self._failed = exc
        self._refuse = True
        raise StorageError(
            f"the WAL could not be written or synced ({exc}); the store refuses further "
            "writes — reopen it once the disk is healthy"
        ) from exc

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
            if stop.is_set() or self._failed is not None:
                return
            if woken:
                wake.clear()
            now = time.monotonic()
            try:
                if now >= due:
                    due = now + interval
                    if (
                        self._tail.unwritten
                        or self._wal_retry
                        or (sync and self._synced < self._stream_end())
                    ):
                        self._write_wal(sync=sync)
                elif self._tail.unwritten > self._wal_limit:
                    self._write_wal(sync=False)
            except _DiskFull:
                continue  # try again next interval: the store works once there is room
            except StorageError:
                return

    def flush(self) -> None:
        """Write and fsync everything appended so far.

        >>> import allsource_lab as asl
        >>> asl.open().flush()
        """
        if self._closed or self.read_only or not self._storage.durable:
            return
        self._write_wal(sync=True, target=self._stream_end())  # nothing new: no fsync

    def checkpoint(self) -> dict[str, Any] | None:
        """Seal the tail into a Parquet segment; returns what was sealed (or None if empty).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {})
        >>> store.checkpoint()["events"]
        1
        """
        sealed = self._seal()
        if self.projections:
            self.projections.save()
        return sealed

    def _seal(self) -> dict[str, Any] | None:
        with self._io_lock, self._lock:
            if self._refuse:
                self._refuse_write(io_held=True)
            if self._next_seq == self._tail_first:
                return None
            started = time.perf_counter()
            data = self._take_unwritten()
            if data or self._wal_retry:
                try:
                    self._write_log(data, locked=True)
                except OSError as exc:
                    self._fail(exc)
            try:
                self._reader.sync(self._tail)
                table = self._tail.table()
                through = self._next_seq - 1
                ordered, order = self._storage.seal(table, through, self.settings)
            except OSError as exc:
                if _disk_full(exc):
                    raise StorageError(
                        f"checkpoint found the disk full ({exc}); nothing was sealed and "
                        "nothing acknowledged was lost (the WAL holds it). Free space; the "
                        "next checkpoint tries again"
                    ) from exc
                self._failed = exc
                self._refuse = True
                raise StorageError(
                    f"checkpoint failed ({exc}); nothing acknowledged was lost — the "
                    "WAL still holds it. Free space or fix the disk, then reopen."
                ) from exc
            batch = one_batch(ordered)
            self._segments.append(pa.Table.from_batches([batch]))
            self._segment_last.append(through)
            self._reader.seal(batch, order)
            self._synced = self._stream_base = self._stream_end()
            self._new_tail(through + 1)
            # The tail's buffers are free now, but Arrow's allocator keeps freed pages for
            # reuse; handing them back makes a sealed store's RSS its segments (1M events:
            # ~350 -> ~160 bytes per event, measured). Small tails free too little to be
            # worth the call (~1 ms).
            unsaved = self._snapshots.unsaved
            if unsaved:  # everything they fold is sealed now
                self._snapshots.unsaved = []
                with contextlib.suppress(OSError):  # derived data: the events are safe
                    self._storage.write_snapshots([encode_snapshot(x) for x in unsaved])
            if batch.num_rows >= 65_536:
                pa.default_memory_pool().release_unused()
            return {
                "events": batch.num_rows,
                "through_sequence": through,
                "seconds": time.perf_counter() - started,
            }

    def compact(self) -> dict[str, Any] | None:
        """Merge every sealed segment into one; returns what was merged (None if fewer
        than two segments). Reads answer the same before and after.

        Each checkpoint seals one segment; many small ones cost reads (an entity's events
        spread over all of them) and files. Compaction rewrites them as one segment,
        commits it in the manifest, then removes the old files. Appends and reads wait
        while it runs (~1-2 s per million events).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> for i in range(3):
        ...     _ = store.append("a", "x", {"i": i}); _ = store.checkpoint()
        >>> store.compact()["segments"], len(store.events(entity_id="x"))
        (3, 3)
        """
        started = time.perf_counter()
        with self._io_lock, self._lock:
            if self._refuse:
                self._refuse_write(io_held=True)
            if len(self._segments) < 2:
                return None
            merged = pa.concat_tables(self._segments)
            try:
                stored = self._storage.compact(merged, self.settings)
            except OSError as exc:
                raise StorageError(
                    f"compaction failed ({exc}); the store is unchanged (reopen it if this "
                    "was a disk error)"
                ) from exc
            count = len(self._segments)
            batch = one_batch(stored)
            reader = Reader(self._keys)
            reader.index.expect(batch.num_rows + self._next_seq - self._tail_first)
            reader.add_segment(batch, self._intern_entities(batch.column("entity_id")))
            reader.finish_open()
            reader.sync(self._tail)
            self._reader = reader
            self._segments = [pa.Table.from_batches([batch])]
            self._segment_last = [int(pc.max(batch.column("sequence")).as_py())]
            self._sql_generation += 1
        # The merge freed every old segment's buffers; Arrow's pool would keep the pages.
        pa.default_memory_pool().release_unused()
        return {
            "segments": count,
            "events": batch.num_rows,
            "seconds": time.perf_counter() - started,
        }

    def close(self) -> None:
        """Checkpoint, stop the flusher, release the lock. Safe to call twice."""
        if self._closed:
            return
        self._stop_followers()
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            if not self.read_only and self._failed is None and self._storage.durable:
                self.checkpoint()
                self._write_wal(sync=True)
                self._save_snapshots()
        finally:
            with self._lock:
                self._closed = True
                self._refuse = True
                self._close_sql()
            self._storage.close()
            _open_stores.discard(self)
            pa.default_memory_pool().release_unused()  # hand the store's buffers back

    # -- projections, replays, subscriptions --------------------------------------------

    def _stop_followers(self) -> None:
        """Before closing: cancel running replays, close subscriptions."""
        for job in self.replays():
            job.cancel()
        for job in self.replays():
            job.wait()
        if self._subscriptions:
            from allsource_lab.subscriptions import close_all

            close_all(self)

    def replay(
        self,
        projection: Projection,
        since: Any = None,
        until: Any = None,
        event_types: Any = None,
        batch_size: int = 10_000,
        background: bool = True,
    ) -> ReplayJob:
        """Rebuild ``projection`` from history; returns a :class:`ReplayJob` to watch.

        See :func:`allsource_lab.replay.start_replay` for the arguments and what a
        cancelled or failed replay leaves behind.
        """
        from allsource_lab.replay import start_replay

        return start_replay(self, projection, since, until, event_types, batch_size, background)

    def replays(self) -> list[ReplayJob]:
        """Replay jobs started on this store, oldest first (finished ones until removed)."""
        with self._lock:
            return list(self._replays)

    def remove_replay(self, job: ReplayJob) -> None:
        """Forget a finished replay job.

        Raises:
            ValueError: the job is still pending or running (cancel it first).
        """
        if job.status in ("pending", "running"):
            raise ValueError(f"replay {job.id} is {job.status}; cancel() and wait() it first")
        with self._lock:
            if job in self._replays:
                self._replays.remove(job)

    def subscribe(
        self,
        name: str,
        handler: Callable[[Event], Any],
        start: str | int = "beginning",
        event_types: Any = None,
        batch_size: int = 1000,
        delivery: str = "background",
        max_retries: int = 3,
        backoff: float = 0.05,
    ) -> Subscription:
        """Deliver events to ``handler`` in sequence order, at least once, durably.

        See :class:`allsource_lab.subscriptions.Subscription`.
        """
        from allsource_lab.subscriptions import Subscription

        return Subscription.start(
            self,
            name,
            handler,
            start=start,
            event_types=event_types,
            batch_size=batch_size,
            delivery=delivery,
            max_retries=max_retries,
            backoff=backoff,
        )

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Releasing the lock on garbage collection lets a notebook re-open a folder after
        # dropping its last reference without an explicit close().
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.close()

    # -- reads ---------------------------------------------------------------------------

    def events(
        self,
        entity_id: str | None = None,
        event_type: str | None = None,
        since: Any = None,
        until: Any = None,
        as_of: Any = None,
        known_at: Any = None,
        after: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> EventFrame:
        """Events matching every given filter, in sequence order (lazy).

        ``since`` is inclusive and ``until`` exclusive (event time); ``as_of`` keeps events
        whose event time is <= it, ``known_at`` those recorded by it; ``after`` is a
        sequence cursor (e.g. a previous frame's ``next_cursor``).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1}); _ = store.append("b", "y", {"n": 2})
        >>> [e.entity_id for e in store.events(event_type="b")]
        ['y']
        """
        query = Query(
            entity_id=entity_id,
            event_type=event_type,
            since=None if since is None else inputs.parse_time(since, "since"),
            until=None if until is None else inputs.parse_time(until, "until"),
            as_of=None if as_of is None else inputs.parse_time(as_of, "as_of"),
            known_at=None if known_at is None else inputs.parse_time(known_at, "known_at"),
            after=after,
            limit=limit,
            reverse=reverse,
        )
        query.check()
        return EventFrame(self, query)

    def _positions(self, query: Query) -> np.ndarray:
        """Positions answering ``query`` (EventFrame's first step)."""
        entity_id = query.entity_id
        with self._lock:
            self._reader.sync(self._tail)
            entity = None
            if entity_id is not None:
                known = self._entities.get(entity_id)
                entity = known[0] if known is not None else self._entity_or_none(entity_id)
            return self._reader.select(query, entity)

    def _rows(self, positions: np.ndarray) -> pa.Table:
        """The events at ``positions`` as Arrow (EventFrame's second step)."""
        with self._lock:
            table = self._reader.table(positions)
            return self._upcast_table(table) if self._upcasting else table

    def _upcast_table(self, table: pa.Table) -> pa.Table:
        """``table`` with payloads upcast to their subjects' newest shape (stored bytes stay)."""
        upcasters = self.schemas.upcasters
        types = table.column("event_type").to_pylist()
        versions = table.column("schema_version").to_pylist()
        texts = table.column("payload").combine_chunks().storage.to_pylist()
        changed = False
        for i, (name, version) in enumerate(zip(types, versions, strict=True)):
            if version is not None and (name, version) in upcasters:
                payload = self.schemas.upcast(name, version, orjson.loads(texts[i]))
                texts[i] = orjson.dumps(payload).decode()
                changed = True
        if not changed:
            return table
        kind = EVENT_SCHEMA.field("payload").type
        column = pa.ExtensionArray.from_storage(kind, pa.array(texts, pa.string()))
        return table.set_column(EVENT_SCHEMA.get_field_index("payload"), "payload", column)

    # -- feeding projections, replays and subscriptions ---------------------------------

    def _notify(self, last: int) -> None:
        """Tell live followers that events through sequence ``last`` are stored."""
        for listener in list(self._listeners):
            listener(last)

    def _head(self) -> int:
        """The last sequence stored (0 when empty)."""
        with self._lock:
            return self._next_seq - 1

    def _event_batch(
        self,
        after: int,
        limit: int | None = None,
        *,
        through: int | None = None,
        event_types: tuple[str, ...] | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> EventBatch:
        """The events with sequence above ``after`` (and at most ``through``), in sequence
        order, of ``event_types`` if given, with event time in ``[since, until)`` if
        given; the first ``limit`` of them."""
        with self._lock:
            recent = self._recent
            if (
                recent is not None
                and after == recent.sequence - 1 == self._next_seq - 2
                and (through is None or through >= recent.sequence)
                and since is None
                and until is None
                and not self._upcasting
            ):
                # The event a single append just stored, and nothing after it: fed as it
                # is, without bringing the read side up to date for one event.
                wanted = (event_types is None or recent.event_type in event_types) and (
                    limit is None or limit > 0
                )
                return EventList(self, [recent] if wanted else [])
            index = self._reader.index
            lo, hi, found = self._range(after, through, event_types)
            if found is None:
                positions = np.arange(lo, hi, dtype=np.int64)
            else:
                positions = np.sort(np.concatenate(found)) if found else _NO_POSITIONS
            if since is not None or until is not None:
                ts = index.ts.view[positions]
                keep = np.ones(len(positions), np.bool_)
                if since is not None:
                    keep &= ts >= since
                if until is not None:
                    keep &= ts < until
                positions = positions[keep]
            if limit is not None:
                positions = positions[:limit]
            sequences = index.seq.view[positions]
        return EventBatch(self, positions, sequences)

    def _count_between(
        self, after: int, through: int | None = None, event_types: tuple[str, ...] | None = None
    ) -> int:
        """How many events ``_event_batch`` would find (without time filters)."""
        with self._lock:
            lo, hi, found = self._range(after, through, event_types)
            return hi - lo if found is None else sum(len(f) for f in found)

    def _range(
        self, after: int, through: int | None, event_types: tuple[str, ...] | None
    ) -> tuple[int, int, list[np.ndarray] | None]:
        """Positions ``[lo, hi)`` of sequences in ``(after, through]``, and within them each
        asked type's positions (None: no type filter). Under the lock."""
        reader = self._reader
        reader.sync(self._tail)
        index = reader.index
        lo = index.after_cut(after)
        hi = max(lo, index.n if through is None else index.after_cut(through))
        if event_types is None:
            return lo, hi, None
        found = []
        for name in event_types:
            no = reader.type_number(name)
            if no >= 0:
                posting = index.types.positions(no)
                a, b = np.searchsorted(posting, (lo, hi))
                found.append(posting[a:b])
        return lo, hi, found

    def _positions_of(self, sequences: np.ndarray) -> np.ndarray:
        """The positions holding ``sequences`` (all stored)."""
        with self._lock:
            self._reader.sync(self._tail)
            return np.searchsorted(self._reader.index.seq.view, sequences).astype(np.int64)

    def _column(self, positions: np.ndarray, name: str) -> pa.ChunkedArray:
        with self._lock:
            return self._reader.table(positions, [name]).column(0)

    def _payload_list(self, positions: np.ndarray) -> list[dict[str, Any]]:
        with self._lock:
            return self._payloads(positions)

    def _position_codes(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Type and entity numbers of the events at ``positions``."""
        with self._lock:
            index = self._reader.index
            return index.typ.view[positions], index.ent.view[positions]

    def _code_names(self, kind: str, codes: np.ndarray) -> list[str]:
        """The names of type (``kind="type"``) or entity numbers."""
        with self._lock:
            keys = self._reader.type_keys if kind == "type" else self._keys
            data, offsets = keys.key_buffers()
        # One bulk take over a zero-copy Arrow view of every key (keys are valid UTF-8:
        # ids with lone surrogates are refused at append).
        view = pa.LargeStringArray.from_buffers(
            len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
        )
        names: list[str] = view.take(pa.array(codes, pa.int64())).to_pylist()
        return names

    def _payloads(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The payloads at ``positions``, decoded (and upcast when upcasters exist)."""
        reader = self._reader
        if not self._upcasting:
            return orjson.loads(reader.payload_array(positions))  # type: ignore[no-any-return]
        table = self._upcast_table(reader.table(positions))
        texts = table.column("payload").combine_chunks().storage.to_pylist()
        return [orjson.loads(t) for t in texts]

    def _tables(self) -> list[pa.Table]:
        with self._lock:
            return self._tables_locked()

    def _tables_locked(self) -> list[pa.Table]:
        return [*self._segments, self._tail.table()]

    def _event_at(self, seq: int, *, locked: bool = False) -> Event:
        if not locked:
            with self._lock:
                return self._event_at(seq, locked=True)
        reader = self._reader
        reader.sync(self._tail)
        position = reader.position_of_sequence(seq)
        if position < 0:
            raise NotFound(f"no event with sequence {seq}")
        return reader.event(position)

    def get(self, event_id: Any) -> Event:
        """The event with this id.

        Raises:
            NotFound: no such event.
        """
        eid = inputs.parse_event_id(event_id)
        with self._lock:
            seq = self._index_ids().lookup(eid)
        if seq < 0:
            raise NotFound(f"no event with event_id {event_id}")
        event = self._event_at(seq)
        if self._upcasting and event.schema_version is not None:
            with self._lock:
                position = self._reader.position_of_sequence(seq)
                table = self._upcast_table(self._reader.table(np.array([position], np.int64)))
            event = events_from_table(table)[0]
        return event

    # -- state ---------------------------------------------------------------------------

    def state(self, entity_id: str, as_of: Any = None, known_at: Any = None) -> dict[str, Any]:
        """The entity's payloads folded in version order with JSON Merge Patch (RFC 7386).

        ``as_of`` folds only events whose event time is <= it, ``known_at`` only events
        recorded by then; both take an aware datetime, ISO-8601 text or a pandas
        Timestamp. The current state is kept decoded, so asking again costs a dict copy;
        a fold at a moment starts from the newest snapshot it may trust. The result is the
        caller's to change.

        Raises:
            NotFound: the entity has no event (at that moment).
            InvalidEvent: a naive or unparseable time.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("cart.opened", "cart-1", {"items": {"tea": 1}, "note": "hi"})
        >>> _ = store.append("cart.changed", "cart-1", {"items": {"jam": 2}, "note": None})
        >>> store.state("cart-1")
        {'items': {'tea': 1, 'jam': 2}}
        """
        if as_of is None and known_at is None:
            with self._lock:
                ent = self._entities.get(entity_id) if type(entity_id) is str else None
                no = self._entity_no(entity_id) if ent is None else ent[0]
                hot = self._hot.items.get(no)
                if hot is not None and hot[0] == self._versions[no]:
                    return copy_state(hot[1], hot[2])
                return self._fold_current(no, entity_id)
        t = _INT64_MAX if as_of is None else inputs.parse_time(as_of, "as_of")
        k = None if known_at is None else inputs.parse_time(known_at, "known_at")
        with self._lock:
            return self._fold_at(self._entity_no(entity_id), entity_id, t, k)

    def _entity_or_none(self, entity_id: str) -> int:
        """The number of a stored entity, or -1."""
        try:
            return self._entity_no(entity_id)
        except NotFound:
            return -1

    def _entity_no(self, entity_id: object) -> int:
        """The number of a stored entity; NotFound when it has no event."""
        if type(entity_id) is not str:
            raise InvalidEvent(
                f"entity_id must be a string, not {type(entity_id).__name__}", field="entity_id"
            )
        no = self._keys.lookup(entity_id.encode("utf-8", "surrogatepass"))
        if no < 0 or self._versions[no] == 0:
            raise NotFound(f"no entity {entity_id!r} in the store")
        if len(self._entities) < self.settings.state_cache_entities:
            self._entities[entity_id] = (no, entity_id.encode(), self._entity_partition[no])
        return no

    def _fold_current(self, no: int, entity_id: str) -> dict[str, Any]:
        reader = self._reader
        reader.sync(self._tail)
        positions = reader.index.entities.positions(no)
        current = len(positions)
        hot = self._hot.items.get(no)
        if hot is not None and hot[0] <= current:
            start, state = hot[0], hot[1]  # catch up from the cached state, in place
        else:
            start, state = self._start(no, positions, current)
        picked = np.arange(start, current, dtype=np.int64)
        self._fold(no, entity_id, state, positions, picked, current)
        self._hot.put(no, current, state)
        hot = self._hot.items.get(no)
        return copy_state(state, hot[2] if hot is not None else False)

    def _fold_at(self, no: int, entity_id: str, as_of: int, known_at: int | None) -> dict[str, Any]:
        reader = self._reader
        reader.sync(self._tail)
        index = reader.index
        positions = index.entities.positions(no)
        picked, leading = timetravel.visible(
            positions, index.ts.view, index.known_cut(known_at), as_of
        )
        if not len(picked):
            raise NotFound(f"entity {entity_id!r} has no event at that moment")
        if leading == len(positions):
            hot = self._hot.items.get(no)
            if hot is not None and hot[0] == leading:
                return copy_state(hot[1], hot[2])
        start, state = self._start(no, positions, leading)
        picked = picked[np.searchsorted(picked, start) :]
        return self._fold(no, entity_id, state, positions, picked, leading)

    def _start(self, no: int, positions: np.ndarray, at_most: int) -> tuple[int, dict[str, Any]]:
        """(version, state) of the newest trustworthy snapshot at or below ``at_most``."""
        snaps = self._snapshots
        if self._upcasting:
            return 0, {}  # snapshots fold stored payloads; upcasters change them
        while True:
            snap = snaps.best(no, at_most)
            if snap is None:
                return 0, {}
            if not snap.checked:
                event_id = self._reader.event_id_at(int(positions[snap.version - 1]))
                if event_id != snap.event_id:
                    snaps.drop(no, snap)  # the events it folded are not the stored ones
                    continue
                snap.checked = True
            return snap.version, orjson.loads(snap.state)

    def _fold(
        self,
        no: int,
        entity_id: str,
        state: dict[str, Any],
        positions: np.ndarray,
        picked: np.ndarray,
        leading: int,
    ) -> dict[str, Any]:
        """Merge the payloads of versions ``picked + 1`` into ``state``; snapshot as it goes.

        ``leading``: versions 1..leading are all among those folded so far or now, so a
        state reached at a version up to it is the whole truth there and may be snapshotted.
        """
        if not len(picked):
            return state
        patches = self._payloads(positions[picked])
        every = self.settings.snapshot_every_versions
        first = int(picked[0])
        if every and (first // every + 1) * every <= min(leading, int(picked[-1]) + 1):
            for i, patch in zip(picked.tolist(), patches, strict=True):
                merge_patch(state, patch)
                version = i + 1
                if version % every == 0 and version <= leading:
                    self._record_snapshot(no, entity_id, version, positions, state)
        else:
            for patch in patches:
                merge_patch(state, patch)
        return state

    def _record_snapshot(
        self, no: int, entity_id: str, version: int, positions: np.ndarray, state: dict[str, Any]
    ) -> bool:
        if self._upcasting:
            return False
        event_id = self._reader.event_id_at(int(positions[version - 1]))
        snap = Snapshot(entity_id, version, event_id, orjson.dumps(state), checked=True)
        # A read-only or in-memory store keeps its snapshots for this session only.
        return self._snapshots.add(no, snap, save=self._storage.durable and not self.read_only)

    def snapshot(self, entity_id: str) -> int:
        """Record the entity's current state durably; returns the version it is at.

        Later folds (``state(..., as_of=...)``, ``states``) start from the newest snapshot
        at or before the moment asked, so long histories need not be folded from
        version 1. Automatic snapshots are also taken every ``snapshot_every_versions``.

        Raises:
            NotFound: the entity has no event.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1})
        >>> store.snapshot("x")
        1
        """
        with self._lock:
            no = self._entity_no(entity_id)
            version = self._versions[no]
            hot = self._hot.items.get(no)
            state = hot[1] if hot is not None and hot[0] == version else None
            if state is None:
                state = self._fold_at(no, entity_id, _INT64_MAX, None)
            positions = self._reader.index.entities.positions(no)
            self._record_snapshot(no, entity_id, version, positions, state)
        self._save_snapshots()
        return version

    def _save_snapshots(self) -> None:
        """Write unsaved snapshots, after syncing the WAL that holds what they fold."""
        if not self._snapshots.unsaved:
            return
        if self.read_only or not self._storage.durable or self._closed:
            self._snapshots.unsaved.clear()
            return
        self.flush()
        with self._io_lock:
            with self._lock:
                unsaved = self._snapshots.unsaved
                self._snapshots.unsaved = []
            try:
                self._storage.write_snapshots([encode_snapshot(s) for s in unsaved])
            except OSError as exc:
                raise StorageError(
                    f"snapshots could not be written ({exc}); the events are safe, and "
                    "states are folded from them without snapshots"
                ) from exc

    def states(self, event_type: str | None = None, as_of: Any = None, known_at: Any = None) -> Any:
        """Every entity's state at a moment, as a DataFrame, computed in bulk.

        One row per entity with a visible event (of ``event_type``, when given; the state
        folds all of the entity's visible events): ``entity_id``, ``version`` (the last
        visible one), ``timestamp`` (its event time) and ``state`` (a dict), sorted by
        entity id.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1}); _ = store.append("b", "y", {"n": 2})
        >>> store.states()[["entity_id", "version", "state"]].values.tolist()
        [['x', 1, {'n': 1}], ['y', 1, {'n': 2}]]
        """
        import pandas as pd

        t = _INT64_MAX if as_of is None else inputs.parse_time(as_of, "as_of")
        k = None if known_at is None else inputs.parse_time(known_at, "known_at")
        if event_type is not None and not isinstance(event_type, str):
            raise InvalidEvent("event_type must be a string", field="event_type")
        with self._lock:
            reader = self._reader
            reader.sync(self._tail)
            type_no = -1 if event_type is None else reader.type_number(event_type)
            if event_type is not None and type_no < 0:
                entities = np.empty(0, np.int64)
                version = when = entities
                states: list[dict[str, Any]] = []
            else:
                entities, version, when, states = self._bulk_fold(t, k, type_no)
            ids = [self._keys.key(no).decode("utf-8", "surrogatepass") for no in entities.tolist()]
        frame = pd.DataFrame(
            {
                "entity_id": pd.Series(ids, dtype=object),
                "version": version.astype(np.int64),
                "timestamp": pd.to_datetime(when, unit="us", utc=True),
                "state": pd.Series(states, dtype=object),
            }
        )
        return frame.sort_values("entity_id", kind="stable").reset_index(drop=True)

    def _bulk_fold(
        self, as_of: int, known_at: int | None, type_no: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        reader = self._reader
        index = reader.index
        postings = index.entities
        if postings.base_end < postings.n:
            postings.build(index.ent.view, len(self._keys))
        n_ent = len(self._keys)
        for no, items in list(self._snapshots.by_entity.items()):
            for snap in [s for s in items if not s.checked]:
                positions = postings.positions(no)
                if reader.event_id_at(int(positions[snap.version - 1])) == snap.event_id:
                    snap.checked = True
                else:
                    self._snapshots.drop(no, snap)
        counts = np.zeros(n_ent + 1, np.int64)
        versions: list[int] = []
        usable = {} if self._upcasting else self._snapshots.by_entity
        for no in sorted(usable):
            items = usable[no]
            counts[no + 1] = len(items)
            versions.extend(s.version for s in items)
        entities, version, when, snap_at, fold_starts, fold = timetravel.plan(
            postings.starts,
            postings.rows,
            index.ts.view,
            index.typ.view,
            index.known_cut(known_at),
            as_of,
            type_no,
            np.cumsum(counts),
            np.asarray(versions, np.int64),
        )
        patches = self._payloads(fold)
        states = []
        bounds = fold_starts.tolist()
        by_entity = self._snapshots.by_entity
        for i, (no, s) in enumerate(zip(entities.tolist(), snap_at.tolist(), strict=True)):
            if s:
                start = next(x for x in by_entity[no] if x.version == s)
                state = orjson.loads(start.state)
            else:
                state = {}
            for patch in patches[bounds[i] : bounds[i + 1]]:
                merge_patch(state, patch)
            states.append(state)
        return entities, version, when, states

    # -- SQL -----------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> Any:
        """A DuckDB relation for ``query`` over the view ``events`` (every event, §1 columns).

        The view covers sealed segments and the unsealed tail, so an event appended a line
        earlier is visible. ``payload`` and ``metadata`` are DuckDB JSON
        (``payload->>'amount'``); ``params`` (a list for ``?``/``$1``, a dict for
        ``$name``) are bound by DuckDB, never formatted into the text. The connection
        belongs to the store (``store.sql_connection()``); to query the sealed Parquet
        files without the store, see ``segment_files()``.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("order.placed", "o-1", {"amount": 42.5})
        >>> store.sql("select payload->>'amount' from events where entity_id = $id",
        ...           {"id": "o-1"}).fetchall()
        [('42.5',)]
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be SQL text, not {type(query).__name__}")
        con = self.sql_connection()
        if _DDL.search(query):
            # The query may drop or replace the `events` view: register it again next time.
            with self._lock:
                self._sql_generation += 1
        return con.sql(query, params=params)

    def window(
        self,
        event_type: str | list[str] | None = None,
        every: Any = "1h",
        kind: str = "tumbling",
        hop: Any = None,
        gap: Any = None,
        by: str | list[str] | None = None,
        agg: Mapping[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        as_of: Any = None,
        known_at: Any = None,
        fill: bool = False,
    ) -> Any:
        """Window analytics over every event: a DataFrame with one row per window (and
        key), ``window_start``, ``window_end``, the ``by`` keys and the aggregates.

        ``kind``: ``"tumbling"`` (``every``), ``"hopping"`` (``every`` long, one every
        ``hop``) or ``"session"`` (a new window after a silence longer than ``gap``, per
        ``by`` key). ``agg`` maps fields to aggregates (default ``{"*": "count"}``);
        ``fill=True`` adds empty windows in range with zero counts. Computed by DuckDB
        over the ``events`` view; see :mod:`allsource_lab._query.windows` for the exact rules.

        Raises:
            ValueError: a bad kind, duration, key or aggregate, naming the accepted forms.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> for minute in (0, 1, 1, 5):
        ...     _ = store.append("click", "u1", {}, timestamp=f"2026-01-01T00:0{minute}:10Z")
        >>> frame = store.window("click", every="2m")
        >>> [(str(w.window_start), w.count) for w in frame.itertuples()]
        [('2026-01-01 00:00:00+00:00', 3), ('2026-01-01 00:04:00+00:00', 1)]
        """
        from allsource_lab._query.windows import window

        return window(
            self, event_type, every, kind, hop, gap, by, agg, since, until, as_of, known_at, fill
        )

    def sql_connection(self) -> Any:
        """This thread's DuckDB connection to the store, with ``events`` brought up to date.

        Each thread gets its own (DuckDB refuses a second query on a connection that is
        busy); ``events`` is a zero-copy view of the store's Arrow data in each.
        """
        import duckdb

        with self._lock:
            reader = self._reader
            reader.sync(self._tail)
            me = threading.get_ident()
            entry = self._sql.get(me)
            if entry is None:
                self._drop_dead_connections()
                entry = (duckdb.connect(), (-1, -1, -1))
            con, registered = entry
            key = (reader.index.n, reader.sealed, self._sql_generation)
            if key != registered:
                # One Arrow table over every piece (no copy): segments, then tail chunks.
                con.register("events", pa.Table.from_batches(reader.pieces, EVENT_SCHEMA))
            self._sql[me] = (con, key)
            return con

    def _drop_dead_connections(self) -> None:
        """Close the connections of threads that have ended (under _lock)."""
        alive = {t.ident for t in threading.enumerate()}
        for ident in [i for i in self._sql if i not in alive]:
            con, _ = self._sql.pop(ident)
            with contextlib.suppress(Exception):
                con.close()

    def _close_sql(self) -> None:
        connections, self._sql = self._sql, {}
        for con, _ in connections.values():
            with contextlib.suppress(Exception):
                con.close()

    def segment_files(self) -> list[str]:
        """Paths of the sealed Parquet segments, for reading them with DuckDB or pyarrow.

        They hold every event sealed by a checkpoint (not the unsealed tail), with the
        same columns as ``events``; the list changes after a checkpoint. For example
        ``duckdb.sql(f"select count(*) from read_parquet({store.segment_files()})")``.
        An in-memory store has none.
        """
        with self._lock:
            return [str(p) for p in self._storage.segment_files()]

    def stats(self) -> dict[str, Any]:
        """Counts and facts about the store.

        ``memory_bytes`` estimates what the store holds in memory: its Arrow data, the
        index, snapshots and unwritten WAL bytes (not Python's or DuckDB's own).

        >>> import allsource_lab as asl
        >>> asl.open().stats()["events"]
        0
        """
        with self._lock:
            reader = self._reader
            reader.sync(self._tail)
            versions = np.frombuffer(self._versions, np.int64)
            entities = int(np.count_nonzero(versions)) if len(versions) else 0
            del versions
            arrow = sum(piece.nbytes for piece in reader.pieces)
            memory = (
                arrow
                + reader.nbytes()
                + self._keys.nbytes()
                + self._snapshots.nbytes()
                + self._tail.held
                + 8 * len(self._versions)
            )
            return {
                "path": None if self.path is None else str(self.path),
                "events": reader.index.n,
                "entities": entities,
                "event_types": len(reader.type_keys),
                "last_sequence": self._next_seq - 1,
                "segments": len(self._segments),
                "sealed_events": sum(t.num_rows for t in self._segments),
                "tail_events": self._next_seq - self._tail_first,
                "wal_bytes": self._storage.wal_bytes(),
                "wal_bytes_buffered": self._tail.unwritten,
                "snapshots": self._snapshots.count,
                "memory_bytes": memory,
                "partitions": self._partitions,
                "fsync": self.settings.fsync,
                "read_only": self.read_only,
                "recovery_problems": list(self.recovery_problems),
            }

    def verify(self) -> IntegrityReport:
        """Recompute every checksum and check the log's invariants; never raises for damage.

        >>> import allsource_lab as asl
        >>> asl.open().verify().ok
        True
        """
        problems, checked = self._storage.verify()
        problems.extend(check_tables(self._tables()))
        return IntegrityReport(ok=not problems, problems=problems, files_checked=checked)

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"<EventStore {where}: {self._next_seq - 1} events>"


# Named as the package exports it (asl.open); this module never needs the builtin.
def open(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    **settings: Any,
) -> EventStore:
    """Open (or create) a store in a folder, or an in-memory store when ``path`` is None.

    Keyword arguments are :class:`Settings` fields, e.g. ``fsync="always"``,
    ``recovery="strict"``, ``checkpoint_every_events=50_000``.

    Raises:
        StoreLocked: another process has the folder open for writing.
        CorruptionError: the store's files are damaged (see ``recovery``).
        TypeError: an unknown setting.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> store.append("a", "x", {}).sequence
    1
    """
    try:
        config = Settings(**settings)
    except TypeError as exc:
        known = ", ".join(Settings.__dataclass_fields__)
        raise TypeError(f"{exc}; known settings are: {known}") from None
    return EventStore(path, config, read_only=read_only)
