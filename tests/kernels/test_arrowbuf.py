"""Arrow string columns become (data, int64 offsets) that give back exactly their strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsource_lab._storage.arrowbuf import string_array_from_buffers, string_buffers

STRING_TYPES = [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]
texts = st.lists(st.text(max_size=8), max_size=30)


def strings(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    return [data[offsets[i] : offsets[i + 1]].tobytes().decode() for i in range(len(offsets) - 1)]


@pytest.mark.parametrize("type_", STRING_TYPES, ids=str)
@given(items=texts)
def test_every_string_type_gives_back_its_strings(type_, items):
    data, offsets = string_buffers(pa.array(items, type_))  # str becomes UTF-8 in binary
    assert data.dtype == np.uint8 and offsets.dtype == np.int64
    assert len(offsets) == len(items) + 1
    assert strings(data, offsets) == items


@pytest.mark.parametrize("type_", [pa.string(), pa.large_string()], ids=str)
@given(items=texts, data=st.data())
def test_sliced_arrays_give_only_the_strings_in_the_slice(type_, items, data):
    start = data.draw(st.integers(0, len(items)))
    length = data.draw(st.integers(0, len(items) - start))
    col = pa.array(items, type_).slice(start, length)
    assert strings(*string_buffers(col)) == items[start : start + length]


@pytest.mark.parametrize("type_", [pa.string(), pa.large_binary()], ids=str)
@given(chunks=st.lists(texts, max_size=4), cut=st.integers(0, 3))
def test_chunked_arrays_are_joined_in_order(type_, chunks, cut):
    arrays = [pa.array(c, type_).slice(min(cut, len(c))) for c in chunks]  # sliced chunks too
    data, offsets = string_buffers(pa.chunked_array(arrays, type_))
    assert strings(data, offsets) == [t for c in chunks for t in c[cut:]]


def test_large_offsets_and_data_are_views_of_the_arrow_buffers():
    col = pa.array(["ab", "cde"], pa.large_string())
    data, offsets = string_buffers(col)
    assert data.ctypes.data == col.buffers()[2].address
    assert offsets.ctypes.data == col.buffers()[1].address
    assert not data.flags.writeable and not offsets.flags.writeable  # Arrow data is immutable


def test_int32_offsets_become_int64_over_the_same_data():
    col = pa.array(["ab", "cde"], pa.string())
    data, offsets = string_buffers(col)
    assert offsets.dtype == np.int64 and offsets.tolist() == [0, 2, 5]
    assert data.ctypes.data == col.buffers()[2].address


@pytest.mark.parametrize("type_", STRING_TYPES, ids=str)
def test_all_empty_strings_give_empty_data(type_):
    data, offsets = string_buffers(pa.array(["", ""], type_))
    assert len(data) == 0 and offsets.tolist() == [0, 0, 0]
    data, offsets = string_buffers(pa.array(["x", "", ""], type_).slice(1))
    assert strings(data, offsets) == ["", ""]


def test_empty_columns_give_a_single_zero_offset():
    for col in [pa.array([], pa.string()), pa.chunked_array([], pa.large_string())]:
        data, offsets = string_buffers(col)
        assert len(data) == 0 and offsets.tolist() == [0]


def test_extension_columns_give_the_strings_of_their_storage():
    col = pa.ExtensionArray.from_storage(pa.json_(pa.string()), pa.array(["{}", "[1]"]))
    assert strings(*string_buffers(col)) == ["{}", "[1]"]
    assert strings(*string_buffers(pa.chunked_array([col, col]))) == ["{}", "[1]"] * 2


@pytest.mark.parametrize(
    "col",
    [pa.array(["a", None]), pa.chunked_array([pa.array(["a"]), pa.array([None], pa.string())])],
    ids=["array", "chunked"],
)
def test_nulls_are_refused_with_a_message_saying_so(col):
    with pytest.raises(ValueError, match="1 nulls"):
        string_buffers(col)


def test_columns_that_are_not_strings_are_refused():
    with pytest.raises(TypeError, match="string or binary"):
        string_buffers(pa.array([1, 2]))


@given(texts)
def test_string_array_from_buffers_round_trips_without_copying(items):
    data, offsets = string_buffers(pa.array(items, pa.large_string()))
    arr = string_array_from_buffers(data, offsets)
    assert isinstance(arr, pa.LargeStringArray)
    assert arr.to_pylist() == items
    assert arr.buffers()[1].address == offsets.ctypes.data


def test_string_array_from_buffers_accepts_offsets_not_starting_at_zero():
    arr = string_array_from_buffers(np.frombuffer(b"xxab", np.uint8), np.array([2, 3, 4]))
    assert arr.to_pylist() == ["a", "b"]


@pytest.mark.parametrize(
    "offsets", [[0, 2, 1], [0, 9], [-1, 1], []], ids=["decreasing", "past-end", "neg", "empty"]
)
def test_string_array_from_buffers_refuses_malformed_offsets(offsets):
    with pytest.raises(ValueError, match="offsets"):
        string_array_from_buffers(np.frombuffer(b"abc", np.uint8), np.array(offsets, np.int64))
