"""BatchValidator gives jsonschema's verdict for every row, fast path or not.

The reference is always ``slow_validator(schema).is_valid(orjson.loads(text))``: the
decoder decides what duplicate keys and number literals mean, jsonschema decides the
rest. The payload texts are written by hand (not by orjson) so that the fast path meets
what other producers send: escapes, ``1.0``/``1e2``/``-0`` literals, whitespace,
duplicate keys.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allsource_lab._kernels import jsonschema_fast as kernel
from allsource_lab._storage.arrowbuf import string_buffers
from allsource_lab.schemas.fast import BatchValidator, format_checker, slow_validator

NAMES = ["a", "b", "é", "k1", "日本"]
TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
FORMAT_SAMPLES = [
    "2024-02-29T12:00:00Z",
    "2023-02-29T12:00:00Z",
    "1998-12-31T23:59:60Z",
    "1998-12-31T22:59:60Z",
    "1999-01-01T00:59:60+01:00",
    "2024-01-01t00:00:00.123+05:30",
    "2024-01-01 00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-01-01T00:00:00",
    "a@b.c",
    "a@b",
    "a b@c.d",
    "@b.c",
    "x@.c",
    "x@c.",
    "é@日本.jp",
    "123e4567-e89b-12d3-a456-426614174000",
    "123E4567-E89B-12D3-A456-42661417400",
    "123e4567e89b-12d3-a456-426614174000",
]
PATTERNS = ["^a", "b$", "[0-9]{2}", r"^\w+$", "é", "^.{2,3}$", r"\d"]

LEAF_WORDS = [
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "format",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from([0.5, -0.0, 1.0, 2.5, 1e20, 1e-7, 10.0, 0.1, 2**53 + 1, 10**22, 2**70]),
    st.text(st.sampled_from('ab9 é日😀@.-"\\/\n\u2028TZ:'), max_size=6),
    st.sampled_from(FORMAT_SAMPLES),
)
# Schema constants: integers past 2**53 would make the schema uncovered.
constants = scalars.filter(lambda v: not isinstance(v, int) or abs(v) <= 2**53)
bounds = st.sampled_from([-1, 0, 0.5, 1, 2, 2.5, 10, 1e20])


@st.composite
def leaf_schemas(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.booleans())
    words = draw(
        st.lists(
            st.sampled_from(LEAF_WORDS),
            max_size=3,
            unique=True,
        )
    )
    values = {
        "type": st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), max_size=3, unique=True),
        "enum": st.lists(constants, max_size=4),
        "const": constants,
        "minLength": st.integers(0, 4),
        "maxLength": st.integers(0, 6),
        "pattern": st.sampled_from(PATTERNS),
        "format": st.sampled_from(["date-time", "email", "uuid", "ipv4"]),
    }
    return {w: draw(values.get(w, bounds)) for w in words}


def object_schemas(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"properties": st.dictionaries(st.sampled_from(NAMES), inner, max_size=4)},
        optional={
            "type": st.just("object"),
            "required": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
            "additionalProperties": st.booleans(),
        },
    )


def array_schemas(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"items": inner},
        optional={
            "type": st.just("array"),
            "minItems": st.integers(0, 2),
            "maxItems": st.integers(0, 3),
        },
    )


schemas = st.recursive(
    leaf_schemas(), lambda inner: object_schemas(inner) | array_schemas(inner), max_leaves=6
)
root_schemas = object_schemas(schemas)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*NAMES, "zz"]), inner, max_size=4)
    ),
    max_leaves=8,
)
payloads = st.dictionaries(st.sampled_from([*NAMES, "zz"]), values, max_size=5)


def text_of(value: Any, rnd: random.Random, escapes: float | None = None) -> str:
    """JSON text for ``value``, in one of the ways a producer might have written it.

    Escapes and duplicate keys send a row to jsonschema, so most rows have neither: the
    fast path must meet plenty of rows it judges by itself.
    """
    if escapes is None:
        escapes = rnd.choice([0.0, 0.0, 0.0, 0.2])
    space = rnd.choice(["", "", " ", "\n  "])
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()
    if isinstance(value, int):
        forms = [str(value), f"{value}.0", f"{value}e0", f"{value * 10}E-1"]
        if value == 0:
            forms += ["-0", "-0.0", "0e5"]
        return rnd.choice(forms)
    if isinstance(value, float):
        return rnd.choice([repr(value), repr(value).upper(), orjson.dumps(value).decode()])
    if isinstance(value, str):
        return '"' + "".join(_char(c, rnd, escapes) for c in value) + '"'
    if isinstance(value, list):
        return "[" + space + ("," + space).join(text_of(v, rnd, escapes) for v in value) + "]"
    members = [
        text_of(str(k), rnd, escapes) + space + ":" + space + text_of(v, rnd, escapes)
        for k, v in value.items()
    ]
    if members and rnd.random() < escapes / 4:  # a duplicate key: the decoder keeps the last
        members.insert(0, text_of(next(iter(value)), rnd, 0) + ":" + text_of(rnd.random(), rnd))
    return "{" + space + ("," + space).join(members) + "}"


def _char(c: str, rnd: random.Random, escapes: float) -> str:
    if c in '"\\' or c < " ":
        return orjson.dumps(c).decode()[1:-1]
    if rnd.random() >= escapes:
        return c
    if c == "/":
        return "\\/"
    units = c.encode("utf-16-be")
    return "".join(f"\\u{units[i]:02X}{units[i + 1]:02x}" for i in range(0, len(units), 2))


def rejected_by_jsonschema(schema: dict[str, Any], texts: list[str]) -> list[int]:
    slow = slow_validator(schema)
    return [i for i, t in enumerate(texts) if not slow.is_valid(orjson.loads(t))]


def invalid_rows(validator: BatchValidator, texts: list[str]) -> list[int]:
    data, offsets = string_buffers(pa.array(["{}", *texts]).slice(1))
    rows = validator.invalid_rows(data, offsets)
    assert rows.dtype == np.int64
    return rows.tolist()


@settings(max_examples=400)
@given(root_schemas, st.lists(payloads, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_verdicts_are_jsonschemas_for_generated_schemas_and_payloads(schema, rows, rnd):
    texts = [text_of(row, rnd) for row in rows]
    validator = BatchValidator(schema)
    assert validator.covered
    assert invalid_rows(validator, texts) == rejected_by_jsonschema(schema, texts)


def test_big_batches_are_split_across_cores_with_the_same_verdicts():
    # Past inputs' parallel threshold the scan runs in chunks; row numbers (and the
    # pattern checks' rows) must still be the batch's, in every chunk.
    schema = {
        "required": ["n"],
        "properties": {"n": {"type": "integer", "maximum": 9}, "c": {"pattern": "^[a-z]+$"}},
    }
    rnd = random.Random(7)
    texts = [
        f'{{"n": {rnd.randint(0, 10)}, "c": "{rnd.choice(["abc", "ab1", "zz"])}"}}'
        if i % 5000
        else '{"m": 1}'
        for i in range(140_000)
    ]
    want = rejected_by_jsonschema(schema, texts)
    assert want and want[-1] > 100_000
    assert invalid_rows(BatchValidator(schema), texts) == want


NUMBER_SCHEMA = {
    "properties": {
        "i": {"type": "integer", "minimum": -5, "exclusiveMaximum": 1e20},
        "n": {"type": "number", "maximum": 2.5, "exclusiveMinimum": -1},
        "e": {"enum": [1, 2.5, "1", True, None]},
    }
}
NUMBER_LITERALS = [
    "1", "1.0", "1e2", "1E+2", "-0", "-0.0", "0.5", "2.5", "2.5000000000000001", "2.50001",
    "-1", "-5", "-5.0000001", "1e20", "99999999999999999999", "100000000000000000000",
    "1e-400", "0.1e1", "25e-1", "123456789012345678901234567890", "9007199254740993",
    "true", "null", '"1"', "1.5e300", "-1e-7",
]  # fmt: skip


@pytest.mark.parametrize("key", ["i", "n", "e"])
def test_number_literals_are_judged_as_their_decoded_value(key):
    texts = [f'{{"{key}": {literal}}}' for literal in NUMBER_LITERALS]
    validator = BatchValidator(NUMBER_SCHEMA)
    assert validator.covered
    assert invalid_rows(validator, texts) == rejected_by_jsonschema(NUMBER_SCHEMA, texts)


def test_lengths_count_code_points_not_bytes_or_escapes():
    schema = {"properties": {"s": {"type": "string", "minLength": 2, "maxLength": 2}}}
    texts = ['{"s": "日本"}', '{"s": "😀😀"}', '{"s": "\\ud83d\\ude00x"}', '{"s": "\\n\\u00e9"}']
    texts += ['{"s": "é"}', '{"s": "😀😀😀"}', '{"s": "a\\\\b"}']
    assert invalid_rows(BatchValidator(schema), texts) == [4, 5, 6]


def test_keys_are_matched_exactly_and_extra_keys_refused_when_closed():
    schema = {
        "properties": {"a": {"type": "integer"}, "ab": {"type": "string"}},
        "required": ["a", "c"],
        "additionalProperties": False,
    }
    texts = [
        '{"a": 1, "c": 2}',
        '{"a": 1}',
        '{"a": 1, "c": 2, "ab": "x"}',
        '{"a": 1, "c": 2, "b": 0}',
    ]
    texts += ['{"\\u0061": 1, "c": 2}', '{"a": "x", "a": 1, "c": 2}', '{"a": 1, "a": "x", "c": 2}']
    # "c" is required but not listed in properties, so it is an additional property.
    assert invalid_rows(BatchValidator(schema), texts) == rejected_by_jsonschema(schema, texts)
    assert rejected_by_jsonschema(schema, texts) == [0, 1, 2, 3, 4, 5, 6]


def test_nested_objects_and_arrays_are_checked_at_every_level():
    schema = {
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"format": "uuid"}, "tags": {"items": {"maxLength": 2}}},
            },
            "scores": {"type": "array", "items": {"type": "number"}, "maxItems": 2},
            "grid": {"items": {"items": {"type": "integer"}, "minItems": 1}},
        },
    }
    uid = "123e4567-e89b-12d3-a456-426614174000"
    texts = [
        f'{{"user": {{"id": "{uid}", "tags": ["ab", "c"]}}, "scores": [1, 2.5]}}',
        f'{{"user": {{"id": "{uid}", "tags": ["abc"]}}}}',
        '{"user": {"tags": []}}',
        '{"user": {"id": "nope"}}',
        '{"scores": [1, 2, 3]}',
        '{"scores": [true]}',
        '{"grid": [[1, 2], [3.0]]}',
        '{"grid": [[1], []]}',
        '{"grid": [[1], [1.5]]}',
        '{"user": 5, "scores": "not checked as an array"}',
    ]
    assert rejected_by_jsonschema(schema, texts[:-1]) == [1, 2, 3, 4, 5, 7, 8]
    assert invalid_rows(BatchValidator(schema), texts) == rejected_by_jsonschema(schema, texts)


def test_uncovered_keywords_fall_back_to_jsonschema_with_the_same_verdicts():
    schema = {
        "properties": {"v": {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]}},
        "required": ["v"],
    }
    validator = BatchValidator(schema)
    assert not validator.covered
    texts = ['{"v": 1}', '{"v": "x"}', '{"v": "xy"}', '{"v": 1.5}', "{}"]
    assert invalid_rows(validator, texts) == [1, 3, 4]
    assert not BatchValidator({"properties": {"n": {"multipleOf": 2}}}).covered
    assert not BatchValidator({"properties": {"n": {"minimum": 2**60 + 1}}}).covered


def test_an_empty_batch_has_no_invalid_rows():
    validator = BatchValidator({"required": ["a"]})
    for offsets in [np.zeros(0, np.int64), np.zeros(1, np.int64)]:
        assert validator.invalid_rows(np.zeros(0, np.uint8), offsets).tolist() == []


def test_a_root_that_refuses_objects_refuses_every_row():
    for schema in [{"type": "array"}, {"const": 1}, {"enum": ["x"]}]:
        assert invalid_rows(BatchValidator(schema), ["{}", '{"a": 1}']) == [0, 1]


def test_draft_7_is_chosen_by_its_schema_uri_or_its_draft_7_keywords():
    def draft(schema: dict[str, Any]) -> str:
        return str(type(slow_validator(schema)).META_SCHEMA["$schema"])

    assert draft({"$schema": "http://json-schema.org/draft-07/schema#"}) == (
        "http://json-schema.org/draft-07/schema#"
    )
    assert draft({"items": [{"type": "string"}]}) == "http://json-schema.org/draft-07/schema#"
    assert draft({}) == "https://json-schema.org/draft/2020-12/schema"


def test_problems_name_the_instance_path_best_match_first():
    validator = BatchValidator(
        {"properties": {"age": {"type": "integer"}, "tags": {"items": {"type": "string"}}}}
    )
    problems = validator.problems(b'{"age": "x", "tags": ["a", 3]}')
    assert [path for path, _ in problems] == ["$.age", "$.tags[1]"]
    assert "integer" in problems[0][1]
    assert validator.problems('{"age": 1}') == []


DATE_TIMES = {
    "2024-02-29T12:00:00Z": True,
    "2024-02-29t12:00:00.123456z": True,
    "2024-12-31T23:59:59-23:59": True,
    "1998-12-31T23:59:60Z": True,
    "1998-12-31T15:59:60-08:00": True,
    "1999-01-01T00:59:60+01:00": True,
    "0000-02-29T00:00:00Z": True,
    "2023-02-29T12:00:00Z": False,
    "1998-12-31T22:59:60Z": False,
    "2024-04-31T00:00:00Z": False,
    "2024-01-01T24:00:00Z": False,
    "2024-01-01T00:00:00": False,
    "2024-01-01 00:00:00Z": False,
    "2024-01-01T00:00:00.Z": False,
    "2024-01-01T00:00:00+0100": False,
    "2024-01-01T00:00:00+24:00": False,
    "2024-01-01T00:00:00Z ": False,
    "２０２４-01-01T00:00:00Z": False,
}
EMAILS = {"a@b.c": True, "é@日本.jp": True, "a.b+c@d-e.fg": True, "a@b": False, "a b@c.d": False}
EMAILS |= {"@b.c": False, "a@.b": False, "a@b.": False, "a@@b.c": False, "a@b@c.d": False}
UUIDS = {"123e4567-e89b-12d3-a456-426614174000": True, "123E4567-E89B-12D3-A456-42661417400F": True}
UUIDS |= {
    "123e4567-e89b-12d3-a456-42661417400": False,
    "123e4567e89b-12d3-a456-426614174000-": False,
}
UUIDS |= {"g23e4567-e89b-12d3-a456-426614174000": False}


@pytest.mark.parametrize(
    ("fmt", "cases", "fast"),
    [
        ("date-time", DATE_TIMES, kernel.is_date_time),
        ("email", EMAILS, kernel.is_email),
        ("uuid", UUIDS, kernel.is_uuid),
    ],
)
def test_format_checkers_agree_with_their_definitions_on_both_paths(fmt, cases, fast):
    checker = format_checker()
    for text, expected in cases.items():
        raw = np.frombuffer(text.encode(), np.uint8)
        assert checker.conforms(text, fmt) is expected, text
        assert bool(fast(raw, 0, len(raw))) is expected, text
    assert checker.conforms(12, fmt)  # formats constrain strings only


@given(
    st.from_regex(
        r"[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,2})?"
        r"([Zz]|[+-][0-2][0-9]:[0-6][0-9])?",
        fullmatch=True,
    )
)
def test_the_date_time_kernel_matches_the_python_checker(text):
    raw = np.frombuffer(text.encode(), np.uint8)
    assert bool(kernel.is_date_time(raw, 0, len(raw))) is format_checker().conforms(
        text, "date-time"
    )


NOJIT_SCRIPT = r"""
import warnings
warnings.simplefilter("error")
import numba, numpy as np, orjson
assert numba.config.DISABLE_JIT
from allsource_lab.schemas.fast import BatchValidator, slow_validator

