"""The display objects: one small view per kind of result (see ``docs/mimetype.md``).

A view holds a result and, optionally, which store it came from (:class:`StoreInfo`);
displaying it builds the kind's JSON document and renders it (``_repr_mimebundle_``).
The notebook magics return views and bind the result itself with ``-o``.

>>> import allsource_lab as asl
>>> store = asl.open()
>>> _ = store.append("cart.opened", "cart-1", {"items": 1}, timestamp="2026-01-01T00:00:00Z")
>>> view = StateView("cart-1", store.state("cart-1"), version=1, store=StoreInfo.of(store))
>>> print(view._repr_mimebundle_()["text/plain"])
state of cart-1 at version 1
  store  memory (1 event)
{
  "items": 1
}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson

from allsource_lab.display._document import (
    StoreInfo,
    Table,
    View,
    events_table,
    frame_table,
    iso,
    json_value,
    records_table,
    shown_rows,
)
from allsource_lab.events import Event, _iso, merge_patch

# Past this many versions of one entity an events document's row states (and a state
# document's previous state) are left null: a display must stay quick. Reading and folding
# 10,000 small payloads of one entity measured ~15 ms here (2 cores), so a page of 50
# rows from 50 such entities stays under a second.
STATE_FOLD_MAX_VERSIONS = 10_000

__all__ = [
    "STATE_FOLD_MAX_VERSIONS",
    "VIEWS",
    "CheckpointView",
    "CompactionView",
    "CompatibilityView",
    "EventFrameLike",
    "EventsView",
    "IngestView",
    "IntegrityView",
    "PipelinesView",
    "ProgressView",
    "ProjectionsView",
    "ReplayView",
    "SchemaListView",
    "SchemaReportView",
    "SchemaView",
    "StateView",
    "StatsView",
    "StoreView",
    "TableView",
    "WindowView",
    "previous_state",
    "states_after",
    "vegalite_mimetype",
]


class _Keywords(View):
    """A view whose ``bundle(kind, data)`` data is a mapping of its fields."""

    @classmethod
    def from_data(cls, data: Any) -> View:
        return cls(**data)


def _fold(state: dict[str, Any], event: Event) -> None:
    # Decoded afresh: merge_patch takes over the patch's values, and Event.payload is the
    # event's own dict, handed to every caller.
    merge_patch(state, orjson.loads(event.payload_json))


def states_after(
    store: Any, events: Sequence[Event], max_versions: int = STATE_FOLD_MAX_VERSIONS
) -> list[dict[str, Any] | None]:
    """The state of each event's entity right after it, as ``store.state`` folds it.

    The state after an event is the fold of its entity's versions up to and including
    the event's own (all of them, whatever the moment a frame was asked at). Each entity
    is read once, up to its highest version among ``events``, and folded as it goes. An
    event past ``max_versions``, or one the store does not hold, gets None.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("cart.opened", "cart-1", {"items": 1, "note": "hi"})
    >>> _ = store.append("cart.changed", "cart-1", {"items": 2, "note": None})
    >>> states_after(store, list(store.events()))
    [{'items': 1, 'note': 'hi'}, {'items': 2}]
    """
    wanted: dict[str, set[int]] = {}
    for event in events:
        if event.version <= max_versions:
            wanted.setdefault(event.entity_id, set()).add(event.version)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for entity_id, versions in wanted.items():
        state: dict[str, Any] = {}
        for event in store.events(entity_id=entity_id, limit=max(versions)):
            _fold(state, event)
            if event.version in versions:
                found[entity_id, event.version] = json_value(state)  # a sorted deep copy
    return [found.get((e.entity_id, e.version)) for e in events]


def previous_state(
    store: Any,
    entity_id: str,
    as_of: Any = None,
    known_at: Any = None,
    max_versions: int = STATE_FOLD_MAX_VERSIONS,
) -> dict[str, Any] | None:
    """The entity's state at ``as_of``/``known_at`` without the last event folded into it.

    ``store.state`` folds every version visible at that moment; this folds the same
    versions but the highest. None when a single version is visible, none is, or more
    than ``max_versions`` are.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("cart.opened", "cart-1", {"items": 1, "note": "hi"})
    >>> _ = store.append("cart.changed", "cart-1", {"items": 2, "note": None})
    >>> previous_state(store, "cart-1"), previous_state(store, "cart-2")
    ({'items': 1, 'note': 'hi'}, None)
    """
    return _last_and_previous(store, entity_id, as_of, known_at, max_versions)[1]


def _last_and_previous(
    store: Any, entity_id: str, as_of: Any, known_at: Any, max_versions: int
) -> tuple[int | None, dict[str, Any] | None]:
    """The last version visible at the moment, and ``previous_state``, from one read."""
    frame = store.events(entity_id=entity_id, as_of=as_of, known_at=known_at)
    n = len(frame)
    if n > max_versions:  # only the last version is read
        last = store.events(
            entity_id=entity_id, as_of=as_of, known_at=known_at, reverse=True, limit=1
        ).first(1)
        return last[0].version, None
    events = frame.first(n)
    if n < 2:
        return (events[0].version if events else None), None
    state: dict[str, Any] = {}
    for event in events[:-1]:
        _fold(state, event)
    return events[-1].version, state


class EventFrameLike(Protocol):
    """What an events view reads of an ``EventFrame`` (known by what it has, so the
    display need not import the frame's module, which imports the display)."""

    @property
    def query(self) -> Any: ...

    @property
    def next_cursor(self) -> int | None: ...

    @property
    def source(self) -> Any: ...

    def __len__(self) -> int: ...

    def first(self, n: int) -> list[Event]: ...


@dataclass(eq=False)
class EventsView(View):
    """Events: an ``EventFrame`` (only the rows shown are gathered) or a list of events.
    ``-o`` binds the frame (or the event, for ``append``).

    Each row also carries its entity's state right after the event (``states``), folded
    from the store the frame was read from, or from ``source`` (the ``EventStore``) for a
    list of events; without a store the states are null.
    """

    events: EventFrameLike | Sequence[Event]
    store: StoreInfo | None = None
    source: Any = None
    kind: ClassVar[str] = "events"

    def members(self, limit: int) -> dict[str, Any]:
        events = self.events
        source = self.source
        query: dict[str, Any] = {}
        cursor = None
        # A list of events is a Sequence; a frame is not (it has no indexing).
        if not isinstance(events, Sequence):
            total = len(events)
            shown = events.first(shown_rows(total, limit))
            q = events.query
            for name in ("entity_id", "event_type", "after", "limit"):
                if getattr(q, name) is not None:
                    query[name] = getattr(q, name)
            for name in ("since", "until", "as_of", "known_at"):  # microseconds
                if getattr(q, name) is not None:
                    query[name] = _iso(getattr(q, name))
            if q.reverse:
                query["reverse"] = True
            cursor = _continue_after(shown, total, q.reverse, events)
            if source is None:
                # A frame's row source is the store that made it (store.events).
                source = events.source
        else:
            total = len(events)
            shown = list(events[: shown_rows(total, limit)])
        table = events_table(shown, total).document()
        if source is not None and callable(getattr(source, "events", None)):
            states = states_after(source, shown)
        else:
            states = [None] * len(shown)
        return {"query": query, "next_cursor": cursor, "table": table, "states": states}


def _continue_after(
    shown: Sequence[Event], total: int, reverse: bool, frame: EventFrameLike
) -> int | None:
    """The ``after=`` cursor that continues right after the rows shown, or None.

    When the display cut the rows, the next page starts after the last row shown, not
    after the frame's last row: that would skip every row between (issue 18). When the
    display shows the whole frame, the frame's own ``next_cursor`` says whether its
    ``limit`` cut the result. ``after`` is a lower bound, so a reverse read (newest
    first) has no cursor that continues it: None, and the footer says how to see more.
    """
    if reverse:
        return None
    if len(shown) < total:
        return shown[-1].sequence if shown else None
    return frame.next_cursor


@dataclass(eq=False)
class StateView(_Keywords):
    """An entity's state (``store.state``) at a moment, the last version folded into it
    and the state before that version (``previous_state``, None: first version or
    unknown). ``-o`` binds the state dict."""

    entity_id: str
    state: Mapping[str, Any]
    as_of: Any = None
    known_at: Any = None
    version: int | None = None
    store: StoreInfo | None = None
    previous_state: Mapping[str, Any] | None = None
    kind: ClassVar[str] = "state"

    @classmethod
    def of(cls, store: Any, entity_id: str, as_of: Any = None, known_at: Any = None) -> StateView:
        """The view of ``store.state(entity_id, as_of, known_at)``, its last version and
        the state before it, read from ``store`` (an ``EventStore``).

        Raises:
            NotFound: the entity has no event (at that moment).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("cart.opened", "cart-1", {"items": 1})
        >>> _ = store.append("cart.changed", "cart-1", {"items": 2})
        >>> view = StateView.of(store, "cart-1")
        >>> view.state, view.version, view.previous_state
        ({'items': 2}, 2, {'items': 1})
        """
        folded = store.state(entity_id, as_of=as_of, known_at=known_at)
        version, before = _last_and_previous(
            store, entity_id, as_of, known_at, STATE_FOLD_MAX_VERSIONS
        )
        return cls(entity_id, folded, as_of, known_at, version, previous_state=before)

    def members(self, limit: int) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "state": dict(self.state),
            "as_of": iso(self.as_of),
            "known_at": iso(self.known_at),
            "entity_version": self.version,
            "previous_state": None if self.previous_state is None else dict(self.previous_state),
        }


