"""Idempotent retries: an ``event_id`` that is already stored, sent again.

Sent again with the same content, it is a retry (the client did not see the first reply)
and answers with the stored event; with other content it is a mistake and is refused,
because writing it would make one id name two events.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa

from allsource_lab._ingest import inputs
from allsource_lab.errors import InvalidEvent
from allsource_lab.events import Event

__all__ = ["check_same", "split_batch"]


def check_same(
    stored: Event,
    event_type: str,
    entity_id: str,
    payload_json: bytes,
    metadata_json: bytes | None,
    timestamp_us: int | None,
    row: int | None = None,
) -> None:
    """Raise InvalidEvent unless the new event is the stored one again.

    JSON is compared as values, so a retry may re-encode its payload differently; an
    event time left out of the retry matches any.
    """
    same = (
        stored.event_type == event_type
        and stored.entity_id == entity_id
        and stored.payload == orjson.loads(payload_json)
        and stored.metadata == (orjson.loads(metadata_json) if metadata_json else {})
        and (timestamp_us is None or timestamp_us == stored.timestamp_us)
    )
    if not same:
        raise InvalidEvent(
            f"event_id {stored.event_id} is already stored (sequence {stored.sequence}) with "
            "different content; use a new event_id for a new event",
            row=row,
            field="event_id",
        )


def split_batch(
    batch: inputs.BatchInput,
    sequences_of: Callable[[np.ndarray], np.ndarray],
    event_at: Callable[[int], Event],
) -> tuple[inputs.BatchInput | None, np.ndarray]:
    """The batch without its exact retries, and the stored sequences of those retries.

    ``sequences_of`` maps ids (uint8, 16 per id) to stored sequences (-1 if new). Returns
    ``None`` for the batch when every row was a retry.

    Raises:
        InvalidEvent: an id twice in the batch, or a stored id with other content.
    """
    assert batch.event_id is not None and batch.event_id_given is not None
    rows = np.nonzero(batch.event_id_given)[0]
    ids = batch.event_id.reshape(-1, 16)[rows]
    # Inside one batch the same id twice is a mistake, not a retry.
    _, first_idx, counts = np.unique(ids, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = ids[first_idx[np.argmax(counts > 1)]]
        where = rows[(ids == dup).all(axis=1)]
        raise InvalidEvent(
            f"event_id appears twice in the batch (rows {int(where[0])} and {int(where[1])})",
            row=int(where[1]),
            field="event_id",
        )
    seqs = sequences_of(ids.reshape(-1))
    hit = seqs >= 0
    if not hit.any():
        return batch, np.empty(0, np.int64)
    dup_rows = rows[hit]
    payloads = _texts(batch.payload, dup_rows)
    metas = _texts(batch.metadata, dup_rows) if batch.metadata is not None else None
    types = batch.event_type.take(pa.array(dup_rows)).to_pylist()
    ents = batch.entity_id.take(pa.array(dup_rows)).to_pylist()
    for k, (row, seq) in enumerate(zip(dup_rows.tolist(), seqs[hit].tolist(), strict=True)):
        ts = None
        if batch.timestamp is not None and batch.timestamp[row] != inputs.MISSING_TIME:
            ts = int(batch.timestamp[row])
        check_same(
            event_at(seq), types[k], ents[k], payloads[k], metas[k] if metas else None, ts, row
        )
    keep = np.ones(batch.n, np.bool_)
    keep[dup_rows] = False
    if not keep.any():
        return None, seqs[hit]
    return inputs.take_rows(batch, np.nonzero(keep)[0]), seqs[hit]


def _texts(col: tuple[np.ndarray, np.ndarray] | None, rows: np.ndarray) -> list[bytes]:
    assert col is not None
    data, offsets = col
    return [data[offsets[r] : offsets[r + 1]].tobytes() for r in rows.tolist()]
