"""Arrow string columns as numpy (uint8 data, int64 offsets) for the kernels, and back.

The kernels take plain arrays and must not import pyarrow (docs/architecture.md), so this is
the one place that knows Arrow's buffer layout: a validity bitmap, then offsets (int32
for string/binary, int64 for the large types), then the bytes. String i is
``data[offsets[i]:offsets[i + 1]]``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from allsource_lab.errors import InvalidArgument

__all__ = ["int64_view", "string_array_from_buffers", "string_buffers"]


def string_buffers(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes and int64 offsets of a string or binary column, for kernels.

    Takes a StringArray, LargeStringArray, BinaryArray or LargeBinaryArray (or an
    extension array stored as one), or a ChunkedArray of them. The arrays are read-only;
    the data and int64 offsets are views of the Arrow buffers, while int32 offsets are
    widened (a copy) and several chunks are joined into one buffer (a copy).

    The offsets index ``data`` directly. For a sliced array they need not start at 0:
    ``data`` is the whole underlying buffer, so that slicing never copies.

    Raises:
        InvalidArgument: if the column has nulls (check for them first; there is no
            byte string to give a null).
        TypeError: if the column is not of one of the types above.

    >>> data, offsets = string_buffers(pa.array(["ab", "", "c"]))
    >>> data.tobytes(), offsets.tolist()
    (b'abc', [0, 2, 2, 3])
    >>> data, offsets = string_buffers(pa.array(["ab", "", "c"]).slice(2))
    >>> offsets.tolist(), data[offsets[0] : offsets[1]].tobytes()
    ([2, 3], b'c')
    """
    if isinstance(col.type, pa.BaseExtensionType):
        if isinstance(col, pa.ChunkedArray):
            col = pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
        else:
            col = col.storage
    offset_type = _offset_type(col.type)
    if col.null_count:
        raise InvalidArgument(
            f"the column has {col.null_count} nulls; a null has no bytes, so check for"
            " nulls before taking the buffers"
        )
    if not isinstance(col, pa.ChunkedArray):
        data, offsets = _array_buffers(col, offset_type)
    elif col.num_chunks == 1:
        data, offsets = _array_buffers(col.chunk(0), offset_type)
    else:
        data, offsets = _joined([_array_buffers(c, offset_type) for c in col.chunks])
    return _read_only(data), _read_only(offsets)


def int64_view(col: pa.Array) -> np.ndarray:
    """A non-null int64 (or timestamp) array's values as a read-only numpy view, no copy.

    ``Array.to_numpy`` does the same but imports pandas on its first call in a process
    (~0.5 s): the open path must not pay that.
    """
    buf = col.buffers()[1]
    return _read_only(np.frombuffer(buf, np.int64, len(col), col.offset * 8))


def fixed_values(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A null-free fixed-width integer column as one read-only numpy array: a view of a
    single array or chunk, else the chunks' views joined (one copy).

    ``to_numpy`` would import pandas (see :func:`int64_view`); this never does.
    """
    dtype = np.dtype(col.type.to_pandas_dtype())
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    views = [
        np.frombuffer(c.buffers()[1], dtype, len(c), c.offset * dtype.itemsize)
        for c in chunks
        if len(c)
    ]
    if len(views) == 1:
        return _read_only(views[0])
    return _read_only(np.concatenate(views) if views else np.zeros(0, dtype))


def numpy_array(values: np.ndarray) -> pa.Array:
    """A 1-d numeric numpy array as a null-free Arrow array over the same memory.

    ``pa.array(values)`` gives the same but imports pandas on its first call in a
    process (~0.5 s), which a checkpoint on the sealing thread must not pay.
    """
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(data.dtype), len(data), [None, pa.py_buffer(data)]
    )


def string_array_from_buffers(data: np.ndarray, offsets: np.ndarray) -> pa.LargeStringArray:
    """A LargeStringArray over (uint8 data, int64 offsets), sharing their memory.

    The inverse of :func:`string_buffers`; the bytes are taken to be UTF-8 as they are
    (they are not checked), and the arrays must not be changed while the result lives.
    Other integer offsets are converted (a copy).

    Raises:
        InvalidArgument: if the offsets are empty, decreasing or outside ``data``, or
            ``data`` is not uint8.

    >>> arr = string_array_from_buffers(np.frombuffer(b"abc", np.uint8), np.array([0, 2, 3]))
    >>> arr.to_pylist()
    ['ab', 'c']
    """
    data = np.asarray(data)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if data.dtype != np.uint8:
        raise InvalidArgument(f"string data must be a uint8 array, not {data.dtype}")
    if offsets.ndim != 1 or len(offsets) == 0 or np.any(offsets[1:] < offsets[:-1]):
        raise InvalidArgument("offsets must be a non-empty, non-decreasing one-dimensional array")
    if offsets[0] < 0 or offsets[-1] > len(data):
        raise InvalidArgument(f"offsets run from {offsets[0]} to {offsets[-1]}, outside the data")
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))
    )


def _array_buffers(
    arr: pa.Array, offset_type: type[np.int32] | type[np.int64]
) -> tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    if offsets_buf is None:  # some producers leave it out of an empty array
        return np.zeros(0, np.uint8), np.zeros(n + 1, np.int64)
    itemsize = np.dtype(offset_type).itemsize
    offsets = np.frombuffer(offsets_buf, offset_type, n + 1, arr.offset * itemsize)
    offsets = offsets.astype(np.int64, copy=False)
    if data_buf is None or data_buf.size == 0:
        # Every string is empty; the offsets are all equal but need not all be 0.
        return np.zeros(0, np.uint8), offsets - offsets[0]
    return np.frombuffer(data_buf, np.uint8), offsets


def _read_only(a: np.ndarray) -> np.ndarray:
    # Arrow buffers are often mutable underneath, but an Arrow array is immutable:
    # a kernel writing into one would change a column other code still holds.
    a.flags.writeable = False
    return a


def _offset_type(t: pa.DataType) -> type[np.int32] | type[np.int64]:
    if pa.types.is_string(t) or pa.types.is_binary(t):
        return np.int32
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return np.int64
    raise TypeError(f"expected a string or binary column, not {t}")


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Chunks' (data, offsets) as one: only the bytes each chunk uses, offsets from 0."""
    offsets = np.zeros(1 + sum(len(o) - 1 for _, o in parts), np.int64)
    row = 0
    base = 0
    for _, o in parts:
        offsets[row + 1 : row + len(o)] = o[1:] - o[0] + base
        row += len(o) - 1
        base += int(o[-1] - o[0])
    data = np.concatenate([d[o[0] : o[-1]] for d, o in parts] or [np.zeros(0, np.uint8)])
    return data, offsets
