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
def plan(
    starts: np.ndarray,
    rows: np.ndarray,
    ts: np.ndarray,
    types: np.ndarray,
    cut: int,
    as_of: int,
    event_type: int,
    snap_starts: np.ndarray,
    snap_versions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What ``states`` must fold, for every entity at once.

    ``starts``/``rows`` are the entity postings as one CSR; ``snap_starts``/
    ``snap_versions`` each entity's snapshot versions, ascending. Returns, for the
    entities with a visible event (of ``event_type`` when >= 0): their numbers, last
    visible version, its event time, the snapshot version to start from (0: none), and
    the positions to fold after it as a CSR (``fold_starts`` per entity into ``fold``).
    """
    n_ent = len(starts) - 1
    entities = np.empty(n_ent, np.int64)
    version = np.empty(n_ent, np.int64)
    when = np.empty(n_ent, np.int64)
    snap = np.empty(n_ent, np.int64)
    fold_starts = np.zeros(n_ent + 1, np.int64)
    fold = np.empty(len(rows), np.int64)
    k = 0
    f = 0
    for e in range(n_ent):
        a = starts[e]
        b = starts[e + 1]
        leading = -1
        last = -1
        typed = event_type < 0
        for i in range(b - a):
            p = rows[a + i]
            if p >= cut:
                break
            if ts[p] <= as_of:
                last = i
                if types[p] == event_type:
                    typed = True
            elif leading < 0:
                leading = i
        if last < 0 or not typed:
            continue
        if leading < 0:
            leading = last + 1
        s = 0
        for j in range(snap_starts[e], snap_starts[e + 1]):
            v = snap_versions[j]
            if v <= leading:
                s = v
        entities[k] = e
        version[k] = last + 1
        when[k] = ts[rows[a + last]]
        snap[k] = s
        for i in range(s, last + 1):
            p = rows[a + i]
            if ts[p] <= as_of:
                fold[f] = p
                f += 1
        k += 1
        fold_starts[k] = f
    return entities[:k], version[:k], when[:k], snap[:k], fold_starts[: k + 1], fold[:f]


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
