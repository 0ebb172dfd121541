"""The API's OpenAPI 3.1 document, served at ``/openapi.json`` and committed as
``docs/openapi.json`` (a test checks that the two are the same).

Paths, methods and operation ids come from the operations themselves
(:data:`allsource_lab.server.app.OPERATIONS`); the parameters, bodies and answers of each
are written here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allsource_lab.server.routing import Operation

__all__ = ["openapi_document"]

VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _required_query(name: str, description: str) -> dict[str, Any]:
    return {**_query(name, description), "required": True}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


_TIME = "ISO-8601 time with a zone, e.g. 2026-01-31T12:00:00Z"
_TIMES = [
    _query("as_of", "only events whose event time is <= this; " + _TIME),
    _query("known_at", "only events the store had recorded by this; " + _TIME),
]
_SEQUENCE = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}

_EVENT_IN = {
    "type": "object",
    "required": ["event_type", "entity_id", "payload"],
    "additionalProperties": False,
    "properties": {
        "event_type": {"type": "string", "description": "e.g. order.placed"},
        "entity_id": {"type": "string"},
        "payload": {"type": "object", "description": "the event body"},
        "metadata": {"type": ["object", "null"]},
        "timestamp": {"type": ["string", "null"], "description": "event time; " + _TIME},
        "event_id": {"type": ["string", "null"], "description": "a UUID: makes a retry safe"},
        "expected_version": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "0: the entity must not exist; N: it must be at version N",
        },
    },
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; title is the library's error name",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
    "EventIn": _EVENT_IN,
    "Event": {
        "type": "object",
        "required": [
            "sequence",
            "event_id",
            "event_type",
            "entity_id",
            "version",
            "timestamp",
            "recorded_at",
            "payload",
            "metadata",
            "partition",
        ],
        "properties": {
            "sequence": {"type": "integer"},
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"type": "string"},
            "entity_id": {"type": "string"},
            "version": {"type": "integer"},
            "timestamp": {"type": "string"},
            "recorded_at": {"type": "string"},
            "payload": {"type": "object"},
            "metadata": {"type": "object"},
            "partition": {"type": "integer"},
            "schema_version": {"type": ["integer", "null"]},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["events", "count"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "count": {"type": "integer"},
            "next_cursor": {
                "type": ["integer", "null"],
                "description": "pass as cursor for the next page; null on the last",
            },
        },
    },
    "BatchIn": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": _ref("EventIn"), "minItems": 1},
            "expected_versions": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
            "on_invalid": {"enum": ["raise", "skip", "return"]},
            "idempotency": {"enum": ["content", None]},
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["first_sequence", "last_sequence", "count"],
        "properties": {
            "first_sequence": {"type": "integer"},
            "last_sequence": {"type": "integer"},
            "count": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "rejected": {"type": "integer"},
            "rejected_rows": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Rows": {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"type": "object"}}},
    },
    "SchemaVersion": {
        "type": "object",
        "properties": {
            "subject": {"type": "string"},
            "version": {"type": "integer"},
            "id": {"type": "integer"},
            "schema": {"type": "object"},
            "deleted": {"type": "boolean"},
        },
    },
    "Replay": {
        "type": "object",
        "properties": {
            "replay_id": {"type": "integer"},
            "projection": {"type": "string"},
            "status": {"enum": ["pending", "running", "done", "cancelled", "failed"]},
            "processed": {"type": "integer"},
            "total": {"type": "integer"},
            "percent": {"type": "number"},
            "events_per_sec": {"type": "number"},
            "eta_s": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
        },
    },
    "Pipeline": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "spec": {"type": "object"}},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, **_json(schema)}


_ARROW_BATCH = {
    "required": True,
    "content": {
        "application/json": {"schema": _ref("BatchIn")},
        "application/vnd.apache.arrow.stream": {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "an Arrow IPC stream with the columns of append_batch "
                "(event_type, entity_id, payload as JSON text; optional timestamp, "
                "metadata, event_id); on_invalid and idempotency as query parameters",
            }
        },
    },
}


_OBJECT = {"type": "object"}

# operation id -> (parameters, request body schema or None, success status, answer schema)
_SPECS: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None, int, dict[str, Any]]] = {
    "ingest_event": ([], _ref("EventIn"), 201, _ref("Event")),
    "ingest_events_batch": (
        [
            _query("on_invalid", "Arrow bodies: raise (default), skip or return"),
            _query("idempotency", "Arrow bodies: content, to store a re-sent batch once"),
        ],
        _ARROW_BATCH,
        201,
        _ref("BatchResult"),
    ),
    "query_events": (
        [
            _query("entity_id", "only this entity's events"),
            _query("event_type", "only events of this type"),
            _query("since", "event time >= this; " + _TIME),
            _query("until", "event time < this; " + _TIME),
            *_TIMES,
            _query(
                "limit",
                "events per page (default 1000)",
                {"type": "integer", "minimum": 1, "maximum": 100_000},
            ),
            _query("cursor", "the previous page's next_cursor (a sequence)", _SEQUENCE),
            _query("reverse", "newest first", {"type": "boolean"}),
        ],
        None,
        200,
        _ref("EventPage"),
    ),
    "get_event": ([_path("event_id", "the event's UUID")], None, 200, _ref("Event")),
    "get_entity_state": (
        [_path("entity_id", "the entity"), *_TIMES],
        None,
        200,
        {
            "type": "object",
            "properties": {"entity_id": {"type": "string"}, "state": {"type": "object"}},
        },
    ),
    "get_stats": ([], None, 200, _OBJECT),
    "create_snapshot": (
        [],
        {
            "type": "object",
            "required": ["entity_id"],
            "properties": {"entity_id": {"type": "string"}},
        },
        201,
        {
            "type": "object",
            "properties": {"entity_id": {"type": "string"}, "version": {"type": "integer"}},
        },
    ),
    "checkpoint": ([], None, 200, _OBJECT),
    "trigger_compaction": ([], None, 200, _OBJECT),
    "register_schema": (
        [],
        {
            "type": "object",
            "required": ["subject", "schema"],
            "properties": {
                "subject": {"type": "string", "description": "the event type it validates"},
                "schema": {"type": "object", "description": "JSON Schema, draft 2020-12 or 7"},
                "compatibility": {"type": "string"},
            },
        },
        201,
        _ref("SchemaVersion"),
    ),
    "list_subjects": (
        [],
        None,
        200,
        {
            "type": "object",
            "properties": {"subjects": {"type": "array", "items": {"type": "string"}}},
        },
    ),
    "validate_event": (
        [],
        {
            "type": "object",
            "required": ["subject", "payload"],
            "properties": {"subject": {"type": "string"}, "payload": {}},
        },
        200,
        {
            "type": "object",
            "properties": {
                "subject": {"type": "string"},
                "valid": {"type": "boolean"},
                "problems": {"type": "array", "items": _OBJECT},
            },
        },
    ),
    "get_schema": (
        [
            _path("subject", "the subject"),
            _query("version", "a version (default: the newest)", {"type": "integer", "minimum": 1}),
        ],
        None,
        200,
        _ref("SchemaVersion"),
    ),
    "list_schema_versions": ([_path("subject", "the subject")], None, 200, _OBJECT),
    "set_compatibility": (
        [_path("subject", "the subject")],
        {
            "type": "object",
            "required": ["compatibility"],
            "properties": {
                "compatibility": {
                    "enum": [
                        "NONE",
                        "BACKWARD",
                        "BACKWARD_TRANSITIVE",
                        "FORWARD",
                        "FORWARD_TRANSITIVE",
                        "FULL",
                        "FULL_TRANSITIVE",
                    ]
                }
            },
        },
        200,
        _OBJECT,
    ),
    "start_replay": (
        [],
        {
            "type": "object",
            "required": ["projection"],
            "properties": {
                "projection": {"type": "string", "description": "a live projection or pipeline"},
                "since": {"type": ["integer", "string"]},
                "until": {"type": ["integer", "string"]},
                "event_types": {"type": ["string", "array"]},
                "batch_size": {"type": "integer", "minimum": 1},
            },
        },
        202,
        _ref("Replay"),
    ),
    "list_replays": (
        [],
        None,
        200,
        {"type": "object", "properties": {"replays": {"type": "array", "items": _ref("Replay")}}},
    ),
    "replay_progress": ([_path("replay_id", "the replay's id")], None, 200, _ref("Replay")),
    "cancel_replay": ([_path("replay_id", "the replay's id")], None, 200, _ref("Replay")),
    "delete_replay": ([_path("replay_id", "the replay's id")], None, 204, {}),
    "register_pipeline": (
        [_query("start", "now (default), beginning, or a sequence")],
        {"type": "object", "description": "the pipeline's JSON form (Pipeline.to_json)"},
        201,
        _ref("Pipeline"),
    ),
    "list_pipelines": ([], None, 200, _OBJECT),
    "all_pipeline_stats": ([], None, 200, _OBJECT),
    "get_pipeline": ([_path("name", "the pipeline")], None, 200, _ref("Pipeline")),
    "remove_pipeline": ([_path("name", "the pipeline")], None, 204, {}),
    "pipeline_stats": ([_path("name", "the pipeline")], None, 200, _OBJECT),
    "reset_pipeline": ([_path("name", "the pipeline")], None, 200, _ref("Pipeline")),
    "pipeline_results": (
        [_path("name", "the pipeline"), _query("output", "a branch's output")],
        None,
        200,
        _OBJECT,
    ),
    "analytics_frequency": (
        [
            _query("event_type", "one type (default: each type)"),
            _query("bucket", "bucket length, e.g. 1h (default) or 15m"),
        ],
        None,
        200,
        _ref("Rows"),
    ),
    "analytics_summary": (
        [_query("entity_id", "one entity's events only")],
        None,
        200,
        _ref("Rows"),
    ),
    "analytics_correlation": (
        [
            _required_query("event_a", "the first event type"),
            _required_query("event_b", "the type that may follow it"),
            _required_query("within", "how soon, e.g. 10m"),
        ],
        None,
        200,
        _OBJECT,
    ),
    "windows": (
        [
            _query("event_type", "a type, or several separated by commas"),
            _query("every", "window length, e.g. 1h (default)"),
            _query("kind", "tumbling (default), hopping or session"),
            _query("hop", "hopping: one window every this long"),
            _query("gap", "session: a silence longer than this starts a new window"),
            _query("by", "payload fields or columns to group by, separated by commas"),
            _query("agg", 'JSON object of field -> aggregate, e.g. {"amount": "sum"}'),
            _query("since", "event time >= this; " + _TIME),
            _query("until", "event time < this; " + _TIME),
            *_TIMES,
            _query("fill", "add empty windows with zero counts", {"type": "boolean"}),
        ],
        None,
        200,
        _ref("Rows"),
    ),
}

_PROBLEMS = {
    "400": "bad input (InvalidEvent, InvalidArgument, SchemaError)",
    "401": "no API key, or an unknown or revoked one",
    "403": "the key's role is too low",
    "404": "no such entity, event, subject, replay or pipeline (NotFound)",
    "409": "ConcurrencyError, IncompatibleSchema",
    "413": "the body is over the server's limit",
    "422": "SchemaViolation",
    "429": "the key's rate limit; see Retry-After",
    "503": "the store refuses writes (StorageError)",
}


def openapi_document(operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI document of ``operations`` (and of the routes every server has)."""
    problem = {"content": {"application/problem+json": {"schema": _ref("Problem")}}}
    paths: dict[str, dict[str, Any]] = {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Whether the server is up (no key needed)",
                "security": [],
                "responses": {"200": {"description": "up", **_json(_OBJECT)}},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "prometheus_metrics",
                "summary": "Prometheus text format (admin)",
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": {"description": _PROBLEMS["401"], **problem},
                    "403": {"description": _PROBLEMS["403"], **problem},
                },
            }
        },
    }
    for op in operations:
        parameters, body, status, answer = _SPECS[op.operation_id]
        responses: dict[str, Any] = {
            str(status): {"description": op.summary, **(_json(answer) if answer else {})}
        }
        for code, text in _PROBLEMS.items():
            responses[code] = {"description": text, **problem}
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "description": f"Needs a key with the {op.role!r} role (or a loopback server).",
            "responses": responses,
        }
        if parameters:
            entry["parameters"] = parameters
        if body is _ARROW_BATCH:
            entry["requestBody"] = body
        elif body is not None:
            entry["requestBody"] = _body(body)
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AllSource Lab server",
            "version": VERSION,
            "description": "The HTTP API of `allsource serve`. WebSocket: "
            "GET /api/v1/events/stream?event_type=&entity_id=&after=SEQ sends each event "
            "after SEQ as one JSON text message, oldest first.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
    }
