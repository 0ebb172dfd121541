"""The numba XXH64 and CRC-32C are bit-exact with the reference implementations."""

from __future__ import annotations

import crc32c as crc32c_ref
import numpy as np
import pyarrow as pa
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab.arrowbuf import string_buffers
from allsource_lab.kernels.checksum import crc32c
from allsource_lab.kernels.hashing import partitions_of, xxh64, xxh64_many


def arr(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8)


@given(st.binary(max_size=200), st.integers(0, 2**63 - 1))  # seeds are int64 in the kernel
def test_xxh64_matches_reference_for_any_bytes(data, seed):
    assert int(xxh64(arr(data), 0, len(data), seed)) == xxhash.xxh64_intdigest(data, seed)


def test_xxh64_matches_reference_across_stripe_boundaries():
    data = bytes(range(256)) * 8
    for n in [0, 1, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 1000, 2048]:
        assert int(xxh64(arr(data), 0, n, 0)) == xxhash.xxh64_intdigest(data[:n])
        assert int(xxh64(arr(data), 5, 5 + n // 2, 9)) == xxhash.xxh64_intdigest(
            data[5 : 5 + n // 2], 9
        )


@given(st.lists(st.text(max_size=30), max_size=40))
def test_xxh64_many_hashes_each_arrow_string(texts):
    data, offsets = string_buffers(pa.array(texts, pa.string()))
    got = xxh64_many(data, offsets, 0)
    assert [int(h) for h in got] == [xxhash.xxh64_intdigest(t.encode()) for t in texts]
    parts = partitions_of(got, 32)
    assert parts.dtype == np.int16
    assert parts.tolist() == [xxhash.xxh64_intdigest(t.encode()) % 32 for t in texts]


@given(st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_crc32c_matches_reference_for_any_bytes(data, value):
    assert crc32c(arr(data), 0, len(data), value) == crc32c_ref.crc32c(data, value)


def test_crc32c_of_a_slice_continues_like_the_reference():
    data = bytes(range(256)) * 40
    head = crc32c(arr(data), 0, 1001, 0)
    assert crc32c(arr(data), 1001, len(data), head) == crc32c_ref.crc32c(data)
