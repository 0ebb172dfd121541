"""The explorer: filter a store's events, page through them, open one to see its details.

Pages are read with the store's own cursor (``after=`` the previous page's
``next_cursor``), so a page costs a read of ``page_size`` rows however deep it lies, and
the cursors already found are kept until the filters change. Selecting an event shows
its payload, its metadata and the entity's state right after it: the entity's payloads
through that version folded with JSON Merge Patch, as ``store.state`` folds them. (Not
``state(as_of=its timestamp)``, which would also fold later versions with an earlier or
equal event time, nor ``known_at=its recorded_at``, which would fold the rest of its
batch.)
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets
import orjson
import traitlets

from allsource_lab._query.state import merge_patch
from allsource_lab.errors import NotFound
from allsource_lab.events import Event
from allsource_lab.notebook.widgets.panel import (
    PRE_STYLE,
    Panel,
    iso,
    json_block,
    reported,
    short_json,
)

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = ["Explorer"]

_COLUMN_CHARS = 32  # a longer type or entity id is cut (the detail shows it whole)
_PAYLOAD_CHARS = 60
_LIST_CLASS = "allsource-event-list"
# The list's lines are columns padded with spaces: they need a monospaced font, and
# spaces kept as they are.
_LIST_STYLE = (
    f"<style>.{_LIST_CLASS} select, .{_LIST_CLASS} option "
    "{font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre}</style>"
)
_LIST_INDENT = "6px"  # the list box's border and padding, so the header sits over its columns


class Explorer(Panel):
    """Filters (``event_type``, ``entity_id``, ``since``, ``until``), a page of events,
    and the selected event's payload and state.

    Traits: the filters (``""`` means no filter; times are ISO-8601 text, ``since``
    inclusive and ``until`` exclusive, on event time), ``page`` (from 0, clamped to the
    pages there are), ``page_size``, ``total`` (events matching the filters, read-only)
    and ``selected_sequence`` (0 when none). Changing a filter goes back to the first
    page; ``refresh()`` reads again, new events included.
    """

    event_type = traitlets.Unicode("", help="only events of this type ('' for all)")
    entity_id = traitlets.Unicode("", help="only events of this entity ('' for all)")
    since = traitlets.Unicode("", help="event time from (ISO-8601, inclusive; '' for open)")
    until = traitlets.Unicode("", help="event time before (ISO-8601, exclusive; '' for open)")
    page = traitlets.Int(0, help="the page shown, from 0")
    page_size = traitlets.Int(20, help="events per page")
    total = traitlets.Int(0, read_only=True, help="events matching the filters")
    selected_sequence = traitlets.Int(0, help="the sequence of the event shown (0: none)")

    def __init__(self, store: EventStore, page_size: int = 20) -> None:
        self._store = store
        self._cursors: list[int | None] = [None]  # the ``after=`` of each page found
        self._page_events: dict[int, Event] = {}
        self._filling = False  # the list's options are being replaced, not clicked
        self._types = ipywidgets.Combobox(
            placeholder="event type (all)", ensure_option=False, continuous_update=False
        )
        self._entity = ipywidgets.Text(placeholder="entity id (all)", continuous_update=False)
        self._since = ipywidgets.Text(placeholder="since (ISO-8601)", continuous_update=False)
        self._until = ipywidgets.Text(placeholder="until (ISO-8601)", continuous_update=False)
        self._prev = ipywidgets.Button(description="◀ previous", layout={"width": "auto"})
        self._next = ipywidgets.Button(description="next ▶", layout={"width": "auto"})
        self._reload = ipywidgets.Button(description="refresh", layout={"width": "auto"})
        self._status = ipywidgets.HTML("")
        self._list = ipywidgets.Select(options=[], rows=page_size, layout={"width": "98%"})
        self._list.add_class(_LIST_CLASS)
        self._header = ipywidgets.HTML("")
        self._detail = ipywidgets.HTML("")
        super().__init__(
            "AllSource explorer",
            [
                ipywidgets.HBox([self._types, self._entity, self._since, self._until]),
                ipywidgets.HBox(
                    [self._prev, self._next, self._reload, self._status],
                    layout={"align_items": "center"},
                ),
                self._header,
                self._list,
                self._detail,
            ],
        )
        self.page_size = page_size
        for control, name in (
            (self._types, "event_type"),
            (self._entity, "entity_id"),
            (self._since, "since"),
            (self._until, "until"),
        ):
            traitlets.link((control, "value"), (self, name))
        self._prev.on_click(lambda _: self.previous_page())
        self._next.on_click(lambda _: self.next_page())
        self._reload.on_click(lambda _: self.refresh())
        self._list.observe(self._on_list, names="value")
        self.observe(
            self._on_filters, names=["event_type", "entity_id", "since", "until", "page_size"]
        )
        self.observe(self._on_page, names="page")
        self.observe(self._on_selected, names="selected_sequence")
        self.refresh()
        self._on_selected(None)

    # -- what a click calls -----------------------------------------------------------

    @reported
    def refresh(self) -> None:
        """Read the filtered events again (new ones included) and show the page."""
        self._types.options = self._event_types()
        self._forget_page()
        self._count()
        self._go(min(self.page, self._last_page()))

    def next_page(self) -> None:
        """Show the next page (no effect on the last)."""
        self.page = min(self.page + 1, self._last_page())

    def previous_page(self) -> None:
        """Show the previous page (no effect on the first)."""
        self.page = max(self.page - 1, 0)

    # -- handlers ---------------------------------------------------------------------

    @traitlets.validate("page")
    def _valid_page(self, proposal: Any) -> int:
        return max(0, min(int(proposal["value"]), self._last_page()))

    @traitlets.validate("page_size")
    def _valid_page_size(self, proposal: Any) -> int:
        size = int(proposal["value"])
        if size < 1:
            raise traitlets.TraitError(f"page_size must be at least 1, not {size}")
        return size

    @reported
    def _on_filters(self, change: Any) -> None:
        self._list.rows = self.page_size
        self._forget_page()
        self._count()
        self._go(0)

    @reported
    def _on_page(self, change: Any) -> None:
        self._show_page()

    @reported
    def _on_list(self, change: Any) -> None:
        if not self._filling and change["new"] is not None:
            self.selected_sequence = int(change["new"])

    @reported
    def _on_selected(self, change: Any) -> None:
        sequence = self.selected_sequence
        if sequence <= 0:
            self._detail.value = "<i>select an event to see its payload and state</i>"
            return
        event = self._page_events.get(sequence) or self._event_at(sequence)
        self._detail.value = self._describe(event)
        if sequence in self._page_events and self._list.value != sequence:
            self._set_list_value(sequence)

    # -- reading ----------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type.strip() or None,
            "entity_id": self.entity_id.strip() or None,
            "since": self.since.strip() or None,
            "until": self.until.strip() or None,
        }

    def _event_types(self) -> list[str]:
        rows = self._store.sql("SELECT DISTINCT event_type FROM events ORDER BY 1").fetchall()
        return [str(row[0]) for row in rows]

    def _forget_page(self) -> None:
        """Empty the list before reading: filters that fail must not leave the events
        of the previous ones on screen as if they matched."""
        self._cursors = [None]
        self._page_events = {}
        self.set_trait("total", 0)
        with self._filling_list():
            self._list.options = []
        self._status.value = "no events read"

    def _count(self) -> None:
        self.set_trait("total", len(self._store.events(**self._filters())))

    def _last_page(self) -> int:
        return max(0, (self.total - 1) // self.page_size)

    def _go(self, page: int) -> None:
        if page != self.page:
            self.page = page  # shown by _on_page
        else:
            self._show_page()

    def _cursor_of(self, page: int) -> int | None:
        """The ``after=`` that starts ``page``, walking on from the last page found."""
        filters = self._filters()
        while len(self._cursors) <= page:
            frame = self._store.events(**filters, after=self._cursors[-1], limit=self.page_size)
            following = frame.next_cursor
            if following is None:
                break
            self._cursors.append(following)
        return self._cursors[min(page, len(self._cursors) - 1)]

    def _show_page(self) -> None:
        events: list[Event] = []
        if self.total:
            after = self._cursor_of(self.page)
            events = list(self._store.events(**self._filters(), after=after, limit=self.page_size))
        self._page_events = {e.sequence: e for e in events}
        with self._filling_list():
            header, labels = _columns(events)
            self._header.value = (
                f'{_LIST_STYLE}<pre style="{PRE_STYLE};padding-left:{_LIST_INDENT}">'
                f"{html.escape(header)}</pre>"
            )
            self._list.options = list(zip(labels, (e.sequence for e in events), strict=True))
            selected = self.selected_sequence
            self._list.value = selected if selected in self._page_events else None
        first = self.page * self.page_size
        shown = f"{first + 1:,}–{first + len(events):,}" if events else "none"
        self._status.value = (
            f"events {shown} of {self.total:,} · page {self.page + 1} of {self._last_page() + 1}"
        )
        self._prev.disabled = self.page == 0
        self._next.disabled = self.page >= self._last_page()

    def _set_list_value(self, sequence: int) -> None:
        with self._filling_list():
            self._list.value = sequence

    @contextlib.contextmanager
    def _filling_list(self) -> Iterator[None]:
        """While open, the list changes by the panel's doing, not by a click."""
        was, self._filling = self._filling, True
        try:
            yield
        finally:
            self._filling = was

    def _event_at(self, sequence: int) -> Event:
        found = list(self._store.events(after=sequence - 1, limit=1)) if sequence > 0 else []
        if not found or found[0].sequence != sequence:
            raise NotFound(f"no event with sequence {sequence} in the store")
        return found[0]

    def _state_after(self, event: Event) -> dict[str, Any]:
        """The entity's state right after ``event``: its versions 1..event.version folded."""
        state: dict[str, Any] = {}
        for earlier in self._store.events(entity_id=event.entity_id, limit=event.version):
            # Decoded afresh: merge_patch takes over the patch's values, and the event's
            # own payload dict is shown beside the state.
            merge_patch(state, orjson.loads(earlier.payload_json))
        return state

    def _describe(self, event: Event) -> str:
        schema = "" if event.schema_version is None else f" · schema v{event.schema_version}"
        head = (
            f"<b>#{event.sequence} {html.escape(event.event_type)}</b> · "
            f"{html.escape(event.entity_id)} v{event.version} · "
            f"event time {iso(event.timestamp)} · recorded {iso(event.recorded_at)} · "
            f"id {event.event_id}{schema}"
        )
        metadata = (
            f"<div><b>metadata</b>{json_block(event.metadata)}</div>" if event.metadata else ""
        )
        return (
            f"<div>{head}</div>"
            '<div style="display:flex;gap:16px;flex-wrap:wrap">'
            f"<div><b>payload</b>{json_block(event.payload)}</div>"
            f"<div><b>state after v{event.version}</b>"
            f"{json_block(self._state_after(event))}</div>"
            f"{metadata}</div>"
        )


def _columns(events: list[Event]) -> tuple[str, list[str]]:
    """A header and one line per event, in columns as wide as this page needs."""
    heads = ("sequence", "timestamp", "event_type", "entity_id", "version", "payload")
    rows = [
        (
            str(e.sequence),
            iso(e.timestamp),
            e.event_type,
            e.entity_id,
            f"v{e.version}",
            short_json(e.payload, _PAYLOAD_CHARS),
        )
        for e in events
    ]
    widths = [min(_COLUMN_CHARS, max(len(row[i]) for row in [heads, *rows])) for i in range(5)]

    def line(cells: tuple[str, ...]) -> str:
        fitted = [_fit(cell, width) for cell, width in zip(cells[:5], widths, strict=True)]
        padded = [fitted[0].rjust(widths[0])]
        padded += [cell.ljust(width) for cell, width in zip(fitted[1:], widths[1:], strict=True)]
        return "  ".join([*padded, cells[5]])

    return line(heads), [line(row) for row in rows]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
