"""``IntegrityReport`` and the logical checks behind ``store.verify()``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["IntegrityReport", "check_tables"]


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What ``verify()`` found: ``ok`` is True when ``problems`` is empty."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0

    def __bool__(self) -> bool:
        return self.ok

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The AllSource JSON (kind ``integrity``), HTML and text of the report.

        >>> print(IntegrityReport(False, ["segments/1.parquet: sha256 mismatch"], 4)
        ...       ._repr_mimebundle_()["text/plain"])
        integrity NOT OK: 1 problem in 4 files
          - segments/1.parquet: sha256 mismatch
        """
        from allsource_lab.display import bundle

        return bundle(self, include=include, exclude=exclude)


def check_tables(tables: list[pa.Table]) -> list[str]:
    """Invariants over all events: gapless sequences from 1, gapless versions, unique ids."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return []
    problems: list[str] = []
    all_events = pa.concat_tables(tables).select(["sequence", "entity_id", "version", "event_id"])
    ordered = all_events.sort_by("sequence")
    seq = ordered.column("sequence").to_numpy()
    expected = np.arange(1, len(seq) + 1, dtype=np.int64)
    if not np.array_equal(seq, expected):
        bad = int(np.argmax(seq != expected))
        problems.append(
            f"sequences are not gapless from 1: position {bad} holds {int(seq[bad])}, "
            f"expected {int(expected[bad])}"
        )
    by_entity = ordered.sort_by([("entity_id", "ascending"), ("sequence", "ascending")])
    ent = by_entity.column("entity_id").combine_chunks()
    ver = by_entity.column("version").to_numpy()
    starts = np.ones(len(ver), np.bool_)
    if len(ver) > 1:
        same = pc.equal(ent.slice(1), ent.slice(0, len(ent) - 1)).to_numpy(zero_copy_only=False)
        starts[1:] = ~same
    prev = np.concatenate([[0], ver[:-1]])
    want = np.where(starts, 1, prev + 1)
    if not np.array_equal(ver, want):
        bad = int(np.argmax(ver != want))
        problems.append(
            f"entity {ent[bad].as_py()!r} has version {int(ver[bad])} where "
            f"{int(want[bad])} was expected (versions must be gapless from 1)"
        )
    ids = ordered.column("event_id").combine_chunks().storage
    if pc.count_distinct(ids).as_py() != len(ids):
        problems.append("some event_id appears more than once")
    return problems