@dataclass(eq=False)
class TableView(View):
    """A DataFrame (a SQL result, a pipeline's results, ...); ``query`` is its SQL, if
    any. ``-o`` binds the DataFrame."""

    frame: Any
    query: str | None = None
    title: str | None = None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "table"

    def members(self, limit: int) -> dict[str, Any]:
        table = frame_table(self.frame, limit).document()
        return {"query": self.query, "title": self.title, "table": table}


VEGA_LITE_V5_MIMETYPE = "application/vnd.vegalite.v5+json"


def vegalite_mimetype(spec: Mapping[str, Any]) -> str:
    """The Jupyter mimetype of a Vega-Lite spec, from its ``$schema`` (default v5).

    >>> vegalite_mimetype({"$schema": "https://vega.github.io/schema/vega-lite/v4.json"})
    'application/vnd.vegalite.v4+json'
    """
    schema = str(spec.get("$schema", ""))
    for major in ("v6", "v5", "v4", "v3"):
        if f"/{major}" in schema:
            return f"application/vnd.vegalite.{major}+json"
    return "application/vnd.vegalite.v5+json"


@dataclass(eq=False)
class WindowView(View):
    """The DataFrame of ``store.window``, the arguments that made it (``spec``: unset
    ones are left out) and, optionally, a ``chart`` of it: a Vega-Lite spec, or a chart
    object with ``to_dict()`` (an Altair chart). The document carries the spec, and the
    bundle offers it under its Vega-Lite mimetype (a chart object's under v5's).
    ``-o`` binds the DataFrame."""

    frame: Any
    spec: Mapping[str, Any] = field(default_factory=dict)
    chart: Any = None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "window"

    def members(self, limit: int) -> dict[str, Any]:
        spec = {
            k: v
            for k, v in self.spec.items()
            if v is not None and v is not False and not (isinstance(v, list | tuple) and not v)
        }
        doc = {"spec": spec, "table": frame_table(self.frame, limit).document()}
        if self.chart is not None:
            doc["chart"] = _chart_spec(self.chart)
        return doc

    def extra_bundle(self) -> dict[str, Any]:
        if self.chart is None:
            return {}
        if isinstance(self.chart, Mapping):
            return {vegalite_mimetype(self.chart): json_value(self.chart)}
        # A chart object's spec (Altair 6 writes Vega-Lite 6) goes under the v5 mimetype:
        # the newest JupyterLab 4 and VS Code draw, and their Vega-Lite 5 compiles it.
        return {VEGA_LITE_V5_MIMETYPE: _chart_spec(self.chart)}


