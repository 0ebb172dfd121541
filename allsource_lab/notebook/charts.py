"""Charts of window results and event frequencies, as Vega-Lite v5 specs.

Vega-Lite because JupyterLab renders ``application/vnd.vegalite.v5+json`` by itself (no
extension, no extra package in the kernel) and because a spec is plain JSON: the same
frame always gives the same bytes, which keeps notebook outputs comparable by nbval.
Plotting libraries that draw in the kernel (matplotlib) emit images whose bytes change
with fonts and versions; altair would add a dependency to write what a dict already says.

The data travels inside the spec in long form — one row per window, key and measure,
with ``window_start``/``window_end`` as ISO-8601 UTC text ending in ``Z`` — sorted by
window, key and measure. Long form also keeps user names out of Vega-Lite field names,
where a dot (``payload.amount_sum``) would mean a nested field.

>>> import pandas as pd
>>> frame = pd.DataFrame({
...     "window_start": pd.to_datetime(["2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z"]),
...     "window_end": pd.to_datetime(["2026-01-01T00:02:00Z", "2026-01-01T00:01:00Z"]),
...     "count": [3, 1]})
>>> spec = window_chart(frame)
>>> spec["mark"]["type"], spec["data"]["values"][0]
('bar', {'window_start': '2026-01-01T00:00:00Z', 'window_end': '2026-01-01T00:01:00Z', \
'measure': 'count', 'value': 1})
>>> sorted(Chart(spec)._repr_mimebundle_())
['application/vnd.vegalite.v5+json', 'text/html', 'text/plain']
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from allsource_lab.errors import InvalidArgument

__all__ = [
    "MAX_POINTS",
    "VEGA_LITE_MIME",
    "Chart",
    "frequency_chart",
    "window_chart",
]

VEGA_LITE_MIME = "application/vnd.vegalite.v5+json"
SCHEMA_URL = "https://vega.github.io/schema/vega-lite/v5.json"
# Rows of inline data at most. Past this the browser slows down and the notebook file
# grows by megabytes (each row is ~130 bytes of JSON); a coarser window says more anyway.
MAX_POINTS = 5_000
WIDTH_PX = 560
HEIGHT_PX = 200
FACET_HEIGHT_PX = 120  # each measure's own chart, when several are stacked
HTML_ROWS = 20
# Bars get a white outline while there are this many windows at most; more, and the
# outline would cover bars a few pixels wide.
OUTLINED_BARS = 100  # rows of data in the text/html fallback
WINDOW_COLUMNS = ("window_start", "window_end")
KEY_SEPARATOR = " · "
TIME_FORMAT = "%Y-%m-%d %H:%M"


class Chart:
    """A Vega-Lite v5 spec that displays as a chart in JupyterLab.

    ``_repr_mimebundle_`` gives the Vega-Lite mimetype, ``text/html`` (the spec's data as
    a small table, for front ends that do not render Vega-Lite) and ``text/plain`` (the
    spec's ``description``).
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec: dict[str, Any] = dict(spec)

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        bundle = {
            VEGA_LITE_MIME: self.spec,
            "text/html": self._repr_html_(),
            "text/plain": repr(self),
        }
        if include is not None:
            wanted = set(include)
            bundle = {k: v for k, v in bundle.items() if k in wanted}
        if exclude is not None:
            unwanted = set(exclude)
            bundle = {k: v for k, v in bundle.items() if k not in unwanted}
        return bundle

    def _repr_html_(self) -> str:
        rows: list[dict[str, Any]] = list(self.spec.get("data", {}).get("values", []))
        note = html.escape(str(self.spec.get("description", "Vega-Lite chart")))
        if not rows:
            return f"<p>{note} (no data)</p>"
        columns = list(dict.fromkeys(name for row in rows for name in row))
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns)
            + "</tr>"
            for row in rows[:HTML_ROWS]
        )
        more = f"<p>… {len(rows) - HTML_ROWS:,} more rows</p>" if len(rows) > HTML_ROWS else ""
        return (
            f"<p>{note} — a Vega-Lite chart; JupyterLab draws it, this is its data.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"
        )

    def __repr__(self) -> str:
        return f"<Chart: {self.spec.get('description', 'Vega-Lite chart')}>"


