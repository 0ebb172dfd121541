"""AllSource Lab: an event store that lives inside a Jupyter kernel.

>>> import allsource_lab as asl
>>> with asl.open() as store:
...     ev = store.append("order.placed", "order-17", {"amount": 42.5})
...     store.events(entity_id="order-17").to_pandas()["version"].tolist()
[1]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from allsource_lab.errors import (
    AllSourceError,
    ConcurrencyError,
    CorruptionError,
    IncompatibleSchema,
    InvalidArgument,
    InvalidEvent,
    NotFound,
    RecoveryWarning,
    SchemaError,
    SchemaViolation,
    StorageError,
    StoreLocked,
)
from allsource_lab.eventframe import EventFrame
from allsource_lab.events import Event
from allsource_lab.integrity import IntegrityReport
from allsource_lab.pipelines import Pipeline, Pipelines
from allsource_lab.projections import (
    EntitySnapshots,
    EventBatch,
    EventCounter,
    Projection,
)
from allsource_lab.replay import ReplayJob, ReplayProgress
from allsource_lab.settings import Settings
from allsource_lab.store import BatchResult, EventStore, open
from allsource_lab.subscriptions import Subscription

if TYPE_CHECKING:
    from allsource_lab.projections.sql import SqlProjection

__all__ = [
    "AllSourceError",
    "BatchResult",
    "ConcurrencyError",
    "CorruptionError",
    "EntitySnapshots",
    "Event",
    "EventBatch",
    "EventCounter",
    "EventFrame",
    "EventStore",
    "IncompatibleSchema",
    "IntegrityReport",
    "InvalidArgument",
    "InvalidEvent",
    "NotFound",
    "Pipeline",
    "Pipelines",
    "Projection",
    "RecoveryWarning",
    "ReplayJob",
    "ReplayProgress",
    "SchemaError",
    "SchemaViolation",
    "Settings",
    "SqlProjection",
    "StorageError",
    "StoreLocked",
    "Subscription",
    "open",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext allsource_lab``: register the ``%allsource`` magic.

    IPython is imported here, never by ``import allsource_lab``; see
    :mod:`allsource_lab.notebook`.
    """
    from allsource_lab.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext allsource_lab``: close the magics' store and remove the magic."""
    from allsource_lab.notebook import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension is in the package (for
    ``jupyter labextension develop``; a wheel installs it as data-files)."""
    return [{"src": "labextension", "dest": "allsource-lab-extension"}]


def __getattr__(name: str) -> Any:
    # SqlProjection needs DuckDB (~0.15 s to import): loaded when first asked for.
    if name == "SqlProjection":
        from allsource_lab.projections.sql import SqlProjection

        return SqlProjection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
