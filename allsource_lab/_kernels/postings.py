"""Kernels for postings (key → ascending positions) and for selecting positions.

A position is an event's rank in sequence order across the whole store. Postings have a
bulk part (CSR: ``starts`` by key, ``rows`` of positions) and a delta of later positions
chained per key (``dnext``: delta ordinal → next delta ordinal of the same key, or -1),
so that extending them by one batch is O(batch) and never re-sorts what is indexed.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.jit import jit

NO_LIMIT = np.iinfo(np.int64).max


@jit
def build_csr(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of positions ``0..len(keys)-1`` by key: (starts, rows)."""
    starts = np.zeros(n_keys + 1, np.int64)
    for i in range(len(keys)):
        starts[keys[i] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    fill = starts[:-1].copy()
    rows = np.empty(len(keys), np.int32)
    for i in range(len(keys)):
        k = keys[i]
        rows[fill[k]] = i
        fill[k] += 1
    return starts, rows


@jit
def link(
    keys: np.ndarray,
    first: int,
    base_end: int,
    dnext: np.ndarray,
    dhead: np.ndarray,
    dtail: np.ndarray,
    dcount: np.ndarray,
) -> None:
    """Chain positions ``first..first+len(keys)-1`` (all >= base_end) onto their keys."""
    for i in range(len(keys)):
        k = keys[i]
        d = first + i - base_end
        dnext[d] = -1
        if dhead[k] < 0:
            dhead[k] = d
        else:
            dnext[dtail[k]] = d
        dtail[k] = d
        dcount[k] += 1


@jit
def gather(
    key: int,
    starts: np.ndarray,
    rows: np.ndarray,
    base_end: int,
    dnext: np.ndarray,
    dhead: np.ndarray,
    dcount: np.ndarray,
) -> np.ndarray:
    """All positions of ``key``, ascending: its CSR slice, then its delta chain."""
    a = 0
    b = 0
    if key < len(starts) - 1:
        a = starts[key]
        b = starts[key + 1]
    nd = 0
    d = -1
    if key < len(dhead):
        nd = dcount[key]
        d = dhead[key]
    out = np.empty(b - a + nd, np.int64)
    for i in range(b - a):
        out[i] = rows[a + i]
    j = b - a
    while d >= 0:
        out[j] = base_end + d
        j += 1
        d = dnext[d]
    return out


@jit
def select(
    candidates: np.ndarray,
    everything: bool,
    lo: int,
    hi: int,
    ts: np.ndarray,
    types: np.ndarray,
    event_type: int,
    ts_lo: int,
    ts_hi: int,
    limit: int,
    reverse: bool,
) -> np.ndarray:
    """Positions among ``candidates`` (ascending) in [lo, hi) passing the filters.

    With ``everything``, ``candidates`` is ignored and every position in [lo, hi) is one.
    Event time must lie in [ts_lo, ts_hi]; ``event_type`` >= 0 also filters by type.
    At most ``limit`` are returned, from the far end when ``reverse``.
    """
    n = max(hi - lo, 0) if everything else len(candidates)
    out = np.empty(min(n, limit), np.int64)
    if not len(out):
        return out
    j = 0
    for step in range(n):
        i = n - 1 - step if reverse else step
        p = lo + i if everything else candidates[i]
        if p < lo or p >= hi:
            continue
        t = ts[p]
        if t < ts_lo or t > ts_hi:
            continue
        if event_type >= 0 and types[p] != event_type:
            continue
        out[j] = p
        j += 1
        if j == limit:
            break
    return out[:j]


@jit
def groups(positions: np.ndarray, row: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Split ``positions`` (in any order) into runs that stay in one piece.

    Columns: piece, first and end index into ``positions``, 1 when the rows are
    consecutive ascending (the group is a slice of its piece) else 0, and the first row.
    ``bases`` holds the first position of each piece, ascending.
    """
    n_groups = 0
    lo = 0
    hi = -1
    for i in range(len(positions)):
        p = positions[i]
        if p < lo or p >= hi:
            piece = np.searchsorted(bases, p, side="right") - 1
            lo = bases[piece]
            hi = bases[piece + 1] if piece + 1 < len(bases) else np.iinfo(np.int64).max
            n_groups += 1
    out = np.empty((n_groups, 5), np.int64)
    g = -1
    lo = 0
    hi = -1
    for i in range(len(positions)):
        p = positions[i]
        if p < lo or p >= hi:
            piece = np.searchsorted(bases, p, side="right") - 1
            lo = bases[piece]
            hi = bases[piece + 1] if piece + 1 < len(bases) else np.iinfo(np.int64).max
            g += 1
            out[g, 0] = piece
            out[g, 1] = i
            out[g, 3] = 1
            out[g, 4] = row[p]
        elif row[p] != row[positions[i - 1]] + 1:
            out[g, 3] = 0
        out[g, 2] = i + 1
    return out


@jit
def place(seq: np.ndarray, first: int) -> np.ndarray:
    """Rank of each row by sequence when sequences are exactly first..first+n-1, else -1s.

    Segments hold gapless sequence ranges (except after a salvage), and then placing rows
    by ``seq - first`` is O(n) where a sort is O(n log n).
    """
    n = len(seq)
    out = np.full(n, -1, np.int64)
    for i in range(n):
        r = seq[i] - first
        if r < 0 or r >= n or out[r] >= 0:
            return np.full(n, -1, np.int64)
        out[r] = i
    return out