def _chart_spec(chart: Any) -> dict[str, Any]:
    """A chart's Vega-Lite spec: the mapping itself, or a chart object's ``to_dict()``."""
    spec: dict[str, Any] = json_value(
        dict(chart) if isinstance(chart, Mapping) else chart.to_dict()
    )
    return spec


@dataclass(eq=False)
class StatsView(View):
    """The dict of ``store.stats()``; ``-o`` binds it."""

    stats: Mapping[str, Any]
    store: StoreInfo | None = None
    kind: ClassVar[str] = "stats"

    def members(self, limit: int) -> dict[str, Any]:
        return {"stats": dict(self.stats)}


@dataclass(eq=False)
class IntegrityView(View):
    """An ``IntegrityReport`` (``store.verify()``); ``-o`` binds the report."""

    report: Any
    store: StoreInfo | None = None
    kind: ClassVar[str] = "integrity"

    def members(self, limit: int) -> dict[str, Any]:
        r = self.report
        return {"ok": bool(r.ok), "problems": list(r.problems), "files_checked": r.files_checked}


@dataclass(eq=False)
class SchemaReportView(View):
    """A ``CompatibilityReport`` (``store.schemas.check``) of a schema for ``subject``;
    ``-o`` binds the report."""

    report: Any
    subject: str | None = None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "schema_report"

    def members(self, limit: int) -> dict[str, Any]:
        r = self.report
        return {
            "subject": self.subject,
            "compatible": bool(r.compatible),
            "mode": r.mode,
            "problems": list(r.problems),
        }


