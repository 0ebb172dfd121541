"""The read side: Arrow pieces, the event index over them, and selecting rows by query.

The store's events live in *pieces*: one Arrow record batch per sealed segment (sorted by
entity) and one per chunk of the unsealed tail (in sequence order). Positions (ranks in
sequence order, see :mod:`allsource_lab._query.index`) map to a piece by range and to a row in it
through the index's ``row`` column. Every read here runs under the store's lock: catching
up with the tail and answering must see one state of the pieces.
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from allsource_lab._kernels import gather, timetravel
from allsource_lab._kernels import postings as kernels
from allsource_lab._kernels.keytable import KeyTable
from allsource_lab._query.index import EventIndex, Postings
from allsource_lab._storage.arrowbuf import fixed_values, int64_view, numpy_array, string_buffers
from allsource_lab._storage.index_file import SegmentIndex
from allsource_lab._storage.tail import Numbered, Tail
from allsource_lab.eventframe import Query, events_from_table
from allsource_lab.events import EVENT_SCHEMA, Event

__all__ = ["Reader", "one_batch"]

_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)
_PAYLOAD = EVENT_SCHEMA.get_field_index("payload")
_EVENT_ID = EVENT_SCHEMA.get_field_index("event_id")
_EMPTY = np.empty(0, np.int64)
_NO_BYTES = np.empty(0, np.uint8)
_NO_VIEW = np.empty(0, np.uint8)
_NO_VIEW.flags.writeable = False


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
        self._texts: list[_PieceViews | None] = []
        # The gather kernel's address table of every piece (see _address_table), made on
        # first use after the pieces change.
        self._addresses: np.ndarray | None = None
        # The first `sealed` pieces are segments (or a retired tail being sealed, see
        # retire_tail), the rest chunks of the tail; positions below `sealed_end` are in
        # those first pieces.
        self.sealed = 0
        self.sealed_end = 0
        # A retired tail: (first piece, pieces, first position, positions), until sealed.
        self.sealing: tuple[int, int, int, int] | None = None
        self.layout = 0  # bumped whenever pieces are replaced (SQL registers them again)
        self._tail_generation = -1
        self._type_numbers: dict[str, int] = {}

    # -- building ------------------------------------------------------------------------

    def add_segment(self, batch: pa.RecordBatch, entity_numbers: np.ndarray | None = None) -> None:
        """Index a sealed segment (rows sorted by entity) as the next range of positions.

        Only before the first ``sync``: segments come before every tail position.
        """
        if not batch.num_rows:
            return
        seq = fixed_values(batch.column("sequence"))
        order = kernels.place(seq, int(seq.min()))
        if order[0] < 0:
            order = np.argsort(seq, kind="stable")  # sequence gaps (after a salvage)
        self._add(batch, order, entity_numbers)
        self.sealed += 1
        self.sealed_end = self.index.n

    def add_indexed_segment(
        self, batch: pa.RecordBatch, index: SegmentIndex, run_entities: np.ndarray
    ) -> None:
        """Index a sealed segment from its index file (see ``add_segment``):
        ``run_entities`` numbers the entity of each of its runs."""
        if not batch.num_rows:
            return
        types = np.array(
            [self.type_keys.intern(t.encode("utf-8", "surrogatepass")) for t in index.types],
            np.int32,
        )
        self.index.add(
            index.sequence,
            index.timestamp,
            index.recorded_at,
            np.asarray(run_entities, np.int32)[index.entity],
            types[index.type] if len(types) else index.type,
            index.row,
        )
        self._push_piece(batch, self.index.n - batch.num_rows)
        self.sealed += 1
        self.sealed_end = self.index.n

    def segment_index(self, k: int) -> SegmentIndex:
        """What an index file keeps of segment piece ``k`` (under lock: copies only)."""
        base, n = self._bases[k], self.pieces[k].num_rows
        index = self.index
        span = slice(base, base + n)
        row = index.row.view[span].copy()
        ent = index.ent.view[span].copy()
        typ = index.typ.view[span].copy()
        seq, ts, rec = (c.view[span].copy() for c in (index.seq, index.ts, index.rec))
        # The segment is sorted by entity: each entity is one run of rows.
        by_row = np.empty(n, np.int32)
        by_row[row] = ent
        starts = np.ones(n, np.bool_)
        starts[1:] = by_row[1:] != by_row[:-1]
        run_of_row = (np.cumsum(starts) - 1).astype(np.int32)
        present = np.flatnonzero(np.bincount(typ, minlength=1))
        codes = np.zeros(int(present[-1]) + 1 if len(present) else 1, np.int32)
        codes[present] = np.arange(len(present), dtype=np.int32)
        return SegmentIndex(
            seq,
            ts,
            rec,
            row,
            run_of_row[row],
            codes[typ],
            np.flatnonzero(starts).astype(np.int32),
            [self.type_keys.key(int(t)).decode("utf-8", "surrogatepass") for t in present],
        )

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
        seq = fixed_values(batch.column("sequence"))
        ts = fixed_values(batch.column("timestamp").cast(pa.int64()))
        rec = fixed_values(batch.column("recorded_at").cast(pa.int64()))
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
        self._addresses = None

    def sync(self, tail: Tail) -> None:
        """Catch the index up with the tail (decoding pending single appends first)."""
        tail.freeze()
        chunks = tail.chunks
        if tail.generation != self._tail_generation:
            # Chunks were merged: re-slot the tail's pieces; positions stay as they are.
            del self.pieces[self.sealed :], self._bases[self.sealed :], self._texts[self.sealed :]
            self._bases_np = np.asarray(self._bases, np.int64)
            self._addresses = None
            self._tail_generation = tail.generation
        if len(self.pieces) == self.sealed:
            base = self.sealed_end
        else:
            base = self._bases[-1] + self.pieces[-1].num_rows
        added = False
        first = len(self.pieces) - self.sealed
        for chunk, numbered in zip(chunks[first:], tail.numbered[first:], strict=True):
            known = max(0, min(chunk.num_rows, self.index.n - base))
            if known:
                # Rows already indexed (before a merge): only their row numbers move.
                self.index.row.view[base : base + known] = np.arange(known, dtype=np.int32)
            if known < chunk.num_rows:
                self._add_rows(chunk, known, numbered)
                added = True
            else:
                self._push_piece(chunk, base)
            base += chunk.num_rows
        if added or self.index.entities.n < self.index.n:
            self.index.extend_postings(len(self.entity_keys), len(self.type_keys))

    def _add_rows(self, chunk: pa.RecordBatch, known: int, numbered: Numbered | None) -> None:
        """Push ``chunk`` as a piece, indexing its rows from ``known`` on (with the
        numbers its writer worked out, if it kept them)."""
        fresh = chunk.slice(known)
        if numbered is None:
            data, offsets = string_buffers(fresh.column("entity_id"))
            ents = self.entity_keys.lookup_many(data, offsets)
            data, offsets = string_buffers(fresh.column("event_type"))
            types = self.type_keys.intern_many(data, offsets)
        else:
            # The writer's entity numbers are this key table's (one table serves both).
            ents = numbered.entities[known:]
            distinct = self.type_keys.intern_many(*string_buffers(numbered.types))
            types = distinct[numbered.type_codes[known:]]
        self.index.add(
            int64_view(fresh.column("sequence")),
            int64_view(fresh.column("timestamp")),
            int64_view(fresh.column("recorded_at")),
            ents,
            types,
            np.arange(known, chunk.num_rows, dtype=np.int32),
        )
        self._push_piece(chunk, self.index.n - chunk.num_rows)

    def retire_tail(self, pieces: int | None = None) -> None:
        """The synced tail's chunks are being sealed: they stay readable pieces, placed
        before a new tail's, until :meth:`seal` replaces them by the segment.

        ``pieces``: only the tail's first so many chunks are (a follower, whose writer
        sealed part of what it has read: see ``_store/following.py``); the rest become
        the new tail's, which the next ``sync`` takes as they are.
        """
        first = self.sealed
        if pieces is None:
            count, rows = len(self.pieces) - first, self.index.n - self.sealed_end
        else:
            count, rows = pieces, sum(p.num_rows for p in self.pieces[first : first + pieces])
        self.sealing = (first, count, self.sealed_end, rows)
        self.sealed = first + count
        self.sealed_end += rows
        self._tail_generation = -1

    def extend_retired(self) -> None:
        """The synced tail joins the retired one (whose seal is to be tried again)."""
        assert self.sealing is not None
        first, _, base, _ = self.sealing
        self.sealing = (first, len(self.pieces) - first, base, self.index.n - base)
        self.sealed = len(self.pieces)
        self.sealed_end = self.index.n
        self._tail_generation = -1

    def seal(self, batch: pa.RecordBatch, order: np.ndarray) -> None:
        """The retired tail became segment ``batch`` (its rows ``order``-ed): put it in
        the chunks' place and re-point their positions to its rows."""
        assert self.sealing is not None
        first, count, base, n = self.sealing
        rows = self.index.row.view[base : base + n]
        rows[np.asarray(order, np.int64)] = np.arange(n, dtype=np.int32)
        self.pieces[first : first + count] = [batch]
        self._bases[first : first + count] = [base]
        self._texts[first : first + count] = [None]
        self._bases_np = np.asarray(self._bases, np.int64)
        self._addresses = None
        self.sealed -= count - 1
        self.sealing = None
        self.layout += 1

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
            candidates = _positions(index.entities, ent)
        elif type_no >= 0:
            candidates = _positions(index.types, type_no)
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

    def _spans(
        self, positions: np.ndarray, groups: list[list[int]] | None = None
    ) -> list[tuple[int, int, int, np.ndarray | None]]:
        """(piece, first row, count, rows) covering ``positions`` in order, piece by piece;
        ``rows`` is None where the span is a slice of consecutive rows. ``groups``: the
        ``kernels.groups`` of these positions, if the caller has them already."""
        row = self.index.row.view
        out: list[tuple[int, int, int, np.ndarray | None]] = []
        if groups is None:
            groups = kernels.groups(positions, row, self._bases_np).tolist()
        for piece, start, end, run, first in groups:
            out.append((piece, first, end - start, None if run else row[positions[start:end]]))
        return out

    def table(self, positions: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """The events at ``positions``, in that order, as an Arrow table (of ``columns``
        only, if given: the others are never copied).

        Rows of pieces of 1,024 rows or more are copied into one new chunk by one or two
        kernel calls (allsource_lab/_kernels/gather.py), unless they fall into long runs
        of consecutive rows (a stretch of the tail, a big entity of a segment), which are
        slices of their pieces, sharing their memory. Rows of smaller pieces (the small
        tail chunks that single appends make) and text columns past 2 GiB are sliced and
        taken piece by piece, one chunk each.
        """
        layout = _layout(columns)
        n = len(positions)
        if not n:
            return layout.schema.empty_table()
        header = layout.header
        if header is not None:
            addresses = self._addresses
            if addresses is None:
                addresses = self._address_table()
            row, bases = self.index.row.view, self._bases_np
            numbers = layout.columns
            if n <= _SMALL_READ:
                message = gather.gather(
                    positions, row, bases, addresses, numbers, header, layout.slots, _SLICE_ROWS
                )
                if len(message):
                    batch = pa.ipc.read_record_batch(pa.py_buffer(message), layout.schema)
                    return pa.Table.from_batches([batch])
            else:
                # From Arrow's allocator, which reuses freed memory (see gather.plan).
                size = 8 * gather.scratch_size(n)
                scratch = np.frombuffer(pa.allocate_buffer(size), np.int64)
                two = n >= _TWO_THREADS_ROWS
                if two:
                    size = _plan_on_two(positions, row, bases, addresses, numbers, header, scratch)
                else:
                    size = gather.plan(
                        positions, row, bases, addresses, numbers, len(header), _SLICE_ROWS, scratch
                    )
                if size >= 0:
                    buffer = pa.allocate_buffer(size)
                    out = np.frombuffer(buffer, np.uint8)
                    gather.fill(addresses, numbers, header, layout.slots, scratch, out, two)
                    if two:
                        half = _helper().submit(
                            gather.fill_columns, addresses, numbers, header, scratch, out, _FILL_A
                        )
                        gather.fill_columns(addresses, numbers, header, scratch, out, _FILL_B)
                        half.result()
                    return pa.Table.from_batches([pa.ipc.read_record_batch(buffer, layout.schema)])
        pieces = self.pieces
        if columns is not None:
            pieces = [p.select(columns) for p in pieces]
        parts = [
            pieces[k].slice(first, n) if rows is None else pieces[k].take(numpy_array(rows))
            for k, first, n, rows in self._spans(positions)
        ]
        return pa.Table.from_batches(parts, layout.schema)

    def _address_table(self) -> np.ndarray:
        """The gather kernel's address table: a row per piece (gather.py), zeros for a
        piece it must not read (fewer than ``_GATHER_ROWS`` rows, or not EVENT_SCHEMA)."""
        table = np.zeros((len(self.pieces), gather.SLOTS), np.int64)
        for k, piece in enumerate(self.pieces):
            if piece.num_rows >= _GATHER_ROWS:
                addresses = self._text_access(k).addresses()
                if addresses is not None:
                    table[k] = addresses
        self._addresses = table
        return table

    def payload_array(self, positions: np.ndarray) -> memoryview:
        """The payloads at ``positions`` as the UTF-8 text of one JSON array (uint8).

        One ``orjson.loads`` of it decodes them all: far cheaper than one call each.
        """
        spans = self._spans(positions) if len(positions) else []
        access = [self._text_access(k).payload for k, _, _, _ in spans]
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

    def _text_access(self, k: int) -> _PieceViews:
        """The views of piece ``k``'s buffers, made on first use."""
        access = self._texts[k]
        if access is None:
            access = self._texts[k] = _PieceViews(self.pieces[k])
        return access

    def event_id_at(self, position: int) -> bytes:
        """The 16 bytes of the event id at ``position``."""
        k = int(np.searchsorted(self._bases_np, position, side="right")) - 1
        start = int(self.index.row.view[position]) * 16
        return self._text_access(k).event_ids[start : start + 16].tobytes()

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


def _plan_on_two(
    positions: np.ndarray,
    row: np.ndarray,
    bases: np.ndarray,
    addresses: np.ndarray,
    numbers: np.ndarray,
    header: np.ndarray,
    scratch: np.ndarray,
) -> int:
    """``gather.plan`` with its texts' step on two threads (see ``_TWO_THREADS_ROWS``)."""
    runs = gather.plan_rows(positions, row, bases, addresses, _SLICE_ROWS, scratch)
    if runs < 0:
        return int(runs)
    n = len(positions)
    half = _helper().submit(gather.plan_texts, addresses, numbers, scratch, n, _TEXTS_A)
    gather.plan_texts(addresses, numbers, scratch, n, _TEXTS_B)
    half.result()
    return int(gather.plan_end(addresses, numbers, len(header), scratch, n))


_helper_pool: ThreadPoolExecutor | None = None


def _helper() -> ThreadPoolExecutor:
    """The second thread of a big read (the kernels release the GIL)."""
    global _helper_pool
    if _helper_pool is None:
        _helper_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="allsource-read")
    return _helper_pool


