"""Replays: rebuild a projection from history, with progress to watch and a way to stop.

``store.replay(projection, ...)`` resets the projection and feeds it the stored events
in sequence order, in batches, on a background thread (or on the caller's with
``background=False``), and returns a :class:`ReplayJob`. The events are the ones stored
when the replay starts; payloads are upcast as every read upcasts them.

A replay that is cancelled (``cancel()``: it stops at the next batch boundary) or fails
(the projection raised) leaves the projection exactly as it was before the replay: its
state is taken before the replay (``dump_state`` for durable projections, a deep copy of
its attributes otherwise) and put back. A projection that is also live in
``store.projections`` is not fed live events while a replay owns it; after a replay that
finished it goes on live from the replay's last event (catching up on what was appended
meanwhile), after one that was cancelled or failed from where it was before.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from allsource_lab._ingest import inputs
from allsource_lab.errors import InvalidArgument
from allsource_lab.projections.base import Projection
from allsource_lab.projections.runner import restore_projection, snapshot_projection

if TYPE_CHECKING:
    from allsource_lab._feed import EventFeed
    from allsource_lab.projections.runner import Projections

__all__ = ["ReplayJob", "ReplayProgress", "start_replay"]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far a replay is: events processed of ``total``, rate and time left."""

    processed: int
    total: int
    percent: float
    events_per_sec: float
    eta_s: float | None

    def __str__(self) -> str:
        eta = "" if self.eta_s is None else f", {self.eta_s:.1f} s left"
        return (
            f"{self.processed:,}/{self.total:,} events ({self.percent:.1f}%), "
            f"{self.events_per_sec:,.0f} events/s{eta}"
        )


class ReplayJob:
    """One replay: ``status`` (pending, running, done, cancelled, failed), ``progress``,
    ``cancel()``, ``wait(timeout)``, ``result`` (the projection, once done) and ``error``.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append_batch([{"event_type": "a", "entity_id": f"e{i}", "payload": {}}
    ...                         for i in range(5)])
    >>> job = store.replay(asl.EventCounter(), background=False)
    >>> job.status, job.progress.processed, job.result.state("total")
    ('done', 5, 5)
    """

    def __init__(self, projection: Projection, total: int) -> None:
        self.id = next(_ids)
        self.projection = projection
        self.status = "pending"
        self.error: BaseException | None = None
        self._total = total
        self._processed = 0
        self._started: float | None = None
        self._ended: float | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def progress(self) -> ReplayProgress:
        processed, total = self._processed, self._total
        if self._started is None:
            return ReplayProgress(0, total, 0.0, 0.0, None)
        elapsed = (self._ended or time.perf_counter()) - self._started
        rate = processed / elapsed if elapsed > 0 else 0.0
        percent = 100.0 if total == 0 else 100.0 * processed / total
        left = total - processed
        eta = 0.0 if left <= 0 else (left / rate if rate > 0 else None)
        return ReplayProgress(processed, total, percent, rate, eta)

    @property
    def result(self) -> Projection | None:
        """The rebuilt projection once ``done``; None before or if it did not finish."""
        return self.projection if self.status == "done" else None

    def cancel(self) -> None:
        """Ask the replay to stop at the next batch boundary (then the projection is
        rolled back to its state before the replay). No effect once it has ended."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replay ends (or ``timeout`` seconds); True if it has ended."""
        return self._done.wait(timeout)

    def __repr__(self) -> str:
        error = "" if self.error is None else f", error={self.error!r}"
        return (
            f"ReplayJob({self.id}, {self.projection.name!r}, {self.status}, {self.progress}{error})"
        )

    def _run(self, feed: EventFeed, projections: Projections, plan: _Plan) -> None:
        projection = self.projection
        self._started = time.perf_counter()
        try:
            before = snapshot_projection(projection)
        except BaseException as exc:  # dump_state failed: nothing was changed
            self.error, self.status, self._ended = exc, "failed", time.perf_counter()
            self._done.set()
            return
        entry = projections.detach(projection)
        position = plan.after
        self.status = "running"
        try:
            projection.reset()
            while not self._cancel.is_set():
                batch = feed.batch(
                    position,
                    plan.batch_size,
                    through=plan.through,
                    event_types=plan.event_types,
                    since=plan.since,
                    until=plan.until,
                )
                if not len(batch):
                    break
                projection.apply_batch(batch)
                position = batch.last_sequence
                self._processed += len(batch)
            if self._cancel.is_set():
                self.status = "cancelled"
        except BaseException as exc:
            self.error = exc
            self.status = "failed"
        self._ended = time.perf_counter()
        if self.status in ("cancelled", "failed"):
            restore_projection(projection, before)
            if entry is not None:
                projections.attach(entry, entry.position)
        else:
            self.status = "done"
            if entry is not None:
                projections.attach(entry, plan.through)
        self._done.set()


