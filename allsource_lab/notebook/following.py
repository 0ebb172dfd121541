"""How the notebook watches a store: whether it is closed, and a call after each append.

The store's public way to say both is ``store.closed`` and ``store.feed.follow(callback)``
/ ``store.feed.unfollow(callback)``. A store from before that interface offers only its
private append hook (``_listeners``) and flag (``_closed``). This module is the one
place in the notebook that falls back on them, so the rest never touches a store's
private members, and the fallback can go in one edit once every store has the interface.

>>> from allsource_lab.store import open as open_store
>>> store = open_store()
>>> seen = []
>>> follow(store, seen.append)
>>> _ = store.append("order.placed", "order-1", {})
>>> unfollow(store, seen.append)
>>> _ = store.append("order.placed", "order-2", {})
>>> len(seen), is_closed(store)
(1, False)
>>> store.close()
>>> is_closed(store)
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = ["follow", "is_closed", "unfollow"]

Callback = Callable[..., Any]


def is_closed(store: EventStore) -> bool:
    """Whether ``store`` was closed (or never finished opening)."""
    closed = getattr(store, "closed", None)
    if isinstance(closed, bool):
        return closed
    return bool(getattr(store, "_closed", False))


def follow(store: EventStore, callback: Callback) -> None:
    """Have ``store`` call ``callback`` after each ``append``/``append_batch``.

    It is called on the appending thread, outside the store's locks: it should do
    little more than note that there is something new.
    """
    feed = getattr(store, "feed", None)
    if feed is not None:
        feed.follow(callback)
    else:
        store._listeners.append(callback)


def unfollow(store: EventStore, callback: Callback) -> None:
    """Stop calling ``callback``; no effect if it was not being called."""
    feed = getattr(store, "feed", None)
    if feed is not None:
        feed.unfollow(callback)
        return
    with contextlib.suppress(ValueError):  # already gone
        store._listeners.remove(callback)