def _positions(postings: Postings, key: int) -> np.ndarray:
    """``postings.positions(key)``; while no position was added since they were built
    (a store opened and not written to), a slice of their bulk part, which costs less
    than the kernel call (0.7 µs against 1.6 for one entity's 100 positions)."""
    starts = postings.starts
    if postings.n == postings.base_end and key < len(starts) - 1:
        return postings.rows[starts[key] : starts[key + 1]].astype(np.int64)
    return postings.positions(key)


def one_batch(table: pa.Table) -> pa.RecordBatch:
    """A table as one record batch (copies only when it has several chunks)."""
    batches = table.combine_chunks().to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches, table.schema).combine_chunks().to_batches()[0]


# -- gathering rows ----------------------------------------------------------------------
#
# `Reader.table` copies scattered rows of the pieces into one new Arrow IPC message with
# two kernel calls (allsource_lab/_kernels/gather.py) and wraps it with one
# `pa.ipc.read_record_batch` and `Table.from_batches` (~4.5 µs for 100 events, where eleven
# `Array.from_buffers` and a `Table.from_arrays` over the same buffers cost ~19 µs). Short
# runs of consecutive rows are copied too: the 100 events of one entity, ten runs of ten
# rows in ten memory-mapped segments, took 28.0 µs as ten slices (their
# `Table.from_batches` alone ~21 µs) and 23.4 µs copied, though the copy waits on ~150
# TLB and cache misses (CPU time of the call, medians over 4,000 entities not read
# before, 1M-event store, a busy 2-core machine).


