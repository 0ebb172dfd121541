"""An ``eventsourcing`` application's aggregates as they were at a moment, by time travel.

``store.state(id, as_of=t)`` folds payloads with JSON merge patch, which is the aggregate's
state only when each event carries the attribute values it sets. Most aggregates compute
their state (``self.balance += amount``); for them the aggregate at a moment must be
rebuilt the way the application rebuilds it. :func:`aggregate_at` does that: the store
picks the events by its two clocks (``as_of``: event time, which this module stores from
each event's ``timestamp``; ``known_at``: when the store recorded them), the mapping of
:mod:`~allsource_lab.eventsourcing.streams` turns them back into the library's stored
events, the application's mapper into domain events, and the library's projector folds
them, as ``app.repository.get`` does (without snapshots).

The aggregate at ``as_of=t`` is ``app.repository.get(id, version=v)``, ``v`` being the
last version whose event time is at most ``t`` (among the events recorded by
``known_at``). When an aggregate's event times run in version order, as the library's
clock gives them, those are exactly the events up to ``t``; an event whose time lies
before an earlier version's (a back-dated event) brings the versions before it along, since
an aggregate is only ever rebuilt from its first version on.

A state the store keeps wrapped (compressed, encrypted: ``{"base64": ...}``) has no event
time the store can read, so its event time is when the store recorded it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import pyarrow.compute as pc
from eventsourcing.application import Application, ProjectorFunction, project_aggregate
from eventsourcing.persistence import StoredEvent

from allsource_lab.errors import InvalidArgument, NotFound
from allsource_lab.eventsourcing.recorders import AllSourceRecorder
from allsource_lab.eventsourcing.streams import TRACKING_PREFIX, TRACKING_TYPE, decode_rows

__all__ = ["aggregate_at", "aggregates_at"]


def _recorder_of(app: Application[Any]) -> AllSourceRecorder:
    """The application's recorder, or an error naming the persistence module to set."""
    recorder = app.recorder
    if not isinstance(recorder, AllSourceRecorder):
        raise InvalidArgument(
            f"the application {app.name!r} keeps its events with {type(recorder).__name__}, "
            "not in an AllSource store; construct it with "
            "PERSISTENCE_MODULE=allsource_lab.eventsourcing in its environment"
        )
    return recorder


def _fold(
    app: Application[Any],
    stored: Iterable[StoredEvent],
    projector_func: ProjectorFunction[Any, Any],
) -> Any:
    return projector_func(None, map(app.mapper.to_domain_event, stored))


def _when(as_of: Any, known_at: Any) -> str:
    """The moment asked for, as the error messages say it."""
    said = [f"as_of={as_of!s}"] if as_of is not None else []
    if known_at is not None:
        said.append(f"known_at={known_at!s}")
    return ", ".join(said) or "now"


def aggregate_at(
    app: Application[Any],
    originator_id: UUID | str,
    *,
    as_of: Any = None,
    known_at: Any = None,
    projector_func: ProjectorFunction[Any, Any] = project_aggregate,
) -> Any:
    """The aggregate ``originator_id`` as it was at ``as_of`` (event time), as known at
    ``known_at`` (recorded time): ``app.repository.get(originator_id, version=v)`` for the
    last version ``v`` whose event time is at most ``as_of``.

    Either time may be left out (then every event counts on that clock); both take an
    aware datetime, ISO-8601 text or a pandas Timestamp, as the store's ``events`` does.
    ``projector_func`` folds the domain events, as it does for ``repository.get``.
    The aggregate is rebuilt from its events each call (snapshots are not read).

    Raises:
        NotFound: the store has no event of ``originator_id``, or none at that moment.
        InvalidArgument: ``app`` does not keep its events in an AllSource store, or
            ``originator_id`` is not an aggregate's id.
        InvalidEvent: a naive or unparseable time.

    >>> from datetime import datetime, timedelta
    >>> from eventsourcing.application import Application
    >>> from eventsourcing.domain import Aggregate, event
    >>> class Tally(Aggregate):
    ...     @event("Started")
    ...     def __init__(self) -> None:
    ...         self.total = 0
    ...     @event("Added")
    ...     def add(self, n: int) -> None:
    ...         self.total += n
    >>> app = Application(env={"PERSISTENCE_MODULE": "allsource_lab.eventsourcing"})
    >>> tally = Tally()
    >>> tally.add(5); tally.add(7)
    >>> _ = app.save(tally)
    >>> second = app.repository.get(tally.id, version=2).modified_on
    >>> aggregate_at(app, tally.id, as_of=second).total
    5
    >>> aggregate_at(app, tally.id, as_of=second) == app.repository.get(tally.id, version=2)
    True
    >>> aggregate_at(app, tally.id, as_of=tally.created_on - timedelta(seconds=1))
    Traceback (most recent call last):
    ...
    allsource_lab.errors.NotFound: aggregate ... had no event by as_of=...
    >>> app.close()
    """
    store = _recorder_of(app).store
    if not isinstance(originator_id, UUID | str):
        raise InvalidArgument(
            f"an originator id is a UUID or a str, not {type(originator_id).__name__}"
        )
    entity = str(originator_id)
    if entity.startswith(TRACKING_PREFIX):
        raise InvalidArgument(
            f"{entity!r} holds tracking records, not an aggregate's events; read it with "
            "store.events(entity_id=...)"
        )
    table = store.events(entity_id=entity, as_of=as_of, known_at=known_at).to_arrow()
    if table.num_rows == 0:
        first = store.events(entity_id=entity, limit=1).first(1)
        if not first:
            raise NotFound(
                f"the application's store has no event of aggregate {entity!r}; check the id "
                "(app.recorder.select_notifications lists the ones saved) and that the "
                "application's ALLSOURCE_PATH names the store it saved to"
            )
        raise NotFound(
            f"aggregate {entity!r} had no event by {_when(as_of, known_at)}; its first "
            f"event's time is {first[0].timestamp.isoformat()} and it was recorded at "
            f"{first[0].recorded_at.isoformat()}"
        )
    last = pc.max(table.column("version")).as_py()
    if table.num_rows != last:
        # Versions are gapless from 1 and in sequence order, so the events through the
        # last visible version are the entity's first ``last`` rows; every one of them was
        # recorded before that version was, so ``known_at`` holds for them too.
        table = store.events(entity_id=entity, limit=last).to_arrow()
    stored = (StoredEvent(originator_id, v, t, s) for _, v, t, s in decode_rows(table))
    aggregate = _fold(app, stored, projector_func)
    if aggregate is None:
        raise NotFound(
            f"the events of {entity!r} by {_when(as_of, known_at)} fold to no "
            "aggregate (its projector returned None)"
        )
    return aggregate


