"""The JSON form of a pipeline: checking it, and its one canonical shape.

The shape follows the original AllSource service's pipeline configuration::

    {"name": "big_orders",
     "source_event_types": ["order.placed"],
     "operators": [
        {"type": "filter", "field": "payload.amount", "op": "gt", "value": 100},
        {"type": "map", "field": "payload.sku", "transform": "uppercase"},
        {"type": "window",
         "config": {"window_type": "tumbling", "size_seconds": 60, "by": ["payload.sku"]},
         "aggregation": {"type": "reduce", "aggregates": {"*": ["count"]}}}],
     "enabled": true}

Every operator, its keys and accepted values are listed in :mod:`allsource_lab.pipelines`.
:func:`normalize_pipeline` checks a spec and returns its canonical form (full field paths,
lists where one or many are accepted, a window's following ``reduce`` folded into its
``aggregation``); ``Pipeline.to_json`` writes that form and ``Pipeline.from_json`` reads
any accepted form. A bad spec raises :class:`~allsource_lab.errors.InvalidArgument` (a
``ValueError``) naming the operator's index and type, the key, and what is accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from allsource_lab._ingest import inputs
from allsource_lab.pipelines.checks import fail, json_value, only_keys, path, text
from allsource_lab.pipelines.expressions import expression_fields
from allsource_lab.pipelines.paths import COLUMNS, key_text
from allsource_lab.pipelines.windowspec import normalize_reduce, normalize_window

__all__ = [
    "FILTER_OPS",
    "OPERATOR_TYPES",
    "TRANSFORMS",
    "normalize_condition",
    "normalize_operators",
    "normalize_pipeline",
]

OPERATOR_TYPES = ("filter", "map", "reduce", "window", "enrich", "branch")
FILTER_OPS = ("eq", "ne", "gt", "ge", "lt", "le", "contains", "in", "exists")
TEXT_TRANSFORMS = ("uppercase", "lowercase", "trim")
ARITHMETIC = ("add", "subtract", "multiply", "divide")
TRANSFORMS = (
    *TEXT_TRANSFORMS,
    "set",
    "rename",
    "drop",
    "compute",
    "add:N",
    "subtract:N",
    "multiply:N",
    "divide:N",
)
_TOP_KEYS = (
    "name",
    "description",
    "source_event_types",
    "operators",
    "enabled",
    "max_results",
    "id",
    "output",
)
_ENDING = ("window", "reduce", "branch")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FIXED = ("sequence", "version", "timestamp")
DEFAULT_MAX_RESULTS = 10_000


def normalize_condition(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    """A filter condition ``{"field", "op", "value"}`` in canonical form."""
    field = path(where, op.get("field"), "field")
    name = op.get("op", "eq")
    if name not in FILTER_OPS:
        raise fail(where, f"'op' must be one of {', '.join(FILTER_OPS)}, not {name!r}")
    if name == "exists":
        value = op.get("value", True)
        if not isinstance(value, bool):
            raise fail(where, f"op 'exists' takes 'value' true or false, not {value!r}")
        return {"field": field, "op": name, "value": value}
    if "value" not in op:
        raise fail(where, f"'value' is required for op {name!r}")
    value = json_value(where, "value", op["value"])
    if name == "in" and not isinstance(value, list):
        raise fail(where, f"op 'in' takes a list in 'value', like [\"eu\", \"us\"], not {value!r}")
    if name in ("gt", "ge", "lt", "le") and (
        isinstance(value, bool) or not isinstance(value, int | float | str)
    ):
        raise fail(where, f"op {name!r} compares with a number or a text, not {value!r}")
    if field == "timestamp" and name in ("eq", "ne", "gt", "ge", "lt", "le", "in"):
        for v in value if isinstance(value, list) else [value]:
            time_us(where, v)
    return {"field": field, "op": name, "value": value}


def time_us(where: str, value: Any) -> int:
    """A filter value on ``timestamp``: microseconds since the epoch or ISO-8601 text."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise fail(where, f"a 'value' for timestamp must fit in 64 bits, not {value!r}")
        return value
    try:
        return inputs.parse_time(value, "value")
    except ValueError as exc:
        raise fail(
            where,
            f"a 'value' for timestamp must be microseconds since the epoch "
            f"or ISO-8601 text with a timezone: {exc}",
        ) from None


