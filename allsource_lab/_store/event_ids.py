"""Idempotent retries: which stored event, if any, already has a caller's ``event_id``.

The id → sequence index (:class:`~allsource_lab._query.idindex.IdIndex`) is built only
when first needed — an append or batch that brings its own ids, or ``get`` — and then
catches up in bulk with what was stored since: generated ids are unique by construction,
so appends that let the store make their ids never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._ingest import inputs, retries
from allsource_lab._query.idindex import IdIndex
from allsource_lab._storage.arrowbuf import fixed_values
from allsource_lab.events import Event

__all__ = ["EventIds"]


class EventIds:
    """Finds stored events by id; every method runs under the store's lock.

    ``tables_after(through)`` gives the stored Arrow tables that may hold sequences
    above ``through`` and ``event_at(seq)`` the event at a stored sequence: the store
    wires them to its segments, tail and read side.
    """

    def __init__(
        self,
        tables_after: Callable[[int], list[pa.Table]],
        last_sequence: Callable[[], int],
        event_at: Callable[[int], Event],
    ) -> None:
        self._tables_after = tables_after
        self._last_sequence = last_sequence
        self._event_at = event_at
        self._index: IdIndex | None = None

    def index(self) -> IdIndex:
        """The index, brought up to date with every stored event."""
        index = self._index
        if index is None:
            index = self._index = IdIndex()
        if index.through < self._last_sequence():
            for table in self._tables_after(index.through):
                seq = table.column("sequence")
                part = table.filter(pc.greater(seq, index.through)).sort_by("sequence")
                ids = part.column("event_id").combine_chunks().storage
                raw = np.frombuffer(ids.buffers()[1], np.uint8)[
                    ids.offset * 16 : (ids.offset + len(ids)) * 16
                ]
                index.extend(raw, fixed_values(part.column("sequence")))
        return index

    def lookup(self, event_id: bytes) -> int:
        """The sequence of the event with this id, or -1."""
        return self.index().lookup(event_id)

    def find_retry(
        self, eid: bytes, event_type: str, entity_id: str, pb: bytes, mb: bytes, ts: int | None
    ) -> Event | None:
        """The stored event a single append with this id repeats, or None if the id is new.

        Raises:
            InvalidEvent: the id is stored with other content (not a retry).
        """
        seq = self.lookup(eid)
        if seq < 0:
            return None
        stored = self._event_at(seq)
        retries.check_same(stored, event_type, entity_id, pb, mb, ts)
        return stored

    def split_batch(self, batch: inputs.BatchInput) -> tuple[inputs.BatchInput | None, np.ndarray]:
        """(the rows whose ids are new, or None; sequences of the exact retries)."""
        return retries.split_batch(
            batch, lambda ids: self.index().lookup_many(ids), self._event_at, self.rows_at
        )

    def rows_at(self, sequences: np.ndarray) -> pa.Table:
        """The stored rows at these sequences (each one stored), in their order."""
        wanted = pa.array(np.unique(sequences))
        parts = []
        for table in self._tables_after(int(wanted[0].as_py()) - 1):
            parts.append(table.filter(pc.is_in(table.column("sequence"), wanted)))
        found = pa.concat_tables(parts).sort_by("sequence")
        at = np.searchsorted(fixed_values(found.column("sequence")), sequences)
        return found.take(pa.array(at, pa.int64()))
