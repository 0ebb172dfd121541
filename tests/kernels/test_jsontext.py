"""The JSON check refuses exactly what orjson will not read as a dict; the splitter cuts lists.

Differential tests against orjson.loads (the oracle), explicit cases for every error code
with the offset it reports, and round trips of orjson.dumps(list) through the splitter.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab._kernels import jsontext

# Big enough that only orjson's own limit of 1024 applies in the differential tests.
NO_LIMIT = 10_000
DOUBLE_LIMIT = str(2**1024 - 2**970)  # the smallest decimal orjson reads as infinity

# Strings with lone surrogates: json.dumps escapes them (ensure_ascii) or, with
# "surrogatepass", writes them as UTF-8-encoded surrogates; orjson refuses both.
texts = st.text(max_size=8) | st.text(
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=3
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: past 64 bits too
    | st.integers(10**300, 10**320)  # around the largest double
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=15,
)
objects = st.dictionaries(texts, json_values, max_size=5)
WHITESPACE = [b" ", b"\t", b"\n", b"\r"]
INTERESTING_BYTES = list(b'{}[]",:\\ \t019.eE+-tfnulNIu')
INTERESTING_BYTES += list(b"\x00\x1f\x7f\x80\xbf\xc0\xc3\xed\xf4\xf5\xff")


def check(text: bytes, max_depth: int = NO_LIMIT) -> tuple[int, int, int]:
    offsets = np.array([0, len(text)], np.int64)
    return jsontext.check_objects(np.frombuffer(text, np.uint8), offsets, max_depth)


def orjson_reads_an_object(text: bytes) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def assert_judged_like_orjson(text: bytes) -> None:
    row, code, offset = check(text)
    assert (row == -1) == orjson_reads_an_object(text), (text, jsontext.describe(code))
    if row == 0:
        assert code != jsontext.OK and 0 <= offset <= len(text)


def serialisations(value: Any, data: st.DataObject) -> list[bytes]:
    """The texts of ``value`` as orjson, json (varied) and a random-whitespace writer."""
    found = []
    # orjson cannot write integers past 64 bits or lone surrogates; json can.
    with contextlib.suppress(orjson.JSONEncodeError):
        found.append(orjson.dumps(value))
    indent = data.draw(st.sampled_from([None, 0, 2, "\t"]))
    separators = data.draw(st.sampled_from([None, (",", ":"), (" ,\r\n", " :\t")]))
    ensure_ascii = data.draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators)
    found.append(text.encode("utf-8", "surrogatepass"))
    found.append(spaced(value, data))
    return found


def spaced(value: Any, data: st.DataObject) -> bytes:
    def ws() -> bytes:
        return b"".join(data.draw(st.lists(st.sampled_from(WHITESPACE), max_size=2)))

    if isinstance(value, dict):
        items = [ws() + spaced(k, data) + ws() + b":" + spaced(v, data) for k, v in value.items()]
        return ws() + b"{" + b",".join(items) + ws() + b"}" + ws()
    if isinstance(value, list):
        return ws() + b"[" + b",".join(spaced(v, data) for v in value) + ws() + b"]" + ws()
    ascii_only = data.draw(st.booleans())
    return ws() + json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + ws()


def mutate(text: bytes, data: st.DataObject) -> bytes:
    out = bytearray(text)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(out)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255))
        if op == "insert":
            out.insert(pos, byte)
        elif pos < len(out):
            if op == "delete":
                del out[pos]
            else:
                out[pos] = byte
    return bytes(out)


@given(json_values | objects, st.data())
def test_serialised_values_are_judged_like_orjson(value, data):
    for text in serialisations(value, data):
        assert_judged_like_orjson(text)


@given(objects, st.data())
def test_mutated_objects_are_judged_like_orjson(value, data):
    for text in serialisations(value, data):
        assert_judged_like_orjson(mutate(text, data))


@given(st.binary(max_size=40))
def test_arbitrary_bytes_are_judged_like_orjson(text):
    assert_judged_like_orjson(text)


TOKENS = ["{", "}", "[", "]", '"', '"a"', ":", ",", " ", "0", "1", "-", ".", "e", "+"]
TOKENS += ["true", "null", "fals", "NaN", "\\", "\\u", "d800", "\\udc00", "é", "\n"]


@given(st.lists(st.sampled_from(TOKENS), max_size=12), st.booleans())
def test_token_soup_is_judged_like_orjson(tokens, opened):
    # Mostly-grammatical noise reaches deeper states than random bytes do.
    text = ("{" if opened else "") + "".join(tokens)
    assert_judged_like_orjson(text.encode())


@given(st.from_regex(r"\A-?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{0,4})?\Z"))
def test_number_grammar_is_judged_like_orjson(number):
    assert_judged_like_orjson(b'{"n": ' + number.encode() + b"}")


@given(
    st.integers(1, 330),
    st.integers(-1, 1),
    st.integers(-2, 2),
    st.sampled_from(["{}e{}", "{}.{}e{}", "0.00{}{}e{}", "plain"]),
    st.booleans(),
)
def test_numbers_near_the_largest_double_are_judged_like_orjson(k, nudge, shift, form, minus):
    # The first k digits of the limit, nudged by one unit in the last place, scaled to
    # land just below, at or just above it.
    digits = str(max(int(DOUBLE_LIMIT[:k]) + nudge, 1))
    size = len(digits)
    if form == "{}e{}":
        number = f"{digits}e{309 - size + shift}"
    elif form == "{}.{}e{}":
        number = f"{digits[0]}.{digits[1:] or '0'}e{308 + shift}"
    elif form == "0.00{}{}e{}":
        number = f"0.00{digits}e{311 + shift}"
    else:
        number = digits + "0" * max(309 - size + shift, 0)
    assert_judged_like_orjson(b'{"n": ' + (b"-" if minus else b"") + number.encode() + b"}")


def test_numbers_at_the_double_limit_are_refused_exactly_where_orjson_refuses():
    below = str(int(DOUBLE_LIMIT) - 1)
    for text, ok in [
        (below, True),
        (below + ".999999999999999999999999", True),
        (DOUBLE_LIMIT, False),
        (DOUBLE_LIMIT[:20] + "." + DOUBLE_LIMIT[20:] + "e289", False),
        ("0." + below + "e309", True),
        ("1.7976931348623157e308", True),
        ("1.797693134862315807937e308", True),
        ("1.797693134862315807938e308", False),
    ]:
        for sign in ("", "-"):
            payload = f'{{"n": {sign}{text}}}'.encode()
            assert orjson_reads_an_object(payload) is ok, text
            assert (check(payload)[0] == -1) is ok, text


E = jsontext


@pytest.mark.parametrize(
    ("text", "code", "offset"),
    [
        (b"", E.EMPTY, 0),
        (b" \t\r\n", E.EMPTY, 4),
        (b"[1]", E.NOT_OBJECT_ARRAY, 0),
        (b' "x"', E.NOT_OBJECT_STRING, 1),
        (b"-12", E.NOT_OBJECT_NUMBER, 0),
        (b"null", E.NOT_OBJECT_LITERAL, 0),
        (b"true", E.NOT_OBJECT_LITERAL, 0),
        (b"NaN", E.NON_FINITE, 0),
        (b"x", E.NOT_JSON, 0),
        (b"\xef\xbb\xbf{}", E.NOT_JSON, 0),  # a byte-order mark
        (b"\x0c{}", E.NOT_JSON, 0),  # form feed is not JSON whitespace
        (b'{"a": NaN}', E.NON_FINITE, 6),
        (b'{"a": Infinity}', E.NON_FINITE, 6),
        (b'{"a": -Infinity}', E.NON_FINITE, 6),
        (b'{"a": 1e400}', E.NUMBER_TOO_LARGE, 6),
        (b'{"a": -1e400}', E.NUMBER_TOO_LARGE, 6),
        (b'{"a": ' + b"9" * 309 + b"}", E.NUMBER_TOO_LARGE, 6),
        (b'{"a": 01}', E.BAD_NUMBER, 7),
        (b'{"a": -01}', E.BAD_NUMBER, 8),
        (b'{"a": 1.}', E.BAD_NUMBER, 8),
        (b'{"a": 1.e5}', E.BAD_NUMBER, 8),
        (b'{"a": .5}', E.BAD_NUMBER, 6),
        (b'{"a": +1}', E.BAD_NUMBER, 6),
        (b'{"a": 1e}', E.BAD_NUMBER, 8),
        (b'{"a": 1e+}', E.BAD_NUMBER, 9),
        (b'{"a": -}', E.BAD_NUMBER, 7),
        (b'{"a": 1x}', E.EXPECTED_COMMA, 7),
        (b'{"a": "\xc0\x80"}', E.BAD_UTF8, 7),  # overlong NUL
        (b'{"a": "\xe0\x80\x80"}', E.BAD_UTF8, 7),  # overlong
        (b'{"a": "\xed\xa0\x80"}', E.BAD_UTF8, 7),  # UTF-8-encoded U+D800
        (b'{"a": "\xed\xbf\xbf"}', E.BAD_UTF8, 7),  # UTF-8-encoded U+DFFF
        (b'{"a": "\xf4\x90\x80\x80"}', E.BAD_UTF8, 7),  # U+110000
        (b'{"a": "\xf5\x80\x80\x80"}', E.BAD_UTF8, 7),
        (b'{"a": "\xff"}', E.BAD_UTF8, 7),
        (b'{"a": "\x80"}', E.BAD_UTF8, 7),  # a continuation byte alone
        (b'{"a": "\xe2\x82', E.BAD_UTF8, 7),  # truncated at the end of the row
        (b'{"a": "\xe2\x82"}', E.BAD_UTF8, 7),  # truncated by the closing quote
        (b'{"a": "x\ny"}', E.CONTROL_CHAR, 8),
        (b'{"a": "\x00"}', E.CONTROL_CHAR, 7),
        (b'{"a": "\x1f"}', E.CONTROL_CHAR, 7),
        (b'{"a": "\\x"}', E.BAD_ESCAPE, 7),
        (b'{"a": "\\U0041"}', E.BAD_ESCAPE, 7),
        (b'{"a": "\\u12"}', E.BAD_ESCAPE, 7),
        (b'{"a": "\\u12G4"}', E.BAD_ESCAPE, 7),
        (b'{"a": "\\ud800"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\udc00"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\uD800x"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\ud800\\u0041"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\ud800\\ud800"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\udc00\\ud800"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\ud800\\n"}', E.LONE_SURROGATE, 7),
        (b'{"a": "\\ud800\\u12"}', E.BAD_ESCAPE, 13),
        (b'{"\\ud800": 1}', E.LONE_SURROGATE, 2),
        (b'{"a": "abc', E.UNTERMINATED, 10),
        (b'{"a": "x\\', E.UNTERMINATED, 8),
        (b'{"a": 1', E.UNTERMINATED, 7),
        (b'{"a": [1, 2', E.UNTERMINATED, 11),
        (b'{"a"', E.UNTERMINATED, 4),
        (b"{", E.UNTERMINATED, 1),
        (b'{"a": 1,}', E.EXPECTED_KEY, 8),
        (b"{a: 1}", E.EXPECTED_KEY, 1),
        (b"{,}", E.EXPECTED_KEY, 1),
        (b"{'a': 1}", E.EXPECTED_KEY, 1),
        (b'{"a" 1}', E.EXPECTED_COLON, 5),
        (b'{"a": 1 "b": 2}', E.EXPECTED_COMMA, 8),
        (b'{"a": [1 2]}', E.EXPECTED_COMMA, 9),
        (b'{"a": [1}', E.EXPECTED_COMMA, 8),
        (b'{"a": {"b": 1]}', E.EXPECTED_COMMA, 13),
        (b'{"a": [1,]}', E.EXPECTED_VALUE, 9),
        (b'{"a": [,]}', E.EXPECTED_VALUE, 7),
        (b'{"a": }', E.EXPECTED_VALUE, 6),
        (b'{"a": True}', E.EXPECTED_VALUE, 6),
        (b'{"a": tru}', E.BAD_LITERAL, 6),
        (b'{"a": nul', E.BAD_LITERAL, 6),
        (b'{"a": falsy}', E.BAD_LITERAL, 6),
        (b'{"a": 1} x', E.TRAILING, 9),
        (b'{"a": 1}{}', E.TRAILING, 8),
        (b'{"a": 1},', E.TRAILING, 8),
        (b"{} \x00", E.TRAILING, 3),
    ],
)
def test_each_kind_of_problem_has_its_code_and_offset(text, code, offset):
    assert not orjson_reads_an_object(text)
    assert check(text) == (0, code, offset), jsontext.describe(check(text)[1])


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 123456789012345678901234567890}',  # past 64 bits: orjson reads a float
        b'{"a": -18446744073709551617}',
        b'{"a": 1, "a": 2}',  # duplicate keys: the last one wins in orjson
        b' \t\r\n{ "a" : [ ] , "b" : { } , "c" : [ 1 , { } ] }\r\n\t ',
        b'{"a": 1.7976931348623157e308, "b": 1e-400, "c": 0e99999999999999999999}',
        b'{"a": -0, "b": -0.0, "c": 1E+2, "d": 1e-2, "e": 0.5e1}',
        b'{"a": "\\ud800\\udc00", "b": "\\uDBFF\\uDFFF"}',  # escaped surrogate pairs
        b'{"a": "\xf4\x8f\xbf\xbf\xef\xbf\xbf\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}',
        b'{"a": "\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000"}',
        b'{"": null, "t": true, "f": false, "[{,:}]": "[{,:}]"}',
        b"{}",
    ],
)
def test_valid_objects_are_accepted(text):
    assert orjson_reads_an_object(text)
    assert check(text) == (-1, jsontext.OK, 0)


def nested(depth: int) -> bytes:
    """An object nesting ``depth`` levels, alternating objects and arrays."""
    text = b"0"
    for level in range(depth, 0, -1):
        text = b'{"k":' + text + b"}" if level % 2 else b"[" + text + b"]"
    return text


@pytest.mark.parametrize("max_depth", [1, 2, 3, 64])
def test_nesting_is_allowed_up_to_max_depth_and_no_further(max_depth):
    assert check(nested(max_depth), max_depth) == (-1, jsontext.OK, 0)
    text = nested(max_depth + 1)
    opening = [i for i, c in enumerate(text) if c in b"{["][max_depth]
    assert check(text, max_depth) == (0, jsontext.TOO_DEEP, opening)


def test_nesting_past_orjsons_limit_is_refused_whatever_max_depth_says():
    limit = jsontext.ORJSON_MAX_DEPTH
    assert orjson_reads_an_object(nested(limit))
    assert not orjson_reads_an_object(nested(limit + 1))
    assert check(nested(limit), 10 * limit)[0] == -1
    assert check(nested(limit + 1), 10 * limit)[1] == jsontext.TOO_DEEP


def test_a_max_depth_below_one_refuses_every_object():
    assert check(b"{}", 0) == (0, jsontext.TOO_DEEP, 0)
    assert check(b" {}", -5) == (0, jsontext.TOO_DEEP, 1)


def column(rows: list[bytes], prefix: bytes = b"") -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([len(prefix)] + [len(r) for r in rows]).astype(np.int64)
    return np.frombuffer(prefix + b"".join(rows), np.uint8), offsets


def test_the_first_bad_row_in_the_middle_is_reported_with_its_offset():
    rows = [b'{"a":1}', b"{}", b'{"b": [1, 2', b'{"c": 0}', b"[]"]
    data, offsets = column(rows)
    assert jsontext.check_objects(data, offsets, 64) == (2, jsontext.UNTERMINATED, 11)
    # A slice of the offsets (as the parallel caller passes) counts rows from the slice.
    assert jsontext.check_objects(data, offsets[3:], 64) == (1, jsontext.NOT_OBJECT_ARRAY, 0)
    assert jsontext.check_objects(data, offsets[:3], 64) == (-1, jsontext.OK, 0)


@given(st.lists(json_values | objects, min_size=1, max_size=8), st.data())
def test_many_rows_report_the_first_row_orjson_refuses(values, data):
    rows = [data.draw(st.sampled_from(serialisations(v, data))) for v in values]
    rows = [mutate(r, data) if data.draw(st.booleans()) else r for r in rows]
    prefix = data.draw(st.binary(max_size=3))  # offsets need not start at 0
    col, offsets = column(rows, prefix)
    bad = [i for i, r in enumerate(rows) if not orjson_reads_an_object(r)]
    row, code, offset = jsontext.check_objects(col, offsets, NO_LIMIT)
    if not bad:
        assert (row, code, offset) == (-1, jsontext.OK, 0)
    else:
        assert row == bad[0]
        assert (0, code, offset) == check(rows[row])


def test_offsets_outside_the_data_are_refused():
    data = np.frombuffer(b'{"a":1}', np.uint8)
    with pytest.raises(ValueError, match="offsets"):
        jsontext.check_objects(data, np.array([0, 8], np.int64), 64)
    with pytest.raises(ValueError, match="offsets"):
        jsontext.check_objects(data, np.array([0, 7, 3], np.int64), 64)


def test_no_rows_means_no_bad_row():
    assert jsontext.check_objects(np.empty(0, np.uint8), np.zeros(1, np.int64), 64)[0] == -1


def test_every_code_has_a_message():
    codes = [
        v
        for k, v in vars(jsontext).items()
        if k.isupper() and not k.startswith("_") and k != "ORJSON_MAX_DEPTH" and isinstance(v, int)
    ]
    assert sorted(codes) == list(range(len(jsontext.ERROR_MESSAGES)))
    assert len(set(jsontext.ERROR_MESSAGES)) == len(jsontext.ERROR_MESSAGES)


# Strings full of what a naive splitter would take for structure.
tricky_text = st.text(st.sampled_from('[]{},:"\\/ aé\n\x00\U0001f600'), max_size=8)
dumpable = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=10,
)


@given(st.lists(st.dictionaries(tricky_text, dumpable, max_size=4), max_size=20))
def test_split_dumped_objects_round_trips_lists_of_dicts(values):
    dumped = orjson.dumps(values)
    data, offsets = jsontext.split_dumped_objects(np.frombuffer(dumped, np.uint8))
    assert offsets.dtype == np.int64 and data.dtype == np.uint8 and offsets[0] == 0
    pieces = [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
    assert pieces == [orjson.dumps(v) for v in values]
    assert [orjson.loads(p) for p in pieces] == orjson.loads(dumped)


@given(st.lists(dumpable, max_size=20))
def test_split_array_finds_every_element_of_any_list(values):
    dumped = orjson.dumps(values)
    starts, ends = jsontext.split_array(np.frombuffer(dumped, np.uint8))
    assert [dumped[s:e] for s, e in zip(starts, ends, strict=True)] == [
        orjson.dumps(v) for v in values
    ]


def test_split_array_handles_far_more_elements_than_its_first_guess():
    values = [{}] * 5000 + [{"a": [1, {"b": ","}]}] * 3000  # 3 bytes each: many regrowths
    starts, ends = jsontext.split_array(np.frombuffer(orjson.dumps(values), np.uint8))
    assert len(starts) == len(ends) == len(values)
    dumped = orjson.dumps(values)
    assert [orjson.loads(dumped[s:e]) for s, e in zip(starts, ends, strict=True)] == values


def test_split_array_refuses_text_that_is_not_an_array():
    for text in (b"", b"[", b"{}", b"[1,2"):
        with pytest.raises(ValueError, match="array"):
            jsontext.split_array(np.frombuffer(text, np.uint8))


NO_JIT_SCRIPT = r"""
import numpy as np, orjson
from allsource_lab._kernels import jsontext as j
def check(t, depth=64):
    return j.check_objects(np.frombuffer(t, np.uint8), np.array([0, len(t)], np.int64), depth)
assert check(b'{"a": [1, 2.5e3, "\\ud83d\\ude00", "\xc3\xa9", true, null]}') == (-1, 0, 0)
assert check(b'{"a": "\\ud800"}') == (0, j.LONE_SURROGATE, 7)
assert check(b'{"a": "\xed\xa0\x80"}') == (0, j.BAD_UTF8, 7)
assert check(b'{"a": 1.797693134862315807938e308}') == (0, j.NUMBER_TOO_LARGE, 6)
assert check(b'{"a": [[1]]}', 2) == (0, j.TOO_DEEP, 7)
text = orjson.dumps([{"a": "],\\\""}, {"b": [1, {}]}])
data, offsets = j.split_dumped_objects(np.frombuffer(text, np.uint8))
pieces = [data[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
assert [orjson.loads(p) for p in pieces] == orjson.loads(text)
print("ok")
"""


def test_the_kernels_give_the_same_answers_with_the_jit_disabled():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", NO_JIT_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
