"""JSON text built a column at a time with Arrow compute, for generated datasets.

Generated payloads are objects of a fixed shape whose strings are identifiers (ASCII,
no quotes or backslashes), so each value column is rendered to JSON text once and the
objects are joined element-wise in C++: ~0.1 s per million objects of ten fields, where
a dict per row encoded by orjson costs ~1 s before the store sees a byte.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["integers", "iso_seconds", "json_objects", "money", "nullable", "quoted"]


def json_objects(fields: Sequence[tuple[str, pa.Array]]) -> pa.Array:
    """One JSON object per row from ``(key, JSON text of the value)`` columns.

    >>> json_objects([("a", integers(np.array([1, 2]))), ("b", quoted(pa.array(["x", "y"])))]
    ... ).to_pylist()
    ['{"a":1,"b":"x"}', '{"a":2,"b":"y"}']
    """
    if not fields:
        raise ValueError("an object needs at least one field")
    parts: list[str | pa.Array] = []
    for i, (key, values) in enumerate(fields):
        parts.append(("{" if i == 0 else ",") + f'"{key}":')
        parts.append(values)
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def quoted(values: pa.Array) -> pa.Array:
    """Strings as JSON strings; the values must need no escaping (identifiers, codes)."""
    return pc.binary_join_element_wise('"', values, '"', "")


def integers(values: np.ndarray) -> pa.Array:
    """Integers as JSON numbers.

    >>> integers(np.array([-1, 20])).to_pylist()
    ['-1', '20']
    """
    return pc.cast(pa.array(values.astype(np.int64, copy=False)), pa.string())


def money(cents: np.ndarray) -> pa.Array:
    """Whole cents as exact JSON numbers with two decimals (``1999`` -> ``19.99``).

    Formatting the integer parts avoids float-to-text rounding: the text is the amount.

    >>> money(np.array([1999, 5, 120000])).to_pylist()
    ['19.99', '0.05', '1200.00']
    """
    cents = cents.astype(np.int64, copy=False)
    if len(cents) and int(cents.min()) < 0:
        raise ValueError("money() takes amounts >= 0")
    whole = integers(cents // 100)
    frac = pc.utf8_lpad(integers(cents % 100), width=2, padding="0")
    return pc.binary_join_element_wise(whole, ".", frac, "")


def iso_seconds(us: np.ndarray) -> pa.Array:
    """Microseconds since the epoch as quoted ISO-8601 UTC times to the second.

    >>> iso_seconds(np.array([1_000_000])).to_pylist()
    ['"1970-01-01T00:00:01Z"']
    """
    seconds = pa.array(us.astype(np.int64, copy=False) // 1_000_000, pa.int64())
    # A zone-less cast prints "YYYY-MM-DD HH:MM:SS" ~30x faster than strftime or a
    # cast with a zone (measured: 7 ms vs 0.22 s per 336K values).
    text = pc.replace_substring(seconds.cast(pa.timestamp("s")).cast(pa.string()), " ", "T")
    return pc.binary_join_element_wise('"', text, 'Z"', "")


def nullable(values: pa.Array, present: np.ndarray) -> pa.Array:
    """``values`` where ``present`` is True, JSON ``null`` elsewhere.

    >>> nullable(integers(np.array([1, 2])), np.array([True, False])).to_pylist()
    ['1', 'null']
    """
    return pc.if_else(pa.array(present, pa.bool_()), values, "null")