schema = {
    "type": "object",
    "required": ["n", "s"],
    "additionalProperties": False,
    "properties": {
        "n": {"type": "integer", "minimum": 0, "maximum": 10},
        "f": {"type": ["number", "null"], "exclusiveMaximum": 2.5},
        "s": {"type": "string", "maxLength": 3, "pattern": "^[a-z]"},
        "e": {"enum": ["EUR", "USD", 1, None, True]},
        "t": {"format": "date-time"}, "m": {"format": "email"}, "u": {"format": "uuid"},
        "o": {"properties": {"x": {"const": "日本"}}, "required": ["x"]},
        "a": {"items": {"type": "string", "minLength": 1}, "maxItems": 2},
    },
}
ok = '"n": 1, "s": "a"'
rows = [
    '{"n": 1, "s": "abc"}', '{"n": 1.0, "s": "a", "f": null}', '{"n": 1e1, "s": "a"}',
    '{"n": 11, "s": "a"}', '{"n": 1, "s": "Abc"}', '{"n": 1, "s": "ab\\u00e9"}',
    '{"n": 1, "s": "abcd"}', '{"s": "a"}', '{"n": 1, "n": 2, "s": "a"}',
    '{"n": 12345678901234567890, "s": "a"}',
] + ["{" + ok + ", " + extra + "}" for extra in [
    '"f": 2.5', '"e": "EUR"', '"e": "GBP"', '"e": 1.0', '"e": false', '"z": 0',
    '"t": "2024-01-01T00:00:00Z"', '"t": "2024-01-32T00:00:00Z"', '"m": "a@b.c"', '"m": "a@b"',
    '"u": "123e4567-e89b-12d3-a456-426614174000"', '"u": "x"', '"o": {"x": "日本"}',
    '"o": {"y": {"z": [1]}}', '"a": ["x", "y"]', '"a": ["x", ""]', '"a": [1, 2, 3]',
]]
data = np.frombuffer("".join(rows).encode(), np.uint8)
offsets = np.cumsum([0] + [len(r.encode()) for r in rows])
validator = BatchValidator(schema)
assert validator.covered
slow = slow_validator(schema)
want = [i for i, r in enumerate(rows) if not slow.is_valid(orjson.loads(r))]
got = validator.invalid_rows(data, offsets).tolist()
assert got == want, (got, want)
print("ok")
"""


def test_the_kernels_give_the_same_verdicts_with_the_jit_disabled(run_without_jit):
    run_without_jit(NOJIT_SCRIPT)
