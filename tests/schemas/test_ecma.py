"""ECMA-262 patterns: the translation matches what an ECMA-262 engine matches.

The reference is ``regress`` (the Rust ECMA-262 engine, Unicode mode), on generated
patterns and texts: a pattern it accepts is accepted and matches the same texts; one it
refuses is refused, unless it uses one of the documented leniencies (an escaped ``-``
outside a class, a lone ``{``, ``}`` or ``]``).
"""

from __future__ import annotations

import re

import pytest
import regress
from hypothesis import given, settings
from hypothesis import strategies as st

from allsource_lab.errors import SchemaError
from allsource_lab.schemas import ecma

TOKENS = [
    "a", "b", "é", "😀", "1", ".", "^", "$", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S",
    r"\b", r"\B", "[ab]", "[^a]", "[a-c]", r"[\d_]", r"[\s\S]", "(", ")", "(?:", "(?=",
    "(?!", "|", "*", "+", "?", "{1,2}", "{2}", "*?", r"\p{L}", r"\P{Lu}", r"\p{Nd}",
    r"\p{Letter}", r"[\p{Ll}1]", r"\u00e9", r"\u{1F600}", r"\x41", r"\n", r"\1", "(?<n>",
    r"\k<n>", "[^]", "[]", " ", "-", r"\.", r"\-", r"\/", r"[\b]", r"\cJ", r"\0",
]  # fmt: skip
TEXT = "abé😀1_ \n\r\t\u2028A٣-.\u00a0"
LENIENT = (r"\-", "]", "{", "}")
# regress lets a quantifier follow \b or \B; ECMA-262 does not (they are assertions).
QUANTIFIED_BOUNDARY = re.compile(r"\\[bB](\*|\+|\?|\{)")

patterns = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=7).map("".join)
texts = st.lists(st.text(TEXT, max_size=6), min_size=4, max_size=12)


def reference(pattern: str) -> regress.Regex | None:
    try:
        return regress.Regex(pattern, "u")
    except regress.RegressError:
        return None


def translated(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(ecma.translate(pattern))
    except SchemaError:
        return None


@settings(max_examples=600)
@given(patterns, texts)
def test_a_pattern_matches_what_an_ecma_262_engine_matches(pattern, samples):
    theirs, mine = reference(pattern), translated(pattern)
    if theirs is None:
        assert mine is None or any(t in pattern for t in LENIENT), pattern
        return
    if mine is None and QUANTIFIED_BOUNDARY.search(pattern):
        return
    assert mine is not None, pattern
    for text in samples:
        assert (mine.search(text) is not None) == (theirs.find(text) is not None), (
            pattern,
            text,
            mine.pattern,
        )


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^\p{Letter}+$", "Grüße", True),
        (r"^\p{Letter}+$", "Grüße1", False),
        (r"^\p{L}\p{Nd}$", "ж٣", True),
        (r"\P{L}", "abc", False),
        (r"^\p{gc=Lu}$", "É", True),
        ("^a$", "a\n", False),  # $ is the end of the text, not before a final newline
        (r"^\d$", "٣", False),  # \d is ASCII
        (r"^\w$", "é", False),  # so is \w
        (r"^\s$", "\u3000", True),  # \s knows the Unicode spaces
        (r"^\s$", "\ufeff", True),
        ("^.$", "\u2028", False),  # . stops at every line terminator
        ("^.$", "😀", True),  # one code point, not two surrogates
        (r"\bb", "éb", True),  # é is not a word character for \b
        (r"\B", "", True),  # no word character on either side
        ("(a)|\\1b", "b", True),  # a group that did not match matches the empty text
        (r"(?<n>a)\k<n>", "aa", True),
        ("[^]", "\n", True),
        ("[]", "a", False),
        (r"^\u{1F600}$", "😀", True),
        (r"^\uD83D\uDE00$", "😀", True),
    ],
)
def test_ecma_262_readings_that_python_re_reads_otherwise(pattern, text, matches):
    assert ecma.search(pattern, text) is matches
    theirs = reference(pattern)
    assert theirs is not None and (theirs.find(text) is not None) is matches


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(?P<n>a)", "invalid group"),
        (r"\A", r"unknown escape \\A"),
        (r"\Z", r"unknown escape \\Z"),
        ("(?i)a", "invalid group"),
        ("a{3,2}", "numbers out of order"),
        ("a**", "nothing to repeat"),
        (r"[\d-z]", "a class escape cannot bound a range"),
        ("(a", r"missing '\)'"),
        ("a)", r"unmatched '\)'"),
        (r"\2(a)", "no group 2"),
        (r"\p{Script=Greek}", "only General_Category"),
        (r"\p{Nope}", "unknown or unsupported Unicode property"),
        ("(?<=a+)b", "lookbehinds must have a fixed width"),
    ],
)
def test_a_pattern_that_is_not_ecma_262_or_not_supported_says_why(pattern, why):
    with pytest.raises(SchemaError, match=why):
        ecma.translate(pattern)


def test_patterns_joined_by_alternation_keep_their_own_back_references():
    # jsonschema joins patternProperties names with "|" for additionalProperties.
    joined = re.compile("|".join([ecma.translate(r"(a)\1"), ecma.translate(r"(b)\1")]))
    assert joined.fullmatch("bb") is not None
    assert joined.fullmatch("ab") is None


def test_a_python_only_pattern_stored_earlier_keeps_its_python_reading():
    assert ecma.search(r"(?P<x>a)(?P=x)", "aa")
    with pytest.raises(SchemaError, match="is not a regular expression"):
        ecma.search("(", "a")
