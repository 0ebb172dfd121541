"""Checking many JSON texts in one pass: each row must be a JSON object.

Accepts exactly what ``orjson.loads`` accepts and turns into a dict, except that
integers past 64 bits are accepted (JSON allows them; orjson reads them as floats).
"""

from __future__ import annotations

import numpy as np

from allsource_lab.kernels.jit import jit

__all__ = ["ERROR_MESSAGES", "check_objects", "describe", "split_array", "split_dumped_objects"]

OK = 0
EMPTY = 1
NOT_OBJECT_ARRAY = 2
NOT_OBJECT_STRING = 3
NOT_OBJECT_NUMBER = 4
NOT_OBJECT_LITERAL = 5
SYNTAX = 6
BAD_UTF8 = 7
CONTROL_CHAR = 8
BAD_ESCAPE = 9
UNTERMINATED = 10
BAD_NUMBER = 11
NON_FINITE = 12
TOO_DEEP = 13
TRAILING = 14
BAD_LITERAL = 15

ERROR_MESSAGES = (
    "ok",
    "empty text; a JSON object is required",
    "must be a JSON object, got an array",
    "must be a JSON object, got a string",
    "must be a JSON object, got a number",
    "must be a JSON object, got true/false/null",
    "invalid JSON syntax",
    "invalid UTF-8",
    "raw control character inside a string (escape it)",
    "invalid escape sequence in a string",
    "unterminated string or object",
    "invalid number",
    "NaN/Infinity are not valid JSON",
    "nesting deeper than the limit (max_json_depth)",
    "trailing characters after the object",
    "invalid literal (expected true, false or null)",
)


def describe(code: int) -> str:
    """The message for an error code.

    >>> describe(NOT_OBJECT_ARRAY)
    'must be a JSON object, got an array'
    """
    return ERROR_MESSAGES[code] if 0 <= code < len(ERROR_MESSAGES) else "invalid JSON"


@jit
def _ws(c: int) -> bool:
    return c == 0x20 or c == 0x09 or c == 0x0A or c == 0x0D


@jit
def _skip_ws(b: np.ndarray, p: int, e: int) -> int:
    while p < e and _ws(b[p]):
        p += 1
    return p


@jit
def _hex(c: int) -> int:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@jit
def _string(b: np.ndarray, p: int, e: int) -> tuple[int, int]:
    """Scan a string starting after its opening quote; (code, position after it)."""
    while p < e:
        c = int(b[p])
        if c == 0x22:
            return OK, p + 1
        if c == 0x5C:
            if p + 1 >= e:
                return UNTERMINATED, p
            x = int(b[p + 1])
            if x == 0x75:  # \uXXXX
                if p + 6 > e:
                    return BAD_ESCAPE, p
                v = 0
                for k in range(4):
                    h = _hex(int(b[p + 2 + k]))
                    if h < 0:
                        return BAD_ESCAPE, p
                    v = v * 16 + h
                p += 6
            elif x in (0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74):
                p += 2
            else:
                return BAD_ESCAPE, p
        elif c < 0x20:
            return CONTROL_CHAR, p
        elif c < 0x80:
            p += 1
        else:
            # UTF-8: reject overlongs, surrogates and code points past U+10FFFF.
            if 0xC2 <= c <= 0xDF:
                n = 1
                lo, hi = 0x80, 0xBF
            elif c == 0xE0:
                n, lo, hi = 2, 0xA0, 0xBF
            elif 0xE1 <= c <= 0xEC or 0xEE <= c <= 0xEF:
                n, lo, hi = 2, 0x80, 0xBF
            elif c == 0xED:
                n, lo, hi = 2, 0x80, 0x9F
            elif c == 0xF0:
                n, lo, hi = 3, 0x90, 0xBF
            elif 0xF1 <= c <= 0xF3:
                n, lo, hi = 3, 0x80, 0xBF
            elif c == 0xF4:
                n, lo, hi = 3, 0x80, 0x8F
            else:
                return BAD_UTF8, p
            if p + n >= e:
                return BAD_UTF8, p
            c1 = int(b[p + 1])
            if c1 < lo or c1 > hi:
                return BAD_UTF8, p
            for k in range(2, n + 1):
                ck = int(b[p + k])
                if ck < 0x80 or ck > 0xBF:
                    return BAD_UTF8, p
            p += n + 1
    return UNTERMINATED, p


