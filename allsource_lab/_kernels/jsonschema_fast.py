"""Checking many JSON object texts against one compiled JSON Schema in a single pass.

The schema arrives compiled into plain arrays (``allsource_lab.schemas.fast`` builds
them); this module knows JSON text and those arrays, nothing about jsonschema. Each row
gets a verdict: ``VALID``, ``INVALID`` or ``UNSURE``. ``UNSURE`` means "ask the reference
validator": a duplicate key (orjson keeps the last, the scan would see both), a key or
a string with escapes where bytes must be compared, a number whose exact double the
fast parse cannot promise. Rows are known to be valid JSON objects, so the scan does not
validate the syntax; it only reads it.

The schema is a table of nodes, one per subschema the scan may meet (node 0 is the
root): ``node_i[n, column]`` for the integer columns below (type bits, flags, lengths,
format, pattern, slices of the property and constant tables, items),
``node_f[n, column]`` for the numeric bounds.

The whole row is one loop with an explicit stack of open objects and arrays rather than
a function call per value: numba increments and decrements the reference count of every
array argument around a call, and a dozen arrays per value cost more than the checks.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.jit import jit

__all__ = [
    "INVALID",
    "UNSURE",
    "VALID",
    "is_date_time",
    "is_email",
    "is_uuid",
    "scan_rows",
]

VALID = 0
INVALID = 1
UNSURE = 2

# Type bits of node column TYPES. INTEGER admits numbers whose value is integral (1.0,
# 1e2), as jsonschema's Draft 4+ type checker does; NUMBER admits every number.
T_NULL = 1
T_BOOLEAN = 2
T_INTEGER = 4
T_NUMBER = 8
T_STRING = 16
T_ARRAY = 32
T_OBJECT = 64
T_ANY = 127

# Flags (node column FLAGS).
F_RANGE = 1  # minimum/maximum/exclusive*: the number's exact value is needed
F_OBJECT = 2  # properties/required/additionalProperties: descend into object values
F_ARRAY = 4  # items/minItems/maxItems: descend into array values
F_CLOSED = 8  # additionalProperties: false
F_ENUM = 16
F_CONST = 32

# Node columns.
TYPES = 0
FLAGS = 1
MIN_LENGTH = 2
MAX_LENGTH = 3
FORMAT = 4  # FMT_* below
PATTERN = 5  # index into the caller's list of patterns, or -1
ENUM_LO = 6  # enum members are constants[ENUM_LO:ENUM_HI]
ENUM_HI = 7
CONST_LO = 8
CONST_HI = 9
PROP_LO = 10  # the object's named properties are props[PROP_LO:PROP_HI]
PROP_HI = 11
ITEMS = 12  # node of every array item, or -1 (anything)
MIN_ITEMS = 13
MAX_ITEMS = 14
NODE_COLUMNS = 15
# node_f columns: bounds as doubles, -inf/inf when absent.
MINIMUM = 0
MAXIMUM = 1
EXCLUSIVE_MINIMUM = 2
EXCLUSIVE_MAXIMUM = 3

FMT_NONE = 0
FMT_DATE_TIME = 1
FMT_EMAIL = 2
FMT_UUID = 3

# prop_flags bits. A name can be required without being listed in ``properties``; under
# ``additionalProperties: false`` it is then an extra key all the same.
P_REQUIRED = 1
P_LISTED = 2

# Constant kinds (enum and const members; scalars only).
K_NULL = 0
K_TRUE = 1
K_FALSE = 2
K_NUMBER = 3
K_STRING = 4

_OBJ_FRAME = 0
_ARR_FRAME = 1


def _byte_table(members: bytes) -> np.ndarray:
    table = np.zeros(256, np.uint8)
    table[np.frombuffer(members, np.uint8)] = 1
    return table


_WS = _byte_table(b" \t\n\r")
_DIGIT = _byte_table(b"0123456789")
_HEX = _byte_table(b"0123456789abcdefABCDEF")
# Bytes that end a number or a literal that is being skipped.
_END = _byte_table(b" \t\n\r,]}")
# 10**k for k <= 22 are exact doubles: a mantissa below 2**53 times or over one of them
# is one correctly rounded operation, the same double orjson produces (Clinger's fast
# path). Anything else is UNSURE rather than risk an off-by-one-ulp verdict at a bound.
_POW10 = np.array([10.0**k for k in range(23)])
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


@jit
def _skip(b: np.ndarray, p: int, e: int) -> int:
    """The position after the JSON value that starts at p (strings, containers, scalars)."""
    depth = 0
    while p < e:
        c = b[p]
        if c == 0x22:
            p += 1
            while p < e and b[p] != 0x22:
                p += 2 if b[p] == 0x5C else 1
            p += 1
            if depth == 0:
                return p
        elif c == 0x7B or c == 0x5B:
            depth += 1
            p += 1
        elif c == 0x7D or c == 0x5D:
            if depth == 0:
                return p  # the end of a scalar that is the last member
            depth -= 1
            p += 1
            if depth == 0:
                return p
        elif depth == 0 and _END[c]:
            return p
        else:
            p += 1
    return p


@jit
def _two(b: np.ndarray, p: int) -> int:
    """Two ASCII digits at p as a number, or -1."""
    if not (_DIGIT[b[p]] and _DIGIT[b[p + 1]]):
        return -1
    return int(b[p] - 0x30) * 10 + int(b[p + 1] - 0x30)


@jit
def is_date_time(b: np.ndarray, s: int, e: int) -> bool:
    """Whether b[s:e] is an RFC 3339 date-time, as ``fast.format_checker`` defines it.

    ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)``, 'T' and 'Z' in either case,
    a real calendar day, and second 60 only where it is 23:59 in UTC (a leap second).
    """
    if e - s < 20:
        return False
    year = _two(b, s) * 100 + _two(b, s + 2)
    month = _two(b, s + 5)
    day = _two(b, s + 8)
    hour = _two(b, s + 11)
    minute = _two(b, s + 14)
    second = _two(b, s + 17)
    if _two(b, s) < 0 or _two(b, s + 2) < 0 or min(month, day, hour, minute, second) < 0:
        return False
    if b[s + 4] != 0x2D or b[s + 7] != 0x2D or b[s + 13] != 0x3A or b[s + 16] != 0x3A:
        return False
    if b[s + 10] != 0x54 and b[s + 10] != 0x74:
        return False
    if month < 1 or month > 12 or day < 1 or hour > 23 or minute > 59 or second > 60:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day > _DAYS[month] + (1 if month == 2 and leap else 0):
        return False
    p = s + 19
    if b[p] == 0x2E:
        p += 1
        q = p
        while p < e and _DIGIT[b[p]]:
            p += 1
        if p == q:
            return False
    if p >= e:
        return False
    offset = 0
    if b[p] == 0x5A or b[p] == 0x7A:
        p += 1
    elif b[p] == 0x2B or b[p] == 0x2D:
        if p + 6 != e or b[p + 3] != 0x3A:
            return False
        oh = _two(b, p + 1)
        om = _two(b, p + 4)
        if oh < 0 or om < 0 or oh > 23 or om > 59:
            return False
        offset = oh * 60 + om if b[p] == 0x2B else -(oh * 60 + om)
        p += 6
    else:
        return False
    if p != e:
        return False
    return second < 60 or (hour * 60 + minute - offset) % 1440 == 1439


@jit
def is_email(b: np.ndarray, s: int, e: int) -> bool:
    """Whether b[s:e] (with no escapes) is ``local@domain.tld`` as ``format_checker`` says.

    One '@' with something before it, no space, and a '.' in the domain with something
    on each side of it. Other whitespace cannot occur unescaped in JSON text.
    """
    at = -1
    for p in range(s, e):
        c = b[p]
        if c == 0x20:
            return False
        if c == 0x40:
            if at >= 0:
                return False
            at = p
    if at <= s:
        return False
    for p in range(at + 2, e - 1):
        if b[p] == 0x2E:
            return True
    return False


@jit
def is_uuid(b: np.ndarray, s: int, e: int) -> bool:
    """Whether b[s:e] is 8-4-4-4-12 hex digits (either case)."""
    if e - s != 36:
        return False
    for k in range(36):
        c = b[s + k]
        if k == 8 or k == 13 or k == 18 or k == 23:
            if c != 0x2D:
                return False
        elif not _HEX[c]:
            return False
    return True


@jit
def _number(b: np.ndarray, p: int, e: int) -> tuple[int, float, bool, bool]:
    """Read the number at p: (end, value, written as an integer, value is exact)."""
    negative = b[p] == 0x2D
    if negative:
        p += 1
    mantissa = 0
    digits = 0  # significant digits in mantissa (leading zeros do not count)
    scale = 0  # decimal exponent from the fraction
    integral = True
    while p < e and _DIGIT[b[p]]:
        if digits < 18:
            mantissa = mantissa * 10 + int(b[p] - 0x30)
            if mantissa:
                digits += 1
        else:
            digits += 1
        p += 1
    if p < e and b[p] == 0x2E:
        integral = False
        p += 1
        while p < e and _DIGIT[b[p]]:
            if digits < 18:
                mantissa = mantissa * 10 + int(b[p] - 0x30)
                if mantissa:
                    digits += 1
                scale -= 1
            else:
                digits += 1
            p += 1
    exponent = 0
    if p < e and (b[p] == 0x65 or b[p] == 0x45):
        integral = False
        p += 1
        minus = b[p] == 0x2D
        if b[p] == 0x2D or b[p] == 0x2B:
            p += 1
        while p < e and _DIGIT[b[p]]:
            if exponent < 100_000:
                exponent = exponent * 10 + int(b[p] - 0x30)
            p += 1
        if minus:
            exponent = -exponent
    exact = digits < 18 and mantissa < 2**53
    power = exponent + scale
    value = float(mantissa)
    if mantissa == 0:
        exact = digits < 18
    elif 0 <= power <= 22:
        value = value * _POW10[power]
    elif -22 <= power < 0:
        value = value / _POW10[-power]
    else:
        exact = False
    return p, -value if negative else value, integral, exact


@jit
def _grow(a: np.ndarray) -> np.ndarray:
    """A copy of the 2-D array ``a`` with room for twice as many rows, and 16 more."""
    out = np.empty((2 * len(a) + 16, a.shape[1]), a.dtype)
    out[: len(a)] = a
    return out


@jit
def _property(
    b: np.ndarray, key: int, size: int, names: np.ndarray, offsets: np.ndarray, lo: int, hi: int
) -> int:
    """Which of properties lo..hi is named b[key:key + size] (byte for byte), or -1."""
    for k in range(lo, hi):
        if offsets[k + 1] - offsets[k] != size:
            continue
        at = offsets[k]
        same = True
        for t in range(size):
            if names[at + t] != b[key + t]:
                same = False
                break
        if same:
            return k
    return -1


@jit
def _lacks_required(flags: np.ndarray, seen: np.ndarray, lo: int, hi: int, stamp: int) -> bool:
    """Whether a required one of properties lo..hi was not met in object ``stamp``."""
    for k in range(lo, hi):
        if flags[k] & P_REQUIRED and seen[k] != stamp:
            return True
    return False


@jit
def _has_format(b: np.ndarray, s: int, e: int, fmt: int) -> bool:
    """Whether b[s:e] (no escapes) is a string of format ``fmt`` (FMT_*, not FMT_NONE)."""
    if fmt == FMT_DATE_TIME:
        return is_date_time(b, s, e)
    if fmt == FMT_EMAIL:
        return is_email(b, s, e)
    return is_uuid(b, s, e)


@jit
def _is_member(
    kind: int,
    number: float,
    b: np.ndarray,
    s: int,
    e: int,
    lo: int,
    hi: int,
    const_kind: np.ndarray,
    const_number: np.ndarray,
    const_offsets: np.ndarray,
    const_bytes: np.ndarray,
) -> bool:
    """Whether a scalar of ``kind`` (its ``number``, or its string b[s:e]) equals one of
    constants lo..hi."""
    for k in range(lo, hi):
        if const_kind[k] != kind:
            continue
        if kind == K_NUMBER:
            if const_number[k] == number:
                return True
        elif kind == K_STRING:
            at = const_offsets[k]
            size = const_offsets[k + 1] - at
            if size != e - s:
                continue
            same = True
            for t in range(size):
                if const_bytes[at + t] != b[s + t]:
                    same = False
                    break
            if same:
                return True
        else:
            return True
    return False


@jit
def scan_rows(
    data: np.ndarray,
    offsets: np.ndarray,
    node_i: np.ndarray,
    node_f: np.ndarray,
    prop_node: np.ndarray,
    prop_flags: np.ndarray,
    prop_offsets: np.ndarray,
    prop_names: np.ndarray,
    const_kind: np.ndarray,
    const_number: np.ndarray,
    const_offsets: np.ndarray,
    const_bytes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Verdicts for every row, and the strings that still need a ``pattern`` check.

    Row i is ``data[offsets[i]:offsets[i + 1]]``, a JSON object checked against node 0.
    Returns ``(verdicts, tasks)``: uint8 VALID/INVALID/UNSURE per row, and an int64
    ``(k, 4)`` array of (row, pattern, start, end) for string values that passed every
    other check and must still match pattern ``pattern`` (byte span, no escapes). A
    row's tasks only matter if its verdict is VALID.
    """
    # Long on purpose where a split measured slower (ns per ~170-byte row, numba 0.68, 2
    # cores, one thread, min of 41 runs): a helper call to scan each key and each string
    # value cost 5-6% (375 -> 397 flat, 485 -> 515 with nested objects and arrays), so
    # those scans stay inline; the property lookup, the required-key check, the format
    # check and the enum/const lookup are helpers, within the noise (+-2%). The pattern
    # tasks live in one growable (k, 4) array: as four arrays, reassigned in the loop
    # when they grow, the kernel was 20-25% slower (470 flat, 630-720 nested).
    n = len(offsets) - 1
    verdicts = np.zeros(n, np.uint8)
    tasks = np.empty((16, 4), np.int64)
    count = 0
    frames = len(node_i) + 1
    frame_kind = np.zeros(frames, np.int64)
    frame_node = np.zeros(frames, np.int64)
    frame_stamp = np.zeros(frames, np.int64)  # which object instance a frame is
    frame_items = np.zeros(frames, np.int64)
    # seen[prop] == stamp of the object being scanned: that key was already met in it.
    seen = np.zeros(len(prop_node), np.int64)
    stamp = 0
    for r in range(n):
        p = offsets[r]
        e = offsets[r + 1]
        while p < e and _WS[data[p]]:
            p += 1
        p += 1  # the '{'
        depth = 0
        stamp += 1
        frame_kind[0] = _OBJ_FRAME
        frame_node[0] = 0
        frame_stamp[0] = stamp
        verdict = VALID
        # A failed check does not end the scan: a later duplicate of the key that led
        # to it would replace the value in the decoder. Only UNSURE ends a row early.
        bad = False
        while True:
            while p < e and _WS[data[p]]:
                p += 1
            if p >= e:
                verdict = UNSURE  # cannot happen for a JSON object; be safe, not fast
                break
            c = data[p]
            if c == 0x2C:
                p += 1
                continue
            node = frame_node[depth]
            if frame_kind[depth] == _OBJ_FRAME:
                lo = node_i[node, PROP_LO]
                hi = node_i[node, PROP_HI]
                if c == 0x7D:
                    if _lacks_required(prop_flags, seen, lo, hi, frame_stamp[depth]):
                        bad = True
                    p += 1
                    if depth == 0:
                        break
                    depth -= 1
                    continue
                key = p + 1
                q = key
                escaped = False
                while q < e and data[q] != 0x22:
                    if data[q] == 0x5C:
                        escaped = True
                        q += 2
                    else:
                        q += 1
                p = q + 1
                while p < e and (_WS[data[p]] or data[p] == 0x3A):
                    p += 1
                prop = _property(data, key, q - key, prop_names, prop_offsets, lo, hi)
                if escaped and (hi > lo or node_i[node, FLAGS] & F_CLOSED):
                    verdict = UNSURE  # "\u0061" is "a": bytes cannot tell
                    break
                if prop < 0 or not prop_flags[prop] & P_LISTED:
                    if node_i[node, FLAGS] & F_CLOSED:
                        bad = True
                    if prop < 0:
                        p = _skip(data, p, e)
                        continue
                if seen[prop] == frame_stamp[depth]:
                    verdict = UNSURE  # a duplicate key: the last one wins in the decoder
                    break
                seen[prop] = frame_stamp[depth]
                child = prop_node[prop]
            else:
                if c == 0x5D:
                    items = frame_items[depth]
                    if items < node_i[node, MIN_ITEMS] or items > node_i[node, MAX_ITEMS]:
                        bad = True
                    p += 1
                    depth -= 1
                    continue
                frame_items[depth] += 1
                child = node_i[node, ITEMS]
            if child < 0:
                p = _skip(data, p, e)
                continue

            # The value at p, against node `child`.
            types = node_i[child, TYPES]
            flags = node_i[child, FLAGS]
            c = data[p]
            if c == 0x7B or c == 0x5B:
                obj = c == 0x7B
                if not types & (T_OBJECT if obj else T_ARRAY) or flags & (F_ENUM | F_CONST):
                    bad = True  # (enum and const members are scalars here)
                    p = _skip(data, p, e)
                elif flags & (F_OBJECT if obj else F_ARRAY):
                    depth += 1
                    frame_kind[depth] = _OBJ_FRAME if obj else _ARR_FRAME
                    frame_node[depth] = child
                    stamp += 1
                    frame_stamp[depth] = stamp
                    frame_items[depth] = 0
                    p += 1
                else:
                    p = _skip(data, p, e)
                continue
            kind = K_NUMBER
            number = 0.0
            start = p + 1
            q = p
            escaped = False
            if c == 0x22:
                kind = K_STRING
                q = start
                points = 0  # code points, as len() counts them
                while q < e:
                    x = data[q]
                    if x == 0x22:
                        break
                    if x == 0x5C:
                        escaped = True
                        if data[q + 1] == 0x75:
                            # A low surrogate escape completes a pair already counted.
                            h = data[q + 2] | 0x20
                            low = h == 0x64 and 0x63 <= (data[q + 3] | 0x20) <= 0x66
                            if not low:
                                points += 1
                            q += 6
                        else:
                            points += 1
                            q += 2
                    else:
                        if (x & 0xC0) != 0x80:
                            points += 1
                        q += 1
                p = q + 1
                if not types & T_STRING or not (
                    node_i[child, MIN_LENGTH] <= points <= node_i[child, MAX_LENGTH]
                ):
                    bad = True
                    continue
                fmt = node_i[child, FORMAT]
                pattern = node_i[child, PATTERN]
                if escaped and (fmt != FMT_NONE or pattern >= 0 or flags & (F_ENUM | F_CONST)):
                    verdict = UNSURE
                    break
                if fmt != FMT_NONE and not _has_format(data, start, q, fmt):
                    bad = True
                    continue
                if pattern >= 0:
                    if count == len(tasks):
                        tasks = _grow(tasks)
                    tasks[count, 0] = r
                    tasks[count, 1] = pattern
                    tasks[count, 2] = start
                    tasks[count, 3] = q
                    count += 1
            elif c == 0x74 or c == 0x66:
                kind = K_TRUE if c == 0x74 else K_FALSE
                p += 4 if c == 0x74 else 5
                if not types & T_BOOLEAN:
                    bad = True
                    continue
            elif c == 0x6E:
                kind = K_NULL
                p += 4
                if not types & T_NULL:
                    bad = True
                    continue
            else:
                p, number, integral, exact = _number(data, p, e)
                if not types & T_NUMBER:
                    if not types & T_INTEGER:
                        bad = True
                        continue
                    if not integral:
                        if not exact:
                            verdict = UNSURE
                            break
                        if number != np.floor(number):
                            bad = True
                            continue
                if flags & (F_RANGE | F_ENUM | F_CONST) and not exact:
                    verdict = UNSURE
                    break
                if flags & F_RANGE and not (
                    number >= node_f[child, MINIMUM]
                    and number <= node_f[child, MAXIMUM]
                    and number > node_f[child, EXCLUSIVE_MINIMUM]
                    and number < node_f[child, EXCLUSIVE_MAXIMUM]
                ):
                    bad = True
                    continue
            for which in range(2):
                if not flags & (F_ENUM if which == 0 else F_CONST):
                    continue
                lo = node_i[child, ENUM_LO if which == 0 else CONST_LO]
                hi = node_i[child, ENUM_HI if which == 0 else CONST_HI]
                if not _is_member(
                    kind,
                    number,
                    data,
                    start,
                    q,
                    lo,
                    hi,
                    const_kind,
                    const_number,
                    const_offsets,
                    const_bytes,
                ):
                    bad = True
        verdicts[r] = INVALID if bad and verdict == VALID else verdict
    return verdicts, tasks[:count].copy()
