"""Operations and what every request goes through before and after one.

An :class:`Operation` is one method and path of the API, the role it needs and its
handler. :func:`endpoint` wraps a handler into a Starlette endpoint that finds the caller
(:class:`~allsource_lab.server.access.Gate`: key, tenant, rate limit), checks the role,
runs it, turns refusals into problem details, and counts it in the metrics.

Handlers run on the event loop but hand every store call to the thread pool
(:meth:`Call.run`): an append under ``fsync="always"`` waits for its fsync there, never on
the loop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from allsource_lab.server.access import Caller, require
from allsource_lab.server.inputs import json_body
from allsource_lab.server.problems import HttpProblem, problem, problem_of

if TYPE_CHECKING:
    from allsource_lab.server.app import ServerState
    from allsource_lab.store import EventStore

__all__ = ["Call", "Operation", "endpoint", "failure_answer"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it: the request, its caller and the server."""

    request: Request
    caller: Caller
    server: ServerState

    @property
    def store(self) -> EventStore:
        return self.caller.tenant.store

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the thread pool (every call that may touch the store's locks or disk)."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def body(self, kind: type | tuple[type, ...] = dict) -> Any:
        """The JSON body, within the server's size limit."""
        return await json_body(self.request, self.server.config.max_body_bytes, kind=kind)

    def path_param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the API (an OpenAPI operation: ``operation_id``)."""

    method: str
    path: str
    role: str
    handler: Handler
    operation_id: str
    summary: str


def failure_answer(server: ServerState, exc: Exception, method: str, path: str) -> Response:
    """The problem details a request that raised ``exc`` answers with, counted as an
    error by kind; anything but a refusal is a 500 whose traceback goes to the log."""
    answer = problem_of(exc, path)
    if answer is None:
        server.metrics.error("InternalError")
        server.log_failure(method, path, exc)
        return problem(
            500,
            "InternalError",
            f"the server failed ({type(exc).__name__}); its log has the traceback",
            path,
        )
    server.metrics.error(exc.title if isinstance(exc, HttpProblem) else type(exc).__name__)
    return answer


def endpoint(operation: Operation, server: ServerState) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``operation``."""
    role = operation.role
    handler = operation.handler
    gate = server.gate
    metrics = server.metrics
    route = operation.path

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        tenant = "-"
        try:
            caller = gate.caller(request.headers)
            tenant = caller.tenant.name
            require(caller, role)
            response = await handler(Call(request, caller, server))
        except Exception as exc:
            response = failure_answer(server, exc, request.method, request.url.path)
        metrics.request(tenant, route, request.method, response.status_code, started)
        return response

    run.__name__ = operation.operation_id
    return run
