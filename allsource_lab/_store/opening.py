"""What a store loads on open: the sealed history, the tail, snapshots and schemas.

Storage has already read and checked the files (:meth:`Storage.load`: manifest, segments,
WAL replay); here they become in-memory state: entity numbers and versions, the read
side's index, the next sequence and the last recorded time, the snapshots that still fit
the events, and the schema registry.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._query.reads import Reader, one_batch
from allsource_lab._query.state import Snapshots, decode_snapshot
from allsource_lab._storage.columns import will_need
from allsource_lab._storage.index_file import SegmentIndex
from allsource_lab._storage.tail import Tail
from allsource_lab._store.entities import EntityTable
from allsource_lab.errors import CorruptionError
from allsource_lab.settings import Settings

if TYPE_CHECKING:
    from allsource_lab._storage import Loaded, Storage
    from allsource_lab.schemas.registry import SchemaRegistry

__all__ = ["History", "load_history", "load_snapshots", "open_registry"]

# Segments made ready ahead of the one being indexed (see _prepared): two keep that
# thread busy while at most ~72 MB of mapped index files wait (1M-event segments).
_READ_AHEAD = 2
# Below this many positions both postings are built on one thread (a thread costs more).
_PARALLEL_POSTINGS = 1 << 22


@dataclass(slots=True)
class History:
    """The loaded events in memory: segments, the read side, where the log goes on."""

    reader: Reader
    segments: list[pa.Table]
    segment_last: list[int]
    next_seq: int
    last_rec: int


def _max_int(column: pa.Array | pa.ChunkedArray) -> int:
    """The largest value of an integer or timestamp column, as an int."""
    return int(pc.max(column.cast(pa.int64())).as_py())


def load_history(
    loaded: Loaded, entities: EntityTable, tail: Tail, storage: Storage | None = None
) -> History:
    """Number the loaded events' entities, raise their versions and index every row.

    The entity ids an earlier process numbered come first, from the entity index
    (``storage.read_entities``), in its numbering; a segment that file covers and whose
    index file ``storage`` has is then indexed without looking up one entity id. A
    segment with an index file but not covered hashes the id of each of its runs of one
    entity's rows, and one without an index file every row's. A writable storage then
    keeps what was missing — index files, the entity index's frames — for the next open.
    """
    with _small_pages():  # for every large array an open fills: see _small_pages
        return _load_history(loaded, entities, tail, storage)


def _load_history(
    loaded: Loaded, entities: EntityTable, tail: Tail, storage: Storage | None
) -> History:
    kept = storage.read_entities() if storage is not None else None
    known: list[np.ndarray] = []  # the entity of each run, for the segments kept covers
    if kept is not None and kept.runs and entities.load_keys(kept.key_data, kept.key_offsets):
        known = kept.runs
    del kept
    stale = len(known)  # the entity index fits the live segments before this one
    runs: dict[int, np.ndarray] = {}  # live segment -> the entity number of each run
    last_seq = 0
    last_rec = 0
    reader = Reader(entities.keys)
    segments: list[pa.Table] = []
    segment_last: list[int] = []
    unindexed: list[tuple[int, int, int]] = []  # (segment, piece, position) without index
    tail_rows = sum(c.num_rows for c in tail.chunks)
    reader.index.expect(sum(t.num_rows for t in loaded.segments) + tail_rows)
    position = 0
    for k, ready in enumerate(_prepared(loaded, storage, known, reader)):
        batch, index, seen = ready.batch, ready.index, ready.versions
        if not batch.num_rows:
            runs[k] = np.empty(0, np.int32)
            continue
        segments.append(pa.Table.from_batches([batch]))
        if index is None:
            reader.add_segment(batch, entities.absorb(batch))
            unindexed.append((k, len(segments) - 1, position))
            last = int(pc.max(batch.column("sequence")).as_py())
            last_rec = max(last_rec, _max_int(batch.column("recorded_at")))
        else:
            if seen is not None:
                numbers = known[k]
                entities.raise_versions(numbers, seen)
            else:
                numbers = entities.absorb_runs(batch, index.run_starts)
                stale = min(stale, k)
            runs[k] = numbers
            reader.add_indexed_segment(batch, index, numbers)
            last = int(index.sequence[-1])
            last_rec = max(last_rec, int(index.recorded_at.max()))
        position += batch.num_rows
        segment_last.append(last)
        last_seq = max(last_seq, last)
    del known  # views of the entity index file's bytes: the runs of every covered segment
    if storage is not None:
        for k, piece, at in unindexed:
            index = reader.segment_index(piece)
            storage.write_index(k, index)
            runs[k] = index.run_numbers(reader.index.ent.view[at : at + index.row.size])
        if stale < len(loaded.segments):
            keys = entities.keys.key_buffers()
            storage.write_entities(stale, keys, [runs[k] for k in range(stale, len(runs))])
    del runs
    _build_postings(reader)
    for chunk in tail.chunks:
        entities.absorb(chunk)
        last_seq = max(last_seq, int(pc.max(chunk.column("sequence")).as_py()))
        last_rec = max(last_rec, _max_int(chunk.column("recorded_at")))
    reader.sync(tail)
    next_seq = max(last_seq, loaded.manifest.sealed_through) + 1
    return History(reader, segments, segment_last, next_seq, last_rec)


@dataclass(slots=True)
class _Ready:
    """A segment made ready to index: as one batch, with its index file (None: missing
    or unusable) and, if the entity index covers it, its runs' last versions."""

    batch: pa.RecordBatch
    index: SegmentIndex | None
    versions: np.ndarray | None


