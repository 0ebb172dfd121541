"""Rich display of results: ``application/vnd.allsource.v1+json``, HTML and plain text.

Every displayable result (events, an entity's state, windows, SQL results, schema
reports, stats, integrity reports, ...) is first turned into one JSON document — the
shape documented in ``docs/mimetype.md`` and checked by ``display/schema.json`` — and the
HTML and plain-text forms are rendered from that document
(:mod:`allsource_lab.display.render`), so the three always agree. The small objects that
wrap each kind of result are in :mod:`allsource_lab.display.views`, the pieces they are
built from in ``display/_document.py``.

Documents are deterministic: object keys sorted, times as ISO-8601 UTC text with a ``Z``,
payloads as JSON objects, tables cut to ``limit`` rows with the full count beside them.

>>> out = bundle("stats", {"events": 3, "path": None})
>>> sorted(out)
['application/vnd.allsource.v1+json', 'text/html', 'text/plain']
>>> out[MIMETYPE]
{'kind': 'stats', 'stats': {'events': 3, 'path': None}, 'version': 1}
>>> print(out["text/plain"])
store stats
  events  3
  path    -

Nothing here imports IPython (the notebook layer builds on this module), and pandas is
imported only to read the DataFrames a caller passes. Of this package the display imports
only :mod:`allsource_lab.events` and :mod:`allsource_lab.errors`: the modules whose results
it shows (``EventFrame``, ``IntegrityReport``, ...) import it, and it knows their results
by class name and by what they have (``fixtures.py`` alone builds a real store).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allsource_lab.display import views
from allsource_lab.display._document import (
    DEFAULT_LIMIT,
    FORMAT_VERSION,
    MIMETYPE,
    StoreInfo,
    Table,
    View,
    default_limit,
    events_table,
    frame_table,
    iso,
    json_value,
    mime_bundle,
    records_table,
    set_default_limit,
    shown_rows,
)
from allsource_lab.errors import InvalidArgument
from allsource_lab.events import Event

__all__ = [
    "DEFAULT_LIMIT",
    "FORMAT_VERSION",
    "MIMETYPE",
    "StoreInfo",
    "Table",
    "View",
    "as_view",
    "bundle",
    "default_limit",
    "events_table",
    "frame_table",
    "iso",
    "json_value",
    "kinds",
    "records_table",
    "set_default_limit",
    "shown_rows",
]

# Results of modules above this package, known by class name: those modules import
# display, so display imports none of them. The first two replaced isinstance checks, so
# a subclass of theirs matches too (its bases are searched); the rest match their own
# name only.
_VIEW_OF_BASE: dict[str, type[View]] = {
    "EventFrame": views.EventsView,
    "IntegrityReport": views.IntegrityView,
}
_VIEW_OF_CLASS: dict[str, type[View]] = {
    "CompatibilityReport": views.SchemaReportView,
    "SchemaVersion": views.SchemaView,
    "ReplayJob": views.ReplayView,
    "DataFrame": views.TableView,
}


def kinds() -> tuple[str, ...]:
    """Every document kind, sorted.

    >>> "events" in kinds() and "state" in kinds()
    True
    """
    return tuple(sorted(views.VIEWS))


def as_view(subject: Any, data: Any = None) -> View:
    """The view that displays ``subject``: a kind name (``data`` is what it shows), a
    view, or a result object (``EventFrame``, ``Event``, ``IntegrityReport``,
    ``CompatibilityReport``, ``SchemaVersion``, ``ReplayJob``, a DataFrame).

    Raises:
        InvalidArgument: an unknown kind.
        TypeError: an object with no view.
    """
    if isinstance(subject, str):
        view = views.VIEWS.get(subject)
        if view is None:
            raise InvalidArgument(
                f"unknown display kind {subject!r}; kinds are {', '.join(kinds())}"
            )
        return view.from_data(data)
    if isinstance(subject, View):
        return subject
    if isinstance(subject, Event):
        return views.EventsView([subject])
    for base in type(subject).__mro__:
        if base.__name__ in _VIEW_OF_BASE:
            return _VIEW_OF_BASE[base.__name__].from_data(subject)
    name = type(subject).__name__
    if name in _VIEW_OF_CLASS:
        return _VIEW_OF_CLASS[name].from_data(subject)
    raise TypeError(f"no AllSource display for a {name}")


def bundle(
    subject: Any,
    data: Any = None,
    *,
    limit: int | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The mime bundle of ``subject`` (see :func:`as_view`): the AllSource JSON document,
    ``text/html`` and ``text/plain`` (and any extra the view offers), tables cut at
    ``limit`` rows (default: :func:`default_limit`; 0: all). ``include``/``exclude``
    filter mimetypes as IPython's ``_repr_mimebundle_`` asks.

    Raises:
        InvalidArgument: an unknown kind or a bad ``limit``.
        TypeError: an object with no view.

    >>> report = type("Report", (), {"ok": True, "problems": [], "files_checked": 2})()
    >>> print(bundle("integrity", report)["text/plain"])
    integrity ok: 2 files checked, no problems
    >>> list(bundle("integrity", report, include=["text/plain"]))
    ['text/plain']
    """
    return mime_bundle(as_view(subject, data), limit, include, exclude)
