"""Compatibility of JSON Schema versions: can a reader of one version fail on the other's data?

``backward_problems(old, new)`` lists the ways a document valid under ``old`` may be
invalid under ``new``; an empty list means every document ``old`` accepts, ``new``
accepts too. FORWARD is the same check with the roles swapped, FULL is both, and the
``_TRANSITIVE`` modes check against every earlier version instead of only the latest.

The check is *sound*, not complete: it says "compatible" only for changes it can prove
accept no less, and reports any change it cannot judge (inside ``oneOf``, a new
``pattern``, ...), so some harmless edits are refused but no breaking one is let through.

Rules, per keyword (change from the earlier to the later schema; "yes" = compatible):

| change                                                                    | backward | forward |
|---------------------------------------------------------------------------|----------|---------|
| property added to ``required``                                            | no       | yes     |
| property removed from ``required``                                        | yes      | no      |
| type narrowed (``number`` -> ``integer``, type removed, set where absent) | no       | yes     |
| type widened (``integer`` -> ``number``, a type added, or removed)        | yes      | no      |
| type changed to an unrelated one (``string`` -> ``integer``)              | no       | no      |
| ``minimum``/``exclusiveMinimum``/``min*`` raised or added                 | no       | yes     |
| ``maximum``/``exclusiveMaximum``/``max*`` lowered or added                | no       | yes     |
| ``pattern`` or ``format`` added                                           | no       | yes     |
| ``pattern`` or ``format`` changed                                         | no       | no      |
| ``multipleOf`` finer (10 -> 5: the old one is a multiple of the new)      | yes      | no      |
| ``multipleOf`` coarser (5 -> 10) or added                                 | no       | yes     |
| ``multipleOf`` to an unrelated or a different fractional value            | no       | no      |
| ``enum`` value removed, or ``enum`` added                                 | no       | yes     |
| ``const`` added                                                           | no       | yes     |
| ``const`` changed                                                         | no       | no      |
| ``additionalProperties`` closed (true -> false or a schema)               | no       | yes     |
| property added, open content model (unless its schema is empty)           | no       | yes     |
| property added, closed content model (``additionalProperties: false``)    | yes      | no      |
| ``uniqueItems`` turned on                                                 | no       | yes     |
| ``title``/``description``/``default``/``examples``/``$comment``/``$id``   | yes      | yes     |
| a subschema replaced by an equivalent local ``$ref``                      | yes      | yes     |
| ``allOf``/``anyOf``/``oneOf``/``not``/``if``/``dependent*``/... added     | no       | yes     |
| the same changed, or ``patternProperties`` changed                        | no       | no      |
| a property's, ``items``' or ``prefixItems``' subschema changed            | recurse  | recurse |

Each row's reverse (a bound relaxed or removed, a value added to ``enum``, a property
removed from an open model or from ``required``, any keyword dropped) has the opposite
answers: compatible backward, not forward.

Paths are JSON pointers into the schema with ``$ref`` expanded: ``#/properties/age``
names that property whether it is written inline or as ``{"$ref": "#/$defs/Age"}``.
Local references (``#``, ``#/$defs/...``, ``#/definitions/...``, any JSON pointer) are
resolved against each schema's own root before comparing. One that cannot be resolved
(remote, ``$anchor``, or under a nested ``$id``) is taken as "anything" in the schema
that must accept less and as a problem in the one that must accept more. ``$schema``
draft-07 and older follow that draft: ``$ref`` hides its siblings and a list ``items``
is a tuple; otherwise Draft 2020-12 (``prefixItems``) applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeGuard
from urllib.parse import unquote

from allsource_lab.errors import InvalidArgument

__all__ = ["MODES", "backward_problems", "compatibility_problems"]

MODES: Final = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

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
        "if", "then", "else", "contains", "minContains", "maxContains",
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

_NOTHING: Final[dict[str, Any]] = {"not": {}}
_ANYTHING: Final[dict[str, Any]] = {}


def backward_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why a reader using ``new`` may fail on a document valid under ``old``.

    Each problem names the change and its path; an empty list means ``new`` accepts
    every document ``old`` accepts (backward compatible). See the module's rule table.

    >>> old = {"type": "object", "properties": {"age": {"type": "number", "minimum": 0}}}
    >>> backward_problems(old, {**old, "required": ["age"]})
    ['required property added: #/required/age']
    >>> backward_problems(old, {"type": "object", "properties": {"age": {"minimum": 18}}})
    ['minimum raised: 0 -> 18 at #/properties/age']
    >>> backward_problems(old, {"type": "object", "properties": {"age": {"type": "integer"}}})
    ['type narrowed: number -> integer at #/properties/age']
    >>> backward_problems(old, {"type": ["object", "null"]})
    []
    """
    return _Comparison(_Side.of(old), _Side.of(new)).problems(old, new, "#")


