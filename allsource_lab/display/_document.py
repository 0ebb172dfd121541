"""The pieces every display document is built from: the row limit, JSON values, tables,
the facts of a store and the :class:`View` base class that turns a result into its mime
bundle.

Re-exported by :mod:`allsource_lab.display`, which users import; this module imports nothing
of the package but :mod:`allsource_lab.events` and :mod:`allsource_lab.errors` (and the
renderer beside it), so every module whose results have a rich display can import the
display without a circle.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from allsource_lab.display.render import render_html, render_text
from allsource_lab.errors import InvalidArgument
from allsource_lab.events import Event, _iso

__all__ = [
    "DEFAULT_LIMIT",
    "EVENT_COLUMNS",
    "FORMAT_VERSION",
    "MIMETYPE",
    "StoreInfo",
    "Table",
    "View",
    "default_limit",
    "events_table",
    "frame_table",
    "iso",
    "json_value",
    "mime_bundle",
    "records_table",
    "set_default_limit",
    "shown_rows",
]

MIMETYPE = "application/vnd.allsource.v1+json"
FORMAT_VERSION = 1
DEFAULT_LIMIT = 50  # rows a table shows before "showing N of M"; the magics' displaylimit
_limit = DEFAULT_LIMIT


def default_limit() -> int:
    """Rows a table shows when no ``limit`` is given (0: all).

    >>> default_limit()
    50
    """
    return _limit


def set_default_limit(limit: int) -> None:
    """Set the rows tables show by default (the magics' ``displaylimit``; 0 shows all).

    Raises:
        InvalidArgument: ``limit`` is not an int >= 0 (a ``ValueError`` too).

    >>> set_default_limit(10); default_limit()
    10
    >>> set_default_limit(DEFAULT_LIMIT)
    """
    global _limit
    _limit = _checked_limit(limit)


def _checked_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgument(f"a display limit must be an int >= 0 (0: all rows), not {limit!r}")
    return limit


def shown_rows(rows: int, limit: int) -> int:
    """How many of ``rows`` a table shows under ``limit`` (0: all).

    >>> shown_rows(120, 50), shown_rows(120, 0), shown_rows(3, 50)
    (50, 120, 3)
    """
    return rows if limit == 0 else min(rows, limit)


# -- values ---------------------------------------------------------------------------------


def iso(value: Any) -> str | None:
    """A time as ISO-8601 text, in UTC with a ``Z`` when it has a zone; None stays None.

    Takes datetimes, pandas Timestamps, ``numpy.datetime64``, ISO-8601 text and
    microseconds since the epoch (ints). Naive times are printed without a zone; text
    that is not a time is returned as it is.

    >>> iso(dt.datetime(2026, 1, 1, 13, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    '2026-01-01T12:00:00Z'
    >>> iso(1_000_000), iso("2026-01-01T00:00:00.5+00:00"), iso(None)
    ('1970-01-01T00:00:01Z', '2026-01-01T00:00:00.500000Z', None)
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _iso(value)
    if isinstance(value, str):
        text = value
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
    if type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        found = _json_scalar(value)
        return None if found is None else str(found)
    if isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            return str(value.isoformat())
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def json_value(value: Any) -> Any:
    """``value`` as plain JSON data: dict keys sorted, times ISO-8601, NaN as null.

    >>> json_value({"b": float("nan"), "a": [dt.date(2026, 1, 2), uuid.UUID(int=1)]})
    {'a': ['2026-01-02', '00000000-0000-0000-0000-000000000001'], 'b': None}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, set | frozenset):
        return [json_value(v) for v in sorted(value, key=repr)]
    if isinstance(value, dt.datetime | dt.date):
        return iso(value)
    if isinstance(value, dt.timedelta):
        import pandas as pd

        return str(pd.Timedelta(value).isoformat())
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        return _json_scalar(value)
    return str(value)


def _json_scalar(value: Any) -> Any:
    """numpy and pandas scalars (and pandas' missing values) as JSON data."""
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if type(value).__name__ == "datetime64":
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is not None:
            value = value.tz_convert("UTC").tz_localize(None)
            return str(value.isoformat()) + "Z"
        return str(value.isoformat())
    if isinstance(value, pd.Timedelta):
        return str(value.isoformat())
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_value(value.tolist())
    return str(value)


# -- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """Rows to show (at most the limit) of a result with ``total`` rows.

    ``columns`` are (name, type) pairs; types are ``integer``, ``number``, ``boolean``,
    ``string``, ``timestamp``, ``date``, ``duration``, ``uuid``, ``json`` or ``binary``.
    """

    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    total: int

    def document(self) -> dict[str, Any]:
        """The ``table`` member of a document."""
        return {
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": [[json_value(v) for v in row] for row in self.rows],
            "total": self.total,
            "truncated": len(self.rows) < self.total,
        }


def frame_table(frame: Any, limit: int) -> Table:
    """The first ``limit`` rows (0: all) of a pandas DataFrame, typed by column.

    >>> import pandas as pd
    >>> t = frame_table(pd.DataFrame({"n": [1, 2, 3], "x": ["a", "b", None]}), 2)
    >>> t.columns, t.rows, t.total
    ([('n', 'integer'), ('x', 'string')], [[1, 'a'], [2, 'b']], 3)
    """
    total = len(frame)
    head = frame.iloc[: shown_rows(total, limit)]
    columns = [(str(name), _column_type(head.iloc[:, i])) for i, name in enumerate(head.columns)]
    values = [head.iloc[:, i].tolist() for i in range(len(head.columns))]
    rows = [list(row) for row in zip(*values, strict=True)] if values else [[] for _ in head.index]
    return Table(columns, rows, total)


def _column_type(series: Any) -> str:
    kind = series.dtype.kind
    if kind in "iu":
        return "integer"
    if kind == "f":
        return "number"
    if kind == "b":
        return "boolean"
    if kind == "M" or str(series.dtype).startswith("datetime64"):
        return "timestamp"
    if kind == "m":
        return "duration"
    for value in series.tolist():
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return _value_type(value)
    return "string"


def _value_type(value: Any) -> str:
    """The column type of one Python value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | decimal.Decimal):
        return "number"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.timedelta):
        return "duration"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, Mapping | list | tuple):
        return "json"
    if isinstance(value, bytes | bytearray):
        return "binary"
    return "string"


EVENT_COLUMNS = [
    ("sequence", "integer"),
    ("event_id", "uuid"),
    ("event_type", "string"),
    ("entity_id", "string"),
    ("version", "integer"),
    ("timestamp", "timestamp"),
    ("recorded_at", "timestamp"),
    ("payload", "json"),
    ("metadata", "json"),
    ("schema_version", "integer"),
]


def events_table(events: Sequence[Event], total: int) -> Table:
    """Events as a table of ``EVENT_COLUMNS`` (``total``: events in the whole result)."""
    rows = [
        [
            e.sequence,
            str(e.event_id),
            e.event_type,
            e.entity_id,
            e.version,
            _iso(e.timestamp_us),
            _iso(e.recorded_at_us),
            e.payload,
            e.metadata,
            e.schema_version,
        ]
        for e in events
    ]
    return Table(list(EVENT_COLUMNS), rows, total)


def records_table(records: Sequence[Mapping[str, Any]], limit: int) -> Table:
    """Dicts as a table: columns in first-seen order, typed by their first non-null value.

    >>> t = records_table([{"name": "a", "lag": 0}, {"name": "b", "error": "boom"}], 0)
    >>> t.columns, t.rows
    ([('name', 'string'), ('lag', 'integer'), ('error', 'string')], [['a', 0, None], ['b', None, 'boom']])
    """  # noqa: E501
    types: dict[str, str | None] = {}
    for record in records:
        for key, value in record.items():
            if types.get(key) is None:
                types[key] = None if value is None else _value_type(value)
    columns = [(name, kind or "string") for name, kind in types.items()]
    shown = records[: shown_rows(len(records), limit)]
    return Table(columns, [[r.get(name) for name in types] for r in shown], len(records))


# -- views ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """Which store a result came from: its folder (None in memory) and its event count."""

    path: str | None
    events: int

    @classmethod
    def of(cls, store: Any) -> StoreInfo:
        """The facts of an open ``EventStore``."""
        path = store.path
        return cls(None if path is None else str(path), int(store.stats()["events"]))

    def document(self) -> dict[str, Any]:
        """The ``store`` member of a document."""
        return {"path": self.path, "events": self.events}


class View:
    """A result that displays as the three representations.

    Subclasses (:mod:`allsource_lab.display.views`) set ``kind`` and build their members
    of the document in ``members(limit)``; ``store`` says which store the result is from.
    """

    kind: ClassVar[str] = ""
    store: StoreInfo | None = None

    @classmethod
    def from_data(cls, data: Any) -> View:
        """The view of ``data`` for ``bundle(kind, data)``: by default ``cls(data)``."""
        return cls(data)  # type: ignore[call-arg]

    def members(self, limit: int) -> dict[str, Any]:
        """The document's members besides ``version``, ``kind`` and ``store``."""
        raise NotImplementedError(f"{type(self).__name__} does not define members()")

    def document(self, limit: int | None = None) -> dict[str, Any]:
        """The JSON document: ``version``, ``kind``, ``store`` (if known), the members."""
        doc = self.members(default_limit() if limit is None else _checked_limit(limit))
        clash = doc.keys() & {"version", "kind", "store"}
        if clash:  # the envelope's names are never a kind's members
            raise InvalidArgument(
                f"{type(self).__name__} members use envelope names {sorted(clash)}"
            )
        doc["version"] = FORMAT_VERSION
        doc["kind"] = self.kind
        if self.store is not None:
            doc["store"] = self.store.document()
        result: dict[str, Any] = json_value(doc)
        return result

    def extra_bundle(self) -> dict[str, Any]:
        """Mimetypes beyond the three this view also offers (e.g. a Vega-Lite chart)."""
        return {}

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        return mime_bundle(self, include=include, exclude=exclude)


def mime_bundle(
    view: View,
    limit: int | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The mime bundle of ``view``: its JSON document, ``text/html`` and ``text/plain``
    (and any extra it offers), tables cut at ``limit`` rows (default:
    :func:`default_limit`; 0: all), filtered by ``include``/``exclude`` as IPython's
    ``_repr_mimebundle_`` asks. ``display.bundle`` is this for any displayable subject.

    Raises:
        InvalidArgument: a bad ``limit`` (a ``ValueError`` too).

    >>> class Hello(View):
    ...     kind = "hello"
    ...     def members(self, limit):
    ...         return {"greeting": "hi"}
    >>> mime_bundle(Hello(), include=[MIMETYPE])
    {'application/vnd.allsource.v1+json': {'greeting': 'hi', 'kind': 'hello', 'version': 1}}
    """
    doc = view.document(limit)
    wanted = set(include) if include is not None else None
    unwanted = set(exclude or ())
    out = {MIMETYPE: doc, "text/html": None, "text/plain": None, **view.extra_bundle()}
    for mime in list(out):
        if (wanted is not None and mime not in wanted) or mime in unwanted:
            del out[mime]
    # Rendered only when asked for: a caller wanting one form pays for that one.
    if "text/html" in out:
        out["text/html"] = render_html(doc)
    if "text/plain" in out:
        out["text/plain"] = render_text(doc)
    return out
