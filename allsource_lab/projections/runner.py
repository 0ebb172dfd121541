"""``store.projections``: live projections, their catch-up, failures and durable positions.

Each added projection has a *position*: the last sequence it has applied. Adding one
catches it up from its start, then every ``append``/``append_batch`` feeds it the new
events on the appending thread, after the write and outside the store's locks (so a
projection may read the store). Projections are fed in sequence order, in batches
(``apply_batch``), one projection at a time under the runner's lock.

A projection that raises is stopped, never the append: its state is put back to what it
was after the last event it applied without error (from its last saved state, or by
folding again from its start), the failing event's sequence and the error are kept, and
``resume(name)`` retries from that event.

Durable projections (those defining ``dump_state``) are saved with their position in one
record, atomically, under ``<store>/projections/``, whenever the store checkpoints (every
``checkpoint_every_events`` and on close) or on ``projections.save()``. The events up to a
saved position are always durable first (the WAL is flushed before the record is written),
so after a reopen or a crash, adding a projection of the same name restores that state and
continues after that position: no event is applied twice to saved state, none is missed.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from allsource_lab.errors import InvalidArgument, NotFound
from allsource_lab.projections.base import Projection

if TYPE_CHECKING:
    from allsource_lab._feed import EventFeed

__all__ = ["ProjectionInfo", "Projections"]

KIND = "projections"
BATCH = 100_000  # events per apply_batch during catch-up


@dataclass(frozen=True, slots=True)
class ProjectionInfo:
    """Where a projection stands. ``status``: running, stopped (after an error) or
    replaying (a replay job owns it)."""

    name: str
    status: str
    position: int
    lag: int
    durable: bool
    failed_sequence: int | None
    error: str | None

    def __str__(self) -> str:
        line = f"{self.name}: {self.status} at sequence {self.position} ({self.lag} behind)"
        if self.error is not None:
            line += f"; failed at sequence {self.failed_sequence}: {self.error}"
        return line


@dataclass(slots=True)
class _Entry:
    projection: Projection
    origin: int  # the position it folds from after reset()
    position: int
    status: str = "running"
    error: BaseException | None = None
    failed_sequence: int | None = None
    saved: tuple[int, bytes] | None = None  # last durable record (position, state JSON)


class Projections:
    """The store's live projections, by name (``store.projections``).

    ``add(p, start=...)`` catches ``p`` up and keeps it live; ``remove``, ``resume``,
    ``info``, ``save``; ``store.projections["name"]`` is the projection itself.
    """

    def __init__(self, feed: EventFeed) -> None:
        self._feed = feed
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        stored, problems = feed.load_states(KIND)
        feed.problems.extend(problems)
        self._stored = stored

    # -- the collection ------------------------------------------------------------------

    def __getitem__(self, name: str) -> Projection:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no projection named {name!r}; add it with store.projections.add")
        return entry.projection

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Projection]:
        return iter([e.projection for e in self._entries.values()])

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        if not self._entries:
            return "Projections(none)"
        return "Projections:\n" + "\n".join(f"  {i}" for i in self.info())

    def add(
        self, projection: Projection, start: str | int = "beginning", resume: bool = True
    ) -> Any:
        """Catch ``projection`` up and keep it live; returns it.

        ``start``: ``"beginning"`` (every stored event), ``"now"`` (only events appended
        from here on) or a sequence (the first one to apply). When the store holds a saved
        state under ``projection.name`` (a durable projection added before a reopen),
        ``resume=True`` restores it and continues after its position, ignoring ``start``;
        ``resume=False`` discards it and starts afresh.

        Raises:
            InvalidArgument: a projection of that name is already added, or a bad ``start``.
            TypeError: ``projection`` is not a :class:`Projection`.
        """
        if not isinstance(projection, Projection):
            raise TypeError(
                "add() takes a Projection (an asl.Projection subclass), not "
                f"{type(projection).__name__}"
            )
        feed = self._feed
        with self._lock:
            name = projection.name
            if name in self._entries:
                raise InvalidArgument(
                    f"a projection named {name!r} is already added; remove it first or "
                    "give the new one another name"
                )
            origin = _start_position(start, feed.head())
            entry = _Entry(projection, origin, origin)
            record = self._stored.get(name) if resume and projection.durable else None
            restored = record is not None and self._restore(entry, record)
            if not restored:
                projection.reset()
            self._entries[name] = entry
            if len(self._entries) == 1:
                feed.follow(self._on_write)
            self._catch_up(entry, feed.head())
        return projection

    def remove(self, name: str, forget: bool = True) -> Projection:
        """Stop feeding a projection and return it; ``forget`` also drops its saved state.

        Raises:
            NotFound: no projection of that name.
        """
        with self._lock:
            entry = self._entries.pop(name, None)
            if entry is None:
                raise NotFound(f"no projection named {name!r}")
            if not self._entries:
                self._feed.unfollow(self._on_write)
            if forget and name in self._stored:
                del self._stored[name]
                if not self._feed.read_only:
                    self._feed.write_state(KIND, name, None)
            return entry.projection

    def resume(self, name: str) -> ProjectionInfo:
        """Retry a stopped projection from the event that failed; returns its info."""
        with self._lock:
            entry = self._entry(name)
            if entry.status == "stopped":
                entry.status = "running"
                entry.error = None
                entry.failed_sequence = None
                self._catch_up(entry, self._feed.head())
            return self._info(entry)

    def info(self, name: str | None = None) -> Any:
        """A :class:`ProjectionInfo` for ``name``, or a list of them for all."""
        with self._lock:
            if name is not None:
                return self._info(self._entry(name))
            return [self._info(e) for e in self._entries.values()]

    def save(self) -> int:
        """Save every durable projection's state and position now; returns how many.

        The store does this on every checkpoint and on close.
        """
        feed = self._feed
        if feed.read_only or not self._entries:
            return 0
        feed.flush()  # every position saved below must be durable in the log first
        count = 0
        with self._lock:
            for name, entry in self._entries.items():
                if not entry.projection.durable or entry.status == "replaying":
                    continue
                if entry.saved is not None and entry.saved[0] == entry.position:
                    continue
                state = orjson.dumps(entry.projection.dump_state())
                body = (
                    orjson.dumps({"position": entry.position, "origin": entry.origin})
                    + b"\n"
                    + state
                )
                feed.write_state(KIND, name, body)
                entry.saved = (entry.position, state)
                self._stored[name] = body
                count += 1
        return count

    # -- feeding -------------------------------------------------------------------------

    def _on_write(self, last: int) -> None:
        with self._lock:
            for entry in list(self._entries.values()):
                if entry.status == "running" and entry.position < last:
                    self._catch_up(entry, last)

    def _catch_up(self, entry: _Entry, through: int) -> None:
        """Feed ``entry`` every event after its position up to ``through``."""
        feed = self._feed
        p = entry.projection
        while entry.status == "running" and entry.position < through:
            batch = feed.batch(entry.position, BATCH, through=through, event_types=p.event_types)
            if not len(batch):
                entry.position = through
                return
            try:
                p.apply_batch(batch)
            except Exception as exc:  # a projection's bug stops it, never the store
                self._stop(entry, batch.first_sequence, batch.last_sequence, exc)
                return
            entry.position = batch.last_sequence if len(batch) == BATCH else through

    def _stop(self, entry: _Entry, first: int, last: int, error: Exception) -> None:
        """Put ``entry`` back to just before the event that fails, and stop it there.

        The failing batch may have been half applied: the state goes back to the last
        good point (saved state, or a reset and a fold from the origin), is folded again
        up to the batch, then the batch one event at a time finds the failing event.
        """
        feed = self._feed
        p = entry.projection
        if entry.saved is not None and entry.saved[0] <= first - 1:
            p.load_state(orjson.loads(entry.saved[1]))
            entry.position = entry.saved[0]
        else:
            p.reset()
            entry.position = entry.origin
        entry.error, entry.failed_sequence = error, first
        try:
            self._catch_up(entry, first - 1)
            if entry.status != "running":
                return
            entry.position = max(entry.position, first - 1)
            failing = feed.batch(first - 1, through=last, event_types=p.event_types)
            for one in failing.split():
                try:
                    p.apply_batch(one)
                except Exception as exc:
                    entry.error, entry.failed_sequence = exc, one.first_sequence
                    break
                entry.position = one.last_sequence
        finally:
            entry.status = "stopped"

    # -- replays (allsource_lab.replay) ----------------------------------------------------

    def detach(self, projection: Projection) -> _Entry | None:
        """Stop live feeding of ``projection`` while a replay owns it."""
        with self._lock:
            entry = self._entries.get(projection.name)
            if entry is None or entry.projection is not projection:
                return None
            entry.status = "replaying"
            return entry

    def attach(self, entry: _Entry, position: int) -> None:
        """Give ``entry`` back to live feeding at ``position``, and catch it up."""
        with self._lock:
            entry.status = "running"
            entry.position = position
            entry.saved = None
            self._catch_up(entry, self._feed.head())

    # -- helpers -------------------------------------------------------------------------

    def _restore(self, entry: _Entry, record: bytes) -> bool:
        head, _, state = record.partition(b"\n")
        try:
            meta = orjson.loads(head)
            position = int(meta["position"])
            entry.projection.load_state(orjson.loads(state))
        except Exception as exc:  # damaged or from another version: fold afresh
            self._feed.problems.append(
                f"projection {entry.projection.name!r}: its saved state cannot be used "
                f"({exc}); it is rebuilt from its start"
            )
            return False
        if position > self._feed.head():
            self._feed.problems.append(
                f"projection {entry.projection.name!r}: saved at sequence {position}, past "
                "the last stored event; it is rebuilt from its start"
            )
            return False
        entry.origin = int(meta.get("origin", 0))
        entry.position = position
        entry.saved = (position, state)
        return True

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no projection named {name!r}")
        return entry

    def _info(self, entry: _Entry) -> ProjectionInfo:
        lag = self._feed.count(entry.position, None, entry.projection.event_types)
        return ProjectionInfo(
            entry.projection.name,
            entry.status,
            entry.position,
            lag,
            entry.projection.durable,
            entry.failed_sequence,
            None if entry.error is None else f"{type(entry.error).__name__}: {entry.error}",
        )


def _start_position(start: str | int, head: int) -> int:
    """The position (last sequence considered applied) for a ``start`` argument."""
    if start == "beginning":
        return 0
    if start in ("now", "end"):
        return head
    if isinstance(start, int) and not isinstance(start, bool) and start >= 1:
        return start - 1
    raise InvalidArgument(
        f"start must be 'beginning', 'now' or a sequence (an int >= 1), not {start!r}"
    )


def snapshot_projection(projection: Projection) -> Any:
    """What :func:`restore_projection` needs to put ``projection`` back as it is now."""
    if projection.durable:
        return ("json", orjson.dumps(projection.dump_state()))
    # A deep copy of each attribute; one that cannot be copied (a lock, a connection) is
    # infrastructure rather than state, and is kept as it is.
    saved = {}
    for key, value in vars(projection).items():
        try:
            saved[key] = copy.deepcopy(value)
        except Exception:
            saved[key] = value
    return ("copy", saved)


def restore_projection(projection: Projection, saved: Any) -> None:
    kind, data = saved
    if kind == "json":
        projection.load_state(orjson.loads(data))
    else:
        vars(projection).clear()
        vars(projection).update(data)
