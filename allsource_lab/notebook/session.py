"""The kernel's current store and what a subcommand gets to work with.

A :class:`Session` belongs to one magics instance, so to one kernel (no module-level
state): it holds the store the magics opened — they close it on ``close``, on opening
another, and when the extension is unloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from allsource_lab.display import StoreInfo
from allsource_lab.errors import StoreLocked
from allsource_lab.store import EventStore
from allsource_lab.store import open as open_store

__all__ = [
    "DEMO_STORE_VARIABLE",
    "Command",
    "Context",
    "Options",
    "Outcome",
    "Session",
    "is_demo_store",
]

# The folder `%allsource open` opens with no path (`make lab` and Binder set it to a demo
# store). Several notebooks on one server share it, so when another kernel writes it, the
# next one reads it instead of failing.
DEMO_STORE_VARIABLE = "ALLSOURCE_DEFAULT_STORE"


class Session:
    """The current store of a kernel's magics."""

    def __init__(self) -> None:
        self._store: EventStore | None = None

    @property
    def store(self) -> EventStore | None:
        """The current store, or None (also when it was closed from Python)."""
        store = self._store
        if store is not None and store.closed:
            return None
        return store

    def current(self) -> EventStore:
        """The current store.

        Raises:
            UsageError: no store is open, or it was closed from Python.
        """
        store = self._store
        if store is None:
            raise UsageError(
                "no store is open: run %allsource open PATH (or %allsource open --memory) first"
            )
        if store.closed:
            self._store = None
            where = "the memory store" if store.path is None else f"the store {store.path}"
            again = "--memory" if store.path is None else str(store.path)
            raise UsageError(f"{where} was closed; open it again with %allsource open {again}")
        return store

    def open(
        self, path: str | os.PathLike[str] | None, read_only: bool, settings: dict[str, Any]
    ) -> tuple[EventStore, str | None]:
        """Open a store and make it current; returns it and a note on the one it replaced.

        The replaced store is closed after the new one opened, so a failed open leaves
        it current — except when both are the same folder, which must be closed first
        (a folder has one writer). The demo store (the folder in ``ALLSOURCE_DEFAULT_STORE``)
        opens read-only when another process writes it, and the note says so and who.

        Raises:
            StoreLocked: another process writes the folder and it is not the demo store.

        >>> import tempfile
        >>> folder = tempfile.mkdtemp() + "/s.events"
        >>> session = Session()
        >>> store, note = session.open(folder, False, {})
        >>> again, note = session.open(folder, False, {})
        >>> note == f"reopened {folder}", session.store is again
        (True, True)
        >>> session.close_all()
        """
        old = self.store
        same = (
            old is not None
            and path is not None
            and old.path is not None
            and os.path.realpath(old.path) == os.path.realpath(path)
        )
        if old is not None and same:
            self._store = None
            old.close()
        fallback = None
        try:
            store = open_store(path, read_only=read_only, **settings)
        except StoreLocked as exc:
            if read_only or not is_demo_store(path):
                raise
            store = open_store(path, read_only=True, **settings)
            # The lock's message leads with "<folder> is open for writing by <holder>".
            held_by = str(exc).split("; ", 1)[0]
            fallback = f"opened read-only: {held_by}; close it there and open again here to write"
        notes = [fallback] if fallback is not None else []
        if old is not None:
            where = "memory store" if old.path is None else str(old.path)
            notes.append(f"reopened {where}" if same else f"closed the previous store ({where})")
            if not same:
                old.close()
        self._store = store
        return store, "; ".join(notes) or None

    def close(self) -> EventStore:
        """Close the current store and forget it; returns it.

        Raises:
            UsageError: no store is open.
        """
        store = self.current()
        self._store = None
        store.close()
        return store

    def close_all(self) -> None:
        """Close the current store, if any, ignoring errors (the extension is unloading)."""
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()


def is_demo_store(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is the demo store: the folder ``ALLSOURCE_DEFAULT_STORE`` names.

    >>> is_demo_store(None)
    False
    """
    demo = os.environ.get(DEMO_STORE_VARIABLE)
    if not demo or path is None:
        return False
    return os.path.realpath(demo) == os.path.realpath(path)


@dataclass(frozen=True, slots=True)
class Options:
    """The magics' settings (traitlets) at the time of a call; ``displaylimit`` is not
    among them: views read it from :func:`allsource_lab.display.default_limit` when shown."""

    progress_rows: int = 100_000
    ingest_batch_rows: int = 100_000
    tail_rows: int = 50
    widgets: bool = True


@dataclass(frozen=True, slots=True)
class Context:
    """What a subcommand works with: the session, the user's namespace, the cell body
    (None for a line magic) and the options."""

    session: Session
    namespace: MutableMapping[str, Any]
    cell: str | None
    options: Options

    def store(self) -> EventStore:
        """The current store (``UsageError`` when none is open)."""
        return self.session.current()

    def info(self) -> StoreInfo:
        """Which store results come from, for their display."""
        return StoreInfo.of(self.store())

    def body(self) -> str | None:
        """The cell body, or None when there is none (or it is blank)."""
        if self.cell is None or not self.cell.strip():
            return None
        return self.cell


@dataclass(frozen=True, slots=True)
class Outcome:
    """A subcommand's result: what the cell shows, and what ``-o NAME`` binds."""

    shown: Any
    value: Any


Command = Callable[[Context, argparse.Namespace], Outcome]
