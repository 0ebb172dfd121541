"""Analytics over the whole history: ``store.analytics.frequency``, ``.summary``,
``.correlation`` and ``store.window``, their DataFrames as lists of rows."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from allsource_lab.errors import InvalidArgument
from allsource_lab.server.inputs import optional_bool, optional_text
from allsource_lab.server.render import json_response, rows_of
from allsource_lab.server.routing import Call, Operation

__all__ = ["OPERATIONS"]


def _required(call: Call, name: str) -> str:
    value = optional_text(call.request, name)
    if value is None:
        raise InvalidArgument(f"the query needs the parameter {name!r}")
    return value


async def frequency(call: Call) -> Response:
    event_type = optional_text(call.request, "event_type")
    bucket = optional_text(call.request, "bucket") or "1h"
    frame = await call.run(call.store.analytics.frequency, event_type, bucket)
    return json_response({"rows": rows_of(frame)})


async def summary(call: Call) -> Response:
    entity_id = optional_text(call.request, "entity_id")
    frame = await call.run(call.store.analytics.summary, entity_id)
    return json_response({"rows": rows_of(frame)})


async def correlation(call: Call) -> Response:
    a, b = _required(call, "event_a"), _required(call, "event_b")
    within = _required(call, "within")
    frame = await call.run(call.store.analytics.correlation, a, b, within)
    rows = rows_of(frame)
    return json_response(rows[0] if rows else {})


def _list(text: str | None) -> str | list[str] | None:
    if text is None:
        return None
    parts = [p for p in text.split(",") if p]
    return parts[0] if len(parts) == 1 else parts


async def windows(call: Call) -> Response:
    request = call.request
    agg_text = optional_text(request, "agg")
    agg: Any = None
    if agg_text is not None:
        try:
            agg = orjson.loads(agg_text)
        except orjson.JSONDecodeError:
            raise InvalidArgument(
                f'agg must be a JSON object such as {{"amount": "sum"}}, not {agg_text!r}'
            ) from None
        if not isinstance(agg, dict):
            raise InvalidArgument('agg must be a JSON object such as {"amount": "sum"}')
    arguments = {
        "event_type": _list(optional_text(request, "event_type")),
        "every": optional_text(request, "every") or "1h",
        "kind": optional_text(request, "kind") or "tumbling",
        "hop": optional_text(request, "hop"),
        "gap": optional_text(request, "gap"),
        "by": _list(optional_text(request, "by")),
        "agg": agg,
        "since": optional_text(request, "since"),
        "until": optional_text(request, "until"),
        "as_of": optional_text(request, "as_of"),
        "known_at": optional_text(request, "known_at"),
        "fill": bool(optional_bool(request, "fill")),
    }
    frame = await call.run(call.store.window, **arguments)
    return json_response({"rows": rows_of(frame)})


OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/analytics/frequency",
        "read",
        frequency,
        "analytics_frequency",
        "Events per time bucket",
    ),
    Operation(
        "GET",
        "/api/v1/analytics/summary",
        "read",
        summary,
        "analytics_summary",
        "Per event type: counts, entities, first and last seen",
    ),
    Operation(
        "GET",
        "/api/v1/analytics/correlation",
        "read",
        correlation,
        "analytics_correlation",
        "How often and how fast event_b follows event_a",
    ),
    Operation("GET", "/api/v1/windows", "read", windows, "windows", "Window analytics"),
)
