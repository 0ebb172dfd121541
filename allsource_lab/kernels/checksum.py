"""CRC-32C (Castagnoli) for bulk checks of WAL frames, slicing-by-8."""

from __future__ import annotations

import numpy as np

from allsource_lab.kernels.jit import jit

_POLY = 0x82F63B78


def _tables() -> np.ndarray:
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


@jit
def crc32c(data: np.ndarray, start: int, end: int, value: int = 0) -> int:
    """CRC-32C of data[start:end] continuing from ``value`` (0 to start afresh).

    Bit-exact with ``crc32c.crc32c(bytes, value)`` of the ``crc32c`` package.
    """
    t = _T
    c = np.uint32(value) ^ np.uint32(0xFFFFFFFF)
    p = start
    while p + 8 <= end:
        lo = c ^ (
            np.uint32(data[p])
            | (np.uint32(data[p + 1]) << np.uint32(8))
            | (np.uint32(data[p + 2]) << np.uint32(16))
            | (np.uint32(data[p + 3]) << np.uint32(24))
        )
        c = (
            t[7, lo & np.uint32(0xFF)]
            ^ t[6, (lo >> np.uint32(8)) & np.uint32(0xFF)]
            ^ t[5, (lo >> np.uint32(16)) & np.uint32(0xFF)]
            ^ t[4, lo >> np.uint32(24)]
            ^ t[3, data[p + 4]]
            ^ t[2, data[p + 5]]
            ^ t[1, data[p + 6]]
            ^ t[0, data[p + 7]]
        )
        p += 8
    while p < end:
        c = t[0, (c ^ np.uint32(data[p])) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
        p += 1
    return int(c ^ np.uint32(0xFFFFFFFF))
