"""``EventStore``: the store's one public face, composed of parts with one job each.

The parts live in :mod:`allsource_lab._store` (see docs/architecture.md): the entity
table, the log (write path and durability), batches, event ids, the sealer (checkpoints,
compaction and the read side), rows, states, SQL and the feed that followers use. This
module builds them from what storage loaded, wires them together and delegates to them;
every public method and attribute of the store is defined here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from allsource_lab._ingest import inputs
from allsource_lab._query.analytics import Analytics
from allsource_lab._query.state import Snapshots
from allsource_lab._storage import FolderStorage, MemoryStorage, Storage
from allsource_lab._storage.tail import Tail
from allsource_lab._store.batches import BatchAppender, BatchResult
from allsource_lab._store.entities import EntityTable
from allsource_lab._store.event_ids import EventIds
from allsource_lab._store.feed import Feed
from allsource_lab._store.following import Follower
from allsource_lab._store.log import EventLog
from allsource_lab._store.opening import load_history, load_snapshots, open_registry
from allsource_lab._store.rows import Rows
from allsource_lab._store.sealing import Sealer
from allsource_lab._store.sql import SqlConnections
from allsource_lab._store.states import States
from allsource_lab.errors import InvalidArgument, StorageError
from allsource_lab.eventframe import EventFrame, Query
from allsource_lab.events import Event
from allsource_lab.integrity import IntegrityReport, check_tables
from allsource_lab.pipelines import Pipelines
from allsource_lab.projections.base import Projection
from allsource_lab.projections.runner import Projections
from allsource_lab.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from allsource_lab.replay import ReplayJob
    from allsource_lab.subscriptions import Subscription

__all__ = ["BatchResult", "EventStore", "open"]

_open_stores: weakref.WeakSet[EventStore] = weakref.WeakSet()


@atexit.register
def _flush_open_stores() -> None:
    # A kernel that exits without close() still gets its acknowledged events onto disk.
    for store in list(_open_stores):
        with contextlib.suppress(Exception):
            store.flush()
        with contextlib.suppress(Exception):
            store._sql.close()  # DuckDB complains at exit about connections left open


class EventStore:
    """An append-only event store in a folder (durable) or in memory (scratch).

    Open one with :func:`allsource_lab.open`. Besides the methods below, a store has
    ``schemas`` (the schema registry), ``projections``, ``pipelines``, ``analytics``, and
    ``feed``: what projections, replays, subscriptions and widgets follow — the head
    sequence, event batches after a position, a hook after every append (see
    ``allsource_lab._feed.EventFeed``).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, settings: Settings, *, read_only: bool = False
    ) -> None:
        self.settings = settings
        self.read_only = read_only
        self._storage: Storage = (
            FolderStorage(Path(path), settings, read_only=read_only)
            if path is not None
            else MemoryStorage(settings)
        )
        self.path = self._storage.path
        try:
            self._compose(settings, read_only)
        except BaseException:
            self._storage.close()
            raise
        self.projections = self.feed.projections = Projections(self.feed)
        self.pipelines = Pipelines(self)
        self.analytics = Analytics(self)
        self._log.start()
        _open_stores.add(self)

    def _compose(self, settings: Settings, read_only: bool) -> None:
        """Build the parts from what storage loads, and wire them together."""
        storage = self._storage
        loaded = storage.load()
        self.store_id = loaded.manifest.store_id
        self.recovery_problems: list[str] = loaded.problems
        entities = EntityTable(loaded.manifest.partitions, settings)
        tail = Tail(loaded.tail)
        history = load_history(loaded, entities, tail, storage)
        snapshots = Snapshots()
        self.recovery_problems.extend(load_snapshots(storage, entities, snapshots))
        log = EventLog(
            storage,
            settings,
            entities,
            tail,
            history.next_seq,
            history.last_rec,
            read_only=read_only,
        )
        sealer = Sealer(
            log,
            storage,
            settings,
            entities,
            snapshots,
            history.reader,
            history.segments,
            history.segment_last,
        )

        def event_at(seq: int) -> Event:
            return rows.event_at(seq)

        event_ids = EventIds(sealer.tables_after, lambda: log.next_seq - 1, event_at)
        rows = Rows(log, sealer, entities, event_ids)
        self._entities = entities
        self._log = log
        self._sealer = sealer
        self._rows = rows
        self._states = States(log, sealer, entities, rows, snapshots)
        self._batches = BatchAppender(log, entities, event_ids)
        self._sql = SqlConnections(log, sealer)
        # A read-only folder store follows its writer (see _store/following.py).
        self._follower = (
            Follower(
                log, sealer, entities, storage, self.recovery_problems, settings.follow_interval_s
            )
            if read_only and isinstance(storage, FolderStorage)
            else None
        )
        self.feed = Feed(log, sealer, rows, storage, self.recovery_problems, self._follower)
        self.schemas, problems = open_registry(storage, settings, self._write_registry)
        self.recovery_problems.extend(problems)
        self.schemas.on_change = self._schemas_changed
        if self._follower is not None:
            self._follower.follow_registry(self.schemas, self._schemas_changed)
        log.schemas = rows.schemas = self.schemas
        log.schemas_active = bool(self.schemas.subjects())
        log.find_retry = event_ids.find_retry
        log.on_full = self._tail_full
        # The hot path, bound once: store.append is the log's own method, with no call
        # in between (a delegating method measured ~0.08 us more per append, ~4% of an
        # append in a tight loop). EventStore.append below documents it and delegates.
        self.append: Callable[..., Event] = log.append  # type: ignore[method-assign]

    def _write_registry(self, bodies: list[bytes]) -> None:
        log = self._log
        if log.refuse:
            log.refuse_write()
        with log.io_lock:
            try:
                self._storage.write_registry(bodies)
            except OSError as exc:
                raise StorageError(
                    f"the schema registry could not be written ({exc}); nothing changed"
                ) from exc

    def _schemas_changed(self) -> None:
        """Schemas or upcasters changed: what is validated and folded changes with them."""
        with self._log.lock:
            self._log.schemas_active = bool(self.schemas.subjects())
            self._rows.upcasting = bool(self.schemas.upcasters)
            self._states.hot.items.clear()  # folded with the old upcasters

    @property
    def closed(self) -> bool:
        """Whether the store is closed."""
        return self._log.closed

    # -- writing -------------------------------------------------------------------------

    def append(
        self,
        event_type: str,
        entity_id: str,
        payload: Any,
        metadata: Any = None,
        timestamp: Any = None,
        event_id: Any = None,
        expected_version: int | None = None,
    ) -> Event:
        """Append one event and return it as stored.

        ``expected_version``: ``None`` accepts any version, ``0`` requires that the entity
        does not exist yet, ``N`` that it is at version N. An ``event_id`` that is already
        stored with the same content returns the stored event (a safe retry).

        Raises:
            InvalidEvent: bad input (names the field); nothing was written.
            ConcurrencyError: ``expected_version`` did not match.
            StorageError: the store is closed, read-only, or its disk failed.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> ev = store.append("order.placed", "order-17", {"amount": 42.5})
        >>> (ev.sequence, ev.version, ev.payload)
        (1, 1, {'amount': 42.5})
        """
        return self._log.append(
            event_type, entity_id, payload, metadata, timestamp, event_id, expected_version
        )

    def append_batch(
        self,
        data: Any,
        expected_versions: Mapping[str, int] | None = None,
        on_invalid: str = "raise",
        idempotency: str | None = None,
    ) -> BatchResult:
        """Append many events atomically: all of them are written, or none.

        ``data`` is a pandas DataFrame, a pyarrow Table/RecordBatch or an iterable of dicts
        with columns ``event_type``, ``entity_id``, ``payload`` (dict or JSON text) and
        optionally ``timestamp``, ``metadata``, ``event_id``. ``expected_versions`` maps
        entity ids to the version each must be at before the batch.

        Payloads of event types with a registered schema are validated first;
        ``on_invalid`` says what a failure does: ``"raise"`` (default) a SchemaViolation
        naming the row, and nothing is written; ``"skip"`` writes the valid rows;
        ``"return"`` writes them too and returns the rejected ones with reasons
        (``BatchResult.rejected_rows``).

        A row whose ``event_id`` is already stored with the same content is a retry: it is
        not written again and is counted in ``BatchResult.duplicates``. By default rows
        without an ``event_id`` get new ids, so the same rows sent twice are stored twice.
        ``idempotency="content"`` instead derives each such row's id from its content
        (event type, entity, payload and metadata as JSON text, and event time), so
        running the same batch again writes nothing new. Identical rows in one batch
        stay distinct events (the k-th copy gets an id of its own): a batch holding a row
        twice stores it twice, once, however often it is re-run. The derived ids are
        UUID version 8, not 7: the same row must give the same id at any time, so their
        order is not time order (sort by ``sequence`` or ``timestamp``).

        Raises:
            InvalidEvent: naming the first bad row and field; nothing was written. Also
                when a row's ``event_id`` is stored with other content.
            InvalidArgument: ``idempotency`` is neither None nor ``"content"``.
            ConcurrencyError: an expected version did not match; nothing was written.
            SchemaViolation: a payload fails its schema (``on_invalid="raise"``).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> res = store.append_batch([
        ...     {"event_type": "a", "entity_id": "x", "payload": {"n": 1}},
        ...     {"event_type": "b", "entity_id": "x", "payload": '{"n": 2}'},
        ... ])
        >>> (res.first_sequence, res.last_sequence, res.count)
        (1, 2, 2)
        >>> rows = [{"event_type": "c", "entity_id": "y", "payload": {"n": 3}}]
        >>> first = store.append_batch(rows, idempotency="content")
        >>> again = store.append_batch(rows, idempotency="content")
        >>> (first.count, again.count, again.duplicates)
        (1, 0, 1)
        """
        return self._batches.append_batch(data, expected_versions, on_invalid, idempotency)

    def flush(self) -> None:
        """Write and fsync everything appended so far.

        >>> import allsource_lab as asl
        >>> asl.open().flush()
        """
        self._log.flush()

    def refresh(self) -> int:
        """Catch up with the folder's writer now; returns how many events came in.

        A store opened with ``read_only=True`` follows the process that writes the folder:
        every read first checks (at most once a millisecond, with three ``stat`` calls)
        whether the writer wrote since, and reads only what is new — WAL records, new
        segments, or the merged segment of a compaction. ``refresh()`` makes that check
        now, whatever the time since the last; subscriptions, live projections and
        widgets are told of what came in. A writable or in-memory store has no writer to
        follow: 0.

        Raises:
            CorruptionError: the writer's files are damaged (nothing here changes).
        """
        follower = self._follower
        if follower is None or self._log.closed:
            return 0
        return follower.refresh()

    def checkpoint(self) -> dict[str, Any] | None:
        """Seal the tail into a Parquet segment; returns what was sealed (or None if empty).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {})
        >>> store.checkpoint()["events"]
        1
        """
        sealed = self._sealer.seal()
        if self.projections:
            self.projections.save()
        return sealed

    def _tail_full(self) -> None:
        """An append filled the tail: seal it in the background (the automatic checkpoint)."""
        self._sealer.request()
        if self.projections:
            self.projections.save()

    def compact(self) -> dict[str, Any] | None:
        """Merge every sealed segment into one; returns what was merged (None if fewer
        than two segments). Reads answer the same before and after.

        Each checkpoint seals one segment; many small ones cost reads (an entity's events
        spread over all of them) and files. Compaction rewrites them as one segment,
        commits it in the manifest, then removes the old files. Appends and reads wait
        while it runs (~1-2 s per million events).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> for i in range(3):
        ...     _ = store.append("a", "x", {"i": i}); _ = store.checkpoint()
        >>> store.compact()["segments"], len(store.events(entity_id="x"))
        (3, 3)
        """
        return self._sealer.compact()

    def close(self) -> None:
        """Checkpoint, stop the flusher, release the lock. Safe to call twice."""
        log = self._log
        if log.closed:
            return
        self._stop_followers()
        if self._follower is not None:
            self._follower.stop()
        log.stop_flusher()
        try:
            if not self.read_only and log.failed is None and self._storage.durable:
                self.checkpoint()
                log.write_wal(sync=True)
                self._states.save()
        finally:
            with contextlib.suppress(StorageError):  # already raised, or writes refused
                self._sealer.wait()  # a seal still running writes nothing after this
            with log.lock:
                log.closed = True
                log.refuse = True
                self._sql.close()
            self._storage.close()
            _open_stores.discard(self)
            pa.default_memory_pool().release_unused()  # hand the store's buffers back

    # -- projections, replays, subscriptions --------------------------------------------

    def _stop_followers(self) -> None:
        """Before closing: cancel running replays, close subscriptions."""
        for job in self.replays():
            job.cancel()
        for job in self.replays():
            job.wait()
        if self.feed.subscriptions:
            from allsource_lab.subscriptions import close_all

            close_all(self.feed)

    def replay(
        self,
        projection: Projection,
        since: Any = None,
        until: Any = None,
        event_types: Any = None,
        batch_size: int = 10_000,
        background: bool = True,
    ) -> ReplayJob:
        """Rebuild ``projection`` from history; returns a :class:`ReplayJob` to watch.

        See :func:`allsource_lab.replay.start_replay` for the arguments and what a
        cancelled or failed replay leaves behind.
        """
        from allsource_lab.replay import start_replay

        return start_replay(
            self.feed,
            self.projections,
            projection,
            since,
            until,
            event_types,
            batch_size,
            background,
        )

    def replays(self) -> list[ReplayJob]:
        """Replay jobs started on this store, oldest first (finished ones until removed)."""
        return self.feed.replay_jobs()

    def remove_replay(self, job: ReplayJob) -> None:
        """Forget a finished replay job.

        Raises:
            ValueError: the job is still pending or running (cancel it first).
        """
        if job.status in ("pending", "running"):
            raise InvalidArgument(f"replay {job.id} is {job.status}; cancel() and wait() it first")
        self.feed.remove_replay(job)

    def subscribe(
        self,
        name: str,
        handler: Callable[[Event], Any],
        start: str | int = "beginning",
        event_types: Any = None,
        batch_size: int = 1000,
        delivery: str = "background",
        max_retries: int = 3,
        backoff: float = 0.05,
    ) -> Subscription:
        """Deliver events to ``handler`` in sequence order, at least once, durably.

        See :class:`allsource_lab.subscriptions.Subscription`.
        """
        from allsource_lab.subscriptions import Subscription

        return Subscription.start(
            self.feed,
            name,
            handler,
            start=start,
            event_types=event_types,
            batch_size=batch_size,
            delivery=delivery,
            max_retries=max_retries,
            backoff=backoff,
        )

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Releasing the lock on garbage collection lets a notebook re-open a folder after
        # dropping its last reference without an explicit close().
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            with contextlib.suppress(Exception):
                self.close()

    # -- reading -------------------------------------------------------------------------

    def events(
        self,
        entity_id: str | None = None,
        event_type: str | None = None,
        since: Any = None,
        until: Any = None,
        as_of: Any = None,
        known_at: Any = None,
        after: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> EventFrame:
        """Events matching every given filter, in sequence order (lazy).

        ``since`` is inclusive and ``until`` exclusive (event time); ``as_of`` keeps events
        whose event time is <= it, ``known_at`` those recorded by it; ``after`` is a
        sequence cursor (e.g. a previous frame's ``next_cursor``).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1}); _ = store.append("b", "y", {"n": 2})
        >>> [e.entity_id for e in store.events(event_type="b")]
        ['y']
        """
        query = Query(
            entity_id=entity_id,
            event_type=event_type,
            since=None if since is None else inputs.parse_time(since, "since"),
            until=None if until is None else inputs.parse_time(until, "until"),
            as_of=None if as_of is None else inputs.parse_time(as_of, "as_of"),
            known_at=None if known_at is None else inputs.parse_time(known_at, "known_at"),
            after=after,
            limit=limit,
            reverse=reverse,
        )
        query.check()
        if self._follower is not None:
            self._follower.check()
        return EventFrame(self._rows, query)

    def get(self, event_id: Any) -> Event:
        """The event with this id.

        Raises:
            NotFound: no such event.
        """
        if self._follower is not None:
            self._follower.check()
        return self._rows.get(event_id)

    def state(self, entity_id: str, as_of: Any = None, known_at: Any = None) -> dict[str, Any]:
        """The entity's payloads folded in version order with JSON Merge Patch (RFC 7386).

        ``as_of`` folds only events whose event time is <= it, ``known_at`` only events
        recorded by then; both take an aware datetime, ISO-8601 text or a pandas
        Timestamp. The current state is kept decoded, so asking again costs a dict copy;
        a fold at a moment starts from the newest snapshot it may trust. The result is the
        caller's to change.

        Raises:
            NotFound: the entity has no event (at that moment).
            InvalidEvent: a naive or unparseable time.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("cart.opened", "cart-1", {"items": {"tea": 1}, "note": "hi"})
        >>> _ = store.append("cart.changed", "cart-1", {"items": {"jam": 2}, "note": None})
        >>> store.state("cart-1")
        {'items': {'tea': 1, 'jam': 2}}
        """
        if self._follower is not None:
            self._follower.check()
        return self._states.state(entity_id, as_of, known_at)

    def snapshot(self, entity_id: str) -> int:
        """Record the entity's current state durably; returns the version it is at.

        Later folds (``state(..., as_of=...)``, ``states``) start from the newest snapshot
        at or before the moment asked, so long histories need not be folded from
        version 1. Automatic snapshots are also taken every ``snapshot_every_versions``.

        Raises:
            NotFound: the entity has no event.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1})
        >>> store.snapshot("x")
        1
        """
        return self._states.snapshot(entity_id)

    def states(
        self, event_type: str | None = None, as_of: Any = None, known_at: Any = None
    ) -> pd.DataFrame:
        """Every entity's state at a moment, as a DataFrame, computed in bulk.

        One row per entity with a visible event (of ``event_type``, when given; the state
        folds all of the entity's visible events): ``entity_id``, ``version`` (the last
        visible one), ``timestamp`` (its event time) and ``state`` (a dict), sorted by
        entity id.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1}); _ = store.append("b", "y", {"n": 2})
        >>> store.states()[["entity_id", "version", "state"]].values.tolist()
        [['x', 1, {'n': 1}], ['y', 1, {'n': 2}]]
        """
        if self._follower is not None:
            self._follower.check()
        return self._states.states(event_type, as_of, known_at)

    # -- SQL -----------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> Any:
        """A DuckDB relation for ``query`` over the views ``events`` and ``log``.

        Both hold every event with the columns of docs/format.md: ``events`` in storage
        order (fastest to aggregate), ``log`` the same rows in sequence order
        (``select * from log limit 10`` is the head of the log).

        The view covers sealed segments and the unsealed tail, so an event appended a line
        earlier is visible. ``payload`` and ``metadata`` are DuckDB JSON
        (``payload->>'amount'``); ``params`` (a list for ``?``/``$1``, a dict for
        ``$name``) are bound by DuckDB, never formatted into the text. The connection
        belongs to the store (``store.sql_connection()``); to query the sealed Parquet
        files without the store, see ``segment_files()``.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("order.placed", "o-1", {"amount": 42.5})
        >>> store.sql("select payload->>'amount' from events where entity_id = $id",
        ...           {"id": "o-1"}).fetchall()
        [('42.5',)]
        """
        if self._follower is not None:
            self._follower.check()
        return self._sql.sql(query, params)

    def window(
        self,
        event_type: str | list[str] | None = None,
        every: Any = "1h",
        kind: str = "tumbling",
        hop: Any = None,
        gap: Any = None,
        by: str | list[str] | None = None,
        agg: Mapping[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        as_of: Any = None,
        known_at: Any = None,
        fill: bool = False,
    ) -> Any:
        """Window analytics over every event: a DataFrame with one row per window (and
        key), ``window_start``, ``window_end``, the ``by`` keys and the aggregates.

        ``kind``: ``"tumbling"`` (``every``), ``"hopping"`` (``every`` long, one every
        ``hop``) or ``"session"`` (a new window after a silence longer than ``gap``, per
        ``by`` key). ``agg`` maps fields to aggregates (default ``{"*": "count"}``);
        ``fill=True`` adds empty windows in range with zero counts. Computed by DuckDB
        over the ``events`` view; see :mod:`allsource_lab._query.windows` for the exact rules.

        Raises:
            ValueError: a bad kind, duration, key or aggregate, naming the accepted forms.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> for minute in (0, 1, 1, 5):
        ...     _ = store.append("click", "u1", {}, timestamp=f"2026-01-01T00:0{minute}:10Z")
        >>> frame = store.window("click", every="2m")
        >>> [(str(w.window_start), w.count) for w in frame.itertuples()]
        [('2026-01-01 00:00:00+00:00', 3), ('2026-01-01 00:04:00+00:00', 1)]
        """
        from allsource_lab._query.windows import window

        if self._follower is not None:
            self._follower.check()
        return window(
            self, event_type, every, kind, hop, gap, by, agg, since, until, as_of, known_at, fill
        )

    def sql_connection(self) -> Any:
        """This thread's DuckDB connection to the store, with ``events`` brought up to date.

        Each thread gets its own (DuckDB refuses a second query on a connection that is
        busy); ``events`` is a zero-copy view of the store's Arrow data in each.
        """
        if self._follower is not None:
            self._follower.check()
        return self._sql.connection()

    def segment_files(self) -> list[str]:
        """Paths of the sealed Parquet segments, for reading them with DuckDB or pyarrow.

        They hold every event sealed by a checkpoint (not the unsealed tail), with the
        same columns as ``events``; the list changes after a checkpoint. For example
        ``duckdb.sql(f"select count(*) from read_parquet({store.segment_files()})")``.
        An in-memory store has none.
        """
        if self._follower is not None:
            self._follower.check()
        with self._log.lock:
            return [str(p) for p in self._storage.segment_files()]

    def export_delta(
        self,
        uri: str | os.PathLike[str],
        storage_options: Mapping[str, str] | None = None,
        *,
        checkpoint: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Write the sealed history to a Delta Lake table, for Spark and other engines.

        ``uri`` is a folder or an object-store URI (``s3://``, ``gs://``, ``az://``, with
        delta-rs's ``storage_options``). Only sealed events are exported, never the
        unsealed tail; ``checkpoint=True`` seals it first. Incremental and exactly-once: a
        second call appends only what was sealed since, and a call cut short (even by
        ``kill -9``) leaves whole commits only, which the next call completes. Columns are
        those of ``events`` in plain types (``event_id`` as UUID text, ``payload`` and
        ``metadata`` as JSON text); ``allsource_lab.spark`` reads the table with the
        store's semantics. ``progress(done, total)`` hears of each commit. Returns
        ``exported``, ``through_sequence``, ``commits``, ``table_version``, ``seconds``.
        Needs the ``spark`` extra (``pip install 'allsource-lab[spark]'``).

        Raises:
            InvalidArgument: a bad URI or options, a table with another schema or another
                store's data; nothing was written.
            StorageError: the target cannot be reached or written (no credentials, the
                network, a full disk); committed ranges stay and the next call goes on.

        >>> import tempfile, allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     first = store.export_delta(folder + "/events.delta", checkpoint=True)
        ...     again = store.export_delta(folder + "/events.delta")
        >>> first["exported"], again["exported"], again["through_sequence"]
        (1, 0, 1)
        """
        from allsource_lab._export.delta import export_delta

        if checkpoint:
            self.checkpoint()
        with self._log.lock:
            through = self._sealer.sealed_through
        return export_delta(
            self.feed, self.store_id, through, uri, storage_options, progress=progress
        )

    # -- facts ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts and facts about the store.

        ``memory_bytes`` estimates what the store holds in memory: its Arrow data, the
        index, snapshots and unwritten WAL bytes (not Python's or DuckDB's own);
        ``mapped_bytes`` the sealed segments a folder store reads from memory-mapped files,
        whose pages the operating system reads in and drops as it needs.
        ``events`` is ``sealed_events`` (in committed segments) plus ``sealing_events`` (a
        full tail that an automatic checkpoint is sealing in the background) plus
        ``tail_events`` (the unsealed tail); ``checkpoint()`` seals all of them.

        >>> import allsource_lab as asl
        >>> asl.open().stats()["events"]
        0
        """
        if self._follower is not None:
            self._follower.check()
        log = self._log
        with log.lock:
            reader = self._sealer.reader
            reader.sync(log.tail)
            entities = self._entities
            segments = self._sealer.segments
            # A folder store's segments are mapped files (docs/format.md, "Column files"):
            # their pages are the system's to keep or drop, so they count apart.
            sealed = len(segments)
            mapped = sum(p.nbytes for p in reader.pieces[:sealed]) if self.path else 0
            memory = (
                sum(piece.nbytes for piece in reader.pieces)
                - mapped
                + reader.nbytes()
                + entities.keys.nbytes()
                + self._states.snapshots.nbytes()
                + log.tail.held
                + 8 * len(entities.versions)
            )
            return {
                "path": None if self.path is None else str(self.path),
                "events": reader.index.n,
                "entities": entities.count_stored(),
                "event_types": len(reader.type_keys),
                "last_sequence": log.next_seq - 1,
                "segments": len(segments),
                "sealed_events": sum(t.num_rows for t in segments),
                "sealing_events": 0 if reader.sealing is None else reader.sealing[3],
                "tail_events": log.next_seq - log.tail_first,
                "wal_bytes": self._storage.wal_bytes(),
                "wal_bytes_buffered": log.tail.unwritten,
                "snapshots": self._states.snapshots.count,
                "memory_bytes": memory,
                "mapped_bytes": mapped,
                "partitions": entities.partitions,
                "fsync": self.settings.fsync,
                "read_only": self.read_only,
                "recovery_problems": list(self.recovery_problems),
            }

    def verify(self) -> IntegrityReport:
        """Recompute every checksum and check the log's invariants; never raises for damage.

        >>> import allsource_lab as asl
        >>> asl.open().verify().ok
        True
        """
        problems, checked = self._storage.verify()
        with self._log.lock:
            tables = self._sealer.tables()
        problems.extend(check_tables(tables))
        return IntegrityReport(ok=not problems, problems=problems, files_checked=checked)

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"<EventStore {where}: {self._log.next_seq - 1} events>"


# Named as the package exports it (asl.open); this module never needs the builtin.
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

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> store.append("a", "x", {}).sequence
    1
    """
    try:
        config = Settings(**settings)
    except TypeError as exc:
        known = ", ".join(Settings.__dataclass_fields__)
        raise TypeError(f"{exc}; known settings are: {known}") from None
    return EventStore(path, config, read_only=read_only)