def _filter(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    only_keys(where, op, ("type", "field", "op", "value"))
    return {"type": "filter", **normalize_condition(where, op)}


def _arithmetic(where: str, transform: str) -> str | None:
    name, sep, number = transform.partition(":")
    if not sep or name not in ARITHMETIC:
        return None
    if not _NUMBER.fullmatch(number.strip()):
        raise fail(
            where, f"transform {transform!r} needs a number after {name}:, like '{name}:2.5'"
        )
    text = number.strip()
    value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
    # 1e400 is inf, whose saved form would not read back; 400 digits are no double at all.
    if not (math.isfinite(value) if isinstance(value, float) else abs(value) < 2**1023):
        raise fail(where, f"transform {transform!r}: the number is too large for a double")
    if name == "divide" and value == 0:
        raise fail(where, "transform 'divide:0' divides by zero")
    return f"{name}:{value!r}"


def _map(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    only_keys(where, op, ("type", "field", "transform", "value", "to", "expr"))
    field = path(where, op.get("field"), "field")
    transform = op.get("transform")
    if not isinstance(transform, str):
        raise fail(where, f"'transform' must be one of {', '.join(TRANSFORMS)}; got {transform!r}")
    canonical = _arithmetic(where, transform)
    extra = {"set": "value", "rename": "to", "compute": "expr"}
    if canonical is None and transform not in (*TEXT_TRANSFORMS, "drop", *extra):
        raise fail(where, f"'transform' must be one of {', '.join(TRANSFORMS)}, not {transform!r}")
    for key, owner in (("value", "set"), ("to", "rename"), ("expr", "compute")):
        if key in op and transform != owner:
            raise fail(where, f"key {key!r} goes with transform {owner!r} only")
    if field in _FIXED:
        raise fail(
            where,
            f"{field} cannot be changed; map changes payload and metadata "
            "fields, entity_id and event_type",
        )
    if field in COLUMNS and transform in ("rename", "drop"):
        raise fail(where, f"{field} cannot be renamed or dropped (every record has it)")
    out: dict[str, Any] = {"type": "map", "field": field, "transform": canonical or transform}
    if transform == "set":
        if "value" not in op:
            raise fail(where, "transform 'set' needs 'value' (any JSON)")
        out["value"] = json_value(where, "value", op["value"])
    elif transform == "rename":
        to = path(where, op.get("to"), "to")
        if to in COLUMNS:
            raise fail(where, f"cannot rename into {to}; rename to a payload or metadata field")
        out["to"] = to
    elif transform == "compute":
        try:
            expression_fields(op.get("expr"))
        except ValueError as exc:
            raise fail(where, str(exc)) from None
        out["expr"] = str(op["expr"]).strip()
    return out


def _table(where: str, table: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, row in table.items():
        if not isinstance(row, Mapping):
            raise fail(
                where,
                "a lookup table maps each key to an object of fields, like "
                f'{{"sku-1": {{"name": "Widget"}}}}; key {key!r} holds '
                f"{row!r}",
            )
        lookup = key_text(key)
        if lookup is None:
            raise fail(where, "a lookup table's keys cannot be null")
        out[text(where, "source", lookup)] = json_value(where, "source", row)
    return out


def _enrich(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    only_keys(where, op, ("type", "source", "on", "fields", "into"))
    source = op.get("source")
    if isinstance(source, Mapping):
        source = _table(where, source)
    elif not isinstance(source, str) or not source:
        raise fail(
            where,
            "'source' must be a projection's name (text) or a lookup table "
            f"(an object of key -> fields), not {source!r}",
        )
    fields = op.get("fields")
    if fields is not None:
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list | tuple) or not all(
            isinstance(f, str) and f for f in fields
        ):
            raise fail(where, f"'fields' must be a list of field names, not {fields!r}")
        fields = list(fields)
    into = op.get("into")
    if into is not None:
        into = path(where, into, "into")
        if into in COLUMNS:
            raise fail(where, f"'into' must be a payload or metadata field, not {into}")
    on = path(where, op.get("on", "entity_id"), "on")
    return {"type": "enrich", "source": source, "on": on, "fields": fields, "into": into}


def _branch(where: str, op: Mapping[str, Any]) -> dict[str, Any]:
    only_keys(where, op, ("type", "outputs", "default", "field", "branches"))
    outputs: list[dict[str, Any]] = []
    if "outputs" in op:
        if "branches" in op:
            raise fail(where, "give 'outputs' or 'field' and 'branches', not both")
        raw = op["outputs"]
        if not isinstance(raw, list | tuple) or not raw:
            raise fail(
                where, '\'outputs\' must be a non-empty list of {"name", "field", "op", "value"}'
            )
        for j, item in enumerate(raw):
            here = f"{where}: output {j}"
            if not isinstance(item, Mapping):
                raise fail(here, 'must be an object {"name", "field", "op", "value"}')
            only_keys(here, item, ("name", "field", "op", "value"))
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise fail(here, f"'name' must be a non-empty text, not {name!r}")
            outputs.append({"name": name, **normalize_condition(here, item)})
    elif "branches" in op:
        field = path(where, op.get("field"), "field")
        branches = op["branches"]
        if not isinstance(branches, Mapping) or not branches:
            raise fail(
                where,
                '\'branches\' must map a field value to an output name, like {"vip": "priority"}',
            )
        for value, name in branches.items():
            if not isinstance(name, str) or not name:
                raise fail(where, f"branch {value!r} must name its output, not {name!r}")
            outputs.append({"name": name, "field": field, "op": "eq", "value": value})
    else:
        raise fail(
            where,
            "needs 'outputs' (a list of named conditions) or 'field' and "
            "'branches' (value -> output name)",
        )
    default = op.get("default", "default")
    if default is not None and (not isinstance(default, str) or not default):
        raise fail(where, f"'default' must be an output name or null (drop), not {default!r}")
    return {"type": "branch", "outputs": outputs, "default": default}


_NORMALIZERS = {
    "filter": _filter,
    "map": _map,
    "reduce": normalize_reduce,
    "window": normalize_window,
    "enrich": _enrich,
    "branch": _branch,
}


def normalize_operators(raw: Any) -> list[dict[str, Any]]:
    """The operators in canonical form, checked one by one and as a chain.

    A chain is any number of ``filter``/``map``/``enrich``, then optionally one of: a
    ``window`` (a ``reduce`` right after it becomes its ``aggregation``), a ``reduce``
    or a ``branch``, which ends it.

    Raises:
        InvalidArgument: ``operator <index> (<type>): <key and what is accepted>``.
    """
    if not isinstance(raw, list | tuple):
        raise fail("pipeline", f"'operators' must be a list, not {type(raw).__name__}")
    out: list[dict[str, Any]] = []
    indexes: list[int] = []
    for i, op in enumerate(raw):
        if not isinstance(op, Mapping):
            raise fail(
                f"operator {i}", f'must be an object like {{"type": "filter", ...}}, not {op!r}'
            )
        kind = op.get("type")
        if kind not in OPERATOR_TYPES:
            raise fail(
                f"operator {i}",
                f"unknown type {kind!r}; accepted types: {', '.join(OPERATOR_TYPES)}",
            )
        where = f"operator {i} ({kind})"
        norm = _NORMALIZERS[kind](where, op)
        last = out[-1] if out else None
        if kind == "reduce" and last is not None and last["type"] == "window":
            if last["aggregation"] is not None:
                raise fail(where, f"the window (operator {indexes[-1]}) already has an aggregation")
            last["aggregation"] = norm
            continue
        if last is not None and last["type"] in _ENDING:
            raise fail(
                where,
                f"comes after a {last['type']} (operator {indexes[-1]}), which "
                "ends the pipeline: filter, map and enrich come first, then at "
                "most one window (with its reduce), reduce or branch",
            )
        out.append(norm)
        indexes.append(i)
    for i, op in zip(indexes, out, strict=True):
        if op["type"] != "window":
            continue
        if op["aggregation"] is None:
            op["aggregation"] = {"type": "reduce", "aggregates": {"*": ["count"]}, "group_by": []}
        keys = op["config"]["by"] + op["aggregation"]["group_by"]
        if len(set(keys)) != len(keys):
            raise fail(
                f"operator {i} (window)",
                f"the window's 'by' and its reduce's 'group_by' name a key twice: {keys!r}",
            )
    return out


def normalize_pipeline(data: Any) -> dict[str, Any]:
    """A pipeline spec in canonical form.

    Raises:
        InvalidArgument: what is wrong, where (``pipeline: ...`` or ``operator <i> (<type>)``),
            and what is accepted.

    >>> spec = normalize_pipeline({"name": "p", "source_event_types": "order.placed",
    ...     "operators": [{"type": "filter", "field": "amount", "op": "gt", "value": 5}]})
    >>> spec["source_event_types"], spec["operators"][0]["field"]
    (['order.placed'], 'payload.amount')
    """
    if not isinstance(data, Mapping):
        raise fail(
            "pipeline",
            "a spec must be an object with 'name', 'source_event_types' "
            f"and 'operators', not {type(data).__name__}",
        )
    only_keys("pipeline", data, _TOP_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise fail("pipeline", f"'name' is required: a non-empty text, not {name!r}")
    text("pipeline", "name", name)
    types = data.get("source_event_types")
    types = [] if types is None else [types] if isinstance(types, str) else types
    if not isinstance(types, list | tuple) or not all(isinstance(t, str) and t for t in types):
        raise fail(
            "pipeline",
            "'source_event_types' must be a list of event types (empty: "
            f"every type), not {data.get('source_event_types')!r}",
        )
    for t in types:
        text("pipeline", "source_event_types", t)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("pipeline", f"'enabled' must be true or false, not {enabled!r}")
    keep = data.get("max_results", DEFAULT_MAX_RESULTS)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 0 <= keep < 2**63:
        raise fail("pipeline", f"'max_results' must be an int from 0 to 2**63 - 1, not {keep!r}")
    spec: dict[str, Any] = {"name": name}
    for key in ("id", "description", "output"):
        value = data.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise fail("pipeline", f"{key!r} must be a text, not {value!r}")
            spec[key] = text("pipeline", key, value)
    spec["source_event_types"] = list(dict.fromkeys(types))
    spec["operators"] = normalize_operators(data.get("operators", []))
    spec["enabled"] = enabled
    spec["max_results"] = keep
    return spec
