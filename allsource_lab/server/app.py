"""The server as an ASGI application: :func:`create_app` over open stores.

Starlette was chosen over FastAPI for the request path: FastAPI validates and converts
every request and response through pydantic models, which the store already does for
its own inputs (with its own typed errors, which the API must show), and which costs
tens of microseconds a request; Starlette routes to plain async functions, and runs on
uvicorn (uvloop, httptools), a well-kept ASGI server. The OpenAPI document is written
out in :mod:`allsource_lab.server.openapi` rather than derived from models.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from allsource_lab.errors import AllSourceError
from allsource_lab.server import analytics_api, events_api, operations_api
from allsource_lab.server.access import Gate, Tenant, require
from allsource_lab.server.fastpath import INGEST_PATH, ingest_one
from allsource_lab.server.metrics import CONTENT_TYPE, Metrics
from allsource_lab.server.openapi import openapi_document
from allsource_lab.server.problems import HttpProblem, problem, problem_of
from allsource_lab.server.render import json_response
from allsource_lab.server.routing import Operation, endpoint
from allsource_lab.server.stream import StreamHub, stream_events, stream_options

__all__ = ["OPERATIONS", "ServerConfig", "ServerState", "create_app"]

OPERATIONS: tuple[Operation, ...] = (
    events_api.OPERATIONS + operations_api.OPERATIONS + analytics_api.OPERATIONS
)

log = logging.getLogger("allsource_lab.server")


@dataclass(frozen=True)
class ServerConfig:
    """How a server answers: who needs a key, limits and CORS."""

    # True for a server bound to a loopback address: requests without a key are served
    # as the default tenant's admin.
    keyless: bool = True
    # Largest request body, in bytes (a batch of 10,000 ~150-byte events is ~2 MB).
    max_body_bytes: int = 32 * 1024 * 1024
    # Per-key rate limit unless the key has its own: requests a second, and burst size.
    rate_per_s: float = 100.0
    burst: int = 200
    # Origins allowed to call the API from a browser (CORS); none by default.
    allow_origins: tuple[str, ...] = ()


@dataclass
class ServerState:
    """What every request may need: the tenants, the gate, the metrics, the config."""

    tenants: dict[str, Tenant]
    config: ServerConfig
    gate: Gate
    metrics: Metrics
    failures: list[str] = field(default_factory=list)

    def log_failure(self, method: str, path: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        self.failures.append(text)
        del self.failures[:-20]
        log.error("%s %s failed:\n%s", method, path, text)


def create_app(
    tenants: dict[str, Tenant], default: str, config: ServerConfig | None = None
) -> Starlette:
    """The ASGI application serving ``tenants`` (name -> Tenant); requests without a key
    go to ``default`` on a keyless (loopback) server.

    The stores stay the caller's: the application never closes them.
    """
    config = config or ServerConfig()
    gate = Gate(
        tenants,
        tenants[default],
        config.keyless,
        rate_per_s=config.rate_per_s,
        burst=config.burst,
    )
    state = ServerState(tenants, config, gate, Metrics(lambda: list(tenants.values())))
    document = openapi_document(OPERATIONS)

    async def health(request: Request) -> Response:
        return json_response({"status": "ok", "service": "allsource-lab"})

    async def openapi(request: Request) -> Response:
        return json_response(document)

    async def metrics(request: Request) -> Response:
        try:
            require(gate.caller(request.headers), "admin")
        except HttpProblem as exc:
            answer = problem_of(exc, request.url.path)
            assert answer is not None
            return answer
        body = await asyncio.to_thread(state.metrics.text)
        return Response(body, media_type=CONTENT_TYPE)

    async def stream(websocket: WebSocket) -> None:
        try:
            caller = gate.caller(websocket.headers)
            require(caller, "read")
            after, types, entity = stream_options(websocket.query_params)
        except (HttpProblem, AllSourceError) as exc:
            # Refused before the handshake completes: an HTTP 403 to the client, with
            # the reason as the close message where the client shows it.
            await websocket.close(1008, str(exc)[:120])
            return
        tenant = caller.tenant
        if tenant.hub is None:
            tenant.hub = StreamHub(tenant.store, asyncio.get_running_loop())
        await websocket.accept()
        await stream_events(websocket, tenant.hub, after, types, entity)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        title = "MethodNotAllowed" if status == 405 else "NotFound"
        detail = (
            f"{request.method} is not allowed on {request.url.path}"
            if status == 405
            else f"no such path {request.url.path}; see /openapi.json for the API"
        )
        return problem(status, title, detail, request.url.path)

    routes: list[Any] = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        WebSocketRoute("/api/v1/events/stream", stream),
    ]
    for operation in OPERATIONS:
        routes.append(Route(operation.path, endpoint(operation, state), methods=[operation.method]))
    middleware = []
    if config.allow_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.allow_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            )
        )
    app = _Server(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.server = state
    # Single appends skip Starlette (server/fastpath.py), unless CORS middleware must see
    # every request.
    app.fast_ingest = None if middleware else state
    return app


class _Server(Starlette):
    """Starlette, with ``POST /api/v1/events`` answered by :func:`ingest_one` first."""

    fast_ingest: ServerState | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.fast_ingest
        if (
            state is not None
            and scope["type"] == "http"
            and scope["path"] == INGEST_PATH
            and scope["method"] == "POST"
        ):
            await ingest_one(state, scope, receive, send)
            return
        await super().__call__(scope, receive, send)
