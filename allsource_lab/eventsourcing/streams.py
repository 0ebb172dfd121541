"""How the ``eventsourcing`` library's stored events map onto an AllSource store, both ways.

One :class:`Streams` object per store holds what every recorder writing to that store
shares: the store, the lock that orders their checks and appends, and the few entities
whose first originator version is not 1.

The mapping (README, "eventsourcing applications"):

* originator id → ``entity_id`` (a UUID as its 36-character text), topic → ``event_type``;
* originator version → ``version``: the store's versions are gapless from 1, so an
  aggregate's versions must follow one another too. Those that start at 1 (the library's
  default ``INITIAL_VERSION``) are stored as they are; an aggregate whose first version
  is another number keeps it, and every later one, in each event's metadata
  (``{"originator_version": n}``);
* stored state → ``payload``: the state's own bytes when they are a JSON object the store
  takes as it is (what the library's JSON transcoder writes without compressor or
  cipher), so the payload is the event's attributes and folds into the aggregate's;
  any other state (compressed, encrypted, another transcoder's) is kept losslessly as
  ``{"base64": "..."}`` with ``{"state": "base64"}`` in the metadata;
* an event's ``timestamp`` attribute (timezone-aware) → the event's time, so
  ``store.state(id, as_of=t)`` travels in the aggregate's own time.
"""

from __future__ import annotations

import base64
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import pyarrow as pa
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    OperationalError,
    StoredEvent,
    Tracking,
)

from allsource_lab.errors import ConcurrencyError, InvalidEvent, StorageError
from allsource_lab.store import EventStore

__all__ = [
    "TRACKING_PREFIX",
    "TRACKING_TYPE",
    "Plan",
    "Row",
    "Streams",
    "decode_rows",
    "encode_state",
    "entity_of",
    "streams_of",
]

# Tracking records are events of this type, one entity per upstream application
# (recorders.py): written in the same batch as the events they track.
TRACKING_TYPE = "eventsourcing.tracking"
TRACKING_PREFIX = "eventsourcing.tracking:"

_EMPTY = b"{}"
_WRAPPED = {"state": "base64"}


def entity_of(originator_id: UUID | str) -> str:
    """The entity id of an originator id: a UUID's canonical text, a string as it is.

    Raises:
        DataError: the id would land among the tracking records' entities.

    >>> entity_of(UUID(int=1))
    '00000000-0000-0000-0000-000000000001'
    """
    entity = str(originator_id)
    if entity.startswith(TRACKING_PREFIX):
        raise DataError(
            f"originator id {entity!r} starts with {TRACKING_PREFIX!r}, which this store "
            "keeps for tracking records; choose another id"
        )
    return entity


@dataclass(slots=True)
class Row:
    """One event to append: the columns ``append``/``append_batch`` take."""

    event_type: str
    entity_id: str
    payload: bytes
    metadata: dict[str, Any] | None
    timestamp: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "entity_id": self.entity_id,
            "payload": self.payload,
            "metadata": self.metadata,
            "timestamp": self.timestamp,
        }


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _event_time(obj: dict[str, Any]) -> datetime | None:
    """The ``timestamp`` attribute the JSON transcoder wrote, if aware; else None."""
    stamp = obj.get("timestamp")
    if type(stamp) is not dict or stamp.get("_type_") != "datetime_iso":
        return None
    try:
        moment = datetime.fromisoformat(stamp["_data_"])
    except (TypeError, ValueError, KeyError):
        return None
    return moment if moment.tzinfo is not None else None


def wrap_state(state: bytes, limit: int) -> bytes:
    """``state`` as the payload ``{"base64": "..."}``.

    Raises:
        DataError: the wrapped state is larger than the store's payload limit.
    """
    payload = b'{"base64":"' + base64.b64encode(state) + b'"}'
    if len(payload) > limit:
        raise DataError(
            f"a stored state of {len(state)} bytes is {len(payload)} bytes as a payload; the "
            f"store takes at most {limit} (setting max_payload_bytes)"
        )
    return payload


def encode_state(
    state: bytes, max_bytes: int, max_depth: int
) -> tuple[bytes, bool, datetime | None]:
    """The payload for a stored state, whether it is wrapped, and the event time in it.

    A state is stored as it is when it is the JSON text of an object within the store's
    limits, else wrapped (:func:`wrap_state`).

    Raises:
        DataError: the state is too large to store even wrapped.

    >>> encode_state(b'{"a":1}', 1024, 64)
    (b'{"a":1}', False, None)
    >>> encode_state(b"x\\x00", 1024, 64)
    (b'{"base64":"eAA="}', True, None)
    """
    if state[:1] == b"{" and len(state) <= max_bytes:
        try:
            obj = orjson.loads(state)
        except orjson.JSONDecodeError:
            obj = None
        # Braces can nest no deeper than there are braces: most states skip the walk.
        if type(obj) is dict and (
            state.count(b"{") + state.count(b"[") <= max_depth or _depth(obj) <= max_depth
        ):
            return state, False, _event_time(obj)
    return wrap_state(state, max_bytes), True, None


