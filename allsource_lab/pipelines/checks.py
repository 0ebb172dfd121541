"""Checks shared by the pipeline spec's normalizers: keys, JSON values, field paths.

Every failure is an :class:`~allsource_lab.errors.InvalidArgument` (a ``ValueError``) that
starts with where it is (``pipeline`` or ``operator <index> (<type>)``), then says what is
wrong and what is accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from allsource_lab.errors import InvalidArgument
from allsource_lab.pipelines.paths import PATH_FORMS, normalize_path

__all__ = ["fail", "json_value", "only_keys", "path", "paths", "text"]

# Integers the saved form can hold (orjson writes 64-bit integers only).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def fail(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{where}: {message}")


def only_keys(where: str, op: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    for key in op:
        if key not in accepted:
            raise fail(where, f"unknown key {key!r}; accepted keys: {', '.join(accepted)}")


def json_value(where: str, key: str, value: Any) -> Any:
    """``value`` if it is plain JSON (lists, objects with text keys, finite numbers)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise fail(where, f"{key!r}: the integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, str):
        return text(where, key, value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise fail(where, f"{key!r} must be finite JSON, not {value!r}")
        return value
    if isinstance(value, list | tuple):
        return [json_value(where, key, v) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise fail(where, f"{key!r}: object keys must be text")
        for k in value:
            text(where, key, k)
        return {k: json_value(where, key, v) for k, v in value.items()}
    raise fail(
        where,
        f"{key!r} must be JSON (text, number, bool, null, list, object), "
        f"not {type(value).__name__}",
    )


def text(where: str, key: str, value: str) -> str:
    """``value`` if it can be saved as UTF-8 (a lone surrogate cannot)."""
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise fail(
            where, f"{key!r} is not valid Unicode text (lone surrogate at position {exc.start})"
        ) from None
    return value


def path(where: str, value: Any, key: str) -> str:
    try:
        return text(where, key, normalize_path(value, repr(key)))
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise fail(where, str(exc)) from None


def paths(where: str, value: Any, key: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise fail(where, f"{key!r} must be a field path or a list of them; {PATH_FORMS}")
    out = [path(where, v, key) for v in items]
    if len(set(out)) != len(out):
        raise fail(where, f"{key!r} names a field twice: {out!r}")
    return out
