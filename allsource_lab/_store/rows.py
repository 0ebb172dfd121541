"""Rows by query and by position: what ``events()``, ``get()``, frames and batches read.

An :class:`~allsource_lab.eventframe.EventFrame` or an
:class:`~allsource_lab.eventbatch.EventBatch` holds positions (ranks in sequence order)
and asks this part for their rows, columns, payloads or type/entity codes; it implements
the :class:`~allsource_lab.eventframe.RowSource` they read through. Payloads are upcast
to their subject's newest shape when upcasters are registered (stored bytes stay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from allsource_lab._ingest import inputs
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.event_ids import EventIds
from allsource_lab._store.log import EventLog
from allsource_lab._store.sealing import Sealer
from allsource_lab.errors import NotFound
from allsource_lab.eventframe import EventFrame, Query, events_from_table
from allsource_lab.events import EVENT_SCHEMA, Event

if TYPE_CHECKING:
    from allsource_lab.schemas.registry import SchemaRegistry

__all__ = ["Rows"]


class Rows:
    """The read side's rows, under the store's lock."""

    def __init__(
        self, log: EventLog, sealer: Sealer, entities: EntityTable, event_ids: EventIds
    ) -> None:
        self.log = log
        self.sealer = sealer
        self.entities = entities
        self.event_ids = event_ids
        self.schemas: SchemaRegistry | None = None  # set once the registry is open
        self.upcasting = False  # upcasters registered: payloads change on the way out

    # -- RowSource -----------------------------------------------------------------------

    def positions(self, query: Query) -> np.ndarray:
        """Positions answering ``query`` (an EventFrame's first step)."""
        entity_id = query.entity_id
        with self.log.lock:
            reader = self.sealer.reader
            reader.sync(self.log.tail)
            entity = None
            if entity_id is not None:
                known = self.entities.by_id.get(entity_id)
                entity = known[0] if known is not None else self.entities.number_or_none(entity_id)
            return reader.select(query, entity)

    def rows(self, positions: np.ndarray) -> pa.Table:
        """The events at ``positions`` as Arrow (an EventFrame's second step)."""
        with self.log.lock:
            table = self.sealer.reader.table(positions)
            return self.upcast_table(table) if self.upcasting else table

    def column(self, positions: np.ndarray, name: str) -> pa.ChunkedArray:
        """One column of the events at ``positions``, without building the others."""
        with self.log.lock:
            return self.sealer.reader.table(positions, [name]).column(0)

    def payload_list(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The payloads at ``positions``, decoded in one call."""
        with self.log.lock:
            return self.payloads(positions)

    def codes(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Type and entity numbers of the events at ``positions``."""
        with self.log.lock:
            index = self.sealer.reader.index
            return index.typ.view[positions], index.ent.view[positions]

    def code_names(self, kind: str, codes: np.ndarray) -> list[str]:
        """The names of type (``kind="type"``) or entity numbers."""
        with self.log.lock:
            keys = self.sealer.reader.type_keys if kind == "type" else self.entities.keys
            data, offsets = keys.key_buffers()
        # One bulk take over a zero-copy Arrow view of every key (keys are valid UTF-8:
        # ids with lone surrogates are refused at append).
        view = pa.LargeStringArray.from_buffers(
            len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
        )
        names: list[str] = view.take(pa.array(codes, pa.int64())).to_pylist()
        return names

    def positions_of(self, sequences: np.ndarray) -> np.ndarray:
        """The positions holding ``sequences`` (all stored)."""
        with self.log.lock:
            reader = self.sealer.reader
            reader.sync(self.log.tail)
            return np.searchsorted(reader.index.seq.view, sequences).astype(np.int64)

    def events(self, entity_id: str | None = None, limit: int | None = None) -> EventFrame:
        """A frame of ``entity_id``'s first ``limit`` events, as ``store.events`` makes
        it: what a frame's display folds per-row states from."""
        query = Query(entity_id=entity_id, limit=limit)
        query.check()
        return EventFrame(self, query)

    # -- under the lock ------------------------------------------------------------------

    def payloads(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The payloads at ``positions``, decoded (and upcast when upcasters exist)."""
        reader = self.sealer.reader
        if not self.upcasting:
            return orjson.loads(reader.payload_array(positions))  # type: ignore[no-any-return]
        table = self.upcast_table(reader.table(positions))
        texts = table.column("payload").combine_chunks().storage.to_pylist()
        return [orjson.loads(t) for t in texts]

    def upcast_table(self, table: pa.Table) -> pa.Table:
        """``table`` with payloads upcast to their subjects' newest shape."""
        schemas = self.schemas
        assert schemas is not None  # upcasting is only set once the registry is open
        upcasters = schemas.upcasters
        types = table.column("event_type").to_pylist()
        versions = table.column("schema_version").to_pylist()
        texts = table.column("payload").combine_chunks().storage.to_pylist()
        changed = False
        for i, (name, version) in enumerate(zip(types, versions, strict=True)):
            if version is not None and (name, version) in upcasters:
                payload = schemas.upcast(name, version, orjson.loads(texts[i]))
                texts[i] = orjson.dumps(payload).decode()
                changed = True
        if not changed:
            return table
        kind = EVENT_SCHEMA.field("payload").type
        column = pa.ExtensionArray.from_storage(kind, pa.array(texts, pa.string()))
        return table.set_column(EVENT_SCHEMA.get_field_index("payload"), "payload", column)

    def event_at(self, seq: int) -> Event:
        """The stored event with sequence ``seq`` (under the lock).

        Raises:
            NotFound: no such sequence.
        """
        reader = self.sealer.reader
        reader.sync(self.log.tail)
        position = reader.position_of_sequence(seq)
        if position < 0:
            raise NotFound(f"no event with sequence {seq}")
        return reader.event(position)

    # -- get -----------------------------------------------------------------------------

    def get(self, event_id: Any) -> Event:
        """The event with this id.

        Raises:
            NotFound: no such event.
        """
        eid = inputs.parse_event_id(event_id)
        lock = self.log.lock
        with lock:
            seq = self.event_ids.lookup(eid)
        if seq < 0:
            raise NotFound(f"no event with event_id {event_id}")
        with lock:
            event = self.event_at(seq)
        if self.upcasting and event.schema_version is not None:
            with lock:
                reader = self.sealer.reader
                position = reader.position_of_sequence(seq)
                table = self.upcast_table(reader.table(np.array([position], np.int64)))
            event = events_from_table(table)[0]
        return event
