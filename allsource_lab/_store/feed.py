"""What projections, replays, subscriptions and widgets follow: the :class:`EventFeed`.

This part implements :class:`allsource_lab._feed.EventFeed` over the log, the read side
and storage. The common case of a live follower — one single append just stored, nothing
after it — is fed the event the append made, without bringing the read side up to date
for one event (~100 µs per append, measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from allsource_lab._feed import Listener
from allsource_lab._store.log import EventLog
from allsource_lab._store.rows import Rows
from allsource_lab._store.sealing import Sealer
from allsource_lab.eventbatch import EventBatch, EventList
from allsource_lab.eventframe import Query

if TYPE_CHECKING:
    from allsource_lab._storage import Storage
    from allsource_lab._store.following import Follower

__all__ = ["Feed"]

_NO_POSITIONS = np.empty(0, np.int64)


class Feed:
    """The store's events as its followers see them (``store.feed``)."""

    def __init__(
        self,
        log: EventLog,
        sealer: Sealer,
        rows: Rows,
        storage: Storage,
        problems: list[str],
        follower: Follower | None = None,
    ) -> None:
        self._log = log
        self._follower = follower  # a read-only store's: followers hear the writer
        self._sealer = sealer
        self._rows = rows
        self._storage = storage
        self._problems = problems
        self._replays: list[Any] = []
        self._subscriptions: dict[str, Any] = {}
        # The store's live projections, once made (a pipeline that enriches its records
        # from a projection finds it here, through the batches it is fed).
        self.projections: Any = None

    @property
    def closed(self) -> bool:
        return self._log.closed

    @property
    def read_only(self) -> bool:
        return self._log.read_only

    @property
    def problems(self) -> list[str]:
        return self._problems

    @property
    def subscriptions(self) -> dict[str, Any]:
        return self._subscriptions

    def head(self) -> int:
        """The last sequence stored (0 when empty)."""
        if self._follower is not None:
            self._follower.check()
        with self._log.lock:
            return self._log.next_seq - 1

    def batch(
        self,
        after: int,
        limit: int | None = None,
        *,
        through: int | None = None,
        event_types: tuple[str, ...] | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> EventBatch:
        """The events after ``after``, filtered (see :meth:`EventFeed.batch`)."""
        log = self._log
        with log.lock:
            recent = log.recent
            if (
                recent is not None
                and after == recent.sequence - 1 == log.next_seq - 2
                and (through is None or through >= recent.sequence)
                and since is None
                and until is None
                and not self._rows.upcasting
            ):
                # The event a single append just stored, and nothing after it: fed as it
                # is, without bringing the read side up to date for one event.
                wanted = (event_types is None or recent.event_type in event_types) and (
                    limit is None or limit > 0
                )
                return EventList(self, [recent] if wanted else [])
            index = self._sealer.reader.index
            lo, hi, found = self._range(after, through, event_types)
            if found is None:
                positions = np.arange(lo, hi, dtype=np.int64)
            else:
                positions = np.sort(np.concatenate(found)) if found else _NO_POSITIONS
            if since is not None or until is not None:
                ts = index.ts.view[positions]
                keep = np.ones(len(positions), np.bool_)
                if since is not None:
                    keep &= ts >= since
                if until is not None:
                    keep &= ts < until
                positions = positions[keep]
            if limit is not None:
                positions = positions[:limit]
            sequences = index.seq.view[positions]
        return EventBatch(self, positions, sequences)

    def count(
        self, after: int, through: int | None = None, event_types: tuple[str, ...] | None = None
    ) -> int:
        """How many events ``batch`` would find (without time filters)."""
        with self._log.lock:
            lo, hi, found = self._range(after, through, event_types)
            return hi - lo if found is None else sum(len(f) for f in found)

    def _range(
        self, after: int, through: int | None, event_types: tuple[str, ...] | None
    ) -> tuple[int, int, list[np.ndarray] | None]:
        """Positions ``[lo, hi)`` of sequences in ``(after, through]``, and within them each
        asked type's positions (None: no type filter). Under the lock."""
        reader = self._sealer.reader
        reader.sync(self._log.tail)
        index = reader.index
        lo = index.after_cut(after)
        hi = max(lo, index.n if through is None else index.after_cut(through))
        if event_types is None:
            return lo, hi, None
        found = []
        for name in event_types:
            no = reader.type_number(name)
            if no >= 0:
                posting = index.types.positions(no)
                a, b = np.searchsorted(posting, (lo, hi))
                found.append(posting[a:b])
        return lo, hi, found

    # -- the rows of the batches it makes (a RowSource, through the read side) ----------

    def positions(self, query: Query) -> np.ndarray:
        return self._rows.positions(query)

    def rows(self, positions: np.ndarray) -> pa.Table:
        return self._rows.rows(positions)

    def column(self, positions: np.ndarray, name: str) -> pa.ChunkedArray:
        return self._rows.column(positions, name)

    def payload_list(self, positions: np.ndarray) -> list[dict[str, Any]]:
        return self._rows.payload_list(positions)

    def codes(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._rows.codes(positions)

    def code_names(self, kind: str, codes: np.ndarray) -> list[str]:
        return self._rows.code_names(kind, codes)

    def positions_of(self, sequences: np.ndarray) -> np.ndarray:
        return self._rows.positions_of(sequences)

    # -- following ----------------------------------------------------------------------

    def follow(self, listener: Listener) -> None:
        self._log.listeners.append(listener)
        if self._follower is not None:
            self._follower.watch()  # polls while anyone listens

    def unfollow(self, listener: Listener) -> None:
        if listener in self._log.listeners:
            self._log.listeners.remove(listener)

    def flush(self) -> None:
        self._log.flush()

    def load_states(self, kind: str) -> tuple[dict[str, bytes], list[str]]:
        return self._storage.load_states(kind)

    def write_state(self, kind: str, name: str, body: bytes | None) -> None:
        self._storage.write_state(kind, name, body)

    def add_replay(self, job: Any) -> None:
        with self._log.lock:
            self._replays.append(job)

    def remove_replay(self, job: Any) -> None:
        with self._log.lock:
            if job in self._replays:
                self._replays.remove(job)

    def replay_jobs(self) -> list[Any]:
        with self._log.lock:
            return list(self._replays)
