"""Compatibility of JSON Schema versions: can a reader of one version fail on the other's data?

``backward_problems(old, new)`` lists the ways a document valid under ``old`` may be
invalid under ``new``; an empty list means every document ``old`` accepts, ``new``
accepts too. FORWARD is the same check with the roles swapped, FULL is both, and the
``_TRANSITIVE`` modes check against every earlier version instead of only the latest.

The check is *sound*, not complete: it says "compatible" only for changes it can prove
accept no less, and reports any change it cannot judge (a new ``pattern``, an ``if``,
a ``oneOf`` branch that may overlap another, ...), so some harmless edits are refused but
no breaking one is let through. ``backward_verdict`` and ``judge`` also say which rule
proved each change that took more than seeing it unchanged. This module is the public
face and the modes; the proof walks the two schemas in
:mod:`allsource_lab.schemas.comparison`, with the per-keyword rules of
:mod:`allsource_lab.schemas.keyword_rules`.

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
| ``anyOf`` branch added or widened (each old branch within a new one)      | yes      | no      |
| ``oneOf`` branch added, disjoint from the others (type, enum/const, tag)  | yes      | no      |
| ``oneOf`` branch added that may overlap another                           | no       | no      |
| ``type`` widened into ``oneOf``/``anyOf`` with the old type as a branch   | yes      | no      |
| ``allOf`` members reordered                                               | yes      | yes     |
| an ``allOf`` member widened or removed                                    | yes      | no      |
| ``not`` narrowed (``not: number`` -> ``not: integer``)                    | yes      | no      |
| ``not`` added that matches no document of the old schema                  | yes      | yes     |
| a ``dependentRequired``/``dependentSchemas``/``dependencies`` entry gone  | yes      | no      |
| a closed model's property moved into a wider ``patternProperties``        | yes      | no      |
| ``patternProperties`` added to a closed model                             | yes      | no      |
| ``additionalProperties: false`` -> a schema (or ``true``)                 | yes      | no      |
| ``if``/``then``/``else``, ``contains``, ``propertyNames``, ... added      | no       | yes     |
| the same changed                                                          | no       | no      |
| a property's, ``items``' or ``prefixItems``' subschema changed            | recurse  | recurse |

Each row's reverse (a bound relaxed or removed, a value added to ``enum``, a property
removed from an open model or from ``required``, any keyword dropped) has the opposite
answers: compatible backward, not forward.

Paths are JSON pointers into the schema with ``$ref`` expanded: ``#/properties/age``
names that property whether it is written inline or as ``{"$ref": "#/$defs/Age"}``.
Local references (``#``, ``#/$defs/...``, ``#/definitions/...``, any JSON pointer) are
resolved against each schema's own root before comparing. One that cannot be resolved
(remote, ``$anchor``, or under a nested ``$id``) is taken as "anything" in the schema
that must accept less and as a problem in the one that must accept more; a ``$ref``
cycle met again without going into a part of the document proves nothing. ``$schema``
draft-07 and older, or no ``$schema`` and draft-07-only keywords
(:func:`dialect.draft`), follow that draft: ``$ref`` hides its siblings, a list
``items`` is a tuple and ``dependencies`` is read; otherwise Draft 2020-12 applies.
Patterns are ECMA-262 (:mod:`allsource_lab.schemas.ecma`), to tell which property names
a ``patternProperties`` entry matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from allsource_lab.errors import InvalidArgument
from allsource_lab.schemas.comparison import Comparison, Side

__all__ = [
    "MODES",
    "Verdict",
    "backward_problems",
    "backward_verdict",
    "compatibility_problems",
    "judge",
]

MODES: Final = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


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
    return Comparison(Side.of(old), Side.of(new)).problems(old, new, "#")


def backward_verdict(old: dict[str, Any], new: dict[str, Any]) -> Verdict:
    """``backward_problems`` with the rules that decided: which rule of the table proved
    each change that only a rule beyond "unchanged" could prove.

    >>> verdict = backward_verdict({"type": "string"},
    ...                            {"oneOf": [{"type": "number"}, {"type": "string"}]})
    >>> verdict.problems, verdict.rules[0].split(":")[0]
    ([], 'oneOf where there was none')
    """
    comparison = Comparison(Side.of(old), Side.of(new))
    problems = comparison.problems(old, new, "#")
    return Verdict(problems, [] if problems else comparison.rules)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the check found: ``problems`` (empty: compatible) and the ``rules`` that
    proved the changes compatible (each with the path it applied at)."""

    problems: list[str]
    rules: list[str]


def judge(mode: str, new: dict[str, Any], earlier: list[dict[str, Any]]) -> Verdict:
    """``compatibility_problems`` with the rules that decided, labelled as its problems.

    Raises:
        InvalidArgument: ``mode`` is not one of ``MODES``.

    >>> v1 = {"type": "object", "dependentRequired": {"card": ["billing"]}}
    >>> judge("BACKWARD", {"type": "object"}, [v1])
    Verdict(problems=[], rules=['dependentRequired entry removed: card at #'])
    """
    name = mode.upper() if isinstance(mode, str) else ""
    if name not in MODES:
        raise InvalidArgument(f"unknown compatibility mode {mode!r}; use one of {', '.join(MODES)}")
    if name == "NONE" or not earlier:
        return Verdict([], [])
    base = name.removesuffix("_TRANSITIVE")
    directions = ("backward", "forward") if base == "FULL" else (base.lower(),)
    numbered = list(enumerate(earlier, 1))
    against = numbered if name.endswith("_TRANSITIVE") else numbered[-1:]
    problems: list[str] = []
    rules: list[str] = []
    for number, old in against:
        for direction in directions:
            found = (
                backward_verdict(old, new)
                if direction == "backward"
                else (backward_verdict(new, old))
            )
            label = _label(name, direction, number, len(earlier))
            problems += [label + problem for problem in found.problems]
            rules += [label + rule for rule in found.rules]
    return Verdict(problems, [] if problems else rules)


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
    return judge(mode, new, earlier).problems


def _label(mode: str, direction: str, number: int, count: int) -> str:
    if mode == "BACKWARD":
        return ""
    if mode.endswith("_TRANSITIVE"):
        return f"{direction}, against earlier schema {number} of {count}: "
    return f"{direction}: "
