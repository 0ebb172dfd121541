"""Interning byte-string keys (entity ids, event ids) to dense numbers, in bulk.

Open addressing with linear probing over an int64 slot array (-1 = empty); the keys'
bytes live in one growable buffer with offsets, and each key's XXH64 is kept, both to
skip byte comparisons on probe collisions and to rehash without rereading the keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from allsource_lab.kernels.hashing import xxh64
from allsource_lab.kernels.jit import jit

__all__ = ["KeyTable"]


@jit
def _equal(a: np.ndarray, s: int, e: int, b: np.ndarray, t: int, u: int) -> bool:
    if e - s != u - t:
        return False
    for k in range(e - s):
        if a[s + k] != b[t + k]:
            return False
    return True


@jit
def _find(
    slots: np.ndarray,
    hashes: np.ndarray,
    koff: np.ndarray,
    kdata: np.ndarray,
    data: np.ndarray,
    s: int,
    e: int,
    h: np.uint64,
) -> tuple[Any, Any]:
    """(slot, number): the key's number, or -1 and the empty slot where it belongs."""
    mask = np.uint64(len(slots) - 1)
    i = np.int64(h & mask)
    while True:
        no = slots[i]
        if no < 0:
            return i, -1
        if hashes[no] == h and _equal(kdata, koff[no], koff[no + 1], data, s, e):
            return i, no
        i = (i + 1) & np.int64(mask)


@jit
def _intern(
    slots: np.ndarray,
    hashes: np.ndarray,
    koff: np.ndarray,
    kdata: np.ndarray,
    n: int,
    data: np.ndarray,
    offsets: np.ndarray,
    start: int,
    out: np.ndarray,
) -> tuple[int, int]:
    """Intern rows from ``start`` until done or until a buffer would overflow.

    Returns (next row to do, keys now). The caller grows buffers and calls again.
    """
    rows = len(offsets) - 1
    r = start
    while r < rows:
        s = offsets[r]
        e = offsets[r + 1]
        h = xxh64(data, s, e, 0)
        slot, no = _find(slots, hashes, koff, kdata, data, s, e, h)
        if no < 0:
            if 2 * (n + 1) > len(slots) or n + 2 > len(koff) or koff[n] + (e - s) > len(kdata):
                return r, n
            no = n
            slots[slot] = no
            hashes[no] = h
            for k in range(e - s):
                kdata[koff[no] + k] = data[s + k]
            koff[no + 1] = koff[no] + (e - s)
            n += 1
        out[r] = no
        r += 1
    return r, n


