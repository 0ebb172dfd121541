"""The unsealed tail: events accepted since the last checkpoint, in sequence order.

Single appends add their framed WAL record to a byte buffer (one ``bytearray`` extend
per event, and ~180 bytes of memory instead of a dozen Python objects); the buffer is
decoded into an Arrow batch by a kernel only when someone reads. Batches arrive as Arrow
already and are kept as they are.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from allsource_lab.events import EVENT_SCHEMA
from allsource_lab.records import decode_singles, to_record_batch

__all__ = ["Tail"]


class Tail:
    """Arrow record batches plus a buffer of not-yet-decoded single-event records."""

    __slots__ = ("chunks", "count", "generation", "pending", "pending_count")

    def __init__(self, chunks: list[pa.RecordBatch] | None = None) -> None:
        self.chunks: list[pa.RecordBatch] = list(chunks or [])
        self.pending = bytearray()
        self.pending_count = 0
        self.count = sum(c.num_rows for c in self.chunks)
        # Bumped whenever chunks are merged, so a reader holding rows by chunk knows to
        # look again (appending a chunk leaves earlier ones as they were).
        self.generation = 0

    def add_batch(self, batch: pa.RecordBatch) -> None:
        self.freeze()
        self.chunks.append(batch)
        self.count += batch.num_rows

    def freeze(self) -> None:
        """Decode pending single records into a batch (so readers see Arrow only)."""
        if not self.pending_count:
            return
        buf = np.frombuffer(self.pending, np.uint8)
        batch = to_record_batch(decode_singles(buf, 0, len(buf)))
        del buf  # release the export before the bytearray is dropped
        self.pending = bytearray()
        self.pending_count = 0
        self.chunks.append(batch)
        # Many tiny chunks (single appends between reads) make every read slower.
        if len(self.chunks) > 64:
            merged = pa.Table.from_batches(self.chunks, EVENT_SCHEMA).combine_chunks()
            self.chunks = merged.to_batches()
            self.generation += 1

    def table(self) -> pa.Table:
        self.freeze()
        return pa.Table.from_batches(self.chunks, EVENT_SCHEMA)