def compatibility_problems(
    mode: str, new: dict[str, Any], earlier: list[dict[str, Any]]
) -> list[str]:
    """Problems registering ``new`` after ``earlier`` (oldest first) under ``mode``.

    BACKWARD checks ``new`` against the latest earlier schema, FORWARD the latest against
    ``new`` (an old reader meets new data), FULL both; the ``_TRANSITIVE`` modes check
    every earlier schema, NONE nothing. BACKWARD problems read as ``backward_problems``
    gives them; the other modes prefix each with its direction (``forward: ...``; a
    forward problem describes the change as going from ``new`` back to the earlier
    schema) and the transitive ones also with the earlier schema it conflicts with. The
    mode is case-insensitive.

    Raises:
        InvalidArgument: ``mode`` is not one of ``MODES``.

    >>> v1 = {"properties": {"tier": {"enum": ["gold", "silver"]}}}
    >>> v2 = {"properties": {"tier": {"enum": ["silver"]}}}
    >>> compatibility_problems("FULL", v2, [v1])
    ["backward: enum narrowed: removed 'gold' at #/properties/tier"]
    >>> compatibility_problems("FORWARD", v2, [v1])
    []
    """
    name = mode.upper() if isinstance(mode, str) else ""
    if name not in MODES:
        raise InvalidArgument(f"unknown compatibility mode {mode!r}; use one of {', '.join(MODES)}")
    if name == "NONE" or not earlier:
        return []
    base = name.removesuffix("_TRANSITIVE")
    directions = ("backward", "forward") if base == "FULL" else (base.lower(),)
    numbered = list(enumerate(earlier, 1))
    against = numbered if name.endswith("_TRANSITIVE") else numbered[-1:]
    problems = []
    for number, old in against:
        for direction in directions:
            found = (
                backward_problems(old, new)
                if direction == "backward"
                else (backward_problems(new, old))
            )
            label = _label(name, direction, number, len(earlier))
            problems += [label + problem for problem in found]
    return problems


def _label(mode: str, direction: str, number: int, count: int) -> str:
    if mode == "BACKWARD":
        return ""
    if mode.endswith("_TRANSITIVE"):
        return f"{direction}, against earlier schema {number} of {count}: "
    return f"{direction}: "


@dataclass(frozen=True, slots=True)
class _Unresolved:
    """A ``$ref`` (or a non-schema) this module cannot follow; ``why`` says which."""

    why: str


