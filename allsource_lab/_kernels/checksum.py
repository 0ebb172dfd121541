"""CRC-32C (Castagnoli) in bulk, for checking every WAL frame when a store opens.

The append path uses the ``crc32c`` package (hardware CRC, one small record at a time);
this kernel exists so that opening a store checks all frames in one compiled pass
without a Python call per frame. It is bit-exact with that package.

Slicing-by-8: eight 256-entry tables let one step fold in 8 bytes with eight independent
lookups instead of eight dependent ones: measured 1.6-1.8 GB/s on 100 MB against 0.28 GB/s
byte at a time (the package's hardware CRC does ~10 GB/s). The tables are module-level
arrays, which numba freezes into the compiled code as constants.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.jit import jit

__all__ = ["crc32c"]

_POLY = 0x82F63B78  # Castagnoli, bit-reversed


def _tables() -> np.ndarray:
    """The eight slicing tables: row k advances a byte through k further zero bytes."""
    t = np.zeros((8, 256), np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t[0, i] = c
    for k in range(1, 8):
        for i in range(256):
            prev = int(t[k - 1, i])
            t[k, i] = (prev >> 8) ^ int(t[0, prev & 0xFF])
    return t


_T = _tables()
_BYTE = np.uint32(0xFF)


@jit
def _u32(b: np.ndarray, p: int) -> np.uint32:
    return (
        np.uint32(b[p])
        | (np.uint32(b[p + 1]) << np.uint32(8))
        | (np.uint32(b[p + 2]) << np.uint32(16))
        | (np.uint32(b[p + 3]) << np.uint32(24))
    )


@jit
def crc32c(data: np.ndarray, start: int, end: int, value: int = 0) -> int:
    """CRC-32C of data[start:end] (a uint8 array), continuing from ``value``.

    ``value`` is the CRC of the bytes before ``start`` (0 to begin afresh), so a buffer
    can be checked in pieces; same meaning as ``crc32c.crc32c(bytes, value)``.

    Raises:
        ValueError: unless 0 <= start <= end <= len(data) and 0 <= value < 2**32.

    >>> data = np.frombuffer(b"123456789", np.uint8)
    >>> hex(crc32c(data, 0, 9))
    '0xe3069283'
    >>> crc32c(data, 4, 9, crc32c(data, 0, 4)) == crc32c(data, 0, 9)
    True
    """
    if start < 0 or end < start or end > len(data):
        raise ValueError("crc32c: need 0 <= start <= end <= len(data)")
    if value < 0 or value > 0xFFFFFFFF:
        raise ValueError("crc32c: value must be a 32-bit CRC (0 <= value < 2**32)")
    t = _T
    c = np.uint32(value) ^ np.uint32(0xFFFFFFFF)
    p = start
    while p + 8 <= end:
        lo = c ^ _u32(data, p)
        hi = _u32(data, p + 4)
        c = (
            t[7, lo & _BYTE]
            ^ t[6, (lo >> np.uint32(8)) & _BYTE]
            ^ t[5, (lo >> np.uint32(16)) & _BYTE]
            ^ t[4, lo >> np.uint32(24)]
            ^ t[3, hi & _BYTE]
            ^ t[2, (hi >> np.uint32(8)) & _BYTE]
            ^ t[1, (hi >> np.uint32(16)) & _BYTE]
            ^ t[0, hi >> np.uint32(24)]
        )
        p += 8
    while p < end:
        c = t[0, (c ^ np.uint32(data[p])) & _BYTE] ^ (c >> np.uint32(8))
        p += 1
    return int(c ^ np.uint32(0xFFFFFFFF))
