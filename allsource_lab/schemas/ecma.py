"""ECMA-262 regular expressions (``pattern``, ``patternProperties``) as Python ``re`` patterns.

JSON Schema reads its regular expressions as ECMA-262 (JavaScript) does, with Unicode
semantics: ``\\p{Letter}`` is a Unicode property, ``$`` is only the end of the text (not
"before a final newline"), ``\\d``/``\\w``/``\\b`` are ASCII while ``\\s`` and ``.`` know
the Unicode spaces and line terminators. Python's ``re`` differs in every one of these,
and jsonschema hands the pattern text to ``re`` as it is.

:func:`translate` parses a pattern as ECMA-262 (Unicode mode) and writes a Python pattern
that matches exactly the same strings: every character class is spelled out as code
point ranges, ``$`` becomes ``\\Z``, groups get names private to the pattern (so that
patterns joined with ``|``, as jsonschema does for ``additionalProperties``, keep their
own back references). The schema handed to jsonschema, the compiled fast path and the
compatibility checker all read the translation, so they agree with each other and with
ECMA-262.

Beyond strict Unicode mode, an escaped ASCII punctuation character (``\\-``, ``\\_``,
``\\:``) is that character, and a ``{``, ``}`` or ``]`` that starts nothing is itself,
as in JavaScript without the ``u`` flag and in Python. Not supported (refused with a
``SchemaError`` that says so): script properties (``\\p{Script=Greek}``), property
values Python's ``unicodedata`` does not know, and lookbehinds that Python cannot run
(not of fixed width).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable

from allsource_lab.errors import SchemaError

__all__ = ["compile_lenient", "search", "translate"]

Ranges = list[tuple[int, int]]
MAX = 0x10FFFF


class _NotEcma(Exception):
    """A pattern that is not ECMA-262 or not supported (becomes a SchemaError)."""


_DIGITS: Ranges = [(0x30, 0x39)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
# WhiteSpace and LineTerminator of ECMA-262: TAB, LF, VT, FF, CR, the Zs spaces, LS, PS
# and ZWNBSP (U+FEFF).
_SPACES: Ranges = [
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
]  # fmt: skip
_LINE_TERMINATORS: Ranges = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]
_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
# \b and \B spelled out: Python's \B never matches the empty text, ECMA-262's does.
_W = "[0-9A-Za-z_]"
_BOUNDARY = f"(?:(?<={_W})(?!{_W})|(?<!{_W})(?={_W}))"
_NOT_BOUNDARY = f"(?:(?<={_W})(?={_W})|(?<!{_W})(?!{_W}))"
_CONTROL = {"f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}

# General_Category values and their long names (ECMA-262 accepts both, and a few more).
_CATEGORY_NAMES = {
    "L": "Letter", "LC": "Cased_Letter", "Lu": "Uppercase_Letter", "Ll": "Lowercase_Letter",
    "Lt": "Titlecase_Letter", "Lm": "Modifier_Letter", "Lo": "Other_Letter", "M": "Mark",
    "Mn": "Nonspacing_Mark", "Mc": "Spacing_Mark", "Me": "Enclosing_Mark", "N": "Number",
    "Nd": "Decimal_Number", "Nl": "Letter_Number", "No": "Other_Number", "P": "Punctuation",
    "Pc": "Connector_Punctuation", "Pd": "Dash_Punctuation", "Ps": "Open_Punctuation",
    "Pe": "Close_Punctuation", "Pi": "Initial_Punctuation", "Pf": "Final_Punctuation",
    "Po": "Other_Punctuation", "S": "Symbol", "Sm": "Math_Symbol", "Sc": "Currency_Symbol",
    "Sk": "Modifier_Symbol", "So": "Other_Symbol", "Z": "Separator",
    "Zs": "Space_Separator", "Zl": "Line_Separator", "Zp": "Paragraph_Separator",
    "C": "Other", "Cc": "Control", "Cf": "Format", "Cs": "Surrogate", "Co": "Private_Use",
    "Cn": "Unassigned",
}  # fmt: skip
_CATEGORY_ALIASES = {
    **{name: short for short, name in _CATEGORY_NAMES.items()},
    **{short: short for short in _CATEGORY_NAMES},
    "Combining_Mark": "M", "digit": "Nd", "punct": "P", "cntrl": "Cc",
}  # fmt: skip


def _merge(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    at = 0
    for lo, hi in _merge(ranges):
        if lo > at:
            out.append((at, lo - 1))
        at = hi + 1
    if at <= MAX:
        out.append((at, MAX))
    return out


@functools.cache
def _categories() -> dict[str, Ranges]:
    """Code point ranges of every two-letter General_Category: one pass over every code
    point, 0.15-0.4 s once per process (measured on a busy 2-core machine)."""
    found: dict[str, Ranges] = {}
    start, current = 0, unicodedata.category("\0")
    for cp in range(1, MAX + 2):
        category = unicodedata.category(chr(cp)) if cp <= MAX else ""
        if category != current:
            found.setdefault(current, []).append((start, cp - 1))
            start, current = cp, category
    return found


def _property(text: str) -> Ranges:
    """The code points of ``\\p{text}``."""
    name, _, value = text.partition("=")
    if value:
        if name not in ("General_Category", "gc"):
            raise _NotEcma(f"the property {name!r} is not supported (only General_Category)")
        name = value
    if name == "Any":
        return [(0, MAX)]
    if name == "ASCII":
        return [(0, 0x7F)]
    if name == "Assigned":
        return _complement(_categories().get("Cn", []))
    short = _CATEGORY_ALIASES.get(name)
    if short is None:
        raise _NotEcma(f"unknown or unsupported Unicode property {text!r}")
    table = _categories()
    members: tuple[str, ...]
    if short == "LC":
        members = ("Lu", "Ll", "Lt")
    elif len(short) == 1:
        members = tuple(c for c in table if c.startswith(short))
    else:
        members = (short,)
    return _merge(r for c in members for r in table.get(c, []))


def _class_text(ranges: Ranges) -> str:
    """A Python class of exactly these code points.

    re walks a class this long range by range: ``^\\p{L}+$`` (~650 ranges) costs ~2.3 us a
    short word against ~0.8 us for Python's own ``^[^\\W\\d_]+$`` (which is not the
    same set; median of 7 runs over 50,000 words, on a busy 2-core machine). Splitting the
    class at the BMP border measured no faster. Classes of a few ranges cost what
    Python's own spelling does.
    """
    ranges = _merge(ranges)
    if not ranges:
        return "(?!)"
    parts = [f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges]
    return "[" + "".join(parts) + "]"


class _Parser:
    """One pass over an ECMA-262 pattern, writing the Python pattern as it goes."""

    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0
        self.out: list[str] = []
        self.tag = hashlib.blake2b(pattern.encode("utf-8", "surrogatepass"), digest_size=4)
        self.names, self.count = self._groups()
        self.opened = 0
        self.open_groups: list[int] = []  # capturing groups not yet closed, innermost last

    def fail(self, why: str) -> _NotEcma:
        return _NotEcma(f"{why} at position {self.i}")

    def _groups(self) -> tuple[dict[str, int], int]:
        """Names and number of the capturing groups (back references may come first)."""
        names: dict[str, int] = {}
        count = 0
        i, s, in_class = 0, self.s, False
        while i < len(s):
            c = s[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
            elif c == "(" and not s.startswith("(?", i):
                count += 1
            elif c == "(" and s.startswith("(?<", i) and s[i + 3 : i + 4] not in ("=", "!"):
                count += 1
                end = s.find(">", i)
                if end > 0:
                    names.setdefault(s[i + 3 : end], count)
            i += 1
        return names, count

    def group_name(self, number: int) -> str:
        return f"e{self.tag.hexdigest()}_{number}"

    def peek(self, text: str) -> bool:
        return self.s.startswith(text, self.i)

    def run(self) -> str:
        self.disjunction()
        if self.i < len(self.s):
            raise self.fail("unmatched ')'")
        return "".join(self.out)

    def disjunction(self) -> None:
        while True:
            while self.i < len(self.s) and not self.peek("|") and not self.peek(")"):
                self.term()
            if not self.peek("|"):
                return
            self.out.append("|")
            self.i += 1

    def term(self) -> None:
        s = self.s
        c = s[self.i]
        if c == "^":
            self.out.append("^")
            self.i += 1
            return self.no_quantifier()
        if c == "$":
            self.out.append(r"\Z")
            self.i += 1
            return self.no_quantifier()
        if self.peek("\\b") or self.peek("\\B"):
            self.out.append(_BOUNDARY if s[self.i + 1] == "b" else _NOT_BOUNDARY)
            self.i += 2
            return self.no_quantifier()
        for opener in ("(?=", "(?!", "(?<=", "(?<!"):
            if self.peek(opener):
                self.out.append(opener)
                self.i += len(opener)
                self.close_group()
                return self.no_quantifier()
        self.atom()
        self.quantifier()

    def close_group(self) -> None:
        self.disjunction()
        if not self.peek(")"):
            raise self.fail("missing ')'")
        self.out.append(")")
        self.i += 1

    def no_quantifier(self) -> None:
        if self.quantifier_text() is not None:
            raise self.fail("nothing to repeat")

    def quantifier_text(self) -> str | None:
        """The quantifier at i (without consuming it), or None."""
        s, i = self.s, self.i
        if i >= len(s):
            return None
        if s[i] in "*+?":
            return s[i]
        m = re.match(r"\{([0-9]+)(,([0-9]*))?\}", s[i:])
        return m.group(0) if m else None

    def quantifier(self) -> None:
        text = self.quantifier_text()
        if text is None:
            return
        m = re.fullmatch(r"\{([0-9]+)(?:,([0-9]*))?\}", text)
        if m and m.group(2) and int(m.group(2)) < int(m.group(1)):
            raise self.fail("numbers out of order in {} quantifier")
        self.out.append(text)
        self.i += len(text)
        if self.peek("?"):
            self.out.append("?")
            self.i += 1
        if self.quantifier_text() is not None:
            raise self.fail("nothing to repeat")

    def atom(self) -> None:
        s = self.s
        c = s[self.i]
        if c in "*+?" or (c == "{" and self.quantifier_text() is not None):
            raise self.fail("nothing to repeat")
        if c == ".":
            self.out.append(_class_text(_complement(_LINE_TERMINATORS)))
            self.i += 1
        elif c == "[":
            self.out.append(_class_text(self.char_class()))
        elif c == "(":
            if self.peek("(?:"):
                self.out.append("(?:")
                self.i += 3
            elif self.peek("(?<"):
                end = s.find(">", self.i)
                name = s[self.i + 3 : end] if end > 0 else ""
                if not name or not re.fullmatch(r"[^\W\d]\w*|\$\w*", name):
                    raise self.fail("invalid group name")
                self.i = end + 1
                self.capture()
                return
            elif self.peek("(?"):
                raise self.fail("invalid group")
            else:
                self.i += 1
                self.capture()
                return
            self.close_group()
        elif c == ")":
            raise self.fail("unmatched ')'")
        elif c == "\\":
            self.i += 1
            self.atom_escape()
        else:
            self.out.append(re.escape(c))
            self.i += 1

    def capture(self) -> None:
        self.opened += 1
        self.open_groups.append(self.opened)
        self.out.append(f"(?P<{self.group_name(self.opened)}>")
        self.close_group()
        self.open_groups.pop()

    def back_reference(self, number: int) -> None:
        if not 1 <= number <= self.count:
            raise self.fail(f"no group {number} to refer back to")
        if number > self.opened or number in self.open_groups:
            # Not captured yet in this pass (ECMA-262 clears a repeated atom's groups on
            # every repetition): it matches the empty string.
            self.out.append("(?:)")
            return
        # ECMA-262: a group that has not matched matches the empty string; Python's
        # reference would fail there, so it is asked only when the group has matched.
        name = self.group_name(number)
        self.out.append(f"(?({name})(?P={name}))")

    def atom_escape(self) -> None:
        s = self.s
        if self.i >= len(s):
            raise self.fail("\\ at end of pattern")
        c = s[self.i]
        if c == "k":
            m = re.match(r"k<([^>]+)>", s[self.i :])
            if not m or m.group(1) not in self.names:
                raise self.fail("\\k without a group of that name")
            self.i += len(m.group(0))
            return self.back_reference(self.names[m.group(1)])
        if c in "123456789":
            m = re.match(r"[0-9]+", s[self.i :])
            assert m is not None
            self.i += len(m.group(0))
            return self.back_reference(int(m.group(0)))
        found = self.class_escape(in_class=False)
        if isinstance(found, int):
            self.out.append(re.escape(chr(found)))
        else:
            self.out.append(_class_text(found))

    def class_escape(self, in_class: bool) -> int | Ranges:
        """The escape after a backslash: one code point or a set of them."""
        s = self.s
        c = s[self.i]
        self.i += 1
        sets = {"d": _DIGITS, "w": _WORD, "s": _SPACES}
        if c.lower() in sets:
            found = sets[c.lower()]
            return _complement(found) if c.isupper() else list(found)
        if c in "pP":
            m = re.match(r"\{([A-Za-z_=]+)\}", s[self.i :])
            if not m:
                raise self.fail(f"\\{c} needs a property name in braces")
            self.i += len(m.group(0))
            try:
                members = _property(m.group(1))
            except _NotEcma as exc:
                raise self.fail(str(exc)) from None
            return _complement(members) if c == "P" else members
        if c in _CONTROL:
            return _CONTROL[c]
        if c == "b" and in_class:
            return 0x08
        if c == "0" and not s[self.i : self.i + 1].isdigit():
            return 0
        if c == "c":
            if self.i < len(s) and s[self.i].isascii() and s[self.i].isalpha():
                self.i += 1
                return ord(s[self.i - 1]) % 32
            raise self.fail("\\c needs a letter")
        if c == "x":
            m = re.match(r"[0-9A-Fa-f]{2}", s[self.i :])
            if not m:
                raise self.fail("\\x needs two hex digits")
            self.i += 2
            return int(m.group(0), 16)
        if c == "u":
            return self.unicode_escape()
        if c in _SYNTAX or c == "-" or (c.isascii() and not c.isalnum() and c.isprintable()):
            return ord(c)
        raise self.fail(f"unknown escape \\{c}")

    def unicode_escape(self) -> int:
        s = self.s
        m = re.match(r"\{([0-9A-Fa-f]+)\}", s[self.i :])
        if m:
            value = int(m.group(1), 16)
            if value > MAX:
                raise self.fail("\\u{...} past U+10FFFF")
            self.i += len(m.group(0))
            return value
        m = re.match(r"[0-9A-Fa-f]{4}", s[self.i :])
        if not m:
            raise self.fail("\\u needs four hex digits or {hex}")
        self.i += 4
        value = int(m.group(0), 16)
        low = re.match(r"\\u(d[c-f][0-9a-f]{2})", s[self.i :], re.IGNORECASE)
        if 0xD800 <= value <= 0xDBFF and low:
            self.i += 6
            return 0x10000 + ((value - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00)
        return value

    def char_class(self) -> Ranges:
        s = self.s
        self.i += 1
        negate = self.peek("^")
        if negate:
            self.i += 1
        members: Ranges = []
        while True:
            if self.i >= len(s):
                raise self.fail("missing ']'")
            if s[self.i] == "]":
                self.i += 1
                break
            first = self.class_atom()
            if self.peek("-") and self.i + 1 < len(s) and s[self.i + 1] != "]":
                self.i += 1
                last = self.class_atom()
                if not isinstance(first, int) or not isinstance(last, int):
                    raise self.fail("a class escape cannot bound a range")
                if last < first:
                    raise self.fail("range out of order in character class")
                members.append((first, last))
            elif isinstance(first, int):
                members.append((first, first))
            else:
                members += first
        return _complement(members) if negate else _merge(members)

    def class_atom(self) -> int | Ranges:
        c = self.s[self.i]
        if c != "\\":
            self.i += 1
            return ord(c)
        self.i += 1
        if self.i >= len(self.s):
            raise self.fail("\\ at end of pattern")
        if self.s[self.i] in "123456789k":
            raise self.fail("a back reference inside a character class")
        return self.class_escape(in_class=True)


@functools.lru_cache(maxsize=4096)
def translate(pattern: str) -> str:
    """The Python ``re`` pattern that matches what ECMA-262 ``pattern`` matches.

    Raises:
        SchemaError: ``pattern`` is not an ECMA-262 regular expression (or uses one of
            the few parts this module does not support; the message says which).

    >>> bool(re.search(translate(r"^\\p{Letter}+$"), "Grüße"))
    True
    >>> bool(re.search(translate("^a$"), "a\\n")), bool(re.search(translate(r"\\d"), "٣"))
    (False, False)
    >>> translate("(?P<n>a)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    allsource_lab.errors.SchemaError: '(?P<n>a)' is not an ECMA-262 regular expression: ...
    """
    if not isinstance(pattern, str):
        raise SchemaError(f"a regular expression is a string, not {type(pattern).__name__}")
    try:
        python = _Parser(pattern).run()
    except _NotEcma as exc:
        raise SchemaError(f"{pattern!r} is not an ECMA-262 regular expression: {exc}") from None
    try:
        re.compile(python)
    except re.error as exc:
        raise SchemaError(
            f"{pattern!r} is ECMA-262 but cannot be run here ({exc}); lookbehinds must "
            "have a fixed width"
        ) from None
    return python


@functools.lru_cache(maxsize=4096)
def compile_lenient(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled as ECMA-262; if it is not ECMA-262 but Python reads it, as
    Python reads it (a schema registered before patterns were read as ECMA-262 keeps
    working as it did).

    Raises:
        SchemaError: neither reads it.

    >>> compile_lenient(r"\\p{Lu}").search("aB") is not None
    True
    """
    try:
        return re.compile(translate(pattern))
    except SchemaError:
        try:
            return re.compile(pattern)
        except (re.error, TypeError):
            raise SchemaError(f"{pattern!r} is not a regular expression") from None


def search(pattern: str, text: str) -> bool:
    """Whether ECMA-262 ``pattern`` matches somewhere in ``text`` (see :func:`compile_lenient`).

    >>> search("^[^]$", "\\n"), search("[]", "a")
    (True, False)
    """
    return compile_lenient(pattern).search(text) is not None
