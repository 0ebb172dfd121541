"""JSON Schema compatibility: each rule in both directions, the modes, $ref, and soundness."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import jsonschema.validators
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allsource_lab.schemas.compat import (
    MODES,
    backward_problems,
    backward_verdict,
    compatibility_problems,
    judge,
)

OBJ = {"type": "object"}


def props(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


# (old, new, the problems going old -> new); going new -> old must be compatible.
ONE_WAY = {
    "required added": (
        props(email={"type": "string"}),
        {**props(email={"type": "string"}), "required": ["email"]},
        ["required property added: #/required/email"],
    ),
    "number to integer": (
        props(age={"type": "number"}),
        props(age={"type": "integer"}),
        ["type narrowed: number -> integer at #/properties/age"],
    ),
    "type removed from a list": (
        props(x={"type": ["string", "null"]}),
        props(x={"type": "string"}),
        ["type narrowed: [string, null] -> string at #/properties/x"],
    ),
    "type where there was none": (
        {},
        {"type": "string"},
        ["type narrowed: any -> string at #"],
    ),
    "minimum raised": (
        props(age={"type": "integer", "minimum": 0}),
        props(age={"type": "integer", "minimum": 18}),
        ["minimum raised: 0 -> 18 at #/properties/age"],
    ),
    "minimum added": (
        {"type": "number"},
        {"type": "number", "minimum": 1},
        ["minimum added: 1 at #"],
    ),
    "exclusiveMinimum raised": (
        {"exclusiveMinimum": 1},
        {"exclusiveMinimum": 2},
        ["exclusiveMinimum raised: 1 -> 2 at #"],
    ),
    "minimum made exclusive": (
        {"minimum": 5},
        {"exclusiveMinimum": 5},
        ["exclusiveMinimum raised: 5 (minimum) -> 5 at #"],
    ),
    "maximum lowered": ({"maximum": 10}, {"maximum": 9.5}, ["maximum lowered: 10 -> 9.5 at #"]),
    "maximum added": ({}, {"maximum": 10}, ["maximum added: 10 at #"]),
    "exclusiveMaximum lowered": (
        {"exclusiveMaximum": 10},
        {"exclusiveMaximum": 3},
        ["exclusiveMaximum lowered: 10 -> 3 at #"],
    ),
    "minLength raised": ({"minLength": 1}, {"minLength": 3}, ["minLength raised: 1 -> 3 at #"]),
    "maxLength added": ({}, {"maxLength": 20}, ["maxLength added: 20 at #"]),
    "minItems raised": ({"minItems": 0}, {"minItems": 2}, ["minItems raised: 0 -> 2 at #"]),
    "maxItems lowered": ({"maxItems": 5}, {"maxItems": 4}, ["maxItems lowered: 5 -> 4 at #"]),
    "minProperties added": ({}, {"minProperties": 1}, ["minProperties added: 1 at #"]),
    "maxProperties lowered": (
        {"maxProperties": 3},
        {"maxProperties": 2},
        ["maxProperties lowered: 3 -> 2 at #"],
    ),
    "pattern added": (
        props(code={"type": "string"}),
        props(code={"type": "string", "pattern": "^[A-Z]+$"}),
        ["pattern added at #/properties/code"],
    ),
    "format added": (
        {"type": "string"},
        {"type": "string", "format": "email"},
        ["format added: email at #"],
    ),
    "multipleOf coarser": (
        {"multipleOf": 5},
        {"multipleOf": 10},
        ["multipleOf changed: 5 -> 10 at #"],
    ),
    "multipleOf added": ({}, {"multipleOf": 5}, ["multipleOf added: 5 at #"]),
    "enum value removed": (
        props(tier={"enum": ["gold", "silver"]}),
        props(tier={"enum": ["silver"]}),
        ["enum narrowed: removed 'gold' at #/properties/tier"],
    ),
    "enum added": ({"type": "string"}, {"type": "string", "enum": ["a"]}, ["enum added at #"]),
    "const added": (
        {"type": "string"},
        {"type": "string", "const": "x"},
        ["const added: 'x' at #"],
    ),
    "additionalProperties false added": (
        OBJ,
        {**OBJ, "additionalProperties": False},
        ["additionalProperties closed at #"],
    ),
    "additionalProperties schema where it was true": (
        {**OBJ, "additionalProperties": True},
        {**OBJ, "additionalProperties": {"type": "string"}},
        ["additionalProperties closed at #"],
    ),
    "property removed from a closed model": (
        {**props(a={}, b={"type": "string"}), "additionalProperties": False},
        {**props(a={}), "additionalProperties": False},
        ["property removed from closed content model at #/properties/b"],
    ),
    "property added to an open model": (
        props(a={}),
        props(a={}, b={"type": "string"}),
        ["property added to open content model at #/properties/b"],
    ),
    "uniqueItems turned on": (
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        ["uniqueItems turned on at #"],
    ),
    "nested property narrowed": (
        props(address=props(zip={"type": "string"})),
        props(address=props(zip={"type": "string", "maxLength": 5})),
        ["maxLength added: 5 at #/properties/address/properties/zip"],
    ),
    "items narrowed": (
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": {"type": "integer"}},
        ["type narrowed: number -> integer at #/items"],
    ),
    "prefixItems added": (
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "number"}},
        ["type narrowed: number -> integer at #/prefixItems/0"],
    ),
    "draft-07 tuple items closed": (
        {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "string"}],
            "additionalItems": False,
        },
        ["schema now rejects everything at #/additionalItems"],
    ),
    "a property may no longer appear": (
        props(a={"type": "string"}),
        props(a=False),
        ["schema now rejects everything at #/properties/a"],
    ),
    "oneOf added": (
        {},
        {"oneOf": [{"type": "string"}, {"type": "number"}]},
        ["type narrowed: any -> string at #/oneOf/0"],
    ),
    "not added": ({}, {"not": {"type": "null"}}, ["not added at #; cannot prove compatibility"]),
    "if added": (
        OBJ,
        {**OBJ, "if": {"required": ["a"]}, "then": {"required": ["b"]}},
        ["if/then/else changed at #; cannot prove compatibility"],
    ),
}


@pytest.mark.parametrize(("old", "new", "problems"), ONE_WAY.values(), ids=ONE_WAY.keys())
def test_a_narrowing_is_a_backward_problem_and_its_reverse_is_not(old, new, problems):
    assert backward_problems(old, new) == problems
    if problems:
        assert backward_problems(new, old) == []


def test_pattern_properties_added_to_a_closed_model_widen_and_their_schemas_recurse():
    closed = {**OBJ, "additionalProperties": False}
    with_patterns = {**closed, "patternProperties": {"^x-": {"type": "number"}}}
    assert backward_problems(closed, with_patterns) == []  # names matching ^x- now allowed
    assert backward_problems(with_patterns, closed) == [
        "patternProperties '^x-' removed at #: schema now rejects everything at "
        "#/additionalProperties"
    ]
    narrowed = {**closed, "patternProperties": {"^x-": {"type": "integer"}}}
    assert backward_problems(with_patterns, narrowed) == [
        "type narrowed: number -> integer at #/patternProperties/^x-"
    ]
    assert backward_problems(narrowed, with_patterns) == []


@pytest.mark.parametrize(
    ("old", "new", "forth", "back"),
    [
        ({"type": "string"}, {"type": "integer"}, "type changed: string -> integer at #",
         "type changed: integer -> string at #"),
        (props(code={"pattern": "^a"}), props(code={"pattern": "^b"}),
         "pattern changed at #/properties/code", "pattern changed at #/properties/code"),
        ({"format": "date"}, {"format": "date-time"}, "format changed: date -> date-time at #",
         "format changed: date-time -> date at #"),
        ({"multipleOf": 5}, {"multipleOf": 7}, "multipleOf changed: 5 -> 7 at #",
         "multipleOf changed: 7 -> 5 at #"),
        ({"const": "a"}, {"const": "b"}, "const changed: 'a' -> 'b' at #",
         "const changed: 'b' -> 'a' at #"),
        ({"anyOf": [{"type": "string"}]}, {"anyOf": [{"type": "null"}]},
         "type changed: string -> null at #/anyOf/0",
         "type changed: null -> string at #/anyOf/0"),
    ],
)  # fmt: skip
def test_a_change_that_is_neither_wider_nor_narrower_fails_both_ways(old, new, forth, back):
    assert backward_problems(old, new) == [forth]
    assert backward_problems(new, old) == [back]


def test_a_finer_multiple_of_is_compatible_but_a_fractional_one_must_not_change():
    assert backward_problems({"multipleOf": 10}, {"multipleOf": 5}) == []
    # Why fractional divisors are compared only for equality: the validator disagrees.
    assert jsonschema.Draft202012Validator({"multipleOf": 0.3}).is_valid(0.6)
    assert not jsonschema.Draft202012Validator({"multipleOf": 0.1}).is_valid(0.6)
    assert backward_problems({"multipleOf": 0.3}, {"multipleOf": 0.1}) == [
        "multipleOf changed: 0.3 -> 0.1 at #"
    ]
    assert backward_problems({"multipleOf": 0.5}, {"multipleOf": 0.5}) == []


def test_annotations_never_break_compatibility():
    old = {"title": "A", "description": "x", "$comment": "c", "default": 1, "examples": [1]}
    new = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/a.json",
        "title": "B",
        "default": 2,
        "examples": [2, 3],
        "deprecated": True,
    }
    assert backward_problems(old, new) == backward_problems(new, old) == []


def test_unchanged_undecidable_keywords_are_fine_and_removed_ones_widen():
    old = {"oneOf": [{"type": "string"}, {"type": "integer"}], "not": {"const": 3}}
    assert backward_problems(old, copy.deepcopy(old)) == []
    assert backward_problems(old, {}) == []


def test_a_type_keyword_only_applies_to_its_own_type():
    # A string-only schema accepts no numbers, so number bounds cannot narrow it.
    assert backward_problems({"type": "string"}, {"type": "string", "minimum": 3}) == []
    assert backward_problems({"type": ["string", "integer"]}, {"minimum": 3}) == [
        "minimum added: 3 at #"
    ]


def test_a_required_property_that_was_already_required_is_not_reported():
    old = {**props(a={}, b={}), "required": ["a"]}
    new = {**props(a={}, b={}), "required": ["b", "a"]}
    assert backward_problems(old, new) == ["required property added: #/required/b"]


def test_escaped_property_names_in_paths():
    old = props(**{"a/b": {"type": "number"}, "c~d": {}})
    new = props(**{"a/b": {"type": "integer"}, "c~d": {}})
    assert backward_problems(old, new) == ["type narrowed: number -> integer at #/properties/a~1b"]
    assert backward_problems(OBJ, {**OBJ, "required": ["c~d"]}) == [
        "required property added: #/required/c~0d"
    ]


# -- $ref ---------------------------------------------------------------------------------

INLINE = props(address=props(zip={"type": "string"}))
WITH_DEFS = {
    **props(address={"$ref": "#/$defs/Address"}),
    "$defs": {"Address": props(zip={"$ref": "#/$defs/Zip"}), "Zip": {"type": "string"}},
}
WITH_DEFINITIONS = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    **props(address={"$ref": "#/definitions/Address"}),
    "definitions": {"Address": props(zip={"type": "string"})},
}


@pytest.mark.parametrize("refs", [WITH_DEFS, WITH_DEFINITIONS], ids=["$defs", "definitions"])
def test_replacing_a_subschema_by_an_equivalent_ref_is_no_change(refs):
    assert backward_problems(INLINE, refs) == backward_problems(refs, INLINE) == []


def test_a_change_behind_a_ref_is_reported_at_its_expanded_path():
    narrowed = copy.deepcopy(WITH_DEFS)
    narrowed["$defs"]["Zip"]["maxLength"] = 5
    assert backward_problems(INLINE, narrowed) == [
        "maxLength added: 5 at #/properties/address/properties/zip"
    ]
    assert backward_problems(narrowed, INLINE) == []


def test_undecidable_keywords_compare_through_refs():
    inline = {"oneOf": [{"type": "string"}, {"type": "null"}]}
    by_ref = {
        "oneOf": [{"$ref": "#/$defs/s"}, {"type": "null"}],
        "$defs": {"s": {"type": "string"}},
    }
    assert backward_problems(inline, by_ref) == backward_problems(by_ref, inline) == []
    other = {"oneOf": [{"$ref": "#/$defs/s"}, {"type": "null"}], "$defs": {"s": {"type": "number"}}}
    assert backward_problems(by_ref, other) == ["type changed: string -> number at #/oneOf/0"]


def tree(leaf_type: str) -> dict[str, Any]:
    node = {**props(value={"type": leaf_type}, children={"type": "array", "items": {"$ref": "#"}})}
    return node


def test_recursive_refs_terminate_and_are_checked():
    assert backward_problems(tree("integer"), tree("number")) == []
    assert backward_problems(tree("number"), tree("integer")) == [
        "type narrowed: number -> integer at #/properties/value",
        "type narrowed: number -> integer at #/properties/children/items/properties/value",
    ]
    loop = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    assert backward_problems({}, loop) == [
        "$ref '#/$defs/a' cannot be resolved at #; cannot prove compatibility"
    ]


def test_an_unresolvable_ref_is_anything_in_the_old_schema_and_a_problem_in_the_new():
    remote = props(a={"$ref": "https://example.com/a.json"})
    assert backward_problems(remote, props(a={})) == []
    assert backward_problems(props(a={}), remote) == [
        "$ref 'https://example.com/a.json' cannot be resolved at #/properties/a; "
        "cannot prove compatibility"
    ]


def test_ref_siblings_apply_in_2020_12_but_not_in_draft_7():
    defs = {"$defs": {"s": {"type": "string"}}}
    plain = {**defs, **props(a={"$ref": "#/$defs/s"})}
    bounded = {**defs, **props(a={"$ref": "#/$defs/s", "maxLength": 3})}
    assert backward_problems(plain, bounded) == ["maxLength added: 3 at #/properties/a/allOf/1"]
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#"}
    assert backward_problems({**draft7, **plain}, {**draft7, **bounded}) == []


def test_unevaluated_properties_make_any_change_a_problem():
    old = {**props(a={}, b={}), "unevaluatedProperties": False}
    new = {**props(a={}), "unevaluatedProperties": False}  # b is no longer evaluated
    assert backward_problems(old, new) == [
        "unevaluated* keyword in use and schema changed at #; cannot prove compatibility"
    ]
    assert backward_problems(old, copy.deepcopy(old)) == []


def test_a_property_added_with_an_empty_schema_to_an_open_model_is_fine():
    assert backward_problems(props(a={}), props(a={}, b={"description": "free"})) == []


def test_adding_a_property_to_a_closed_model_is_backward_but_not_forward_compatible():
    v1 = {**props(name={"type": "string"}), "additionalProperties": False}
    v2 = {**props(name={"type": "string"}, email={"type": "string"}), "additionalProperties": False}
    assert compatibility_problems("BACKWARD", v2, [v1]) == []
    assert compatibility_problems("FORWARD", v2, [v1]) == [
        "forward: property removed from closed content model at #/properties/email"
    ]


# -- harmless evolutions that schema registries accept -------------------------------------

DRAFT7 = "http://json-schema.org/draft-07/schema#"
CLOSED_X = {"properties": {"x-a": {"type": "string"}}, "additionalProperties": False}
# (old, new, the rule that decides, a document only the new schema accepts). Each is
# compatible going old -> new (by that rule) and breaking going new -> old.
HARMLESS = {
    "anyOf branch added": (
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        "anyOf: every earlier branch lies within a later one",
        None,
    ),
    "anyOf branch widened and reordered": (
        {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]},
        {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "anyOf: every earlier branch lies within a later one",
        "abc",
    ),
    "oneOf branch added, disjoint from the others": (
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        "oneOf: every earlier branch lies within one later branch",
        None,
    ),
    "oneOf tagged union gains a variant": (
        {
            "type": "object",
            "oneOf": [
                {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "a"}}}
            ],
        },
        {
            "type": "object",
            "oneOf": [
                {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "a"}}},
                {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "b"}}},
            ],
        },
        "oneOf: every earlier branch lies within one later branch",
        {"kind": "b"},
    ),
    "type widened into oneOf": (
        {"type": "string"},
        {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "oneOf where there was none: the earlier schema lies within branch 1",
        1.5,
    ),
    "type widened into anyOf": (
        {"type": "string", "maxLength": 3},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "anyOf where there was none: the earlier schema lies within a branch",
        "long string",
    ),
    "allOf member widened": (
        {"allOf": [{"minimum": 5}, {"type": "integer"}]},
        {"allOf": [{"type": "integer"}, {"minimum": 0}]},
        "allOf: every later member contains an earlier member or the earlier schema",
        1,
    ),
    "allOf member removed": (
        {"allOf": [{"minimum": 5}, {"type": "integer"}]},
        {"allOf": [{"type": "integer"}]},
        "allOf: every later member contains an earlier member or the earlier schema",
        1,
    ),
    "not narrowed": (
        {"not": {"type": "number"}},
        {"not": {"type": "integer"}},
        "not narrowed: it matches only what it matched",
        1.5,
    ),
    "dependentRequired entry removed": (
        {"type": "object", "dependentRequired": {"card": ["billing"], "a": ["b"]}},
        {"type": "object", "dependentRequired": {"a": ["b"]}},
        "dependentRequired entry removed: card",
        {"card": 1},
    ),
    "dependentSchemas entry removed": (
        {"dependentSchemas": {"card": {"required": ["billing"]}}},
        {},
        "dependentSchemas entry removed: card",
        {"card": 1},
    ),
    "draft-07 dependencies entry removed": (
        {"$schema": DRAFT7, "dependencies": {"card": ["billing"], "x": {"required": ["y"]}}},
        {"$schema": DRAFT7, "dependencies": {"card": ["billing"]}},
        "dependencies entry removed: x",
        {"x": 1},
    ),
    "closed model's property moved into a wider patternProperties": (
        CLOSED_X,
        {"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
        "property moved into patternProperties: x-a",
        {"x-b": "s"},
    ),
    "additionalProperties false becomes a schema": (
        {"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
        {"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
        "additionalProperties widened",
        {"b": "s"},
    ),
}
POOL = [
    None, True, 0, 1, 1.5, 7, -3, "", "ab", "abc", "long string", "x-1", [], [1], {},
    {"kind": "a"}, {"kind": "b"}, {"kind": "c"}, {"card": 1}, {"card": 1, "billing": 2},
    {"x": 1}, {"x": 1, "y": 2}, {"x-a": "s"}, {"x-a": 1}, {"x-b": "s"}, {"a": 1},
    {"a": 1, "b": "s"}, {"b": "s"}, {"b": 2},
]  # fmt: skip


def validator(schema: dict[str, Any]) -> Any:
    return jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)(schema)


@pytest.mark.parametrize(("old", "new", "rule", "witness"), HARMLESS.values(), ids=HARMLESS.keys())
def test_a_harmless_evolution_is_compatible_by_its_rule_and_its_reverse_is_not(
    old, new, rule, witness
):
    verdict = backward_verdict(old, new)
    assert verdict.problems == []
    assert any(r.startswith(rule) for r in verdict.rules), verdict.rules
    assert backward_problems(new, old) != []
    assert backward_verdict(new, old).rules == []
    # The verdicts are right: no document of the pool breaks, and the reverse truly breaks.
    before, after = validator(old), validator(new)
    assert [d for d in POOL if before.is_valid(d) and not after.is_valid(d)] == []
    assert after.is_valid(witness) and not before.is_valid(witness)


def test_a_oneof_branch_that_overlaps_another_is_not_proven():
    old = {"oneOf": [{"type": "string"}]}
    new = {"oneOf": [{"type": "string"}, {"maxLength": 3}]}  # "ab" now matches both
    assert backward_problems(old, new) == [
        "oneOf: a document of #/oneOf/0 may also match branch 1 at #/oneOf/1; "
        "cannot prove compatibility"
    ]
    assert not jsonschema.Draft202012Validator(new).is_valid("ab")


def test_a_type_widened_into_oneof_with_an_overlapping_branch_is_not_proven():
    new = {"oneOf": [{"type": "number"}, {"type": "integer"}]}
    assert backward_problems({"type": "integer"}, new) == [
        "oneOf: a document of # may also match branch 1 at #/oneOf/1; cannot prove compatibility"
    ]


def test_allof_reordered_is_compatible_both_ways_and_says_why():
    old = {"allOf": [{"minimum": 0}, {"multipleOf": 2}]}
    new = {"allOf": [{"multipleOf": 2}, {"minimum": 0}]}
    for a, b in ((old, new), (new, old)):
        verdict = backward_verdict(a, b)
        assert verdict.problems == []
        assert verdict.rules == [
            "allOf: every later member contains an earlier member or the earlier schema, at #"
        ]


def test_allof_member_narrowed_is_reported_at_the_member():
    old = {"allOf": [{"minimum": 0}]}
    assert backward_problems(old, {"allOf": [{"minimum": 3}]}) == [
        "minimum raised: 0 -> 3 at #/allOf/0"
    ]


def test_not_added_that_excludes_nothing_old_is_compatible_and_one_that_might_is_not():
    old = {"type": "string"}
    assert backward_verdict(old, {"type": "string", "not": {"type": "number"}}).rules == [
        "not: matches no document of the earlier schema, at #"
    ]
    assert backward_problems(old, {"type": "string", "not": {"maxLength": 1}}) == [
        "not added at #; cannot prove compatibility"
    ]
    assert backward_problems({"not": {"type": "integer"}}, {"not": {"type": "number"}}) == [
        "not changed at #; cannot prove compatibility"
    ]


def test_dependency_entries_added_or_requiring_more_are_problems():
    assert backward_problems({}, {"dependentRequired": {"card": ["billing"]}}) == [
        "dependentRequired entry added: card at #/dependentRequired/card"
    ]
    assert backward_problems(
        {"dependentRequired": {"card": ["billing"]}},
        {"dependentRequired": {"card": ["billing", "zip"]}},
    ) == ["dependentRequired entry requires more: card now also needs zip at "
          "#/dependentRequired/card"]  # fmt: skip
    assert backward_problems(
        {"dependentSchemas": {"card": {"required": ["a"]}}},
        {"dependentSchemas": {"card": {"required": ["a", "b"]}}},
    ) == ["required property added: #/dependentSchemas/card/required/b"]


def test_the_other_drafts_dependency_keyword_checks_nothing():
    # In 2020-12 "dependencies" is an unknown word: dropping or adding it changes nothing.
    assert backward_problems({}, {"dependencies": {"a": ["b"]}, "$defs": {}}) == []
    assert jsonschema.Draft202012Validator({"dependencies": {"a": ["b"]}}).is_valid({"a": 1})


def test_a_property_moved_into_a_pattern_that_narrows_it_is_reported():
    new = {"patternProperties": {"^x-": {"type": "string", "maxLength": 1}}}
    assert backward_problems(CLOSED_X, {**new, "additionalProperties": False}) == [
        "maxLength added: 1 at #/patternProperties/^x-"
    ]


def test_a_pattern_added_to_an_open_model_must_accept_anything():
    assert backward_problems({}, {"patternProperties": {"^x-": {"type": "string"}}}) == [
        "type narrowed: any -> string at #/patternProperties/^x-"
    ]


def test_patterns_are_read_as_ecma_262():
    # \p{Lu} matches "É"; Python's re would refuse the pattern, so nothing could be proven.
    old = {"properties": {"É": {"type": "string"}}, "additionalProperties": False}
    new = {"patternProperties": {"^\\p{Lu}$": {"type": "string"}}, "additionalProperties": False}
    assert backward_problems(old, new) == []


def test_a_ref_cycle_that_stays_in_place_proves_nothing():
    looping = {"anyOf": [{"$ref": "#"}]}
    assert backward_problems({"type": "string"}, looping) == [
        "$ref cycle that stays in place at #/anyOf/0/anyOf/0; cannot prove compatibility"
    ]


def test_unevaluated_beside_a_ref_is_not_taken_as_an_allof_member():
    # Beside the $ref, unevaluatedProperties sees "a" evaluated by the target: {"a": 1} is
    # valid. As an allOf member of its own it would refuse {"a": 1}, and then a new schema
    # that refuses it too would wrongly pass as compatible.
    defs = {"$defs": {"A": {"properties": {"a": {}}}}}
    old = {**defs, "$ref": "#/$defs/A", "unevaluatedProperties": False}
    new = {**defs, "allOf": [{"unevaluatedProperties": False}]}
    assert jsonschema.Draft202012Validator(old).is_valid({"a": 1})
    assert not jsonschema.Draft202012Validator(new).is_valid({"a": 1})
    assert backward_problems(old, new) != []
    assert backward_problems(old, copy.deepcopy(old)) == []


def test_judge_labels_rules_as_it_labels_problems():
    v1 = {"anyOf": [{"type": "string"}]}
    v2 = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert judge("BACKWARD_TRANSITIVE", v2, [v1, v1]).rules == [
        f"backward, against earlier schema {n} of 2: anyOf: every earlier branch lies "
        "within a later one, at #"
        for n in (1, 2)
    ]
    assert judge("FULL", v2, [v1]).rules == []  # forward breaks: no rule decided it
    assert judge("FULL", v2, [v1]).problems != []


# -- modes --------------------------------------------------------------------------------

NUMBER = props(n={"type": "number"})
INTEGER = props(n={"type": "integer"})


@pytest.mark.parametrize(
    ("mode", "problems"),
    [
        ("NONE", []),
        ("BACKWARD", []),
        ("FORWARD", []),
        ("FULL", []),
        ("FORWARD_TRANSITIVE", []),
        ("BACKWARD_TRANSITIVE", [
            "backward, against earlier schema 1 of 3: "
            "type narrowed: number -> integer at #/properties/n"
        ]),
        ("FULL_TRANSITIVE", [
            "backward, against earlier schema 1 of 3: "
            "type narrowed: number -> integer at #/properties/n"
        ]),
    ],
)  # fmt: skip
def test_transitive_modes_check_every_earlier_version(mode, problems):
    # Only the oldest version conflicts, and only backward (it accepted 1.5).
    assert compatibility_problems(mode, INTEGER, [NUMBER, INTEGER, INTEGER]) == problems


@pytest.mark.parametrize(
    ("mode", "problems"),
    [
        ("BACKWARD", []),
        ("BACKWARD_TRANSITIVE", []),
        ("FORWARD", []),
        ("FORWARD_TRANSITIVE", [
            "forward, against earlier schema 1 of 3: "
            "type narrowed: number -> integer at #/properties/n"
        ]),
        ("FULL_TRANSITIVE", [
            "forward, against earlier schema 1 of 3: "
            "type narrowed: number -> integer at #/properties/n"
        ]),
    ],
)  # fmt: skip
def test_forward_modes_swap_the_roles(mode, problems):
    # An old reader that wants integers cannot read the new schema's 1.5.
    assert compatibility_problems(mode, NUMBER, [INTEGER, NUMBER, NUMBER]) == problems


def test_each_mode_against_the_latest_version():
    assert compatibility_problems("BACKWARD", INTEGER, [NUMBER]) == [
        "type narrowed: number -> integer at #/properties/n"
    ]
    assert compatibility_problems("FORWARD", INTEGER, [NUMBER]) == []
    assert compatibility_problems("FORWARD", NUMBER, [INTEGER]) == [
        "forward: type narrowed: number -> integer at #/properties/n"
    ]
    changed = props(n={"type": "string"})
    assert compatibility_problems("FULL", changed, [NUMBER]) == [
        "backward: type changed: number -> string at #/properties/n",
        "forward: type changed: string -> number at #/properties/n",
    ]
    assert compatibility_problems("NONE", changed, [NUMBER]) == []


@pytest.mark.parametrize("mode", MODES)
def test_the_first_version_is_always_compatible(mode):
    assert compatibility_problems(mode, INTEGER, []) == []


def test_modes_are_case_insensitive_and_unknown_ones_are_refused():
    assert compatibility_problems("backward", INTEGER, [NUMBER]) != []
    with pytest.raises(ValueError, match=r"unknown compatibility mode 'SIDEWAYS'.*FULL_TRANSITIVE"):
        compatibility_problems("SIDEWAYS", INTEGER, [NUMBER])
    with pytest.raises(ValueError, match="BACKWARD_TRANSITIVE"):
        compatibility_problems(None, INTEGER, [NUMBER])  # type: ignore[arg-type]


# -- soundness: "compatible" is never said wrongly -------------------------------------------

NAMES = ("a", "b", "c")
TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
PATTERNS = ("^a", "b$", "^[ab]*$", "1")
VALUES = (None, True, False, 0, 1, 2, 5, 10, 2.5, -1, "", "a", "ab", "b1", "abba")

documents = st.recursive(
    st.sampled_from(VALUES) | st.integers(-3, 25) | st.text("ab1", max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from((*NAMES, "d")), inner, max_size=4)
    ),
    max_leaves=8,
)

SCALAR_KEYWORDS: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(TYPES)
    | st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
    "minimum": st.integers(-2, 12),
    "maximum": st.integers(0, 20),
    "exclusiveMinimum": st.integers(-2, 12),
    "exclusiveMaximum": st.integers(0, 20),
    "multipleOf": st.sampled_from([1, 2, 3, 5, 10]),
    "minLength": st.integers(0, 3),
    "maxLength": st.integers(0, 4),
    "pattern": st.sampled_from(PATTERNS),
    "enum": st.lists(st.sampled_from(VALUES), min_size=1, max_size=5),
    "const": st.sampled_from(VALUES),
    "minItems": st.integers(0, 2),
    "maxItems": st.integers(0, 3),
    "uniqueItems": st.booleans(),
    "minProperties": st.integers(0, 2),
    "maxProperties": st.integers(0, 3),
}


def keywords(depth: int) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy per keyword a schema at this depth may use."""
    if depth == 0:
        return SCALAR_KEYWORDS
    sub = schemas(depth - 1)
    return {
        **SCALAR_KEYWORDS,
        "properties": st.dictionaries(st.sampled_from(NAMES), sub, max_size=3),
        "required": st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
        "additionalProperties": sub,
        "patternProperties": st.dictionaries(st.sampled_from(PATTERNS), sub, max_size=1),
        "items": sub,
        "prefixItems": st.lists(sub, min_size=1, max_size=2),
        "oneOf": st.lists(sub, min_size=1, max_size=2),
        "anyOf": st.lists(sub, min_size=1, max_size=2),
        "allOf": st.lists(sub, min_size=1, max_size=2),
        "not": sub,
        "dependentRequired": st.dictionaries(
            st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES), max_size=2), max_size=2
        ),
        "dependentSchemas": st.dictionaries(st.sampled_from(NAMES), sub, max_size=2),
    }


