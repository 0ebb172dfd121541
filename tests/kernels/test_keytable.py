"""KeyTable numbers keys exactly as a dict would, through growth, in bulk and one by one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab._kernels.keytable import KeyTable
from allsource_lab._storage.arrowbuf import string_array_from_buffers

# Short keys from a small alphabet repeat often and are prefixes of one another; text
# adds multi-byte UTF-8; long ones take the eight-bytes-at-a-time comparison.
keys = st.one_of(
    st.binary(max_size=3).map(lambda b: bytes(c % 3 for c in b)),
    st.text(max_size=6).map(str.encode),
    st.sampled_from([b"", b"a", b"ab", b"abc", "é".encode(), "日本".encode(), b"\x00"]),
    st.binary(min_size=8, max_size=40),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("intern_many"), st.lists(keys, max_size=30)),
        st.tuples(st.just("lookup_many"), st.lists(keys, max_size=10)),
        st.tuples(st.just("intern"), keys),
        st.tuples(st.just("intern_hashed"), keys),
        st.tuples(st.just("lookup"), keys),
    ),
    max_size=25,
)


def arrow_layout(items: list[bytes], dtype: type = np.int64) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(items) + 1, dtype)
    offsets[1:] = np.cumsum([len(b) for b in items])
    return np.frombuffer(b"".join(items), np.uint8), offsets


@given(steps, st.sampled_from([1, 4, 1024]))
def test_interning_matches_a_dict_model(steps, capacity):
    table = KeyTable(capacity=capacity)
    model: dict[bytes, int] = {}
    for op, arg in steps:
        if op == "intern_many":
            got = table.intern_many(*arrow_layout(arg)).tolist()
            want = [model.setdefault(k, len(model)) for k in arg]
        elif op == "lookup_many":
            got = table.lookup_many(*arrow_layout(arg)).tolist()
            want = [model.get(k, -1) for k in arg]
        elif op == "intern":
            got, want = table.intern(arg), model.setdefault(arg, len(model))
        elif op == "intern_hashed":
            got = table.intern_hashed(arg)
            want = (model.setdefault(arg, len(model)), xxhash.xxh64_intdigest(arg))
        else:
            got, want = table.lookup(arg), model.get(arg, -1)
        assert got == want, op
        assert len(table) == len(model)
    assert [table.key(n) for n in range(len(table))] == list(model)
    assert table.hashes().tolist() == [xxhash.xxh64_intdigest(k) for k in model]


def test_growth_across_many_rehashes_keeps_every_number():
    table = KeyTable(capacity=1)
    names = [f"entity-{i}".encode() for i in range(50_000)]
    for lo, hi in [(0, 1), (1, 7), (7, 1000), (1000, 1001), (1001, 50_000)]:
        # Every new key is followed by an older one, so known and new keys interleave.
        batch = [name for i in range(lo, hi) for name in (names[i], names[i // 2])]
        numbers = table.intern_many(*arrow_layout(batch))
        assert numbers.tolist() == [int(name[7:]) for name in batch]
    assert len(table) == len(names)
    assert table.lookup_many(*arrow_layout(names)).tolist() == list(range(len(names)))
    assert table.key(49_999) == b"entity-49999"


def test_one_at_a_time_growth_of_slots_numbers_and_key_bytes():
    # Capacity 1 and keys longer than the 16 bytes per key first reserved: every kind of
    # growth happens between single interns, and the numbers agree with bulk lookups.
    table = KeyTable(capacity=1)
    names = [f"a-rather-long-entity-name-{i}".encode() for i in range(5000)]
    for i, name in enumerate(names):
        assert table.intern_hashed(name) == (i, xxhash.xxh64_intdigest(name))
        assert table.intern(names[i // 2]) == i // 2
    assert table.lookup_many(*arrow_layout(names)).tolist() == list(range(len(names)))
    assert table.key(4999) == names[4999]


def test_new_keys_are_numbered_from_the_old_length_in_row_order():
    table = KeyTable()
    table.intern_many(*arrow_layout([b"a", b"b"]))
    before = len(table)
    numbers = table.intern_many(*arrow_layout([b"z", b"a", b"y", b"z"]))
    assert numbers.tolist() == [2, 0, 3, 2]
    assert [table.key(n) for n in numbers[numbers >= before]] == [b"z", b"y", b"z"]


def test_lookup_many_adds_nothing():
    table = KeyTable()
    table.intern(b"known")
    assert table.lookup_many(*arrow_layout([b"known", b"new", b""])).tolist() == [0, -1, -1]
    assert len(table) == 1
    assert table.lookup(b"new") == -1


def test_hashes_are_xxh64_with_seed_0_of_each_key():
    table = KeyTable()
    items = [b"", b"a", "ü".encode(), b"x" * 100]
    table.intern_many(*arrow_layout(items))
    assert [table.hash_of(n) for n in range(4)] == [xxhash.xxh64_intdigest(k) for k in items]
    assert table.hashes().dtype == np.uint64


def test_key_buffers_build_a_large_string_array():
    table = KeyTable(capacity=1)
    items = ["order-1", "", "café", "order-10", "order-1"]
    table.intern_many(*arrow_layout([s.encode() for s in items]))
    data, offsets = table.key_buffers()
    assert data.dtype == np.uint8 and offsets.dtype == np.int64
    assert string_array_from_buffers(data, offsets).to_pylist() == [
        "order-1",
        "",
        "café",
        "order-10",
    ]
    direct = pa.LargeStringArray.from_buffers(len(table), pa.py_buffer(offsets), pa.py_buffer(data))
    assert direct.to_pylist() == ["order-1", "", "café", "order-10"]


def test_views_are_read_only_snapshots():
    table = KeyTable(capacity=1)
    table.intern(b"a")
    hashes = table.hashes()
    data, offsets = table.key_buffers()
    table.intern_many(*arrow_layout([f"k{i}".encode() for i in range(100)]))
    assert len(hashes) == 1 and data.tobytes() == b"a" and offsets.tolist() == [0, 1]
    for view in (hashes, data, offsets):
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 0


def test_int32_offsets_and_offsets_not_starting_at_zero_are_accepted():
    table = KeyTable()
    data, offsets = arrow_layout([b"ab", b"c"], np.int32)
    assert table.intern_many(data, offsets).tolist() == [0, 1]
    assert table.lookup_many(data, np.array([2, 3], np.int64)).tolist() == [1]


@pytest.mark.parametrize(
    "offsets",
    [[0, 2, 1], [0, 4], [-1, 2], [], [[0, 1], [1, 2]], [0.0, 1.0]],
    ids=["decreasing", "past-the-end", "negative", "empty", "two-dimensional", "floats"],
)
def test_malformed_offsets_are_refused(offsets):
    table = KeyTable()
    for method in (table.intern_many, table.lookup_many):
        with pytest.raises(ValueError, match="offsets"):
            method(np.frombuffer(b"abc", np.uint8), np.array(offsets))
    assert len(table) == 0


def test_data_that_is_not_bytes_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        KeyTable().intern_many(np.array([97, 98], np.int64), np.array([0, 1, 2]))


def test_key_and_hash_of_refuse_numbers_that_were_never_given():
    table = KeyTable()
    table.intern(b"a")
    for number in (-1, 1):
        with pytest.raises(IndexError, match="holds 1 keys"):
            table.key(number)
        with pytest.raises(IndexError):
            table.hash_of(number)
