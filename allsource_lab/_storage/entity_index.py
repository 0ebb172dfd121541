"""The entity index: every entity id the store numbered, and which entity each run of each
segment is, so that an open looks up no entity id of a segment this file covers.

An open used to hash, per segment, the entity id of each run of one entity's rows (see
``index_file.py``) and look it up in the entity table: at 100M events over 1M entities,
100 segments of 1M runs each, that was 100M hashes and probes, ~16 s of a 35 s open
(measured on the 2-core development machine, busy, 2026-12-05). This file keeps the
result: the entity ids in the store's numbering order, and for each segment the number of
the entity of each of its runs.

It is append-only, one frame per live segment in manifest order. The frame of a segment
brings the ids numbered since the frame before it (ids are numbered once and never
renumbered, so the numbering is the concatenation of the frames' ids) and the entity
number of each of the segment's runs. A checkpoint appends the new segment's frame; a
compaction, or an open that finds the file stale, rewrites it from the first segment it
no longer fits. The file is derived data, never fsynced: each frame carries its CRC32C,
and a reader uses the longest run of whole frames, from the first, that match the
manifest's live segments by name, row count and SHA-256; the segments after them are
indexed from their rows, as if the file were missing.

Layout (little-endian): ``b"ASLENT1\\n"``, then frames. A frame is a u64 body length, a
u32 CRC32C of the body, a u32 zero, and the body:

========  =====================================================================
bytes     what
========  =====================================================================
8         i64 ``rows``: the segment's row count
8         i64 ``runs``: its runs of one entity's rows
8         i64 ``first_key``: ids numbered before this frame (the number of its first id)
8         i64 ``keys``: ids this frame brings
8         i64 ``key_bytes``: their bytes in all
4         u32 ``name_bytes``: length of the segment's file name
4         zero
64        the segment's SHA-256 (from the manifest), 64 lowercase hex digits
name      the segment's file name, UTF-8, padded with zeros to a multiple of 8
4 x keys  u32 byte length of each id, in number order
bytes     the ids' UTF-8 bytes, back to back, padded with zeros to a multiple of 8
4 x runs  i32 the entity number of each run, in row order
========  =====================================================================
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import crc32c
import numpy as np

__all__ = [
    "ENTITY_INDEX_FILE",
    "EntityIndex",
    "EntityIndexFile",
    "LiveSegment",
    "encode_frame",
    "read_entity_index",
]

ENTITY_INDEX_FILE = "entities.index"
_MAGIC = b"ASLENT1\n"
_FRAME = struct.Struct("<QII")
_HEAD = struct.Struct("<qqqqqI4x64s")


class LiveSegment(Protocol):
    """What a frame is checked against: a live segment as the manifest records it."""

    @property
    def file(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def sha256(self) -> str: ...


def _pad8(n: int) -> int:
    return -n % 8


def encode_frame(
    segment: LiveSegment,
    first_key: int,
    key_data: np.ndarray,
    key_offsets: np.ndarray,
    runs: np.ndarray,
) -> bytes:
    """One frame: ``segment``'s runs (``runs[r]``: the entity number of run ``r``) and the
    ids numbered ``first_key`` on (key ``i`` is ``key_data[key_offsets[i]:key_offsets[i +
    1]]``; ``key_offsets`` need not start at 0)."""
    name = segment.file.encode()
    offsets = np.asarray(key_offsets, np.int64)
    keys = len(offsets) - 1
    start, end = int(offsets[0]), int(offsets[-1])
    head = _HEAD.pack(
        segment.rows,
        len(runs),
        first_key,
        keys,
        end - start,
        len(name),
        segment.sha256.encode("ascii"),
    )
    body = b"".join(
        (
            head,
            name,
            bytes(_pad8(len(name))),
            np.diff(offsets).astype("<u4").tobytes(),
            np.asarray(key_data[start:end], np.uint8).tobytes(),
            bytes(_pad8(end - start)),
            np.ascontiguousarray(runs, "<i4").tobytes(),
        )
    )
    return _FRAME.pack(len(body), crc32c.crc32c(body), 0) + body


@dataclass(slots=True)
class EntityIndex:
    """What an entity index file holds that fits the live segments.

    ``key_data``/``key_offsets`` are the ids numbered by the frames read, in number order
    (Arrow layout); ``runs[k]`` numbers the entity of each run of live segment ``k``, for
    the first ``len(runs)`` live segments. ``ends[k]`` is the byte offset just past the
    frame of segment ``k`` and ``keys_at[k]`` the ids numbered through it.
    """

    key_data: np.ndarray
    key_offsets: np.ndarray
    runs: list[np.ndarray] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    keys_at: list[int] = field(default_factory=list)

    @property
    def keys(self) -> int:
        return len(self.key_offsets) - 1


def _empty() -> EntityIndex:
    return EntityIndex(np.empty(0, np.uint8), np.zeros(1, np.int64))


def read_entity_index(data: bytes | memoryview, live: Sequence[LiveSegment]) -> EntityIndex:
    """The frames of ``data`` that fit ``live`` (the manifest's segments, in order): those
    from the first on, up to the first that is torn, damaged, malformed or another
    segment's. Never raises: what does not fit is simply not used.

    >>> read_entity_index(b"", []).keys
    0
    """
    view = memoryview(data)
    if bytes(view[: len(_MAGIC)]) != _MAGIC:
        return _empty()
    at = len(_MAGIC)
    lengths: list[np.ndarray] = []
    blobs: list[memoryview] = []
    found = _empty()
    keys = 0
    for segment in live:
        if len(view) - at < _FRAME.size:
            break
        size, crc, zero = _FRAME.unpack_from(view, at)
        body = view[at + _FRAME.size : at + _FRAME.size + size]
        if zero or len(body) != size or size < _HEAD.size or crc32c.crc32c(body) != crc:
            break
        frame = _decode(body, segment, keys)
        if frame is None:
            break
        key_lengths, key_bytes, runs = frame
        lengths.append(key_lengths)
        blobs.append(key_bytes)
        keys += len(key_lengths)
        at += _FRAME.size + size
        found.runs.append(runs)
        found.ends.append(at)
        found.keys_at.append(keys)
    if keys:
        found.key_offsets = np.zeros(keys + 1, np.int64)
        np.cumsum(np.concatenate(lengths), out=found.key_offsets[1:])
        found.key_data = np.frombuffer(b"".join(blobs), np.uint8)
    return found


def _decode(
    body: memoryview, segment: LiveSegment, first: int
) -> tuple[np.ndarray, memoryview, np.ndarray] | None:
    """A frame body's (id lengths, id bytes, runs) if it is ``segment``'s and its ids follow
    ``first`` ids; None otherwise."""
    rows, runs, first_key, keys, key_bytes, name_bytes, sha = _HEAD.unpack_from(body)
    name_end = _HEAD.size + name_bytes + _pad8(name_bytes)
    lengths_end = name_end + 4 * keys
    bytes_end = lengths_end + key_bytes + _pad8(key_bytes)
    if (
        min(rows, runs, keys, key_bytes) < 0
        or runs > rows
        or first_key != first
        or bytes_end + 4 * runs != len(body)
        or rows != segment.rows
        or sha != segment.sha256.encode("ascii", "replace")
        or bytes(body[_HEAD.size : _HEAD.size + name_bytes]) != segment.file.encode()
    ):
        return None
    lengths = np.frombuffer(body, "<u4", keys, name_end)
    if int(lengths.sum(dtype=np.int64)) != key_bytes:
        return None
    numbers = np.frombuffer(body, "<i4", runs, bytes_end)
    if runs and (int(numbers.min()) < 0 or int(numbers.max()) >= first + keys):
        return None
    return lengths, body[lengths_end : lengths_end + key_bytes], numbers


class EntityIndexFile:
    """The entity index file of one store folder, as its writer keeps it up to date.

    It remembers what the file holds (after :meth:`read`, then after each write) so that
    a checkpoint appends only its segment's frame. Writes are never fsynced and never
    raise: a failed write leaves the file for the next open to find stale and rewrite.
    """

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        # What the file holds: a frame for each of the first len(_ends) live segments,
        # the k-th ending at byte _ends[k], with _keys_at[k] ids numbered through it.
        # None: unknown (a write failed part way), so only a rewrite from 0 is trusted.
        self._ends: list[int] | None = None
        self._keys_at: list[int] = []

    def read(self, live: Sequence[LiveSegment]) -> EntityIndex:
        """What the file holds that fits ``live``; nothing (no ids, no runs) if it is missing
        or unreadable."""
        try:
            data = _read_whole(self.path)
        except OSError:
            data = np.empty(0, np.uint8)
        found = read_entity_index(data.data, live)
        self._ends, self._keys_at = list(found.ends), list(found.keys_at)
        return found

    def write(
        self,
        live: Sequence[LiveSegment],
        start: int,
        keys: tuple[np.ndarray, np.ndarray],
        runs: list[np.ndarray],
    ) -> None:
        """Frames for live segments ``start`` on: ``runs[i]`` numbers the runs of segment
        ``start + i``, and ``keys`` (data, offsets) is every id numbered so far (a snapshot
        of the entity table's keys: its prefix never changes). The file must hold the frames
        of the segments before ``start`` (as read or written by this object), or
        ``start`` must be 0; otherwise nothing is written."""
        ends = [] if start == 0 else self._ends  # from the first segment: whatever it held
        if self.read_only or ends is None or start > len(ends) or start + len(runs) > len(live):
            return
        at = ends[start - 1] if start else 0
        first = self._keys_at[start - 1] if start else 0
        data, offsets = keys
        if first > len(offsets) - 1:
            return  # not this table's numbering: never the case for the file's writer
        frames = []
        for i, numbers in enumerate(runs):
            frames.append(encode_frame(live[start + i], first, data, offsets[first:], numbers))
            first = len(offsets) - 1
        new_ends, new_keys = ends[:start], self._keys_at[:start]
        # Unknown until the write is through: after a failure no later write trusts what
        # the file holds, and the next open finds whole frames and rewrites the rest.
        self._ends = None
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.ftruncate(fd, at)
                os.lseek(fd, at, os.SEEK_SET)
                if not at:
                    _write_all(fd, _MAGIC)
                    at = len(_MAGIC)
                for frame in frames:
                    _write_all(fd, frame)
                    at += len(frame)
                    new_ends.append(at)
                    new_keys.append(len(offsets) - 1)
            finally:
                os.close(fd)
            self._ends, self._keys_at = new_ends, new_keys


def _read_whole(path: Path) -> np.ndarray:
    """The bytes of ``path``, read into one buffer that the arrays decoded from it view
    (at 100M events over 1M entities the file is ~420 MB: it is not copied again)."""
    with open(path, "rb", buffering=0) as file:
        data = np.empty(os.fstat(file.fileno()).st_size, np.uint8)
        view, got = data.data, 0
        while got < len(data):
            n = file.readinto(view[got:])
            if not n:
                break  # shorter than it was a moment ago: a writer cut it
            got += n
    return data[:got]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
