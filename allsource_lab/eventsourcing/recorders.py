"""The ``eventsourcing`` library's recorders over an AllSource store.

Each recorder is the library's abstract recorder implemented over one store, through the
mapping of :mod:`allsource_lab.eventsourcing.streams`:

* :class:`AllSourceAggregateRecorder`: inserts and selects an aggregate's events; several
  events of one insert are one atomic append (``append_batch``), and the store's
  expected-version check refuses a clash, which the recorder raises as the library's
  ``IntegrityError``;
* :class:`AllSourceApplicationRecorder`: also the application's notification log, whose
  notification ids are the events' sequences, and ``subscribe`` for new notifications;
* :class:`AllSourceTrackingRecorder`: tracking records, each an event of type
  ``eventsourcing.tracking`` on the entity ``eventsourcing.tracking:<application>`` whose
  payload is the position (``{"id": 7}``): durable in the store's log like any event;
* :class:`AllSourceProcessRecorder`: both, with a tracking record appended in the same
  atomic batch as the events of the insert that carries it.

Tracking events are not notifications: the notification log skips them, so a process
application's notification ids have gaps where they lie.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from allsource_lab.errors import InvalidArgument
from allsource_lab.eventsourcing.streams import (
    TRACKING_PREFIX,
    TRACKING_TYPE,
    decode_rows,
    streams_of,
)
from allsource_lab.store import EventStore

__all__ = [
    "AllSourceAggregateRecorder",
    "AllSourceApplicationRecorder",
    "AllSourceProcessRecorder",
    "AllSourceRecorder",
    "AllSourceSubscription",
    "AllSourceTrackingRecorder",
]

# How far back max_notification_id looks at once for the last event that is not a
# tracking record (a process application may track many positions in a row).
_LOOK_BACK = 256
# How many notifications a subscription selects at once.
_PAGE = 500


class AllSourceRecorder:
    """What every recorder holds: its store's shared streams, and how originator ids read
    back (``"uuid"``: a UUID's text as ``uuid.UUID``; ``"text"``: as ``str``).

    Raises:
        InvalidArgument: ``originator_id_type`` is neither ``"uuid"`` nor ``"text"``.
    """

    def __init__(self, store: EventStore, *, originator_id_type: str = "uuid") -> None:
        if originator_id_type not in ("uuid", "text"):
            raise InvalidArgument(
                f"originator_id_type must be 'uuid' or 'text', not {originator_id_type!r}"
            )
        self.store = store
        self.streams = streams_of(store)
        self.originator_id_type = originator_id_type

    def originator_id(self, entity: str) -> UUID | str:
        """The originator id an entity id reads back as."""
        if self.originator_id_type == "uuid" and len(entity) == 36:
            try:
                return UUID(entity)
            except ValueError:
                return entity
        return entity


class AllSourceAggregateRecorder(AllSourceRecorder, AggregateRecorder):
    """Inserts and selects aggregates' events (see the module's docstring).

    >>> import allsource_lab as asl
    >>> recorder = AllSourceAggregateRecorder(asl.open(), originator_id_type="text")
    >>> recorder.insert_events([StoredEvent("cart-1", 1, "app:Cart.Created", b'{"a":1}')])
    >>> [e.state for e in recorder.select_events("cart-1")]
    [b'{"a":1}']
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._insert(stored_events, None)
        return None

    def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        """Append the events (and the tracking record) atomically; their sequences."""
        streams = self.streams
        with streams.lock:
            plan = streams.plan(stored_events)
            if tracking is not None:
                streams.track(plan, tracking)
            if not plan.rows:
                return []
            try:
                sequences = streams.append(plan.rows, plan.expected)
            except IntegrityError:
                # An entity taken to exist because its first version here is above 1
                # may be new: it then starts at that version. Anything else was a clash.
                starts = {e: v for e, v in plan.assumed.items() if not streams.exists(e)}
                if not starts:
                    raise
                plan = streams.plan(stored_events, starts)
                if tracking is not None:
                    streams.track(plan, tracking)
                sequences = streams.append(plan.rows, plan.expected)
            streams.committed(plan)
        return sequences[: len(stored_events)]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        entity = str(originator_id)
        if entity.startswith(TRACKING_PREFIX):
            return []
        table = self.streams.entity_rows(entity, gt, lte, desc, limit)
        return [
            StoredEvent(originator_id, version, topic, state)
            for _, version, topic, state in decode_rows(table)
        ]


