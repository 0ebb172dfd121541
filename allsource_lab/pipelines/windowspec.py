"""The JSON form of ``reduce`` and ``window`` operators: aggregates, keys, durations.

A reduce is ``{"type": "reduce", "aggregates": {field: [aggregate, ...]}, "group_by":
[paths]}`` (the original ``field`` + ``function`` form is read too); a window is
``{"type": "window", "config": {...}, "aggregation": <reduce>}``. Durations are seconds
(``size_seconds``, ``slide_seconds``, ``session_timeout_seconds``,
``allowed_lateness_seconds``: an int when whole) or duration text (``size``, ``slide``,
``gap``, ``allowed_lateness``: ``"30s"``, ``"5m"``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from allsource_lab._query.windows import (
    AGGREGATES,
    DURATION_FORMS,
    MAX_DURATION_US,
    MAX_WINDOWS_PER_EVENT,
    parse_duration,
)
from allsource_lab.pipelines.checks import fail, only_keys, path, paths

__all__ = ["WINDOW_TYPES", "aggregate_columns", "normalize_reduce", "normalize_window", "seconds"]

WINDOW_TYPES = ("tumbling", "hopping", "session")
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d+)?)")


def _us(where: str, op: Mapping[str, Any], seconds_key: str, duration_key: str) -> int | None:
    """Microseconds from ``<x>_seconds`` (a number) or ``<x>`` (a duration), if given."""
    if seconds_key in op and duration_key in op:
        raise fail(where, f"give {seconds_key!r} or {duration_key!r}, not both")
    if op.get(seconds_key) is not None:
        value = op[seconds_key]
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise fail(
                where, f"{seconds_key!r} must be a positive number of seconds, not {value!r}"
            )
        return max(1, _seconds_us(where, seconds_key, value))
    if op.get(duration_key) is not None:
        try:
            return parse_duration(op[duration_key], repr(duration_key))
        except ValueError as exc:
            raise fail(where, str(exc)) from None
    return None


def _seconds_us(where: str, key: str, value: int | float) -> int:
    """Seconds as microseconds, refusing what window arithmetic (int64) cannot hold."""
    if not value * 1_000_000 <= MAX_DURATION_US:  # also NaN
        raise fail(
            where,
            f"{key!r} must be at most {MAX_DURATION_US // 1_000_000:,} seconds, not {value!r}",
        )
    return round(value * 1_000_000)


_ZERO = re.compile(r"\s*(?:0+(?:\.0*)?|\.0+)\s*(?:us|ms|s|m|h|d|w)?\s*")


def _lateness(where: str, config: Mapping[str, Any]) -> int:
    """Allowed lateness in microseconds (0 unless given)."""
    if "allowed_lateness_seconds" in config and "allowed_lateness" in config:
        raise fail(where, "give 'allowed_lateness_seconds' or 'allowed_lateness', not both")
    value = config.get("allowed_lateness_seconds")
    if value is not None:
        if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
            raise fail(
                where, f"'allowed_lateness_seconds' must be 0 or more seconds, not {value!r}"
            )
        return _seconds_us(where, "allowed_lateness_seconds", value)
    value = config.get("allowed_lateness")
    if value is None or (isinstance(value, int | float) and value == 0):
        return 0
    if isinstance(value, str) and _ZERO.fullmatch(value):
        return 0
    if isinstance(value, dt.timedelta) and value == dt.timedelta(0):
        return 0
    return (
        _us(where, {"allowed_lateness": value}, "allowed_lateness_seconds", "allowed_lateness") or 0
    )


def seconds(us: int) -> int | float:
    """Microseconds as seconds for the JSON form: an int when whole."""
    return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000


def aggregate_columns(aggregates: Mapping[str, list[str]]) -> list[tuple[str, str, str]]:
    """``(field, aggregate, output column)`` for each aggregate, in order; the columns are
    named as ``store.window`` names them (``count``, ``payload.amount_sum``)."""
    return [
        (field, name, "count" if field == "*" else f"{field}_{name}")
        for field, names in aggregates.items()
        for name in names
    ]


def _aggregate_name(where: str, field: str, name: Any) -> str:
    accepted = ", ".join(AGGREGATES) + " and percentiles p0..p100 (e.g. 'p95')"
    if not isinstance(name, str):
        raise fail(where, f"unknown aggregate {name!r}; use one of {accepted}")
    if field == "*":
        if name != "count":
            raise fail(where, f"'*' takes only 'count', not {name!r}")
        return name
    if name in ("count", "count_distinct", "min", "max"):
        return name
    numeric = name in AGGREGATES
    m = _PERCENTILE.fullmatch(name)
    if m is not None and 0 <= float(m.group(1)) <= 100:
        numeric = True
    if not numeric:
        raise fail(where, f"unknown aggregate {name!r} for {field!r}; use one of {accepted}")
    if field in ("entity_id", "event_type"):
        raise fail(where, f"{name} of {field} makes no sense; use count or count_distinct")
    return name


def _aggregates(where: str, value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping) or not value:
        raise fail(
            where,
            "'aggregates' must be an object of field -> aggregate(s), like "
            '{"*": "count", "payload.amount": ["sum", "avg"]}',
        )
    out: dict[str, list[str]] = {}
    for raw_field, names in value.items():
        field = "*" if raw_field == "*" else path(where, raw_field, "aggregates")
        items = [names] if isinstance(names, str) else names
        if not isinstance(items, list | tuple) or not items:
            raise fail(where, f"aggregates of {raw_field!r} must be a name or a list of names")
        out.setdefault(field, []).extend(_aggregate_name(where, field, n) for n in items)
    columns = [c for _, _, c in aggregate_columns(out)]
    for c in columns:
        if columns.count(c) > 1:
            raise fail(where, f"aggregate column {c!r} is asked for twice")
    return out


def normalize_reduce(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    only_keys(where, op, ("type", "aggregates", "group_by", "field", "function"))
    if "aggregates" in op:
        if "field" in op or "function" in op:
            raise fail(where, "give 'aggregates', or 'field' and 'function', not both")
        aggregates = _aggregates(where, op["aggregates"])
    elif "function" in op:
        field = op.get("field")
        aggregates = _aggregates(where, {"*" if field in (None, "*") else field: op["function"]})
    elif "field" in op:
        raise fail(where, "'field' needs a 'function' (count, sum, avg, min, max, ...)")
    else:
        aggregates = {"*": ["count"]}
    group_by = paths(where, op.get("group_by"), "group_by")
    return {"type": "reduce", "aggregates": aggregates, "group_by": group_by}


def normalize_window(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    only_keys(where, op, ("type", "config", "aggregation"))
    config = op.get("config")
    if not isinstance(config, Mapping):
        raise fail(
            where,
            "'config' is required: an object like {\"window_type\": "
            '"tumbling", "size_seconds": 60}',
        )
    here = f"{where}: config"
    only_keys(
        here,
        config,
        (
            "window_type",
            "size_seconds",
            "size",
            "slide_seconds",
            "slide",
            "session_timeout_seconds",
            "gap",
            "allowed_lateness_seconds",
            "allowed_lateness",
            "by",
        ),
    )
    kind = config.get("window_type")
    kind = "hopping" if kind == "sliding" else kind
    if kind not in WINDOW_TYPES:
        raise fail(
            here,
            f"'window_type' must be tumbling, hopping (or sliding) or session, "
            f"not {config.get('window_type')!r}",
        )
    size = _us(here, config, "size_seconds", "size")
    slide = _us(here, config, "slide_seconds", "slide")
    gap = _us(here, config, "session_timeout_seconds", "gap")
    lateness = _lateness(here, config)
    out: dict[str, Any] = {"window_type": kind}
    if kind == "session":
        if gap is None:
            raise fail(
                here,
                "a session window needs 'session_timeout_seconds' (or 'gap', "
                f"a duration like {DURATION_FORMS})",
            )
        if size is not None or slide is not None:
            raise fail(
                here, "a session window has no size or slide; give only 'session_timeout_seconds'"
            )
        out["session_timeout_seconds"] = seconds(gap)
    else:
        if size is None:
            raise fail(
                here,
                f"a {kind} window needs 'size_seconds' (or 'size', a duration "
                f"like {DURATION_FORMS})",
            )
        if gap is not None:
            raise fail(here, f"a {kind} window has no session timeout")
        out["size_seconds"] = seconds(size)
        if kind == "hopping":
            if slide is None:
                raise fail(
                    here,
                    "a hopping window needs 'slide_seconds' (or 'slide'), how "
                    "often a window starts",
                )
            if -(-size // slide) > MAX_WINDOWS_PER_EVENT:
                raise fail(
                    here,
                    f"size / slide puts each event in {-(-size // slide):,} windows, more than "
                    f"{MAX_WINDOWS_PER_EVENT:,}; use a longer slide",
                )
            out["slide_seconds"] = seconds(slide)
        elif slide is not None:
            raise fail(here, "a tumbling window has no slide; use window_type 'hopping'")
    out["allowed_lateness_seconds"] = seconds(lateness) if lateness else 0
    out["by"] = paths(here, config.get("by"), "by")
    aggregation = op.get("aggregation")
    if aggregation is not None:
        if not isinstance(aggregation, Mapping) or aggregation.get("type", "reduce") != "reduce":
            raise fail(
                where,
                "'aggregation' must be a reduce operator, like {\"type\": "
                '"reduce", "aggregates": {"*": "count"}}',
            )
        aggregation = normalize_reduce(f"{where}: aggregation", {"type": "reduce", **aggregation})
    return {"type": "window", "config": out, "aggregation": aggregation}
