"""The unsealed tail: events accepted since the last checkpoint, in sequence order.

Single appends add their framed WAL record to one byte buffer, ``log`` (~180 bytes of
memory per event instead of a dozen Python objects). The same bytes serve twice: the WAL
writer takes what it has not written yet, and readers decode what they have not seen yet
into an Arrow batch (a kernel, only when someone reads). Bytes both consumers are done
with are dropped from the front. Batches arrive as Arrow already and are kept as they are.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from allsource_lab.events import EVENT_SCHEMA
from allsource_lab.records import decode_singles, to_record_batch

__all__ = ["Tail"]

# Below this, bytes already written and decoded stay in the log until it is empty: a
# front deletion is cheap, but not free, and small logs empty often.
_TRIM_BYTES = 1 << 20


class Tail:
    """Arrow record batches plus the log of single-event records.

    ``log[written:]`` has not been handed to the WAL writer yet; ``log[decoded:]`` has not
    been decoded into ``chunks`` yet. Both are changed only under the store's lock.
    """

    __slots__ = ("chunks", "decoded", "dropped", "generation", "log", "written")

    def __init__(self, chunks: list[pa.RecordBatch] | None = None) -> None:
        self.chunks: list[pa.RecordBatch] = list(chunks or [])
        self.log = bytearray()
        self.written = 0
        self.decoded = 0
        self.dropped = 0  # bytes removed from the front of ``log`` so far
        # Bumped whenever chunks are merged, so a reader holding rows by chunk knows to
        # look again (appending a chunk leaves earlier ones as they were).
        self.generation = 0

    @property
    def unwritten(self) -> int:
        """Bytes of single-event records the WAL writer has not taken yet."""
        return len(self.log) - self.written

    def take_unwritten(self) -> bytearray:
        """A copy of the records not yet handed to the WAL writer, now marked handed."""
        log = self.log
        data = log[self.written :]
        self.written = len(log)
        done = min(self.written, self.decoded)
        if done == len(log):
            del log[:]  # in place: the store's append path holds this very buffer
            self.written = self.decoded = 0
            self.dropped += done
        elif done >= _TRIM_BYTES:
            del log[:done]
            self.written -= done
            self.decoded -= done
            self.dropped += done
        return data

    def add_batch(self, batch: pa.RecordBatch) -> None:
        self.freeze()
        self.chunks.append(batch)

    def freeze(self) -> None:
        """Decode the records not decoded yet into a batch (so readers see Arrow only)."""
        end = len(self.log)
        if self.decoded == end:
            return
        buf = np.frombuffer(self.log, np.uint8)
        batch = to_record_batch(decode_singles(buf, self.decoded, end))
        del buf  # release the export: the log must stay resizable
        self.decoded = end
        self.chunks.append(batch)
        # Many tiny chunks (single appends between reads) make every read slower.
        if len(self.chunks) > 64:
            merged = pa.Table.from_batches(self.chunks, EVENT_SCHEMA).combine_chunks()
            self.chunks = merged.to_batches()
            self.generation += 1

    def table(self) -> pa.Table:
        self.freeze()
        return pa.Table.from_batches(self.chunks, EVENT_SCHEMA)
