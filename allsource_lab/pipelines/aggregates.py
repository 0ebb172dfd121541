"""Aggregates folded one record at a time, with the semantics of ``store.window``'s SQL.

Each aggregate reads its input once per record (:meth:`Aggregate.extract`), then folds it
into a *slot* (:meth:`Aggregate.add`); slots of two session windows merge when an event
bridges them (:meth:`Aggregate.merge`). Slots are plain JSON (ints, floats, lists and
objects), so a pipeline's open windows are saved as they are.

As in SQL: ``count`` of ``*`` counts records, ``count`` of a field counts the records where
it is present and not null, ``count_distinct`` counts distinct values (as text); the others
read the field as a number (``TRY_CAST(... AS DOUBLE)``: numbers and numeric text; anything
else is missing) and are null when no record had one. ``min``/``max`` of ``entity_id`` and
``event_type`` compare text. ``stddev`` is the sample standard deviation; ``median`` and
``pNN`` interpolate linearly (``quantile_cont``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from allsource_lab.pipelines.paths import Record, getter, key_text, to_number
from allsource_lab.pipelines.windowspec import aggregate_columns

__all__ = ["Aggregate", "aggregates_of"]


class Aggregate:
    """One output column of a reduce: what it reads, how it folds, what it reports."""

    __slots__ = ("column", "field", "kind", "name", "numeric", "quantile", "read")

    def __init__(self, field: str, name: str, column: str) -> None:
        self.field = field
        self.name = name
        self.column = column
        self.quantile: float | None = None
        self.read: Callable[[Record], Any] | None = None if field == "*" else getter(field)
        if field == "*":
            self.kind = "rows"
        elif name in ("count", "count_distinct", "sum", "min", "max", "stddev"):
            self.kind = name
        elif name in ("avg", "mean"):
            self.kind = "avg"
        else:
            self.kind = "quantile"
            self.quantile = 0.5 if name == "median" else float(name[1:]) / 100
        # min/max of a text column compare text; every other input is read as a number.
        self.numeric = self.kind not in ("rows", "count", "count_distinct") and field not in (
            "entity_id",
            "event_type",
        )

    def extract(self, record: Record) -> Any:
        """This aggregate's input from ``record`` (``None``: nothing to fold)."""
        if self.read is None:
            return 1
        value = self.read(record)
        if self.numeric:
            return to_number(value)
        if self.kind == "count":
            return None if value is None else 1
        if self.kind == "count_distinct":
            return key_text(value)
        return value

    def new(self) -> Any:
        kind = self.kind
        if kind in ("rows", "count"):
            return 0
        if kind == "count_distinct":
            return {}
        if kind in ("sum", "avg"):
            return [0.0, 0]
        if kind == "stddev":
            return [0, 0.0, 0.0]
        if kind == "quantile":
            return []
        return None  # min, max

    def add(self, slot: Any, value: Any) -> Any:
        """``slot`` with ``value`` folded in (the slot may be changed in place)."""
        if value is None:
            return slot
        kind = self.kind
        if kind in ("rows", "count"):
            return slot + 1
        if kind in ("sum", "avg"):
            slot[0] += value
            slot[1] += 1
            return slot
        if kind == "min":
            return value if slot is None or value < slot else slot
        if kind == "max":
            return value if slot is None or value > slot else slot
        if kind == "count_distinct":
            slot[value] = 1
            return slot
        if kind == "stddev":  # Welford: stable one pass
            n = slot[0] + 1
            delta = value - slot[1]
            mean = slot[1] + delta / n
            return [n, mean, slot[2] + delta * (value - mean)]
        slot.append(value)
        return slot

    def merge(self, a: Any, b: Any) -> Any:
        """The slot of two windows' records together."""
        kind = self.kind
        if kind in ("rows", "count"):
            return a + b
        if kind in ("sum", "avg"):
            return [a[0] + b[0], a[1] + b[1]]
        if kind in ("min", "max"):
            if a is None or b is None:
                return b if a is None else a
            return min(a, b) if kind == "min" else max(a, b)
        if kind == "count_distinct":
            return {**a, **b}
        if kind == "stddev":  # Chan et al.: merge two Welford states
            n = a[0] + b[0]
            if n == 0:
                return [0, 0.0, 0.0]
            delta = b[1] - a[1]
            return [n, a[1] + delta * b[0] / n, a[2] + b[2] + delta * delta * a[0] * b[0] / n]
        return a + b

    def result(self, slot: Any) -> Any:
        kind = self.kind
        if kind in ("rows", "count"):
            return slot
        if kind == "count_distinct":
            return len(slot)
        if kind == "sum":
            return slot[0] if slot[1] else None
        if kind == "avg":
            return slot[0] / slot[1] if slot[1] else None
        if kind == "stddev":
            return math.sqrt(max(slot[2], 0.0) / (slot[0] - 1)) if slot[0] >= 2 else None
        if kind == "quantile":
            return _quantile(slot, self.quantile or 0.0) if slot else None
        return slot

    @property
    def dtype(self) -> str:
        """The column's pandas dtype: int64 for counts, float64 for numbers, else object."""
        if self.kind in ("rows", "count", "count_distinct"):
            return "int64"
        return "float64" if self.numeric else "object"


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (SQL ``quantile_cont``)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def aggregates_of(aggregates: dict[str, list[str]]) -> list[Aggregate]:
    """The :class:`Aggregate` objects of a canonical reduce's ``aggregates``."""
    return [Aggregate(f, n, c) for f, n, c in aggregate_columns(aggregates)]
