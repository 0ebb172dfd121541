"""Gathering events from many Arrow pieces into one new record batch, in two compiled passes.

The read side keeps events in *pieces* (record batches of the eleven event columns,
docs/format.md), and a read picks rows from many of them. Taking rows from each piece
costs pyarrow calls per piece and column; these two passes copy the requested columns of
the picked rows into one new buffer laid out as an Arrow IPC record batch message: a
header the caller serialized once (only its lengths and buffer offsets change, and
:func:`fill` writes them) followed by the body, every buffer 8-byte aligned. :func:`plan`
finds each row's piece and row, the texts' sizes and the nulls, and so the size of the
message; the caller allocates it, :func:`fill` copies, and one
``pyarrow.ipc.read_record_batch`` wraps the buffer without copying it.

The pieces come as one int64 *address table*, a row of :data:`SLOTS` numbers per piece:
where each column's values start, cut at the array's offset so that row ``r``'s value is
at ``start + r * width`` (for a text column, its int32 offsets); from :data:`TEXT_DATA`
on, where the four text columns' bytes start; at :data:`VALIDITY`, the validity bitmap
of ``schema_version`` (0: the piece has no null) and at :data:`FIRST_BIT` its first bit;
at :data:`ROWS`, the piece's rows (0: a piece not to be read). The caller keeps every
piece alive and unchanged while it passes the table: the kernels read memory by these
addresses, with no bounds to check them against.

Why the code is shaped the way it is (CPU time of the calls on a 1M-event store of ten
memory-mapped segments, a busy 2-core machine, December 2026):

* Addresses, not numpy views: a numba list of 17 views per piece cost ~1 µs to pass,
  and taking a view out of it changed a reference count with a locked instruction,
  which waits for every load in flight.
* The rows of a read are scattered over memory nobody else reads, so most loads miss
  the caches and the TLB. A read of up to :data:`_SMALL` rows prefetches every column
  of every run of rows first, then the texts, so that the misses of all columns
  overlap, and the Python between the two calls hides some of them (one entity's 100
  events in ten segments: 27.8 µs for ``Reader.table`` without, 23.1 µs with). A
  bigger read prefetches the row :data:`_AHEAD` rows on in each column's loop (the
  50,000 events of one type: 6.4 ms without, 6.05 ms with).
* The first pass keeps where each text starts and ends, so the copy reads no offsets
  again, and texts that follow each other in their piece (a run of rows) are copied by
  one ``memcpy``.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from allsource_lab._kernels.jit import jit

__all__ = [
    "COLUMNS",
    "FIRST_BIT",
    "NO_ADDRESSES",
    "ROWS",
    "SLICE",
    "SLOTS",
    "TEXT_DATA",
    "TOO_BIG",
    "VALIDITY",
    "fill",
    "fill_columns",
    "gather",
    "plan",
    "plan_end",
    "plan_rows",
    "plan_texts",
    "scratch_size",
    "text_number",
]

# The event columns by number, in EVENT_SCHEMA's order.
(
    SEQUENCE,
    EVENT_ID,
    EVENT_TYPE,
    ENTITY_ID,
    VERSION,
    TIMESTAMP,
    RECORDED_AT,
    PAYLOAD,
    METADATA,
    PARTITION,
    SCHEMA_VERSION,
) = range(11)
COLUMNS = 11
# A piece's row in the address table: slots 0-10 are the columns' values (offsets for a
# text column); then the bytes of the four text columns, the validity bitmap of
# schema_version (0: no null in the piece), its first bit, and the piece's row count.
TEXT_DATA = 11
VALIDITY = 15
FIRST_BIT = 16
ROWS = 17
SLOTS = 18

# Each text column's number among the four (-1: not a text column).
_TEXT = np.array([-1, -1, 0, 1, -1, -1, -1, 2, 3, -1, -1], np.int64)
# Bytes a value of each column takes (0: a text column).
_WIDTH = np.array([8, 16, 0, 0, 8, 8, 8, 0, 0, 2, 4], np.int64)

_INT32_MAX = np.iinfo(np.int32).max
_INT64_MAX = np.iinfo(np.int64).max
_LOW = (1 << 32) - 1  # the row in a packed (piece << 32 | row)
# How many rows ahead a big read's loops prefetch (8, 16 and 32 measured alike).
_AHEAD = 16
# Reads of up to this many rows prefetch every column of every row in plan().
_SMALL = 512
# plan_texts() flags: all four text columns.
_ALL_TEXTS = np.ones(4, np.bool_)
# fill_columns() flags: every column.
_ALL_COLUMNS = np.ones(11, np.bool_)


def text_number(column: int) -> int:
    """The number among the four text columns of event column ``column`` (-1: none)."""
    return int(_TEXT[column])


# -- memory by address -------------------------------------------------------------------
#
# With the JIT, three intrinsics: an address as a pointer (numba.carray then views it as
# an array with no allocation), LLVM's prefetch, and LLVM's memcpy. Without it (the test
# suite's coverage run), ctypes does the same in plain Python.

if getattr(numba.config, "DISABLE_JIT", False):

    def _pointer(address: int) -> ctypes.c_void_p:
        return ctypes.c_void_p(int(address))

    def _prefetch(address: int) -> None:
        """Nothing to do in plain Python."""

    def _copy(dst: int, src: int, size: int) -> None:
        ctypes.memmove(int(dst), int(src), int(size))

else:

    @intrinsic
    def _pointer(typingctx: Any, address: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

        return types.voidptr(types.int64), codegen

    @intrinsic
    def _prefetch(typingctx: Any, address: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            bytes_ptr = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            kind = ir.FunctionType(ir.VoidType(), [bytes_ptr, i32, i32, i32])
            fn = builder.module.declare_intrinsic("llvm.prefetch", [bytes_ptr], kind)
            # A read, kept in every cache level, of data.
            at = builder.inttoptr(args[0], bytes_ptr)
            builder.call(fn, [at, i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(types.int64), codegen

    @intrinsic
    def _copy(typingctx: Any, dst: Any, src: Any, size: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            bytes_ptr = ir.IntType(8).as_pointer()
            to = builder.inttoptr(args[0], bytes_ptr)
            start = builder.inttoptr(args[1], bytes_ptr)
            cgutils.raw_memcpy(builder, to, start, args[2], 1)  # type: ignore[no-untyped-call]
            return context.get_dummy_value()

        return types.void(types.int64, types.int64, types.int64), codegen


@jit
def _i64s(address: int, n: int) -> np.ndarray:
    return carray(_pointer(address), n, np.int64)


@jit
def _i32s(address: int, n: int) -> np.ndarray:
    return carray(_pointer(address), n, np.int32)


@jit
def _i16s(address: int, n: int) -> np.ndarray:
    return carray(_pointer(address), n, np.int16)


@jit
def _u8s(address: int, n: int) -> np.ndarray:
    return carray(_pointer(address), n, np.uint8)


# -- scratch -----------------------------------------------------------------------------

# Scratch: each row's (piece << 32 | row) (n), text sources (4n) and ends (4n), then
# _META numbers: the nulls, the runs of consecutive rows, the bytes of each column's texts.
_META = 2 + COLUMNS


@jit
def scratch_size(n: int) -> int:
    """How many int64s :func:`plan` and :func:`fill` keep between them for ``n`` rows."""
    return 9 * n + _META


@jit
def _parts(scratch: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rows = scratch[:n]
    sources = scratch[n : 5 * n].reshape((4, n))
    ends = scratch[5 * n : 9 * n].reshape((4, n))
    meta = scratch[9 * n : 9 * n + _META]
    return rows, sources, ends, meta


@jit
def _pad(n: int) -> int:
    return (n + 7) & ~7


@jit
def _layout(
    columns: np.ndarray, n: int, nulls: int, text_bytes: np.ndarray, body: int
) -> np.ndarray:
    """Where each column's buffers start in the message: validity, values or offsets,
    text bytes; the last row holds the message's end."""
    ncol = len(columns)
    starts = np.zeros((ncol + 1, 3), np.int64)
    at = body
    for c in range(ncol):
        col = columns[c]
        starts[c, 0] = at
        if col == SCHEMA_VERSION and nulls:
            at += _pad((n + 7) >> 3)
        starts[c, 1] = at
        if _WIDTH[col]:
            at += _pad(n * _WIDTH[col])
        else:
            at += _pad((n + 1) * 4)
            starts[c, 2] = at
            at += _pad(text_bytes[col])
    starts[ncol, 0] = at
    return starts


