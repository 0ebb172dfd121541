"""Arrow string columns as numpy (data, offsets) for kernels, and back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["string_array_from_buffers", "string_buffers"]


def string_buffers(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes and int64 offsets of a string/binary column (zero-copy where possible).

    Offsets index into the returned data directly, also for sliced arrays.

    Raises:
        ValueError: the column has nulls (callers check for them first).

    >>> data, offsets = string_buffers(pa.array(["ab", "", "c"]))
    >>> data.tobytes(), offsets.tolist()
    (b'abc', [0, 2, 2, 3])
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if isinstance(col.type, pa.ExtensionType):
        col = col.storage
    if col.null_count:
        raise ValueError("string column has nulls; check for them before taking its buffers")
    t = col.type
    width: type[np.signedinteger[Any]]
    if pa.types.is_string(t) or pa.types.is_binary(t):
        width = np.int32
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        width = np.int64
    else:
        raise ValueError(f"not a string or binary column: {t}")
    n = len(col)
    bufs = col.buffers()
    if bufs[1] is None:
        offsets = np.zeros(n + 1, np.int64)
    else:
        itemsize = np.dtype(width).itemsize
        offsets = np.frombuffer(bufs[1], width, count=n + 1, offset=col.offset * itemsize)
        offsets = offsets.astype(np.int64, copy=False)
    if bufs[2] is None or bufs[2].size == 0:
        data = np.zeros(0, np.uint8)
    else:
        data = np.frombuffer(bufs[2], np.uint8)
    return data, offsets


def string_array_from_buffers(data: np.ndarray, offsets: np.ndarray) -> pa.LargeStringArray:
    """A LargeStringArray over (data, int64 offsets), zero-copy."""
    n = len(offsets) - 1
    return pa.LargeStringArray.from_buffers(
        n,
        pa.py_buffer(np.ascontiguousarray(offsets, np.int64)),
        pa.py_buffer(np.ascontiguousarray(data, np.uint8)),
    )
