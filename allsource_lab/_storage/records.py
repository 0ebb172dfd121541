"""The byte layout of event records inside WAL frames, and their decoding into Arrow.

Two record kinds, both little-endian:

* ``SINGLE`` (kind 1), one event from ``append``: the fixed header below, then the
  event type, entity id, metadata and payload bytes.
* ``BATCH`` (kind 2), a whole ``append_batch`` as one record, so that a batch is
  atomic on disk for free: its one checksum either covers all of it or the record is
  a torn tail and none of it is replayed. Columns follow the header as arrays.

The framing (length + CRC32C) is ``wal.py``'s business; these are the bodies.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from allsource_lab._kernels import records as kernel
from allsource_lab._storage.wal import LogScan
from allsource_lab.errors import CorruptionError, InvalidArgument
from allsource_lab.events import EVENT_SCHEMA, TIMESTAMP

__all__ = [
    "BATCH_HEADER",
    "FRAMED_SINGLE_HEADER",
    "KIND_BATCH",
    "KIND_SINGLE",
    "SINGLE_HEADER",
    "ColumnBatch",
    "decode_batch",
    "decode_frames",
    "decode_log",
    "decode_singles",
    "encode_batch",
    "string_array",
    "to_record_batch",
]

KIND_SINGLE = 1
KIND_BATCH = 2

# kind, sequence, version, timestamp_us, recorded_us, event_id, schema_version (-1 =
# none), partition, len(type), len(entity), len(metadata), len(payload)
SINGLE_HEADER = struct.Struct("<Bqqqq16sihHHII")
assert SINGLE_HEADER.size == kernel.HEADER_SIZE

# The single-append path packs the WAL frame header (length, then a zero where the
# CRC32C goes: the WAL writer fills it in, see wal.fill_checksums) and the record header
# in one call.
FRAMED_SINGLE_HEADER = struct.Struct("<II" + SINGLE_HEADER.format[1:])
assert FRAMED_SINGLE_HEADER.size == 8 + SINGLE_HEADER.size

# kind, count, first_sequence, recorded_us, 3 bytes padding (arrays start 8-aligned)
BATCH_HEADER = struct.Struct("<BIqq3x")


@dataclass(slots=True)
class ColumnBatch:
    """Events as numpy columns; strings in Arrow layout (int64 offsets + bytes)."""

    sequence: np.ndarray
    version: np.ndarray
    timestamp: np.ndarray
    recorded: np.ndarray
    event_id: np.ndarray  # uint8, 16 bytes per event
    schema_version: np.ndarray  # int32, -1 = none
    partition: np.ndarray  # int16
    event_type: tuple[np.ndarray, np.ndarray]  # (offsets, data)
    entity_id: tuple[np.ndarray, np.ndarray]
    metadata: tuple[np.ndarray, np.ndarray]
    payload: tuple[np.ndarray, np.ndarray]
    # String columns that are already Arrow arrays of the same bytes, by field name
    # (event_type, entity_id, payload, metadata): used as they are, not rebuilt.
    ready: dict[str, pa.Array] | None = None

    def __len__(self) -> int:
        return len(self.sequence)


def string_array(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A StringArray over ``data`` with ``offsets`` narrowed to int32 (a copy).

    Raises:
        InvalidArgument: the data is 2 GiB or more (too much for int32 offsets).
    """
    n = len(offsets) - 1
    if len(data) >= 2**31:
        raise InvalidArgument("a string column over 2 GiB in one batch; append in smaller batches")
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
    )


def _numbers(values: np.ndarray, kind: pa.DataType, dtype: type[np.generic]) -> pa.Array:
    """A numeric column with no nulls, over the array's own buffer.

    Every column here is built from buffers: ``pa.array`` over a NumPy array imports
    pandas (to ask whether it is a pandas object), which cost 0.3–1.5 s inside the first
    checkpoint of every fresh process.
    """
    data = np.ascontiguousarray(values, dtype)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def _schema_versions(sv: np.ndarray) -> pa.Array:
    """``schema_version`` (negative: none) as an int32 array with nulls (see _numbers)."""
    values = pa.py_buffer(np.ascontiguousarray(sv, np.int32))
    missing = sv < 0
    if not missing.any():
        return pa.Array.from_buffers(pa.int32(), len(sv), [None, values])
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    nulls = int(missing.sum())
    return pa.Array.from_buffers(pa.int32(), len(sv), [validity, values], null_count=nulls)