@jit
def _valid(table: np.ndarray, k: int, r: int) -> int:
    bitmap = table[k, VALIDITY]
    if not bitmap:
        return 1
    bit = table[k, FIRST_BIT] + r
    return int((_u8s(bitmap + (bit >> 3), 1)[0] >> (bit & 7)) & 1)


# -- the two passes ----------------------------------------------------------------------


@jit
def _prefetch_rows(table: np.ndarray, wanted: np.ndarray, rows: np.ndarray) -> None:
    """Prefetch the values (offsets, for texts) of every wanted column of ``rows``, run
    by run of consecutive rows: each line once."""
    n = len(rows)
    first = 0
    for i in range(n):
        if i + 1 < n and rows[i + 1] == rows[i] + 1:
            continue
        k = rows[first] >> 32
        lo = rows[first] & _LOW
        hi = (rows[i] & _LOW) + 1
        for col in range(COLUMNS):
            if wanted[col]:
                # A text column's offsets: one more than its rows.
                width = _WIDTH[col] if _WIDTH[col] else 4
                at = table[k, col] + width * lo
                last = table[k, col] + width * hi + (0 if _WIDTH[col] else 4)
                while at < last:
                    _prefetch(at)
                    at += 64
                _prefetch(last - 1)
        first = i + 1


