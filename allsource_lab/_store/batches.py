"""``append_batch``: many events, all written or none.

The data flows one way: normalize (any accepted input to Arrow buffers,
:mod:`allsource_lab._ingest.inputs`) → validate against schemas → under the store's
locks: drop exact retries, check expected versions, assign versions (a numba kernel over
the entity numbers), build the columns and encode one WAL record → the log takes it into
the tail and writes it after any buffered single appends → seal a full tail → notify
followers. A failure before the log takes the batch undoes the version assignment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from allsource_lab._ingest import inputs, row_ids
from allsource_lab._kernels import versions as version_kernels
from allsource_lab._storage.arrowbuf import string_buffers
from allsource_lab._storage.records import (
    ColumnBatch,
    encode_batch,
    string_array,
    to_record_batch,
)
from allsource_lab._storage.tail import Numbered
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.event_ids import EventIds
from allsource_lab._store.log import EventLog
from allsource_lab._store.validation import validate_batch
from allsource_lab.errors import InvalidArgument, InvalidEvent

__all__ = ["BatchAppender", "BatchResult"]

_EMPTY_OBJECT = b"{}"


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


class BatchAppender:
    """Writes batches through the log."""

    def __init__(self, log: EventLog, entities: EntityTable, event_ids: EventIds) -> None:
        self.log = log
        self.entities = entities
        self.event_ids = event_ids
        self._empty_metadata: tuple[np.ndarray, np.ndarray, pa.Array] | None = None

    def append_batch(
        self,
        data: Any,
        expected_versions: Mapping[str, int] | None = None,
        on_invalid: str = "raise",
        idempotency: str | None = None,
    ) -> BatchResult:
        """Append many events atomically (see ``EventStore.append_batch``)."""
        log = self.log
        if on_invalid not in ("raise", "skip", "return"):
            raise InvalidEvent(
                f"on_invalid must be 'raise', 'skip' or 'return', not {on_invalid!r}",
                field="on_invalid",
            )
        if idempotency not in row_ids.IDEMPOTENCY_MODES:
            raise InvalidArgument(
                f"idempotency must be None or 'content', not {idempotency!r}; 'content' "
                "derives each row's event_id from its content so a re-run is not stored twice"
            )
        batch = inputs.normalize_batch(data, log.settings)
        if idempotency == "content":
            # Before validation, so that on_invalid="skip" keeps each row's own id.
            batch = row_ids.with_content_ids(batch)
        rejected: Any = None
        n_rejected = 0
        if log.schemas_active:
            assert log.schemas is not None
            checked, rejected, n_rejected = validate_batch(log.schemas, batch, on_invalid)
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
        # A large record may be written behind (see EventLog.write_batch): the writer
        # thread then holds the io lock on from here and releases it once written.
        log.io_lock.acquire()
        handed = False
        try:
            with log.lock:
                if log.refuse:
                    log.refuse_write(io_held=True)
                duplicates = 0
                if batch.event_id_given is not None:
                    kept, dup_seqs = self.event_ids.split_batch(batch)
                    if kept is None:
                        return BatchResult(
                            int(dup_seqs.min()), int(dup_seqs.max()), 0, len(dup_seqs)
                        )
                    duplicates = len(dup_seqs)
                    batch = kept
                if expected_versions:
                    self.entities.check_expected(expected_versions)
                n = batch.n
                if n == 0:
                    raise InvalidEvent("the batch is empty; nothing to append")
                first, buffered, pieces, upto, full = self._take(batch)
            handed = log.write_batch(buffered, pieces, upto)
        finally:
            if not handed:
                log.io_lock.release()
        if full:
            log.on_full()
        if log.listeners:
            log.notify(first + n - 1)
        return BatchResult(first, first + n - 1, n, duplicates, n_rejected, rejected)

    def _take(self, batch: inputs.BatchInput) -> tuple[int, bytearray, list[Any], int, bool]:
        """Assign versions, sequences and ids, encode the record and hand it to the log
        (under both locks); (first sequence, buffered singles, pieces, stream end, full)."""
        log = self.log
        nos = self.entities.intern_column(batch.entity_id)
        versions = np.frombuffer(self.entities.versions, np.int64)
        assigned = version_kernels.assign(nos, versions)
        try:
            rec = log.next_recorded()
            first = log.next_seq
            cols = self._columns(batch, nos, assigned, first, rec)
            record_batch = to_record_batch(cols)
            pieces: list[Any] = []
            if log.storage.durable:
                pieces = log.frame(encode_batch(first, rec, cols))
        except BaseException:
            version_kernels.undo(nos, assigned, versions)
            raise
        finally:
            del versions  # a live buffer export would stop the array from growing
        numbered = None
        if batch.type_codes is not None:
            numbered = Numbered(nos, *batch.type_codes)
        buffered, upto, full = log.add_batch(record_batch, pieces, first, rec, numbered)
        return first, buffered, pieces, upto, full

    def _columns(
        self, batch: inputs.BatchInput, nos: np.ndarray, assigned: np.ndarray, first: int, rec: int
    ) -> ColumnBatch:
        n = batch.n
        if batch.timestamp is None:
            ts = np.full(n, rec, np.int64)
        else:
            ts = np.where(batch.timestamp == inputs.MISSING_TIME, rec, batch.timestamp)
        ids = self.log.ids.next_many(rec // 1000, n)
        if batch.event_id is not None and batch.event_id_given is not None:
            given = np.repeat(batch.event_id_given, 16)
            ids = np.where(given, batch.event_id, ids)
        partitions = np.frombuffer(self.entities.partition_of, np.int16)[nos].copy()
        ready = {"event_type": batch.event_type, "entity_id": batch.entity_id}
        if batch.metadata is None:
            meta_data, meta_off, ready["metadata"] = self._no_metadata(n)
        else:
            meta_data, meta_off = batch.metadata
        t_data, t_off = string_buffers(batch.event_type)
        e_data, e_off = string_buffers(batch.entity_id)
        p_data, p_off = batch.payload
        if batch.payload_array is not None:
            ready["payload"] = batch.payload_array
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
            ready=ready,
        )

    def _no_metadata(self, n: int) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """A column of ``n`` empty objects: (data, offsets, as an Arrow array). The last
        one made is kept and shared (nothing writes to it): batches tend to be of one
        size, and making it costs fresh memory (~14 MB for 1M events) each time."""
        kept = self._empty_metadata
        if kept is None or len(kept[1]) != n + 1:
            offsets = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
            data = np.frombuffer(_EMPTY_OBJECT * n, np.uint8)
            offsets.flags.writeable = False
            kept = self._empty_metadata = (data, offsets, string_array(offsets, data))
        return kept
