"""AllSource Lab: an event store that lives inside a Jupyter kernel.

>>> import allsource_lab as asl
>>> with asl.open() as store:
...     ev = store.append("order.placed", "order-17", {"amount": 42.5})
...     store.events(entity_id="order-17").to_pandas()["version"].tolist()
[1]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from allsource_lab.errors import (
    AllSourceError,
    ConcurrencyError,
    CorruptionError,
    IncompatibleSchema,
    InvalidEvent,
    NotFound,
    RecoveryWarning,
    SchemaError,
    SchemaViolation,
    StorageError,
    StoreLocked,
)
from allsource_lab.events import Event
from allsource_lab.frame import EventFrame
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
from allsource_lab.store import BatchResult, EventStore
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


def open(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    **settings: Any,
) -> EventStore:
    """Open (or create) a store in a folder, or an in-memory store when ``path`` is None.

    Keyword arguments are :class:`Settings` fields, e.g. ``fsync="always"``,
    ``recovery="strict"``, ``checkpoint_every_events=50_000``.

    Raises:
        StoreLocked: another process has the folder open for writing.
        CorruptionError: the store's files are damaged (see ``recovery``).
        TypeError: an unknown setting.

    >>> store = open()
    >>> store.append("a", "x", {}).sequence
    1
    """
    try:
        config = Settings(**settings)
    except TypeError as exc:
        known = ", ".join(Settings.__dataclass_fields__)
        raise TypeError(f"{exc}; known settings are: {known}") from None
    return EventStore(path, config, read_only=read_only)


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