@jit
def _lookup(
    slots: np.ndarray,
    hashes: np.ndarray,
    koff: np.ndarray,
    kdata: np.ndarray,
    data: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    rows = len(offsets) - 1
    out = np.empty(rows, np.int64)
    for r in range(rows):
        s = offsets[r]
        e = offsets[r + 1]
        _, no = _find(slots, hashes, koff, kdata, data, s, e, xxh64(data, s, e, 0))
        out[r] = no
    return out


@jit
def _lookup_one(
    slots: np.ndarray, hashes: np.ndarray, koff: np.ndarray, kdata: np.ndarray, data: np.ndarray
) -> Any:
    _, no = _find(slots, hashes, koff, kdata, data, 0, len(data), xxh64(data, 0, len(data), 0))
    return no


@jit
def _rehash(slots: np.ndarray, hashes: np.ndarray, n: int) -> None:
    mask = np.int64(len(slots) - 1)
    for no in range(n):
        i = np.int64(hashes[no] & np.uint64(mask))
        while slots[i] >= 0:
            i = (i + 1) & mask
        slots[i] = no


@jit
def _check_offsets(offsets: np.ndarray, size: int) -> bool:
    if len(offsets) == 0 or offsets[0] < 0 or offsets[len(offsets) - 1] > size:
        return False
    for i in range(len(offsets) - 1):
        if offsets[i + 1] < offsets[i]:
            return False
    return True


class KeyTable:
    """Dense numbers 0, 1, 2, … for byte-string keys, in first-seen order.

    >>> t = KeyTable()
    >>> data = np.frombuffer(b"abcab", np.uint8)
    >>> t.intern_many(data, np.array([0, 1, 3, 4, 5], np.int64)).tolist()
    [0, 1, 0, 2]
    >>> t.lookup(b"bc"), t.lookup(b"zz"), t.key(2)
    (1, -1, b'b')
    """

    def __init__(self, capacity: int = 1024) -> None:
        size = 16
        while size < 2 * capacity:
            size *= 2
        self._slots = np.full(size, -1, np.int64)
        self._hashes = np.zeros(capacity, np.uint64)
        self._koff = np.zeros(capacity + 1, np.int64)
        self._kdata = np.zeros(capacity * 16, np.uint8)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _grow(self, rows_left: int, bytes_left: int) -> None:
        n = self._n
        need_keys = n + max(1, min(rows_left, n + 1024))
        if 2 * (need_keys + 1) > len(self._slots):
            size = len(self._slots)
            while size < 2 * (need_keys + 1):
                size *= 2
            self._slots = np.full(size, -1, np.int64)
            _rehash(self._slots, self._hashes, n)
        if need_keys + 1 > len(self._koff) - 1:
            cap = max(need_keys + 1, 2 * len(self._hashes))
            self._hashes = np.concatenate([self._hashes[:n], np.zeros(cap - n, np.uint64)])
            self._koff = np.concatenate([self._koff[: n + 1], np.zeros(cap - n, np.int64)])
        used = int(self._koff[n])
        if used + bytes_left > len(self._kdata):
            cap = max(used + bytes_left, 2 * len(self._kdata))
            grown = np.zeros(cap, np.uint8)
            grown[:used] = self._kdata[:used]
            self._kdata = grown

    def intern_many(self, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The number of every key in an Arrow-layout batch, adding unknown ones.

        Raises:
            ValueError: the offsets are not non-decreasing or point outside ``data``.
        """
        data, offsets = _arrays(data, offsets)
        out = np.empty(len(offsets) - 1, np.int64)
        row = 0
        while True:
            row, self._n = _intern(
                self._slots,
                self._hashes,
                self._koff,
                self._kdata,
                self._n,
                data,
                offsets,
                row,
                out,
            )
            if row >= len(out):
                return out
            self._grow(len(out) - row, int(offsets[-1] - offsets[row]))

    def lookup_many(self, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The number of every key, -1 for unknown ones; adds nothing."""
        data, offsets = _arrays(data, offsets)
        return _lookup(self._slots, self._hashes, self._koff, self._kdata, data, offsets)

    def intern(self, key: bytes) -> int:
        """The number of one key, adding it if new."""
        return int(self.intern_many(np.frombuffer(key, np.uint8), np.array([0, len(key)]))[0])

    def lookup(self, key: bytes) -> int:
        """The number of one key, or -1."""
        data = np.frombuffer(key, np.uint8)
        return int(_lookup_one(self._slots, self._hashes, self._koff, self._kdata, data))

    def key(self, number: int) -> bytes:
        return self._kdata[self._koff[number] : self._koff[number + 1]].tobytes()

    def hash_of(self, number: int) -> int:
        return int(self._hashes[number])

    def hashes(self) -> np.ndarray:
        """XXH64 (seed 0) of every key, by number (a view)."""
        return self._hashes[: self._n]

    def key_buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """(data, offsets) of every key, by number, in Arrow layout (views)."""
        return self._kdata[: int(self._koff[self._n])], self._koff[: self._n + 1]


def _arrays(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = np.ascontiguousarray(data, np.uint8)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if not _check_offsets(offsets, len(data)):
        raise ValueError("offsets must be non-decreasing and within the data buffer")
    return data, offsets
