"""Durable subscriptions: ``store.subscribe(name, handler)`` feeds a handler every event.

A subscription delivers the stored events after its cursor (catch-up), then each new one
as it is appended, in sequence order and at least once. The handler acknowledges an event
by returning normally; the cursor (the last acknowledged sequence) is kept under the
subscription's name in ``<store>/subscriptions/``, so subscribing again with the same
name, after a clean close or a ``kill -9``, resumes after the last acknowledged event.

Why at least once and not exactly once: writing the cursor replaces one small file
atomically (~0.45 ms here, measured), too slow for every event, so it is written after each
delivered batch (background delivery) or every ``batch_size`` acknowledged events (sync
delivery, whose batches are single appends: writing per append cost ~0.9 ms per append,
measured), and whenever the subscription pauses, stops or closes. A process that dies in
between gets those events delivered again (fewer than ``batch_size``); a handler that must
not repeat an effect checks ``event.event_id``.

Before a cursor is written the WAL is flushed through it (~45 µs when already synced,
measured), so under ``fsync="interval"`` or ``"never"`` a cursor never points past events
that a crash could take away: sequences are reused after such a loss, and a cursor ahead of
the log would skip the new events that take them. Events are delivered as soon as they are
stored, not once they are fsynced, so under those policies a handler may see an event that
a crash then loses, as the code that appended it may; identify events by ``event_id``,
which is never reused, rather than by ``sequence``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from allsource_lab._storage import state_file_name
from allsource_lab.errors import InvalidArgument, StorageError
from allsource_lab.events import Event

if TYPE_CHECKING:
    from allsource_lab._feed import EventFeed

__all__ = ["Subscription", "close_all"]

KIND = "subscriptions"  # the storage kind (and folder) of cursor records
DELIVERIES = ("background", "sync")

# Guards every store's ``_subscriptions`` (one name, one open subscription).
_registry = threading.Lock()
# Cursors of subscriptions on read-only stores, which cannot write them: kept for the
# session, so closing and subscribing again resumes as on a writable store.
_session_cursors: weakref.WeakKeyDictionary[EventFeed, dict[str, int]] = weakref.WeakKeyDictionary()


class Subscription:
    """Delivers a store's events to ``handler``, in sequence order, at least once.

    Made by :meth:`EventStore.subscribe <allsource_lab.store.EventStore.subscribe>`:

    ``store.subscribe(name, handler, start="beginning", event_types=None, batch_size=1000,
    delivery="background", max_retries=3, backoff=0.05)``

    - ``handler(event)`` gets one :class:`~allsource_lab.events.Event` per call and
      acknowledges it by returning normally (its return value is ignored).
    - ``name`` keeps the cursor (``position``: the last acknowledged sequence) durably in
      the store. Subscribing again under a stored name resumes after that cursor, and
      ``start`` is ignored; ``start`` only places a new cursor: ``"beginning"`` delivers
      every stored event, ``"end"`` only events appended from now on, an int ``N`` (>= 1)
      is the first sequence to deliver (it may lie ahead of the store's head). A stored
      cursor that is damaged is reported in ``store.recovery_problems`` and delivery
      starts from the beginning: never skipping wins over never repeating.
    - ``event_types`` (a str or a list of str) limits which events are delivered; the
      cursor still moves past the others.
    - ``batch_size`` events at most are read at once; the cursor is written after each
      delivered batch (with sync delivery, every ``batch_size`` events), so fewer than
      that many are delivered again after a crash.
    - ``delivery="background"``: a daemon thread waits for new events and delivers them.
      ``delivery="sync"``: events are delivered inside ``append``/``append_batch``, on
      the appending thread, after the write has succeeded; when the append returns, its
      events have been delivered (unless the subscription is paused or stopped), and the
      catch-up of stored events happens inside ``subscribe()``. A slow sync handler slows
      every append; appends from other threads wait for the delivery in progress.
    - A handler that raises is called again after ``backoff``, ``2 * backoff``, ... seconds,
      ``max_retries`` times; then the subscription stops (``status == "stopped"``) with
      ``failed_event`` and ``error`` set, and its cursor just before that event. It never
      skips an event: ``resume()`` delivers again from the failed one. A failing handler
      never makes an append raise (but a ``KeyboardInterrupt`` in a sync handler stops
      the subscription and reaches the caller, as an interrupt should).
    - The handler may append to the store (its events are delivered after the current
      one) and may call ``pause()`` or ``close()`` on its own subscription.
    - ``pause()`` stops delivery after the event in progress and ``resume()`` goes on;
      ``close()`` (or closing the store) stops it for good and joins its thread.
    - ``lag`` counts the events after the cursor that this subscription would deliver.

    On a read-only store the cursor is kept in memory for the session only (the store
    cannot write), starting from the one stored on disk. On an in-memory store it lasts
    as long as the store.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("order.placed", "o-1", {"amount": 5})
    >>> seen = []
    >>> sub = store.subscribe("audit", lambda e: seen.append(e.sequence), delivery="sync")
    >>> _ = store.append("order.paid", "o-1", {})
    >>> seen, sub.position, sub.lag, sub.status
    ([1, 2], 2, 0, 'running')
    >>> sub.pause(); _ = store.append("order.shipped", "o-1", {}); sub.lag
    1
    >>> sub.resume(); seen
    [1, 2, 3]
    >>> sub.close(); sub.status
    'closed'
    """

    def __init__(
        self,
        store: EventFeed,
        name: str,
        handler: Callable[[Event], Any],
        cursor: int,
        saved: int | None,
        event_types: tuple[str, ...] | None,
        batch_size: int,
        delivery: str,
        max_retries: int,
        backoff: float,
    ) -> None:
        self.name = name
        self.event_types = event_types
        self.batch_size = batch_size
        self.delivery = delivery
        self.max_retries = max_retries
        self.backoff = backoff
        self._handler = handler
        # A weak reference: a store dropped without close() can still be collected (its
        # __del__ closes it, releasing the folder's lock), though this thread is alive.
        self._store_ref = weakref.ref(store)
        self._read_only = store.read_only
        self._cursor = cursor
        self._saved = saved  # the cursor last written (None: nothing stored yet)
        self._unsaved = 0  # events acknowledged since it was written
        self._status = "running"
        self._error: BaseException | None = None
        self._failed_event: Event | None = None
        self._state = threading.Lock()  # status changes
        self._delivering = threading.Lock()  # one delivery at a time, in order
        self._deliverer: int | None = None  # the thread id holding _delivering
        self._wake = threading.Event()  # new events, resume or close (background)
        self._interrupt = threading.Event()  # cuts a retry's backoff short (pause, close)
        self._thread: threading.Thread | None = None

    # -- starting ------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        store: EventFeed,
        name: str,
        handler: Callable[[Event], Any],
        *,
        start: str | int = "beginning",
        event_types: str | Iterable[str] | None = None,
        batch_size: int = 1000,
        delivery: str = "background",
        max_retries: int = 3,
        backoff: float = 0.05,
    ) -> Subscription:
        """Open the subscription ``name`` on ``store`` and start delivering.

        See the class for what each argument means.

        Raises:
            InvalidArgument: an argument is out of range, or a subscription of that name is
                already open on this store.
            TypeError: ``handler`` is not callable, or an argument has the wrong type.
            StorageError: the store is closed, or the cursor could not be written.
        """
        if not isinstance(name, str):
            raise TypeError(f"a subscription's name must be a str, not {type(name).__name__}")
        if not name:
            raise InvalidArgument(
                "a subscription needs a non-empty name: its cursor is kept under it"
            )
        if not callable(handler):
            raise TypeError(
                f"handler must be callable as handler(event), not {type(handler).__name__}"
            )
        _check_start(start)
        types = _event_types(event_types)
        batch_size = _count("batch_size", batch_size, 1)
        max_retries = _count("max_retries", max_retries, 0)
        if delivery not in DELIVERIES:
            raise InvalidArgument(f'delivery must be "background" or "sync", not {delivery!r}')
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, int | float)
            or not (math.isfinite(backoff) and backoff >= 0)
        ):
            raise InvalidArgument(f"backoff must be a number of seconds >= 0, not {backoff!r}")
        if store.closed:
            raise StorageError("the store is closed; open it again with asl.open(...)")

        with _registry:
            if name in store.subscriptions:
                raise InvalidArgument(
                    f"a subscription named {name!r} is already open on this store; close() "
                    "it first, or subscribe under another name"
                )
            stored, damaged = _load_cursor(store, name)
            cursor = _first_cursor(store, start) if stored is None else stored
            if damaged:
                stored = None  # written again at once
            sub = cls(
                store,
                name,
                handler,
                cursor,
                stored,
                types,
                batch_size,
                delivery,
                max_retries,
                float(backoff),
            )
            # A new cursor is written at once: the subscription exists from here, so
            # events appended before it is next opened are still delivered to it.
            with sub._delivering:
                sub._save(store)
            if sub._error is not None:
                raise sub._error
            store.subscriptions[name] = sub
        store.follow(sub._on_append)
        if delivery == "sync":
            sub._drain()
        else:
            sub._thread = threading.Thread(
                target=sub._run, name=f"allsource-subscription-{name}", daemon=True
            )
            sub._thread.start()
            sub._wake.set()
        return sub

    # -- what it reports -----------------------------------------------------------------

    @property
    def position(self) -> int:
        """The cursor: the last sequence acknowledged (or skipped as not of its types)."""
        return self._cursor

    @property
    def lag(self) -> int:
        """How many stored events after the cursor this subscription would deliver."""
        return self._store().count(self._cursor, event_types=self.event_types)

    @property
    def status(self) -> str:
        """``"running"``, ``"paused"``, ``"stopped"`` (its handler failed) or ``"closed"``."""
        return self._status

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the subscription, or None."""
        return self._error

    @property
    def failed_event(self) -> Event | None:
        """The event the handler failed on (delivered again by ``resume()``), or None."""
        return self._failed_event

    def __repr__(self) -> str:
        error = "" if self._error is None else f", error={self._error!r}"
        return f"Subscription({self.name!r}, {self._status}, position={self._cursor}{error})"

    # -- control -------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop delivering after the event in progress; ``resume()`` goes on from there.

        Once it returns no handler call starts (unless it was called from the handler,
        which then finishes its event first). No effect on a stopped subscription.

        Raises:
            InvalidArgument: the subscription is closed.
        """
        with self._state:
            if self._status == "closed":
                raise InvalidArgument(f"subscription {self.name!r} is closed; subscribe again")
            if self._status != "running":
                return
            self._status = "paused"
            self._interrupt.set()
        if self._deliverer != threading.get_ident():
            with self._delivering:  # waits for the event in progress
                store = self._store_ref()
                if store is not None:
                    self._save(store)

    def resume(self) -> None:
        """Deliver again: after a pause, or, once stopped, from the failed event.

        A sync subscription delivers what is pending inside this call.

        Raises:
            InvalidArgument: the subscription is closed.
        """
        with self._state:
            if self._status == "closed":
                raise InvalidArgument(f"subscription {self.name!r} is closed; subscribe again")
            if self._status == "running":
                return
            self._status = "running"
            self._error = None
            self._failed_event = None
            self._interrupt.clear()
        if self.delivery == "sync":
            self._drain()
        else:
            self._wake.set()

    def close(self) -> None:
        """Stop for good: finish the event in progress, save the cursor, join the thread.

        The name can then be subscribed again. Safe to call twice.
        """
        with self._state:
            if self._status == "closed":
                return
            self._status = "closed"
            self._interrupt.set()
        store = self._store_ref()
        if store is not None:
            store.unfollow(self._on_append)
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        # Called from the handler, the delivery under way saves the cursor when it ends.
        if store is not None and self._deliverer != threading.get_ident():
            with self._delivering:
                self._save(store)
        with _registry:
            if store is not None and store.subscriptions.get(self.name) is self:
                del store.subscriptions[self.name]

    # -- delivery ------------------------------------------------------------------------

    def _store(self) -> EventFeed:
        store = self._store_ref()
        if store is None:
            raise InvalidArgument(
                f"the store of subscription {self.name!r} no longer exists; open the store "
                "again and subscribe there"
            )
        return store

    def _on_append(self, last: int) -> None:
        """The store's listener: events through ``last`` are stored."""
        if self._status != "running":
            return
        if self.delivery == "sync":
            self._drain()
        elif not self._wake.is_set():  # (is_set is a plain read; set() takes a lock)
            self._wake.set()

    def _run(self) -> None:
        """The background thread: deliver whenever woken, until closed."""
        while True:
            self._wake.wait()
            # Cleared before reading the head: an append after this wakes us again.
            self._wake.clear()
            if self._status == "closed":
                return
            # A KeyboardInterrupt or SystemExit from the handler stopped the subscription
            # (recorded in ``error``); the thread lives on so that resume() works.
            with contextlib.suppress(BaseException):
                self._drain()

    def _drain(self) -> None:
        """Deliver everything stored after the cursor, in order, while running."""
        if self._deliverer == threading.get_ident():
            # The handler appended (a sync subscription): the loop below, already under
            # way on this thread, delivers the new events once the handler returns.
            return
        with self._delivering:
            self._deliverer = threading.get_ident()
            try:
                store = self._store_ref()
                if store is not None:
                    self._deliver_pending(store)
            except Exception as exc:
                self._stop(exc, None)
            finally:
                self._deliverer = None

    def _deliver_pending(self, store: EventFeed) -> None:
        while self._status == "running":
            through = store.head()
            if through <= self._cursor:
                return
            batch = store.batch(
                self._cursor, self.batch_size, through=through, event_types=self.event_types
            )
            acked = 0
            failure: tuple[BaseException, Event] | None = None
            for event in batch:
                if self._status != "running":
                    break
                done, error = self._deliver(event)
                if not done:
                    failure = None if error is None else (error, event)
                    break
                self._cursor = event.sequence
                self._unsaved += 1
                acked += 1
            whole = acked == len(batch)
            if whole and len(batch) < self.batch_size:
                # Every matching event through ``through`` is delivered: the cursor moves
                # past the ones of other types too.
                self._cursor = through
            due = self._unsaved >= self.batch_size if self.delivery == "sync" else acked > 0
            if due or not whole or self._status != "running":
                self._save(store)
            if failure is not None:
                # Stopped only once the cursor is saved: whoever sees "stopped" may rely
                # on the stored cursor being just before the failed event.
                self._stop(*failure)
                if not isinstance(failure[0], Exception):
                    raise failure[0]  # KeyboardInterrupt and the like reach the user
            if not whole:
                return

    def _deliver(self, event: Event) -> tuple[bool, BaseException | None]:
        """Call the handler until it returns: (True, None); (False, the last error) when
        the retries run out; (False, None) when a pause or close cut the backoff short."""
        attempt = 0
        while True:
            try:
                self._handler(event)
                return True, None
            except Exception as exc:
                if attempt >= self.max_retries:
                    return False, exc
                delay = self.backoff * 2**attempt
                attempt += 1
                if self._interrupt.wait(delay) or self._status != "running":
                    return False, None  # the event stays unacknowledged
            except BaseException as exc:
                return False, exc  # no retry: the user interrupted

    def _stop(self, exc: BaseException, event: Event | None) -> None:
        with self._state:
            self._error = exc
            self._failed_event = event
            if self._status == "running":
                self._status = "stopped"

    def _save(self, store: EventFeed) -> None:
        """Make the cursor durable (callers hold ``_delivering``)."""
        cursor = self._cursor
        if cursor == self._saved:
            return
        if self._read_only:
            _session_cursors.setdefault(store, {})[self.name] = cursor
            self._saved = cursor
            self._unsaved = 0
            return
        if store.closed:
            return
        try:
            store.flush()  # the events through the cursor are durable before it says so
            store.write_state(KIND, self.name, orjson.dumps({"cursor": cursor}))
        except OSError as exc:
            self._stop(
                StorageError(
                    f"the cursor of subscription {self.name!r} could not be written ({exc}); "
                    f"delivery stopped at sequence {cursor} — fix the disk, then resume()"
                ),
                None,
            )
            return
        self._saved = cursor
        self._unsaved = 0


def close_all(store: EventFeed) -> None:
    """Close every open subscription of ``store`` (the store calls it when closing)."""
    with _registry:
        subs = list(store.subscriptions.values())
    for sub in subs:
        sub.close()


# -- arguments and stored cursors ------------------------------------------------------------


def _check_start(start: object) -> None:
    if start in ("beginning", "end"):
        return
    if isinstance(start, int) and not isinstance(start, bool) and start >= 1:
        return
    raise InvalidArgument(
        'start must be "beginning", "end" or the first sequence to deliver (an int >= 1), '
        f"not {start!r}"
    )


def _first_cursor(store: EventFeed, start: str | int) -> int:
    """The cursor of a new subscription: the sequence before the first one to deliver."""
    if start == "beginning":
        return 0
    if start == "end":
        return store.head()
    assert isinstance(start, int)
    return start - 1


def _event_types(event_types: object) -> tuple[str, ...] | None:
    if event_types is None:
        return None
    if isinstance(event_types, str):
        event_types = [event_types]
    if not isinstance(event_types, Iterable):
        raise TypeError(
            f"event_types must be None, a str or a list of str, not {type(event_types).__name__}"
        )
    types = list(event_types)
    if not types or not all(isinstance(t, str) and t for t in types):
        raise InvalidArgument(
            f"event_types must be None, a str or a non-empty list of non-empty str, not {types!r}"
        )
    return tuple(dict.fromkeys(types))  # once each: the store would find a repeat twice


def _count(what: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidArgument(f"{what} must be an int >= {least}, not {value!r}")
    return value


def _load_cursor(store: EventFeed, name: str) -> tuple[int | None, bool]:
    """The stored cursor of ``name`` (None if there is none), and whether it was damaged.

    A damaged cursor reads as 0: delivering again beats skipping.
    """
    if store.read_only:
        kept = _session_cursors.get(store, {}).get(name)
        if kept is not None:
            return kept, False
    bodies, problems = store.load_states(KIND)
    body = bodies.get(name)
    if body is not None:
        try:
            cursor = orjson.loads(body)["cursor"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            cursor = None
        if type(cursor) is int and cursor >= 0:
            return cursor, False
        why = f"holds {body[:80]!r}"
    else:
        file = state_file_name(name)
        damaged = [p for p in problems if file in p]
        if not damaged:
            return None, False
        why = damaged[0]
    store.problems.append(
        f"the cursor of subscription {name!r} is damaged ({why}); it delivers again from "
        "the beginning"
    )
    return 0, True
