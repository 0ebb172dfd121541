"""The read side: Arrow pieces, the event index over them, and selecting rows by query.

The store's events live in *pieces*: one Arrow record batch per sealed segment (sorted by
entity) and one per chunk of the unsealed tail (in sequence order). Positions (ranks in
sequence order, see :mod:`allsource_lab._query.index`) map to a piece by range and to a row in it
through the index's ``row`` column. Every read here runs under the store's lock: catching
up with the tail and answering must see one state of the pieces.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from allsource_lab._kernels import postings as kernels
from allsource_lab._kernels import timetravel
from allsource_lab._kernels.keytable import KeyTable
from allsource_lab._query.index import EventIndex
from allsource_lab._storage.arrowbuf import string_buffers
from allsource_lab._storage.tail import Tail
from allsource_lab.eventframe import Query, events_from_table
from allsource_lab.events import EVENT_SCHEMA, Event

__all__ = ["Reader", "one_batch"]

_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)
_PAYLOAD = EVENT_SCHEMA.get_field_index("payload")
_EVENT_ID = EVENT_SCHEMA.get_field_index("event_id")
_EMPTY = np.empty(0, np.int64)
_NO_BYTES = np.empty(0, np.uint8)


class Reader:
    """Pieces of Arrow data plus the index that finds rows in them."""

    def __init__(self, entity_keys: KeyTable) -> None:
        self.index = EventIndex()
        # Shared with the write path, which interns every entity before it is stored.
        self.entity_keys = entity_keys
        self.type_keys = KeyTable(64)
        self.pieces: list[pa.RecordBatch] = []
        self._bases: list[int] = []  # first position of each piece
        self._bases_np = np.empty(0, np.int64)
        self._texts: list[tuple[np.ndarray, np.ndarray] | None] = []
        self.sealed = 0  # the first `sealed` pieces are segments, the rest tail chunks
        self.sealed_end = 0  # positions below this are in segments
        self._tail_generation = -1
        self._type_numbers: dict[str, int] = {}

    # -- building ------------------------------------------------------------------------

    def add_segment(self, batch: pa.RecordBatch, entity_numbers: np.ndarray | None = None) -> None:
        """Index a sealed segment (rows sorted by entity) as the next range of positions.

        Only before the first ``sync``: segments come before every tail position.
        """
        if not batch.num_rows:
            return
        seq = batch.column("sequence").to_numpy()
        order = kernels.place(seq, int(seq.min()))
        if order[0] < 0:
            order = np.argsort(seq, kind="stable")  # sequence gaps (after a salvage)
        self._add(batch, order, entity_numbers)
        self.sealed += 1
        self.sealed_end = self.index.n

    def finish_open(self) -> None:
        """Build the postings in one pass after the bulk adds of an open."""
        self.index.extend_postings(len(self.entity_keys), len(self.type_keys), bulk=True)

    def _add(
        self, batch: pa.RecordBatch, order: np.ndarray | None, ents: np.ndarray | None
    ) -> None:
        """Append a piece; ``order`` lists its rows in sequence order (None: as they are)."""
        if ents is None:
            data, offsets = string_buffers(batch.column("entity_id"))
            ents = self.entity_keys.lookup_many(data, offsets)
        data, offsets = string_buffers(batch.column("event_type"))
        types = self.type_keys.intern_many(data, offsets)
        seq = batch.column("sequence").to_numpy()
        ts = batch.column("timestamp").cast(pa.int64()).to_numpy()
        rec = batch.column("recorded_at").cast(pa.int64()).to_numpy()
        if order is None:
            rows = np.arange(batch.num_rows, dtype=np.int32)
            self.index.add(seq, ts, rec, ents, types, rows)
        else:
            self.index.add(seq[order], ts[order], rec[order], ents[order], types[order], order)
        self._push_piece(batch, self.index.n - batch.num_rows)

    def _push_piece(self, batch: pa.RecordBatch, base: int) -> None:
        self.pieces.append(batch)
        self._bases.append(base)
        self._bases_np = np.asarray(self._bases, np.int64)
        self._texts.append(None)

    def sync(self, tail: Tail) -> None:
        """Catch the index up with the tail (decoding pending single appends first)."""
        tail.freeze()
        chunks = tail.chunks
        if tail.generation != self._tail_generation:
            # Chunks were merged: re-slot the tail's pieces; positions stay as they are.
            del self.pieces[self.sealed :], self._bases[self.sealed :], self._texts[self.sealed :]
            self._bases_np = np.asarray(self._bases, np.int64)
            self._tail_generation = tail.generation
        if len(self.pieces) == self.sealed:
            base = self.sealed_end
        else:
            base = self._bases[-1] + self.pieces[-1].num_rows
        added = False
        for chunk in chunks[len(self.pieces) - self.sealed :]:
            known = max(0, min(chunk.num_rows, self.index.n - base))
            if known:
                # Rows already indexed (before a merge): only their row numbers move.
                self.index.row.view[base : base + known] = np.arange(known, dtype=np.int32)
            if known < chunk.num_rows:
                self._add_rows(chunk, known)
                added = True
            else:
                self._push_piece(chunk, base)
            base += chunk.num_rows
        if added or self.index.entities.n < self.index.n:
            self.index.extend_postings(len(self.entity_keys), len(self.type_keys))

    def _add_rows(self, chunk: pa.RecordBatch, known: int) -> None:
        """Push ``chunk`` as a piece, indexing its rows from ``known`` on."""
        fresh = chunk.slice(known)
        data, offsets = string_buffers(fresh.column("entity_id"))
        ents = self.entity_keys.lookup_many(data, offsets)
        data, offsets = string_buffers(fresh.column("event_type"))
        types = self.type_keys.intern_many(data, offsets)
        self.index.add(
            fresh.column("sequence").to_numpy(),
            fresh.column("timestamp").cast(pa.int64()).to_numpy(),
            fresh.column("recorded_at").cast(pa.int64()).to_numpy(),
            ents,
            types,
            np.arange(known, chunk.num_rows, dtype=np.int32),
        )
        self._push_piece(chunk, self.index.n - chunk.num_rows)

    def seal(self, batch: pa.RecordBatch, order: np.ndarray) -> None:
        """The synced tail became segment ``batch`` (its rows ``order``-ed): re-point them."""
        tail_base = self.sealed_end
        del self.pieces[self.sealed :], self._bases[self.sealed :], self._texts[self.sealed :]
        n = len(order)
        rows = self.index.row.view[tail_base : tail_base + n]
        rows[np.asarray(order, np.int64)] = np.arange(n, dtype=np.int32)
        self._push_piece(batch, tail_base)
        self.sealed += 1
        self.sealed_end = tail_base + n
        self._tail_generation = -1

    # -- answering -----------------------------------------------------------------------

    def entity_number(self, entity_id: str) -> int:
        return self.entity_keys.lookup(entity_id.encode("utf-8", "surrogatepass"))

    def type_number(self, event_type: str) -> int:
        """The number of a stored event type, or -1 (types are few: a dict remembers)."""
        no = self._type_numbers.get(event_type)
        if no is None:
            no = self.type_keys.lookup(event_type.encode("utf-8", "surrogatepass"))
            if no >= 0:
                self._type_numbers[event_type] = no
        return no

    def select(self, query: Query, entity: int | None = None) -> np.ndarray:
        """Positions answering ``query``, in the order it asks for.

        ``entity``: the number of ``query.entity_id`` if the caller knows it (-1: none).
        """
        index = self.index
        lo = index.after_cut(query.after)
        hi = index.known_cut(query.known_at)
        ts_lo = _INT64_MIN if query.since is None else query.since
        ts_hi = _INT64_MAX
        if query.until is not None:
            ts_hi = query.until - 1
        if query.as_of is not None:
            ts_hi = min(ts_hi, query.as_of)
        type_no = -1
        if query.event_type is not None:
            type_no = self.type_number(query.event_type)
            if type_no < 0:
                return _EMPTY
        everything = False
        if query.entity_id is not None:
            ent = self.entity_number(query.entity_id) if entity is None else entity
            if ent < 0:
                return _EMPTY
            candidates = index.entities.positions(ent)
        elif type_no >= 0:
            candidates = index.types.positions(type_no)
            type_no = -1
        else:
            candidates = _EMPTY
            everything = True
        if (
            not everything
            and lo == 0
            and hi == index.n
            and type_no < 0
            and ts_lo == _INT64_MIN
            and ts_hi == _INT64_MAX
            and query.limit is None
        ):
            return candidates[::-1] if query.reverse else candidates
        return kernels.select(
            candidates,
            everything,
            lo,
            hi,
            index.ts.view,
            index.typ.view,
            type_no,
            ts_lo,
            ts_hi,
            kernels.NO_LIMIT if query.limit is None else query.limit,
            query.reverse,
        )

    def _spans(self, positions: np.ndarray) -> list[tuple[int, int, int, np.ndarray | None]]:
        """(piece, first row, count, rows) covering ``positions`` in order, piece by piece;
        ``rows`` is None where the span is a slice of consecutive rows."""
        row = self.index.row.view
        out: list[tuple[int, int, int, np.ndarray | None]] = []
        groups = kernels.groups(positions, row, self._bases_np).tolist()
        for piece, start, end, run, first in groups:
            out.append((piece, first, end - start, None if run else row[positions[start:end]]))
        return out

    def table(self, positions: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """The events at ``positions``, in that order, as an Arrow table (of ``columns``
        only, if given: the others are never copied)."""
        schema = (
            EVENT_SCHEMA if columns is None else pa.schema([EVENT_SCHEMA.field(c) for c in columns])
        )
        if not len(positions):
            return schema.empty_table()
        pieces = self.pieces if columns is None else [p.select(columns) for p in self.pieces]
        parts = [
            pieces[k].slice(first, n) if rows is None else pieces[k].take(rows)
            for k, first, n, rows in self._spans(positions)
        ]
        return pa.Table.from_batches(parts, schema)

    def payload_array(self, positions: np.ndarray) -> memoryview:
        """The payloads at ``positions`` as the UTF-8 text of one JSON array (uint8).

        One ``orjson.loads`` of it decodes them all: far cheaper than one call each.
        """
        spans = self._spans(positions) if len(positions) else []
        access = [self._text_access(k) for k, _, _, _ in spans]
        total = 2 + len(positions)
        for (_, first, n, rows), (offsets, _) in zip(spans, access, strict=True):
            total += timetravel.text_bytes(offsets, first, n, _EMPTY if rows is None else rows)
        out = np.empty(total, np.uint8)
        out[0] = 91  # "["
        at = 1
        for (_, first, n, rows), (offsets, data) in zip(spans, access, strict=True):
            at = timetravel.copy_texts(
                data, offsets, first, n, _EMPTY if rows is None else rows, out, at
            )
        if at == 1:
            at += 1
        out[at - 1] = 93  # "]" over the last comma
        return out[:at].data

    def _text_access(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        access = self._texts[k]
        if access is None:
            # Views of the Arrow buffers as they are (int32 offsets are not widened: a
            # copy per piece would cost 8 bytes per event for as long as it is cached).
            column = self.pieces[k].column(_PAYLOAD)
            arr = column.storage if isinstance(column, pa.ExtensionArray) else column
            _, offsets_buf, data_buf = arr.buffers()
            width = 8 if pa.types.is_large_string(arr.type) else 4
            offsets = np.frombuffer(
                offsets_buf, np.int64 if width == 8 else np.int32, len(arr) + 1, arr.offset * width
            )
            data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else _NO_BYTES
            access = self._texts[k] = (offsets, data)
        return access

    def event_id_at(self, position: int) -> bytes:
        """The 16 bytes of the event id at ``position``."""
        k = int(np.searchsorted(self._bases_np, position, side="right")) - 1
        row = int(self.index.row.view[position])
        column = self.pieces[k].column(_EVENT_ID)
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column
        buf = arr.buffers()[1]
        start = (arr.offset + row) * 16
        return bytes(memoryview(buf)[start : start + 16])

    def event(self, position: int) -> Event:
        return events_from_table(self.table(np.array([position], np.int64)))[0]

    def position_of_sequence(self, seq: int) -> int:
        """The position holding sequence ``seq``, or -1."""
        view = self.index.seq.view
        p = int(np.searchsorted(view, seq))
        return p if p < len(view) and int(view[p]) == seq else -1

    def event_types(self) -> list[str]:
        """Names of every event type stored."""
        return [
            self.type_keys.key(i).decode("utf-8", "surrogatepass")
            for i in range(len(self.type_keys))
        ]

    def nbytes(self) -> int:
        """Bytes held by the index (the Arrow pieces are counted by the store)."""
        return self.index.nbytes()


def one_batch(table: pa.Table) -> pa.RecordBatch:
    """A table as one record batch (copies only when it has several chunks)."""
    batches = table.combine_chunks().to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches, table.schema).combine_chunks().to_batches()[0]