class _PieceViews:
    """Numpy views of one piece's Arrow buffers, made on first use and kept in
    ``Reader._texts`` (making them costs µs, more than a small read).

    ``payload``: the payloads' offsets and bytes (``payload_array``); ``event_ids``: the
    ids, 16 bytes a row; :meth:`addresses`: the piece's row of the gather kernel's
    address table.
    """

    __slots__ = ("address_row", "event_ids", "payload", "piece")

    def __init__(self, piece: pa.RecordBatch) -> None:
        column = piece.column(_PAYLOAD)
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column
        _, offsets_buf, data_buf = arr.buffers()
        # int32 offsets are not widened: a copy per piece would cost 8 bytes per event for
        # as long as it is cached.
        width = 8 if pa.types.is_large_string(arr.type) else 4
        offsets = np.frombuffer(
            offsets_buf, np.int64 if width == 8 else np.int32, len(arr) + 1, arr.offset * width
        )
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else _NO_BYTES
        self.payload = (offsets, data)
        column = piece.column(_EVENT_ID)
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column
        self.event_ids = _view(arr.buffers()[1], arr.offset * 16, len(arr) * 16)
        self.piece = piece
        self.address_row: np.ndarray | None = None

    def addresses(self) -> np.ndarray | None:
        """Where the piece's buffers are, as the gather kernel reads them (None: the
        piece's schema is not EVENT_SCHEMA), found on first use.

        The kernel reads memory by address: this entry holds the piece, and so its
        buffers, for as long as the reader holds the entry.
        """
        if self.address_row is None:
            self.address_row = _addresses_of(self.piece)
        return self.address_row if len(self.address_row) else None