@dataclass(eq=False)
class SchemaView(View):
    """One schema version (a ``SchemaVersion``) with its subject's live ``versions`` and
    ``compatibility`` mode; ``-o`` binds the ``SchemaVersion``."""

    schema: Any
    versions: Sequence[int] = ()
    compatibility: str | None = None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "schema"

    def members(self, limit: int) -> dict[str, Any]:
        s = self.schema
        return {
            "subject": s.subject,
            "schema_version": s.version,
            "id": s.id,
            "deleted": bool(s.deleted),
            "schema": s.schema,
            "versions": list(self.versions),
            "compatibility": self.compatibility,
        }


@dataclass(eq=False)
class SchemaListView(_Keywords):
    """Every subject, ``{subject: (live versions, compatibility mode)}``, and the
    store-wide default mode; ``-o`` binds ``{subject: [versions]}``."""

    subjects: Mapping[str, tuple[Sequence[int], str]]
    default_compatibility: str = "BACKWARD"
    store: StoreInfo | None = None
    kind: ClassVar[str] = "schema_list"

    def members(self, limit: int) -> dict[str, Any]:
        rows = [
            [name, list(versions), max(versions, default=None), mode]
            for name, (versions, mode) in sorted(self.subjects.items())
        ]
        columns = [
            ("subject", "string"),
            ("versions", "json"),
            ("latest", "integer"),
            ("compatibility", "string"),
        ]
        table = Table(columns, rows[: shown_rows(len(rows), limit)], len(rows)).document()
        return {"default_compatibility": self.default_compatibility, "table": table}


@dataclass(eq=False)
class CompatibilityView(_Keywords):
    """The compatibility mode of ``subject`` (None: the store-wide default); ``-o``
    binds the mode."""

    subject: str | None
    mode: str
    store: StoreInfo | None = None
    kind: ClassVar[str] = "compatibility"

    def members(self, limit: int) -> dict[str, Any]:
        return {"subject": self.subject, "mode": self.mode}


_PROJECTION_COLUMNS = [
    ("name", "string"),
    ("status", "string"),
    ("position", "integer"),
    ("lag", "integer"),
    ("durable", "boolean"),
    ("failed_sequence", "integer"),
    ("error", "string"),
]


@dataclass(eq=False)
class ProjectionsView(View):
    """``store.projections.info()``, a list of ``ProjectionInfo``; ``-o`` binds it."""

    infos: Sequence[Any]
    store: StoreInfo | None = None
    kind: ClassVar[str] = "projections"

    def members(self, limit: int) -> dict[str, Any]:
        rows = [[getattr(info, name) for name, _ in _PROJECTION_COLUMNS] for info in self.infos]
        shown = rows[: shown_rows(len(rows), limit)]
        return {"table": Table(list(_PROJECTION_COLUMNS), shown, len(rows)).document()}


@dataclass(eq=False)
class PipelinesView(View):
    """``store.pipelines.stats(name)`` of every pipeline, a list of dicts; ``-o`` binds
    the list."""

    stats: Sequence[Mapping[str, Any]]
    store: StoreInfo | None = None
    kind: ClassVar[str] = "pipelines"

    def members(self, limit: int) -> dict[str, Any]:
        return {"table": records_table(self.stats, limit).document()}


