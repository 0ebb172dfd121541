"""Segment order: rows sorted by (partition, entity id, sequence) without comparing rows.

A checkpoint seals the tail, which is in sequence order already, so a segment's order is a
stable sort of the rows by (partition, entity id): rows of one entity keep the order they
came in. Entity ids compare as their UTF-8 bytes, a prefix first (Arrow's string order).

``segment_order`` sorts by radix, most significant part first: a key of the partition and
the first five bytes, then seven more bytes at each depth for the rows still tied (see
``_chunk_key``); a run of rows whose ids turn out all equal is done. With few rows per
entity that is the whole sort. With many, every row would be read at every depth, so
given the entities numbered (Arrow's ``dictionary_encode`` hashes them), only each
entity's first row is sorted, and a counting sort puts the rows in that order. An input
out of sequence order (compaction merges segments) is put in sequence order first, by a
stable radix sort.

The other kernels write columns in that order into new buffers: fixed-width values,
validity bits, and strings (their sizes first, then the bytes). They read the input in
order and write each row where it goes (``inverse`` of the order). Writing scattered
rows beat reading scattered rows (as Arrow's ``take`` does) for every column of an
event, in CPU time for 1M rows: payloads of ~110 bytes 32 ms against 39-41 ms, event
types 12 against 17-19, int64 2.0 against 3.5, uuids 3.8 against 5.9.

Each call takes one chunk of a column (``dst`` is the slice of the inverse for its
rows), so a table of many chunks is never joined first. numba's typed List would take
them all in one call, but building one costs 0.25-0.5 s of compiling, in every process,
for each new array type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from allsource_lab._kernels.hashing import _read64
from allsource_lab._kernels.jit import jit

__all__ = [
    "inverse",
    "scatter_pairs",
    "scatter_strings",
    "scatter_validity",
    "scatter_values",
    "segment_order",
    "string_sizes",
    "sum_offsets",
]

# Below this many keys a range is sorted by insertion: a radix pass costs a 256-entry
# histogram however short the range is.
_SMALL = 24

if numba.config.DISABLE_JIT:  # type: ignore[attr-defined]  # set at numba import

    def _copy_bytes(dst: np.ndarray, dst_at: int, src: np.ndarray, src_at: int, size: int) -> None:
        dst[dst_at : dst_at + size] = src[src_at : src_at + size]

else:

    @intrinsic
    def _copy_bytes(
        typingctx: Any, dst: Any, dst_at: Any, src: Any, src_at: Any, size: Any
    ) -> tuple[Any, Callable[..., None]]:
        """``dst[dst_at:dst_at + size] = src[src_at:src_at + size]`` as one memcpy, unchecked.

        A byte loop is slower: numba's negative-index handling keeps LLVM from turning it
        into a copy. Copying 1M payloads of ~110 bytes into sorted order took 31 ms this
        way against 100-180 ms by a byte loop.
        """

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> None:
            to = context.make_array(sig.args[0])(context, builder, args[0])
            of = context.make_array(sig.args[2])(context, builder, args[2])
            cgutils.raw_memcpy(  # type: ignore[no-untyped-call]
                builder,
                builder.gep(to.data, [args[1]]),
                builder.gep(of.data, [args[3]]),
                args[4],
                1,
            )

        return types.void(dst, types.intp, src, types.intp, types.intp), codegen


@jit
def _chunk_key(data: np.ndarray, s: int, e: int, part: int, depth: int) -> np.uint64:
    """The sort key of string data[s:e] at ``depth``, as one uint64 compared unsigned.

    Depth 0: the partition (16 bits, offset to sort as signed), bytes 0-4 and a length
    code; depth d > 0: bytes 5 + 7(d-1) on (seven of them) and a length code. Bytes past
    the end count as zero and the code is the bytes left, capped at one more than the
    chunk holds: so a string that ends within the chunk sorts before any longer one with
    the same bytes, and equal keys with the capped code are the ties that go one deeper.
    """
    if depth == 0:
        start = s
        width = 5
        key = np.uint64((np.int64(part) + 32768) & 0xFFFF)
    else:
        start = s + 5 + 7 * (depth - 1)
        width = 7
        key = np.uint64(0)
    left = e - start
    take = min(max(left, 0), width)
    for k in range(width):
        byte = np.uint64(data[start + k]) if k < take else np.uint64(0)
        key = (key << np.uint64(8)) | byte
    return (key << np.uint64(8)) | np.uint64(min(max(left, 0), width + 1))


@jit
def _radix_sort(
    keys: np.ndarray,
    items: np.ndarray,
    lo: int,
    hi: int,
    spare_keys: np.ndarray,
    spare_items: np.ndarray,
) -> None:
    """Stable sort of keys[lo:hi] (uint64) with items[lo:hi] alongside, in place.

    LSD radix, one byte per pass, skipping the bytes in which every key agrees: a range of
    entity ids or sequences differs in few of its bytes (ids "order-123456" in two to six
    of each eight).
    """
    m = hi - lo
    if m < _SMALL:
        for i in range(lo + 1, hi):
            k = keys[i]
            it = items[i]
            j = i - 1
            while j >= lo and keys[j] > k:
                keys[j + 1] = keys[j]
                items[j + 1] = items[j]
                j -= 1
            keys[j + 1] = k
            items[j + 1] = it
        return
    every = ~np.uint64(0)
    some = np.uint64(0)
    for i in range(lo, hi):
        every &= keys[i]
        some |= keys[i]
    varies = every ^ some
    src_k, src_i, dst_k, dst_i = keys, items, spare_keys, spare_items
    moved = False
    counts = np.empty(257, np.int64)
    for b in range(8):
        shift = np.uint64(8 * b)
        if (varies >> shift) & np.uint64(0xFF) == 0:
            continue
        counts[:] = 0
        for i in range(lo, hi):
            counts[np.int64((src_k[i] >> shift) & np.uint64(0xFF)) + 1] += 1
        counts[0] = lo
        for d in range(256):
            counts[d + 1] += counts[d]
        for i in range(lo, hi):
            digit = np.int64((src_k[i] >> shift) & np.uint64(0xFF))
            at = counts[digit]
            dst_k[at] = src_k[i]
            dst_i[at] = src_i[i]
            counts[digit] = at + 1
        src_k, src_i, dst_k, dst_i = dst_k, dst_i, src_k, src_i
        moved = not moved
    if moved:
        keys[lo:hi] = spare_keys[lo:hi]
        items[lo:hi] = spare_items[lo:hi]


@jit
def _same_id(data: np.ndarray, offsets: np.ndarray, r: int, f: int) -> bool:
    """Whether rows r and f have the same entity id bytes."""
    s = offsets[r]
    t = offsets[f]
    size = offsets[r + 1] - s
    if offsets[f + 1] - t != size:
        return False
    k = 0
    while k + 8 <= size:
        if _read64(data, s + k) != _read64(data, t + k):
            return False
        k += 8
    while k < size:
        if data[s + k] != data[t + k]:
            return False
        k += 1
    return True


@jit
def _tied_runs(
    keys: np.ndarray, lo: int, hi: int, more: np.uint64, runs: np.ndarray, count: int
) -> int:
    """Append to ``runs`` the runs of equal sorted keys[lo:hi] whose ids go on past
    them (length code ``more``); returns the new count."""
    i = lo
    while i < hi:
        j = i + 1
        while j < hi and keys[j] == keys[i]:
            j += 1
        if j - i > 1 and keys[i] & np.uint64(0xFF) == more:
            runs[count, 0] = i
            runs[count, 1] = j
            count += 1
        i = j
    return count


@jit
def _sort_rows(data: np.ndarray, offsets: np.ndarray, parts: np.ndarray, rows: np.ndarray) -> None:
    """Sort ``rows`` in place by (partition, entity id bytes), stably.

    MSD, one depth at a time: all rows by their depth-0 key, then each run of ties that
    goes on by its depth-1 key, and so on. Before a run is sorted one deeper, its rows'
    ids are compared with its first row's: a run of one entity is done.

    Keys are computed where the rows are visited, which is in memory order when
    ``rows`` ascend (depth 0 of the sorts made here). Deeper, most rows may still be tied
    and are visited in sorted order: three dependent cache misses a row (offsets, bytes)
    cost 129 ms for 1M rows, so when a run's rows add up to 1/32 of the data or more,
    the keys are computed in one pass in memory order instead and fetched by position.
    """
    n = len(rows)
    if n < 2:
        return
    keys = np.empty(n, np.uint64)
    spare_keys = np.empty(n, np.uint64)
    spare_items = np.empty(n, np.int64)
    for i in range(n):
        r = rows[i]
        keys[i] = _chunk_key(data, offsets[r], offsets[r + 1], parts[r], 0)
    _radix_sort(keys, rows, 0, n, spare_keys, spare_items)
    # Runs of ties (start, end) at this depth and the next; each holds two rows or more.
    runs = np.empty((n // 2 + 1, 2), np.int64)
    later = np.empty((n // 2 + 1, 2), np.int64)
    count = _tied_runs(keys, 0, n, np.uint64(6), runs, 0)
    alike = np.empty(n, np.bool_)
    stamp = np.empty(0, np.int64)  # row -> (depth << 40) | position, when needed
    depth = 1
    while count > 0:
        marked = 0
        for q in range(count):
            marked += runs[q, 1] - runs[q, 0]
        if marked * 32 >= len(offsets) - 1:
            if len(stamp) == 0:
                stamp = np.full(len(offsets) - 1, -1, np.int64)
            for q in range(count):
                for i in range(runs[q, 0], runs[q, 1]):
                    stamp[rows[i]] = (depth << 40) | i
                    spare_items[i] = rows[runs[q, 0]]  # the run's first row
            for r in range(len(stamp)):
                if stamp[r] >> 40 == depth:
                    i = stamp[r] & ((1 << 40) - 1)
                    keys[i] = _chunk_key(data, offsets[r], offsets[r + 1], parts[r], depth)
                    alike[i] = _same_id(data, offsets, r, spare_items[i])
        else:
            for q in range(count):
                f = rows[runs[q, 0]]
                for i in range(runs[q, 0], runs[q, 1]):
                    r = rows[i]
                    keys[i] = _chunk_key(data, offsets[r], offsets[r + 1], parts[r], depth)
                    alike[i] = _same_id(data, offsets, r, f)
        ties = 0
        for q in range(count):
            lo, hi = runs[q, 0], runs[q, 1]
            one = True
            for i in range(lo, hi):
                if not alike[i]:
                    one = False
                    break
            if not one:
                _radix_sort(keys, rows, lo, hi, spare_keys, spare_items)
                ties = _tied_runs(keys, lo, hi, np.uint64(8), later, ties)
        depth += 1
        runs, later = later, runs
        count = ties


@jit
def _sequence_order(seqs: np.ndarray) -> np.ndarray:
    """The rows in sequence order, ties in row order (a stable radix sort)."""
    n = len(seqs)
    keys = np.empty(n, np.uint64)
    flip = np.uint64(1) << np.uint64(63)
    for i in range(n):
        keys[i] = np.uint64(seqs[i]) ^ flip  # int64 order as unsigned order
    rows = np.arange(n).astype(np.int64)
    _radix_sort(keys, rows, 0, n, np.empty(n, np.uint64), np.empty(n, np.int64))
    return rows


@jit
def segment_order(
    data: np.ndarray, offsets: np.ndarray, parts: np.ndarray, seqs: np.ndarray, keys: np.ndarray
) -> np.ndarray:
    """Row order by (partition, entity id, sequence), stable: the int64 rows to take.

    ``data``/``offsets`` are the entity ids (Arrow string layout, int64 offsets), ``parts``
    the int16 partitions and ``seqs`` the int64 sequences, one per row. ``keys`` numbers
    the rows' entity ids 0, 1, 2, ... (as Arrow's ``dictionary_encode`` does), or is
    empty: then the rows are sorted as they are, which is faster when most rows bring a
    new entity (and is done too if rows of one key differ in partition). Rows equal in
    all three keep their row order, as with Arrow's ``sort_indices``.

    Raises:
        ValueError: if the arrays disagree on the number of rows.

    >>> ids = np.frombuffer(b"bab", np.uint8)
    >>> parts = np.zeros(3, np.int16)
    >>> for keys in (np.array([0, 1, 0], np.int32), np.zeros(0, np.int32)):
    ...     print(segment_order(ids, np.array([0, 1, 2, 3]), parts, np.array([1, 2, 3]), keys))
    [1 0 2]
    [1 0 2]
    """
    n = len(parts)
    if len(offsets) != n + 1 or len(seqs) != n or len(keys) not in (0, n):
        raise ValueError("segment_order: offsets, partitions, sequences and keys disagree")
    in_order = True
    for r in range(1, n):
        if seqs[r] < seqs[r - 1]:
            in_order = False
            break
    rows = np.arange(n).astype(np.int64) if in_order else _sequence_order(seqs)
    first = _first_rows(parts, keys)
    if len(first) == 0:
        _sort_rows(data, offsets, parts, rows)
        return rows
    _sort_rows(data, offsets, parts, first)  # the keys' first rows, in key order now
    # A counting sort: each key's rows start where those of the keys before it end.
    at = np.zeros(len(first), np.int64)
    for r in range(n):
        at[keys[r]] += 1
    total = 0
    for i in range(len(first)):
        g = keys[first[i]]
        size = at[g]
        at[g] = total
        total += size
    out = np.empty(n, np.int64)
    for j in range(n):
        r = rows[j]
        g = keys[r]
        out[at[g]] = r
        at[g] += 1
    return out


@jit
def dense_keys(numbers: np.ndarray) -> tuple[np.ndarray, int]:
    """Entity numbers (any non-negative ints, as the store numbers its entities) renumbered
    0, 1, 2, ... in order of first appearance, as :func:`segment_order` takes them, and
    how many there are.

    >>> keys, count = dense_keys(np.array([7, 3, 7, 9], np.int32))
    >>> keys.tolist(), count
    ([0, 1, 0, 2], 3)
    """
    n = len(numbers)
    top = 0
    for r in range(n):
        top = max(top, numbers[r] + 1)
    seen = np.full(top, -1, np.int32)
    keys = np.empty(n, np.int32)
    count = 0
    for r in range(n):
        g = numbers[r]
        if seen[g] < 0:
            seen[g] = count
            count += 1
        keys[r] = seen[g]
    return keys, count


@jit
def _first_rows(parts: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each key's first row; nothing when there are no keys, or when the rows of a key
    disagree on the partition (the order is by partition first, and the rows sorted
    themselves see it)."""
    count = 0
    for r in range(len(keys)):
        count = max(count, keys[r] + 1)
    first = np.full(count, -1, np.int64)
    for r in range(len(keys)):
        g = keys[r]
        if first[g] < 0:
            first[g] = r
        elif parts[first[g]] != parts[r]:
            return np.empty(0, np.int64)
    return first


