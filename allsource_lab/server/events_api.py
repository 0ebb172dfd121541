"""The event operations: ingest one event or a batch, query, get one, entity state, stats.

Each hands its arguments to the store's method of the same name and meaning
(``append``, ``append_batch``, ``events``, ``get``, ``state``, ``stats``), so the API
refuses what the library refuses, with the library's error as the problem's title.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.responses import Response

from allsource_lab._kernels import jsontext
from allsource_lab.errors import InvalidArgument, InvalidEvent
from allsource_lab.server.inputs import (
    field,
    optional_bool,
    optional_int,
    optional_text,
    parse_json,
    read_body,
)
from allsource_lab.server.render import event_object, json_response, rows_of
from allsource_lab.server.routing import Call, Operation

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = ["OPERATIONS", "QUERY_LIMIT_DEFAULT", "QUERY_LIMIT_MAX", "event_arguments"]

# Events per page of GET /api/v1/events/query unless ``limit`` says otherwise, and the
# most one page may hold (page on with ``cursor``).
QUERY_LIMIT_DEFAULT = 1000
QUERY_LIMIT_MAX = 100_000

_EVENT_FIELDS = frozenset(
    {"event_type", "entity_id", "payload", "metadata", "timestamp", "event_id", "expected_version"}
)


def event_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``store.append`` from one event's JSON object, refusing unknown
    or missing fields (InvalidEvent naming the field)."""
    unknown = sorted(set(body) - _EVENT_FIELDS)
    if unknown:
        raise InvalidEvent(
            f"unknown field(s) {', '.join(map(repr, unknown))}; an event has "
            + ", ".join(sorted(_EVENT_FIELDS)),
            field=unknown[0],
        )
    for name in ("event_type", "entity_id", "payload"):
        if name not in body:
            raise InvalidEvent(f"the event needs {name!r}", field=name)
    expected = body.get("expected_version")
    if expected is not None and (type(expected) is not int or not 0 <= expected < 2**63):
        raise InvalidEvent(
            f"expected_version must be an integer >= 0, not {expected!r}", field="expected_version"
        )
    return {
        "event_type": body["event_type"],
        "entity_id": body["entity_id"],
        "payload": body["payload"],
        "metadata": body.get("metadata"),
        "timestamp": body.get("timestamp"),
        "event_id": body.get("event_id"),
        "expected_version": expected,
    }


async def ingest_event(call: Call) -> Response:
    arguments = event_arguments(await call.body())
    event = await call.run(call.store.append, **arguments)
    call.server.metrics.ingested(call.caller.tenant.name, 1)
    return json_response(event_object(event), 201)


ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _arrow_table(body: bytes) -> Any:
    """An Arrow IPC stream body as a table, fully validated (its buffers come from the
    network: a malformed one must be refused, never read out of bounds)."""
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(body).read_all()
        table.validate(full=True)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise InvalidArgument(
            f"the body is not a valid Arrow IPC stream ({exc}); send the table written by "
            "pyarrow.ipc.new_stream"
        ) from None
    return table


async def _ingest_arrow(call: Call) -> Response:
    """A batch as an Arrow IPC stream: the columns of ``append_batch`` (event_type,
    entity_id, payload as JSON text; optional timestamp, metadata, event_id), with the
    options as query parameters. Skips JSON parsing of every event: the fastest way in."""
    body = await read_body(call.request, call.server.config.max_body_bytes)
    on_invalid = optional_text(call.request, "on_invalid") or "raise"
    idempotency = optional_text(call.request, "idempotency")
    # Read and appended in one trip to the thread pool (each trip is a thread handoff).
    result = await call.run(_append_arrow, call.store, body, on_invalid, idempotency)
    call.server.metrics.ingested(call.caller.tenant.name, result.count)
    return _batch_answer(result)


def _append_arrow(store: Any, body: bytes, on_invalid: str, idempotency: str | None) -> Any:
    """``append_batch`` of an Arrow IPC stream body (see _arrow_table)."""
    table = _arrow_table(body)
    return store.append_batch(table, on_invalid=on_invalid, idempotency=idempotency)


def _batch_answer(result: Any) -> Response:
    answer: dict[str, Any] = {
        "first_sequence": result.first_sequence,
        "last_sequence": result.last_sequence,
        "count": result.count,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }
    if result.rejected_rows is not None:
        answer["rejected_rows"] = rows_of(result.rejected_rows)
    return json_response(answer, 201)


# The fields of a batch's event that _columns_of turns into columns itself; events with
# others (timestamp, event_id, or unknown ones) go to append_batch as dicts.
_COLUMN_FIELDS = frozenset({"event_type", "entity_id", "payload", "metadata"})
_EVENT_TYPE = operator.itemgetter("event_type")
_ENTITY_ID = operator.itemgetter("entity_id")
_PAYLOAD = operator.itemgetter("payload")
_METADATA = operator.methodcaller("get", "metadata")


