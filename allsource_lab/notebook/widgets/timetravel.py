"""Time travel: slide through one entity's history and watch its state change.

The slider steps through *moments*: the distinct times of the entity's events on the
chosen axis, oldest first. On the event-time axis (the default) a moment's state is
``store.state(entity, as_of=t)``; an event appended late with an early timestamp takes
its place among the earlier moments and changes every state after it, as it does for
``as_of`` reads. On the recorded-time axis the moments are the order in which the store
learned the events (``known_at=t``), which is version order. Events sharing a time (a
batch shares its recorded time) are one moment: a read at that time sees them together.

The label says which versions the state shown includes ("state with v1–v4 of 4"): all the
events of the moments up to the one shown, which on the event-time axis need not be the
versions up to ``version`` (a late event is missing from the moments before its time),
and on either axis includes every version of a moment, not only the selected one.

States come from the store itself rather than from a fold done here, so the widget shows
exactly what ``state(as_of=..., known_at=...)`` answers. Event-time reads are also bounded
by ``known_at`` = the newest event loaded, so an event appended after the widget loaded
cannot slip into a moment it does not list (``refresh()`` loads them).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ipywidgets
import traitlets

from allsource_lab.errors import InvalidArgument, NotFound
from allsource_lab.events import Event
from allsource_lab.notebook.jsondiff import Change, diff_json, dotted
from allsource_lab.notebook.widgets.panel import (
    TABLE_STYLE,
    Panel,
    iso,
    json_block,
    reported,
    short_json,
)

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = ["TimeTravel", "changes_html", "version_spans"]

_COLOURS = {"added": "#1b7f3b", "removed": "#b00020", "changed": "#a05a00"}


@dataclass(frozen=True, slots=True)
class _Moment:
    """One stop of the slider: a time on the axis and the events at exactly that time."""

    time: datetime
    events: tuple[Event, ...]

    @property
    def versions(self) -> list[int]:
        return sorted(e.version for e in self.events)


class TimeTravel(Panel):
    """A slider over one entity's moments showing its state and what changed.

    Traits: ``entity_id`` (read-only), ``use_recorded_time`` (False: event time),
    ``position`` (the moment shown, from 0), ``version`` (a version of that moment: its
    newest when the slider moves, else the one set or kept across an axis switch; setting
    it moves to the moment holding that version), ``moments`` (how many there are,
    read-only), ``changes`` (the diff from the previous moment, as
    :class:`~allsource_lab.notebook.jsondiff.Change` tuples, read-only), ``state`` (the
    state shown, read-only) and ``shown_versions`` (the versions that state includes,
    read-only).
    """

    entity_id = traitlets.Unicode("", read_only=True, help="the entity travelled through")
    use_recorded_time = traitlets.Bool(False, help="step through recorded time, not event time")
    position = traitlets.Int(0, help="the moment shown, from 0")
    version = traitlets.Int(0, help="the newest version of the moment shown")
    moments = traitlets.Int(0, read_only=True, help="how many moments the axis has")
    changes: traitlets.List[Change] = traitlets.List(
        read_only=True, help="Change tuples from the previous moment"
    )
    state = traitlets.Dict(read_only=True, help="the entity's state at the moment shown")
    shown_versions: traitlets.List[int] = traitlets.List(
        read_only=True, help="the versions the state shown includes, oldest first"
    )

    def __init__(self, store: EventStore, entity_id: str) -> None:
        self._store = store
        self._events: list[Event] = []
        self._stops: list[_Moment] = []
        self._moving = False  # position is being set from version, or the reverse
        self._slider = ipywidgets.IntSlider(
            min=0, max=0, readout=False, description="moment", layout={"width": "60%"}
        )
        self._axis = ipywidgets.ToggleButtons(
            options=[("event time", False), ("recorded time", True)], value=False
        )
        self._back = ipywidgets.Button(description="◀", layout={"width": "3em"})
        self._forward = ipywidgets.Button(description="▶", layout={"width": "3em"})
        self._reload = ipywidgets.Button(description="refresh", layout={"width": "auto"})
        self._where = ipywidgets.HTML("")
        self._diff = ipywidgets.HTML("")
        self._shown = ipywidgets.HTML("")
        super().__init__(
            f"Time travel: {entity_id}",
            [
                ipywidgets.HBox([self._axis, self._reload]),
                ipywidgets.HBox([self._back, self._slider, self._forward]),
                self._where,
                self._diff,
                self._shown,
            ],
        )
        self.set_trait("entity_id", entity_id)
        traitlets.link((self._slider, "value"), (self, "position"))
        traitlets.link((self._axis, "value"), (self, "use_recorded_time"))
        self._back.on_click(lambda _: self.step(-1))
        self._forward.on_click(lambda _: self.step(1))
        self._reload.on_click(lambda _: self.refresh())
        self.observe(self._on_position, names="position")
        self.observe(self._on_version, names="version")
        self.observe(self._on_axis, names="use_recorded_time")
        self.refresh()

    # -- what a click calls -----------------------------------------------------------

    @reported
    def refresh(self) -> None:
        """Load the entity's events again and show its newest moment."""
        events = list(self._store.events(entity_id=self.entity_id))
        if not events:
            raise NotFound(f"no entity {self.entity_id!r} in the store")
        self._events = events
        self._arrange()
        self._move_to(len(self._stops) - 1)

    def step(self, delta: int) -> None:
        """Move ``delta`` moments (negative: back), stopping at either end."""
        self.position = max(0, min(self.position + delta, len(self._stops) - 1))

    # -- handlers ---------------------------------------------------------------------

    @traitlets.validate("position")
    def _valid_position(self, proposal: Any) -> int:
        return max(0, min(int(proposal["value"]), len(self._stops) - 1))

    @reported
    def _on_position(self, change: Any) -> None:
        stop = self._stops[self.position]
        if not self._moving and self.version not in stop.versions:
            self._moving = True
            try:
                self.version = stop.versions[-1]
            finally:
                self._moving = False
        self._show()

    @reported
    def _on_version(self, change: Any) -> None:
        if self._moving:
            return
        self._move_to(self._stop_of(self.version))

    @reported
    def _on_axis(self, change: Any) -> None:
        version = self.version
        self._arrange()
        self._move_to(self._stop_of(version), version)

    # -- moments ----------------------------------------------------------------------

    def _arrange(self) -> None:
        recorded = self.use_recorded_time
        ordered = sorted(
            self._events,
            key=lambda e: (e.recorded_at_us if recorded else e.timestamp_us, e.version),
        )
        stops: list[_Moment] = []
        for event in ordered:
            time = event.recorded_at if recorded else event.timestamp
            if stops and stops[-1].time == time:
                stops[-1] = _Moment(time, (*stops[-1].events, event))
            else:
                stops.append(_Moment(time, (event,)))
        self._stops = stops
        self.set_trait("moments", len(stops))
        self._moving = True  # the slider may clamp its value: no version change from that
        try:
            self._slider.max = len(stops) - 1
        finally:
            self._moving = False

    def _stop_of(self, version: int) -> int:
        for number, stop in enumerate(self._stops):
            if version in stop.versions:
                return number
        newest = max((e.version for e in self._events), default=0)
        raise InvalidArgument(
            f"{self.entity_id!r} has no version {version}; its versions are 1..{newest}"
        )

    def _move_to(self, number: int, version: int | None = None) -> None:
        """Show moment ``number`` with ``version`` (or the version shown, if that moment
        holds it; else its newest) as ``version``."""
        stop = self._stops[number]
        wanted = self.version if version is None else version
        self._moving = True
        try:
            self.version = wanted if wanted in stop.versions else stop.versions[-1]
        finally:
            self._moving = False
        if number != self.position:
            self.position = number  # shown by _on_position
        else:
            self._show()

    def _state_at(self, number: int) -> dict[str, Any]:
        if number < 0:
            return {}
        time = self._stops[number].time
        if self.use_recorded_time:
            return self._store.state(self.entity_id, known_at=time)
        known = max(e.recorded_at for e in self._events)
        return self._store.state(self.entity_id, as_of=time, known_at=known)

    def _show(self) -> None:
        number = self.position
        stop = self._stops[number]
        before, after = self._state_at(number - 1), self._state_at(number)
        changes = diff_json(before, after)
        # The label must describe `after`: every event of the moments up to this one, which
        # it once did not ("v2 of 4" over the state after v4 when a batch was one moment).
        included = sorted(e.version for past in self._stops[: number + 1] for e in past.events)
        self.set_trait("state", after)
        self.set_trait("changes", changes)
        self.set_trait("shown_versions", included)
        axis = "recorded" if self.use_recorded_time else "event time"
        newest = max(e.version for e in self._events)
        listed = ", ".join(
            f"v{e.version} {html.escape(e.event_type)} "
            f"(event time {iso(e.timestamp)}, recorded {iso(e.recorded_at)})"
            for e in sorted(stop.events, key=lambda e: e.version)
        )
        self._where.value = (
            f"<b>moment {number + 1} of {len(self._stops)}</b> · {axis} {iso(stop.time)} · "
            f"state with {version_spans(included)} of {newest}<br>{listed}"
        )
        self._diff.value = changes_html(changes, first=number == 0)
        self._shown.value = f"<b>state</b>{json_block(after)}"
        self._back.disabled = number == 0
        self._forward.disabled = number >= len(self._stops) - 1