def to_record_batch(cols: ColumnBatch) -> pa.RecordBatch:
    """The columns as a RecordBatch of ``EVENT_SCHEMA`` (zero-copy where Arrow allows).

    Raises:
        InvalidArgument: a string column holds 2 GiB or more (Arrow's string offsets are
            32-bit); the batch must be appended in smaller pieces.
    """
    n = len(cols)
    ids = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), n, [None, pa.py_buffer(cols.event_id)]
    )
    schema_version = _schema_versions(cols.schema_version)
    ready = cols.ready or {}

    def text(name: str, column: tuple[np.ndarray, np.ndarray]) -> pa.Array:
        # An Arrow string array the caller already has needs no int32 offsets made anew
        # (a cast and fresh memory: ~4 MB for each column of 1M events).
        given = ready.get(name)
        return string_array(*column) if given is None else given

    arrays = [
        _numbers(cols.sequence, pa.int64(), np.int64),
        pa.ExtensionArray.from_storage(pa.uuid(), ids),
        text("event_type", cols.event_type),
        text("entity_id", cols.entity_id),
        _numbers(cols.version, pa.int64(), np.int64),
        pa.Array.from_buffers(TIMESTAMP, n, [None, pa.py_buffer(cols.timestamp)]),
        pa.Array.from_buffers(TIMESTAMP, n, [None, pa.py_buffer(cols.recorded)]),
        pa.ExtensionArray.from_storage(pa.json_(), text("payload", cols.payload)),
        pa.ExtensionArray.from_storage(pa.json_(), text("metadata", cols.metadata)),
        _numbers(cols.partition, pa.int16(), np.int16),
        schema_version,
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


def decode_singles(buf: np.ndarray, start: int, end: int, path: str = "") -> ColumnBatch:
    """Columns of the framed single-event records in buf[start:end] (CRCs already checked).

    Raises:
        CorruptionError: a record's lengths do not match its size.
    """
    n, tl, el, ml, pl = kernel.count_singles(buf, start, end)
    if n < 0:
        raise CorruptionError(
            "single-event record is malformed (its lengths do not add up) although its "
            "checksum matches; it was written by another version or a bug — restore the "
            "WAL file from a backup",
            path=path,
            offset=tl,
        )
    c = kernel.decode_singles(buf, start, end, n, tl, el, ml, pl)
    return ColumnBatch(
        sequence=c[0],
        version=c[1],
        timestamp=c[2],
        recorded=c[3],
        event_id=c[4],
        schema_version=c[5],
        partition=c[6],
        event_type=(c[7], c[8]),
        entity_id=(c[9], c[10]),
        metadata=(c[11], c[12]),
        payload=(c[13], c[14]),
    )


def encode_batch(first_sequence: int, recorded_us: int, cols: ColumnBatch) -> list[Any]:
    """The body of a BATCH record as buffers to be written in order (no joined copy).

    Each piece supports the buffer protocol; a 1M-event batch is ~200 MB, and joining it
    into one bytes object first cost more than writing it (measured: 0.22 s per 1M).
    """
    pieces: list[Any] = [BATCH_HEADER.pack(KIND_BATCH, len(cols), first_sequence, recorded_us)]
    for arr, dtype in (
        (cols.version, np.int64),
        (cols.timestamp, np.int64),
        (cols.schema_version, np.int32),
        (cols.partition, np.int16),
        (cols.event_id, np.uint8),
    ):
        pieces.append(np.ascontiguousarray(arr, dtype=dtype))
    for off, data in (cols.event_type, cols.entity_id, cols.metadata, cols.payload):
        off64 = np.ascontiguousarray(off, dtype=np.int64)
        pieces.append(off64 - off64[0] if off64[0] else off64)
        pieces.append(np.ascontiguousarray(data[off64[0] : off64[-1]], dtype=np.uint8))
    return pieces


def decode_batch(body: Any, *, path: str = "", offset: int = 0) -> ColumnBatch:
    """Columns of one BATCH record body (any buffer). Raises CorruptionError if malformed."""
    # The ValueErrors below never leave this function: each is a malformed record, turned
    # into a CorruptionError naming the file and offset by the except clause at the end.
    try:
        kind, n, first, recorded = BATCH_HEADER.unpack_from(memoryview(body), 0)
        if kind != KIND_BATCH:
            raise ValueError("not a batch record")
        p = BATCH_HEADER.size

        def take(dtype: type, count: int) -> np.ndarray:
            nonlocal p
            size = np.dtype(dtype).itemsize * count
            if p + size > len(body):
                raise ValueError("batch record shorter than its header says")
            arr: np.ndarray = np.frombuffer(body, dtype=dtype, count=count, offset=p).copy()
            p += size
            return arr

        version = take(np.int64, n)
        timestamp = take(np.int64, n)
        schema_version = take(np.int32, n)
        partition = take(np.int16, n)
        event_id = take(np.uint8, 16 * n)
        strings = []
        for _ in range(4):
            off = take(np.int64, n + 1)
            if off[0] != 0 or np.any(np.diff(off) < 0):
                raise ValueError("bad string offsets")
            strings.append((off, take(np.uint8, int(off[-1]))))
        if p != len(body):
            raise ValueError("trailing bytes after the batch columns")
    except (ValueError, struct.error) as exc:
        raise CorruptionError(f"malformed batch record ({exc})", path=path, offset=offset) from exc
    return ColumnBatch(
        sequence=np.arange(first, first + n, dtype=np.int64),
        version=version,
        timestamp=timestamp,
        recorded=np.full(n, recorded, dtype=np.int64),
        event_id=event_id,
        schema_version=schema_version,
        partition=partition,
        event_type=strings[0],
        entity_id=strings[1],
        metadata=strings[2],
        payload=strings[3],
    )


def decode_log(scan: LogScan, sealed_through: int) -> list[pa.RecordBatch]:
    """The events of a scanned WAL past ``sealed_through``, as RecordBatches in log order.

    A run of adjacent single-event records becomes one batch (decoded in one kernel
    call); each BATCH record becomes its own.

    Raises:
        CorruptionError: a record of an unknown kind, or one malformed although its
            checksum matches.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from allsource_lab._storage.wal import WriteAheadLog, frame
    >>> def single(seq):
    ...     head = SINGLE_HEADER.pack(KIND_SINGLE, seq, 1, 0, 0, bytes(16), -1, 0, 1, 1, 2, 2)
    ...     return frame(head + b"te{}{}")
    >>> tmp = tempfile.TemporaryDirectory()
    >>> log = WriteAheadLog(Path(tmp.name))
    >>> log.open_for_append(1)
    >>> log.write(single(1), single(2), single(3))
    >>> log.close()
    >>> batches = decode_log(log.scan("strict", repair=False), sealed_through=1)
    >>> [b.column("sequence").to_pylist() for b in batches]
    [[2, 3]]
    >>> tmp.cleanup()
    """
    out: list[pa.RecordBatch] = []
    for log_file in scan.files:
        starts = np.concatenate(log_file.starts) if log_file.starts else np.empty(0, np.int64)
        out += decode_frames(log_file.data, starts, str(log_file.path))
    # Records already sealed into a segment (a crash between the manifest update and
    # the WAL trim) are skipped here rather than trusted to be deleted.
    kept = []
    for b in out:
        if b.num_rows and int(b.column(0)[-1].as_py()) > sealed_through:
            first = int(b.column(0)[0].as_py())
            if first <= sealed_through:
                b = b.slice(sealed_through - first + 1)
            kept.append(b)
    return kept


def decode_frames(data: np.ndarray, starts: np.ndarray, path: str) -> list[pa.RecordBatch]:
    """The events of the checked frames of one WAL file that start at ``starts``, as
    RecordBatches in log order (see :func:`decode_log`; a follower decodes what a writer
    added since it last looked this way, see ``_store/following.py``).

    Raises:
        CorruptionError: a record of an unknown kind, or one malformed although its
            checksum matches.
    """
    out: list[pa.RecordBatch] = []
    run_start = -1
    run_end = -1
    for s in starts.tolist():
        length = int.from_bytes(data[s : s + 4].tobytes(), "little")
        kind = int(data[s + 8])
        end = s + 8 + length
        if kind == KIND_SINGLE:
            if run_start >= 0 and s == run_end:
                run_end = end
                continue
            _add_singles(out, data, run_start, run_end, path)
            run_start, run_end = s, end
        elif kind == KIND_BATCH:
            _add_singles(out, data, run_start, run_end, path)
            run_start = run_end = -1
            body = data[s + 8 : end]
            out.append(to_record_batch(decode_batch(body, path=path, offset=s)))
        else:
            raise CorruptionError(
                f"unknown WAL record kind {kind}; written by a newer version?",
                path=path,
                offset=s,
            )
    _add_singles(out, data, run_start, run_end, path)
    return out


def _add_singles(
    out: list[pa.RecordBatch], data: np.ndarray, start: int, end: int, path: str
) -> None:
    """Decode the run of single-event records ``data[start:end]`` (none if start < 0)."""
    if start >= 0:
        out.append(to_record_batch(decode_singles(data, start, end, path)))