class _Layout(NamedTuple):
    """What gathering some columns needs: the result's schema, their column numbers, and
    the IPC message header the kernel fills in (None: pyarrow wrote a header this code
    does not know, so rows are sliced and taken instead) with its fields' offsets."""

    schema: pa.Schema
    columns: np.ndarray
    header: np.ndarray | None
    slots: np.ndarray


_LAYOUTS: dict[tuple[str, ...] | None, _Layout] = {}
# Rows a piece needs before a read gathers from it (see Reader.table): a piece's views
# and addresses cost µs once, worth it for segments and batches, read again and again,
# not for the tail chunks single appends between reads make (each read once or twice
# before the tail merges them).
_GATHER_ROWS = 1024
# Rows per run of consecutive rows of one piece (on average) from which a read slices its
# pieces rather than copies the rows (see Reader.table): a slice costs ~2-3 µs of
# pyarrow calls, a copied row ~0.1-0.25 µs.
_SLICE_ROWS = 256
# Rows up to which a read is gathered in one kernel call, in memory from numba's
# allocator (see gather.gather).
_SMALL_READ = 1024
# Rows from which a read plans and copies on two threads: each row of each column is a
# cache miss, and two cores keep twice as many in flight. The 50,000 events of one type
# in ten mapped segments of 100K: 4.2-4.8 ms on one thread, 2.3-2.6 ms on two when the
# other core is free, the same either way when it is busy (blocks of 30 reads
# alternating, 2-core development machine, 2026-12-05); the thread hop costs ~50 us.
_TWO_THREADS_ROWS = 16_384
# What each thread takes: two of the four texts' sizes (by text number: event_type,
# entity_id, payload, metadata), and about half the columns' copying (by column number,
# EVENT_SCHEMA's order), the payloads' bytes with the fewer columns.
_TEXTS_A = np.array([False, False, True, True])
_TEXTS_B = ~_TEXTS_A
_FILL_A = np.zeros(11, np.bool_)
_FILL_A[[2, 4, 7, 9, 0]] = True  # event_type, version, payload, partition, sequence
_FILL_B = ~_FILL_A


