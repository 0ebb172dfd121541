"""The rules of schema compatibility that judge one keyword, or a family of them.

Pure functions on two schema nodes (the earlier one and the later one, ``$ref`` already
expanded) that return the problems a change makes, and the helpers the comparison in
:mod:`allsource_lab.schemas.comparison` shares with them: which types a node allows,
which property names a ``patternProperties`` entry matches (ECMA-262), JSON equality.
The table these rules implement is in :mod:`allsource_lab.schemas.compat`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeGuard

from allsource_lab.errors import SchemaError
from allsource_lab.schemas import ecma

__all__ = [
    "ANNOTATIONS",
    "ANYTHING",
    "BOUNDS",
    "CONTEXTUAL",
    "DEPENDENCIES",
    "DESCENT",
    "GROUPS",
    "LEGACY_DRAFTS",
    "NAMED",
    "NOTHING",
    "RULED",
    "SCHEMA_LISTS",
    "SCHEMA_MAPS",
    "SCHEMA_VALUED",
    "UNEVALUATED",
    "UNORDERED",
    "Schema",
    "allowed_values",
    "constraints",
    "count_problems",
    "descends",
    "escape",
    "format_problems",
    "has_nested_id",
    "is_number",
    "is_open",
    "json_equal",
    "json_type",
    "listed_properties",
    "matches",
    "multiple_problems",
    "number_problems",
    "overlap",
    "pattern_properties",
    "required_names",
    "same_members",
    "show_type",
    "string_problems",
    "tightest",
    "type_problems",
    "types_of",
    "uses_unevaluated",
    "value_problems",
]

Schema = dict[str, Any] | bool

# Keywords that never change which documents are valid. $defs only matter through $ref,
# which is expanded where it is used.
ANNOTATIONS: Final = frozenset(
    {
        "title", "description", "$id", "$schema", "default", "examples", "$comment",
        "$defs", "definitions", "$anchor", "$dynamicAnchor", "$vocabulary", "readOnly",
        "writeOnly", "deprecated", "contentEncoding", "contentMediaType", "contentSchema",
    }
)  # fmt: skip
# Keywords judged by a rule below; any other one is judged only as "unchanged or not".
RULED: Final = frozenset(
    {
        "$ref", "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format",
        "items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems",
        "required", "properties", "patternProperties", "additionalProperties",
        "minProperties", "maxProperties", "unevaluatedProperties", "unevaluatedItems",
        "if", "then", "else", "contains", "minContains", "maxContains", "allOf", "anyOf",
        "oneOf", "not", "dependentRequired", "dependentSchemas", "dependencies",
    }
)  # fmt: skip
# Keywords that only mean something together: a change to any member changes the group.
GROUPS: Final = (("if", "then", "else"), ("contains", "minContains", "maxContains"))
# Their target depends on where evaluation started, so even unchanged text proves nothing.
CONTEXTUAL: Final = frozenset({"$dynamicRef", "$recursiveRef"})
LEGACY_DRAFTS: Final = ("draft-03", "draft-04", "draft-06", "draft-07")

SCHEMA_VALUED: Final = frozenset(
    {
        "not", "if", "then", "else", "additionalProperties", "additionalItems", "contains",
        "propertyNames", "unevaluatedProperties", "unevaluatedItems", "items",
    }
)  # fmt: skip
SCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
SCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "dependencies"}
)
UNORDERED: Final = frozenset({"required", "type", "enum"})
UNEVALUATED: Final = frozenset({"unevaluatedProperties", "unevaluatedItems"})
# Path segments that move to a part of the document (a member, an item): a $ref cycle
# met again below one of them is a recursion over a smaller document.
DESCENT: Final = frozenset(
    {
        "properties", "patternProperties", "additionalProperties", "items", "prefixItems",
        "additionalItems", "contains", "propertyNames", "unevaluatedProperties",
        "unevaluatedItems",
    }
)  # fmt: skip
# Keywords that name their subschemas by a further path segment (an index or a name).
NAMED: Final = frozenset({"allOf", "anyOf", "oneOf", "dependentSchemas", "dependencies"})
# Which dependency keywords each draft reads (the other draft's are unknown words).
DEPENDENCIES: Final = {
    True: ("dependencies",),
    False: ("dependentRequired", "dependentSchemas"),
}

NOTHING: Final[dict[str, Any]] = {"not": {}}
ANYTHING: Final[dict[str, Any]] = {}


def types_of(node: dict[str, Any]) -> frozenset[str] | None:
    """The JSON types a node allows, or None for any."""
    declared = node.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(t for t in declared if isinstance(t, str))
    return None


def show_type(node: dict[str, Any]) -> str:
    declared = node.get("type")
    if isinstance(declared, list):
        return "[" + ", ".join(map(str, declared)) + "]"
    return "any" if declared is None else str(declared)


def type_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    after = types_of(new)
    if after is None:
        return []
    before = types_of(old)
    if before is None:
        return [f"type narrowed: any -> {show_type(new)} at {path}"]
    lost = {t for t in before if t not in after and not (t == "integer" and "number" in after)}
    if not lost:
        return []
    # "number" -> "integer" keeps the integers, so it narrows rather than changes.
    kept = (before - lost) or (before & {"number"} and after & {"integer"})
    verb = "narrowed" if kept else "changed"
    return [f"type {verb}: {show_type(old)} -> {show_type(new)} at {path}"]


def allowed_values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return values if isinstance(values, list) else None


def value_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    allowed = allowed_values(old)
    problems = []
    if isinstance(new.get("enum"), list):
        if allowed is None:
            problems.append(f"enum added at {path}")
        else:
            gone = [v for v in allowed if not any(json_equal(v, w) for w in new["enum"])]
            if gone:
                problems.append(f"enum narrowed: removed {', '.join(map(repr, gone))} at {path}")
    if "const" in new:
        const = new["const"]
        if allowed is None:
            problems.append(f"const added: {const!r} at {path}")
        elif not all(json_equal(v, const) for v in allowed):
            was = repr(old["const"]) if "const" in old else f"enum {allowed!r}"
            problems.append(f"const changed: {was} -> {const!r} at {path}")
    return problems


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


BOUNDS: Final = (
    ((("minimum", False), ("exclusiveMinimum", True)), 1, "raised"),
    ((("maximum", False), ("exclusiveMaximum", True)), -1, "lowered"),
)


def number_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    problems = multiple_problems(old, new, path)
    for keys, sign, verb in BOUNDS:
        strictest = tightest(old, keys, sign)
        for key, exclusive in keys:
            value = new.get(key)
            if not is_number(value):
                continue
            if strictest is None:
                problems.append(f"{key} added: {value} at {path}")
                continue
            was, was_exclusive, was_key = strictest
            if sign * was < sign * value or (was == value and exclusive and not was_exclusive):
                shown = str(was) if was_key == key else f"{was} ({was_key})"
                problems.append(f"{key} {verb}: {shown} -> {value} at {path}")
    return problems


def tightest(
    node: dict[str, Any], keys: Iterable[tuple[str, bool]], sign: int
) -> tuple[Any, bool, str] | None:
    """The strictest of a node's lower (sign 1) or upper (sign -1) bounds."""
    best: tuple[Any, bool, str] | None = None
    for key, exclusive in keys:
        value = node.get(key)
        if not is_number(value):
            continue  # also skips draft-04's boolean exclusiveMinimum
        if best is None or sign * value > sign * best[0] or (value == best[0] and exclusive):
            best = (value, exclusive, key)
    return best


