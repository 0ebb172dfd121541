"""Errors as HTTP answers: RFC 9457 problem details (``application/problem+json``).

Every refused request gets one JSON object: ``type`` (``urn:allsource-lab:problem:`` and
the error's class name), ``title`` (the class name: the library's own, from
:mod:`allsource_lab.errors`, for everything the store refused), ``status``, ``detail``
(the library's one-line message, which says what to do next) and ``instance`` (the
request path), plus the error's own fields where it has them (``row``, ``field``,
``expected``, ``actual``, ``path``). Errors of the server itself (a missing or refused
key, a rate limit, a body too large, an unknown path) use the same form with their own
titles.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from allsource_lab.errors import (
    AllSourceError,
    ConcurrencyError,
    CorruptionError,
    IncompatibleSchema,
    InvalidArgument,
    InvalidEvent,
    NotFound,
    SchemaError,
    SchemaViolation,
    StorageError,
    StoreLocked,
)

__all__ = ["PROBLEM_TYPE", "HttpProblem", "problem", "problem_of"]

PROBLEM_TYPE = "urn:allsource-lab:problem:"
CONTENT_TYPE = "application/problem+json"

# The status of each library error, most specific class first (the first match wins).
_STATUS: tuple[tuple[type[AllSourceError], int], ...] = (
    (InvalidEvent, 400),
    (InvalidArgument, 400),
    (ConcurrencyError, 409),
    (NotFound, 404),
    (SchemaViolation, 422),
    (IncompatibleSchema, 409),
    (SchemaError, 400),
    (CorruptionError, 500),
    (StoreLocked, 503),
    (StorageError, 503),
)


class HttpProblem(Exception):
    """A refusal by the server itself (not the store): its title, status and message."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem(
    status: int,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem details response.

    >>> problem(404, "NotFound", "no entity 'x'", "/api/v1/entities/x/state").status_code
    404
    """
    body = {
        "type": PROBLEM_TYPE + title,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **{k: v for k, v in extra.items() if v is not None},
    }
    return Response(
        orjson.dumps(body, default=str), status, headers=headers, media_type=CONTENT_TYPE
    )


def status_of(exc: AllSourceError) -> int:
    """The HTTP status a library error answers with."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def problem_of(exc: BaseException, instance: str) -> Response | None:
    """The response for an error a request may cause, or None for a bug (a 500 elsewhere)."""
    if isinstance(exc, HttpProblem):
        return problem(exc.status, exc.title, exc.detail, instance, exc.headers, **exc.extra)
    if isinstance(exc, AllSourceError):
        extra: dict[str, Any] = {}
        for name in ("row", "field", "entity_id", "expected", "actual", "reason"):
            value = getattr(exc, name, None)
            if isinstance(value, str | int):
                extra[name] = value
        if isinstance(exc, SchemaViolation) and exc.path is not None:
            extra["json_path"] = exc.path
        return problem(status_of(exc), type(exc).__name__, str(exc), instance, **extra)
    return None
