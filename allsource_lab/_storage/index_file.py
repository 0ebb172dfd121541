"""Index files: what an open would otherwise rebuild from a segment's rows, kept beside it.

Opening a store used to read every segment's ``sequence``, ``timestamp``,
``recorded_at``, ``entity_id`` and ``event_type`` columns and hash every row's entity id
and event type to index them (~0.2 s per million events, most of it hashing). Beside each
``seg-A-B.parquet`` the store keeps ``seg-A-B.index``: the segment's rows *in sequence
order* as the read side indexes them — sequence, event time, recorded time, the row of
each in the segment — with entity ids and event types as small per-segment codes. Entity
codes number the segment's runs of one entity (it is sorted by entity), so the distinct
ids are the ``entity_id`` values at the runs' first rows and an open hashes only those.

The file is derived data, written after the segment is committed and never fsynced: it
carries its own CRC32C, and one that is missing, torn or damaged is ignored (the open
indexes the segment's rows instead, and a writable open writes the file again).

Layout (little-endian): ``b"ASLIDX1\\n"``, a uint32 header length, a JSON header
(``segment``, ``rows``, ``runs``, ``types``: the event types in code order, ``crc32c``
of the body), then the body: ``sequence``, ``timestamp``, ``recorded_at`` (int64 each,
``rows`` of them), ``row``, ``entity``, ``type`` (int32 each) and ``run_starts`` (int32,
``runs`` of them).
"""

from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

from allsource_lab._storage import direct

__all__ = [
    "INDEX_SUFFIX",
    "SegmentIndex",
    "decode_index",
    "encode_index",
    "index_file_name",
    "read_index_file",
]

INDEX_SUFFIX = ".index"
_MAGIC = b"ASLIDX1\n"
_LENGTH = struct.Struct("<I")


def index_file_name(segment_file: str) -> str:
    """The index file beside segment ``segment_file``.

    >>> index_file_name("seg-00000000000000000001-00000000000000000040.parquet")
    'seg-00000000000000000001-00000000000000000040.index'
    """
    return segment_file.removesuffix(".parquet") + INDEX_SUFFIX


@dataclass(slots=True)
class SegmentIndex:
    """One segment's rows in sequence order, as the read side indexes them.

    ``entity[i]`` is the run (of one entity's rows in the segment) that row ``row[i]``
    belongs to; ``run_starts[r]`` is that run's first row. ``type[i]`` indexes ``types``.
    """

    sequence: np.ndarray
    timestamp: np.ndarray
    recorded_at: np.ndarray
    row: np.ndarray
    entity: np.ndarray
    type: np.ndarray
    run_starts: np.ndarray
    types: list[str]

    def run_numbers(self, entities: np.ndarray) -> np.ndarray:
        """The entity number of each run, given ``entities``: the number of each of
        these rows' entity, in this index's (sequence) order.

        >>> index = SegmentIndex(*(np.zeros(3, np.int64),) * 4, np.array([1, 0, 1]),
        ...                      np.zeros(3, np.int32), np.array([0, 1]), [])
        >>> index.run_numbers(np.array([7, 4, 7])).tolist()
        [4, 7]
        """
        numbers = np.empty(len(self.run_starts), np.int32)
        numbers[self.entity] = entities
        return numbers


def encode_index(segment: str, index: SegmentIndex) -> list[Any]:
    """The bytes of an index file for segment file ``segment``, as the pieces to write in
    order (the arrays themselves, not copies: 36 MB for 1M events)."""
    arrays = [
        np.ascontiguousarray(a, dtype)
        for a, dtype in (
            (index.sequence, "<i8"),
            (index.timestamp, "<i8"),
            (index.recorded_at, "<i8"),
            (index.row, "<i4"),
            (index.entity, "<i4"),
            (index.type, "<i4"),
            (index.run_starts, "<i4"),
        )
    ]
    crc = 0
    for a in arrays:
        crc = crc32c.crc32c(a.data.cast("B"), value=crc)
    header = json.dumps(
        {
            "segment": segment,
            "rows": len(index.sequence),
            "runs": len(index.run_starts),
            "types": index.types,
            "crc32c": crc,
        }
    ).encode()
    return [_MAGIC + _LENGTH.pack(len(header)) + header, *arrays]


def read_index_file(path: Path, segment: str, rows: int) -> SegmentIndex | None:
    """The index file at ``path`` (see :func:`decode_index`); None if it cannot be read.

    A large file is read past the page cache (``direct.read_whole``): it was written
    that way, so it is not cached, and a cache page for each 4 KiB read costs more than
    the disk does (docs/architecture.md, "Large writes skip the page cache"; 100M events:
    3.6 GB of index files). Otherwise the file is mapped, not read: its arrays are views
    of the page cache, which the read side copies once into its index (reading 100 files
    of 36 MB into ``bytes`` first took ~3-9 s of a 100M-event open on the development
    machine, busy). Index files are only ever replaced by a rename, never rewritten in
    place, so a mapping never sees its file cut short.
    """
    try:
        data: memoryview | mmap.mmap | None = direct.read_whole(path)
        if data is None:
            with open(path, "rb") as file:
                data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        return None
    return decode_index(memoryview(data), segment, rows)


def decode_index(data: bytes | memoryview, segment: str, rows: int) -> SegmentIndex | None:
    """The index in ``data`` if it is whole and belongs to ``segment`` of ``rows`` rows;
    None otherwise (the caller indexes the segment's rows instead)."""
    view = memoryview(data)
    start = len(_MAGIC) + _LENGTH.size
    if len(view) < start or bytes(view[: len(_MAGIC)]) != _MAGIC:
        return None
    (length,) = _LENGTH.unpack_from(view, len(_MAGIC))
    try:
        header = json.loads(bytes(view[start : start + length]))
        n, runs, types, crc = (
            header["rows"],
            header["runs"],
            header["types"],
            header["crc32c"],
        )
    except (ValueError, KeyError, TypeError):
        return None
    body = view[start + length :]
    if (
        header.get("segment") != segment
        or n != rows
        or len(body) != 36 * n + 4 * runs
        or crc32c.crc32c(body) != crc
        or not all(isinstance(t, str) for t in types)
    ):
        return None
    wide, narrow = 8 * n, 4 * n
    return SegmentIndex(
        sequence=np.frombuffer(body, "<i8", n, 0),
        timestamp=np.frombuffer(body, "<i8", n, wide),
        recorded_at=np.frombuffer(body, "<i8", n, 2 * wide),
        row=np.frombuffer(body, "<i4", n, 3 * wide),
        entity=np.frombuffer(body, "<i4", n, 3 * wide + narrow),
        type=np.frombuffer(body, "<i4", n, 3 * wide + 2 * narrow),
        run_starts=np.frombuffer(body, "<i4", runs, 3 * wide + 3 * narrow),
        types=list(types),
    )