def _text_column(values: list[dict[str, Any]]) -> Any:
    """JSON objects as an Arrow column of their JSON text: one orjson call for all of them,
    split by the store's kernel (as ``append_batch`` encodes a column of dicts)."""
    import pyarrow as pa

    data, offsets = jsontext.split_dumped_objects(np.frombuffer(orjson.dumps(values), np.uint8))
    return pa.Array.from_buffers(
        pa.large_string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _columns_of(events: list[dict[str, Any]]) -> Any:
    """The events of a JSON batch as an Arrow table of ``append_batch``'s columns, or
    None when any of them is not the plain kind (text type and entity, object payload,
    object or null metadata, no other field): those go to the store as dicts, whose
    checks then name the row and field at fault.

    The store takes a list of dicts a row and a field at a time in Python (~25 ms per
    10,000 events, measured in process), a table a column at a time (~3 ms); this turns
    the one into the other in ~2 ms. Payloads parsed by orjson hold no NaN or Infinity
    (it refuses them), so encoding them again gives the JSON text the store would.
    """
    import pyarrow as pa

    # map() with C callables: a Python loop over 10,000 rows costs ~0.5 ms a pass.
    try:
        types = list(map(_EVENT_TYPE, events))
        entities = list(map(_ENTITY_ID, events))
        payloads = list(map(_PAYLOAD, events))
    except KeyError:
        return None
    columns: dict[str, Any] = {}
    if set(map(len, events)) != {3}:
        if not all(map(_COLUMN_FIELDS.issuperset, events)):
            return None
        metadata = list(map(_METADATA, events))
        kinds = set(map(type, metadata))
        if kinds != {type(None)}:
            if not kinds <= {dict, type(None)}:
                return None
            columns["metadata"] = _text_column([value or {} for value in metadata])
    if (
        set(map(type, types)) != {str}
        or set(map(type, entities)) != {str}
        or set(map(type, payloads)) != {dict}
    ):
        return None
    try:
        columns["event_type"] = pa.array(types, pa.string())
        columns["entity_id"] = pa.array(entities, pa.string())
    except (pa.ArrowException, UnicodeError):
        return None
    columns["payload"] = _text_column(payloads)
    return pa.table(columns)


def _append_json_batch(store: EventStore, body: bytes) -> Any:
    """Parse a JSON batch body and append it (on the thread pool: ~10 ms of CPU for
    10,000 events that the event loop does not wait for)."""
    value = parse_json(body, kind=(dict, list))
    if isinstance(value, list):
        value = {"events": value}
    events = field(value, "events", list)
    expected = field(value, "expected_versions", dict, None)
    on_invalid = field(value, "on_invalid", str, "raise")
    idempotency = field(value, "idempotency", str, None)
    for row, item in enumerate(events):
        if not isinstance(item, dict):
            raise InvalidEvent("each event must be a JSON object", row=row)
    if not events:
        raise InvalidEvent("the batch holds no event; send at least one", field="events")
    table = _columns_of(events)
    return store.append_batch(
        events if table is None else table,
        expected_versions=expected,
        on_invalid=on_invalid,
        idempotency=idempotency,
    )


async def ingest_batch(call: Call) -> Response:
    content_type = call.request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == ARROW_STREAM:
        return await _ingest_arrow(call)
    body = await read_body(call.request, call.server.config.max_body_bytes)
    result = await call.run(_append_json_batch, call.store, body)
    call.server.metrics.ingested(call.caller.tenant.name, result.count)
    return _batch_answer(result)


async def query_events(call: Call) -> Response:
    request = call.request
    limit = optional_int(request, "limit", minimum=1, maximum=QUERY_LIMIT_MAX)
    arguments: dict[str, Any] = {
        "entity_id": optional_text(request, "entity_id"),
        "event_type": optional_text(request, "event_type"),
        "since": optional_text(request, "since"),
        "until": optional_text(request, "until"),
        "as_of": optional_text(request, "as_of"),
        "known_at": optional_text(request, "known_at"),
        "after": optional_int(request, "cursor"),
        "limit": QUERY_LIMIT_DEFAULT if limit is None else limit,
        "reverse": bool(optional_bool(request, "reverse")),
    }
    store = call.store

    def page() -> dict[str, Any]:
        frame = store.events(**arguments)
        events = [event_object(e) for e in frame]
        return {"events": events, "count": len(events), "next_cursor": frame.next_cursor}

    return json_response(await call.run(page))


async def get_event(call: Call) -> Response:
    event = await call.run(call.store.get, call.path_param("event_id"))
    return json_response(event_object(event))


async def entity_state(call: Call) -> Response:
    entity_id = call.path_param("entity_id")
    as_of = optional_text(call.request, "as_of")
    known_at = optional_text(call.request, "known_at")
    state = await call.run(call.store.state, entity_id, as_of=as_of, known_at=known_at)
    return json_response(
        {"entity_id": entity_id, "as_of": as_of, "known_at": known_at, "state": state}
    )


async def stats(call: Call) -> Response:
    facts = await call.run(call.store.stats)
    facts.pop("path", None)  # where the server keeps its files is not the caller's business
    return json_response({"tenant": call.caller.tenant.name, **facts})


OPERATIONS = (
    Operation("POST", "/api/v1/events", "write", ingest_event, "ingest_event", "Append one event"),
    Operation(
        "POST",
        "/api/v1/events/batch",
        "write",
        ingest_batch,
        "ingest_events_batch",
        "Append a batch of events atomically",
    ),
    Operation("GET", "/api/v1/events/query", "read", query_events, "query_events", "Query events"),
    Operation(
        "GET", "/api/v1/events/{event_id}", "read", get_event, "get_event", "One event by its id"
    ),
    Operation(
        "GET",
        "/api/v1/entities/{entity_id}/state",
        "read",
        entity_state,
        "get_entity_state",
        "An entity's state (its payloads merged), now or at a moment",
    ),
    Operation("GET", "/api/v1/stats", "read", stats, "get_stats", "Counts and facts"),
)
