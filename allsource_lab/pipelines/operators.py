"""Record operators: ``filter``, ``map``, ``enrich`` and ``branch``'s routing.

Each canonical operator (see :mod:`allsource_lab.pipelines.spec`) compiles to a function
taking a record and returning it (changed in place, for ``map`` and ``enrich``) or
``None`` when a filter drops it. A function raises when the record cannot go through (text
where a number is needed, say); the pipeline counts that as an error of the record.

Comparison rules: ``eq``/``ne``/``in`` use JSON equality (``1 == 1.0``, but ``true`` is not
``1``; a missing field equals only ``null``); ``gt``/``ge``/``lt``/``le`` compare numbers
with numbers and text with text, and are false otherwise (a missing field, a type
mismatch); ``contains`` is a substring test on text, membership in a list, or a key of an
object; ``exists`` is true when the field is present and not null (``"value": false``
inverts it). Values compared with ``timestamp`` are microseconds or ISO-8601 text.

``enrich`` from a projection reads ``store.projections[name].state(value)`` (a
``KeyError`` is "nothing found"; a non-text value is tried as is, then as text). The store
feeds projections one after another, each a whole appended batch at a time: add the
lookup projection before the pipeline, and the pipeline sees its state after that batch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Protocol

from allsource_lab.pipelines.expressions import compile_expression
from allsource_lab.pipelines.paths import (
    Record,
    fresh,
    getter,
    is_number,
    key_text,
    pop_path,
    same,
    set_path,
    show,
)
from allsource_lab.pipelines.spec import time_us

__all__ = ["Context", "Step", "compile_step", "predicate", "router", "value_test"]

Step = Callable[[Record], Record | None]
Predicate = Callable[[Record], bool]

_ORDER = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
_TEXT: dict[str, Callable[[str], str]] = {
    "uppercase": str.upper,
    "lowercase": str.lower,
    "trim": lambda text: text.strip(),
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
}


class Context(Protocol):
    """What operators need from the running pipeline: the store feeding it (or None)."""

    store: Any


def value_test(condition: dict[str, Any]) -> Callable[[Any], bool]:
    """A test of the value read from a canonical condition's field (``None``: missing)."""
    field, op, value = condition["field"], condition["op"], condition["value"]
    if field == "timestamp" and op in ("eq", "ne", "gt", "ge", "lt", "le", "in"):
        value = [time_us(field, v) for v in value] if op == "in" else time_us(field, value)
    if op == "exists":
        return (lambda v: v is not None) if value else (lambda v: v is None)
    if op in ("eq", "ne"):
        if isinstance(value, str):  # text equals only text: a plain == is exact
            if op == "eq":
                return lambda v: v == value
            return lambda v: v != value
        if op == "eq":
            return lambda v: same(v, value)
        return lambda v: not same(v, value)
    if op in _ORDER:
        compare = _ORDER[op]
        if isinstance(value, str):
            return lambda v: isinstance(v, str) and compare(v, value)
        return lambda v: is_number(v) and compare(v, value)
    if op == "in":
        options = list(value)
        if all(isinstance(o, str) for o in options):
            texts = frozenset(options)
            return lambda v: isinstance(v, str) and v in texts
        return lambda v: any(same(v, o) for o in options)

    def contains(found: Any) -> bool:
        if isinstance(found, str):
            return isinstance(value, str) and value in found
        if isinstance(found, list):
            return any(same(item, value) for item in found)
        if isinstance(found, dict):
            return isinstance(value, str) and value in found
        return False

    return contains


def predicate(condition: dict[str, Any]) -> Predicate:
    """A test of one canonical condition ``{"field", "op", "value"}`` on a record."""
    read = getter(condition["field"])
    test = value_test(condition)
    return lambda record: test(read(record))


def _filter(op: dict[str, Any], context: Context) -> Step:
    test = predicate(op)
    return lambda record: record if test(record) else None


