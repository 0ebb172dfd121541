"""A persistence module for the ``eventsourcing`` library: its applications on an AllSource store.

An application runs unchanged with ``PERSISTENCE_MODULE=allsource_lab.eventsourcing`` in
its environment; ``ALLSOURCE_PATH`` names the store's folder (unset: an in-memory store,
like the library's POPO module). Then every aggregate's history is an entity's history in
the store: ``store.state(id, as_of=...)``, SQL, windows and the notebook's widgets read it.

Environment (each also read with the application's name as prefix, as the library does,
e.g. ``BANKACCOUNTS_ALLSOURCE_PATH``):

* ``ALLSOURCE_PATH``: the store's folder, created if missing. Each application needs a
  store of its own (a store is one application's notification log).
* ``ALLSOURCE_FSYNC``: the store's ``fsync`` policy (``always``, ``interval``, ``never``);
  unset, the store's default.
* ``ORIGINATOR_ID_TYPE``: ``uuid`` (default) or ``text``, how originator ids read back in
  notifications (as the library's SQLite module).

What maps to what is in :mod:`allsource_lab.eventsourcing.streams`; the recorders are in
:mod:`~allsource_lab.eventsourcing.recorders` and
:mod:`~allsource_lab.eventsourcing.snapshots`. :func:`aggregate_at` (and
:func:`aggregates_at` for all of them) rebuilds an aggregate as it was at a moment, by the
store's time travel (:mod:`~allsource_lab.eventsourcing.aggregates`).

>>> from eventsourcing.application import Application
>>> from eventsourcing.domain import Aggregate, event
>>> class Cart(Aggregate):
...     @event("Created")
...     def __init__(self, owner: str) -> None:
...         self.owner = owner
>>> app = Application(env={"PERSISTENCE_MODULE": "allsource_lab.eventsourcing"})
>>> cart = Cart("ada")
>>> _ = app.save(cart)
>>> app.repository.get(cart.id).owner
'ada'
>>> app.factory.store().state(str(cart.id))["owner"]
'ada'
>>> app.close()
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from allsource_lab.errors import InvalidArgument, StoreLocked
from allsource_lab.eventsourcing.aggregates import aggregate_at, aggregates_at
from allsource_lab.eventsourcing.recorders import (
    AllSourceAggregateRecorder,
    AllSourceApplicationRecorder,
    AllSourceProcessRecorder,
    AllSourceRecorder,
    AllSourceSubscription,
    AllSourceTrackingRecorder,
)
from allsource_lab.eventsourcing.snapshots import AllSourceSnapshotRecorder
from allsource_lab.store import EventStore
from allsource_lab.store import open as open_store

__all__ = [
    "AllSourceAggregateRecorder",
    "AllSourceApplicationRecorder",
    "AllSourceFactory",
    "AllSourceProcessRecorder",
    "AllSourceRecorder",
    "AllSourceSnapshotRecorder",
    "AllSourceSubscription",
    "AllSourceTrackingRecorder",
    "Factory",
    "aggregate_at",
    "aggregates_at",
]


class AllSourceFactory(InfrastructureFactory[AllSourceTrackingRecorder]):
    """Builds the recorders of one application over its store, opened on first need.

    The application's events, notification log and tracking records share one store;
    snapshots (and any aggregate recorder of another purpose than ``"events"``) go to a
    store of their own, ``eventsourcing-<purpose>`` inside the application's folder.
    ``close()`` closes what it opened.

    Raises:
        InvalidArgument: ``ORIGINATOR_ID_TYPE`` is neither ``uuid`` nor ``text``, or a
            recorder topic names a class that is not one of this module's recorders.
    """

    ALLSOURCE_PATH = "ALLSOURCE_PATH"
    ALLSOURCE_FSYNC = "ALLSOURCE_FSYNC"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"

    aggregate_recorder_class = AllSourceAggregateRecorder
    application_recorder_class = AllSourceApplicationRecorder
    tracking_recorder_class = AllSourceTrackingRecorder
    process_recorder_class = AllSourceProcessRecorder
    snapshot_recorder_class = AllSourceSnapshotRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.path = self.env.get(self.ALLSOURCE_PATH) or None
        self.fsync = self.env.get(self.ALLSOURCE_FSYNC) or None
        id_type = (self.env.get(self.ORIGINATOR_ID_TYPE) or "uuid").lower()
        if id_type not in ("uuid", "text"):
            raise InvalidArgument(
                f"{self.ORIGINATOR_ID_TYPE} must be 'uuid' or 'text', not {id_type!r}"
            )
        self.originator_id_type = id_type
        self._stores: dict[str, EventStore] = {}
        self._lock = threading.Lock()

    def store(self, purpose: str = "events") -> EventStore:
        """The store of ``purpose`` (``"events"``: the application's), opened on first need.

        Raises:
            StoreLocked: another application or process has the folder open.
        """
        with self._lock:
            store = self._stores.get(purpose)
            if store is None or store.closed:
                path = None
                if self.path is not None:
                    path = Path(self.path)
                    if purpose != "events":
                        path = path / f"eventsourcing-{purpose}"
                settings: dict[str, Any] = {} if self.fsync is None else {"fsync": self.fsync}
                try:
                    store = open_store(path, **settings)
                except StoreLocked as exc:
                    names = " or ".join(self.env.create_keys(self.ALLSOURCE_PATH))
                    raise StoreLocked(
                        f"{exc}. Each application needs a store of its own: set {names}"
                    ) from exc
                self._stores[purpose] = store
            return store

    def _recorder_class(self, topic_key: str, default: type[AllSourceRecorder]) -> type[Any]:
        topic = self.env.get(topic_key)
        cls = resolve_topic(topic) if topic else default
        if not (isinstance(cls, type) and issubclass(cls, default)):
            raise InvalidArgument(
                f"{topic_key} names {cls!r}, which is not a subclass of {default.__name__}"
            )
        return cls

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "events":
            return self.aggregate_recorder_class(
                self.store(), originator_id_type=self.originator_id_type
            )
        return self.snapshot_recorder_class(
            self.store(purpose), originator_id_type=self.originator_id_type
        )

    def application_recorder(self) -> ApplicationRecorder:
        cls = self._recorder_class(self.APPLICATION_RECORDER_TOPIC, self.application_recorder_class)
        recorder: ApplicationRecorder = cls(
            self.store(), originator_id_type=self.originator_id_type
        )
        return recorder

    def tracking_recorder(
        self, tracking_recorder_class: type[AllSourceTrackingRecorder] | None = None
    ) -> AllSourceTrackingRecorder:
        cls = tracking_recorder_class or self._recorder_class(
            self.TRACKING_RECORDER_TOPIC, self.tracking_recorder_class
        )
        if not issubclass(cls, AllSourceTrackingRecorder):
            raise InvalidArgument(
                f"{cls!r} is not a subclass of {AllSourceTrackingRecorder.__name__}"
            )
        recorder: AllSourceTrackingRecorder = cls(
            self.store(), originator_id_type=self.originator_id_type
        )
        return recorder

    def process_recorder(self) -> ProcessRecorder:
        cls = self._recorder_class(self.PROCESS_RECORDER_TOPIC, self.process_recorder_class)
        recorder: ProcessRecorder = cls(self.store(), originator_id_type=self.originator_id_type)
        return recorder

    def close(self) -> None:
        """Close the stores this factory opened (flushing and sealing them)."""
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.close()


# The library finds a persistence module's factory as its one subclass of
# InfrastructureFactory; ``Factory`` is the name its own modules export it by.
Factory = AllSourceFactory
