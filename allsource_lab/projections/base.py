"""What a projection is, and the columnar batch of events it is fed.

A projection folds events, in sequence order, into a view. It sees each event once per
run: live (inside ``append``/``append_batch``), during catch-up, or in a replay. The
runner (:mod:`allsource_lab.projections.runner`) prefers ``apply_batch`` and feeds it an
:class:`EventBatch`, which materializes only what the projection asks for: counting by type
reads two integer columns of the index, ``payloads()`` decodes all payloads in one call.

A projection is durable when it can write its state as JSON (``dump_state``) and read it
back (``load_state``): the store then keeps that state together with the last sequence
applied, and a projection added again under the same name after a reopen resumes there.
Nothing stored is ever executed or unpickled: state is JSON only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from allsource_lab.errors import InvalidArgument
from allsource_lab.eventframe import events_from_table
from allsource_lab.events import Event

if TYPE_CHECKING:
    import pandas as pd

_NO_POSITIONS = np.empty(0, np.int64)

__all__ = ["BatchSource", "EventBatch", "EventList", "Projection"]


class BatchSource(Protocol):
    """What a batch needs from the store (the store implements it)."""

    def _rows(self, positions: np.ndarray) -> pa.Table: ...

    def _payload_list(self, positions: np.ndarray) -> list[dict[str, Any]]: ...

    def _column(self, positions: np.ndarray, name: str) -> pa.ChunkedArray: ...

    def _position_codes(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def _code_names(self, kind: str, codes: np.ndarray) -> list[str]: ...

    def _positions_of(self, sequences: np.ndarray) -> np.ndarray: ...


class EventBatch:
    """Events in sequence order, as columns materialized on demand.

    ``len(batch)``, ``sequences``, ``first_sequence``/``last_sequence`` cost nothing;
    ``to_arrow()`` builds the table (the columns of docs/format.md) once; ``payloads()``
    decodes the payloads in one call; ``count_by_type()``/``count_by_entity()`` read the
    index only. Iterating yields :class:`~allsource_lab.events.Event` objects. Payloads
    are upcast to their subject's newest schema when upcasters are registered.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append_batch([{"event_type": "a", "entity_id": "x", "payload": {"n": 1}},
    ...                         {"event_type": "b", "entity_id": "x", "payload": {"n": 2}}])
    >>> batch = store._event_batch(0)
    >>> len(batch), batch.count_by_type(), [e.version for e in batch]
    (2, {'a': 1, 'b': 1}, [1, 2])
    """

    __slots__ = ("_payloads", "_source", "_table", "positions", "sequences")

    def __init__(self, source: BatchSource, positions: np.ndarray, sequences: np.ndarray) -> None:
        self._source = source
        self.positions = positions
        self.sequences = sequences
        self._table: pa.Table | None = None
        self._payloads: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def first_sequence(self) -> int:
        return int(self.sequences[0])

    @property
    def last_sequence(self) -> int:
        return int(self.sequences[-1])

    def to_arrow(self) -> pa.Table:
        if self._table is None:
            self._table = self._source._rows(self.positions)
        return self._table

    def to_pandas(self) -> pd.DataFrame:
        """The batch as a DataFrame; payloads and metadata stay JSON text."""
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    def column(self, name: str) -> pa.ChunkedArray:
        """One column (named as in docs/format.md), without building the others."""
        if self._table is not None or name in ("payload", "metadata"):
            return self.to_arrow().column(name)  # payloads: upcast with the whole table
        return self._source._column(self.positions, name)

    def payloads(self) -> list[dict[str, Any]]:
        """Every payload decoded, in order (one decode for the whole batch)."""
        if self._payloads is None:
            self._payloads = self._source._payload_list(self.positions)
        return self._payloads

    def event_types(self) -> list[str]:
        """Each event's type, in order."""
        return self._names("type", self._source._position_codes(self.positions)[0])

    def entity_ids(self) -> list[str]:
        """Each event's entity id, in order."""
        return self._names("entity", self._source._position_codes(self.positions)[1])

    def count_by_type(self) -> dict[str, int]:
        return self._counts("type", self._source._position_codes(self.positions)[0])

    def count_by_entity(self) -> dict[str, int]:
        return self._counts("entity", self._source._position_codes(self.positions)[1])

    def _names(self, kind: str, codes: np.ndarray) -> list[str]:
        if not len(codes):
            return []
        present, inverse = np.unique(codes, return_inverse=True)
        names = self._source._code_names(kind, present)
        return [names[i] for i in inverse.tolist()]

    def _counts(self, kind: str, codes: np.ndarray) -> dict[str, int]:
        if not len(codes):
            return {}
        counts = np.bincount(codes)  # codes are small dense numbers: O(n), no sort
        present = np.flatnonzero(counts)
        names = self._source._code_names(kind, present)
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

    def __init__(self, source: BatchSource, events: list[Event]) -> None:
        sequences = np.array([e.sequence for e in events], np.int64)
        super().__init__(source, _NO_POSITIONS, sequences)
        self._events = events

    def __len__(self) -> int:
        return len(self._events)

    def to_arrow(self) -> pa.Table:
        if self._table is None:
            self.positions = self._source._positions_of(self.sequences)
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


