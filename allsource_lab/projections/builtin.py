"""Built-in projections: entity states by merge patch, and event counts.

Both are durable (their state is JSON) and fold batches column-wise; ``apply`` gives the
same answers one event at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from allsource_lab._query.state import merge_patch
from allsource_lab.events import Event
from allsource_lab.projections.base import EventBatch, Projection

__all__ = ["EntitySnapshots", "EventCounter"]


class EntitySnapshots(Projection):
    """Each entity's state: its payloads folded with JSON Merge Patch (RFC 7386), as
    ``store.state`` computes it, kept for every entity at once.

    ``state(entity_id)`` is that entity's state (a copy; ``NotFound``-style ``KeyError``
    when it has no events here); ``state()`` is ``{entity_id: state}`` for all.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("user.joined", "u1", {"name": "Ada", "tier": "free"})
    >>> snaps = store.projections.add(asl.EntitySnapshots())
    >>> _ = store.append("user.upgraded", "u1", {"tier": "pro"})
    >>> snaps.state("u1"), snaps.versions["u1"]
    ({'name': 'Ada', 'tier': 'pro'}, 2)
    """

    def __init__(
        self, name: str = "entity_snapshots", event_types: Sequence[str] | str | None = None
    ) -> None:
        super().__init__(name, event_types)

    def reset(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}

    def apply(self, event: Event) -> None:
        entity = event.entity_id
        merge_patch(self.states.setdefault(entity, {}), event.payload)
        self.versions[entity] = event.version

    def apply_batch(self, batch: EventBatch) -> None:
        states = self.states
        entities = batch.entity_ids()
        for entity, payload in zip(entities, batch.payloads(), strict=True):
            target = states.get(entity)
            if target is None:
                target = states[entity] = {}
            merge_patch(target, payload)
        # In sequence order, so each entity's last version wins.
        self.versions.update(zip(entities, batch.column("version").to_pylist(), strict=True))

    def state(self, key: Any = None) -> Any:
        if key is None:
            return copy.deepcopy(self.states)
        try:
            return copy.deepcopy(self.states[key])
        except KeyError:
            raise KeyError(f"{self.name} has no events of entity {key!r}") from None

    def dump_state(self) -> Any:
        return {"states": self.states, "versions": self.versions}

    def load_state(self, data: Any) -> None:
        self.states = dict(data["states"])
        self.versions = {k: int(v) for k, v in data["versions"].items()}


class EventCounter(Projection):
    """How many events, by type and by entity.

    ``state()`` is ``{"total": n, "by_type": {...}, "by_entity": {...}}``;
    ``state("by_type")`` (or ``"by_entity"``, ``"total"``) is that part.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> counter = store.projections.add(asl.EventCounter())
    >>> _ = store.append_batch([{"event_type": "a", "entity_id": "x", "payload": {}},
    ...                         {"event_type": "b", "entity_id": "x", "payload": {}}])
    >>> counter.state()
    {'total': 2, 'by_type': {'a': 1, 'b': 1}, 'by_entity': {'x': 2}}
    """

    def __init__(
        self, name: str = "event_counter", event_types: Sequence[str] | str | None = None
    ) -> None:
        super().__init__(name, event_types)

    def reset(self) -> None:
        self.total = 0
        self.by_type: dict[str, int] = {}
        self.by_entity: dict[str, int] = {}

    def apply(self, event: Event) -> None:
        self.total += 1
        self.by_type[event.event_type] = self.by_type.get(event.event_type, 0) + 1
        self.by_entity[event.entity_id] = self.by_entity.get(event.entity_id, 0) + 1

    def apply_batch(self, batch: EventBatch) -> None:
        self.total += len(batch)
        for counts, into in (
            (batch.count_by_type(), self.by_type),
            (batch.count_by_entity(), self.by_entity),
        ):
            get = into.get
            for key, n in counts.items():
                into[key] = get(key, 0) + n

    def state(self, key: Any = None) -> Any:
        whole = {
            "total": self.total,
            "by_type": dict(self.by_type),
            "by_entity": dict(self.by_entity),
        }
        if key is None:
            return whole
        if key not in whole:
            raise KeyError(
                f"EventCounter.state takes None, 'total', 'by_type' or 'by_entity', not {key!r}"
            )
        return whole[key]

    def dump_state(self) -> Any:
        return self.state()

    def load_state(self, data: Any) -> None:
        self.total = int(data["total"])
        self.by_type = {k: int(v) for k, v in data["by_type"].items()}
        self.by_entity = {k: int(v) for k, v in data["by_entity"].items()}
