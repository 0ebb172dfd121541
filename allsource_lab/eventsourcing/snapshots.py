"""Snapshots of aggregates: an aggregate recorder whose versions need not follow one another.

The library records a snapshot of an aggregate at whatever version it is asked to (every
N versions, or on demand, in any order), so a snapshot's version cannot be a store's
gapless version. The factory keeps them in a store of their own (a folder
``eventsourcing-snapshots`` inside the application's store, or in memory), where the
store's version counts an entity's snapshots and each event's metadata holds the
snapshot's version (``{"originator_version": n}``). The application's store keeps
nothing but its events and tracking records, so its notification ids stay gapless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, IntegrityError, StoredEvent

from allsource_lab.eventsourcing.recorders import AllSourceRecorder
from allsource_lab.eventsourcing.streams import Plan, Row, decode_rows, encode_state, entity_of

__all__ = ["AllSourceSnapshotRecorder"]


class AllSourceSnapshotRecorder(AllSourceRecorder, AggregateRecorder):
    """Records stored events at any versions, unique per originator.

    An insert is one atomic append; a version already recorded for its originator (or
    twice in one insert) raises the library's ``IntegrityError`` and nothing is written.

    >>> import allsource_lab as asl
    >>> recorder = AllSourceSnapshotRecorder(asl.open(), originator_id_type="text")
    >>> recorder.insert_events([StoredEvent("cart-1", 10, "Snapshot", b'{"a":1}')])
    >>> recorder.insert_events([StoredEvent("cart-1", 5, "Snapshot", b'{"a":0}')])
    >>> [e.originator_version for e in recorder.select_events("cart-1", desc=True)]
    [10, 5]
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        streams = self.streams
        with streams.lock:
            plan = Plan([], {}, {}, {})
            recorded: dict[str, set[int]] = {}
            for stored in stored_events:
                entity = entity_of(stored.originator_id)
                versions = recorded.get(entity)
                if versions is None:
                    table = self.store.events(entity_id=entity).to_arrow()
                    versions = recorded[entity] = {v for _, v, _, _ in decode_rows(table)}
                    plan.expected[entity] = table.num_rows
                version = stored.originator_version
                if version in versions:
                    raise IntegrityError(f"version {version} of {entity!r} is already recorded")
                versions.add(version)
                payload, wrapped, moment = encode_state(
                    stored.state, streams.max_bytes, streams.max_depth
                )
                metadata: dict[str, Any] = {"originator_version": version}
                if wrapped:
                    metadata["state"] = "base64"
                plan.rows.append(Row(stored.topic, entity, payload, metadata, moment))
            if plan.rows:
                streams.append(plan.rows, plan.expected)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        table = self.store.events(entity_id=str(originator_id)).to_arrow()
        found = sorted(
            (
                (version, topic, state)
                for _, version, topic, state in decode_rows(table)
                if (gt is None or version > gt) and (lte is None or version <= lte)
            ),
            key=lambda row: row[0],
            reverse=desc,
        )
        return [StoredEvent(originator_id, v, t, s) for v, t, s in found[:limit]]
