"""The event: its Arrow columns (DESIGN.md §1), the ``Event`` record, ids and times."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

__all__ = ["EVENT_SCHEMA", "Event", "IdGenerator", "us_to_datetime"]

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

    _payload: dict[str, Any]
    _metadata: dict[str, Any]

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
        # _payload and _metadata stay unset until first read (saves two stores per event).

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
        try:
            return self._payload
        except AttributeError:
            self._payload = orjson.loads(self.payload_json)
            return self._payload

    @property
    def metadata(self) -> dict[str, Any]:
        try:
            return self._metadata
        except AttributeError:
            self._metadata = orjson.loads(self.metadata_json)
            return self._metadata

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict with the column names of DESIGN.md §1."""
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

    >>> gen = IdGenerator()
    >>> a, b = gen.next(1_700_000_000_000), gen.next(1_700_000_000_000)
    >>> a < b and uuid.UUID(bytes=a).version == 7
    True
    """

    __slots__ = ("_counter", "_ms", "_value")

    _COUNTER_BITS = 74
    _LOW_MASK = (1 << 62) - 1

    def __init__(self) -> None:
        self._ms = -1
        self._counter = 0
        self._value = 0

    def next(self, now_ms: int) -> bytes:
        if now_ms <= self._ms:
            # Same millisecond (or a clock step back): the next id is the last plus one,
            # unless that carries out of the low 62 bits into the variant field.
            value = self._value + 1
            if value & self._LOW_MASK:
                self._value = value
                self._counter += 1
                return value.to_bytes(16, "big")
            self._counter += 1
        else:
            self._ms = now_ms
            # Leave the top bit clear so a millisecond never overflows into the next.
            self._counter = random.getrandbits(self._COUNTER_BITS - 1)
        c = self._counter
        value = (
            (self._ms << 80) | (0x7 << 76) | ((c >> 62) << 64) | (0b10 << 62) | (c & self._LOW_MASK)
        )
        self._value = value
        return value.to_bytes(16, "big")

    def next_many(self, now_ms: int, n: int) -> np.ndarray:
        """``n`` consecutive ids as a uint8 array of 16 bytes each (for batches).

        >>> gen = IdGenerator()
        >>> ids = gen.next_many(1_700_000_000_000, 3).reshape(3, 16)
        >>> bytes(ids[0]) < bytes(ids[1]) < bytes(ids[2]) < gen.next(1_700_000_000_000)
        True
        """
        if n <= 0:
            return np.empty(0, np.uint8)
        if now_ms > self._ms:
            self._ms = now_ms
            self._counter = random.getrandbits(self._COUNTER_BITS - 1)
        else:
            self._counter += 1
        start = self._counter
        self._counter = c = start + n - 1
        self._value = (
            (self._ms << 80) | (0x7 << 76) | ((c >> 62) << 64) | (0b10 << 62) | (c & self._LOW_MASK)
        )
        lo = np.uint64(start & self._LOW_MASK) + np.arange(n, dtype=np.uint64)
        carry = lo >> np.uint64(62)
        lo &= np.uint64(self._LOW_MASK)
        hi = np.uint64(start >> 62) + carry
        out = np.empty((n, 2), dtype=">u8")
        out[:, 0] = (np.uint64(self._ms) << np.uint64(16)) | np.uint64(0x7000) | hi
        out[:, 1] = np.uint64(0b10 << 62) | lo
        return out.view(np.uint8).reshape(-1)
