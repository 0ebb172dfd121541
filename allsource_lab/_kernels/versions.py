"""Per-entity version assignment for whole batches."""

from __future__ import annotations

import numpy as np

from allsource_lab._kernels.jit import jit


@jit
def assign(entities: np.ndarray, versions: np.ndarray) -> np.ndarray:
    """Give each row the next version of its entity, in row order; updates ``versions``."""
    out = np.empty(len(entities), np.int64)
    for i in range(len(entities)):
        e = entities[i]
        v = versions[e] + 1
        versions[e] = v
        out[i] = v
    return out


@jit
def undo(entities: np.ndarray, assigned: np.ndarray, versions: np.ndarray) -> None:
    """Reverse :func:`assign` (walking back, each entity ends at its first row's version - 1)."""
    for i in range(len(entities) - 1, -1, -1):
        versions[entities[i]] = assigned[i] - 1


@jit
def raise_to(entities: np.ndarray, seen: np.ndarray, versions: np.ndarray) -> None:
    """versions[e] = max(versions[e], seen version) for every row (rebuilding on open)."""
    for i in range(len(entities)):
        e = entities[i]
        if seen[i] > versions[e]:
            versions[e] = seen[i]


@jit
def gaps(entities: np.ndarray, seen: np.ndarray, n_entities: int) -> np.ndarray:
    """Rows (in sequence order) whose version is not the previous one + 1 for its entity."""
    last = np.zeros(n_entities, np.int64)
    bad = np.zeros(len(entities), np.bool_)
    for i in range(len(entities)):
        e = entities[i]
        if seen[i] != last[e] + 1:
            bad[i] = True
        last[e] = seen[i]
    return np.nonzero(bad)[0]