def version_spans(versions: list[int]) -> str:
    """Sorted versions as runs: ``v1–v3, v5``.

    >>> version_spans([1, 2, 3, 5]), version_spans([4]), version_spans([1, 2])
    ('v1–v3, v5', 'v4', 'v1–v2')
    """
    runs: list[list[int]] = []
    for version in versions:
        if runs and version == runs[-1][1] + 1:
            runs[-1][1] = version
        else:
            runs.append([version, version])
    return ", ".join(f"v{a}" if a == b else f"v{a}–v{b}" for a, b in runs)


def changes_html(changes: list[Change], *, first: bool = False) -> str:
    """An HTML table of state changes: path, kind, before and after."""
    if not changes:
        return "<i>no change from the previous moment</i>"
    title = "created with" if first else "changes from the previous moment"
    rows = "".join(
        f"<tr><td><code>{html.escape(dotted(c.path))}</code></td>"
        f'<td style="color:{_COLOURS[c.kind]}">{c.kind}</td>'
        f"<td><code>{'' if c.kind == 'added' else html.escape(short_json(c.before))}</code></td>"
        f"<td><code>{'' if c.kind == 'removed' else html.escape(short_json(c.after))}</code></td>"
        "</tr>"
        for c in changes
    )
    return (
        f"<b>{title}</b>"
        f'<table style="{TABLE_STYLE}"><thead><tr><th>path</th><th>change</th>'
        f"<th>before</th><th>after</th></tr></thead><tbody>{rows}</tbody></table>"
    )
