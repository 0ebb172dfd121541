"""``POST /api/v1/events`` as a plain ASGI function: the hot path of single appends.

A single event is the request a server gets most, and its own work is small: an append
is a few microseconds. The application's CPU per request (in process, no network, 20,000
requests on uvloop, measured): ~99 µs through Starlette with the append on the thread
pool, ~31 µs through Starlette with the append on the loop, ~14 µs here, from the ASGI
scope and messages. The answers are the same to the byte as the Starlette route's (a
test compares them): the same gate, limits, checks and errors.

The append runs on the event loop unless the store fsyncs every append
(``fsync="always"``): under ``"interval"`` and ``"never"`` it never waits for an fsync
(the flusher thread writes and fsyncs; the append at most writes out a full WAL buffer
the flusher has fallen behind on, or starts a seal once per 100K events), so the hop
would only add latency. Under
``"always"`` it waits for its fsync on the thread pool, where appends of several requests
share one fsync (group commit).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool

from allsource_lab.server.access import require
from allsource_lab.server.events_api import event_arguments
from allsource_lab.server.inputs import body_too_large, check_declared_length, parse_json
from allsource_lab.server.render import event_object
from allsource_lab.server.routing import failure_answer

if TYPE_CHECKING:
    from allsource_lab.server.app import ServerState

__all__ = ["INGEST_PATH", "ingest_one"]

INGEST_PATH = "/api/v1/events"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON_HEADER = (b"content-type", b"application/json")


class _Headers:
    """What the gate reads of a request's headers (``get`` of a lower-case name, the
    first value when repeated, as Starlette's ``Headers``), from the raw ASGI list."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.encode("latin-1")
        for found, value in self._raw:
            if found == key:
                return value.decode("latin-1")
        return default


class _Gone(Exception):
    """The client went away before its request body was whole: nothing to answer."""


async def _read_body(receive: Receive, headers: _Headers, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes before it is read past it:
    as :func:`~allsource_lab.server.inputs.read_body`, from the ASGI messages."""
    check_declared_length(headers.get("content-length"), limit)
    message = await receive()
    if message["type"] != "http.request":
        raise _Gone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise body_too_large(limit)
        return body
    chunks = [body]
    total = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def ingest_one(server: ServerState, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ``POST /api/v1/events`` (the ``ingest_event`` operation)."""
    started = time.perf_counter()
    tenant = "-"
    try:
        headers = _Headers(scope["headers"])
        caller = server.gate.caller(headers)
        tenant = caller.tenant.name
        require(caller, "write")
        arguments = event_arguments(
            parse_json(await _read_body(receive, headers, server.config.max_body_bytes))
        )
        store = caller.tenant.store
        if store.settings.fsync == "always":
            event = await run_in_threadpool(store.append, **arguments)
        else:
            event = store.append(**arguments)
        server.metrics.ingested(tenant, 1)
        content = orjson.dumps(event_object(event))
    except _Gone:
        return
    except Exception as exc:
        answer = failure_answer(server, exc, "POST", INGEST_PATH)
        server.metrics.request(tenant, INGEST_PATH, "POST", answer.status_code, started)
        await answer(scope, receive, send)
        return
    server.metrics.request(tenant, INGEST_PATH, "POST", 201, started)
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-length", str(len(content)).encode()), _JSON_HEADER],
        }
    )
    await send({"type": "http.response.body", "body": content})