def window_chart(frame: pd.DataFrame, title: str | None = None) -> dict[str, Any]:
    """A Vega-Lite spec for a ``store.window(...)`` result.

    Columns ``window_start`` and ``window_end`` place each window; text columns are the
    ``by`` keys (one line and colour per key value, several keys joined by `` · ``);
    numeric columns are the aggregates (one stacked chart each, y scales independent).
    Windows that neither overlap nor have keys are bars spanning their window; anything
    else is a line with points at the window's start.

    Raises:
        InvalidArgument: a window column or every aggregate is missing, or the chart would
            hold more than ``MAX_POINTS`` rows of data.
    """
    keys, measures = _columns(frame, "window_chart")
    values = _long_rows(frame, keys, measures)
    bars = not keys and not _overlapping(values)
    kind = "bar" if bars else "line"
    summary = _summary(kind, measures, keys, values)
    return _spec(values, keys, measures, bars=bars, summary=summary, title=title)


def frequency_chart(frame: pd.DataFrame, title: str | None = None) -> dict[str, Any]:
    """A Vega-Lite spec for ``store.analytics.frequency(...)``: a bar per bucket spanning
    it, stacked by event type when the frame has an ``event_type`` column.

    Raises:
        InvalidArgument: the frame has no window columns or no ``count`` column, or more than
            ``MAX_POINTS`` rows.
    """
    keys, measures = _columns(frame, "frequency_chart")
    if "count" not in measures:
        raise InvalidArgument(
            "frequency_chart takes store.analytics.frequency(...)'s frame, with a 'count' "
            f"column; this one has {list(frame.columns)}"
        )
    values = _long_rows(frame, keys, ["count"])
    summary = _summary("stacked bar" if keys else "bar", ["count"], keys, values)
    return _spec(values, keys, ["count"], bars=True, summary=summary, title=title)


# -- building the spec ------------------------------------------------------------------