@dataclass(frozen=True, slots=True)
class _Side:
    """One schema document: its root, its draft's rules, and its ``$ref`` resolution."""

    root: Schema
    legacy: bool  # draft-07 or older: $ref hides its siblings, no prefixItems
    local_refs: bool  # False when a nested $id changes what "#/..." means below it

    @classmethod
    def of(cls, root: Schema) -> _Side:
        dialect = root.get("$schema", "") if isinstance(root, dict) else ""
        legacy = isinstance(dialect, str) and any(d in dialect for d in LEGACY_DRAFTS)
        return cls(root, legacy, not _has_nested_id(root, top=True))

    def view(self, node: Any) -> Schema | _Unresolved:
        """``node`` with any local ``$ref`` replaced by what it refers to."""
        seen: list[object] = []
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            target = self._target(ref)
            if target is None or any(target is s for s in seen):
                return _Unresolved(f"$ref {ref!r} cannot be resolved")
            seen.append(target)
            rest = {k: v for k, v in node.items() if k != "$ref" and k not in ANNOTATIONS}
            if rest and not self.legacy:  # 2020-12 applies the ref *and* its siblings
                return {"allOf": [target, rest]}
            node = target
        if isinstance(node, bool | dict):
            return node
        return _Unresolved(f"{node!r} is not a schema")

    def _target(self, ref: object) -> Any:
        if not isinstance(ref, str) or not self.local_refs:
            return None
        base, _, fragment = ref.partition("#")
        root_id = self.root.get("$id", "") if isinstance(self.root, dict) else ""
        if base and base != str(root_id).partition("#")[0]:
            return None
        if not fragment:
            return self.root
        if not fragment.startswith("/"):
            return None  # a plain-name fragment ($anchor)
        node: Any = self.root
        for token in fragment[1:].split("/"):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node

    def array_model(self, node: dict[str, Any]) -> tuple[list[Any], Any, str, str]:
        """(positional schemas, schema of the rest, and the keywords naming each)."""
        items = node.get("items", True)
        if isinstance(items, list):
            return items, node.get("additionalItems", True), "items", "additionalItems"
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and not self.legacy:
            return prefix, items, "prefixItems", "items"
        return [], items, "prefixItems", "items"