def multiple_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    after = new.get("multipleOf")
    if not is_number(after):
        return []
    before = old.get("multipleOf")
    if not is_number(before):
        return [f"multipleOf added: {after} at {path}"]
    if isinstance(before, int) and isinstance(after, int) and before % after == 0:
        return []
    # A fractional divisor must stay as it is: validators divide in floating point, so
    # 0.6 passes multipleOf 0.3 but fails 0.1 (0.6 / 0.1 == 5.999999999999999).
    if type(before) is type(after) and before == after:
        return []
    return [f"multipleOf changed: {before} -> {after} at {path}"]


def count_problems(
    old: dict[str, Any], new: dict[str, Any], path: str, low: str, high: str
) -> list[str]:
    problems = []
    least, most = new.get(low), new.get(high)
    if is_number(least) and least > old.get(low, 0):
        verb = f"raised: {old[low]} ->" if low in old else "added:"
        problems.append(f"{low} {verb} {least} at {path}")
    if is_number(most) and (high not in old or most < old[high]):
        verb = f"lowered: {old[high]} ->" if high in old else "added:"
        problems.append(f"{high} {verb} {most} at {path}")
    return problems


def string_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    problems = count_problems(old, new, path, "minLength", "maxLength")
    if "pattern" in new and "pattern" not in old:
        problems.append(f"pattern added at {path}")
    elif "pattern" in new and old["pattern"] != new["pattern"]:
        problems.append(f"pattern changed at {path}")
    return problems


