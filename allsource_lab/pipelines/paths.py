"""Field paths into pipeline records, and how values read through them compare and key.

A *record* is what flows between a pipeline's operators: a dict with the event's columns
``sequence``, ``event_type``, ``entity_id``, ``version``, ``timestamp`` (event time, int
microseconds since the epoch), ``payload`` (the decoded object) and ``metadata`` (decoded,
when an operator reads it). Operators read and write it through *field paths*:

- ``entity_id``, ``event_type``, ``timestamp``, ``sequence``, ``version``: the column;
- ``payload.a.b`` / ``metadata.a.b``: a value inside the payload / metadata object;
- any other text, ``a.b``: shorthand for ``payload.a.b`` (in the original AllSource
  service a field is relative to the payload). Paths are stored in their full form.

A missing field and a JSON ``null`` read the same: ``None``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson

from allsource_lab.errors import InvalidArgument

__all__ = [
    "COLUMNS",
    "Record",
    "fresh",
    "getter",
    "inner_getter",
    "is_number",
    "key_text",
    "normalize_path",
    "pop_path",
    "root",
    "same",
    "set_path",
    "show",
    "to_number",
]

Record = dict[str, Any]

COLUMNS = ("sequence", "event_type", "entity_id", "version", "timestamp")
CONTAINERS = ("payload", "metadata")
PATH_FORMS = (
    "'entity_id', 'event_type', 'timestamp', 'sequence', 'version', or a path like "
    "'payload.amount' / 'metadata.source' (a bare 'amount' means 'payload.amount')"
)


def normalize_path(value: object, what: str = "field") -> str:
    """The full form of a field path.

    Raises:
        InvalidArgument: not a non-empty text of non-empty dot-separated parts.

    >>> normalize_path("amount"), normalize_path("metadata.source"), normalize_path("entity_id")
    ('payload.amount', 'metadata.source', 'entity_id')
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{what} must be {PATH_FORMS}; got {value!r}")
    parts = value.split(".")
    if any(not p for p in parts):
        raise InvalidArgument(f"{what} {value!r} has an empty part; use {PATH_FORMS}")
    if parts[0] in COLUMNS:
        if len(parts) > 1:
            raise InvalidArgument(f"{what} {value!r}: {parts[0]} has no fields inside it")
        return value
    if parts[0] in CONTAINERS:
        if len(parts) == 1:
            raise InvalidArgument(f"{what} {value!r} must name a field inside it, like '{value}.x'")
        return value
    return "payload." + value


def root(path: str) -> str:
    """The record key a (full) path starts from: a column, ``payload`` or ``metadata``."""
    return path.split(".", 1)[0]


def getter(path: str) -> Callable[[Record], Any]:
    """A function reading ``path`` from a record (``None`` when missing)."""
    parts = path.split(".")
    head = parts[0]
    if len(parts) == 1:
        return lambda record: record.get(head)
    rest = tuple(parts[1:])
    if len(rest) == 1:
        key = rest[0]

        def one(record: Record) -> Any:
            inner = record.get(head)
            return inner.get(key) if isinstance(inner, dict) else None

        return one

    def many(record: Record) -> Any:
        value = record.get(head)
        for key in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return many


def inner_getter(path: str) -> Callable[[Any], Any]:
    """A function reading ``path`` from the value of its root (the record key it starts
    from): the identity for a column, a walk into the object for ``payload.a.b``."""
    parts = path.split(".")[1:]
    if not parts:
        return lambda value: value
    if len(parts) == 1:
        key = parts[0]
        return lambda value: value.get(key) if isinstance(value, dict) else None

    def walk(value: Any) -> Any:
        for key in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return walk


def set_path(record: Record, path: str, value: Any) -> None:
    """Set ``path`` in ``record``, creating the objects on the way.

    Raises:
        TypeError: a part on the way holds something that is not an object.
    """
    parts = path.split(".")
    if len(parts) == 1:
        record[path] = value
        return
    target = record
    for i, key in enumerate(parts[:-1]):
        inner = target.get(key)
        if inner is None:
            inner = target[key] = {}
        elif not isinstance(inner, dict):
            where = ".".join(parts[: i + 1])
            raise TypeError(f"cannot set {path}: {where} is {_show(inner)}, not an object")
        target = inner
    target[parts[-1]] = value


_MISSING = object()


def pop_path(record: Record, path: str) -> tuple[bool, Any]:
    """Remove ``path`` from ``record``; ``(True, value)`` if it was there, else
    ``(False, None)``."""
    parts = path.split(".")
    target: Any = record
    for key in parts[:-1]:
        target = target.get(key) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return False, None
    value = target.pop(parts[-1], _MISSING)
    return (False, None) if value is _MISSING else (True, value)


def key_text(value: Any) -> str | None:
    """A value as text, the way SQL's ``json_extract_string`` renders it: strings as they
    are, ``true``/``false``, numbers and nested values as JSON; ``None`` stays ``None``.

    (Floats of magnitude 1e16 and above are rendered by DuckDB in positional notation and
    here in exponent notation; keys on such numbers differ from ``store.window``.)

    >>> key_text("eu"), key_text(3), key_text(True), key_text(1.5), key_text({"a": [1]})
    ('eu', '3', 'true', '1.5', '{"a":[1]}')
    """
    if value is None or isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def to_number(value: Any) -> float | None:
    """A value read as a number, as SQL's ``TRY_CAST(text AS DOUBLE)`` reads it: numbers,
    and text that spells one; anything else (``true``, ``"abc"``, objects) is ``None``.

    >>> to_number(2), to_number(" 2.5 "), to_number("x"), to_number(True)
    (2.0, 2.5, None, None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def fresh(value: Any) -> Any:
    """``value``, copied if it is a container (so later writes cannot reach the original)."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def show(value: Any) -> str:
    """A short repr for messages."""
    return _show(value)