def _map(op: dict[str, Any], context: Context) -> Step:
    field, transform = op["field"], op["transform"]
    read = getter(field)
    if transform in ("uppercase", "lowercase", "trim"):
        change = _TEXT[transform]

        def text(record: Record) -> Record:
            value = read(record)
            if value is None:
                return record
            if not isinstance(value, str):
                raise TypeError(f"{transform} needs text; {field} is {show(value)}")
            set_path(record, field, change(value))
            return record

        return text
    name, _, number = transform.partition(":")
    if name in _ARITHMETIC:
        fn = _ARITHMETIC[name]
        operand = _number(number)

        def arithmetic(record: Record) -> Record:
            value = read(record)
            if value is None:
                return record
            if not is_number(value):
                raise TypeError(f"{name} needs a number; {field} is {show(value)}")
            set_path(record, field, fn(value, operand))
            return record

        return arithmetic
    if transform == "set":
        constant = op["value"]

        def assign(record: Record) -> Record:
            set_path(record, field, fresh(constant))
            return record

        return assign
    if transform == "rename":
        to = op["to"]

        def rename(record: Record) -> Record:
            found, value = pop_path(record, field)
            if found:
                set_path(record, to, value)
            return record

        return rename
    if transform == "drop":

        def drop(record: Record) -> Record:
            pop_path(record, field)
            return record

        return drop
    evaluate = compile_expression(op["expr"])

    def compute(record: Record) -> Record:
        set_path(record, field, evaluate(record))
        return record

    return compute


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _lookup(source: Any, context: Context) -> Callable[[Any], Any]:
    """Finds the enrichment for a key value: ``None`` when there is none."""
    if isinstance(source, dict):
        table = source
        return lambda value: table.get(key_text(value))
    name = source

    def from_projection(value: Any) -> Any:
        store = context.store
        if store is None:
            raise RuntimeError(
                f"enrich from projection {name!r} needs a store: add the pipeline with "
                "store.pipelines.add (or replay the store into it)"
            )
        try:
            projection = store.projections[name]
        except KeyError:
            raise RuntimeError(
                f"no projection named {name!r} in the store; add it (before the pipeline, "
                "so it is fed first) with store.projections.add"
            ) from None
        try:
            return projection.state(value)
        except KeyError:
            pass
        if isinstance(value, str):
            return None
        try:
            return projection.state(key_text(value))
        except KeyError:
            return None

    return from_projection


def _enrich(op: dict[str, Any], context: Context) -> Step:
    read = getter(op["on"])
    lookup = _lookup(op["source"], context)
    fields: list[str] | None = op["fields"]
    into: str | None = op["into"]
    source = op["source"] if isinstance(op["source"], str) else "the lookup table"

    def enrich(record: Record) -> Record:
        value = read(record)
        if value is None:
            return record
        found = lookup(value)
        if found is None:
            return record
        if isinstance(found, dict):
            names = found if fields is None else fields
            picked = {k: fresh(found[k]) for k in names if k in found}
            if into is None:
                payload = record.setdefault("payload", {})
                payload.update(picked)
            else:
                set_path(record, into, picked)
        elif into is None:
            raise TypeError(
                f"{source} gave {show(found)} for {value!r}, not an object of fields; give "
                "'into' to put it in one field"
            )
        else:
            set_path(record, into, fresh(found))
        return record

    return enrich


_COMPILERS: dict[str, Callable[[dict[str, Any], Context], Step]] = {
    "filter": _filter,
    "map": _map,
    "enrich": _enrich,
}


def compile_step(op: dict[str, Any], context: Context) -> Step:
    """The function of a canonical ``filter``, ``map`` or ``enrich`` operator."""
    return _COMPILERS[op["type"]](op, context)


def router(op: dict[str, Any]) -> Callable[[Record], str | None]:
    """A canonical ``branch``'s routing: the first output whose condition holds, else the
    default (``None``: the record is dropped)."""
    outputs: list[tuple[str, Predicate]] = [(o["name"], predicate(o)) for o in op["outputs"]]
    default: str | None = op["default"]

    def route(record: Record) -> str | None:
        for name, test in outputs:
            if test(record):
                return name
        return default

    return route
