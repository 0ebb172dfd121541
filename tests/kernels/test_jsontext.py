"""The bulk JSON check accepts exactly what orjson reads as an object."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab.kernels import jsontext

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=15,
)


MUTATION_BYTES = b'{}[]",:\\ 019.eE+-tfnulNI\x00\x1f\xff\xc3\xa9\x80'


def check(text: bytes, depth: int = 64) -> tuple[int, int, int]:
    return jsontext.check_objects(
        np.frombuffer(text, np.uint8), np.array([0, len(text)], np.int64), depth
    )


def orjson_object(text: bytes) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


@given(json_values, st.booleans(), st.sampled_from([None, 0, 2]))
def test_serialised_values_are_judged_like_orjson(value, ascii_only, indent):
    for text in (
        orjson.dumps(value),
        json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode(),
    ):
        assert (check(text)[0] < 0) == orjson_object(text), text


@given(json_values, st.data())
def test_mutated_texts_are_judged_like_orjson(value, data):
    text = bytearray(json.dumps({"v": value}).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.integers(0, 2))
        byte = data.draw(st.sampled_from(list(MUTATION_BYTES)))
        if op == 0 and pos < len(text):
            del text[pos]
        elif op == 1:
            text.insert(pos, byte)
        elif pos < len(text):
            text[pos] = byte
    assert (check(bytes(text))[0] < 0) == orjson_object(bytes(text)), bytes(text)


@given(st.binary(max_size=40))
def test_arbitrary_bytes_are_judged_like_orjson(text):
    assert (check(text)[0] < 0) == orjson_object(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"", jsontext.EMPTY),
        (b"  ", jsontext.EMPTY),
        (b"[1]", jsontext.NOT_OBJECT_ARRAY),
        (b'"x"', jsontext.NOT_OBJECT_STRING),
        (b"12", jsontext.NOT_OBJECT_NUMBER),
        (b"null", jsontext.NOT_OBJECT_LITERAL),
        (b'{"a": NaN}', jsontext.NON_FINITE),
        (b'{"a": Infinity}', jsontext.NON_FINITE),
        (b'{"a": -Infinity}', jsontext.NON_FINITE),
        (b'{"a": 1e400}', jsontext.NON_FINITE),
        (b'{"a": 01}', jsontext.SYNTAX),
        (b'{"a": 1.}', jsontext.BAD_NUMBER),
        (b'{"a": .5}', jsontext.SYNTAX),
        (b'{"a": +1}', jsontext.SYNTAX),
        (b'{"a": 1e}', jsontext.BAD_NUMBER),
        (b'{"a": "\xc0\x80"}', jsontext.BAD_UTF8),
        (b'{"a": "\xed\xa0\x80"}', jsontext.BAD_UTF8),
        (b'{"a": "\xf5\x80\x80\x80"}', jsontext.BAD_UTF8),
        (b'{"a": "\xe2\x82', jsontext.BAD_UTF8),
        (b'{"a": "x\ny"}', jsontext.CONTROL_CHAR),
        (b'{"a": "\\x"}', jsontext.BAD_ESCAPE),
        (b'{"a": 1,}', jsontext.SYNTAX),
        (b'{"a": [1,]}', jsontext.SYNTAX),
        (b'{"a": 1} x', jsontext.TRAILING),
        (b'{"a": tru}', jsontext.BAD_LITERAL),
        (b'{"a": 1', jsontext.UNTERMINATED),
    ],
)
def test_each_kind_of_problem_has_its_code(text, code):
    row, got, _ = check(text)
    assert (row, got) == (0, code), jsontext.describe(got)
    assert not orjson_object(text)


def test_big_integers_and_duplicate_keys_are_accepted():
    assert check(b'{"a": 123456789012345678901234567890}')[0] == -1
    assert check(b'{"a": 1, "a": 2}')[0] == -1
    assert check(b' \t{"a":{"b":[[],{}]}}\r\n')[0] == -1
    assert check(b'{"a": 1.7976931348623157e308}')[0] == -1
    assert math.isinf(float("1.8e308")) and check(b'{"a": 1.8e308}')[1] == jsontext.NON_FINITE


def test_depth_limit_counts_objects_and_arrays():
    at_limit = b'{"a":' * 3 + b"[1]" + b"}" * 3  # depth 4
    assert check(at_limit, depth=4)[0] == -1
    assert check(at_limit, depth=3)[1] == jsontext.TOO_DEEP


def test_the_first_bad_row_and_its_offset_are_reported():
    rows = [b'{"a":1}', b"{}", b'{"b": [1, 2', b'{"c":0}']
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    row, code, offset = jsontext.check_objects(np.frombuffer(b"".join(rows), np.uint8), offsets, 64)
    assert (row, code, offset) == (2, jsontext.UNTERMINATED, len(rows[2]))


@given(st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=20))
def test_split_dumped_objects_round_trips(objects):
    data, offsets = jsontext.split_dumped_objects(np.frombuffer(orjson.dumps(objects), np.uint8))
    pieces = [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
    assert [orjson.loads(p) for p in pieces] == objects
