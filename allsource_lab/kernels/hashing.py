"""XXH64 over Arrow string buffers (partition assignment, key tables)."""

from __future__ import annotations

import numpy as np

from allsource_lab.kernels.jit import jit

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


@jit
def _rotl(x: np.uint64, r: int) -> np.uint64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@jit
def _read64(b: np.ndarray, p: int) -> np.uint64:
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(b[p + k]) << np.uint64(8 * k)
    return v


@jit
def _read32(b: np.ndarray, p: int) -> np.uint64:
    v = np.uint64(0)
    for k in range(4):
        v |= np.uint64(b[p + k]) << np.uint64(8 * k)
    return v


@jit
def _round(acc: np.uint64, lane: np.uint64) -> np.uint64:
    acc = acc + lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


@jit
def _merge(acc: np.uint64, val: np.uint64) -> np.uint64:
    acc ^= _round(np.uint64(0), val)
    return acc * _P1 + _P4


@jit
def xxh64(data: np.ndarray, start: int, end: int, seed: int) -> np.uint64:
    """XXH64 of data[start:end], bit-exact with the reference implementation."""
    s = np.uint64(seed)
    length = end - start
    p = start
    if length >= 32:
        v1 = s + _P1 + _P2
        v2 = s + _P2
        v3 = s
        v4 = s - _P1
        limit = end - 32
        while p <= limit:
            v1 = _round(v1, _read64(data, p))
            v2 = _round(v2, _read64(data, p + 8))
            v3 = _round(v3, _read64(data, p + 16))
            v4 = _round(v4, _read64(data, p + 24))
            p += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = s + _P5
    h += np.uint64(length)
    while p + 8 <= end:
        h ^= _round(np.uint64(0), _read64(data, p))
        h = _rotl(h, 27) * _P1 + _P4
        p += 8
    if p + 4 <= end:
        h ^= _read32(data, p) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        p += 4
    while p < end:
        h ^= np.uint64(data[p]) * _P5
        h = _rotl(h, 11) * _P1
        p += 1
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


@jit
def xxh64_many(data: np.ndarray, offsets: np.ndarray, seed: int) -> np.ndarray:
    """XXH64 of every string data[offsets[i]:offsets[i+1]]."""
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i] = xxh64(data, offsets[i], offsets[i + 1], seed)
    return out


@jit
def partitions_of(hashes: np.ndarray, partitions: int) -> np.ndarray:
    """hash % partitions for each hash, as int16."""
    out = np.empty(len(hashes), np.int16)
    p = np.uint64(partitions)
    for i in range(len(hashes)):
        out[i] = np.int16(hashes[i] % p)
    return out
