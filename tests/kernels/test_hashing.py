"""The numba XXH64 is bit-exact with the xxhash package: partitions on disk depend on it."""

from __future__ import annotations

import numpy as np
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab._kernels.hashing import partitions_of, xxh64, xxh64_many

seeds = st.one_of(st.just(0), st.integers(1, 2**64 - 1))


def as_seed(seed: int) -> int | np.uint64:
    # A compiled kernel takes a Python int as int64; larger seeds go in as numpy uint64.
    return np.uint64(seed) if seed >= 2**63 else seed


def u8(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8)


def arrow_layout(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(items) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in items])
    return u8(b"".join(items)), offsets


@given(st.binary(max_size=100), seeds)
def test_xxh64_matches_reference_for_any_bytes(data, seed):
    assert int(xxh64(u8(data), 0, len(data), as_seed(seed))) == xxhash.xxh64_intdigest(data, seed)


@given(st.binary(min_size=32, max_size=300), st.integers(0, 40), seeds)
def test_xxh64_matches_reference_for_long_inputs_at_any_alignment(data, skip, seed):
    # Past 32 bytes the four-lane stripe loop runs; a skipped prefix makes reads unaligned.
    start = min(skip, len(data))
    got = xxh64(u8(data), start, len(data), as_seed(seed))
    assert int(got) == xxhash.xxh64_intdigest(data[start:], seed)


def test_xxh64_matches_reference_on_every_side_of_the_stripe_and_tail_sizes():
    data = bytes(range(256)) * 40
    for n in [*range(0, 70), 95, 96, 97, 127, 128, 129, 1000, 4096, 10_236, 10_237]:
        for seed in (0, 2**63 + 7):
            want = xxhash.xxh64_intdigest(data[3 : 3 + n], seed)
            assert int(xxh64(u8(data), 3, 3 + n, as_seed(seed))) == want, (n, seed)


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (2, 1), (0, 4)])
def test_xxh64_refuses_a_window_outside_the_data(start, end):
    with pytest.raises(ValueError, match="start <= end"):
        xxh64(u8(b"abc"), start, end, 0)


@given(st.lists(st.binary(max_size=40), max_size=40), seeds)
def test_xxh64_many_hashes_each_arrow_string(items, seed):
    got = xxh64_many(*arrow_layout(items), as_seed(seed))
    assert got.dtype == np.uint64
    assert got.tolist() == [xxhash.xxh64_intdigest(b, seed) for b in items]


def test_xxh64_many_follows_offsets_that_do_not_start_at_zero():
    data = u8(b"skipped-hello-world")
    got = xxh64_many(data, np.array([8, 13, 14, 19], np.int64), 0)
    assert got.tolist() == [xxhash.xxh64_intdigest(b) for b in (b"hello", b"-", b"world")]


def test_xxh64_many_of_no_strings_is_empty():
    assert len(xxh64_many(u8(b""), np.zeros(1, np.int64), 0)) == 0


def test_xxh64_many_refuses_decreasing_offsets():
    with pytest.raises(ValueError):
        xxh64_many(u8(b"abc"), np.array([0, 2, 1], np.int64), 0)


@given(st.lists(st.integers(0, 2**64 - 1), max_size=50), st.integers(1, 32767))
def test_partitions_of_is_the_hash_modulo_the_partition_count(hashes, partitions):
    got = partitions_of(np.array(hashes, np.uint64), partitions)
    assert got.dtype == np.int16
    assert got.tolist() == [h % partitions for h in hashes]


@pytest.mark.parametrize("partitions", [0, -1, 32768])
def test_partitions_of_refuses_counts_an_int16_cannot_hold(partitions):
    with pytest.raises(ValueError, match="partitions"):
        partitions_of(np.array([1], np.uint64), partitions)