def _view(buf: pa.Buffer | None, start: int = 0, size: int = -1) -> np.ndarray:
    """A read-only uint8 view of ``size`` bytes of ``buf`` from ``start`` (-1: to the end)."""
    if buf is None or size == 0:
        return _NO_VIEW
    view = np.frombuffer(buf, np.uint8, size, start)
    view.flags.writeable = False
    return view


def _addresses_of(piece: pa.RecordBatch) -> np.ndarray:
    """``piece``'s row of the gather kernel's address table (allsource_lab/_kernels/
    gather.py): per column where its values start (cut at the array's offset; the int32
    offsets of a text column), where each text column's bytes start, the validity bitmap
    of the nullable column (0 without nulls) and its first bit, the row count. Empty when
    the piece's schema is not EVENT_SCHEMA."""
    if not piece.schema.equals(EVENT_SCHEMA):
        return np.empty(0, np.int64)
    row = np.zeros(gather.SLOTS, np.int64)
    for number, (field, column) in enumerate(zip(EVENT_SCHEMA, piece.columns, strict=True)):
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column
        buffers = arr.buffers()
        first = arr.offset
        if pa.types.is_string(arr.type):
            row[number] = buffers[1].address + 4 * first
            data = buffers[2]
            text = gather.TEXT_DATA + gather.text_number(number)
            row[text] = 0 if data is None else data.address
            continue
        row[number] = buffers[1].address + first * arr.type.byte_width
        if field.nullable and arr.null_count:
            row[gather.VALIDITY] = buffers[0].address
            row[gather.FIRST_BIT] = first
    row[gather.ROWS] = piece.num_rows
    return row


