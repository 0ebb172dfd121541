"""Store results as JSON: events, pages of events, and DataFrames as lists of rows.

An event is an object with the column names of the Python API (``sequence``,
``event_id``, ``event_type``, ``entity_id``, ``version``, ``timestamp``, ``recorded_at``,
``payload``, ``metadata``, ``partition``, ``schema_version``); times are ISO-8601 in UTC
with a ``Z``. Payloads and metadata are written from their stored JSON text as they are
(``orjson.Fragment``), never decoded and encoded again.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import orjson
import pandas as pd
from starlette.responses import Response

from allsource_lab.events import Event, us_to_datetime

__all__ = ["event_object", "iso", "json_response", "rows_of"]


def iso(us: int) -> str:
    """Microseconds since the epoch as ISO-8601 UTC text.

    >>> iso(1_000_000)
    '1970-01-01T00:00:01Z'
    """
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")


def event_object(event: Event) -> dict[str, Any]:
    """One event as the API shows it."""
    payload = event.payload_json
    metadata = event.metadata_json
    return {
        "sequence": event.sequence,
        "event_id": str(uuid.UUID(bytes=event.event_id_bytes)),
        "event_type": event.event_type,
        "entity_id": event.entity_id,
        "version": event.version,
        "timestamp": iso(event.timestamp_us),
        "recorded_at": iso(event.recorded_at_us),
        "payload": orjson.Fragment(payload),
        "metadata": orjson.Fragment(metadata),
        "partition": event.partition,
        "schema_version": event.schema_version,
    }


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _clean(value: Any) -> Any:
    """NaN and infinities (pandas' missing values) become null: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT:
        return None
    return value


def rows_of(frame: Any) -> list[dict[str, Any]]:
    """A pandas DataFrame as a list of row objects (timestamps as ISO text, NaN as null)."""
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    return [{str(k): _clean(v) for k, v in row.items()} for row in records]


def json_response(value: Any, status: int = 200) -> Response:
    """``value`` as an ``application/json`` response."""
    return Response(
        orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY),
        status,
        media_type="application/json",
    )
