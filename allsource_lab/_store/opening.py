"""What a store loads on open: the sealed history, the tail, snapshots and schemas.

Storage has already read and checked the files (:meth:`Storage.load`: manifest, segments,
WAL replay); here they become in-memory state: entity numbers and versions, the read
side's index, the next sequence and the last recorded time, the snapshots that still fit
the events, and the schema registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._query.reads import Reader, one_batch
from allsource_lab._query.state import Snapshots, decode_snapshot
from allsource_lab._storage.tail import Tail
from allsource_lab._store.entities import EntityTable
from allsource_lab.errors import CorruptionError
from allsource_lab.settings import Settings

if TYPE_CHECKING:
    from allsource_lab._storage import Loaded, Storage
    from allsource_lab.schemas.registry import SchemaRegistry

__all__ = ["History", "load_history", "load_snapshots", "open_registry"]


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

    A segment whose index file ``storage`` has is indexed from it (hashing one entity id
    per entity rather than per row); the others from their rows, and a writable storage
    then keeps their index files for the next open.
    """
    last_seq = 0
    last_rec = 0
    reader = Reader(entities.keys)
    segments: list[pa.Table] = []
    segment_last: list[int] = []
    unindexed: list[tuple[int, int]] = []  # (segment, piece) without an index file
    tail_rows = sum(c.num_rows for c in tail.chunks)
    reader.index.expect(sum(t.num_rows for t in loaded.segments) + tail_rows)
    for k, segment in enumerate(loaded.segments):
        if not segment.num_rows:
            continue
        # Each segment as a one-batch table: the reader's pieces share its buffers.
        batch = one_batch(segment)
        segments.append(pa.Table.from_batches([batch]))
        index = None if storage is None else storage.read_index(k, batch.num_rows)
        if index is None:
            reader.add_segment(batch, entities.absorb(batch))
            unindexed.append((k, len(segments) - 1))
            last = int(pc.max(batch.column("sequence")).as_py())
            last_rec = max(last_rec, _max_int(batch.column("recorded_at")))
        else:
            reader.add_indexed_segment(batch, index, entities.absorb_runs(batch, index.run_starts))
            last = int(index.sequence[-1])
            last_rec = max(last_rec, int(index.recorded_at.max()))
        segment_last.append(last)
        last_seq = max(last_seq, last)
    if storage is not None:
        for k, piece in unindexed:
            storage.write_index(k, reader.segment_index(piece))
    reader.finish_open()
    for chunk in tail.chunks:
        entities.absorb(chunk)
        last_seq = max(last_seq, int(pc.max(chunk.column("sequence")).as_py()))
        last_rec = max(last_rec, _max_int(chunk.column("recorded_at")))
    reader.sync(tail)
    next_seq = max(last_seq, loaded.manifest.sealed_through) + 1
    return History(reader, segments, segment_last, next_seq, last_rec)


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