@jit
def _number(b: np.ndarray, p: int, e: int) -> tuple[int, int]:
    """Scan a number; (code, position after it).

    Besides the grammar, a number whose value overflows a double is refused (orjson
    refuses it, and a payload the store cannot read back must not be written).
    """
    if p < e and b[p] == 0x2D:
        p += 1
        if p < e and b[p] == 0x49:  # -Infinity
            return NON_FINITE, p
    if p >= e:
        return BAD_NUMBER, p
    start = p
    mant = 0  # up to 18 significant digits
    kept = 0
    scale = 0  # power of ten to apply to mant
    if b[p] == 0x30:
        p += 1
    elif 0x31 <= b[p] <= 0x39:
        while p < e and 0x30 <= b[p] <= 0x39:
            if kept < 18:
                mant = mant * 10 + int(b[p] - 0x30)
                kept += 1
            else:
                scale += 1
            p += 1
    else:
        return BAD_NUMBER, p
    if p < e and b[p] == 0x2E:
        p += 1
        if p >= e or not (0x30 <= b[p] <= 0x39):
            return BAD_NUMBER, p
        while p < e and 0x30 <= b[p] <= 0x39:
            if kept < 18 and (mant > 0 or b[p] != 0x30):
                mant = mant * 10 + int(b[p] - 0x30)
                kept += 1
                scale -= 1
            elif mant == 0:
                scale -= 1
            p += 1
    if p < e and (b[p] == 0x65 or b[p] == 0x45):
        p += 1
        sign = 1
        if p < e and (b[p] == 0x2B or b[p] == 0x2D):
            if b[p] == 0x2D:
                sign = -1
            p += 1
        if p >= e or not (0x30 <= b[p] <= 0x39):
            return BAD_NUMBER, p
        x = 0
        while p < e and 0x30 <= b[p] <= 0x39:
            if x < 100_000_000:
                x = x * 10 + int(b[p] - 0x30)
            p += 1
        scale += sign * x
    if mant != 0:
        # Decimal digits before the point of the value; doubles end just below 1.8e308.
        # Compared in integers: float arithmetic here would round near the boundary.
        digits = kept + scale
        if digits > 309:
            return NON_FINITE, start
        if digits == 309:
            mant18 = mant
            for _ in range(18 - kept):
                mant18 *= 10
            # DBL_MAX + half an ulp = 1.797693134862315807937e308 rounds to infinity.
            if mant18 > 179769313486231580:
                return NON_FINITE, start
    return OK, p


@jit
def _literal(b: np.ndarray, p: int, e: int) -> tuple[int, int]:
    c = b[p]
    if c == 0x74:
        word = (0x74, 0x72, 0x75, 0x65, 0, 0)
        n = 4
    elif c == 0x66:
        word = (0x66, 0x61, 0x6C, 0x73, 0x65, 0)
        n = 5
    elif c == 0x6E:
        word = (0x6E, 0x75, 0x6C, 0x6C, 0, 0)
        n = 4
    else:
        return BAD_LITERAL, p
    if p + n > e:
        return BAD_LITERAL, p
    for k in range(n):
        if b[p + k] != word[k]:
            return BAD_LITERAL, p
    return OK, p + n


