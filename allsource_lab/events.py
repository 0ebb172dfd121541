"""The event: its Arrow columns (docs/format.md), the ``Event`` record, ids and times."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

__all__ = ["EVENT_SCHEMA", "Event", "IdGenerator", "merge_patch", "us_to_datetime"]

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

TIMESTAMP = pa.timestamp("us", tz="UTC")

# The columns of every event, in this order, in the tail, in segments and in the SQL view.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("event_id", pa.uuid(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("recorded_at", TIMESTAMP, nullable=False),
        pa.field("payload", pa.json_(), nullable=False),
        pa.field("metadata", pa.json_(), nullable=False),
        pa.field("partition", pa.int16(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=True),
    ]
)


def us_to_datetime(us: int) -> dt.datetime:
    """Microseconds since the epoch as an aware UTC datetime.

    >>> us_to_datetime(1_000_000).isoformat()
    '1970-01-01T00:00:01+00:00'
    """
    return EPOCH + dt.timedelta(microseconds=us)


def _iso(us: int) -> str:
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")


class Event:
    """One stored event. Ids, times and JSON are decoded from their stored form on access.

    >>> e = Event(1, "order.placed", "order-17", 1, 0, 0, bytes(16), b'{"a":1}', b"{}", 3, None)
    >>> e.payload, e.timestamp.year, str(e.event_id)
    ({'a': 1}, 1970, '00000000-0000-0000-0000-000000000000')
    """

    # A slotted class, not a named tuple: making a tuple is ~60 ns cheaper, but caching a
    # decoded payload then needs an instance dict per event, and the extra objects cost
    # reads that decode payloads ~1 us an event in collector work (measured).
    __slots__ = (
        "_id",
        "_metadata",
        "_payload",
        "entity_id",
        "event_type",
        "metadata_json",
        "partition",
        "payload_json",
        "recorded_at_us",
        "schema_version",
        "sequence",
        "timestamp_us",
        "version",
    )

    def __init__(
        self,
        sequence: int,
        event_type: str,
        entity_id: str,
        version: int,
        timestamp_us: int,
        recorded_at_us: int,
        event_id: bytes,
        payload_json: bytes | str,
        metadata_json: bytes | str,
        partition: int,
        schema_version: int | None,
    ) -> None:
        self.sequence = sequence
        self.event_type = event_type
        self.entity_id = entity_id
        self.version = version
        self.timestamp_us = timestamp_us
        self.recorded_at_us = recorded_at_us
        self._id = event_id
        self.payload_json = payload_json
        self.metadata_json = metadata_json
        self.partition = partition
        self.schema_version = schema_version
        # Decoded on first read. (Set to None rather than left unset: catching the
        # AttributeError of an unset slot costs ~0.4 us, measured.)
        self._payload: dict[str, Any] | None = None
        self._metadata: dict[str, Any] | None = None

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(bytes=self._id)

    @property
    def event_id_bytes(self) -> bytes:
        return self._id

    @property
    def timestamp(self) -> dt.datetime:
        return us_to_datetime(self.timestamp_us)

    @property
    def recorded_at(self) -> dt.datetime:
        return us_to_datetime(self.recorded_at_us)

    @property
    def payload(self) -> dict[str, Any]:
        # Decoded once; callers get the same dict on every access.
        value = self._payload
        if value is None:
            self._payload = value = orjson.loads(self.payload_json)
        return value

    @property
    def metadata(self) -> dict[str, Any]:
        value = self._metadata
        if value is None:
            self._metadata = value = orjson.loads(self.metadata_json)
        return value

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict with the column names of docs/format.md."""
        return {
            "sequence": self.sequence,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "entity_id": self.entity_id,
            "version": self.version,
            "timestamp": self.timestamp,
            "recorded_at": self.recorded_at,
            "payload": self.payload,
            "metadata": self.metadata,
            "partition": self.partition,
            "schema_version": self.schema_version,
        }

    def _key(self) -> tuple[Any, ...]:
        # JSON compared as values: the same event read back from Parquet may differ in
        # key order or spacing, never in content.
        return (
            self.sequence,
            self._id,
            self.event_type,
            self.entity_id,
            self.version,
            self.timestamp_us,
            self.recorded_at_us,
            self.payload,
            self.metadata,
            self.partition,
            self.schema_version,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.sequence, self._id))

    def __repr__(self) -> str:
        return (
            f"Event(sequence={self.sequence}, event_type={self.event_type!r}, "
            f"entity_id={self.entity_id!r}, version={self.version}, "
            f"timestamp='{_iso(self.timestamp_us)}', payload={self.payload!r})"
        )


