"""What a projection is, and the columnar batch of events it is fed.

A projection folds events, in sequence order, into a view. It sees each event once per
run: live (inside ``append``/``append_batch``), during catch-up, or in a replay. The
runner (:mod:`allsource_lab.projections.runner`) prefers ``apply_batch`` and feeds it an
:class:`EventBatch`, which materializes only what the projection asks for: counting by type
reads two integer columns of the index, ``payloads()`` decodes all payloads in one call.

A projection is durable when it can write its state as JSON (``dump_state``) and read it
back (``load_state``): the store then keeps that state together with the last sequence
applied, and a projection added again under the same name after a reopen resumes there.
Nothing stored is ever executed or unpickled: state is JSON only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from allsource_lab.errors import InvalidArgument
from allsource_lab.eventbatch import EventBatch, EventList
from allsource_lab.eventframe import RowSource
from allsource_lab.events import Event

if TYPE_CHECKING:
    pass

_NO_POSITIONS = np.empty(0, np.int64)

__all__ = ["BatchSource", "EventBatch", "EventList", "Projection"]

# The name this module gave the row source before frames and batches shared one.
BatchSource = RowSource


class Projection:
    """Folds events into a view. Subclass it and define ``apply`` (and, for speed,
    ``apply_batch``); define ``dump_state``/``load_state`` to make it durable.

    ``name`` identifies the projection in the store (its durable state is kept under it);
    ``event_types`` (optional) limits which events it is fed. Either may be set as a class
    attribute instead of passed; a passed one wins, and with no name at all the class's
    name is the projection's.

    Raises:
        InvalidArgument: ``name`` is not a non-empty str, or an event type is not one.

    >>> class Totals(Projection):
    ...     def __init__(self):
    ...         super().__init__("totals", event_types=["order.placed"])
    ...     def reset(self):
    ...         self.total = 0.0
    ...     def apply(self, event):
    ...         self.total += event.payload["amount"]
    ...     def state(self, key=None):
    ...         return self.total
    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("order.placed", "o-1", {"amount": 2.5})
    >>> p = store.projections.add(Totals())
    >>> _ = store.append("order.placed", "o-2", {"amount": 4.0})
    >>> p.state()
    6.5
    >>> class Count(Projection):
    ...     name = "placed"
    ...     event_types = ["order.placed"]
    ...     def reset(self):
    ...         self.n = 0
    ...     def apply(self, event):
    ...         self.n += 1
    >>> Count()
    Count('placed', event_types=['order.placed'])
    >>> Count(name="placed-too").name
    'placed-too'
    """

    name: str
    event_types: tuple[str, ...] | None

    def __init__(
        self, name: str | None = None, event_types: Sequence[str] | str | None = None
    ) -> None:
        # A subclass's class attributes are defaults: without this, `name = "totals"` in
        # the class body made the constructor fail for a missing argument.
        if name is None:
            name = getattr(type(self), "name", type(self).__name__)
        if event_types is None:
            event_types = getattr(type(self), "event_types", None)
        if not isinstance(name, str) or not name:
            raise InvalidArgument(
                f"a projection needs a non-empty name (a str), not {name!r}: pass name=... "
                "or set name = '...' in the class"
            )
        if isinstance(event_types, str):
            event_types = [event_types]
        if event_types is not None:
            event_types = tuple(event_types)
            if not all(isinstance(t, str) and t for t in event_types):
                raise InvalidArgument(f"event_types must be non-empty strings, not {event_types!r}")
        self.name = name
        self.event_types = event_types
        self.reset()

    def reset(self) -> None:
        """Forget everything applied (the state of a projection that saw no event)."""

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        raise NotImplementedError(f"{type(self).__name__} must define apply(event)")

    def apply_batch(self, batch: EventBatch) -> None:
        """Fold a batch in, in order. The default calls ``apply`` for each event;
        override it with columnar work to go faster (the runner always calls this)."""
        for event in batch:
            self.apply(event)

    def state(self, key: Any = None) -> Any:
        """The view, or the part of it under ``key``."""
        raise NotImplementedError(f"{type(self).__name__} must define state(key=None)")

    def dump_state(self) -> Any:
        """The state as JSON-able data, or ``None`` if this projection is not durable."""
        return None

    def load_state(self, data: Any) -> None:
        """Take back what ``dump_state`` returned."""
        raise NotImplementedError(f"{type(self).__name__} must define load_state(data)")

    @property
    def durable(self) -> bool:
        """Whether the store can keep this projection's state across reopen."""
        return type(self).dump_state is not Projection.dump_state

    def __repr__(self) -> str:
        types = "" if self.event_types is None else f", event_types={list(self.event_types)}"
        return f"{type(self).__name__}({self.name!r}{types})"
