"""KeyTable interns keys exactly like a dict would, through growth and in bulk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab.arrowbuf import string_buffers
from allsource_lab.kernels.keytable import KeyTable

keys = st.binary(max_size=12)


def buffers(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    return string_buffers(pa.array(items, pa.binary()))


@given(st.lists(st.one_of(st.lists(keys, max_size=30), keys), max_size=30))
def test_interning_matches_a_dict_model(steps):
    table = KeyTable(capacity=1)  # force many rehashes
    model: dict[bytes, int] = {}
    for step in steps:
        if isinstance(step, list):
            got = table.intern_many(*buffers(step)).tolist()
            want = [model.setdefault(k, len(model)) for k in step]
        else:
            got = table.intern(step)
            want = model.setdefault(step, len(model))
        assert got == want
        assert len(table) == len(model)
    for k, number in model.items():
        assert table.lookup(k) == number
        assert table.key(number) == k
    assert table.lookup(b"\xffnever-interned-key") == -1


def test_bulk_lookup_and_buffers():
    table = KeyTable()
    names = [f"entity-{i}".encode() for i in range(10_000)] + ["ü".encode(), b""]
    numbers = table.intern_many(*buffers(names))
    assert numbers.tolist() == list(range(len(names)))
    again = table.lookup_many(*buffers([b"entity-5", b"nope", b""]))
    assert again.tolist() == [5, -1, len(names) - 1]
    data, offsets = table.key_buffers()
    assert [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(names))] == names
    assert len(table.hashes()) == len(names)


def test_malformed_offsets_are_refused():
    table = KeyTable()
    with pytest.raises(ValueError, match="offsets"):
        table.intern_many(np.frombuffer(b"abc", np.uint8), np.array([0, 2, 1], np.int64))
    with pytest.raises(ValueError, match="offsets"):
        table.intern_many(np.frombuffer(b"abc", np.uint8), np.array([0, 9], np.int64))


def test_sliced_and_chunked_arrow_columns_give_the_right_buffers():
    col = pa.array(["aa", "b", "", "cc", "d"]).slice(1, 3)
    data, offsets = string_buffers(col)
    assert [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(3)] == [b"b", b"", b"cc"]
    chunked = pa.chunked_array(
        [pa.array(["x"]), pa.array(["yy"], pa.large_string()).cast(pa.string())]
    )
    data, offsets = string_buffers(chunked)
    assert offsets.tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="nulls"):
        string_buffers(pa.array(["a", None]))
