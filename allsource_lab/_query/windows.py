"""Window analytics over the whole history, computed by DuckDB SQL over the ``events`` view.

Windows are over event time (``timestamp``), in microseconds, half-open ``[start, end)``:

- **tumbling** (``every``): windows start at multiples of ``every`` since the Unix epoch,
  so the same event always falls in the same window, whatever the query's range.
- **hopping** (``every``, ``hop``): windows of length ``every`` starting at multiples of
  ``hop``; an event is in every window that covers it (``every / hop`` of them).
- **session** (``gap``, per key of ``by``, or over all events without ``by``): events in
  time order, a new session whenever the silence since the previous one is longer than
  ``gap``; a session's window is ``[first event, last event + gap)``.

``as_of``/``known_at`` first restrict the events to what was true at / known by that
moment (as ``store.events`` does), then ``since``/``until`` keep the windows that start in
``[since, until)``. Keys (``by``) are ``entity_id``, ``event_type`` or a payload path
``payload.a.b`` (its value as text). Aggregates: ``count``, ``count_distinct``, ``sum``,
``avg``/``mean``, ``min``, ``max``, ``median``, ``stddev`` and percentiles ``p0``..``p100``
(``p95``); a payload path is read as a number (a value that is not one counts as missing).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from allsource_lab._ingest import inputs
from allsource_lab.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from allsource_lab._feed import SqlSource

__all__ = ["AGGREGATES", "MAX_DURATION_US", "parse_duration", "utf8_text", "window", "window_keys"]

_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_UNITS["d"] = 24 * _UNITS["h"]
_UNITS["w"] = 7 * _UNITS["d"]
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d|w)\s*")
DURATION_FORMS = "'30s', '5m', '1h', '1d' (units us, ms, s, m, h, d, w) or a datetime.timedelta"
AGGREGATES = ("count", "count_distinct", "sum", "avg", "mean", "min", "max", "median", "stddev")
_SQL_AGG = {
    "sum": "sum({x})",
    "avg": "avg({x})",
    "mean": "avg({x})",
    "min": "min({x})",
    "max": "max({x})",
    "median": "median({x})",
    "stddev": "stddev_samp({x})",
}
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d+)?)")
_KEY_COLUMNS = ("entity_id", "event_type")
_PATH = re.compile(r"(payload|metadata)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# Window arithmetic runs on int64 microseconds (event times reach ~2.5e17 in year 9999):
# a duration past this would overflow it (DuckDB then fails to bind HUGEINT ranges).
MAX_DURATION_US = 2**62
# Rows fill=True may create (windows x keys): one microsecond windows over a year would
# otherwise ask for terabytes.
MAX_FILLED_ROWS = 10_000_000
# Hopping windows that cover one event (every / hop): each event is copied into each.
MAX_WINDOWS_PER_EVENT = 100_000


def utf8_text(value: str, name: str) -> str:
    """``value``, if it can be UTF-8 (DuckDB refuses a lone surrogate as a parameter).

    Raises:
        InvalidArgument: it holds a lone surrogate.
    """
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"{name} is not valid Unicode text (lone surrogate at position {exc.start})"
        ) from None
    return value


def parse_duration(value: Any, name: str = "every") -> int:
    """Microseconds in a duration: ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"`` or a timedelta.

    Raises:
        InvalidArgument: anything else, or a duration that is not positive.

    >>> parse_duration("5m"), parse_duration(dt.timedelta(seconds=1.5)), parse_duration("1.5h")
    (300000000, 1500000, 5400000000)
    """
    if isinstance(value, dt.timedelta):
        us = value // dt.timedelta(microseconds=1)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        number = float(m.group(1))  # 400 digits are inf: refused below, not an OverflowError
        us = int(number * _UNITS[m.group(2)]) if number < MAX_DURATION_US else MAX_DURATION_US + 1
    else:
        raise InvalidArgument(f"{name} must be a duration like {DURATION_FORMS}, not {value!r}")
    if us <= 0:
        raise InvalidArgument(f"{name} must be a positive duration, not {value!r}")
    if us > MAX_DURATION_US:
        raise InvalidArgument(
            f"{name} must be at most {MAX_DURATION_US // _UNITS['w']:,} weeks (2**62 us), "
            f"not {value!r}"
        )
    return int(us)


@dataclass(frozen=True, slots=True)
class _Agg:
    column: str  # output column name
    fn: str  # the aggregate, with {x} where its input goes
    expr: str = "NULL"  # the input, computed once per event (before hopping copies rows)

    def sql(self, i: int) -> str:
        return self.fn.format(x=f"v{i}")


def key_sql(key: str) -> str:
    """The SQL expression of a ``by`` key or an aggregated field.

    Raises:
        InvalidArgument: not a column name or a ``payload.``/``metadata.`` path.
    """
    if key in _KEY_COLUMNS:
        return key
    m = _PATH.fullmatch(key) if isinstance(key, str) else None
    if m is None:
        raise InvalidArgument(
            f"a key or field must be 'entity_id', 'event_type' or a path like 'payload.sku' "
            f"(letters, digits, _ between dots), not {key!r}"
        )
    return f"json_extract_string({m.group(1)}, '${m.group(2)}')"


def _aggregates(agg: Mapping[str, Any] | None) -> list[_Agg]:
    if agg is None:
        agg = {"*": "count"}
    if not isinstance(agg, Mapping) or not agg:
        raise InvalidArgument(
            "agg must be a dict of field -> aggregate(s), like {'*': 'count'} or "
            "{'payload.amount': ['sum', 'avg', 'p95']}"
        )
    out = []
    for field, names in agg.items():
        if not isinstance(names, str | list | tuple):
            raise InvalidArgument(
                f"agg[{field!r}] must be an aggregate or a list of them, like 'sum' or "
                f"['sum', 'p95'], not {names!r}"
            )
        for name in [names] if isinstance(names, str) else names:
            out.append(_aggregate(field, name))
    return out


def _aggregate(field: str, name: Any) -> _Agg:
    accepted = ", ".join(AGGREGATES) + " and percentiles p0..p100 (e.g. 'p95')"
    if not isinstance(name, str):
        raise InvalidArgument(f"unknown aggregate {name!r}; use one of {accepted}")
    if field == "*":
        if name != "count":
            raise InvalidArgument(f"'*' takes only 'count', not {name!r}")
        return _Agg("count", "count(*)")
    expr = key_sql(field)
    label = f"{field}_{name}"
    if name == "count":
        return _Agg(label, "count({x})", expr)
    if name == "count_distinct":
        return _Agg(label, "count(DISTINCT {x})", expr)
    number = expr if field in _KEY_COLUMNS else f"TRY_CAST({expr} AS DOUBLE)"
    if name in _SQL_AGG:
        if field in _KEY_COLUMNS and name not in ("min", "max"):
            raise InvalidArgument(f"{name} of {field} makes no sense; use count or count_distinct")
        return _Agg(label, _SQL_AGG[name], number)
    m = _PERCENTILE.fullmatch(name)
    if m is not None and 0 <= float(m.group(1)) <= 100 and field not in _KEY_COLUMNS:
        return _Agg(label, f"quantile_cont({{x}}, {float(m.group(1)) / 100!r})", number)
    raise InvalidArgument(f"unknown aggregate {name!r} for {field}; use one of {accepted}")


def window_keys(by: str | Sequence[str] | None) -> list[str]:
    """The ``by`` keys of a window, checked (each a valid key, none twice).

    Raises:
        InvalidArgument: ``by`` is not a key or a list of keys, or names one twice.
    """
    if by is None:
        return []
    if not isinstance(by, str | list | tuple):
        raise InvalidArgument(f"by must be a key or a list of keys, like 'payload.sku', not {by!r}")
    keys = [by] if isinstance(by, str) else list(by)
    for key in keys:
        key_sql(key)
    if len(set(keys)) != len(keys):
        raise InvalidArgument(f"by names a key twice: {keys!r}")
    return keys


def window(
    store: SqlSource,
    event_type: str | Sequence[str] | None = None,
    every: Any = "1h",
    kind: str = "tumbling",
    hop: Any = None,
    gap: Any = None,
    by: str | Sequence[str] | None = None,
    agg: Mapping[str, Any] | None = None,
    since: Any = None,
    until: Any = None,
    as_of: Any = None,
    known_at: Any = None,
    fill: bool = False,
) -> pd.DataFrame:
    """One row per window (and key): ``window_start``, ``window_end``, the keys, the
    aggregates; sorted by window then keys. See the module docstring for the semantics.

    Raises:
        InvalidArgument: a bad kind, duration, key or aggregate (the message lists what is
            accepted).
        InvalidEvent: a time that is naive or not a time.
    """
    if kind not in ("tumbling", "hopping", "session"):
        raise InvalidArgument(f"kind must be 'tumbling', 'hopping' or 'session', not {kind!r}")
    keys = window_keys(by)
    aggs = _aggregates(agg)
    where, params = _filters(event_type, as_of, known_at)
    key_cols = [f"{key_sql(k)} AS k{i}" for i, k in enumerate(keys)]
    key_refs = [f"k{i}" for i in range(len(keys))]
    if kind == "session":
        if gap is None:
            raise InvalidArgument("a session window needs gap=, like gap='30m'")
        sql = _session_sql(parse_duration(gap, "gap"), key_cols, key_refs, aggs, where)
        step = size = 0
    else:
        size = parse_duration(every, "every")
        step = size if kind == "tumbling" else parse_duration(hop, "hop") if hop is not None else 0
        if step == 0:
            raise InvalidArgument("a hopping window needs hop=, like every='1h', hop='15m'")
        if -(-size // step) > MAX_WINDOWS_PER_EVENT:
            raise InvalidArgument(
                f"every / hop puts each event in {-(-size // step):,} windows, more than "
                f"{MAX_WINDOWS_PER_EVENT:,}; use a longer hop"
            )
        sql = _bucket_sql(size, step, key_cols, key_refs, aggs, where)
    lo = None if since is None else inputs.parse_time(since, "since")
    hi = None if until is None else inputs.parse_time(until, "until")
    frame = store.sql(sql, params).df()
    if lo is not None:
        frame = frame[frame["ws"] >= lo]
    if hi is not None:
        frame = frame[frame["ws"] < hi]
    if fill and kind != "session":
        frame = _fill(frame, key_refs, aggs, size, step, lo, hi)
    return _finish(frame, keys, key_refs, aggs, size)


def _filters(
    event_type: str | Sequence[str] | None, as_of: Any, known_at: Any
) -> tuple[str, dict[str, Any]]:
    clauses = []
    params: dict[str, Any] = {}
    if event_type is not None:
        types = [event_type] if isinstance(event_type, str) else event_type
        if (
            not isinstance(types, list | tuple)
            or not types
            or not all(isinstance(t, str) for t in types)
        ):
            raise InvalidArgument(f"event_type must be a str or a list of str, not {event_type!r}")
        for t in types:
            utf8_text(t, "event_type")
        clauses.append("event_type IN (SELECT unnest($types))")
        params["types"] = list(types)
    if as_of is not None:
        clauses.append("epoch_us(timestamp) <= $as_of")
        params["as_of"] = inputs.parse_time(as_of, "as_of")
    if known_at is not None:
        clauses.append("epoch_us(recorded_at) <= $known_at")
        params["known_at"] = inputs.parse_time(known_at, "known_at")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _inputs(key_cols: list[str], aggs: list[_Agg]) -> str:
    """The per-event columns the window queries need: keys and aggregate inputs."""
    values = [f"{a.expr} AS v{i}" for i, a in enumerate(aggs)]
    return ", ".join(["sequence", *key_cols, *values])


def _floor(expr: str, step: int) -> str:
    """SQL for floor(expr / step) on integers (DuckDB's ``//`` truncates toward zero)."""
    return f"({expr} // {step} - CASE WHEN {expr} % {step} < 0 THEN 1 ELSE 0 END)"


def _bucket_sql(
    size: int, step: int, key_cols: list[str], key_refs: list[str], aggs: list[_Agg], where: str
) -> str:
    cols = _inputs(key_cols, aggs)
    select_aggs = ", ".join(f"{a.sql(i)} AS a{i}" for i, a in enumerate(aggs))
    group = ", ".join(["ws", *key_refs])
    if step == size:  # tumbling: one window per event
        bucket = f"{_floor('t', step)} * {step} AS ws"
        source = (
            f"SELECT *, {bucket} FROM (SELECT {cols}, epoch_us(timestamp) AS t FROM events{where})"
        )
    else:
        # Window starts k * step with k * step <= t < k * step + size.
        first = _floor(f"(t - {size})", step) + " + 1"
        last = _floor("t", step)
        source = (
            f"SELECT *, unnest(range({first}, {last} + 1)) * {step} AS ws FROM "
            f"(SELECT {cols}, epoch_us(timestamp) AS t FROM events{where})"
        )
    return f"SELECT {group}, {select_aggs} FROM ({source}) GROUP BY {group}"


def _session_sql(
    gap: int, key_cols: list[str], key_refs: list[str], aggs: list[_Agg], where: str
) -> str:
    cols = _inputs(key_cols, aggs)
    part = f"PARTITION BY {', '.join(key_refs)} " if key_refs else ""
    order = f"({part}ORDER BY t, sequence)"
    flagged = (
        f"SELECT *, CASE WHEN t - lag(t) OVER {order} > {gap} THEN 1 ELSE 0 END AS brk "
        f"FROM (SELECT {cols}, epoch_us(timestamp) AS t FROM events{where})"
    )
    numbered = f"SELECT *, sum(brk) OVER {order} AS sid FROM ({flagged})"
    select_aggs = ", ".join(f"{a.sql(i)} AS a{i}" for i, a in enumerate(aggs))
    group = ", ".join(["sid", *key_refs])
    return (
        f"SELECT min(t) AS ws, max(t) + {gap} AS we, {', '.join([*key_refs, ''])}{select_aggs} "
        f"FROM ({numbered}) GROUP BY {group}"
    )


def _fill(
    frame: pd.DataFrame,
    key_refs: list[str],
    aggs: list[_Agg],
    size: int,
    step: int,
    lo: int | None,
    hi: int | None,
) -> pd.DataFrame:
    """Add the windows in range that no event fell in, with zero counts."""
    import numpy as np
    import pandas as pd

    if frame.empty and (lo is None or hi is None):
        return frame
    first = -((-lo) // step) * step if lo is not None else int(frame["ws"].min())
    last = int(frame["ws"].max()) if hi is None else ((hi - 1) // step) * step
    if last < first:
        return frame
    keys = frame[key_refs].drop_duplicates() if key_refs else None
    rows = ((last - first) // step + 1) * (1 if keys is None else max(len(keys), 1))
    if rows > MAX_FILLED_ROWS:
        raise InvalidArgument(
            f"fill=True would make {rows:,} rows (windows x keys), more than "
            f"{MAX_FILLED_ROWS:,}; narrow since/until or use a longer every"
        )
    starts = pd.DataFrame({"ws": np.arange(first, last + 1, step, dtype=np.int64)})
    grid = starts if keys is None else starts.merge(keys, how="cross")
    full = grid.merge(frame, on=["ws", *key_refs], how="left")
    for i, a in enumerate(aggs):
        if a.fn.startswith("count("):
            full[f"a{i}"] = full[f"a{i}"].fillna(0).astype("int64")
    return full


def _finish(
    frame: pd.DataFrame, keys: list[str], key_refs: list[str], aggs: list[_Agg], size: int
) -> pd.DataFrame:
    import pandas as pd

    if "we" not in frame:  # tumbling and hopping: every window is `size` long
        frame = frame.assign(we=frame["ws"] + size)
    frame = frame.sort_values(["ws", *key_refs], kind="stable").reset_index(drop=True)
    out = pd.DataFrame(
        {"window_start": pd.to_datetime(frame["ws"].astype("int64"), unit="us", utc=True)}
    )
    out["window_end"] = pd.to_datetime(frame["we"].astype("int64"), unit="us", utc=True)
    for key, ref in zip(keys, key_refs, strict=True):
        column = frame[ref]
        values = [None if missing else v for v, missing in zip(column, column.isna(), strict=True)]
        out[key] = pd.Series(values, dtype=object)  # a missing key is None, not NaN
    for i, a in enumerate(aggs):
        out[a.column] = frame[f"a{i}"].to_numpy()
    return out