@dataclass(eq=False)
class ReplayView(View):
    """A ``ReplayJob``: its status and progress when displayed; ``-o`` binds the job."""

    job: Any
    store: StoreInfo | None = None
    kind: ClassVar[str] = "replay"

    def members(self, limit: int) -> dict[str, Any]:
        job = self.job
        p = job.progress
        error = job.error
        return {
            "id": job.id,
            "projection": job.projection.name,
            "status": job.status,
            "progress": {
                "processed": p.processed,
                "total": p.total,
                "percent": round(p.percent, 1),
                "events_per_sec": round(p.events_per_sec, 1),
                "eta_s": None if p.eta_s is None else round(p.eta_s, 1),
            },
            "error": None if error is None else f"{type(error).__name__}: {error}",
        }


@dataclass(eq=False)
class StoreView(_Keywords):
    """The current store after ``open`` or ``close``; ``note`` says what else happened
    (e.g. the store it replaced). ``-o`` binds the ``EventStore``."""

    path: str | None
    events: int
    status: str = "open"
    entities: int | None = None
    event_types: int | None = None
    fsync: str | None = None
    read_only: bool = False
    note: str | None = None
    kind: ClassVar[str] = "store"

    @classmethod
    def of(cls, store: Any, status: str = "open", note: str | None = None) -> StoreView:
        """The view of an open ``EventStore`` (take it before closing the store)."""
        stats = store.stats()
        return cls(
            path=None if store.path is None else str(store.path),
            events=int(stats["events"]),
            status=status,
            entities=int(stats["entities"]),
            event_types=int(stats["event_types"]),
            fsync=str(stats["fsync"]),
            read_only=bool(stats["read_only"]),
            note=note,
        )

    def members(self, limit: int) -> dict[str, Any]:
        return {
            "path": self.path,
            "events": self.events,
            "status": self.status,
            "entities": self.entities,
            "event_types": self.event_types,
            "fsync": self.fsync,
            "read_only": self.read_only,
            "note": self.note,
        }


@dataclass(eq=False)
class IngestView(_Keywords):
    """What an ingest did: ``rows`` read from ``source``, ``appended`` new events
    (``first_sequence``..``last_sequence``), the rest already stored (same event id).
    ``-o`` binds a dict of the same facts."""

    source: str
    rows: int
    appended: int
    first_sequence: int | None = None
    last_sequence: int | None = None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "ingest"

    def members(self, limit: int) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "appended": self.appended,
            "duplicates": self.rows - self.appended,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
        }


@dataclass(eq=False)
class CheckpointView(View):
    """What ``store.checkpoint()`` sealed (None: nothing was unsealed); ``-o`` binds
    the dict it returned (or None)."""

    result: Mapping[str, Any] | None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "checkpoint"

    def members(self, limit: int) -> dict[str, Any]:
        # The seconds it took are left out: the same checkpoint must show the same.
        r = self.result or {}
        return {"events": int(r.get("events", 0)), "through_sequence": r.get("through_sequence")}


@dataclass(eq=False)
class CompactionView(View):
    """What ``store.compact()`` reported (a dict of facts; None: nothing to do);
    ``-o`` binds it."""

    result: Mapping[str, Any] | None
    store: StoreInfo | None = None
    kind: ClassVar[str] = "compaction"

    def members(self, limit: int) -> dict[str, Any]:
        if self.result is None:
            return {"result": None}
        # As for checkpoints, the seconds it took are left out of the document.
        return {"result": {k: v for k, v in self.result.items() if k != "seconds"}}


@dataclass(eq=False)
class ProgressView(_Keywords):
    """How far a long operation is: ``done`` of ``total`` ``unit``."""

    done: int
    total: int
    label: str = "ingesting"
    unit: str = "events"
    kind: ClassVar[str] = "progress"

    def members(self, limit: int) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "label": self.label, "unit": self.unit}


VIEWS: dict[str, type[View]] = {
    view.kind: view
    for view in (
        EventsView,
        StateView,
        TableView,
        WindowView,
        StatsView,
        IntegrityView,
        SchemaReportView,
        SchemaView,
        SchemaListView,
        CompatibilityView,
        ProjectionsView,
        PipelinesView,
        ReplayView,
        StoreView,
        IngestView,
        CheckpointView,
        CompactionView,
        ProgressView,
    )
}
