"""The store as its followers see it: the one interface features reach the store through.

Projections (:mod:`allsource_lab.projections.runner`), replays
(:mod:`allsource_lab.replay`), subscriptions (:mod:`allsource_lab.subscriptions`) and the
live-tail widget are handed an :class:`EventFeed` (``store.feed``), never the store: they
need the head sequence, batches of events after a position, counts, a hook called after
every append, a place for their durable state, and whether the store is closed — and
nothing else. Keeping them to this protocol is what lets the store's parts change without
them, and it is checked: an import-linter contract forbids these modules to import
``allsource_lab.store`` or ``allsource_lab._store``.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("a", "x", {"n": 1}); _ = store.append("b", "x", {"n": 2})
    >>> feed = store.feed
    >>> feed.head(), feed.count(0), [e.event_type for e in feed.batch(1)]
    (2, 2, ['b'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from allsource_lab.eventbatch import EventBatch

__all__ = ["EventFeed", "Listener", "SqlSource"]

# Called with the last stored sequence after every append or batch, outside the store's
# locks, in the appending thread: it must be quick (hand work to a thread of its own).
Listener = Callable[[int], None]


class EventFeed(Protocol):
    """What a follower may ask of a store."""

    @property
    def closed(self) -> bool:
        """Whether the store is closed (followers stop)."""
        ...

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only (followers cannot save state)."""
        ...

    @property
    def problems(self) -> list[str]:
        """The store's ``recovery_problems``: where a follower reports damaged state."""
        ...

    @property
    def subscriptions(self) -> dict[str, Any]:
        """Open subscriptions by name (owned by :mod:`allsource_lab.subscriptions`)."""
        ...

    def head(self) -> int:
        """The last stored sequence (0 when empty)."""
        ...

    def batch(
        self,
        after: int,
        limit: int | None = None,
        *,
        through: int | None = None,
        event_types: tuple[str, ...] | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> EventBatch:
        """The events with sequence above ``after`` (and at most ``through``), in
        sequence order, of ``event_types`` if given, with event time (µs) in
        ``[since, until)`` if given; the first ``limit`` of them."""
        ...

    def count(
        self, after: int, through: int | None = None, event_types: tuple[str, ...] | None = None
    ) -> int:
        """How many events ``batch`` would find (without time filters)."""
        ...

    def follow(self, listener: Listener) -> None:
        """Call ``listener`` after every append from now on."""
        ...

    def unfollow(self, listener: Listener) -> None:
        """Stop calling ``listener`` (nothing if it is not following)."""
        ...

    def flush(self) -> None:
        """Make every stored event durable (before saving a position that points at it)."""
        ...

    def load_states(self, kind: str) -> tuple[dict[str, bytes], list[str]]:
        """Saved state records of one kind by name, and problems met reading them."""
        ...

    def write_state(self, kind: str, name: str, body: bytes | None) -> None:
        """Replace (``None``: remove) one named state record, atomically and durably."""
        ...

    def add_replay(self, job: Any) -> None:
        """Remember a replay job (``store.replays()`` lists them)."""
        ...

    def replay_jobs(self) -> list[Any]:
        """Replay jobs started on the store, oldest first."""
        ...


class SqlSource(Protocol):
    """A store as SQL analytics see it (windows, ``store.analytics``): its ``events`` view."""

    def sql(self, query: str, params: Any = None) -> Any:
        """A DuckDB relation for ``query`` over the view ``events``."""
        ...