def schemas(depth: int) -> st.SearchStrategy[Any]:
    """Small schemas (up to three keywords a level) over the keywords the rules judge."""
    return st.booleans() | sparse(depth) if depth == 0 else sparse(depth)


@st.composite
def sparse(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    # Few keywords, so that old schemas accept many documents and one edit decides.
    choices = keywords(depth)
    names = draw(st.lists(st.sampled_from(sorted(choices)), max_size=3, unique=True))
    return {name: draw(choices[name]) for name in names}


@st.composite
def edited(draw: st.DrawFn, schema: Any, depth: int) -> Any:
    """``schema`` with one keyword set, redrawn or removed somewhere in its tree."""
    if not isinstance(schema, dict):
        return draw(schemas(depth))
    result = dict(schema)
    inner = [k for k in ("additionalProperties", "items") if k in schema]
    properties = schema.get("properties") or {}
    where = draw(
        st.sampled_from(
            ["here", "property"] * bool(properties) + ["inner"] * bool(inner) or ["here"]
        )
    )
    if where == "property":
        name = draw(st.sampled_from(sorted(properties)))
        result["properties"] = {
            **properties,
            name: draw(edited(properties[name], max(depth - 1, 0))),
        }
    elif where == "inner":
        key = draw(st.sampled_from(inner))
        result[key] = draw(edited(schema[key], max(depth - 1, 0)))
    elif "type" in schema and draw(st.integers(0, 5)) == 0:
        # The type widened into a union: oneOf or anyOf with the old type as a branch.
        union = draw(st.sampled_from(["oneOf", "anyOf"]))
        branches = [{"type": result.pop("type")}, {"type": draw(st.sampled_from(TYPES))}]
        result[union] = draw(st.permutations(branches))
    else:
        choices = keywords(depth)
        key = draw(st.sampled_from(sorted(choices)))
        action = draw(st.sampled_from(["nudge", "nudge", "drop", "redraw"]))
        if key in result and action == "drop":
            del result[key]
        elif key in result and action == "nudge":
            result.pop(key)
            key, value = draw(nudged(key, schema[key], depth))
            result[key] = value
        elif key == "properties" and properties:  # one property added or replaced
            result[key] = {**properties, draw(st.sampled_from(NAMES)): draw(schemas(depth - 1))}
        else:
            result[key] = draw(choices[key])
    return result


COUNTERPART = {"minimum": "exclusiveMinimum", "maximum": "exclusiveMaximum"}
COUNTERPART.update({v: k for k, v in COUNTERPART.items()})


@st.composite
def nudged(draw: st.DrawFn, key: str, value: Any, depth: int) -> tuple[str, Any]:
    """A small change to one keyword: the edits that sit right at a rule's boundary."""
    if key in COUNTERPART and draw(st.booleans()):
        return COUNTERPART[key], value  # the same bound, made (non-)exclusive
    if isinstance(value, int) and not isinstance(value, bool) and key != "multipleOf":
        return key, max(
            value + draw(st.integers(-3, 3)), 0 if key.startswith(("min", "max")) else -9
        )
    if key == "multipleOf":
        return key, draw(st.sampled_from([1, 2, 5, 10, 20, 30]))
    if key == "type":
        types = [value] if isinstance(value, str) else list(value)
        swap = {"number": "integer", "integer": "number"}
        if draw(st.booleans()) and len(types) > 1:
            return key, types[1:]
        if draw(st.booleans()):
            return key, [swap.get(t, t) for t in types]
        return key, list(dict.fromkeys([*types, draw(st.sampled_from(TYPES))]))
    if key in ("enum", "required"):
        extra = draw(st.sampled_from(VALUES if key == "enum" else NAMES))
        return key, value[1:] if value and draw(st.booleans()) else [*value, extra]
    if key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        i = draw(st.integers(0, len(value) - 1))
        how = draw(st.sampled_from(["edit", "edit", "add", "drop", "reorder"]))
        if how == "add":  # a branch added: a new one, or a copy of one edited
            extra = draw(schemas(depth - 1) | edited(value[i], max(depth - 1, 0)))
            return key, [*value, extra]
        if how == "drop" and len(value) > 1:
            return key, [*value[:i], *value[i + 1 :]]
        if how == "reorder":
            return key, [*value[i:], *value[:i]]
        return key, [*value[:i], draw(edited(value[i], max(depth - 1, 0))), *value[i + 1 :]]
    if key in ("dependentRequired", "dependentSchemas"):
        if value and draw(st.booleans()):
            gone = draw(st.sampled_from(sorted(value)))
            return key, {n: s for n, s in value.items() if n != gone}
        name = draw(st.sampled_from(NAMES))
        entry = (
            st.lists(st.sampled_from(NAMES), max_size=2)
            if key == "dependentRequired"
            else schemas(max(depth - 1, 0))
        )
        return key, {**value, name: draw(entry)}
    if key == "properties" and value and draw(st.booleans()):
        gone = draw(st.sampled_from(sorted(value)))
        return key, {n: s for n, s in value.items() if n != gone}
    if isinstance(value, bool):
        return key, not value
    return key, draw(edited(value, max(depth - 1, 0)))


@st.composite
def evolved(draw: st.DrawFn, schema: Any, depth: int) -> Any:
    """A later version of ``schema``: one or two edits, so each rule is met on its own."""
    for _ in range(draw(st.integers(1, 2))):
        schema = draw(edited(schema, depth))
    return schema


def by_ref(schema: Any) -> Any:
    """The same schema with its property subschemas moved to $defs behind $ref."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return schema
    defs, properties = {}, {}
    for name, sub in schema["properties"].items():
        # A scalar keyword may stay beside the $ref: 2020-12 applies both.
        beside = (
            {k: v for k, v in sub.items() if k in SCALAR_KEYWORDS} if isinstance(sub, dict) else {}
        )
        beside = dict(list(beside.items())[:1])
        defs[f"p_{name}"] = {k: v for k, v in sub.items() if k not in beside} if beside else sub
        properties[name] = {"$ref": f"#/$defs/p_{name}", **beside}
    return {**schema, "properties": properties, "$defs": defs}


def near(schema: Any, depth: int = 3) -> st.SearchStrategy[Any]:
    """Documents shaped by ``schema``: often valid under it, which random ones rarely are."""
    if not isinstance(schema, dict) or depth == 0:
        return documents
    if "const" in schema:
        return st.just(schema["const"])
    if isinstance(schema.get("enum"), list):
        return st.sampled_from(schema["enum"])
    declared = schema.get("type", list(TYPES))
    types = [declared] if isinstance(declared, str) else declared
    return st.one_of([shaped(schema, t, depth) for t in types])


def shaped(schema: dict[str, Any], kind: str, depth: int) -> st.SearchStrategy[Any]:
    if kind == "object":
        properties = schema.get("properties", {})
        required = [n for n in schema.get("required", []) if n in properties]
        return st.fixed_dictionaries(
            {n: near(properties[n], depth - 1) for n in required},
            optional={
                n: near(properties.get(n, schema.get("additionalProperties")), depth - 1)
                for n in NAMES
                if n not in required
            },
        )
    if kind == "array":
        rest = st.lists(near(schema.get("items", True), depth - 1), max_size=3)
        rest = rest | rest.map(lambda xs: xs + xs[:1])  # with a repeat, for uniqueItems
        head = st.tuples(*(near(s, depth - 1) for s in schema.get("prefixItems", [])))
        return st.builds(lambda h, t: [*h, *t], head, rest) | rest
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -3), schema.get("maximum", 25)
        numbers = st.integers(low, high) if low <= high else st.integers(-3, 25)
        return numbers | st.just(2.5) if kind == "number" else numbers
    if kind == "string":
        return st.text("ab1", max_size=4)
    return st.none() if kind == "null" else st.booleans()


@st.composite
def evolutions(draw: st.DrawFn) -> tuple[Any, Any, list[Any]]:
    """(old schema, a later version, documents to try on both)."""
    old = draw(schemas(2).filter(lambda s: isinstance(s, dict)))
    new = draw(evolved(old, 2))
    docs = draw(st.lists(near(old) | documents, min_size=10, max_size=40))
    if draw(st.booleans()):  # the same schemas, written with $ref
        new = by_ref(new) if draw(st.booleans()) else new
        old = by_ref(old) if draw(st.booleans()) else old
    return old, new, docs


def test_compatible_means_every_old_document_stays_valid():
    seen = {
        "compatible pairs": 0,
        "changed and compatible with old documents": 0,
        "proven by a rule beyond unchanged": 0,
    }

    @settings(max_examples=800)
    @given(evolutions())
    def check(evolution: tuple[Any, Any, list[Any]]) -> None:
        old, new, docs = evolution
        verdict = backward_verdict(old, new)
        if verdict.problems:
            return
        seen["compatible pairs"] += 1
        seen["proven by a rule beyond unchanged"] += bool(verdict.rules)
        old_validator = jsonschema.Draft202012Validator(old)
        new_validator = jsonschema.Draft202012Validator(new)
        accepted = [doc for doc in docs if old_validator.is_valid(doc)]
        for doc in accepted:
            assert new_validator.is_valid(doc), (old, new, doc)
        if accepted and old != new:
            seen["changed and compatible with old documents"] += 1

    check()
    # The property must have been exercised, not vacuously true.
    assert seen["compatible pairs"] >= 60, seen
    assert seen["changed and compatible with old documents"] >= 40, seen
    assert seen["proven by a rule beyond unchanged"] >= 30, seen