def _texts(column: pa.ChunkedArray) -> list[bytes]:
    arr = column.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    raw = pa.large_binary() if pa.types.is_large_string(arr.type) else pa.binary()
    texts: list[bytes] = arr.cast(raw).to_pylist()
    return texts


def decode_rows(table: pa.Table) -> list[tuple[str, int, str, bytes]]:
    """``(entity_id, originator_version, topic, state)`` of each row of an event table.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("t", "x", b'{"a":1}')
    >>> _ = store.append("t", "x", b'{"base64":"eAA="}', {"state": "base64"})
    >>> decode_rows(store.events().to_arrow())
    [('x', 1, 't', b'{"a":1}'), ('x', 2, 't', b'x\\x00')]
    """
    payloads = _texts(table.column("payload"))
    metadata = _texts(table.column("metadata"))
    rows = []
    for entity, version, topic, payload, meta in zip(
        table.column("entity_id").to_pylist(),
        table.column("version").to_pylist(),
        table.column("event_type").to_pylist(),
        payloads,
        metadata,
        strict=True,
    ):
        if meta != _EMPTY:
            md = orjson.loads(meta)
            version = md.get("originator_version", version)
            if md.get("state") == "base64":
                payload = base64.b64decode(orjson.loads(payload)["base64"])
        rows.append((entity, version, topic, payload))
    return rows


@dataclass(slots=True)
class Plan:
    """What one insert appends: rows, expected versions, and the first versions of the
    entities it creates (those not starting at 1); ``assumed`` holds the first versions
    here of the entities taken to exist because that version is above 1."""

    rows: list[Row]
    expected: dict[str, int]
    new_bases: dict[str, int]
    assumed: dict[str, int]
    tracked: list[Tracking] = field(default_factory=list)


