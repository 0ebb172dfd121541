"""Sealed segments: immutable zstd Parquet files sorted by (partition, entity_id, sequence).

Sorted that way, one entity's events sit together in a segment, so later readers that
fetch an entity touch one row group; the sequence range is recorded in the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import crc32c
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allsource_lab._kernels.segment_order import (
    dense_keys,
    inverse,
    scatter_pairs,
    scatter_strings,
    scatter_validity,
    scatter_values,
    segment_order,
    string_sizes,
    sum_offsets,
)
from allsource_lab._storage.arrowbuf import fixed_values, numpy_array, string_buffers
from allsource_lab._storage.manifest import SegmentInfo
from allsource_lab.errors import CorruptionError
from allsource_lab.events import EVENT_SCHEMA

# Where a sort's new columns get their memory: a size in bytes, a writable buffer.
Allocate = Callable[[int], pa.Buffer]

__all__ = [
    "SORT_KEYS",
    "encode_segment",
    "read_segment",
    "segment_info",
    "segment_name",
    "sequence_range",
    "sort_for_segment",
]

SORT_KEYS = [("partition", "ascending"), ("entity_id", "ascending"), ("sequence", "ascending")]


def sort_for_segment(
    table: pa.Table,
    helper: Executor | None = None,
    allocate: Allocate = pa.allocate_buffer,
    entities: np.ndarray | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """The events in segment order, and the row order that made it (for the index).

    The rows sorted by SORT_KEYS, stably: the same rows in the same order as Arrow's
    ``sort_indices`` gives, with ``table``'s schema (extension types kept), one chunk
    per column; ``order`` holds the input row (int64) of each output row.

    Sealing runs beside appending threads, so the work is done by kernels that release
    the GIL (``allsource_lab/_kernels/segment_order.py``), and by Arrow, which does too.
    Key columns of other types or with nulls are sorted by Arrow as before. Given a
    ``helper`` (an executor), a large table's columns are moved half on its thread and
    half on this one. The new columns' memory comes from ``allocate`` (a seal lends
    memory it keeps from one seal to the next: ``arena.py``). ``entities``, if given, numbers
    each row's entity as the store does (any non-negative ints, one per row): the sort then
    uses them instead of numbering the ids itself (a hash of every id, ~9% of a server's
    CPU under batch load, measured with py-spy).

    >>> t = pa.table({"sequence": [1, 2, 3], "entity_id": ["b", "a", "b"],
    ...               "partition": pa.array([0, 0, 0], pa.int16())})
    >>> ordered, order = sort_for_segment(t)
    >>> ordered.column("entity_id").to_pylist(), order.tolist()
    (['a', 'b', 'b'], [1, 0, 2])
    """
    seqs = table.column("sequence")
    ids = table.column("entity_id")
    parts = table.column("partition")
    if (
        seqs.type == pa.int64()
        and ids.type in (pa.string(), pa.large_string())
        and parts.type == pa.int16()
        and not (seqs.null_count or ids.null_count or parts.null_count)
    ):
        data, offsets = string_buffers(ids)
        keys = _entity_keys(ids) if entities is None or len(entities) != len(ids) else None
        if keys is None:
            keys, count = dense_keys(np.ascontiguousarray(entities))
            if count * _ROWS_PER_ENTITY > len(keys):  # few rows per entity: see below
                keys = np.zeros(0, np.int32)
        order = segment_order(data, offsets, fixed_values(parts), fixed_values(seqs), keys)
    else:
        order = fixed_values(pc.sort_indices(table, sort_keys=SORT_KEYS)).astype(np.int64)
    to = inverse(order)
    columns = _all_in_order(table.columns, order, to, helper, allocate)
    return pa.Table.from_arrays(columns, schema=table.schema), order


# Below this many rows the columns are moved on one thread: handing half to another
# costs ~50 µs, more than it saves.
_PARALLEL_ROWS = 16_384


def _all_in_order(
    cols: list[pa.ChunkedArray],
    order: np.ndarray,
    to: np.ndarray,
    helper: Executor | None,
    allocate: Allocate,
) -> list[pa.Array]:
    """Every column taken in ``order``; with a ``helper``, in two halves of about equal
    bytes at once (the kernels release the GIL). Moving the columns is most of a sort's
    CPU time (1M events with ~110-byte payloads: ~0.07 of ~0.1 s, measured), and the
    payloads alone are about half the bytes."""
    if helper is None or len(order) < _PARALLEL_ROWS:
        return [_in_order(col, order, to, allocate) for col in cols]
    mine: list[int] = []
    theirs: list[int] = []
    loads = [0, 0]
    for i in sorted(range(len(cols)), key=lambda i: -cols[i].nbytes):
        side = 0 if loads[0] <= loads[1] else 1
        (mine, theirs)[side].append(i)
        loads[side] += cols[i].nbytes
    pending = helper.submit(lambda: [_in_order(cols[i], order, to, allocate) for i in theirs])
    try:
        moved = {i: _in_order(cols[i], order, to, allocate) for i in mine}
    finally:
        # Whatever happens here, the helper's half is finished before this returns.
        done = pending.result()
    moved.update(zip(theirs, done, strict=True))
    return [moved[i] for i in range(len(cols))]


# Below this many rows per entity, sorting the rows themselves beats numbering the
# entities (Arrow's dictionary_encode) and sorting a row of each: CPU time for 1M rows
# with 1 / 4 / 10 / 100 rows per entity, 58 / 53 / 51 / 61 ms against 166 / 49 / 30 / 19.
_ROWS_PER_ENTITY = 4
# Rows sampled to tell which side a table is on: one in _SAMPLE, at least _SAMPLE_MIN.
_SAMPLE = 32
_SAMPLE_MIN = 4096


def _entity_keys(ids: pa.ChunkedArray) -> np.ndarray:
    """Each row's entity number in first-seen order, or an empty array when a sample of
    the rows says there are fewer than _ROWS_PER_ENTITY rows per entity."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, np.int32)
    if n > _SAMPLE_MIN:
        picks = np.random.default_rng(0).integers(0, n, max(n // _SAMPLE, _SAMPLE_MIN))
        sample = ids.take(numpy_array(np.unique(picks)))
    else:
        sample = ids
    share = len(pc.unique(sample)) / len(sample)
    # The share of distinct ids such a sample shows when every entity has exactly
    # _ROWS_PER_ENTITY rows: more distinct ids than that means fewer rows per entity.
    f = len(sample) / n
    even = (1 - (1 - f) ** _ROWS_PER_ENTITY) / (_ROWS_PER_ENTITY * f)
    if share > even:
        return np.zeros(0, np.int32)
    encoded = pc.dictionary_encode(ids)
    return fixed_values(pa.chunked_array([c.indices for c in encoded.chunks], pa.int32()))


def _in_order(
    col: pa.ChunkedArray, order: np.ndarray, to: np.ndarray, allocate: Allocate
) -> pa.Array:
    """``col`` taken in ``order`` as one array: input row r goes to output row ``to[r]``.

    The kernels write fixed-width values of 1 to 16 bytes and null-free strings; other
    columns (nested ones, strings past what their offsets reach), and empty ones, go
    through Arrow's take.
    """
    extension = col.type if isinstance(col.type, pa.BaseExtensionType) else None
    stored = extension.storage_type if extension else col.type
    chunks = [c.storage if extension else c for c in col.chunks]
    arr = None
    if len(order) and (
        pa.types.is_fixed_size_binary(stored)
        or (pa.types.is_primitive(stored) and not pa.types.is_boolean(stored))
    ):
        arr = _fixed_in_order(chunks, stored, to, allocate)
    elif len(order) and stored in _STRING_LIMIT and not col.null_count:
        arr = _strings_in_order(chunks, stored, to, allocate)
    if arr is None:
        return col.take(numpy_array(order)).combine_chunks()
    return pa.ExtensionArray.from_storage(extension, arr) if extension else arr


def _pieces(chunks: list[pa.Array], to: np.ndarray) -> list[tuple[pa.Array, np.ndarray]]:
    """The non-empty chunks, each with where its rows go."""
    pieces = []
    base = 0
    for c in chunks:
        if len(c):
            pieces.append((c, to[base : base + len(c)]))
            base += len(c)
    return pieces


def _read_only(a: np.ndarray) -> np.ndarray:
    # Arrow buffers may be writable underneath or not (a memory map); read-only views
    # keep to one compiled variant of each kernel, and kernels from writing into them.
    a.flags.writeable = False
    return a


def _fixed_in_order(
    chunks: list[pa.Array], stored: pa.DataType, to: np.ndarray, allocate: Allocate
) -> pa.Array | None:
    """None for widths other than 1, 2, 4, 8 and 16 bytes."""
    width = stored.bit_width // 8
    if width not in (1, 2, 4, 8, 16):
        return None
    n = len(to)
    unit = np.dtype(f"u{min(width, 8)}")
    words = width // unit.itemsize
    values = allocate(n * width)
    out = np.frombuffer(values, unit)
    nulls = any(c.null_count for c in chunks)
    validity = allocate(-(-n // 8)) if nulls else None
    bits_out = np.frombuffer(validity, np.uint8) if validity is not None else None
    if bits_out is not None:
        bits_out[:] = 0
    valid = 0
    for c, dst in _pieces(chunks, to):
        view = _read_only(np.frombuffer(c.buffers()[1], unit, (c.offset + len(c)) * words))
        if words == 2:
            scatter_pairs(view.reshape(-1, 2)[c.offset :], dst, out.reshape(n, 2))
        else:
            scatter_values(view[c.offset :], dst, out)
        if bits_out is not None:
            bits = c.buffers()[0] if c.null_count else None
            bits_in = np.zeros(0, np.uint8) if bits is None else np.frombuffer(bits, np.uint8)
            valid += scatter_validity(_read_only(bits_in), c.offset, dst, bits_out)
    return pa.Array.from_buffers(
        stored, n, [validity, values], null_count=n - valid if nulls else 0
    )


# The most bytes a column of each string type holds (its offsets' range).
_STRING_LIMIT = {
    pa.string(): 2**31 - 1,
    pa.binary(): 2**31 - 1,
    pa.large_string(): 2**63 - 1,
    pa.large_binary(): 2**63 - 1,
}


def _strings_in_order(
    chunks: list[pa.Array], stored: pa.DataType, to: np.ndarray, allocate: Allocate
) -> pa.Array | None:
    """Null-free strings in their new order; None past what the offsets reach."""
    n = len(to)
    limit = _STRING_LIMIT[stored]
    offset_type = np.int32 if limit < 2**32 else np.int64
    offsets = allocate((n + 1) * np.dtype(offset_type).itemsize)
    out_offsets = np.frombuffer(offsets, offset_type)
    sources = []
    for c, dst in _pieces(chunks, to):
        data, chunk_offsets = string_buffers(c)
        string_sizes(chunk_offsets, dst, out_offsets)
        sources.append((data, chunk_offsets, dst))
    if sum_offsets(out_offsets, limit) < 0:
        return None
    data_buffer = allocate(int(out_offsets[-1]))
    out_data = np.frombuffer(data_buffer, np.uint8)
    for data, chunk_offsets, dst in sources:
        scatter_strings(data, chunk_offsets, dst, out_offsets, out_data)
    return pa.Array.from_buffers(stored, n, [None, offsets, data_buffer])


_DELTA_COLUMNS = ("sequence", "version", "timestamp", "recorded_at", "partition", "schema_version")


def encode_segment(ordered: pa.Table, *, row_group_rows: int, zstd_level: int) -> pa.Buffer:
    """Encode events already in segment order as Parquet bytes (in memory)."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        ordered,
        sink,
        compression="zstd",
        compression_level=zstd_level,
        row_group_size=row_group_rows,
        # Dictionaries pay off only for the few-valued string columns; for payloads they
        # are built and thrown away (0.3 ms of a 1000-event checkpoint, measured).
        use_dictionary=["event_type", "entity_id"],
        # Integers as deltas: in segment order each entity's sequences, versions and
        # times climb in small steps, which zstd then has little left to do with. 1M
        # events: 0.17 s and 6.4 MB against 0.20 s and 11.7 MB plain (measured). Every
        # Parquet reader knows the encoding (pyarrow, DuckDB, polars, Spark).
        column_encoding=dict.fromkeys(_DELTA_COLUMNS, "DELTA_BINARY_PACKED"),
        write_statistics=["sequence", "timestamp", "recorded_at", "partition"],
    )
    return sink.getvalue()


def segment_name(first: int, last: int) -> str:
    return f"seg-{first:020d}-{last:020d}.parquet"


def sequence_range(table: pa.Table) -> tuple[int, int]:
    """The smallest and largest sequence in ``table`` (a segment's name says them).

    >>> sequence_range(pa.table({"sequence": [3, 1, 2]}))
    (1, 3)
    """
    seq = table.column("sequence")
    return int(pc.min(seq).as_py()), int(pc.max(seq).as_py())


def segment_info(table: pa.Table, data: pa.Buffer) -> SegmentInfo:
    """The manifest's record of a segment of ``table`` encoded as ``data``."""
    first, last = sequence_range(table)
    return SegmentInfo(
        file=segment_name(first, last),
        rows=table.num_rows,
        first_sequence=first,
        last_sequence=last,
        bytes=data.size,
        sha256=hashlib.sha256(data).hexdigest(),
        blocks=block_crcs(data),
    )


# Damage in a segment is reported to within one block of this size.
BLOCK_BYTES = 64 * 1024


def block_crcs(data: Any) -> tuple[int, ...]:
    """CRC32C of each BLOCK_BYTES block of ``data`` (~0.1 ms per MiB)."""
    view = memoryview(data).cast("B")
    return tuple(crc32c.crc32c(view[i : i + BLOCK_BYTES]) for i in range(0, len(view), BLOCK_BYTES))


def check_segment_bytes(path: Path, data: bytes, info: SegmentInfo) -> str | None:
    """Why these bytes are not the segment the manifest describes, or None if they are."""
    if len(data) != info.bytes:
        return f"size is {len(data)} bytes, the manifest says {info.bytes}"
    if hashlib.sha256(data).hexdigest() != info.sha256:
        if len(info.blocks) == -(-len(data) // BLOCK_BYTES):
            for i, (want, got) in enumerate(zip(info.blocks, block_crcs(data), strict=True)):
                if want != got:
                    end = min(len(data), (i + 1) * BLOCK_BYTES) - 1
                    return (
                        f"SHA-256 does not match the manifest: damaged at bytes "
                        f"{i * BLOCK_BYTES}..{end} (block {i} of {len(info.blocks)})"
                    )
        return "SHA-256 does not match the manifest"
    return None


def read_segment(folder: Path, info: SegmentInfo) -> pa.Table:
    """Load a segment, checking it against the manifest.

    Raises:
        CorruptionError: the file is missing, its size or SHA-256 differs from the
            manifest, or it is not the Parquet the store wrote.
    """
    path = folder / info.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptionError(
            "segment listed in the manifest is missing; restore it from a backup "
            "(the events in it cannot be recovered from the WAL, which was trimmed)",
            path=str(path),
        ) from None
    problem = check_segment_bytes(path, data, info)
    if problem is not None:
        raise CorruptionError(
            f"segment {problem}; run store.verify() for a full report and restore the "
            "file from a backup",
            path=str(path),
        )
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise CorruptionError(f"segment is not readable Parquet ({exc})", path=str(path)) from exc
    if table.num_rows != info.rows or not table.schema.equals(EVENT_SCHEMA):
        raise CorruptionError("segment rows or columns differ from the manifest", path=str(path))
    return table
