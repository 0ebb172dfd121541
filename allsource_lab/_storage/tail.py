"""The unsealed tail: events accepted since the last checkpoint, in sequence order.

Single appends add their framed WAL records to one byte buffer, ``log`` (~180 bytes of
memory per event instead of a dozen Python objects). The same bytes serve twice: the WAL
writer takes the buffer whole (a fresh one takes its place: no copy, and no buffer grows
past what is appended between two writes), and readers decode what they have not seen
yet into an Arrow batch (a kernel, only when someone reads). A buffer goes once both are
done with it. Batches arrive as Arrow already and are kept as they are.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from allsource_lab._storage.records import decode_singles, to_record_batch
from allsource_lab.events import EVENT_SCHEMA

__all__ = ["Numbered", "Tail"]


class Numbered(NamedTuple):
    """What the writer worked out for a batch's rows, kept for the reader that indexes
    them: the entity numbers (of the store's key table) and the event types as codes
    into ``types``, the batch's distinct types. Saves hashing every row twice."""

    entities: np.ndarray
    type_codes: np.ndarray
    types: pa.Array


# Buffers decoded as one chunk hold at most about this many bytes of records (whole
# buffers: a chunk may pass it by one buffer), far below Arrow's 2 GiB per string column.
_GROUP_BYTES = 64 * 1024 * 1024


class Tail:
    """Arrow record batches plus the single-event records not decoded yet.

    ``log`` has not been handed to the WAL writer yet, and ``log[decoded:]`` has not
    been decoded into ``chunks``; ``handed`` holds the buffers the writer took whose
    records are not all decoded yet, each with how much of it is. All of it changes only
    under the store's lock.
    """

    __slots__ = (
        "chunks",
        "decoded",
        "dropped",
        "generation",
        "handed",
        "handed_bytes",
        "log",
        "numbered",
    )

    def __init__(self, chunks: list[pa.RecordBatch] | None = None) -> None:
        self.chunks: list[pa.RecordBatch] = list(chunks or [])
        # Per chunk, its Numbered if it came as a batch whose writer numbered it.
        self.numbered: list[Numbered | None] = [None] * len(self.chunks)
        self.log = bytearray()
        self.decoded = 0
        self.handed: list[tuple[bytearray, int]] = []
        self.handed_bytes = 0
        self.dropped = 0  # bytes of records both written and decoded, let go
        # Bumped whenever chunks are merged, so a reader holding rows by chunk knows to
        # look again (appending a chunk leaves earlier ones as they were).
        self.generation = 0

    @property
    def unwritten(self) -> int:
        """Bytes of single-event records the WAL writer has not taken yet."""
        return len(self.log)

    @property
    def size(self) -> int:
        """Bytes of single-event records ever added."""
        return self.dropped + self.handed_bytes + len(self.log)

    @property
    def held(self) -> int:
        """Bytes of single-event records in memory."""
        return self.handed_bytes + len(self.log)

    def take_unwritten(self) -> bytearray:
        """The records not yet handed to the WAL writer: the buffer itself, which nobody
        appends to again (``log`` is a new, empty one)."""
        data = self.log
        if self.decoded < len(data):
            self.handed.append((data, self.decoded))
            self.handed_bytes += len(data)
        else:
            self.dropped += len(data)
        self.log = bytearray()
        self.decoded = 0
        return data

    def add_batch(self, batch: pa.RecordBatch, numbered: Numbered | None = None) -> None:
        self.freeze()
        self.chunks.append(batch)
        self.numbered.append(numbered)

    def freeze(self) -> None:
        """Decode the records not decoded yet into batches (so readers see Arrow only).

        Records left in several buffers (the WAL writer took them while nobody read: a
        checkpoint finds ~15 of them per 100K events) are copied into one and decoded
        together, up to ``_GROUP_BYTES`` at a time. The CPU is about the same (the copy
        costs what the calls saved: ~25-30 ms per 100K events either way, measured), but
        it is one chunk for the reader to index and the seal to sort, and two kernel
        calls, each of which lets another thread take the GIL, instead of ~30.
        """
        end = len(self.log)
        parts = [(data, done, len(data)) for data, done in self.handed]
        if self.decoded < end:
            parts.append((self.log, self.decoded, end))
        group: list[tuple[bytearray, int, int]] = []
        size = 0
        for part in parts:
            group.append(part)
            size += part[2] - part[1]
            if size >= _GROUP_BYTES:
                self._decode_group(group)
                group, size = [], 0
        if group:
            self._decode_group(group)
        self.dropped += self.handed_bytes
        self.handed = []
        self.handed_bytes = 0
        self.decoded = end
        # Many tiny chunks (single appends between reads) make every read slower.
        if len(self.chunks) > 64:
            merged = pa.Table.from_batches(self.chunks, EVENT_SCHEMA).combine_chunks()
            self.chunks = merged.to_batches()
            self.numbered = [None] * len(self.chunks)
            self.generation += 1

    def _decode_group(self, group: list[tuple[bytearray, int, int]]) -> None:
        if len(group) == 1:
            self._decode(*group[0])
            return
        views = [memoryview(data)[start:end] for data, start, end in group]
        joined = bytearray().join(views)
        for view in views:
            view.release()  # the log must stay resizable
        self._decode(joined, 0, len(joined))

    def _decode(self, data: bytearray, start: int, end: int) -> None:
        buf = np.frombuffer(data, np.uint8)
        batch = to_record_batch(decode_singles(buf, start, end))
        del buf  # release the export: the log must stay resizable
        self.chunks.append(batch)
        self.numbered.append(None)

    def table(self) -> pa.Table:
        self.freeze()
        return pa.Table.from_batches(self.chunks, EVENT_SCHEMA)
