"""Charts of window results and event frequencies, as Altair charts.

A chart is an ``altair.Chart`` (a ``FacetChart`` when several aggregates are stacked), so a
user changes it as any Altair chart: ``.properties(width=800)``, ``.interactive()``,
layered with ``+``, saved with ``.save("orders.html")``.

Every window is drawn: the chart never follows the table's display limit. Past
``MAX_POINTS`` points (windows × keys × aggregates) the windows are combined into coarser
buckets (a minute, 5 minutes, … a year: the finest that fits) and the title says so.

How a chart displays: Altair 6's own default renderer gives only ``text/html`` that loads
Vega from a CDN, which draws nothing offline or in a notebook JupyterLab does not trust,
and its ``mimetype`` renderer gives a Vega-Lite 6 mimetype that JupyterLab 4 cannot draw.
So this module registers an Altair renderer, ``allsource``, and enables it on import when
Altair's renderer is still ``default`` (a renderer the user chose is kept). Its bundle is

* ``application/vnd.vegalite.v5+json``: JupyterLab 4 (rank 57) and VS Code (``vnd.*``
  first) draw it with the Vega they ship, offline and untrusted. Vega-Lite 5 compiles these
  Altair 6 specs: vega-lite 5.23 and vega 5.33 from npm, in node, drew one bar per window
  and warned of nothing. Nothing in the bundle outranks it in JupyterLab, where
  ``text/html`` (rank 50) would win;
* ``image/svg+xml``: the chart drawn by vl-convert (when ``vl-convert-python``, in the
  ``notebook`` extra, is installed): what ``nbconvert --to html`` picks (it knows no
  Vega-Lite mimetype) and GitHub shows. JupyterLab ranks SVG 80, after the chart. An
  ``application/javascript`` embed was tried and rejected: JupyterLab 4.6 in Chromium drew
  the script instead of the chart (the browser test saw it), loading Vega from a CDN;
* ``text/plain``: what the chart shows, in words.

The data travels inside the spec in long form — one row per window, key and measure, with
``window_start``/``window_end`` as ISO-8601 UTC text ending in ``Z`` — sorted by window,
key and measure. Long form also keeps user names out of Vega-Lite field names, where a
dot (``payload.amount_sum``) would mean a nested field.

>>> import pandas as pd
>>> frame = pd.DataFrame({
...     "window_start": pd.to_datetime(["2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z"]),
...     "window_end": pd.to_datetime(["2026-01-01T00:02:00Z", "2026-01-01T00:01:00Z"]),
...     "count": [3, 1]})
>>> chart = window_chart(frame, title="clicks")
>>> chart.mark.type, chart.data.values[0]
('bar', {'window_start': '2026-01-01T00:00:00Z', 'window_end': '2026-01-01T00:01:00Z', \
'measure': 'count', 'value': 1})
>>> sorted(chart._repr_mimebundle_())
['application/vnd.vegalite.v5+json', 'image/svg+xml', 'text/plain']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import altair as alt
import pandas as pd

from allsource_lab.errors import InvalidArgument

__all__ = [
    "BUCKETS",
    "MAX_POINTS",
    "RENDERER",
    "VEGA_LITE_MIME",
    "Chart",
    "ChartAbove",
    "frequency_chart",
    "render_bundle",
    "window_chart",
]

VEGA_LITE_MIME = "application/vnd.vegalite.v5+json"
RENDERER = "allsource"
# Points of inline data at most before windows are bucketed. Each point is a mark (a bar
# or a line point): 5,000 one-measure points measured 104 bytes each as compact JSON
# (orjson.dumps of the spec), about what a notebook output should hold beside its static
# SVG; and more bars than a 560-pixel chart has pixels say nothing more.
MAX_POINTS = 5_000
# The coarser buckets windows are summed into, finest first.
BUCKETS: tuple[tuple[str, pd.Timedelta], ...] = (
    ("1m", pd.Timedelta(minutes=1)),
    ("5m", pd.Timedelta(minutes=5)),
    ("15m", pd.Timedelta(minutes=15)),
    ("1h", pd.Timedelta(hours=1)),
    ("6h", pd.Timedelta(hours=6)),
    ("1d", pd.Timedelta(days=1)),
    ("7d", pd.Timedelta(days=7)),
    ("30d", pd.Timedelta(days=30)),
    ("365d", pd.Timedelta(days=365)),
)
WIDTH_PX = 560
HEIGHT_PX = 200
FACET_HEIGHT_PX = 120  # each measure's own chart, when several are stacked
# Bars get a white outline while there are this many windows at most; more, and the
# outline would cover bars a few pixels wide.
OUTLINED_BARS = 100
WINDOW_COLUMNS = ("window_start", "window_end")
KEY_SEPARATOR = " · "
TIME_FORMAT = "%Y-%m-%d %H:%M"


def window_chart(frame: pd.DataFrame, title: str | None = None) -> alt.TopLevelMixin:
    """An Altair chart of a ``store.window(...)`` result, with every window in it.

    Columns ``window_start`` and ``window_end`` place each window; text columns are the
    ``by`` keys (one line and colour per key value, several keys joined by `` · ``);
    numeric columns are the aggregates (one stacked chart each, y scales independent).
    Windows that neither overlap nor have keys are bars spanning their window; anything
    else is a line with points at the window's start. Past ``MAX_POINTS`` points, windows
    are bucketed (counts and sums added, minima and maxima kept, anything else averaged)
    and the title says into what.

    Raises:
        InvalidArgument: a window column or every aggregate is missing.

    >>> import pandas as pd
    >>> starts = pd.date_range("2026-01-01", periods=6000, freq="min", tz="UTC")
    >>> frame = pd.DataFrame({"window_start": starts,
    ...                       "window_end": starts + pd.Timedelta("1min"), "count": 1})
    >>> chart = window_chart(frame)
    >>> len(chart.data.values), chart.title
    (1200, 'count per 5m: 6,000 windows combined into 1,200 to draw them all')
    """
    keys, measures = _columns(frame, "window_chart")
    windows = len(frame)
    frame, bucket = _bucketed(frame, keys, measures)
    values = _long_rows(frame, keys, measures)
    bars = not keys and not _overlapping(values)
    kind = "bar" if bars else "line"
    summary = _summary(kind, measures, keys, values)
    if bucket is not None:
        title = _bucket_title(title, measures, bucket, windows, len(frame))
    return _chart(values, keys, measures, bars=bars, summary=summary, title=title)


def frequency_chart(frame: pd.DataFrame, title: str | None = None) -> alt.TopLevelMixin:
    """An Altair chart of ``store.analytics.frequency(...)``: a bar per bucket spanning
    it, stacked by event type when the frame has an ``event_type`` column.

    Raises:
        InvalidArgument: the frame has no window columns or no ``count`` column.

    >>> import pandas as pd
    >>> at = pd.to_datetime(["2026-01-01T00:00:00Z"])
    >>> frame = pd.DataFrame({"window_start": at, "window_end": at, "count": [2]})
    >>> frequency_chart(frame).mark.type
    'bar'
    """
    keys, measures = _columns(frame, "frequency_chart")
    if "count" not in measures:
        raise InvalidArgument(
            "frequency_chart takes store.analytics.frequency(...)'s frame, with a 'count' "
            f"column; this one has {list(frame.columns)}"
        )
    windows = len(frame)
    frame, bucket = _bucketed(frame, keys, ["count"])
    values = _long_rows(frame, keys, ["count"])
    summary = _summary("stacked bar" if keys else "bar", ["count"], keys, values)
    if bucket is not None:
        title = _bucket_title(title, ["count"], bucket, windows, len(frame))
    return _chart(values, keys, ["count"], bars=True, summary=summary, title=title)


@dataclass(frozen=True)
class ChartAbove:
    """A chart shown above a result, as two outputs: what ``window --chart`` displays.

    The chart displays as Altair does (every window); the result as it does by itself
    (the window's table, cut at the display limit).

    >>> import pandas as pd
    >>> at = pd.to_datetime(["2026-01-01T00:00:00Z"])
    >>> chart = window_chart(pd.DataFrame({"window_start": at, "window_end": at, "count": [2]}))
    >>> ChartAbove(chart, "the table")
    <Chart: bar chart of count over 1 windows> above 'the table'
    """

    chart: alt.TopLevelMixin
    result: Any

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.chart)  # type: ignore[no-untyped-call]  # IPython's display is untyped
        display(self.result)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        description = self.chart.to_dict().get("description", "Vega-Lite chart")
        return f"<Chart: {description}> above {self.result!r}"


def Chart(chart: alt.TopLevelMixin | Mapping[str, Any]) -> alt.TopLevelMixin:
    """The chart itself: kept for notebooks written as ``Chart(window_chart(...))``.

    ``window_chart`` and ``frequency_chart`` return Altair charts that display by
    themselves; a Vega-Lite spec (a dict, single or faceted, layered or concatenated)
    becomes the Altair chart of it.

    Raises:
        InvalidArgument: ``chart`` is neither an Altair chart nor a mapping.

    >>> import pandas as pd
    >>> at = pd.to_datetime(["2026-01-01T00:00:00Z"])
    >>> chart = window_chart(pd.DataFrame({"window_start": at, "window_end": at, "count": [2]}))
    >>> Chart(chart) is chart
    True
    """
    if isinstance(chart, alt.TopLevelMixin):
        return chart
    if isinstance(chart, Mapping):
        spec = dict(chart)
        # The top-level key says which kind of Altair chart the spec is.
        kinds: dict[str, Any] = {
            "facet": alt.FacetChart,
            "layer": alt.LayerChart,
            "hconcat": alt.HConcatChart,
            "vconcat": alt.VConcatChart,
            "concat": alt.ConcatChart,
        }
        kind = next((kinds[k] for k in kinds if k in spec), alt.Chart)
        made: alt.TopLevelMixin = kind.from_dict(spec, validate=False)
        return made
    raise InvalidArgument(
        f"Chart takes an Altair chart or a Vega-Lite spec, not {type(chart).__name__}: "
        "use window_chart(frame) or frequency_chart(frame)"
    )


def render_bundle(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """The mime bundle of a Vega-Lite spec: the Altair renderer ``allsource``.

    The spec under ``application/vnd.vegalite.v5+json`` (drawn by JupyterLab and VS Code),
    the chart drawn as SVG when ``vl-convert-python`` is installed (for ``nbconvert --to
    html``, GitHub and other static viewers) and a line of text; see the module's
    docstring for why these and no ``text/html`` or ``application/javascript``.

    >>> bundle = render_bundle({"description": "bar chart of count over 2 windows"})
    >>> bundle["text/plain"]
    '<Chart: bar chart of count over 2 windows>'
    """
    bundle: dict[str, Any] = {
        VEGA_LITE_MIME: spec,
        "text/plain": f"<Chart: {spec.get('description', 'Vega-Lite chart')}>",
    }
    svg = static_svg(spec)
    if svg is not None:
        bundle["image/svg+xml"] = svg
    return bundle


def static_svg(spec: dict[str, Any]) -> str | None:
    """The chart drawn as SVG by vl-convert (Vega compiled in, no browser, no network), or
    None when vl-convert is not installed or cannot draw this spec.

    A static picture is only a fallback for viewers without Vega, so a failure to draw
    it never keeps the chart itself from showing.
    """
    try:
        import vl_convert
    except ImportError:
        return None
    try:
        svg: str = vl_convert.vegalite_to_svg(spec)
    except Exception:  # vl-convert raises plain exceptions for specs it cannot draw
        return None
    return svg


alt.renderers.register(RENDERER, render_bundle)
if alt.renderers.active == "default":
    alt.renderers.enable(RENDERER)


# -- reading the frame ------------------------------------------------------------------


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


def _bucketed(
    frame: pd.DataFrame, keys: list[str], measures: list[str]
) -> tuple[pd.DataFrame, str | None]:
    """The frame as is when it fits in ``MAX_POINTS``, else its windows combined into the
    finest bucket of ``BUCKETS`` that fits (the coarsest, if none does), and its name."""
    if len(frame) * len(measures) <= MAX_POINTS:
        return frame, None
    starts = pd.to_datetime(frame["window_start"], utc=True)
    epoch = pd.Timestamp(0, tz="UTC")
    how = {m: _combine(m) for m in measures}
    key_columns = [frame[k].astype(object).where(frame[k].notna(), "(none)") for k in keys]
    for option in BUCKETS:
        width = option[1]
        # Buckets count from the Unix epoch, so their bounds are the same whatever the
        # data (a day starts at midnight UTC).
        bucket_start = (epoch + ((starts - epoch) // width) * width).rename("window_start")
        summed = frame.groupby([bucket_start, *key_columns])[measures].agg(how).reset_index()
        if len(summed) * len(measures) <= MAX_POINTS:
            break
    summed.insert(1, "window_end", summed["window_start"] + width)
    return summed, option[0]


def _combine(measure: str) -> str:
    """How windows of one aggregate become a bucket's: counts and sums add up."""
    if measure == "count" or measure.endswith(("_count", "_sum")):
        return "sum"
    if measure.endswith("_min"):
        return "min"
    if measure.endswith("_max"):
        return "max"
    return "mean"


def _bucket_title(
    title: str | None, measures: list[str], bucket: str, windows: int, rows: int
) -> str:
    """The title of a bucketed chart: what was combined into what, and why."""
    head = title if title is not None else ", ".join(measures)
    return f"{head} per {bucket}: {windows:,} windows combined into {rows:,} to draw them all"


def _long_rows(frame: pd.DataFrame, keys: list[str], measures: list[str]) -> list[dict[str, Any]]:
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


# -- building the chart -----------------------------------------------------------------


def _chart(
    values: list[dict[str, Any]],
    keys: list[str],
    measures: list[str],
    *,
    bars: bool,
    summary: str,
    title: str | None,
) -> alt.TopLevelMixin:
    key_title = KEY_SEPARATOR.join(keys)
    # Several measures: each row of the facet is headed by its measure, not the y axis.
    y_title = measures[0] if len(measures) == 1 else None
    x = alt.X(
        "window_start:T",
        title="window (UTC)",
        scale=alt.Scale(type="utc"),
        # 24-hour labels (in UTC, as the scale is): Vega's default uses a 12-hour clock.
        axis=alt.Axis(format=TIME_FORMAT, labelAngle=-30),
    )
    tooltip = [
        alt.Tooltip("window_start:N", title="start"),
        alt.Tooltip("window_end:N", title="end"),
        *([alt.Tooltip("key:N", title=key_title)] if keys else []),
        alt.Tooltip("measure:N"),
        alt.Tooltip("value:Q"),
    ]
    encoding: dict[str, Any] = {"x": x, "tooltip": tooltip}
    if keys:
        encoding["color"] = alt.Color("key:N", title=key_title, sort="ascending")
    # Inline values, not a DataFrame: the JSON is exactly _long_rows' (nulls, ISO text),
    # with no dataset name hashed from it.
    data = alt.Data(values=values)  # type: ignore[no-untyped-call]  # Altair's is untyped
    chart = alt.Chart(data, description=summary)
    if bars:
        # Each bar spans its window [start, end) and its key's slice of the stack. The
        # stack is computed explicitly: Vega-Lite stacks a bar by itself only along a
        # band or bin axis, and "bin": "binned" would format the time axis as numbers.
        chart = chart.transform_stack(
            stack="value",
            groupby=["window_start", "measure"],
            as_=["value_start", "value_end"],
            offset="zero",
            sort=[alt.SortField("key", order="ascending")] if keys else alt.Undefined,
        )
        encoding.update(
            x2=alt.X2("window_end"),
            y=alt.Y("value_end:Q", title=y_title),
            y2=alt.Y2("value_start"),
        )
        outlined = len({row["window_start"] for row in values}) <= OUTLINED_BARS
        # Adjacent windows stay apart with an outline, while bars are wide enough for one.
        chart = chart.mark_bar(stroke="white", strokeWidth=1) if outlined else chart.mark_bar()
    else:
        encoding["y"] = alt.Y("value:Q", title=y_title)
        chart = chart.mark_line(point=True)
    chart = chart.encode(**encoding)
    if len(measures) == 1:
        chart = chart.properties(width=WIDTH_PX, height=HEIGHT_PX)
    else:
        chart = chart.properties(width=WIDTH_PX, height=FACET_HEIGHT_PX).facet(
            row=alt.Row("measure:N", title=None, sort=measures)
        )
        chart = chart.resolve_scale(y="independent").properties(description=summary)
    if title is not None:
        chart = chart.properties(title=title)
    drawn: alt.TopLevelMixin = chart
    return drawn


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
