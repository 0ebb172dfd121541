"""The live tail: a store's newest events, with new ones shown as they are appended.

The tail listens on the store's append hook (``store.feed.follow``, called after every
``append``/``append_batch``, outside the store's locks) and does no more there than wake
its own thread, which reads what is new and redraws at most every ``min_interval_s``: a
loop of single appends costs each append one ``Event.set()``, not a redraw.

A durable subscription (``store.subscribe``) was the other way in, and was rejected: it
keeps a cursor file under its name in the store's folder, which every tail ever opened
would leave behind, and it flushes the WAL before each cursor write, which would change
the fsync cost of a store opened with ``fsync="interval"`` while a tail is on screen.

Nothing tells a follower that its store closed, so the thread also wakes every
``poll_s`` to look; it stops when the tail is stopped or closed, or the store is closed
or collected. The tail holds its store only weakly, so a store dropped without
``close()`` can still be collected (and its folder lock released).
"""

from __future__ import annotations

import html
import itertools
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import ipywidgets
import traitlets

from allsource_lab.errors import StorageError
from allsource_lab.events import Event
from allsource_lab.notebook.widgets.panel import Panel, event_table, reported, start_thread

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = ["LiveTail"]


class LiveTail(Panel):
    """The newest ``rows`` events of a store (of ``event_type``, if set), newest first.

    Traits: ``rows``, ``event_type`` (``""``: every type), ``paused`` and, read-only,
    ``watching`` (False once stopped), ``seen`` (the newest sequence read), ``received``
    (matching events appended since the tail opened or its filter changed) and
    ``shown`` (the sequences on screen, newest first). ``poll()`` reads what is new now
    (the thread calls it when woken); ``stop()`` stops watching and ``close()`` also
    closes the widget.
    """

    rows = traitlets.Int(50, help="at most this many events are shown")
    event_type = traitlets.Unicode("", help="only events of this type ('' for all)")
    paused = traitlets.Bool(False, help="while True, new events are not read")
    watching = traitlets.Bool(True, read_only=True, help="False once the tail has stopped")
    seen = traitlets.Int(0, read_only=True, help="the newest sequence read")
    received = traitlets.Int(0, read_only=True, help="matching events appended since opened")
    shown: traitlets.List[int] = traitlets.List(
        read_only=True, help="sequences shown, newest first"
    )

    def __init__(
        self,
        store: EventStore,
        rows: int = 50,
        min_interval_s: float = 0.1,
        poll_s: float = 0.5,
    ) -> None:
        self._lock = threading.RLock()  # reading and drawing: the thread and the user
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if store.closed:
            raise StorageError("the store is closed; open it again with asl.open(...)")
        self._store_ref = weakref.ref(store)
        self._min_interval_s = min_interval_s
        self._poll_s = poll_s
        self._recent: deque[Event] = deque(maxlen=max(rows, 1))
        self._table = ipywidgets.HTML("")
        self._status = ipywidgets.HTML("")
        self._pause = ipywidgets.ToggleButton(description="pause", value=False)
        self._clear_button = ipywidgets.Button(description="clear", layout={"width": "auto"})
        self._stop_button = ipywidgets.Button(description="stop", layout={"width": "auto"})
        self._filter = ipywidgets.Text(placeholder="event type (all)", continuous_update=False)
        super().__init__(
            "Live tail",
            [
                ipywidgets.HBox([self._filter, self._pause, self._clear_button, self._stop_button]),
                self._status,
                self._table,
            ],
        )
        self.rows = rows
        traitlets.link((self._pause, "value"), (self, "paused"))
        traitlets.link((self._filter, "value"), (self, "event_type"))
        self._clear_button.on_click(lambda _: self.clear())
        self._stop_button.on_click(lambda _: self.stop())
        self.observe(self._on_rows, names="rows")
        self.observe(self._on_filter, names="event_type")
        self.observe(self._on_paused, names="paused")
        # Following before the first read: an append in between wakes the thread, which
        # reads after what the first read saw, so nothing falls between the two.
        store.feed.follow(self._on_append)
        self._fill()
        self._thread = start_thread(self._run, "allsource-live-tail")

    # -- what a click calls -----------------------------------------------------------

    @reported
    def poll(self) -> None:
        """Read the events appended since the last read and show the newest."""
        with self._lock:
            self._read(count=True)

    def clear(self) -> None:
        """Empty the table (events appended later still appear)."""
        with self._lock:
            self._recent.clear()
            self._draw()

    def stop(self) -> None:
        """Stop watching: stop following the store and end the thread. Idempotent."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if self._thread is not None:  # (None: __init__ failed before watching)
            self._leave("stopped")

    def close(self) -> None:
        """Stop watching and close the widget."""
        self.stop()
        super().close()

    # -- handlers ---------------------------------------------------------------------

    @traitlets.validate("rows")
    def _valid_rows(self, proposal: Any) -> int:
        rows = int(proposal["value"])
        if rows < 1:
            raise traitlets.TraitError(f"rows must be at least 1, not {rows}")
        return rows

    @reported
    def _on_rows(self, change: Any) -> None:
        with self._lock:
            # The newest are on the left: keep those.
            self._recent = deque(itertools.islice(self._recent, self.rows), maxlen=self.rows)
            self._draw()

    @reported
    def _on_filter(self, change: Any) -> None:
        with self._lock:
            self._recent.clear()
            self.set_trait("received", 0)
            self.set_trait("seen", 0)
            self._fill()

    def _on_paused(self, change: Any) -> None:
        if not change["new"]:
            self._wake.set()  # catch up on what came while paused
        with self._lock:
            self._draw()

    def _on_append(self, *_: object) -> None:
        """Called by the store after each append, on the appending thread: it only wakes."""
        self._wake.set()

    # -- reading ----------------------------------------------------------------------

    @reported
    def _fill(self) -> None:
        """Show the newest events already stored (they do not count as received)."""
        with self._lock:
            self._read(count=False)

    def _store(self) -> EventStore:
        store = self._store_ref()
        if store is None or store.closed:
            raise StorageError("the store is closed; open it again and start a new tail")
        return store

    def _read(self, *, count: bool) -> None:
        store = self._store()
        kind = self.event_type.strip() or None
        seen = self.seen
        # One frame's positions, newest first: its length counts exactly the matching
        # events in (seen, top], shown or not, whatever is appended meanwhile; only the
        # rows shown are gathered.
        frame = store.events(event_type=kind, after=seen, reverse=True)
        newest = frame.first(self.rows)
        if newest:
            top = newest[0].sequence
            if count:
                self.set_trait("received", self.received + len(frame))
            self._recent.extendleft(reversed(newest))
            self.set_trait("seen", top)
        self._draw()

    def _draw(self) -> None:
        events = list(self._recent)
        self.set_trait("shown", [e.sequence for e in events])
        self._table.value = event_table(events) if events else "<i>no events yet</i>"
        state = "watching" if self.watching else "stopped"
        if self.watching and self.paused:
            state = "paused"
        self._status.value = (
            f"<b>{state}</b> · {self.received:,} new since opened · showing the newest "
            f"{len(events):,} (at most {self.rows:,})"
        )

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            woken = self._wake.wait(self._poll_s)
            if self._stopping.is_set() or not self._store_alive():
                break
            if woken:
                # Cleared before reading: an append during the read wakes us again.
                self._wake.clear()
                if not self.paused:
                    self.poll()
                    self._stopping.wait(self._min_interval_s)
        if not self._stopping.is_set():
            self._leave("the store was closed")

    def _store_alive(self) -> bool:
        store = self._store_ref()
        return store is not None and not store.closed

    def _leave(self, why: str) -> None:
        with self._lock:
            if not self.watching:
                return
            store = self._store_ref()
            if store is not None:
                store.feed.unfollow(self._on_append)
            self.set_trait("watching", False)
            self._draw()
            self._status.value += f" · {html.escape(why)}"
