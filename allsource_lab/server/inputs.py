"""What a request brings: query parameters and JSON bodies, checked into typed values.

Every bad value is an :class:`~allsource_lab.errors.InvalidArgument` naming the
parameter (a 400 problem), never a 500; a body past the server's limit is a 413.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.requests import Request

from allsource_lab.errors import InvalidArgument
from allsource_lab.server.problems import HttpProblem

__all__ = [
    "body_too_large",
    "check_declared_length",
    "json_body",
    "optional_bool",
    "optional_int",
    "optional_text",
    "parse_json",
    "read_body",
]

# Sequences, counts and limits are int64 in the store.
_INT_MAX = 2**63 - 1


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing one larger than ``limit`` bytes (413) before reading
    past it, whether or not the client announced its length."""
    check_declared_length(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_declared_length(declared: str | None, limit: int) -> None:
    """Refuse a body whose announced ``Content-Length`` is past ``limit`` (413) or is no
    number, before any of it is read."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidArgument(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise body_too_large(limit)


def body_too_large(limit: int) -> HttpProblem:
    """The 413 refusal of a body past the server's limit of ``limit`` bytes."""
    return HttpProblem(
        413,
        "PayloadTooLarge",
        f"the request body is over the server's limit of {limit:,} bytes; send smaller "
        "batches (or start the server with a larger --max-body-bytes)",
    )


async def json_body(request: Request, limit: int, *, kind: type | tuple[type, ...] = dict) -> Any:
    """The body parsed as JSON, which must be a ``kind`` (an object by default)."""
    return parse_json(await read_body(request, limit), kind=kind)


def parse_json(body: bytes, *, kind: type | tuple[type, ...] = dict) -> Any:
    """``body`` parsed as JSON, which must be a ``kind`` (InvalidArgument otherwise)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(
            f"the request body is not JSON ({exc}); send a JSON {_name(kind)}"
        ) from None
    if not isinstance(value, kind):
        raise InvalidArgument(
            f"the request body must be a JSON {_name(kind)}, not {type(value).__name__}"
        )
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(_name(k) for k in kind)
    return "object" if kind is dict else "array" if kind is list else kind.__name__


def optional_text(request: Request, name: str) -> str | None:
    """A text parameter, or None when absent."""
    return request.query_params.get(name)


def optional_int(
    request: Request, name: str, *, minimum: int = 0, maximum: int = _INT_MAX
) -> int | None:
    """An integer parameter in ``[minimum, maximum]``, or None when absent."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer, not {text!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidArgument(f"{name} must be from {minimum} to {maximum}, not {value}")
    return value


def optional_bool(request: Request, name: str) -> bool | None:
    """A boolean parameter (true/false/1/0), or None when absent."""
    text = request.query_params.get(name)
    if text is None:
        return None
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"{name} must be true or false, not {text!r}")


def field(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    """``body[name]`` checked to be a ``kind`` (``default`` when absent, if given)."""
    if name not in body or body[name] is None:
        if default is ...:
            raise InvalidArgument(f"the body needs a {name!r} field")
        return default
    value = body[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InvalidArgument(f"{name!r} must not be a boolean")
    if not isinstance(value, kind):
        raise InvalidArgument(f"{name!r} has the wrong type ({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{name!r} must be a finite number")
    return value
