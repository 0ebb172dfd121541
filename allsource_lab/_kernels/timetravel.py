"""Kernels for folding state at a moment: which versions are visible, in bulk and alone.

An entity's positions are ascending, so index ``i`` of its position list is version
``i + 1``. An event is *visible* at (as_of, known cut) when its event time is <= as_of
and its position is below the known cut. Event times need not rise with versions (a late
event may carry an early timestamp), so the visible versions are a subset, not always a
prefix; the *leading* count is how many versions from 1 on are all visible, which is how
far a snapshot may be trusted.
"""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.jit import jit


@jit
def visible(positions: np.ndarray, ts: np.ndarray, cut: int, as_of: int) -> tuple[np.ndarray, int]:
    """(indexes of the visible versions, leading count) of one entity."""
    out = np.empty(len(positions), np.int64)
    j = 0
    leading = -1
    for i in range(len(positions)):
        p = positions[i]
        if p >= cut:
            break  # positions ascend: every later one was recorded later still
        if ts[p] <= as_of:
            out[j] = i
            j += 1
        elif leading < 0:
            leading = i
    if leading < 0:
        leading = j  # nothing before the cut was hidden
    return out[:j], leading


@jit
def copy_texts(
    data: np.ndarray,
    offsets: np.ndarray,
    first: int,
    count: int,
    rows: np.ndarray,
    out: np.ndarray,
    at: int,
) -> int:
    """Copy texts (rows ``first..first+count-1``, or ``rows`` when it is not empty) into
    ``out`` from ``at``, each followed by a comma; returns the new end."""
    for i in range(count):
        r = rows[i] if len(rows) else first + i
        a = offsets[r]
        b = offsets[r + 1]
        for j in range(b - a):
            out[at + j] = data[a + j]
        at += b - a
        out[at] = 44  # ","
        at += 1
    return at


@jit
def text_bytes(offsets: np.ndarray, first: int, count: int, rows: np.ndarray) -> int:
    """Total length of the texts ``copy_texts`` would copy (without commas)."""
    if not len(rows):
        return int(offsets[first + count] - offsets[first])
    total = 0
    for i in range(len(rows)):
        total += offsets[rows[i] + 1] - offsets[rows[i]]
    return total
