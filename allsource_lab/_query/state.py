"""Entity state: JSON Merge Patch folding, the hot current-state cache, and snapshots;
and the views of every piece's payload texts that the bulk fold reads.

An entity's state is its payloads folded in version order with JSON Merge Patch (RFC
7386): a ``null`` removes a key, an object merges into an object, anything else replaces.
A *snapshot* is the folded state at one version, kept so that a later fold can start
there instead of at version 1. Snapshots are stored as JSON bytes (a retained ``dict``
costs several times more memory) in a log file of checksummed records
(``allsource_lab._storage.record_log``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa

from allsource_lab._kernels import folds
from allsource_lab.events import merge_patch

__all__ = [
    "HotStates",
    "PayloadTexts",
    "Snapshot",
    "Snapshots",
    "copy_state",
    "decode_snapshot",
    "encode_snapshot",
    "merge_patch",
    "payload_texts",
]


def is_flat(state: dict[str, Any]) -> bool:
    """Whether no value is a container (then a shallow copy is a full copy)."""
    for value in state.values():
        t = type(value)
        if t is dict or t is list:
            return False
    return True


def copy_state(state: dict[str, Any], flat: bool) -> dict[str, Any]:
    """A copy the caller may change freely."""
    if flat:
        return state.copy()
    result: dict[str, Any] = orjson.loads(orjson.dumps(state))
    return result


class HotStates:
    """Current state by entity number: (version, state, flat), oldest dropped past a bound."""

    __slots__ = ("_limit", "items")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.items: dict[int, tuple[int, dict[str, Any], bool]] = {}

    def put(self, entity: int, version: int, state: dict[str, Any]) -> None:
        if self._limit <= 0:
            return
        items = self.items
        items.pop(entity, None)
        if len(items) >= self._limit:
            del items[next(iter(items))]
        items[entity] = (version, state, is_flat(state))


@dataclass(slots=True)
class Snapshot:
    """The state of ``entity_id`` after ``version``, whose event had ``event_id``."""

    entity_id: str
    version: int
    event_id: bytes
    state: bytes  # JSON text
    checked: bool = False  # event_id confirmed against the stored event


_HEAD = struct.Struct("<HqB")  # entity id length, version, 16 (event id length)


def encode_snapshot(snap: Snapshot) -> bytes:
    """One snapshot as a record body."""
    eb = snap.entity_id.encode("utf-8", "surrogatepass")
    return b"".join((_HEAD.pack(len(eb), snap.version, 16), eb, snap.event_id, snap.state))


def decode_snapshot(body: bytes) -> Snapshot:
    """The inverse of :func:`encode_snapshot`; ValueError for a body that does not parse."""
    if len(body) < _HEAD.size:
        raise ValueError("snapshot record too short")
    n, version, idlen = _HEAD.unpack_from(body)
    at = _HEAD.size
    if idlen != 16 or len(body) < at + n + 16 or version < 1:
        raise ValueError("snapshot record lengths do not add up")
    entity_id = body[at : at + n].decode("utf-8", "surrogatepass")
    event_id = bytes(body[at + n : at + n + 16])
    state = bytes(body[at + n + 16 :])
    orjson.loads(state)  # a record that passed its checksum but is not JSON is damage too
    return Snapshot(entity_id, version, event_id, state)


@dataclass(slots=True)
class Snapshots:
    """Snapshots by entity number, each entity's list ascending by version."""

    by_entity: dict[int, list[Snapshot]] = field(default_factory=dict)
    unsaved: list[Snapshot] = field(default_factory=list)
    count: int = 0
    changes: int = 0  # bumped on every add, so bulk plans can be reused until it moves

    def add(self, entity: int, snap: Snapshot, *, save: bool = True) -> bool:
        """Keep ``snap`` unless one at its version exists; whether it was new."""
        items = self.by_entity.setdefault(entity, [])
        i = len(items)
        while i and items[i - 1].version > snap.version:
            i -= 1
        if i and items[i - 1].version == snap.version:
            return False
        items.insert(i, snap)
        self.count += 1
        self.changes += 1
        if save:
            self.unsaved.append(snap)
        return True

    def best(self, entity: int, at_most: int) -> Snapshot | None:
        """The newest snapshot of ``entity`` at a version <= ``at_most``."""
        items = self.by_entity.get(entity)
        if not items:
            return None
        for snap in reversed(items):
            if snap.version <= at_most:
                return snap
        return None

    def drop(self, entity: int, snap: Snapshot) -> None:
        items = self.by_entity.get(entity)
        if items and snap in items:
            items.remove(snap)
            self.count -= 1
            self.changes += 1

    def nbytes(self) -> int:
        """Roughly what the snapshots hold in memory."""
        return sum(
            96 + len(s.state) + len(s.entity_id) for items in self.by_entity.values() for s in items
        )


class PayloadTexts(NamedTuple):
    """Every piece's payload texts as the views :func:`folds.fold_texts` reads.

    ``bases``: each piece's first position, then the position after the last;
    ``wide``: 1 where a piece's offsets are int64 (``offsets64``), 0 where int32
    (``offsets32``); ``datas``: each piece's text bytes.
    """

    bases: np.ndarray
    wide: np.ndarray
    offsets32: Any  # numba typed lists (folds.new_lists)
    offsets64: Any
    datas: Any


_NO_INT32 = np.empty(0, np.int32)
_NO_INT64 = np.empty(0, np.int64)
_NO_BYTES = np.empty(0, np.uint8)
for _empty in (_NO_INT32, _NO_INT64, _NO_BYTES):
    _empty.flags.writeable = False


def payload_texts(pieces: list[pa.RecordBatch]) -> PayloadTexts:
    """Views of the payload column of every piece, in the pieces' order, copying nothing.

    A piece's positions follow the previous piece's (the read side's layout), so its
    first position is the rows before it. The views share the pieces' buffers, which
    may be memory-mapped files: the fold touches only the pages of the texts it reads.
    ``arrowbuf.string_buffers`` would widen int32 offsets to int64, a copy of 8 bytes an
    event for every piece at once (800 MB at 100M events), so the offsets are viewed at
    their own width here.
    """
    bases = np.zeros(len(pieces) + 1, np.int64)
    wide = np.zeros(max(len(pieces), 1), np.uint8)
    lists = None
    for k, piece in enumerate(pieces):
        column = piece.column("payload")
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column
        n = len(arr)
        bases[k + 1] = bases[k] + n
        _, offsets_buf, data_buf = arr.buffers()
        width = 8 if pa.types.is_large_string(arr.type) else 4
        if offsets_buf is None:  # some producers leave it out of an empty array
            offsets = np.zeros(n + 1, np.int64 if width == 8 else np.int32)
        else:
            offsets = np.frombuffer(
                offsets_buf, np.int64 if width == 8 else np.int32, n + 1, arr.offset * width
            )
        offsets.flags.writeable = False
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else _NO_BYTES
        data.flags.writeable = False
        wide[k] = width == 8
        views = (_NO_INT32, offsets, data) if width == 8 else (offsets, _NO_INT64, data)
        if lists is None:
            lists = folds.new_lists(*views)
        else:
            folds.add_piece(lists, *views)
    if lists is None:  # the kernel reads entry 0 of each list before it looks at any piece
        lists = folds.new_lists(_NO_INT32, _NO_INT64, _NO_BYTES)
    offsets32, offsets64, datas = lists
    return PayloadTexts(bases, wide, offsets32, offsets64, datas)