@jit
def inverse(order: np.ndarray) -> np.ndarray:
    """Where each row goes: ``out[order[t]] = t``.

    >>> inverse(np.array([2, 0, 1])).tolist()
    [1, 2, 0]
    """
    out = np.empty(len(order), np.int64)
    for t in range(len(order)):
        out[order[t]] = t
    return out


@jit
def scatter_values(values: np.ndarray, dst: np.ndarray, out: np.ndarray) -> None:
    """``out[dst[r]] = values[r]`` for every r.

    >>> out = np.zeros(3, np.int64)
    >>> scatter_values(np.array([5, 6, 7]), np.array([2, 0, 1]), out)
    >>> out.tolist()
    [6, 7, 5]
    """
    for r in range(len(dst)):
        out[dst[r]] = values[r]


@jit
def scatter_pairs(values: np.ndarray, dst: np.ndarray, out: np.ndarray) -> None:
    """Row r of ``values`` to row ``dst[r]`` of ``out``: rows of two words (a uuid as two
    uint64), copied word by word (a loop over a row's words took twice as long)."""
    for r in range(len(dst)):
        t = dst[r]
        out[t, 0] = values[r, 0]
        out[t, 1] = values[r, 1]


@jit
def scatter_validity(bits: np.ndarray, offset: int, dst: np.ndarray, out: np.ndarray) -> int:
    """Validity bit ``offset + r`` of ``bits`` to bit ``dst[r]`` of ``out`` (LSB first,
    ``out`` all zero to begin with); empty ``bits`` mean every value is valid. Returns
    how many bits were set."""
    valid = 0
    for r in range(len(dst)):
        b = offset + r
        if len(bits) == 0 or (bits[b >> 3] >> (b & 7)) & 1:
            t = dst[r]
            out[t >> 3] |= np.uint8(1 << (t & 7))
            valid += 1
    return valid


@jit
def string_sizes(offsets: np.ndarray, dst: np.ndarray, out_offsets: np.ndarray) -> None:
    """First pass of moving strings: ``out_offsets[dst[r] + 1]`` = the size of string r."""
    for r in range(len(dst)):
        out_offsets[dst[r] + 1] = offsets[r + 1] - offsets[r]


@jit
def sum_offsets(out_offsets: np.ndarray, limit: int) -> int:
    """Sizes (from entry 1 on) summed into offsets, in place: the total, or -1 as soon as
    it passes ``limit`` (what the offsets' type holds)."""
    total = 0
    out_offsets[0] = 0
    for t in range(1, len(out_offsets)):
        total += out_offsets[t]
        if total > limit:
            return -1
        out_offsets[t] = total
    return total


@jit
def scatter_strings(
    data: np.ndarray,
    offsets: np.ndarray,
    dst: np.ndarray,
    out_offsets: np.ndarray,
    out_data: np.ndarray,
) -> None:
    """Second pass: string r of (``data``, ``offsets``) to its place as string ``dst[r]``."""
    for r in range(len(dst)):
        s = offsets[r]
        _copy_bytes(out_data, int(out_offsets[dst[r]]), data, int(s), int(offsets[r + 1] - s))