class AllSourceApplicationRecorder(AllSourceAggregateRecorder, ApplicationRecorder):
    """Also the application's notification log: notification ids are sequences.

    >>> import allsource_lab as asl
    >>> recorder = AllSourceApplicationRecorder(asl.open(), originator_id_type="text")
    >>> recorder.insert_events([StoredEvent("a", 1, "t", b"{}"), StoredEvent("b", 1, "t", b"{}")])
    [1, 2]
    >>> [(n.id, n.originator_id) for n in recorder.select_notifications(start=2, limit=5)]
    [(2, 'b')]
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        after = 0 if start is None else max(start - 1 if inclusive_of_start else start, 0)
        feed = self.store.feed
        types = tuple(topics) or None
        found: list[Notification] = []
        while len(found) < limit and (stop is None or after < stop):
            batch = feed.batch(after, limit - len(found), through=stop, event_types=types)
            if not len(batch):
                break
            table = batch.to_arrow()
            sequences = table.column("sequence").to_pylist()
            for sequence, (entity, version, topic, state) in zip(
                sequences, decode_rows(table), strict=True
            ):
                if topic != TRACKING_TYPE:
                    found.append(
                        Notification(self.originator_id(entity), version, topic, state, sequence)
                    )
            after = sequences[-1]
        return found

    def max_notification_id(self) -> int | None:
        feed = self.store.feed
        through = feed.head()
        span = 1  # the last event is the one to find, unless it is a tracking record
        while through > 0:
            after = max(through - span, 0)
            batch = feed.batch(after, through=through)
            for sequence, topic in zip(
                reversed(batch.sequences.tolist()), reversed(batch.event_types()), strict=True
            ):
                if topic != TRACKING_TYPE:
                    return int(sequence)
            through, span = after, _LOOK_BACK
        return None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return AllSourceSubscription(self, gt=gt, topics=topics)


class AllSourceSubscription(Subscription[AllSourceApplicationRecorder]):
    """Notifications after ``gt`` (of ``topics``, if given), then each new one as it is
    appended; iterating blocks until there is one, or until ``stop()``.

    It follows the store (``store.feed.follow``): an append wakes the iterating thread,
    which selects what came after the last notification it gave, in pages of
    ``_PAGE``. No thread of its own: the one iterating does the reading.
    """

    def __init__(
        self,
        recorder: AllSourceApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._source = recorder
        self._after = gt or 0
        self._wanted = tuple(topics)
        self._pending: deque[Notification] = deque()
        self._woken = threading.Event()
        self._stopped = False
        self._feed = recorder.store.feed
        self._feed.follow(self._appended)

    def _appended(self, sequence: int) -> None:
        self._woken.set()

    def stop(self) -> None:
        super().stop()
        self._stopped = True
        self._woken.set()
        self._feed.unfollow(self._appended)

    def __next__(self) -> Notification:
        while not self._stopped:
            if self._pending:
                return self._pending.popleft()
            # Cleared before selecting: an append after the selection wakes the wait.
            self._woken.clear()
            found = self._source.select_notifications(
                self._after, _PAGE, topics=self._wanted, inclusive_of_start=False
            )
            if found:
                self._after = found[-1].id
                self._pending.extend(found)
            else:
                self._woken.wait()
        raise StopIteration


class AllSourceTrackingRecorder(AllSourceRecorder, TrackingRecorder):
    """Tracking records: how far an application has processed its upstream's log.

    >>> import allsource_lab as asl
    >>> recorder = AllSourceTrackingRecorder(asl.open())
    >>> recorder.insert_tracking(Tracking("upstream", 7))
    >>> recorder.max_tracking_id("upstream"), recorder.max_tracking_id("other")
    (7, None)
    """

    def insert_tracking(self, tracking: Tracking) -> None:
        streams = self.streams
        with streams.lock:
            plan = streams.plan(())
            streams.track(plan, tracking)
            streams.append(plan.rows, plan.expected)
            streams.committed(plan)

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.streams.position(application_name)[1]


class AllSourceProcessRecorder(
    AllSourceTrackingRecorder, AllSourceApplicationRecorder, ProcessRecorder
):
    """Events and the tracking record of the notification that caused them, atomically."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        return self._insert(stored_events, tracking)
