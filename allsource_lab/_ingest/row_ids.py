"""Event ids derived from what a row says, so that sending the same rows again is a retry.

The store already treats an ``event_id`` it holds, sent again with the same content, as a
retry that is not written twice (:mod:`allsource_lab._ingest.retries`). Ingest (by
default) and ``append_batch(..., idempotency="content")`` give every row without an id
one derived from its content, and so reach that path without a second one.

A row's content is its event type, entity id, payload and metadata (the JSON text as
given: the same values written differently are different content) and its event time
(or its absence). Identical rows in one batch are distinct events: the k-th copy gets an
id of its own, derived from the content and k, so a batch holding a row twice stores it
twice, and re-running that batch stores nothing.

The ids are UUID version 8 (RFC 9562's "custom" layout): 122 bits of hash with the
version and variant bits set. They are not version 7, whose leading bits are a clock:
the same row must give the same id at any time, so ordering events by id does not follow
their time (sequence or timestamp do). The hash is XXH64 (``_kernels.hashing``) under
two independent sets of seeds, folded per row with the SplitMix64 finalizer: not a
cryptographic hash, and need not be one, because a retry is only dropped after its stored
event is compared field by field; a crafted collision is refused as an ``InvalidEvent``,
never silently skipped.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from allsource_lab._ingest import inputs
from allsource_lab._kernels.hashing import xxh64_many
from allsource_lab._storage.arrowbuf import string_buffers
from allsource_lab.settings import Settings

__all__ = [
    "IDEMPOTENCY_MODES",
    "content_ids",
    "table_ids",
    "with_content_ids",
    "with_table_ids",
]

IDEMPOTENCY_MODES = (None, "content")

# Seeds per (lane, column): two lanes of 64 bits make the 128-bit id; a seed of its own
# for every column keeps "a" in event_type apart from "a" in entity_id.
# The columns: event_type, entity_id, payload, metadata, event time.
_SEEDS = (
    (0x5EED_0001, 0x5EED_0002, 0x5EED_0003, 0x5EED_0004, 0x5EED_0005),
    (0xA11_0001, 0xA11_0002, 0xA11_0003, 0xA11_0004, 0xA11_0005),
)
_LANE_START = (np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344))
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_EMPTY_OBJECT = np.frombuffer(b"{}", np.uint8)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer over a uint64 array: a bijection that spreads every bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _text_hashes(col: tuple[np.ndarray, np.ndarray], seed: int) -> np.ndarray:
    data, offsets = col
    hashes: np.ndarray = xxh64_many(data, np.asarray(offsets, np.int64), seed)
    return hashes


def content_ids(batch: inputs.BatchInput) -> np.ndarray:
    """Derived ids of every row of a checked batch: uint8, 16 per row (UUID version 8).

    The same content gives the same id in any batch and any process; the k-th identical
    row of one batch (k counted from 0) gets an id of its own.

    >>> from allsource_lab.settings import Settings
    >>> rows = [{"event_type": "a", "entity_id": "x", "payload": {"n": 1}}] * 2
    >>> ids = content_ids(inputs.normalize_batch(rows, Settings())).reshape(-1, 16)
    >>> int(ids[0, 6] >> 4), bool((ids[0] == ids[1]).all())
    (8, False)
    >>> again = content_ids(inputs.normalize_batch(rows[:1], Settings()))
    >>> bool((again == ids[0]).all())
    True
    """
    n = batch.n
    texts = [
        string_buffers(batch.event_type),
        string_buffers(batch.entity_id),
        batch.payload,
        batch.metadata,
    ]
    if batch.timestamp is None:
        times = np.full(n, inputs.MISSING_TIME, np.int64).view(np.uint64)
    else:
        times = np.ascontiguousarray(batch.timestamp, np.int64).view(np.uint64)
    lanes = []
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        for start, seeds in zip(_LANE_START, _SEEDS, strict=True):
            acc = np.full(n, start, np.uint64)
            for col, seed in zip(texts, seeds, strict=False):
                if col is None:  # no metadata: every row's is {}, as it is stored
                    h = np.full(n, _text_hashes((_EMPTY_OBJECT, np.array([0, 2])), seed)[0])
                else:
                    h = _text_hashes(col, seed)
                acc = _mix(acc + h * _GOLDEN)
            acc = _mix(acc + _mix(times ^ np.uint64(seeds[-1])) * _GOLDEN)
            lanes.append(acc)
        a, b = lanes
        rank = _copy_rank(a, b)
        again = rank > 0
        if again.any():
            k = rank[again].astype(np.uint64)
            a[again] = _mix(a[again] + _mix(k) * _GOLDEN)
            b[again] = _mix(b[again] ^ _mix(k + _GOLDEN))
    ids = np.empty((n, 2), ">u8")
    ids[:, 0] = a
    ids[:, 1] = b
    raw = ids.view(np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x80  # version 8
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # the RFC 9562 variant
    return raw.reshape(-1)


def _copy_rank(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows have the same (a, b) hash pair."""
    n = len(a)
    rank = np.zeros(n, np.int64)
    # Identical rows are rare: one sort of the first lane finds the candidates, and only
    # they are ranked (0.06 s for 1M distinct rows, where a three-key lexsort of every
    # row alone took 0.11 s; measured with time.perf_counter on random hashes).
    sa = np.sort(a)
    same = sa[1:] == sa[:-1]
    if not same.any():
        return rank
    rows = np.nonzero(np.isin(a, sa[1:][same]))[0]
    sub = np.lexsort((rows, b[rows], a[rows]))  # earlier rows first within a group
    ra, rb = a[rows][sub], b[rows][sub]
    starts = np.ones(len(rows), np.bool_)
    starts[1:] = (ra[1:] != ra[:-1]) | (rb[1:] != rb[:-1])
    positions = np.arange(len(rows))
    group_start = np.maximum.accumulate(np.where(starts, positions, 0))
    rank[rows[sub]] = positions - group_start
    return rank