def _layout(columns: list[str] | None) -> _Layout:
    """The layout of gathering ``columns`` (None: all), made once per list of columns."""
    key = None if columns is None else tuple(columns)
    layout = _LAYOUTS.get(key)
    if layout is None:
        names = EVENT_SCHEMA.names if key is None else key
        schema = pa.schema([EVENT_SCHEMA.field(c) for c in names])
        numbers = np.array([EVENT_SCHEMA.get_field_index(c) for c in names], np.int64)
        header, slots = _ipc_header(schema)
        layout = _LAYOUTS[key] = _Layout(schema, numbers, header, slots)
    return layout


def _ipc_header(schema: pa.Schema) -> tuple[np.ndarray | None, np.ndarray]:
    """The header of an IPC record batch message of ``schema``, and where its int64
    fields are: (header, [row count, body length, first node, first buffer]).

    Taken from pyarrow's own message for one row, found by walking its flatbuffer
    (format/Message.fbs of the Arrow columnar format: a Message table whose header is a
    RecordBatch table, whose nodes and buffers are vectors of 16-byte structs stored
    inline). Anything else (compression, another layout) gives None.
    """
    nowhere = np.zeros(4, np.int64)
    raw = (
        pa.RecordBatch.from_arrays([pa.nulls(1, f.type) for f in schema], schema=schema)
        .serialize()
        .to_pybytes()
    )
    marker, size = struct.unpack_from("<Ii", raw, 0)
    start = 8  # after the continuation marker and the metadata's length

    def fields(table: int) -> list[int]:
        """Positions of a flatbuffer table's fields in ``raw`` (0: absent)."""
        vtable = table - struct.unpack_from("<i", raw, table)[0]
        count = (struct.unpack_from("<H", raw, vtable)[0] - 4) // 2
        return [table + at if at else 0 for at in struct.unpack_from(f"<{count}H", raw, vtable + 4)]

    def target(at: int) -> int:
        return at + int(struct.unpack_from("<I", raw, at)[0])

    if marker != 0xFFFFFFFF or size % 8:
        return None, nowhere
    message = fields(target(start))
    # Fields: version, header type (3: RecordBatch), header, body length.
    if len(message) < 4 or not all(message[1:4]) or raw[message[1]] != 3:
        return None, nowhere
    batch = fields(target(message[2]))
    # Fields: length, nodes, buffers, then compression and variadic counts (must be absent).
    if len(batch) < 3 or not all(batch[:3]) or any(batch[3:]):
        return None, nowhere
    nodes, buffers = target(batch[1]), target(batch[2])
    texts = sum(pa.types.is_string(f.type) or isinstance(f.type, pa.JsonType) for f in schema)
    slots = np.array([batch[0], message[3], nodes + 4, buffers + 4], np.int64)
    if (
        struct.unpack_from("<q", raw, batch[0])[0] != 1
        or struct.unpack_from("<q", raw, message[3])[0] != len(raw) - start - size
        or struct.unpack_from("<I", raw, nodes)[0] != len(schema)
        or struct.unpack_from("<I", raw, buffers)[0] != 2 * len(schema) + texts
        or any(slots % 8)
    ):
        return None, nowhere
    header = np.frombuffer(raw, np.uint8, start + size).copy()
    header.flags.writeable = False
    return header, slots
