"""event_id → sequence, built only when needed (caller-supplied ids and ``get``).

Generated ids need no duplicate check (they are unique by construction), so appends do
not pay for this index; it catches up in bulk the first time it is asked.
"""

from __future__ import annotations

from array import array

import numpy as np

from allsource_lab._kernels.keytable import KeyTable

__all__ = ["IdIndex"]


class IdIndex:
    """Maps 16-byte event ids to sequences; ``through`` is the last sequence indexed."""

    def __init__(self) -> None:
        self._table = KeyTable()
        self._seqs = array("q")
        self.through = 0

    def extend(self, ids: np.ndarray, seqs: np.ndarray) -> None:
        """Add events (ids as uint8, 16 per event) with their sequences, all > through."""
        n = len(seqs)
        if not n:
            return
        offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int64)
        numbers = self._table.intern_many(np.ascontiguousarray(ids, np.uint8), offsets)
        # Ids are unique in a store, so every number is new and in row order.
        assert int(numbers[-1]) == len(self._seqs) + n - 1
        self._seqs.extend(np.asarray(seqs, np.int64).tolist())
        self.through = int(seqs[-1])

    def lookup(self, event_id: bytes) -> int:
        """The sequence of ``event_id``, or -1."""
        number = self._table.lookup(event_id)
        return -1 if number < 0 else self._seqs[number]

    def lookup_many(self, ids: np.ndarray) -> np.ndarray:
        """Sequences of many ids (uint8, 16 per id); -1 where unknown."""
        n = len(ids) // 16
        numbers = self._table.lookup_many(
            np.ascontiguousarray(ids, np.uint8), np.arange(0, 16 * n + 1, 16, dtype=np.int64)
        )
        seqs = np.frombuffer(self._seqs, np.int64) if len(self._seqs) else np.empty(0, np.int64)
        out = np.full(n, -1, np.int64)
        found = numbers >= 0
        out[found] = seqs[numbers[found]]
        return out