class _Comparison:
    """Does ``new`` accept everything ``old`` does? One instance per pair of roots."""

    def __init__(self, old: _Side, new: _Side):
        self.old = old
        self.new = new
        # Pairs being compared right now. Meeting one again means a $ref cycle: assuming
        # it holds is sound because every lap descends into a strictly smaller document.
        # The nodes are kept so that their ids cannot be reused while in the table.
        self._active: dict[tuple[int, int], tuple[object, object]] = {}
        self._same_active: dict[tuple[int, int], tuple[object, object]] = {}

    def problems(self, old: Any, new: Any, path: str) -> list[str]:
        key = (id(old), id(new))
        if key in self._active:
            return []
        self._active[key] = (old, new)
        try:
            return self._views(self.old.view(old), self.new.view(new), path)
        finally:
            del self._active[key]

    def _views(self, old: Schema | _Unresolved, new: Schema | _Unresolved, path: str) -> list[str]:
        if old is False:
            return []
        if isinstance(new, _Unresolved):
            return [f"{new.why} at {path}; cannot prove compatibility"]
        if new is True:
            return []
        if new is False:
            return [f"schema now rejects everything at {path}"]
        was = old if isinstance(old, dict) else _ANYTHING  # True, or a ref we cannot follow
        return self._keywords(was, new, path)

    def _keywords(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        problems = [*_type_problems(old, new, path), *_value_problems(old, new, path)]
        problems += self._opaque_problems(old, new, path)
        if _uses_unevaluated(new) and not self.same(old, new):
            problems.append(f"unevaluated* keyword in use and schema changed at {path}; "
                            "cannot prove compatibility")  # fmt: skip
        problems += _format_problems(old, new, path)
        types = _types(old)
        if types is None or types & {"number", "integer"}:
            problems += _number_problems(old, new, path)
        if types is None or "string" in types:
            problems += _string_problems(old, new, path)
        if types is None or "array" in types:
            problems += self._array_problems(old, new, path)
        if types is None or "object" in types:
            problems += self._object_problems(old, new, path)
        return problems

    def _opaque_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        problems = []
        for key, value in new.items():
            if key in ANNOTATIONS or key in RULED:
                continue
            if key in CONTEXTUAL:
                problems.append(f"{key} at {path}; cannot prove compatibility")
            elif key not in old:
                problems.append(f"{key} added at {path}; cannot prove compatibility")
            elif not self._same_keyword(key, old[key], value):
                problems.append(f"{key} changed at {path}; cannot prove compatibility")
        for group in GROUPS:
            if group[0] in new and not all(self._same_member(k, old, new) for k in group):
                problems.append(f"{'/'.join(group)} changed at {path}; cannot prove compatibility")
        return problems

    def _array_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        problems = [*_count_problems(old, new, path, "minItems", "maxItems")]
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            problems.append(f"uniqueItems turned on at {path}")
        old_at, old_rest, _, _ = self.old.array_model(old)
        new_at, new_rest, at_key, rest_key = self.new.array_model(new)
        for i in range(max(len(old_at), len(new_at))):
            before = old_at[i] if i < len(old_at) else old_rest
            after = new_at[i] if i < len(new_at) else new_rest
            where = f"{path}/{at_key}/{i}" if i < len(new_at) else f"{path}/{rest_key}"
            problems += self.problems(before, after, where)
        return problems + self.problems(old_rest, new_rest, f"{path}/{rest_key}")

    def _object_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        had = _required(old)
        problems = [
            f"required property added: {path}/required/{_escape(name)}"
            for name in _required(new)
            if name not in had
        ]
        problems += _count_problems(old, new, path, "minProperties", "maxProperties")
        problems += self._pattern_problems(old, new, path)
        names = dict.fromkeys([*_properties(old), *_properties(new)])
        for name in names:
            problems += self._property_problems(old, new, name, path)
        return problems + self._additional_problems(old, new, path)

    def _property_problems(
        self, old: dict[str, Any], new: dict[str, Any], name: str, path: str
    ) -> list[str]:
        before, after = _property_schema(old, name), _property_schema(new, name)
        where = f"{path}/properties/{_escape(name)}"
        found = self.problems(before, after, where)
        if found and name not in _properties(old) and _is_open(before):
            # Old documents may carry this name with any value (Confluent's
            # PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL); close the old model to add freely.
            return [f"property added to open content model at {where}"]
        if found and name not in _properties(new) and after is False:
            return [f"property removed from closed content model at {where}"]
        return found

    def _pattern_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        before = old.get("patternProperties") or {}
        after = new.get("patternProperties") or {}
        if set(before) == set(after):
            return [
                problem
                for pattern, schema in after.items()
                for problem in self.problems(
                    before[pattern], schema, f"{path}/patternProperties/{_escape(pattern)}"
                )
            ]
        if not after and new.get("additionalProperties", True) is True:
            return []  # every name not listed in `properties` is free in `new`
        return [f"patternProperties changed at {path}; cannot prove compatibility"]

    def _additional_problems(
        self, old: dict[str, Any], new: dict[str, Any], path: str
    ) -> list[str]:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        found = self.problems(before, after, f"{path}/additionalProperties")
        if found and (_is_open(before) or after is False):
            return [f"additionalProperties closed at {path}"]
        return found

    # -- equivalence: for keywords that are only judged as "unchanged or not" ------------

    def same(self, old: Any, new: Any) -> bool:
        """Whether two schemas (``old`` in the old root, ``new`` in the new) are the same."""
        key = (id(old), id(new))
        if key in self._same_active:
            return True
        self._same_active[key] = (old, new)
        try:
            before, after = self.old.view(old), self.new.view(new)
            if isinstance(before, _Unresolved) or isinstance(after, _Unresolved):
                return before == after
            before = _NOTHING if before is False else _ANYTHING if before is True else before
            after = _NOTHING if after is False else _ANYTHING if after is True else after
            keys = set(before) - ANNOTATIONS
            if keys != set(after) - ANNOTATIONS:
                return False
            return all(self._same_keyword(k, before[k], after[k]) for k in keys)
        finally:
            del self._same_active[key]

    def _same_keyword(self, key: str, old: Any, new: Any) -> bool:
        if key in SCHEMA_LISTS and isinstance(old, list) and isinstance(new, list):
            return len(old) == len(new) and all(map(self.same, old, new))
        if key in SCHEMA_VALUED and not isinstance(old, list) and not isinstance(new, list):
            return self.same(old, new)
        if key in SCHEMA_MAPS and isinstance(old, dict) and isinstance(new, dict):
            return old.keys() == new.keys() and all(
                _json_equal(old[k], new[k])
                if isinstance(new[k], list)
                else self.same(old[k], new[k])
                for k in new
            )
        if key in UNORDERED and isinstance(old, list) and isinstance(new, list):
            return _same_members(old, new)
        return _json_equal(old, new)

    def _same_member(self, key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        if key not in old or key not in new:
            return key not in old and key not in new
        return self._same_keyword(key, old[key], new[key])


# -- rules on one keyword or a family of them -------------------------------------------


def _types(node: dict[str, Any]) -> frozenset[str] | None:
    """The JSON types a node allows, or None for any."""
    declared = node.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(t for t in declared if isinstance(t, str))
    return None


def _show_type(node: dict[str, Any]) -> str:
    declared = node.get("type")
    if isinstance(declared, list):
        return "[" + ", ".join(map(str, declared)) + "]"
    return "any" if declared is None else str(declared)


def _type_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    after = _types(new)
    if after is None:
        return []
    before = _types(old)
    if before is None:
        return [f"type narrowed: any -> {_show_type(new)} at {path}"]
    lost = {t for t in before if t not in after and not (t == "integer" and "number" in after)}
    if not lost:
        return []
    # "number" -> "integer" keeps the integers, so it narrows rather than changes.
    kept = (before - lost) or (before & {"number"} and after & {"integer"})
    verb = "narrowed" if kept else "changed"
    return [f"type {verb}: {_show_type(old)} -> {_show_type(new)} at {path}"]


def _allowed_values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return values if isinstance(values, list) else None


def _value_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    allowed = _allowed_values(old)
    problems = []
    if isinstance(new.get("enum"), list):
        if allowed is None:
            problems.append(f"enum added at {path}")
        else:
            gone = [v for v in allowed if not any(_json_equal(v, w) for w in new["enum"])]
            if gone:
                problems.append(f"enum narrowed: removed {', '.join(map(repr, gone))} at {path}")
    if "const" in new:
        const = new["const"]
        if allowed is None:
            problems.append(f"const added: {const!r} at {path}")
        elif not all(_json_equal(v, const) for v in allowed):
            was = repr(old["const"]) if "const" in old else f"enum {allowed!r}"
            problems.append(f"const changed: {was} -> {const!r} at {path}")
    return problems


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


BOUNDS: Final = (
    ((("minimum", False), ("exclusiveMinimum", True)), 1, "raised"),
    ((("maximum", False), ("exclusiveMaximum", True)), -1, "lowered"),
)


def _number_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    problems = _multiple_problems(old, new, path)
    for keys, sign, verb in BOUNDS:
        tightest = _tightest(old, keys, sign)
        for key, exclusive in keys:
            value = new.get(key)
            if not _is_number(value):
                continue
            if tightest is None:
                problems.append(f"{key} added: {value} at {path}")
                continue
            was, was_exclusive, was_key = tightest
            if sign * was < sign * value or (was == value and exclusive and not was_exclusive):
                shown = str(was) if was_key == key else f"{was} ({was_key})"
                problems.append(f"{key} {verb}: {shown} -> {value} at {path}")
    return problems


def _tightest(
    node: dict[str, Any], keys: Iterable[tuple[str, bool]], sign: int
) -> tuple[Any, bool, str] | None:
    """The strictest of a node's lower (sign 1) or upper (sign -1) bounds."""
    best: tuple[Any, bool, str] | None = None
    for key, exclusive in keys:
        value = node.get(key)
        if not _is_number(value):
            continue  # also skips draft-04's boolean exclusiveMinimum
        if best is None or sign * value > sign * best[0] or (value == best[0] and exclusive):
            best = (value, exclusive, key)
    return best


def _multiple_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    after = new.get("multipleOf")
    if not _is_number(after):
        return []
    before = old.get("multipleOf")
    if not _is_number(before):
        return [f"multipleOf added: {after} at {path}"]
    if isinstance(before, int) and isinstance(after, int) and before % after == 0:
        return []
    # A fractional divisor must stay as it is: validators divide in floating point, so
    # 0.6 passes multipleOf 0.3 but fails 0.1 (0.6 / 0.1 == 5.999999999999999).
    if type(before) is type(after) and before == after:
        return []
    return [f"multipleOf changed: {before} -> {after} at {path}"]


def _count_problems(
    old: dict[str, Any], new: dict[str, Any], path: str, low: str, high: str
) -> list[str]:
    problems = []
    least, most = new.get(low), new.get(high)
    if _is_number(least) and least > old.get(low, 0):
        verb = f"raised: {old[low]} ->" if low in old else "added:"
        problems.append(f"{low} {verb} {least} at {path}")
    if _is_number(most) and (high not in old or most < old[high]):
        verb = f"lowered: {old[high]} ->" if high in old else "added:"
        problems.append(f"{high} {verb} {most} at {path}")
    return problems


def _string_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    problems = _count_problems(old, new, path, "minLength", "maxLength")
    if "pattern" in new and "pattern" not in old:
        problems.append(f"pattern added at {path}")
    elif "pattern" in new and old["pattern"] != new["pattern"]:
        problems.append(f"pattern changed at {path}")
    return problems


def _format_problems(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    # Not gated on "string": a format checker may be registered for any type.
    if "format" not in new:
        return []
    if "format" not in old:
        return [f"format added: {new['format']} at {path}"]
    if old["format"] != new["format"]:
        return [f"format changed: {old['format']} -> {new['format']} at {path}"]
    return []


def _required(node: dict[str, Any]) -> list[str]:
    names = node.get("required")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _properties(node: dict[str, Any]) -> dict[str, Any]:
    props = node.get("properties")
    return props if isinstance(props, dict) else {}


def _property_schema(node: dict[str, Any], name: str) -> Any:
    """The schema a node applies to property ``name`` beyond its patternProperties.

    A name matched by a pattern gets ``True``: the pattern's own schema is compared on
    its own, and the pattern sets of the two schemas are equal or judged as a change.
    """
    props = _properties(node)
    if name in props:
        return props[name]
    if any(_matches(pattern, name) for pattern in node.get("patternProperties") or {}):
        return True
    return node.get("additionalProperties", True)


def _matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return True  # an ECMA-only regex: assume it may match


def _is_open(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and not set(schema) - ANNOTATIONS)


def _uses_unevaluated(node: dict[str, Any]) -> bool:
    # They see what every sibling and in-place subschema evaluated, so no keyword-by-
    # keyword argument holds once they are there and anything changed.
    return any(
        k in node and node[k] is not True for k in ("unevaluatedProperties", "unevaluatedItems")
    )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 (unlike Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_json_equal, a, b))
    return type(a) is type(b) and bool(a == b)


def _same_members(a: list[Any], b: list[Any]) -> bool:
    return all(any(_json_equal(x, y) for y in b) for x in a) and all(
        any(_json_equal(x, y) for x in a) for y in b
    )


def _has_nested_id(node: Any, *, top: bool = False) -> bool:
    """Whether a subschema below the root sets ``$id`` (a new base for its refs)."""
    if isinstance(node, dict):
        if not top and isinstance(node.get("$id"), str):
            return True
        return any(
            _has_nested_id(v)
            for k, v in node.items()
            if k not in ("enum", "const", "default", "examples")
        )
    if isinstance(node, list):
        return any(_has_nested_id(v) for v in node)
    return False
