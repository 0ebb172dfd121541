"""Entity states: payloads folded with JSON Merge Patch, at any moment, from snapshots.

The current state of recently asked entities is kept decoded (:class:`HotStates`), so
asking again costs a dict copy. A fold at a moment starts from the newest snapshot at or
below it that still matches the stored events (checked once by event id), and records a
snapshot every ``snapshot_every_versions`` as it goes. ``states()`` plans every entity's
fold in one numba call (:func:`allsource_lab._kernels.timetravel.plan`) and decodes all
payloads it needs in one go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from allsource_lab._ingest import inputs
from allsource_lab._kernels import timetravel
from allsource_lab._query.state import (
    HotStates,
    Snapshot,
    Snapshots,
    copy_state,
    encode_snapshot,
    merge_patch,
)
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.log import EventLog
from allsource_lab._store.rows import Rows
from allsource_lab._store.sealing import Sealer
from allsource_lab.errors import InvalidEvent, NotFound, StorageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["States"]

_INT64_MAX = int(np.iinfo(np.int64).max)


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
            keys = self.entities.keys
            ids = [keys.key(no).decode("utf-8", "surrogatepass") for no in entities.tolist()]
        frame = pd.DataFrame(
            {
                "entity_id": pd.Series(ids, dtype=object),
                "version": version.astype(np.int64),
                "timestamp": pd.to_datetime(when, unit="us", utc=True),
                "state": pd.Series(states, dtype=object),
            }
        )
        return frame.sort_values("entity_id", kind="stable").reset_index(drop=True)

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
        entities, version, when, snap_at, fold_starts, fold = timetravel.plan(
            postings.starts,
            postings.rows,
            index.ts.view,
            index.typ.view,
            index.known_cut(known_at),
            as_of,
            type_no,
            np.cumsum(counts),
            np.asarray(versions, np.int64),
        )
        patches = self.rows.payloads(fold)
        states = []
        bounds = fold_starts.tolist()
        by_entity = self.snapshots.by_entity
        for i, (no, s) in enumerate(zip(entities.tolist(), snap_at.tolist(), strict=True)):
            if s:
                start = next(x for x in by_entity[no] if x.version == s)
                state = orjson.loads(start.state)
            else:
                state = {}
            for patch in patches[bounds[i] : bounds[i + 1]]:
                merge_patch(state, patch)
            states.append(state)
        return entities, version, when, states