class Streams:
    """The store every recorder of one application writes to, and what they share.

    ``lock`` makes each insert's plan, its append and what it changes here one step, so
    that ``bases`` and ``positions`` stay true for every recorder of the store; the
    store's own expected-version check is what refuses a clash. ``bases`` holds each
    entity whose first originator version is not 1, read back from the events' metadata
    on first use (one SQL query); ``positions`` each upstream application's tracked
    position, read from its tracking entity on first use.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.lock = threading.RLock()
        settings = store.settings
        self.max_bytes = settings.max_payload_bytes
        self.max_depth = settings.max_json_depth
        self.positions: dict[str, tuple[int, int | None]] = {}
        self._bases: dict[str, int] | None = None

    @property
    def bases(self) -> dict[str, int]:
        """Each entity whose first originator version is not 1, and that version."""
        if self._bases is None:
            found: list[tuple[str, int]] = []
            if self.store.stats()["events"]:
                found = self.store.sql(
                    "select entity_id, any_value(cast(json_extract(metadata, "
                    "'$.originator_version') as bigint) - version + 1) from events "
                    "where json_extract(metadata, '$.originator_version') is not null "
                    "group by entity_id"
                ).fetchall()
            self._bases = {entity: int(base) for entity, base in found}
        return self._bases

    # -- writing ---------------------------------------------------------------------

    def plan(
        self, stored_events: Sequence[StoredEvent], starts: dict[str, int] | None = None
    ) -> Plan:
        """The rows for ``stored_events``, each entity's expected version, and the first
        versions of the entities they create; ``starts`` gives first versions to assume.

        Call it holding ``lock``, and :meth:`committed` once the rows are stored.

        Raises:
            IntegrityError: an originator's versions in the list do not follow one another,
                or one lies below its first stored version.
            DataError: an originator id is reserved, or a state too large.
        """
        plan = Plan([], {}, {}, {})
        last: dict[str, int] = {}
        bases = self.bases
        starts = starts or {}
        for stored in stored_events:
            entity = entity_of(stored.originator_id)
            version = stored.originator_version
            before = last.get(entity)
            if before is None:
                base = bases.get(entity)
                if base is None:
                    base = starts.get(entity)
                    if base is None:
                        # Not known to start elsewhere: the store's versions from 1 on;
                        # a first version below 1 can only start a new entity.
                        base = min(version, 1)
                        if version > 1:
                            plan.assumed[entity] = version
                    if base != 1:
                        plan.new_bases[entity] = base
                elif version < base:
                    raise IntegrityError(
                        f"version {version} of {entity!r} is below its first stored version {base}"
                    )
                plan.expected[entity] = version - base
            elif version != before + 1:
                raise IntegrityError(
                    f"versions of {entity!r} in one insert must follow one another: "
                    f"{version} after {before}"
                )
            last[entity] = version
            payload, wrapped, moment = encode_state(stored.state, self.max_bytes, self.max_depth)
            metadata: dict[str, Any] | None = dict(_WRAPPED) if wrapped else None
            if entity in bases or entity in plan.new_bases:
                metadata = metadata or {}
                metadata["originator_version"] = version
            plan.rows.append(Row(stored.topic, entity, payload, metadata, moment))
        return plan

    def committed(self, plan: Plan) -> None:
        """``plan`` is stored: the first versions of the entities it created hold, and
        the positions it tracked."""
        self.bases.update(plan.new_bases)
        for tracking in plan.tracked:
            version, _ = self.positions[tracking.application_name]
            self.positions[tracking.application_name] = (version + 1, tracking.notification_id)

    def append(self, rows: list[Row], expected: dict[str, int]) -> list[int]:
        """Append ``rows`` atomically with ``expected`` versions; their sequences.

        A JSON payload the store refuses (a limit the check before did not see) is
        wrapped and the append tried again.

        Raises:
            IntegrityError: an expected version did not match (a clash).
            DataError: the store refused a row for another reason.
            OperationalError: the store is closed, read-only or its disk failed.
        """
        while True:
            try:
                if len(rows) == 1:
                    r = rows[0]
                    event = self.store.append(
                        r.event_type,
                        r.entity_id,
                        r.payload,
                        r.metadata,
                        r.timestamp,
                        None,
                        expected.get(r.entity_id),
                    )
                    return [event.sequence]
                result = self.store.append_batch(
                    [r.as_dict() for r in rows], expected_versions=expected
                )
                return list(range(result.first_sequence, result.last_sequence + 1))
            except ConcurrencyError as exc:
                raise IntegrityError(str(exc)) from exc
            except InvalidEvent as exc:
                row = rows[exc.row if exc.row is not None else 0]
                if exc.field != "payload" or (row.metadata or {}).get("state") == "base64":
                    raise DataError(str(exc)) from exc
                row.payload = wrap_state(row.payload, self.max_bytes)
                row.metadata = {**(row.metadata or {}), **_WRAPPED}
            except StorageError as exc:
                raise OperationalError(str(exc)) from exc

    # -- tracking records ----------------------------------------------------------------

    def position(self, application_name: str) -> tuple[int, int | None]:
        """The version of ``application_name``'s tracking entity and the notification id
        it tracks (``(0, None)``: none recorded), read once and then kept."""
        found = self.positions.get(application_name)
        if found is None:
            table = self.store.events(
                entity_id=TRACKING_PREFIX + application_name, reverse=True, limit=1
            ).to_arrow()
            if table.num_rows:
                payload = _texts(table.column("payload"))[0]
                found = (table.column("version")[0].as_py(), orjson.loads(payload)["id"])
            else:
                found = (0, None)
            self.positions[application_name] = found
        return found

    def track(self, plan: Plan, tracking: Tracking) -> None:
        """Add ``tracking``'s record to ``plan``: one more event, checked to move forward.

        Raises:
            IntegrityError: the position is not above the one recorded.
        """
        version, current = self.position(tracking.application_name)
        if current is not None and tracking.notification_id <= current:
            raise IntegrityError(
                f"tracking notification ID {tracking.notification_id} of "
                f"{tracking.application_name!r} is not greater than the recorded {current}"
            )
        entity = TRACKING_PREFIX + tracking.application_name
        payload = orjson.dumps({"id": tracking.notification_id})
        plan.rows.append(Row(TRACKING_TYPE, entity, payload, None, None))
        plan.expected[entity] = version
        plan.tracked.append(tracking)

    def exists(self, entity: str) -> bool:
        """Whether ``entity`` has an event."""
        return len(self.store.events(entity_id=entity, limit=1)) > 0

    # -- reading ---------------------------------------------------------------------

    def entity_rows(
        self,
        entity: str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> pa.Table:
        """The entity's events whose originator versions are in ``(gt, lte]``, as Arrow.

        Versions are gapless, so originator version ``v`` is row ``v - base`` of the
        entity's events: the bounds slice the table instead of filtering it.
        """
        table = self.store.events(entity_id=entity).to_arrow()
        offset = self.bases.get(entity, 1)
        n = table.num_rows
        lo = 0 if gt is None else min(max(gt - offset + 1, 0), n)
        hi = n if lte is None else min(max(lte - offset + 1, 0), n)
        if hi <= lo:
            return table.slice(0, 0)
        if desc:
            start = lo if limit is None else max(hi - limit, lo)
            indices = pa.array(range(hi - 1, start - 1, -1), pa.int64())
            return table.take(indices)
        stop = hi if limit is None else min(lo + limit, hi)
        return table.slice(lo, stop - lo)


_streams: weakref.WeakKeyDictionary[EventStore, Streams] = weakref.WeakKeyDictionary()
_streams_lock = threading.Lock()


def streams_of(store: EventStore) -> Streams:
    """The one :class:`Streams` of ``store``: recorders on one store share it.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> streams_of(store) is streams_of(store)
    True
    """
    with _streams_lock:
        found = _streams.get(store)
        if found is None:
            found = _streams[store] = Streams(store)
        return found
