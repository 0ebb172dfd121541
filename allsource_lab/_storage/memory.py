"""The in-memory twin of the folder storage: the same answers, nothing on disk.

``asl.open()`` without a path stores here. Sealed segments are kept as Arrow tables and
named state records as bytes; the log is never written because nothing outlives the
process, so the store skips encoding WAL records for it (``durable`` is false).
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pyarrow as pa

from allsource_lab._storage.base import Loaded, Storage
from allsource_lab._storage.manifest import Manifest
from allsource_lab._storage.segments import sort_for_segment
from allsource_lab.settings import Settings

__all__ = ["MemoryStorage"]


class MemoryStorage(Storage):
    """The in-memory twin: no files, no durability, same answers.

    >>> storage = MemoryStorage(Settings())
    >>> storage.write_state("projections", "totals", b"{}")
    >>> storage.load_states("projections")
    ({'totals': b'{}'}, [])
    >>> storage.load().segments, storage.durable
    ([], False)
    """

    def __init__(self, settings: Settings) -> None:
        self.manifest = Manifest(store_id=str(uuid.uuid4()), partitions=settings.partitions)
        self.segments: list[pa.Table] = []
        self._states: dict[str, dict[str, bytes]] = {}

    def load(self) -> Loaded:
        return Loaded(self.manifest, list(self.segments), [])

    def load_states(self, kind: str) -> tuple[dict[str, bytes], list[str]]:
        return dict(self._states.get(kind, {})), []

    def write_state(self, kind: str, name: str, body: bytes | None) -> None:
        states = self._states.setdefault(kind, {})
        if body is None:
            states.pop(name, None)
        else:
            states[name] = bytes(body)

    def write_log(self, *pieces: Any) -> None:
        pass

    def sync_log(self) -> None:
        pass

    def log_size(self) -> int:
        return 0

    def rotate_log(self, next_sequence: int) -> None:
        pass

    def seal(
        self,
        table: pa.Table,
        through: int,
        settings: Settings,
        trim_before: int | None = None,
        entities: np.ndarray | None = None,
    ) -> tuple[pa.Table, np.ndarray]:
        ordered, order = sort_for_segment(table, entities=entities)
        self.segments.append(ordered)
        self.manifest.sealed_through = through
        return ordered, order

    def compact(self, table: pa.Table, settings: Settings) -> pa.Table:
        ordered, _ = sort_for_segment(table)
        self.segments = [ordered]
        return ordered

    def verify(self) -> tuple[list[str], int]:
        return [], 0

    def close(self) -> None:
        pass