@jit
def _text_sizes(
    table: np.ndarray,
    col: int,
    rows: np.ndarray,
    sources: np.ndarray,
    ends: np.ndarray,
    small: bool,
) -> int:
    """Where the texts of column ``col`` start (``sources``, addresses) and where they
    will end among the gathered bytes (``ends``); returns their total size. Each text's
    first bytes are prefetched for the copy (all of them for a small read)."""
    n = len(rows)
    data = TEXT_DATA + _TEXT[col]
    total = 0
    for i in range(n):
        if not small and i + _AHEAD < n:
            ahead = rows[i + _AHEAD]
            _prefetch(table[ahead >> 32, col] + 4 * (ahead & _LOW))
        k = rows[i] >> 32
        offsets = _i32s(table[k, col] + 4 * (rows[i] & _LOW), 2)
        size = offsets[1] - offsets[0]
        total += size
        at = table[k, data] + offsets[0]
        sources[i] = at
        ends[i] = total
        last = at + size if small else at + 1
        while at < last:
            _prefetch(at)
            at += 64
    return total


# What plan() returns instead of a size.
TOO_BIG = -1  # a text column would pass 2**31 - 1 bytes (more than int32 offsets hold)
SLICE = -2  # the rows fall into long runs of consecutive rows: slicing them is cheaper
NO_ADDRESSES = -3  # a piece the rows are in has no addresses (a zero row count)


@jit
def plan(
    positions: np.ndarray,
    row: np.ndarray,
    bases: np.ndarray,
    table: np.ndarray,
    columns: np.ndarray,
    header_size: int,
    slice_rows: int,
    scratch: np.ndarray,
) -> int:
    """The first pass of gathering the rows at ``positions``: the size in bytes of the
    IPC message :func:`fill` will write, or :data:`TOO_BIG`, :data:`SLICE` (the rows
    fall into runs of consecutive rows of one piece of ``slice_rows`` rows or more on
    average) or :data:`NO_ADDRESSES`.

    A position ``p`` is in piece ``k`` where ``bases[k] <= p < bases[k + 1]`` (``bases``
    ascending, the last piece open-ended), at row ``row[p]``; ``table`` holds each
    piece's addresses (see the module's docstring). ``columns`` lists the column
    numbers to copy, in the batch's order; ``header_size`` is the length of the
    message's header (a multiple of 8). ``scratch`` (int64, :func:`scratch_size` of
    them) keeps what :func:`fill` needs. The caller allocates it and the message from an
    allocator that reuses memory: a fresh 10 MB from numba's allocator comes from the
    operating system page by page, and its page faults cost more than the copy (1M
    rows: 65,000 faults, 215 ms against 100 ms for pyarrow's take).
    """
    n = len(positions)
    runs = plan_rows(positions, row, bases, table, slice_rows, scratch)
    if runs < 0:
        return runs
    plan_texts(table, columns, scratch, n, _ALL_TEXTS)
    return plan_end(table, columns, header_size, scratch, n)


@jit
def plan_rows(
    positions: np.ndarray,
    row: np.ndarray,
    bases: np.ndarray,
    table: np.ndarray,
    slice_rows: int,
    scratch: np.ndarray,
) -> int:
    """The first step of :func:`plan`: each position's piece and row into ``scratch``;
    the number of runs of consecutive rows, or :data:`SLICE` or :data:`NO_ADDRESSES`."""
    n = len(positions)
    rows, _, _, meta = _parts(scratch, n)
    runs = 0
    lo = 0
    hi = -1
    k = 0
    previous = -2
    for i in range(n):
        p = positions[i]
        if p < lo or p >= hi:
            k = np.searchsorted(bases, p, side="right") - 1
            if not table[k, ROWS]:
                return NO_ADDRESSES
            lo = bases[k]
            hi = bases[k + 1] if k + 1 < len(bases) else _INT64_MAX
            previous = -2
        r = int(row[p])
        rows[i] = (k << 32) | r
        if r != previous + 1:
            runs += 1
        previous = r
    if n >= slice_rows * runs:
        return SLICE
    meta[1] = runs
    meta[2:] = 0  # text bytes, by column (scratch comes uninitialized)
    return runs