def _columns(frame: pd.DataFrame, who: str) -> tuple[list[str], list[str]]:
    """The key columns (text) and the measure columns (numbers) of a window frame."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    names = [str(c) for c in frame.columns]
    missing = [c for c in WINDOW_COLUMNS if c not in names]
    if missing:
        raise InvalidArgument(
            f"{who} takes a frame from store.window(...) with columns window_start and "
            f"window_end; {missing} missing from {names}"
        )
    keys: list[str] = []
    measures: list[str] = []
    for name in names:
        if name in WINDOW_COLUMNS:
            continue
        column = frame[name]
        if is_numeric_dtype(column) and not is_bool_dtype(column):
            measures.append(name)
        else:
            keys.append(name)
    if not measures:
        raise InvalidArgument(f"{who}: no numeric aggregate column to chart in {names}")
    return keys, measures


def _long_rows(frame: pd.DataFrame, keys: list[str], measures: list[str]) -> list[dict[str, Any]]:
    if len(frame) * len(measures) > MAX_POINTS:
        raise InvalidArgument(
            f"{len(frame):,} windows × {len(measures)} aggregates is too much to chart "
            f"(at most {MAX_POINTS:,} points): use a longer window, fewer keys or a "
            "narrower since/until"
        )
    starts = [_iso(v) for v in frame["window_start"]]
    ends = [_iso(v) for v in frame["window_end"]]
    key_texts = [""] * len(frame)
    if keys:
        key_texts = [
            KEY_SEPARATOR.join(_key_text(part) for part in parts)
            for parts in zip(*(frame[k] for k in keys), strict=True)
        ]
    rows = []
    for order, measure in enumerate(measures):
        for start, end, key, value in zip(starts, ends, key_texts, frame[measure], strict=True):
            rows.append((start, end, key, order, measure, _number(value)))
    rows.sort(key=lambda r: r[:4])
    if keys:
        return [
            {"window_start": s, "window_end": e, "key": k, "measure": m, "value": v}
            for s, e, k, _, m, v in rows
        ]
    return [
        {"window_start": s, "window_end": e, "measure": m, "value": v} for s, e, _, _, m, v in rows
    ]


def _overlapping(values: list[dict[str, Any]]) -> bool:
    windows = sorted({(r["window_start"], r["window_end"]) for r in values})
    # ISO-8601 UTC text of one format sorts as the times do.
    return any(nxt[0] < prev[1] for prev, nxt in itertools.pairwise(windows))


def _summary(kind: str, measures: list[str], keys: list[str], values: list[dict[str, Any]]) -> str:
    windows = len({(row["window_start"], row["window_end"]) for row in values})
    by = f" by {', '.join(keys)}" if keys else ""
    return f"{kind} chart of {', '.join(measures)} over {windows:,} windows{by}"


def _spec(
    values: list[dict[str, Any]],
    keys: list[str],
    measures: list[str],
    *,
    bars: bool,
    summary: str,
    title: str | None,
) -> dict[str, Any]:
    key_title = KEY_SEPARATOR.join(keys)
    # Several measures: each row of the facet is headed by its measure, not the y axis.
    y_title = measures[0] if len(measures) == 1 else None
    encoding: dict[str, Any] = {
        "x": {
            "field": "window_start",
            "type": "temporal",
            "title": "window (UTC)",
            "scale": {"type": "utc"},
            # 24-hour labels (in UTC, as the scale is): Vega's default uses a 12-hour clock.
            "axis": {"format": TIME_FORMAT, "labelAngle": -30},
        },
        "y": {"field": "value", "type": "quantitative", "title": y_title},
        "tooltip": [
            {"field": "window_start", "type": "nominal", "title": "start"},
            {"field": "window_end", "type": "nominal", "title": "end"},
            *([{"field": "key", "type": "nominal", "title": key_title}] if keys else []),
            {"field": "measure", "type": "nominal"},
            {"field": "value", "type": "quantitative"},
        ],
    }
    if keys:
        encoding["color"] = {
            "field": "key",
            "type": "nominal",
            "title": key_title,
            "sort": "ascending",
        }
    spec: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "description": summary,
        "data": {"values": values},
    }
    if title is not None:
        spec["title"] = title
    if bars:
        # Each bar spans its window [start, end) and its key's slice of the stack. The
        # stack is computed explicitly: Vega-Lite stacks a bar by itself only along a
        # band or bin axis, and "bin": "binned" would format the time axis as numbers.
        stack: dict[str, Any] = {
            "stack": "value",
            "groupby": ["window_start", "measure"],
            "as": ["value_start", "value_end"],
            "offset": "zero",
        }
        if keys:
            stack["sort"] = [{"field": "key", "order": "ascending"}]
        spec["transform"] = [stack]
        encoding["x2"] = {"field": "window_end"}
        encoding["y"] = {"field": "value_end", "type": "quantitative", "title": y_title}
        encoding["y2"] = {"field": "value_start"}
        mark: dict[str, Any] = {"type": "bar"}
        if len({row["window_start"] for row in values}) <= OUTLINED_BARS:
            mark.update(stroke="white", strokeWidth=1)  # adjacent windows stay apart
    else:
        mark = {"type": "line", "point": True}
    if len(measures) == 1:
        spec.update(width=WIDTH_PX, height=HEIGHT_PX, mark=mark, encoding=encoding)
    else:
        spec.update(
            facet={"row": {"field": "measure", "type": "nominal", "title": None, "sort": measures}},
            spec={
                "width": WIDTH_PX,
                "height": FACET_HEIGHT_PX,
                "mark": mark,
                "encoding": encoding,
            },
            resolve={"scale": {"y": "independent"}},
        )
    return spec


# -- values -----------------------------------------------------------------------------


def _iso(value: Any) -> str:
    """A window bound as ISO-8601 UTC text ending in Z (microseconds only when present)."""
    moment: datetime = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # window frames are UTC; a naive one was too
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _key_text(value: Any) -> str:
    return "(none)" if _missing(value) else str(value)


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA (a key path absent from a payload, an empty window's avg)."""
    missing = pd.isna(value)
    return isinstance(missing, bool) and missing


def _number(value: Any) -> int | float | None:
    """A JSON number: numpy scalars as Python ones, NaN (an empty window's avg) as null."""
    if _missing(value):
        return None
    plain = value.item() if hasattr(value, "item") else value
    if isinstance(plain, float):
        return None if math.isinf(plain) else plain
    return int(plain)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