def aggregates_at(
    app: Application[Any],
    *,
    as_of: Any = None,
    known_at: Any = None,
    projector_func: ProjectorFunction[Any, Any] = project_aggregate,
) -> dict[UUID | str, Any]:
    """Every aggregate of the application's store as :func:`aggregate_at` gives it, by id.

    One pass over the store instead of one read per aggregate: the events at the moment
    are read once (and, when a back-dated event hides versions before it, the events
    recorded by ``known_at`` once more), grouped by aggregate and folded. Aggregates with
    no event by then are left out; the keys are originator ids as the application reads
    them back (``uuid.UUID`` unless ``ORIGINATOR_ID_TYPE=text``), in the order the
    aggregates were first saved. Tracking records are no aggregates and are skipped.

    Raises:
        InvalidArgument: ``app`` does not keep its events in an AllSource store.
        InvalidEvent: a naive or unparseable time.

    >>> from eventsourcing.application import Application
    >>> from eventsourcing.domain import Aggregate, event
    >>> class Counter(Aggregate):
    ...     @event("Started")
    ...     def __init__(self) -> None:
    ...         self.total = 0
    ...     @event("Added")
    ...     def add(self, n: int) -> None:
    ...         self.total += n
    >>> app = Application(env={"PERSISTENCE_MODULE": "allsource_lab.eventsourcing"})
    >>> a, b = Counter(), Counter()
    >>> a.add(1); b.add(2); b.add(3)
    >>> _ = app.save(a, b)
    >>> [c.total for c in aggregates_at(app).values()]
    [1, 5]
    >>> app.close()
    """
    recorder = _recorder_of(app)
    store = recorder.store
    visible = store.events(as_of=as_of, known_at=known_at).to_arrow()
    visible = visible.filter(pc.not_equal(visible.column("event_type"), TRACKING_TYPE))
    lasts = visible.group_by("entity_id").aggregate([("version", "max"), ("version", "count")])
    if (
        as_of is not None
        and not pc.all(pc.equal(lasts.column("version_max"), lasts.column("version_count"))).as_py()
    ):
        # A back-dated event hides versions before it: take them from what was recorded.
        every = store.events(known_at=known_at).to_arrow()
        bound = pc.index_in(every.column("entity_id"), lasts.column("entity_id"))
        through = pc.take(lasts.column("version_max"), bound)
        visible = every.filter(pc.fill_null(pc.less_equal(every.column("version"), through), False))
    histories: dict[str, list[StoredEvent]] = {}
    for entity, version, topic, state in decode_rows(visible):
        found = histories.get(entity)
        if found is None:
            found = histories[entity] = []
        found.append(StoredEvent(recorder.originator_id(entity), version, topic, state))
    aggregates: dict[UUID | str, Any] = {}
    for stored in histories.values():
        aggregate = _fold(app, stored, projector_func)
        if aggregate is not None:
            aggregates[stored[0].originator_id] = aggregate
    return aggregates