class IdGenerator:
    """Time-ordered UUIDs (RFC 9562 version 7) that increase strictly within a process.

    48 bits of Unix milliseconds, then a 74-bit counter that starts at a random point in
    each new millisecond and is incremented within it (RFC 9562 §6.2, method 3), so ids
    sort in generation order without a lock-free race: callers hold the store lock.

    ``ms`` and ``value`` (the last id as an int) are the whole state. Within one
    millisecond the next id is ``value + 1`` unless that carries into the variant bits
    (``value + 1 & LOW_MASK == 0``); the single-append path takes that step itself and
    calls :meth:`next` otherwise.

    >>> gen = IdGenerator()
    >>> a, b = gen.next(1_700_000_000_000), gen.next(1_700_000_000_000)
    >>> a < b and uuid.UUID(bytes=a).version == 7
    True
    """

    __slots__ = ("ms", "value")

    COUNTER_BITS = 74
    LOW_MASK = (1 << 62) - 1

    def __init__(self) -> None:
        self.ms = -1
        self.value = 0

    def next(self, now_ms: int) -> bytes:
        if now_ms <= self.ms:
            # Same millisecond (or a clock step back): the counter goes on.
            counter = self._counter() + 1
        else:
            self.ms = now_ms
            # Leave the top bit clear so a millisecond never overflows into the next.
            counter = random.getrandbits(self.COUNTER_BITS - 1)
        self.value = value = self._compose(counter)
        return value.to_bytes(16, "big")

    def _counter(self) -> int:
        value = self.value
        return (((value >> 64) & 0xFFF) << 62) | (value & self.LOW_MASK)

    def _compose(self, c: int) -> int:
        low = self.LOW_MASK
        return (self.ms << 80) | (0x7 << 76) | ((c >> 62) << 64) | (0b10 << 62) | (c & low)

    def next_many(self, now_ms: int, n: int) -> np.ndarray:
        """``n`` consecutive ids as a uint8 array of 16 bytes each (for batches).

        >>> gen = IdGenerator()
        >>> ids = gen.next_many(1_700_000_000_000, 3).reshape(3, 16)
        >>> bytes(ids[0]) < bytes(ids[1]) < bytes(ids[2]) < gen.next(1_700_000_000_000)
        True
        """
        if n <= 0:
            return np.empty(0, np.uint8)
        if now_ms > self.ms:
            self.ms = now_ms
            start = random.getrandbits(self.COUNTER_BITS - 1)
        else:
            start = self._counter() + 1
        self.value = self._compose(start + n - 1)
        lo = np.uint64(start & self.LOW_MASK) + np.arange(n, dtype=np.uint64)
        carry = lo >> np.uint64(62)
        lo &= np.uint64(self.LOW_MASK)
        hi = np.uint64(start >> 62) + carry
        out = np.empty((n, 2), dtype=">u8")
        out[:, 0] = (np.uint64(self.ms) << np.uint64(16)) | np.uint64(0x7000) | hi
        out[:, 1] = np.uint64(0b10 << 62) | lo
        return out.view(np.uint8).reshape(-1)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply ``patch`` to ``target`` in place (RFC 7386) and return it.

    How an entity's state is folded from its payloads (``store.state``), and how a
    display folds the state after each shown event; here, at the ground, so both use it.

    ``patch`` must not be used afterwards: its nested values may be taken over.

    >>> merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": None, "e": [1]}})
    {'b': {'d': 3, 'e': [1]}}
    >>> merge_patch({"a": {"b": 1}}, {"a": 5})
    {'a': 5}
    """
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif type(value) is dict:
            inner = target.get(key)
            target[key] = merge_patch(inner if type(inner) is dict else {}, value)
        else:
            target[key] = value
    return target