@jit
def plan_texts(
    table: np.ndarray, columns: np.ndarray, scratch: np.ndarray, n: int, texts: np.ndarray
) -> None:
    """The second step of :func:`plan`, for the text columns among ``columns`` whose
    ``texts`` flag (by text number) is set: where each text starts and ends, and their
    total size. Two calls with other flags may run at once on two threads."""
    rows, sources, ends, meta = _parts(scratch, n)
    small = n <= _SMALL
    if small:
        wanted = np.zeros(COLUMNS, np.bool_)
        for c in range(len(columns)):
            wanted[columns[c]] = True
        _prefetch_rows(table, wanted, rows)
    for c in range(len(columns)):
        col = columns[c]
        t = _TEXT[col]
        if t >= 0 and texts[t]:
            meta[2 + col] = _text_sizes(table, col, rows, sources[t], ends[t], small)


@jit
def plan_end(
    table: np.ndarray, columns: np.ndarray, header_size: int, scratch: np.ndarray, n: int
) -> int:
    """The last step of :func:`plan`: the nulls, and the message's size (or
    :data:`TOO_BIG`)."""
    rows, _, _, meta = _parts(scratch, n)
    nulls = 0
    for c in range(len(columns)):
        if columns[c] == SCHEMA_VERSION:
            for i in range(n):
                nulls += 1 - _valid(table, rows[i] >> 32, rows[i] & _LOW)
            break  # (a column asked for twice has its nulls once)
    meta[0] = nulls
    text_bytes = meta[2:]
    for c in range(COLUMNS):
        if text_bytes[c] > _INT32_MAX:
            return TOO_BIG
    return int(_layout(columns, n, nulls, text_bytes, header_size)[len(columns), 0])


@jit
def _copy_values(table: np.ndarray, col: int, rows: np.ndarray, dst: int, small: bool) -> None:
    """Copy column ``col``'s values of ``rows`` to address ``dst``."""
    n = len(rows)
    width = _WIDTH[col]
    out64 = _i64s(dst, n * (width >> 3))
    out32 = _i32s(dst, n)
    out16 = _i16s(dst, n)
    for i in range(n):
        if not small and i + _AHEAD < n:
            ahead = rows[i + _AHEAD]
            _prefetch(table[ahead >> 32, col] + width * (ahead & _LOW))
        at = table[rows[i] >> 32, col] + width * (rows[i] & _LOW)
        if width == 8:
            out64[i] = _i64s(at, 1)[0]
        elif width == 16:
            value = _i64s(at, 2)
            out64[2 * i] = value[0]
            out64[2 * i + 1] = value[1]
        elif width == 4:
            out32[i] = _i32s(at, 1)[0]
        else:
            out16[i] = _i16s(at, 1)[0]


@jit
def _copy_texts(
    sources: np.ndarray, ends: np.ndarray, offsets: np.ndarray, dst: int, small: bool
) -> None:
    """Copy the texts starting at ``sources`` (addresses) one after the other to address
    ``dst``, and their end offsets to ``offsets[1:]``."""
    n = len(sources)
    begin = 0
    source = 0
    pending = 0
    for i in range(n):
        if not small and i + _AHEAD < n:
            ahead = sources[i + _AHEAD]
            _prefetch(ahead)
            _prefetch(ahead + 64)
            _prefetch(ahead + 128)
        end = ends[i]
        # Texts that follow each other in the piece too (a run of rows) are copied
        # together, once the run ends (the 100 events of one entity: 40 copies, not 400).
        if end > begin and sources[i] != source + pending:
            if pending:
                _copy(dst + begin - pending, source, pending)
            source = sources[i]
            pending = 0
        pending += end - begin
        offsets[i + 1] = end
        begin = end
    if pending:
        _copy(dst + begin - pending, source, pending)