def _prepared(
    loaded: Loaded, storage: Storage | None, known: list[np.ndarray], reader: Reader
) -> Iterator[_Ready]:
    """Each loaded segment made ready to index, on another thread, two segments ahead of
    the one being indexed.

    That thread reads the index file (mapping it, checking its CRC32C), gathers the
    versions of the runs' last rows from the mapped column file, and touches the index
    columns' memory the segment will be copied into (the first write to each fresh page
    is the kernel's work: ~2.8 us a 4 KB page, measured, ~2.5 s of CPU at 100M events).
    All of it releases the GIL, so on two cores it overlaps the copying of the segment
    before it into the read side. The memory it touches is the segment's own range of
    positions, which nothing reads or writes before the segment is handed over.
    """
    tables = loaded.segments
    index_ = reader.index
    columns = (index_.seq, index_.ts, index_.rec, index_.ent, index_.typ, index_.row)
    firsts = np.cumsum([0] + [t.num_rows for t in tables]).tolist()

    def prepare(k: int, touch: bool = True) -> _Ready:
        table = tables[k]
        batch = one_batch(table)
        if not table.num_rows or storage is None:
            return _Ready(batch, None, None)
        index = storage.read_index(k, table.num_rows)
        seen = None
        if index is not None and k < len(known) and len(known[k]) == len(index.run_starts):
            # The runs' last rows touch most pages of the version column (8 MB per 1M
            # events), which a store just written or not read for a while has on disk.
            will_need(batch.column("version"))
            seen = EntityTable.run_versions(batch, index.run_starts)
        for column in columns if touch else ():  # sized for every segment (``expect``)
            column.buffer[firsts[k] : firsts[k + 1]] = 0
        return _Ready(batch, index, seen)

    if len(tables) < 2:  # nothing to overlap with
        yield from (prepare(k, touch=False) for k in range(len(tables)))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="allsource-open") as pool:
        ahead = deque(pool.submit(prepare, k) for k in range(min(_READ_AHEAD, len(tables))))
        for k in range(len(tables)):
            ready = ahead.popleft().result()
            if k + _READ_AHEAD < len(tables):
                ahead.append(pool.submit(prepare, k + _READ_AHEAD))
            yield ready


def _build_postings(reader: Reader) -> None:
    """The postings by entity and by event type (as ``Reader.finish_open``), the two
    counting sorts on two threads when there are many positions.

    At 100M events over 1M entities and 5 types they took ~2.5 s and ~0.6 s of one core
    (measured on the 2-core development machine). Splitting the entities' sort itself in
    two halves of the positions was tried and dropped: on the busy machine it took more
    CPU (2.3-2.6 s against 1.8-2.3 s) and more time (6.1-7.8 s against 4.7-6.0 s), the
    two halves' random writes contending for the same caches.
    """
    index = reader.index
    if index.n < _PARALLEL_POSTINGS:
        reader.finish_open()
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="allsource-open") as pool:
        types = pool.submit(index.types.build, index.typ.view, len(reader.type_keys))
        index.entities.build(index.ent.view, len(reader.entity_keys))
        types.result()


@contextmanager
def _small_pages() -> Iterator[None]:
    """numpy allocates without asking for transparent huge pages meanwhile.

    An open fills large arrays once: the index's columns, 36 bytes an event (3.6 GB at 100M
    events), the entity postings (4 more) and the entity index file's bytes. With huge
    pages each first touch of 2 MB may wait for the kernel to compact memory, which a page
    cache full of a large store's files makes slow: filling 800 MB took 2.8-3.6 s with
    huge pages and 0.55 s with 4 KB ones (the 2-core development machine, busy,
    2026-12-05). ``_set_madvise_hugepage`` is numpy's switch for this (see
    its 1.20 release notes); without it the pages are what numpy asks for.
    """
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    before = switch(False) if switch is not None else None
    try:
        yield
    finally:
        if switch is not None:
            switch(before)


def load_snapshots(storage: Storage, entities: EntityTable, snapshots: Snapshots) -> list[str]:
    """Snapshots from storage into ``snapshots``; those that do not fit the stored
    events are dropped. Returns what was wrong, for ``recovery_problems``."""
    bodies, problems = storage.load_snapshots()
    for body in bodies:
        try:
            snap = decode_snapshot(body)
        except ValueError as exc:
            problems.append(f"a snapshot record is damaged ({exc}); ignored")
            continue
        no = entities.keys.lookup(snap.entity_id.encode("utf-8", "surrogatepass"))
        if no < 0 or entities.versions[no] < snap.version:
            problems.append(
                f"snapshot of {snap.entity_id!r} at version {snap.version} is ahead of "
                "the stored events (they were not durable); ignored"
            )
            continue
        snapshots.add(no, snap, save=False)
    return problems


def open_registry(
    storage: Storage, settings: Settings, write: Callable[[list[bytes]], None]
) -> tuple[SchemaRegistry, list[str]]:
    """The schema registry from its log, writing through ``write``; and what was wrong.

    Raises:
        CorruptionError: the registry log is damaged, unless ``recovery="salvage"``.
    """
    from allsource_lab.schemas.registry import SchemaRegistry  # loads jsonschema: at open

    registry = SchemaRegistry(write)
    bodies, problems = storage.load_registry()
    if problems and settings.recovery != "salvage":
        where = re.search(r"^(.*?): .* at byte (\d+)$", problems[0])
        # A torn final record was never acknowledged: cutting it loses nothing.
        advice = (
            'open with recovery="truncate_tail" to cut it (it was never fully written)'
            if "torn final record" in problems[0]
            else 'open with recovery="salvage" to skip damaged records (their schemas are lost)'
        )
        raise CorruptionError(
            f"the schema registry is damaged ({problems[0]}); {advice}",
            path=None if where is None else where.group(1),
            offset=None if where is None else int(where.group(2)),
        )
    return registry, [*problems, *registry.load(bodies)]
