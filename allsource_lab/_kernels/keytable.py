"""Interning byte-string keys (entity ids, event ids) to dense numbers, in bulk.

Open addressing with linear probing over an int64 slot array (-1 = empty, else a key
number), a power of two in size and at most half full. Key bytes live back to back in one
growable buffer with int64 offsets (Arrow layout), and each key's XXH64 (seed 0) is kept
by number: it spares most byte comparisons, lets the table rehash without reading keys,
and is what the store derives partitions from.

The kernel never allocates: when a new key does not fit it returns the row it stopped
at, and :class:`KeyTable` doubles what is short and calls again (O(log n) round trips).
Not thread-safe: callers serialise writes, as the store does under its lock.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.hashing import _quiet, _read64, xxh64, xxh64_many
from allsource_lab._kernels.jit import jit

__all__ = ["KeyTable"]


@jit
def _number(
    slots: np.ndarray,
    hashes: np.ndarray,
    koff: np.ndarray,
    kdata: np.ndarray,
    n: int,
    data: np.ndarray,
    offsets: np.ndarray,
    row_hashes: np.ndarray,
    row: int,
    out: np.ndarray,
    add: bool,
) -> tuple[int, int]:
    """Number rows from ``row`` on into ``out``; returns (the row it stopped at, keys now).

    Unknown keys get -1, or with ``add`` the next number; adding stops before a key that
    would load the slots past one half or overflow ``hashes``, ``koff`` or ``kdata``.
    """
    # Probe and byte comparison are written out, not called: LLVM left a probe helper as
    # a real call, and numbering 1M ten-byte keys (100K distinct) took 90 ms, not 62.
    mask = len(slots) - 1
    while row < len(out):
        s = offsets[row]
        size = offsets[row + 1] - s
        h = row_hashes[row]
        i = np.int64(h & np.uint64(mask))
        while True:
            no = slots[i]
            if no < 0:
                break
            if hashes[no] == h and koff[no + 1] - koff[no] == size:
                t = koff[no]
                k = 0
                while k + 8 <= size and _read64(kdata, t + k) == _read64(data, s + k):
                    k += 8
                if k + 8 > size:
                    while k < size and kdata[t + k] == data[s + k]:
                        k += 1
                if k == size:
                    break
            i = (i + 1) & mask
        if no < 0 and add:
            if 2 * (n + 1) > len(slots) or n >= len(hashes) or koff[n] + size > len(kdata):
                return row, n
            no = n
            slots[i] = no
            hashes[no] = h
            kdata[koff[no] : koff[no] + size] = data[s : s + size]
            koff[no + 1] = koff[no] + size
            n += 1
        out[row] = no
        row += 1
    return row, n


@jit
def _probe(
    slots: np.ndarray,
    hashes: np.ndarray,
    koff: np.ndarray,
    kdata: np.ndarray,
    key: bytes,
    h: np.uint64,
) -> tuple[int, np.int64]:
    """(number of one key or -1, the slot its probe ended at), given its hash ``h``."""
    size = len(key)
    mask = len(slots) - 1
    i = np.int64(h & np.uint64(mask))
    while True:
        no = slots[i]
        if no < 0:
            return -1, i
        if hashes[no] == h and koff[no + 1] - koff[no] == size:
            t = koff[no]
            k = 0
            while k < size and kdata[t + k] == key[k]:
                k += 1
            if k == size:
                return no, i
        i = (i + 1) & mask


@_quiet
@jit
def _lookup_one(
    slots: np.ndarray, hashes: np.ndarray, koff: np.ndarray, kdata: np.ndarray, key: bytes
) -> int:
    """The number of one key, or -1: one call with few arguments (numba's dispatch cost
    grows with them), for the single lookups of reads. numba takes ``bytes`` as it is (a
    numpy view of them costs ~0.2 us more)."""
    return _probe(slots, hashes, koff, kdata, key, xxh64(key, 0, len(key), 0))[0]


@_quiet
@jit
def _intern_one(
    slots: np.ndarray, hashes: np.ndarray, koff: np.ndarray, kdata: np.ndarray, n: int, key: bytes
) -> tuple[int, np.uint64]:
    """(number, XXH64) of one key, adding it as number ``n`` if new: one call, for the
    single-append path. The number is -1 when a new key would not fit (grow, call again)."""
    size = len(key)
    h = xxh64(key, 0, size, 0)
    no, i = _probe(slots, hashes, koff, kdata, key, h)
    if no >= 0:
        return no, h
    if 2 * (n + 1) > len(slots) or n >= len(hashes) or koff[n] + size > len(kdata):
        return -1, h
    slots[i] = n
    hashes[n] = h
    t = koff[n]
    for k in range(size):
        kdata[t + k] = key[k]
    koff[n + 1] = t + size
    return n, h


@jit
def _rehash(slots: np.ndarray, hashes: np.ndarray, n: int) -> None:
    mask = len(slots) - 1
    for no in range(n):
        i = np.int64(hashes[no] & np.uint64(mask))
        while slots[i] >= 0:
            i = (i + 1) & mask
        slots[i] = no


class KeyTable:
    """Dense numbers 0, 1, 2, … for byte-string keys, in first-seen order.

    ``capacity`` is how many keys fit before the first growth (a hint, not a limit).

    >>> t = KeyTable()
    >>> t.intern_many(np.frombuffer(b"abcab", np.uint8), np.array([0, 1, 3, 4, 5])).tolist()
    [0, 1, 0, 2]
    >>> t.lookup(b"bc"), t.lookup(b"zz"), t.key(2), len(t)
    (1, -1, b'b', 3)
    """

    def __init__(self, capacity: int = 1024) -> None:
        capacity = max(int(capacity), 1)
        size = max(16, 1 << (2 * capacity - 1).bit_length())  # power of two >= 2 * capacity
        self._slots = np.full(size, -1, np.int64)
        self._hashes = np.zeros(capacity, np.uint64)
        self._koff = np.zeros(capacity + 1, np.int64)
        self._kdata = np.zeros(16 * capacity, np.uint8)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def nbytes(self) -> int:
        """Bytes held by the table's arrays (capacity, not just what is used)."""
        return int(
            self._slots.nbytes + self._hashes.nbytes + self._koff.nbytes + self._kdata.nbytes
        )

    def intern_many(self, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The number of every key in an Arrow-layout batch, adding unknown keys.

        Key i is data[offsets[i]:offsets[i + 1]] (uint8 data; n + 1 integer offsets). New
        keys are numbered in row order, a key repeated in the batch once, so the numbers
        >= the old ``len(self)`` are the new keys. Returns an int64 array.

        Raises:
            ValueError: if ``data`` is not 1-d uint8, or the offsets are empty, decreasing
                or outside ``data``.

        >>> t = KeyTable()
        >>> t.intern(b"x"), t.intern_many(np.frombuffer(b"yxy", np.uint8), np.arange(4))
        (0, array([1, 0, 1]))
        """
        return self._number_all(*_checked(data, offsets), add=True)

    def lookup_many(self, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The number of every key in an Arrow-layout batch, -1 where unknown; adds nothing.

        Raises:
            ValueError: as :meth:`intern_many` does.

        >>> t = KeyTable()
        >>> t.intern(b"b"), t.lookup_many(np.frombuffer(b"ab", np.uint8), np.arange(3))
        (0, array([-1,  0]))
        """
        return self._number_all(*_checked(data, offsets), add=False)

    def intern(self, key: bytes) -> int:
        """The number of one key, adding it if new.

        >>> t = KeyTable()
        >>> t.intern(b"a"), t.intern(b"b"), t.intern(b"a")
        (0, 1, 0)
        """
        return self.intern_hashed(key)[0]

    def intern_hashed(self, key: bytes) -> tuple[int, int]:
        """(number, XXH64) of one key, adding it if new.

        >>> t = KeyTable()
        >>> t.intern_hashed(b"hello") == (0, t.hash_of(0))
        True
        """
        while True:
            no, h = _intern_one(self._slots, self._hashes, self._koff, self._kdata, self._n, key)
            if no >= 0:
                if no == self._n:
                    self._n += 1
                return int(no), int(h)
            self._grow(len(key))

    def lookup(self, key: bytes) -> int:
        """The number of one key, or -1 if it was never interned.

        >>> t = KeyTable()
        >>> t.intern(b"a"), t.lookup(b"a"), t.lookup(b"b")
        (0, 0, -1)
        """
        return int(_lookup_one(self._slots, self._hashes, self._koff, self._kdata, key))

    def key(self, number: int) -> bytes:
        """The bytes of key ``number``.

        Raises:
            IndexError: unless 0 <= number < len(self).

        >>> t = KeyTable()
        >>> t.key(t.intern("é".encode())).decode()
        'é'
        """
        self._check_number(number)
        return self._kdata[self._koff[number] : self._koff[number + 1]].tobytes()

    def hash_of(self, number: int) -> int:
        """The XXH64 (seed 0) of key ``number``.

        Raises:
            IndexError: unless 0 <= number < len(self).

        >>> t = KeyTable()
        >>> hex(t.hash_of(t.intern(b"hello")))
        '0x26c7827d889f6da3'
        """
        self._check_number(number)
        return int(self._hashes[number])

    def hashes(self) -> np.ndarray:
        """The XXH64 (seed 0) of every key by number, as a read-only uint64 snapshot view.

        >>> t = KeyTable()
        >>> t.intern(b"hello")
        0
        >>> [hex(h) for h in t.hashes()]
        ['0x26c7827d889f6da3']
        """
        return _read_only(self._hashes[: self._n])

    def key_buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """Every key by number, in Arrow layout: read-only (uint8 data, int64 offsets) views.

        ``offsets`` has ``len(self) + 1`` entries from 0. Like :meth:`hashes`, a snapshot:
        later keys are not in it, and the bytes in it never change.

        >>> t = KeyTable()
        >>> t.intern_many(np.frombuffer(b"abcab", np.uint8), np.array([0, 1, 3, 5])).tolist()
        [0, 1, 2]
        >>> data, offsets = t.key_buffers()
        >>> data.tobytes(), offsets.tolist()
        (b'abcab', [0, 1, 3, 5])
        """
        n = self._n
        return _read_only(self._kdata[: self._koff[n]]), _read_only(self._koff[: n + 1])

    def reserve(self, keys: int, key_bytes: int) -> None:
        """Room for ``keys`` keys of ``key_bytes`` bytes in all without growing again
        (before numbering a known count of keys at once, as an open does)."""
        n = self._n
        size = len(self._slots)
        while 2 * keys > size:
            size *= 2
        if size > len(self._slots):
            self._slots = np.full(size, -1, np.int64)
            _rehash(self._slots, self._hashes, n)
        if keys > len(self._hashes):
            self._hashes = _resized(self._hashes, keys)
            self._koff = _resized(self._koff, keys + 1)
        if key_bytes > len(self._kdata):
            self._kdata = _resized(self._kdata, key_bytes)

    def truncate(self, keys: int) -> None:
        """Forget every key numbered ``keys`` or later (undoing a bulk ``intern_many``
        whose keys turned out unusable, before anything refers to them).

        >>> t = KeyTable()
        >>> t.intern_many(np.frombuffer(b"abc", np.uint8), np.arange(4)).tolist()
        [0, 1, 2]
        >>> t.truncate(1)
        >>> len(t), t.lookup(b"a"), t.lookup(b"b"), t.intern(b"c")
        (1, 0, -1, 1)
        """
        if not 0 <= keys <= self._n:
            raise IndexError(f"cannot keep {keys} keys: the table holds {self._n}")
        self._n = keys
        self._slots.fill(-1)
        _rehash(self._slots, self._hashes, keys)

    def _number_all(self, data: np.ndarray, offsets: np.ndarray, add: bool) -> np.ndarray:
        # Hashing every row first, in its own tight loop, then probing measured 62 ms on
        # 1M ten-byte keys against 78 ms hashing inside the probe loop; and no row is
        # hashed twice when the table grows midway.
        row_hashes = xxh64_many(data, offsets, 0)
        out = np.empty(len(row_hashes), np.int64)
        row = 0
        while True:
            arrays = (self._slots, self._hashes, self._koff, self._kdata)  # new after _grow
            row, self._n = _number(*arrays, self._n, data, offsets, row_hashes, row, out, add)
            if row == len(out):
                return out
            self._grow(int(offsets[row + 1] - offsets[row]))

    def _grow(self, key_bytes: int) -> None:
        """Make room for one more key of ``key_bytes`` bytes, doubling what is short."""
        n = self._n
        if 2 * (n + 1) > len(self._slots):
            self._slots = np.full(2 * len(self._slots), -1, np.int64)
            _rehash(self._slots, self._hashes, n)
        if n >= len(self._hashes):
            keys = 2 * len(self._hashes)
            self._hashes = _resized(self._hashes, keys)
            self._koff = _resized(self._koff, keys + 1)
        used = int(self._koff[n])
        if used + key_bytes > len(self._kdata):
            self._kdata = _resized(self._kdata, max(2 * len(self._kdata), used + key_bytes))

    def _check_number(self, number: int) -> None:
        if not 0 <= number < self._n:
            raise IndexError(f"no key number {number}: the table holds {self._n} keys")


def _resized(a: np.ndarray, size: int) -> np.ndarray:
    grown = np.zeros(size, a.dtype)
    grown[: len(a)] = a
    return grown


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _checked(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) as contiguous uint8 and int64, after a vectorised O(n) check."""
    data = np.asarray(data)
    offsets = np.asarray(offsets)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise ValueError(f"key data must be a 1-d uint8 array, not {data.ndim}-d {data.dtype}")
    if offsets.dtype.kind not in "iu" or offsets.ndim != 1:
        raise ValueError(f"offsets must be 1-d integers, not {offsets.ndim}-d {offsets.dtype}")
    offsets = np.ascontiguousarray(offsets, np.int64)
    if (
        len(offsets) == 0
        or offsets[0] < 0
        or offsets[-1] > len(data)
        or np.any(offsets[1:] < offsets[:-1])
    ):
        raise ValueError(
            "malformed offsets: need at least one entry, non-decreasing, from >= 0 up to"
            f" <= len(data) = {len(data)}"
        )
    return np.ascontiguousarray(data), offsets