@jit
def _object_row(
    b: np.ndarray, s: int, e: int, max_depth: int, stack: np.ndarray
) -> tuple[int, int]:
    """Validate one row; (code, absolute byte position of the problem)."""
    p = _skip_ws(b, s, e)
    if p >= e:
        return EMPTY, p
    c = b[p]
    if c == 0x5B:
        return NOT_OBJECT_ARRAY, p
    if c == 0x22:
        return NOT_OBJECT_STRING, p
    if c == 0x2D or 0x30 <= c <= 0x39:
        return NOT_OBJECT_NUMBER, p
    if c == 0x74 or c == 0x66 or c == 0x6E:
        return NOT_OBJECT_LITERAL, p
    if c == 0x4E or c == 0x49:  # NaN, Infinity
        return NON_FINITE, p
    if c != 0x7B:
        return SYNTAX, p
    # stack[d] = 1 for object, 2 for array. State: 0 expect key or '}' (just opened),
    # 1 expect value, 2 expect ',' or close, 3 expect key (after ',').
    depth = 1
    if depth > max_depth:
        return TOO_DEEP, p
    stack[0] = 1
    state = 0
    p += 1
    while True:
        p = _skip_ws(b, p, e)
        if p >= e:
            return UNTERMINATED, p
        c = b[p]
        top = stack[depth - 1]
        if state == 0 or state == 3:
            if top == 1:
                if c == 0x7D and state == 0:
                    depth -= 1
                    p += 1
                    state = 2
                elif c == 0x22:
                    code, p = _string(b, p + 1, e)
                    if code != OK:
                        return code, p
                    p = _skip_ws(b, p, e)
                    if p >= e:
                        return UNTERMINATED, p
                    if b[p] != 0x3A:
                        return SYNTAX, p
                    p += 1
                    state = 1
                    continue
                else:
                    return SYNTAX, p
            else:  # array: value or ']' (only right after '[')
                if c == 0x5D and state == 0:
                    depth -= 1
                    p += 1
                    state = 2
                else:
                    state = 1
                    continue
        elif state == 1:
            if c == 0x7B or c == 0x5B:
                if depth >= max_depth:
                    return TOO_DEEP, p
                stack[depth] = 1 if c == 0x7B else 2
                depth += 1
                p += 1
                state = 0
                continue
            if c == 0x22:
                code, p = _string(b, p + 1, e)
            elif c == 0x2D or 0x30 <= c <= 0x39:
                code, p = _number(b, p, e)
            elif c == 0x74 or c == 0x66 or c == 0x6E:
                code, p = _literal(b, p, e)
            elif c == 0x4E or c == 0x49:
                return NON_FINITE, p
            else:
                return SYNTAX, p
            if code != OK:
                return code, p
            state = 2
        else:  # state 2: after a value
            if c == 0x2C:
                p += 1
                state = 3
                continue
            if (c == 0x7D and top == 1) or (c == 0x5D and top == 2):
                depth -= 1
                p += 1
            else:
                return SYNTAX, p
        if depth == 0:
            p = _skip_ws(b, p, e)
            if p < e:
                return TRAILING, p
            return OK, p
        state = 2


@jit
def check_objects(data: np.ndarray, offsets: np.ndarray, max_depth: int) -> tuple[int, int, int]:
    """(row, code, offset) of the first row that is not a JSON object; row -1 if all are.

    ``offset`` is the byte position of the problem within that row.
    """
    stack = np.zeros(max(max_depth, 1) + 1, np.uint8)
    for r in range(len(offsets) - 1):
        s = offsets[r]
        code, p = _object_row(data, s, offsets[r + 1], max_depth, stack)
        if code != OK:
            return r, code, p - s
    return -1, OK, 0


@jit
def split_array(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the top-level elements of one compact JSON array (orjson output)."""
    n = len(data)
    starts = np.empty(n // 2 + 1, np.int64)
    ends = np.empty(n // 2 + 1, np.int64)
    count = 0
    depth = 0
    in_str = False
    p = 1  # after '['
    start = 1
    while p < n - 1:
        c = data[p]
        if in_str:
            if c == 0x5C:
                p += 2
                continue
            if c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c == 0x7B or c == 0x5B:
            depth += 1
        elif c == 0x7D or c == 0x5D:
            depth -= 1
        elif c == 0x2C and depth == 0:
            starts[count] = start
            ends[count] = p
            count += 1
            start = p + 1
        p += 1
    if n > 2:
        starts[count] = start
        ends[count] = n - 1
        count += 1
    return starts[:count].copy(), ends[:count].copy()


@jit
def _gather(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(starts)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):
        offsets[i + 1] = offsets[i] + (ends[i] - starts[i])
    out = np.empty(offsets[n], np.uint8)
    for i in range(n):
        o = offsets[i]
        for k in range(ends[i] - starts[i]):
            out[o + k] = data[starts[i] + k]
    return out, offsets


def split_dumped_objects(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The elements of ``orjson.dumps(list)`` as Arrow-layout (data, offsets).

    >>> import orjson
    >>> d, o = split_dumped_objects(np.frombuffer(orjson.dumps([{"a": "[,]"}, {}]), np.uint8))
    >>> [d[o[i]:o[i + 1]].tobytes() for i in range(len(o) - 1)]
    [b'{"a":"[,]"}', b'{}']
    """
    starts, ends = split_array(data)
    return _gather(data, starts, ends)
