"""``EventBatch``: events in sequence order, as columns materialized on demand.

What projections, replays and subscriptions are fed (``store.feed.batch(...)``): positions
on the read side plus the sequences at them; rows, columns, payloads and type/entity codes
are read through the :class:`~allsource_lab.eventframe.RowSource` only when asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from allsource_lab.eventframe import RowSource, events_from_table, pandas_frame, polars_frame
from allsource_lab.events import Event

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

_NO_POSITIONS = np.empty(0, np.int64)

__all__ = ["EventBatch", "EventList"]


class EventBatch:
    """Events in sequence order, as columns materialized on demand.

    ``len(batch)``, ``sequences``, ``first_sequence``/``last_sequence`` cost nothing;
    ``to_arrow()`` builds the table (the columns of an event, README) once; ``payloads()``
    decodes the payloads in one call; ``count_by_type()``/``count_by_entity()`` read the
    index only. Iterating yields :class:`~allsource_lab.events.Event` objects. Payloads
    are upcast to their subject's newest schema when upcasters are registered.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append_batch([{"event_type": "a", "entity_id": "x", "payload": {"n": 1}},
    ...                         {"event_type": "b", "entity_id": "x", "payload": {"n": 2}}])
    >>> batch = store.feed.batch(0)
    >>> len(batch), batch.count_by_type(), [e.version for e in batch]
    (2, {'a': 1, 'b': 1}, [1, 2])
    """

    __slots__ = ("_payloads", "_source", "_table", "positions", "sequences")

    def __init__(self, source: RowSource, positions: np.ndarray, sequences: np.ndarray) -> None:
        self._source = source
        self.positions = positions
        self.sequences = sequences
        self._table: pa.Table | None = None
        self._payloads: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def source(self) -> RowSource:
        """Where the rows come from: the store's feed (``store.feed``)."""
        return self._source

    def take(self, indices: np.ndarray) -> EventBatch:
        """The events at ``indices`` (0-based, ascending) of this batch, as a batch."""
        return EventBatch(self._source, self.positions[indices], self.sequences[indices])

    @property
    def first_sequence(self) -> int:
        return int(self.sequences[0])

    @property
    def last_sequence(self) -> int:
        return int(self.sequences[-1])

    def to_arrow(self) -> pa.Table:
        if self._table is None:
            self._table = self._source.rows(self.positions)
        return self._table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The batch as an Arrow C stream (the Arrow PyCapsule interface), as
        :meth:`EventFrame.__arrow_c_stream__ <allsource_lab.EventFrame.__arrow_c_stream__>`
        gives a frame: ``pyarrow.table(batch)``, ``polars.DataFrame(batch)`` and DuckDB
        read :meth:`to_arrow`'s buffers without a copy."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_polars(self) -> pl.DataFrame:
        """The batch as a polars DataFrame, as ``EventFrame.to_polars`` gives it.

        Raises:
            ImportError: polars is not installed (``pip install 'allsource-lab[polars]'``).
        """
        return polars_frame(self.to_arrow())

    def to_pandas(
        self, *, json: str = "objects", expand: str | Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The batch as a DataFrame, as ``EventFrame.to_pandas`` gives it.

        Payloads and metadata are dicts (``json="text"``: the JSON text as stored);
        ``expand="payload"`` spreads payload fields into ``payload.<field>`` columns (see
        :func:`~allsource_lab.eventframe.pandas_frame`). Payloads come out upcast when
        upcasters are registered.

        Raises:
            InvalidArgument: ``json`` is not ``"objects"``/``"text"``, or ``expand`` names
                something other than ``"payload"`` and ``"metadata"``.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append_batch([{"event_type": "a", "entity_id": "x", "payload": {"n": 1}},
        ...                         {"event_type": "b", "entity_id": "x", "payload": {}}])
        >>> batch = store.feed.batch(0)
        >>> batch.to_pandas()["payload"].tolist()
        [{'n': 1}, {}]
        >>> batch.to_pandas(expand="payload")["payload.n"].isna().tolist()
        [False, True]
        """
        return pandas_frame(self.to_arrow(), json=json, expand=expand)

    def column(self, name: str) -> pa.ChunkedArray:
        """One column (by an event's column names), without building the others."""
        if self._table is not None or name in ("payload", "metadata"):
            return self.to_arrow().column(name)  # payloads: upcast with the whole table
        return self._source.column(self.positions, name)

    def payloads(self) -> list[dict[str, Any]]:
        """Every payload decoded, in order (one decode for the whole batch)."""
        if self._payloads is None:
            self._payloads = self._source.payload_list(self.positions)
        return self._payloads

    def event_types(self) -> list[str]:
        """Each event's type, in order."""
        return self._names("type", self._source.codes(self.positions)[0])

    def entity_ids(self) -> list[str]:
        """Each event's entity id, in order."""
        return self._names("entity", self._source.codes(self.positions)[1])

    def count_by_type(self) -> dict[str, int]:
        return self._counts("type", self._source.codes(self.positions)[0])

    def count_by_entity(self) -> dict[str, int]:
        return self._counts("entity", self._source.codes(self.positions)[1])

    def _names(self, kind: str, codes: np.ndarray) -> list[str]:
        if not len(codes):
            return []
        present, inverse = np.unique(codes, return_inverse=True)
        names = self._source.code_names(kind, present)
        return [names[i] for i in inverse.tolist()]

    def _counts(self, kind: str, codes: np.ndarray) -> dict[str, int]:
        if not len(codes):
            return {}
        counts = np.bincount(codes)  # codes are small dense numbers: O(n), no sort
        present = np.flatnonzero(counts)
        names = self._source.code_names(kind, present)
        return dict(zip(names, counts[present].tolist(), strict=True))

    def __iter__(self) -> Iterator[Event]:
        return iter(events_from_table(self.to_arrow()))

    def split(self) -> list[EventBatch]:
        """One batch per event, in order."""
        return [
            EventBatch(self._source, self.positions[i : i + 1], self.sequences[i : i + 1])
            for i in range(len(self))
        ]

    def __repr__(self) -> str:
        if not len(self):
            return "EventBatch(empty)"
        return (
            f"EventBatch({len(self)} events, sequences {self.first_sequence}..{self.last_sequence})"
        )


class EventList(EventBatch):
    """A batch of events already in hand: what a single ``append`` just stored.

    Feeding live followers from the event itself spares the read side's catch-up with
    the tail (~100 us per append); columns that the events do not carry come from the
    store as for any batch.
    """

    __slots__ = ("_events",)

    def __init__(self, source: RowSource, events: list[Event]) -> None:
        sequences = np.array([e.sequence for e in events], np.int64)
        super().__init__(source, _NO_POSITIONS, sequences)
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    def to_arrow(self) -> pa.Table:
        if self._table is None:
            self.positions = self._source.positions_of(self.sequences)
        return super().to_arrow()

    def column(self, name: str) -> pa.ChunkedArray:
        if name in ("sequence", "version", "entity_id", "event_type", "partition"):
            return pa.chunked_array([pa.array([getattr(e, name) for e in self._events])])
        return self.to_arrow().column(name)

    def payloads(self) -> list[dict[str, Any]]:
        return [e.payload for e in self._events]

    def event_types(self) -> list[str]:
        return [e.event_type for e in self._events]

    def entity_ids(self) -> list[str]:
        return [e.entity_id for e in self._events]

    def count_by_type(self) -> dict[str, int]:
        return dict(Counter(self.event_types()))

    def count_by_entity(self) -> dict[str, int]:
        return dict(Counter(self.entity_ids()))

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def split(self) -> list[EventBatch]:
        return [EventList(self._source, [e]) for e in self._events]