class Projection:
    """Folds events into a view. Subclass it and define ``apply`` (and, for speed,
    ``apply_batch``); define ``dump_state``/``load_state`` to make it durable.

    ``name`` identifies the projection in the store (its durable state is kept under it);
    ``event_types`` (optional) limits which events it is fed.

    Raises:
        InvalidArgument: ``name`` is not a non-empty str, or an event type is not one.

    >>> class Totals(Projection):
    ...     def __init__(self):
    ...         super().__init__("totals", event_types=["order.placed"])
    ...     def reset(self):
    ...         self.total = 0.0
    ...     def apply(self, event):
    ...         self.total += event.payload["amount"]
    ...     def state(self, key=None):
    ...         return self.total
    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("order.placed", "o-1", {"amount": 2.5})
    >>> p = store.projections.add(Totals())
    >>> _ = store.append("order.placed", "o-2", {"amount": 4.0})
    >>> p.state()
    6.5
    """

    name: str
    event_types: tuple[str, ...] | None

    def __init__(self, name: str, event_types: Sequence[str] | str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a projection needs a non-empty name (a str), not {name!r}")
        if isinstance(event_types, str):
            event_types = [event_types]
        if event_types is not None:
            event_types = tuple(event_types)
            if not all(isinstance(t, str) and t for t in event_types):
                raise InvalidArgument(f"event_types must be non-empty strings, not {event_types!r}")
        self.name = name
        self.event_types = event_types
        self.reset()

    def reset(self) -> None:
        """Forget everything applied (the state of a projection that saw no event)."""

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        raise NotImplementedError(f"{type(self).__name__} must define apply(event)")

    def apply_batch(self, batch: EventBatch) -> None:
        """Fold a batch in, in order. The default calls ``apply`` for each event;
        override it with columnar work to go faster (the runner always calls this)."""
        for event in batch:
            self.apply(event)

    def state(self, key: Any = None) -> Any:
        """The view, or the part of it under ``key``."""
        raise NotImplementedError(f"{type(self).__name__} must define state(key=None)")

    def dump_state(self) -> Any:
        """The state as JSON-able data, or ``None`` if this projection is not durable."""
        return None

    def load_state(self, data: Any) -> None:
        """Take back what ``dump_state`` returned."""
        raise NotImplementedError(f"{type(self).__name__} must define load_state(data)")

    @property
    def durable(self) -> bool:
        """Whether the store can keep this projection's state across reopen."""
        return type(self).dump_state is not Projection.dump_state

    def __repr__(self) -> str:
        types = "" if self.event_types is None else f", event_types={list(self.event_types)}"
        return f"{type(self).__name__}({self.name!r}{types})"
