"""Entity states: payloads folded with JSON Merge Patch, at any moment, from snapshots.

The current state of recently asked entities is kept decoded (:class:`HotStates`), so
asking again costs a dict copy. A fold at a moment starts from the newest snapshot at or
below it that still matches the stored events (checked once by event id), and records a
snapshot every ``snapshot_every_versions`` as it goes.

``states()`` plans every entity's fold in one numba call (:func:`folds.plan`), then folds
the entities in calls of at most ``fold_payloads`` payloads each over the payload texts
where they lie (:func:`folds.fold_texts`, see :mod:`allsource_lab._kernels.folds`), so
that what it holds beside the result stays bounded whatever the size of the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._ingest import inputs
from allsource_lab._kernels import folds, timetravel
from allsource_lab._query.state import (
    HotStates,
    PayloadTexts,
    Snapshot,
    Snapshots,
    copy_state,
    encode_snapshot,
    merge_patch,
    payload_texts,
)
from allsource_lab._storage.arrowbuf import string_array_from_buffers
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.log import EventLog
from allsource_lab._store.rows import Rows
from allsource_lab._store.sealing import Sealer
from allsource_lab.errors import InvalidEvent, NotFound, StorageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["States"]

_INT64_MAX = int(np.iinfo(np.int64).max)
# Payloads one call of the bulk fold reads at most. From 4K to 1M a call, states(as_of=
# mid-history) over 10M events took 1.69-1.85 s whatever the size and added 55-58 MB of
# anonymous memory (the result) up to 256K, 71 MB at 1M (measured).
_FOLD_PAYLOADS = 1 << 16


class States:
    """``state``, ``states`` and ``snapshot`` over the read side."""

    def __init__(
        self,
        log: EventLog,
        sealer: Sealer,
        entities: EntityTable,
        rows: Rows,
        snapshots: Snapshots,
    ) -> None:
        self.log = log
        self.sealer = sealer
        self.entities = entities
        self.rows = rows
        self.snapshots = snapshots
        self.hot = HotStates(log.settings.state_cache_entities)
        self.settings = log.settings
        self.fold_payloads = _FOLD_PAYLOADS  # tests lower it to cross call boundaries

    def state(self, entity_id: str, as_of: Any = None, known_at: Any = None) -> dict[str, Any]:
        """The entity's state (see ``EventStore.state``)."""
        if as_of is None and known_at is None:
            with self.log.lock:
                ent = self.entities.by_id.get(entity_id) if type(entity_id) is str else None
                no = self.entities.number(entity_id) if ent is None else ent[0]
                hot = self.hot.items.get(no)
                if hot is not None and hot[0] == self.entities.versions[no]:
                    return copy_state(hot[1], hot[2])
                return self._fold_current(no, entity_id)
        t = _INT64_MAX if as_of is None else inputs.parse_time(as_of, "as_of")
        k = None if known_at is None else inputs.parse_time(known_at, "known_at")
        with self.log.lock:
            return self._fold_at(self.entities.number(entity_id), entity_id, t, k)

    def _fold_current(self, no: int, entity_id: str) -> dict[str, Any]:
        reader = self.sealer.reader
        reader.sync(self.log.tail)
        positions = reader.index.entities.positions(no)
        current = len(positions)
        hot = self.hot.items.get(no)
        if hot is not None and hot[0] <= current:
            start, state = hot[0], hot[1]  # catch up from the cached state, in place
        else:
            start, state = self._start(no, positions, current)
        picked = np.arange(start, current, dtype=np.int64)
        self._fold(no, entity_id, state, positions, picked, current)
        self.hot.put(no, current, state)
        hot = self.hot.items.get(no)
        return copy_state(state, hot[2] if hot is not None else False)

    def _fold_at(self, no: int, entity_id: str, as_of: int, known_at: int | None) -> dict[str, Any]:
        reader = self.sealer.reader
        reader.sync(self.log.tail)
        index = reader.index
        positions = index.entities.positions(no)
        picked, leading = timetravel.visible(
            positions, index.ts.view, index.known_cut(known_at), as_of
        )
        if not len(picked):
            raise NotFound(f"entity {entity_id!r} has no event at that moment")
        if leading == len(positions):
            hot = self.hot.items.get(no)
            if hot is not None and hot[0] == leading:
                return copy_state(hot[1], hot[2])
        start, state = self._start(no, positions, leading)
        picked = picked[np.searchsorted(picked, start) :]
        return self._fold(no, entity_id, state, positions, picked, leading)

    def _start(self, no: int, positions: np.ndarray, at_most: int) -> tuple[int, dict[str, Any]]:
        """(version, state) of the newest trustworthy snapshot at or below ``at_most``."""
        snaps = self.snapshots
        if self.rows.upcasting:
            return 0, {}  # snapshots fold stored payloads; upcasters change them
        while True:
            snap = snaps.best(no, at_most)
            if snap is None:
                return 0, {}
            if not snap.checked:
                event_id = self.sealer.reader.event_id_at(int(positions[snap.version - 1]))
                if event_id != snap.event_id:
                    snaps.drop(no, snap)  # the events it folded are not the stored ones
                    continue
                snap.checked = True
            return snap.version, orjson.loads(snap.state)

    def _fold(
        self,
        no: int,
        entity_id: str,
        state: dict[str, Any],
        positions: np.ndarray,
        picked: np.ndarray,
        leading: int,
    ) -> dict[str, Any]:
        """Merge the payloads of versions ``picked + 1`` into ``state``; snapshot as it goes.

        ``leading``: versions 1..leading are all among those folded so far or now, so a
        state reached at a version up to it is the whole truth there and may be snapshotted.
        """
        if not len(picked):
            return state
        patches = self.rows.payloads(positions[picked])
        every = self.settings.snapshot_every_versions
        first = int(picked[0])
        if every and (first // every + 1) * every <= min(leading, int(picked[-1]) + 1):
            for i, patch in zip(picked.tolist(), patches, strict=True):
                merge_patch(state, patch)
                version = i + 1
                if version % every == 0 and version <= leading:
                    self._record_snapshot(no, entity_id, version, positions, state)
        else:
            for patch in patches:
                merge_patch(state, patch)
        return state

    def _record_snapshot(
        self, no: int, entity_id: str, version: int, positions: np.ndarray, state: dict[str, Any]
    ) -> bool:
        if self.rows.upcasting:
            return False
        event_id = self.sealer.reader.event_id_at(int(positions[version - 1]))
        snap = Snapshot(entity_id, version, event_id, orjson.dumps(state), checked=True)
        # A read-only or in-memory store keeps its snapshots for this session only.
        log = self.log
        return self.snapshots.add(no, snap, save=log.storage.durable and not log.read_only)

    def snapshot(self, entity_id: str) -> int:
        """Record the entity's current state durably; the version it is at.

        Raises:
            NotFound: the entity has no event.
        """
        with self.log.lock:
            no = self.entities.number(entity_id)
            version = self.entities.versions[no]
            hot = self.hot.items.get(no)
            state = hot[1] if hot is not None and hot[0] == version else None
            if state is None:
                state = self._fold_at(no, entity_id, _INT64_MAX, None)
            positions = self.sealer.reader.index.entities.positions(no)
            self._record_snapshot(no, entity_id, version, positions, state)
        self.save()
        return version

    def save(self) -> None:
        """Write unsaved snapshots, after syncing the WAL that holds what they fold.

        Raises:
            StorageError: they could not be written (the events are safe).
        """
        log = self.log
        if not self.snapshots.unsaved:
            return
        if log.read_only or not log.storage.durable or log.closed:
            self.snapshots.unsaved.clear()
            return
        log.flush()
        with log.io_lock:
            with log.lock:
                unsaved = self.snapshots.unsaved
                self.snapshots.unsaved = []
            try:
                log.storage.write_snapshots([encode_snapshot(s) for s in unsaved])
            except OSError as exc:
                raise StorageError(
                    f"snapshots could not be written ({exc}); the events are safe, and "
                    "states are folded from them without snapshots"
                ) from exc

    def states(
        self, event_type: str | None = None, as_of: Any = None, known_at: Any = None
    ) -> pd.DataFrame:
        """Every entity's state at a moment (see ``EventStore.states``)."""
        import pandas as pd

        t = _INT64_MAX if as_of is None else inputs.parse_time(as_of, "as_of")
        k = None if known_at is None else inputs.parse_time(known_at, "known_at")
        if event_type is not None and not isinstance(event_type, str):
            raise InvalidEvent("event_type must be a string", field="event_type")
        with self.log.lock:
            reader = self.sealer.reader
            reader.sync(self.log.tail)
            type_no = -1 if event_type is None else reader.type_number(event_type)
            if event_type is not None and type_no < 0:
                entities = np.empty(0, np.int64)
                version = when = entities
                states: list[dict[str, Any]] = []
            else:
                entities, version, when, states = self._bulk_fold(t, k, type_no)
            ids, order = self._sorted_ids(entities)
        frame = pd.DataFrame(
            {
                "entity_id": pd.Series(ids, dtype=object),
                "version": version[order].astype(np.int64),
                "timestamp": pd.to_datetime(when[order], unit="us", utc=True),
                "state": pd.Series([states[i] for i in order.tolist()], dtype=object),
            }
        )
        return frame

    def _sorted_ids(self, entities: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The ids of ``entities`` sorted, and the order that sorts them.

        Sorted by their UTF-8 bytes in one Arrow sort, which is the order of the ids as
        Python strings (UTF-8 keeps code point order): 0.26 s for 1M ids, against 1.36 s
        for pandas sorting them as Python strings (measured).
        """
        if not len(entities):
            return [], np.empty(0, np.int64)
        data, offsets = self.entities.keys.key_buffers()
        picked = string_array_from_buffers(data, offsets).take(pa.array(entities))
        order = pc.sort_indices(picked.cast(pa.large_binary())).to_numpy()
        blob = data.tobytes()
        bounds = offsets.tolist()
        ids = [
            blob[bounds[no] : bounds[no + 1]].decode("utf-8", "surrogatepass")
            for no in entities[order].tolist()
        ]
        return ids, order

    def _check_snapshots(self) -> None:
        """Check every unchecked snapshot against the stored event ids (drop misfits)."""
        reader = self.sealer.reader
        postings = reader.index.entities
        for no, items in list(self.snapshots.by_entity.items()):
            for snap in [s for s in items if not s.checked]:
                positions = postings.positions(no)
                if reader.event_id_at(int(positions[snap.version - 1])) == snap.event_id:
                    snap.checked = True
                else:
                    self.snapshots.drop(no, snap)

    def _bulk_fold(
        self, as_of: int, known_at: int | None, type_no: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """(entities, last visible version, its event time, state) of every entity with a
        visible event (of type ``type_no`` when >= 0), in entity number order."""
        reader = self.sealer.reader
        index = reader.index
        postings = index.entities
        n_ent = len(self.entities)
        if postings.base_end < postings.n:
            postings.build(index.ent.view, n_ent)
        self._check_snapshots()
        counts = np.zeros(n_ent + 1, np.int64)
        versions: list[int] = []
        usable = {} if self.rows.upcasting else self.snapshots.by_entity
        for no in sorted(usable):
            items = usable[no]
            counts[no + 1] = len(items)
            versions.extend(s.version for s in items)
        planned = _Plan(
            *folds.plan(
                postings.starts,
                postings.rows,
                index.ts.view,
                index.typ.view,
                index.known_cut(known_at),
                as_of,
                type_no,
                np.cumsum(counts),
                np.asarray(versions, np.int64),
            ),
            as_of,
        )
        texts = None if self.rows.upcasting else payload_texts(reader.pieces)
        # The kernel finds a position's piece by the pieces' row counts: were they ever not
        # to add up to the index, decoded rows are folded instead of reading past a piece.
        if texts is None or int(texts.bases[-1]) != index.n:
            states = self._fold_decoded(planned)
        else:
            states = self._fold_texts(planned, texts)
        return planned.entities, planned.version, planned.when, states

    def _fold_texts(self, plan: _Plan, texts: PayloadTexts) -> list[dict[str, Any]]:
        """Fold the planned entities in the kernel over the payload texts where they lie,
        a bounded number of payloads a call; Python merges the entities it leaves."""
        index = self.sealer.reader.index
        states: list[dict[str, Any]] = []
        limit = self.fold_payloads
        ka, first_i, carry = 0, -1, b""
        while ka < len(plan.entities):
            kb = ka + 1 if first_i >= 0 else plan.chunk_end(ka, limit)
            starts = [carry] if first_i >= 0 else self._snapshot_starts(plan, ka, kb)
            start_offsets = np.zeros(kb - ka + 1, np.int64)
            np.cumsum([len(x) for x in starts], out=start_offsets[1:])
            merged, merged_end, status, fallback, fallback_end, counts, stopped, ca, cz = (
                folds.fold_texts(
                    index.entities.starts,
                    index.entities.rows,
                    index.ts.view,
                    plan.as_of,
                    index.row.view,
                    texts.bases,
                    texts.wide,
                    texts.offsets32,
                    texts.offsets64,
                    texts.datas,
                    plan.entities,
                    plan.snap,
                    plan.version,
                    ka,
                    kb,
                    first_i,
                    limit,
                    np.frombuffer(b"".join(starts), np.uint8),
                    start_offsets,
                )
            )
            done = _json_array(merged, merged_end)
            if stopped < 0 and not counts.any():
                states.extend(done)  # every entity merged in the kernel: the usual case
            else:
                patches = _json_array(fallback, fallback_end)
                finished, at = iter(done), 0
                for j, kind in enumerate(status.tolist()):
                    stops_here = stopped >= 0 and j == len(status) - 1
                    if kind == folds.MERGED:
                        if stops_here:
                            carry = merged[ca:cz].tobytes()
                        else:
                            states.append(next(finished))
                        continue
                    state = orjson.loads(starts[j]) if starts[j] else {}
                    n = int(counts[j])
                    for patch in patches[at : at + n]:
                        merge_patch(state, patch)
                    at += n
                    if stops_here:
                        carry = orjson.dumps(state)
                    else:
                        states.append(state)
            # A call that stopped inside an entity goes on with it, from the state reached.
            ka, first_i = (ka + len(status) - 1, stopped) if stopped >= 0 else (kb, -1)
        return states

    def _snapshot_starts(self, plan: _Plan, ka: int, kb: int) -> list[bytes]:
        """The state text each of the planned entities ``ka..kb-1`` starts its fold
        from: its snapshot's, or empty."""
        starts = [b""] * (kb - ka)
        by_entity = self.snapshots.by_entity
        for j in np.flatnonzero(plan.snap[ka:kb]).tolist():
            no, version = int(plan.entities[ka + j]), int(plan.snap[ka + j])
            starts[j] = next(s for s in by_entity[no] if s.version == version).state
        return starts

    def _fold_decoded(self, plan: _Plan) -> list[dict[str, Any]]:
        """Fold the planned entities in Python over decoded payloads (upcast, when
        upcasters are registered), a bounded number of payloads at a time."""
        postings = self.sealer.reader.index.entities
        ts = self.sealer.reader.index.ts.view
        states: list[dict[str, Any]] = []
        limit = self.fold_payloads
        ka, first_i = 0, -1
        state: dict[str, Any] = {}
        while ka < len(plan.entities):
            kb = ka + 1 if first_i >= 0 else plan.chunk_end(ka, limit)
            positions, counts, stopped = folds.fold_positions(
                postings.starts,
                postings.rows,
                ts,
                plan.as_of,
                plan.entities,
                plan.snap,
                plan.version,
                ka,
                kb,
                first_i,
                limit,
            )
            patches = self.rows.payloads(positions)
            starts = [b""] if first_i >= 0 else self._snapshot_starts(plan, ka, kb)
            at = 0
            for j, n in enumerate(counts.tolist()):
                if j or first_i < 0:  # else: on with the entity the last call stopped in
                    state = orjson.loads(starts[j]) if starts[j] else {}
                for patch in patches[at : at + n]:
                    merge_patch(state, patch)
                at += n
                if stopped < 0 or j < len(counts) - 1:
                    states.append(state)
            ka, first_i = (ka + len(counts) - 1, stopped) if stopped >= 0 else (kb, -1)
        return states


class _Plan(NamedTuple):
    """What ``states`` folds (:func:`folds.plan`), and the moment it folds at."""

    entities: np.ndarray
    version: np.ndarray
    when: np.ndarray
    snap: np.ndarray
    fold_ends: np.ndarray
    as_of: int

    def chunk_end(self, ka: int, limit: int) -> int:
        """The end of the entities from ``ka`` on that fold at most ``limit`` payloads in
        all (at least one entity: a larger one is folded over several calls)."""
        ends = self.fold_ends
        kb = int(np.searchsorted(ends, ends[ka] + limit, side="right")) - 1
        return max(kb, ka + 1)


def _json_array(buffer: np.ndarray, end: int) -> list[Any]:
    """Decode ``buffer[:end]``: ``[`` then elements each followed by a comma."""
    if end <= 1:
        return []
    buffer[end - 1] = 93  # "]" over the last comma
    decoded: list[Any] = orjson.loads(buffer[:end].data)
    return decoded
