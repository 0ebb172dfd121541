"""The numba CRC-32C is bit-exact with the crc32c package that writes the WAL's checksums."""

from __future__ import annotations

import crc32c as reference
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab._kernels.checksum import crc32c

values = st.one_of(st.just(0), st.integers(1, 2**32 - 1))


def u8(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8)


def test_crc32c_of_the_standard_check_string_is_the_published_value():
    # The catalogued check value of CRC-32C, independent of any implementation.
    assert crc32c(u8(b"123456789"), 0, 9) == 0xE3069283


@given(st.binary(max_size=100), values)
def test_crc32c_matches_reference_for_any_bytes(data, value):
    assert crc32c(u8(data), 0, len(data), value) == reference.crc32c(data, value)


@given(st.binary(min_size=32, max_size=400), st.integers(0, 15), values)
def test_crc32c_matches_reference_for_long_inputs_at_any_alignment(data, skip, value):
    # The 8-byte steps and the byte-at-a-time tail both run, from unaligned starts.
    start = min(skip, len(data))
    assert crc32c(u8(data), start, len(data), value) == reference.crc32c(data[start:], value)


@given(st.binary(max_size=300), st.data())
def test_crc32c_continues_from_a_previous_value_like_the_reference(data, draw):
    cut = draw.draw(st.integers(0, len(data)))
    head = crc32c(u8(data), 0, cut, 0)
    assert crc32c(u8(data), cut, len(data), head) == reference.crc32c(data)


def test_crc32c_matches_reference_on_a_megabyte():
    data = np.random.default_rng(7).integers(0, 256, 1 << 20, dtype=np.uint8)
    assert crc32c(data, 0, len(data)) == reference.crc32c(data.tobytes())


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (2, 1), (0, 4)])
def test_crc32c_refuses_a_window_outside_the_data(start, end):
    with pytest.raises(ValueError, match="start <= end"):
        crc32c(u8(b"abc"), start, end)


@pytest.mark.parametrize("value", [-1, 2**32])
def test_crc32c_refuses_a_previous_value_that_is_not_32_bits(value):
    with pytest.raises(ValueError, match="32-bit"):
        crc32c(u8(b"abc"), 0, 3, value)