@dataclass(frozen=True, slots=True)
class _Plan:
    after: int
    through: int
    event_types: tuple[str, ...] | None
    since: int | None
    until: int | None
    batch_size: int


def start_replay(
    feed: EventFeed,
    projections: Projections,
    projection: Projection,
    since: Any = None,
    until: Any = None,
    event_types: Any = None,
    batch_size: int = 10_000,
    background: bool = True,
) -> ReplayJob:
    """Start replaying the store's events into ``projection``; returns the job.

    ``feed`` is the store's (``store.feed``) and ``projections`` its live projections,
    which do not feed ``projection`` while the replay owns it.

    ``since``/``until`` bound the events replayed: an int is a sequence (``since``
    inclusive, ``until`` exclusive), anything else a time (aware datetime, ISO-8601 text
    or pandas Timestamp) compared with event time (``since`` inclusive, ``until``
    exclusive), as ``store.events`` does. ``event_types`` (a str or a list) narrows the
    projection's own ``event_types``. ``background=False`` runs the replay before
    returning.

    Raises:
        TypeError: ``projection`` is not a Projection.
        InvalidArgument: a bad bound, ``batch_size`` or ``event_types``.
    """
    if not isinstance(projection, Projection):
        raise TypeError(f"replay() takes a Projection, not {type(projection).__name__}")
    if type(batch_size) is not int or batch_size < 1:
        raise InvalidArgument(f"batch_size must be an int >= 1, not {batch_size!r}")
    for job in feed.replay_jobs():
        if job.projection is projection and job.status in ("pending", "running"):
            raise InvalidArgument(
                f"replay {job.id} of {projection.name!r} is still {job.status}; wait() for "
                "it or cancel() it first"
            )
    head = feed.head()
    after, through = 0, head
    since_us = until_us = None
    if since is not None:
        if _is_sequence(since, "since"):
            after = since - 1
        else:
            since_us = inputs.parse_time(since, "since")
    if until is not None:
        if _is_sequence(until, "until"):
            through = min(head, until - 1)
        else:
            until_us = inputs.parse_time(until, "until")
    types = _types(event_types, projection.event_types)
    plan = _Plan(after, through, types, since_us, until_us, batch_size)
    total = (
        len(feed.batch(after, through=through, event_types=types, since=since_us, until=until_us))
        if since_us is not None or until_us is not None
        else feed.count(after, through, types)
    )
    job = ReplayJob(projection, total)
    feed.add_replay(job)
    if background:
        job._thread = threading.Thread(
            target=job._run,
            args=(feed, projections, plan),
            name=f"allsource-replay-{job.id}",
            daemon=True,
        )
        job._thread.start()
    else:
        job._run(feed, projections, plan)
    return job


def _is_sequence(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        raise InvalidArgument(f"{name} must be a sequence (int >= 1) or a time, not {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise InvalidArgument(f"{name} as a sequence must be >= 1, not {value}")
        return True
    return False


def _types(asked: Any, own: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if asked is None:
        return own
    if isinstance(asked, str):
        asked = [asked]
    try:
        names: tuple[str, ...] = tuple(asked)
    except TypeError:
        raise InvalidArgument(
            f"event_types must be a str or a list of str, not {asked!r}"
        ) from None
    if not all(isinstance(t, str) and t for t in names):
        raise InvalidArgument(f"event_types must be non-empty strings, not {names!r}")
    if own is None:
        return names
    return tuple(t for t in names if t in own)
