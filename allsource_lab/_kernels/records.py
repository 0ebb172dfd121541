"""Decode runs of single-event WAL records into columns, in one pass per column set.

The layout is defined in ``allsource_lab/_storage/records.py`` (the only writer); this kernel
reads a buffer of *framed* records (``u32 length, u32 crc, body``) that were already
checked by the framing layer, so it trusts lengths and does no CRC work.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.jit import jit

# Offsets inside a single-event body (see records.SINGLE_HEADER).
_SEQ = 1
_VER = 9
_TS = 17
_REC = 25
_ID = 33
_SV = 49
_PART = 53
_TLEN = 55
_ELEN = 57
_MLEN = 59
_PLEN = 63
HEADER_SIZE = 67
FRAME_SIZE = 8


@jit
def _u16(b: np.ndarray, p: int) -> int:
    return int(b[p]) | (int(b[p + 1]) << 8)


@jit
def _u32(b: np.ndarray, p: int) -> int:
    return int(b[p]) | (int(b[p + 1]) << 8) | (int(b[p + 2]) << 16) | (int(b[p + 3]) << 24)


@jit
def _i64(b: np.ndarray, p: int) -> np.int64:
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(b[p + k]) << np.uint64(8 * k)
    return np.int64(v)


@jit
def count_singles(buf: np.ndarray, start: int, end: int) -> tuple[int, int, int, int, int]:
    """Number of framed single-event records in buf[start:end] and their string byte totals.

    Returns ``(-1, offset, 0, 0, 0)`` for the first record whose lengths do not add up.
    """
    n = 0
    tl = 0
    el = 0
    ml = 0
    pl = 0
    p = start
    while p < end:
        length = _u32(buf, p)
        b = p + FRAME_SIZE
        # A record can pass its CRC and still not be what this version writes (a bug, or
        # a newer format): its lengths must add up before any byte is copied out of it.
        if length < HEADER_SIZE or b + length > end:
            return -1, p, 0, 0, 0
        t = _u16(buf, b + _TLEN)
        e = _u16(buf, b + _ELEN)
        m = _u32(buf, b + _MLEN)
        q = _u32(buf, b + _PLEN)
        if HEADER_SIZE + t + e + m + q != length:
            return -1, p, 0, 0, 0
        tl += t
        el += e
        ml += m
        pl += q
        n += 1
        p = b + length
    return n, tl, el, ml, pl


@jit
def _copy(src: np.ndarray, s: int, n: int, dst: np.ndarray, d: int) -> None:
    # A slice assignment, not a loop over indices: each indexed access checks for a
    # negative index, which keeps LLVM from turning the loop into a block copy. Decoding
    # 100K single records (~21 MB) took 22 ms of CPU with the loop, 13 ms this way
    # (measured on a busy 2-core machine, min of 9).
    dst[d : d + n] = src[s : s + n]


@jit
def decode_singles(
    buf: np.ndarray,
    start: int,
    end: int,
    n: int,
    tl: int,
    el: int,
    ml: int,
    pl: int,
) -> tuple[np.ndarray, ...]:
    """Columns of the ``n`` framed single-event records in buf[start:end].

    Returns (sequence, version, timestamp, recorded, ids[n*16], schema_version,
    partition, type_off, type_data, entity_off, entity_data, meta_off, meta_data,
    payload_off, payload_data); offsets are int64 Arrow-style (n+1 entries).
    """
    seq = np.empty(n, np.int64)
    ver = np.empty(n, np.int64)
    ts = np.empty(n, np.int64)
    rec = np.empty(n, np.int64)
    ids = np.empty(n * 16, np.uint8)
    sv = np.empty(n, np.int32)
    part = np.empty(n, np.int16)
    t_off = np.empty(n + 1, np.int64)
    e_off = np.empty(n + 1, np.int64)
    m_off = np.empty(n + 1, np.int64)
    p_off = np.empty(n + 1, np.int64)
    t_dat = np.empty(tl, np.uint8)
    e_dat = np.empty(el, np.uint8)
    m_dat = np.empty(ml, np.uint8)
    p_dat = np.empty(pl, np.uint8)
    t_off[0] = 0
    e_off[0] = 0
    m_off[0] = 0
    p_off[0] = 0
    p = start
    i = 0
    while p < end and i < n:
        length = _u32(buf, p)
        b = p + FRAME_SIZE
        seq[i] = _i64(buf, b + _SEQ)
        ver[i] = _i64(buf, b + _VER)
        ts[i] = _i64(buf, b + _TS)
        rec[i] = _i64(buf, b + _REC)
        _copy(buf, b + _ID, 16, ids, i * 16)
        raw = _u32(buf, b + _SV)
        sv[i] = np.int32(raw - 4294967296 if raw >= 2147483648 else raw)
        part[i] = np.int16(_u16(buf, b + _PART))
        tlen = _u16(buf, b + _TLEN)
        elen = _u16(buf, b + _ELEN)
        mlen = _u32(buf, b + _MLEN)
        plen = _u32(buf, b + _PLEN)
        q = b + HEADER_SIZE
        _copy(buf, q, tlen, t_dat, t_off[i])
        t_off[i + 1] = t_off[i] + tlen
        q += tlen
        _copy(buf, q, elen, e_dat, e_off[i])
        e_off[i + 1] = e_off[i] + elen
        q += elen
        _copy(buf, q, mlen, m_dat, m_off[i])
        m_off[i + 1] = m_off[i] + mlen
        q += mlen
        _copy(buf, q, plen, p_dat, p_off[i])
        p_off[i + 1] = p_off[i] + plen
        i += 1
        p = b + length
    return (
        seq,
        ver,
        ts,
        rec,
        ids,
        sv,
        part,
        t_off,
        t_dat,
        e_off,
        e_dat,
        m_off,
        m_dat,
        p_off,
        p_dat,
    )
