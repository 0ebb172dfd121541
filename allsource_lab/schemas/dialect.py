"""Which draft a JSON Schema is written in, and the walk over its subschemas.

A schema names its draft with ``$schema``. One without it is read as Draft 2020-12,
unless it uses what only draft-07 has — ``items`` as a list (a tuple), ``additionalItems``,
``dependencies`` or ``definitions`` — as schema registries do: then it is read as
draft-07, where those mean what its author meant (in 2020-12 a list ``items`` is invalid
and the others are unknown words that check nothing). A schema that also uses what only
2019-09/2020-12 have (``prefixItems``, ``$defs``, ``dependentSchemas``,
``unevaluatedProperties``, ``$dynamicRef``, ...) is ambiguous, and :func:`draft` says so
rather than guess.

:func:`subschemas` visits the schemas inside a schema by keyword, so that a property
*named* ``items`` or an ``enum`` value that looks like a schema is never taken for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from allsource_lab.errors import SchemaError

__all__ = ["DRAFT_7", "DRAFT_2020_12", "children", "draft", "is_draft_7", "subschemas"]

DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
DRAFT_7: Final = "http://json-schema.org/draft-07/schema#"
# $schema values read as each draft.
SPELLINGS: Final = {
    DRAFT_2020_12: DRAFT_2020_12,
    DRAFT_2020_12 + "#": DRAFT_2020_12,
    DRAFT_7: DRAFT_7,
    DRAFT_7.rstrip("#"): DRAFT_7,
}

# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
SCHEMA_VALUED: Final = frozenset(
    {
        "not", "if", "then", "else", "additionalProperties", "additionalItems", "contains",
        "propertyNames", "unevaluatedProperties", "unevaluatedItems", "items",
        "contentSchema",
    }
)  # fmt: skip
SCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
SCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
     "dependencies"}
)  # fmt: skip

_ONLY_DRAFT_7: Final = ("additionalItems", "dependencies", "definitions")
_ONLY_2020_12: Final = (
    "prefixItems", "$defs", "dependentSchemas", "dependentRequired", "unevaluatedProperties",
    "unevaluatedItems", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
    "$recursiveAnchor", "$anchor", "minContains", "maxContains",
)  # fmt: skip


def subschemas(schema: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object (sub)schema of ``schema`` with its JSON pointer, the root first.

    >>> [p for p, _ in subschemas({"properties": {"items": {"enum": [{"type": 1}]}}})]
    ['#', '#/properties/items']
    """
    if not isinstance(schema, dict):
        return
    yield path, schema
    for where, child in children(schema, path):
        yield from subschemas(child, where)


def children(schema: dict[str, Any], path: str = "#") -> Iterator[tuple[str, Any]]:
    """The schemas directly inside ``schema`` (objects or booleans), with their pointers.

    >>> list(children({"not": True, "allOf": [{}], "dependencies": {"a": ["b"]}}))
    [('#/not', True), ('#/allOf/0', {})]
    """
    for key, value in schema.items():
        where = f"{path}/{_escape(key)}"
        if key in SCHEMA_LISTS and isinstance(value, list):
            for i, item in enumerate(value):
                yield f"{where}/{i}", item
        elif key in SCHEMA_VALUED:
            if isinstance(value, dict | bool):
                yield where, value
        elif key in SCHEMA_MAPS and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict | bool):
                    yield f"{where}/{_escape(name)}", item


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _markers(schema: Any) -> tuple[list[str], list[str]]:
    """(where draft-07-only keywords are used, where 2020-12-only ones are)."""
    legacy: list[str] = []
    modern: list[str] = []
    for path, node in subschemas(schema):
        if isinstance(node.get("items"), list):
            legacy.append(f"items as a list at {path}/items")
        legacy += [f"{key} at {path}" for key in _ONLY_DRAFT_7 if key in node]
        modern += [f"{key} at {path}" for key in _ONLY_2020_12 if key in node]
    return legacy, modern


def draft(schema: Any, *, strict: bool = True) -> str:
    """The draft to read ``schema`` with: ``DRAFT_2020_12`` or ``DRAFT_7``.

    ``$schema`` decides when present (the caller checks it is one of the two). Without
    it, a schema that uses draft-07-only keywords is draft-07, any other 2020-12. With
    ``strict=False`` an ambiguous schema is read as 2020-12 instead of refused (for
    schemas stored before the store told the drafts apart).

    Raises:
        SchemaError: no ``$schema``, and keywords of both drafts (strict only).

    >>> draft({"items": [{"type": "string"}], "additionalItems": False}) == DRAFT_7
    True
    >>> draft({"type": "object"}) == DRAFT_2020_12
    True
    >>> draft({"definitions": {}, "$defs": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    allsource_lab.errors.SchemaError: the schema has no $schema and is ambiguous: it uses ...
    """
    if isinstance(schema, dict) and "$schema" in schema:
        declared = schema["$schema"]
        return SPELLINGS.get(declared, declared) if isinstance(declared, str) else DRAFT_2020_12
    legacy, modern = _markers(schema)
    if legacy and modern:
        if not strict:
            return DRAFT_2020_12
        raise SchemaError(
            "the schema has no $schema and is ambiguous: it uses draft-07 keywords "
            f"({', '.join(legacy[:3])}) and 2020-12 ones ({', '.join(modern[:3])}); add "
            f'"$schema": "{DRAFT_7}" or "$schema": "{DRAFT_2020_12}" to say which it is'
        )
    return DRAFT_7 if legacy else DRAFT_2020_12


def is_draft_7(schema: Any) -> bool:
    """Whether ``schema`` is read as draft-07 (never raises: ambiguous reads as 2020-12).

    >>> is_draft_7({"dependencies": {"a": ["b"]}}), is_draft_7({"$defs": {}})
    (True, False)
    """
    return draft(schema, strict=False) == DRAFT_7