def with_content_ids(batch: inputs.BatchInput) -> inputs.BatchInput:
    """The batch with a derived id in every row that brought none (its own ids are kept).

    >>> from allsource_lab.settings import Settings
    >>> rows = [{"event_type": "a", "entity_id": "x", "payload": {}}]
    >>> bool(with_content_ids(inputs.normalize_batch(rows, Settings())).event_id_given[0])
    True
    """
    derived = content_ids(batch)
    if batch.event_id is not None and batch.event_id_given is not None:
        given = np.repeat(batch.event_id_given, 16)
        derived = np.where(given, batch.event_id, derived)
    batch.event_id = derived
    batch.event_id_given = np.ones(batch.n, np.bool_)
    return batch


def table_ids(table: pa.Table, settings: Settings) -> pa.Array:
    """The event id of every row of a table ``append_batch`` takes, as
    fixed_size_binary(16): its own ``event_id`` where it has one, else derived from the
    row's content (:func:`content_ids`) over the whole table, so the ids do not depend on
    how the table is later cut into batches.

    Raises:
        InvalidEvent: naming the first bad row and field (the table is checked as a batch).

    >>> t = pa.table({"event_type": ["a"], "entity_id": ["x"], "payload": ["{}"]})
    >>> bool(table_ids(t, Settings()).equals(table_ids(t, Settings())))
    True
    """
    batch = with_content_ids(inputs.normalize_batch(table, settings))
    assert batch.event_id is not None
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), batch.n, [None, pa.py_buffer(batch.event_id.tobytes())]
    )


def with_table_ids(table: pa.Table, settings: Settings) -> pa.Table:
    """``table`` with its ``event_id`` column from :func:`table_ids` (added or replaced).

    Raises:
        InvalidEvent: naming the first bad row and field.

    >>> t = pa.table({"event_type": ["a"], "entity_id": ["x"], "payload": ["{}"]})
    >>> with_table_ids(t, Settings()).column_names
    ['event_type', 'entity_id', 'payload', 'event_id']
    """
    ids = table_ids(table, settings)
    names = table.column_names
    if "event_id" in names:
        return table.set_column(names.index("event_id"), "event_id", ids)
    return table.append_column("event_id", ids)
