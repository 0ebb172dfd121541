"""SQL over the whole store: a DuckDB connection per thread with the ``events`` and ``log`` views.

``events`` is registered as one zero-copy Arrow table over every piece (segments, then
tail chunks); it is registered again only when the pieces changed. Its rows come in storage
order: sealed segments are sorted by entity, so ``select * from events limit 10`` is not
the head of the log. ``log`` is the same rows in sequence order (``events`` with
``order by sequence``), the view to read the log from its start.

Why two views rather than one in log order (medians of 5 on the benchmark's read store,
1M events in ten segments, plus 500 in an eleventh; DuckDB 2.0.1, December 2026): giving
``events`` the ``order by`` made ``select event_type, count(*) from events group by 1``
114 ms instead of 25 ms and a tumbling one-minute count 143 ms instead of 40 ms, since
DuckDB keeps the sort under an aggregate; registering a sequence-ordered copy kept those at
24 ms and 37 ms but cost 622 ms to build and 201 MB beside the 200 MB of pieces (the sealed
part could be kept per segment, but the memory stays doubled; at 10M events, one run: 2.1 s
and 2.0 GB). ``log``'s head (``select * from log limit 10``) took 37 ms there (344 ms at
10M), ``events``' 1 ms.

A DuckDB query from Python costs >= 75 us however small, which is why entity-level reads
never come here.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

import pyarrow as pa

from allsource_lab._store.log import EventLog
from allsource_lab._store.sealing import Sealer
from allsource_lab.events import EVENT_SCHEMA

__all__ = ["LOG_VIEW", "SqlConnections"]

# The view of every event in sequence order; see the module docstring for why it is apart.
LOG_VIEW = "log"

# SQL that may drop, create or replace views (`events` and `log` among them).
_DDL = re.compile(r"\b(drop|create|alter|replace|attach|detach|unregister)\b", re.IGNORECASE)


class SqlConnections:
    """DuckDB connections by thread, each with the ``events`` and ``log`` views."""

    def __init__(self, log: EventLog, sealer: Sealer) -> None:
        self.log = log
        self.sealer = sealer
        # Made on first use; a connection serves one query at a time.
        self._connections: dict[int, tuple[Any, tuple[int, int, int]]] = {}
        self._generation = 0  # bumped when `events` must be registered again

    def sql(self, query: str, params: Any = None) -> Any:
        """A DuckDB relation for ``query`` (see ``EventStore.sql``)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be SQL text, not {type(query).__name__}")
        con = self.connection()
        if _DDL.search(query):
            # The query may drop or replace the `events` view: register it again next time.
            with self.log.lock:
                self._generation += 1
        return con.sql(query, params=params)

    def connection(self) -> Any:
        """This thread's connection, with ``events`` brought up to date."""
        import duckdb

        with self.log.lock:
            reader = self.sealer.reader
            reader.sync(self.log.tail)
            me = threading.get_ident()
            entry = self._connections.get(me)
            if entry is None:
                self._drop_dead_connections()
                entry = (duckdb.connect(), (-1, -1, -1))
            con, registered = entry
            key = (reader.index.n, reader.sealed, self._generation + self.sealer.generation)
            if key != registered:
                # One Arrow table over every piece (no copy): segments, then tail chunks.
                con.register("events", pa.Table.from_batches(reader.pieces, EVENT_SCHEMA))
                # By name, so it follows `events` through later registrations; made again
                # here in case a query dropped or replaced it (that bumps the generation).
                # A table the user named `log` is left alone rather than failing every query.
                with contextlib.suppress(duckdb.CatalogException):
                    con.execute(
                        f"create or replace view {LOG_VIEW} as "
                        "select * from events order by sequence"
                    )
            self._connections[me] = (con, key)
            return con

    def _drop_dead_connections(self) -> None:
        """Close the connections of threads that have ended (under lock)."""
        alive = {t.ident for t in threading.enumerate()}
        for ident in [i for i in self._connections if i not in alive]:
            con, _ = self._connections.pop(ident)
            with contextlib.suppress(Exception):
                con.close()

    def close(self) -> None:
        """Close every connection (DuckDB complains at exit about ones left open)."""
        connections, self._connections = self._connections, {}
        for con, _ in connections.values():
            with contextlib.suppress(Exception):
                con.close()
