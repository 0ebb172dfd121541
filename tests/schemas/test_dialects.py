"""Drafts read as schema registries read them, and patterns read as ECMA-262, end to end.

A schema without ``$schema`` that only draft-07 makes sense of is read as draft-07, an
ambiguous one is refused saying so; ``\\p{...}`` and the other ECMA-262 readings hold on
the fast path and on the fallback alike, for ``pattern`` and ``patternProperties``.
"""

from __future__ import annotations

from typing import Any

import pytest

import allsource_lab as asl
from allsource_lab.schemas import dialect
from allsource_lab.schemas.fast import BatchValidator


def rejected(store: asl.EventStore, subject: str, payloads: list[Any]) -> list[int]:
    rows = [
        {"event_type": subject, "entity_id": f"e{i}", "payload": p} for i, p in enumerate(payloads)
    ]
    result = store.append_batch(rows, on_invalid="return")
    return [] if result.rejected_rows is None else sorted(result.rejected_rows["row"])


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        (  # a tuple: items as a list, and nothing after it
            {"type": "object", "properties": {
                "pair": {"items": [{"type": "string"}, {"type": "integer"}],
                         "additionalItems": False}}},
            {"pair": ["a", 1]},
            {"pair": ["a", 1, 2]},
        ),
        (  # dependencies: a card needs a billing address
            {"type": "object", "dependencies": {"card": ["billing"]}},
            {"card": 1, "billing": 2},
            {"card": 1},
        ),
        (  # definitions with a $ref whose siblings draft-07 ignores
            {"definitions": {"s": {"type": "string"}},
             "properties": {"a": {"$ref": "#/definitions/s", "maxLength": 1}}},
            {"a": "long"},
            {"a": 1},
        ),
    ],
)  # fmt: skip
def test_a_schema_only_draft_7_reads_is_read_as_draft_7(store, path, schema, valid, invalid):
    assert dialect.draft(schema) == dialect.DRAFT_7
    store.schemas.register("t", schema)
    assert store.schemas.get("t").schema == schema  # stored as given
    assert rejected(store, "t", [valid, invalid]) == [1]


def test_an_ambiguous_schema_is_refused_saying_which_keywords_disagree(store):
    schema = {"items": [{"type": "string"}], "$defs": {"x": {}}, "prefixItems": []}
    with pytest.raises(asl.SchemaError) as caught:
        store.schemas.register("t", schema)
    message = str(caught.value)
    assert "no $schema and is ambiguous" in message
    assert "items as a list at #/items" in message and "prefixItems at #" in message
    assert '"$schema": "http://json-schema.org/draft-07/schema#"' in message
    with_schema = {"$schema": "http://json-schema.org/draft-07/schema#", **schema}
    assert store.schemas.register("t", with_schema).version == 1


def test_keywords_inside_data_or_property_names_do_not_decide_the_draft():
    schema = {
        "properties": {"definitions": {"type": "string"}},
        "enum": [{"items": [1], "dependencies": {}}],
        "$defs": {},
    }
    assert dialect.draft(schema) == dialect.DRAFT_2020_12


def test_an_unknown_schema_keyword_mix_without_draft_7_markers_stays_2020_12(store):
    store.schemas.register("t", {"prefixItems": [{"type": "string"}], "items": False})
    assert rejected(store, "t", [{"x": 1}]) == []  # an object: prefixItems checks arrays


PATTERN = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": r"^\p{Letter}+$"}},
}
PATTERN_PROPERTIES = {
    "type": "object",
    "patternProperties": {r"^\p{Lu}": {"type": "integer"}},
    "additionalProperties": False,
}


def test_unicode_property_escapes_work_in_pattern_on_both_paths(store, path):
    store.schemas.register("t", PATTERN)
    assert BatchValidator(PATTERN).covered is (path == "fast path")
    assert rejected(store, "t", [{"name": "Grüße"}, {"name": "abc1"}, {"name": "ж"}]) == [1]


def test_unicode_property_escapes_work_in_pattern_properties_on_both_paths(store, path):
    store.schemas.register("t", PATTERN_PROPERTIES)
    payloads = [{"Élan": 1}, {"élan": 1}, {"Élan": "x"}, {}]
    assert rejected(store, "t", payloads) == [1, 2]


def test_dollar_is_the_end_of_the_text_on_both_paths(store, path):
    store.schemas.register("t", {"properties": {"a": {"pattern": "^ab$"}}})
    assert rejected(store, "t", [{"a": "ab"}, {"a": "ab\n"}]) == [1]


def test_a_pattern_that_is_not_ecma_262_is_refused_saying_why(store):
    with pytest.raises(asl.SchemaError, match=r"is not a 'regex'.*ECMA-262.*invalid group"):
        store.schemas.register("t", {"properties": {"a": {"pattern": "(?P<n>a)"}}})
    with pytest.raises(asl.SchemaError, match=r"#/patternProperties.*only General_Category"):
        store.schemas.register("t", {"patternProperties": {r"\p{Script=Greek}": {}}})


def test_a_ref_inside_enum_is_data_not_a_reference(store):
    schema = {"properties": {"a": {"enum": [{"$ref": "#/$defs/missing"}]}}}
    store.schemas.register("t", schema)
    assert rejected(store, "t", [{"a": {"$ref": "#/$defs/missing"}}, {"a": 1}]) == [1]


def test_a_remote_ref_below_a_nested_id_is_refused_at_registration(store):
    schema = {
        "$id": "http://example.com/root.json",
        "properties": {"a": {"$id": "folder/", "items": {"$ref": "item.json"}}},
    }
    with pytest.raises(asl.SchemaError, match=r"item\.json.*cannot be resolved"):
        store.schemas.register("t", schema)


def test_the_report_says_which_rule_decided(store):
    store.schemas.register("t", {"type": "object", "properties": {"n": {"type": "string"}}})
    widened = {
        "type": "object",
        "properties": {"n": {"oneOf": [{"type": "number"}, {"type": "string"}]}},
    }
    report = store.schemas.check("t", widened)
    assert report.compatible
    assert report.rules == [
        "oneOf where there was none: the earlier schema lies within branch 1, and the other "
        "branches are disjoint from it, at #/properties/n"
    ]
    assert "by oneOf where there was none" in str(report)
    assert store.schemas.register("t", widened).version == 2
    narrowed = {"type": "object", "properties": {"n": {"type": "string"}}}
    report = store.schemas.check("t", narrowed)
    assert not report.compatible and report.rules == []
