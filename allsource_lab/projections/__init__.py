"""Projections: views folded from events, kept live, durable, and rebuilt by replays."""

from typing import TYPE_CHECKING, Any

from allsource_lab.projections.base import EventBatch, Projection
from allsource_lab.projections.builtin import EntitySnapshots, EventCounter
from allsource_lab.projections.runner import ProjectionInfo, Projections

if TYPE_CHECKING:
    from allsource_lab.projections.sql import SqlProjection

__all__ = [
    "EntitySnapshots",
    "EventBatch",
    "EventCounter",
    "Projection",
    "ProjectionInfo",
    "Projections",
    "SqlProjection",
]


def __getattr__(name: str) -> Any:
    # SqlProjection needs DuckDB (~0.15 s to import): loaded when first asked for.
    if name == "SqlProjection":
        from allsource_lab.projections.sql import SqlProjection

        return SqlProjection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