def format_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    # Not gated on "string": a format checker may be registered for any type.
    if "format" not in new:
        return []
    if "format" not in old:
        return [f"format added: {new['format']} at {path}"]
    if old["format"] != new["format"]:
        return [f"format changed: {old['format']} -> {new['format']} at {path}"]
    return []


def required_names(node: dict[str, Any]) -> list[str]:
    names = node.get("required")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def listed_properties(node: dict[str, Any]) -> dict[str, Any]:
    props = node.get("properties")
    return props if isinstance(props, dict) else {}


def pattern_properties(node: dict[str, Any]) -> dict[str, Any]:
    found = node.get("patternProperties")
    return found if isinstance(found, dict) else {}


def constraints(node: dict[str, Any], name: str, *, certain: bool) -> list[tuple[str, str, Any]]:
    """The schemas ``node`` applies to the value of property ``name``: (kind, pattern,
    schema) for its ``properties`` entry, each pattern that matches, else
    ``additionalProperties``. A pattern that cannot be read is taken to match when
    ``certain`` is False (new side: more to satisfy) and to prove nothing when it is
    True (old side: nothing known), so either way the answer stays sound."""
    found: list[tuple[str, str, Any]] = []
    listed = listed_properties(node)
    if name in listed:
        found.append(("property", "", listed[name]))
    unknown = False
    for pattern, schema in pattern_properties(node).items():
        match = matches(pattern, name)
        unknown = unknown or match is None
        if match or (match is None and not certain):
            found.append(("pattern", pattern, schema))
    if name not in listed and not found and not (unknown and certain):
        found.append(("additional", "", node.get("additionalProperties", True)))
    return found or [("anything", "", True)]


def matches(pattern: str, name: str) -> bool | None:
    """Whether ECMA-262 ``pattern`` matches ``name`` (None: not a pattern this can read)."""
    try:
        return ecma.search(pattern, name)
    except (SchemaError, TypeError):
        return None


def descends(path: str, since: str) -> bool:
    """Whether ``path`` went into a part of the document after ``since``."""
    if not path.startswith(since):
        return False
    tokens = [t for t in path[len(since) :].split("/") if t]
    i = 0
    while i < len(tokens):
        if tokens[i] in DESCENT:
            return True
        i += 2 if tokens[i] in NAMED else 1
    return False


def overlap(one: frozenset[str], two: frozenset[str]) -> bool:
    """Whether a value can have a type of both sets (every integer is a number)."""
    widen = {"integer": "number"}
    return (
        bool(one & two)
        or any(widen.get(t) in two for t in one)
        or any(widen.get(t) in one for t in two)
    )


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def is_open(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and not set(schema) - ANNOTATIONS)


def uses_unevaluated(node: dict[str, Any]) -> bool:
    # They see what every sibling and in-place subschema evaluated, so no keyword-by-
    # keyword argument holds once they are there and anything changed.
    return any(
        k in node and node[k] is not True for k in ("unevaluatedProperties", "unevaluatedItems")
    )


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 (unlike Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(json_equal, a, b))
    return type(a) is type(b) and bool(a == b)


def same_members(a: list[Any], b: list[Any]) -> bool:
    return all(any(json_equal(x, y) for y in b) for x in a) and all(
        any(json_equal(x, y) for x in a) for y in b
    )


def has_nested_id(node: Any, *, top: bool = False) -> bool:
    """Whether a subschema below the root sets ``$id`` (a new base for its refs)."""
    if isinstance(node, dict):
        if not top and isinstance(node.get("$id"), str):
            return True
        return any(
            has_nested_id(v)
            for k, v in node.items()
            if k not in ("enum", "const", "default", "examples")
        )
    if isinstance(node, list):
        return any(has_nested_id(v) for v in node)
    return False