@jit
def fill(
    table: np.ndarray,
    columns: np.ndarray,
    header: np.ndarray,
    slots: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
    split: bool = False,
) -> None:
    """The second pass: write into ``out`` (the size :func:`plan` returned) the IPC
    message of a record batch holding the planned rows, in order (``split``: all but
    the columns' values, which :func:`fill_columns` then copies).

    ``header`` is the message's start, copied as it is but for the int64 fields at the
    8-aligned byte offsets in ``slots``: the row count, the body's length, then the first
    of the (length, null count) pairs of the columns and the first of the (offset,
    length) pairs of their buffers (a validity buffer, empty when the column has no null,
    then the values, or the offsets and the bytes of a text column).
    """
    n = (len(scratch) - _META) // 9
    meta = _parts(scratch, n)[3]
    nulls = meta[0]
    text_bytes = meta[2:]
    body = len(header)
    ncol = len(columns)
    starts = _layout(columns, n, nulls, text_bytes, body)
    at = starts[ncol, 0]
    out[:body] = header
    # Zero what no value fills: padding, validity bits, and the first text offsets.
    for c in range(ncol):
        col = columns[c]
        end = starts[c + 1, 0]
        if _WIDTH[col]:
            out[starts[c, 0] : starts[c, 1]] = 0
            out[starts[c, 1] + n * _WIDTH[col] : end] = 0
        else:
            out[starts[c, 1] : starts[c, 1] + 4] = 0
            out[starts[c, 1] + (n + 1) * 4 : starts[c, 2]] = 0
            out[starts[c, 2] + text_bytes[col] : end] = 0
    fields = out.view(np.int64)
    fields[slots[0] >> 3] = n
    fields[slots[1] >> 3] = at - body
    node = slots[2] >> 3
    described = slots[3] >> 3
    for c in range(ncol):
        col = columns[c]
        missing = nulls if col == SCHEMA_VERSION else 0
        fields[node] = n
        fields[node + 1] = missing
        node += 2
        fields[described] = starts[c, 0] - body
        fields[described + 1] = ((n + 7) >> 3) if missing else 0
        fields[described + 2] = starts[c, 1] - body
        if _WIDTH[col]:
            fields[described + 3] = n * _WIDTH[col]
            described += 4
        else:
            fields[described + 3] = (n + 1) * 4
            fields[described + 4] = starts[c, 2] - body
            fields[described + 5] = text_bytes[col]
            described += 6
    if not split:
        fill_columns(table, columns, header, scratch, out, _ALL_COLUMNS)


@jit
def fill_columns(
    table: np.ndarray,
    columns: np.ndarray,
    header: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
    which: np.ndarray,
) -> None:
    """The copying of :func:`fill`, for the columns whose ``which`` flag (by column
    number) is set: after ``fill(..., split=True)`` wrote the rest, two calls with other
    flags may copy at once on two threads (each writes its own columns' bytes only)."""
    n = (len(scratch) - _META) // 9
    rows, sources, ends, meta = _parts(scratch, n)
    nulls = meta[0]
    text_bytes = meta[2:]
    ncol = len(columns)
    starts = _layout(columns, n, nulls, text_bytes, len(header))
    base = out.ctypes.data
    small = n <= _SMALL
    for c in range(ncol):
        col = columns[c]
        if not which[col]:
            continue
        values = starts[c, 1]
        if _WIDTH[col]:
            _copy_values(table, col, rows, base + values, small)
        else:
            t = _TEXT[col]
            offsets = out[values : values + 4 * (n + 1)].view(np.int32)
            _copy_texts(sources[t], ends[t], offsets, base + starts[c, 2], small)
        if col == SCHEMA_VERSION and nulls:
            validity = starts[c, 0]
            for i in range(n):
                if _valid(table, rows[i] >> 32, rows[i] & _LOW):
                    out[validity + (i >> 3)] |= np.uint8(1 << (i & 7))


@jit
def gather(
    positions: np.ndarray,
    row: np.ndarray,
    bases: np.ndarray,
    table: np.ndarray,
    columns: np.ndarray,
    header: np.ndarray,
    slots: np.ndarray,
    slice_rows: int,
) -> np.ndarray:
    """:func:`plan` and :func:`fill` in one call, for a small read: the message, in
    memory of numba's own (empty where plan() gives no size). One call less, and no
    allocation from Python: ~2 µs of the ~30 of reading one entity's 100 events; for
    big reads, where fresh memory from numba's allocator would cost page faults (see
    :func:`plan`), the caller allocates and makes the two calls."""
    scratch = np.empty(scratch_size(len(positions)), np.int64)
    size = plan(positions, row, bases, table, columns, len(header), slice_rows, scratch)
    if size < 0:
        return np.empty(0, np.uint8)
    out = np.empty(size, np.uint8)
    fill(table, columns, header, slots, scratch, out)
    return out
