"""Payloads checked against their event type's registered schema, at ingest.

The compiled validators (:mod:`allsource_lab.schemas.fast`) test raw JSON bytes in bulk;
only a payload that fails is looked at again, by the full validator, to name the JSON
path and the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._ingest import inputs
from allsource_lab._storage.arrowbuf import string_array_from_buffers, string_buffers
from allsource_lab.errors import SchemaViolation

if TYPE_CHECKING:  # the registry loads jsonschema: imported when a store opens, not before
    from allsource_lab.schemas.registry import SchemaRegistry

__all__ = ["validate_batch", "validate_one", "violation"]


def validate_one(schemas: SchemaRegistry, event_type: str, pb: bytes) -> int:
    """The schema version ``pb`` is valid under (-1: no schema).

    Raises:
        SchemaViolation: it fails its schema.
    """
    found = schemas.validator(event_type) if type(event_type) is str else None
    if found is None:
        return -1
    version, validator = found
    data = np.frombuffer(pb, np.uint8)
    if len(validator.invalid_rows(data, np.array([0, len(pb)], np.int64))):
        raise violation(event_type, version, validator, pb, None)
    return version


def violation(
    event_type: str, version: int, validator: Any, text: bytes, row: int | None
) -> SchemaViolation:
    """The error for a payload that fails: its first problem's path and reason."""
    problems = validator.problems(text)
    path, reason = problems[0] if problems else ("#", "does not match the schema")
    return SchemaViolation(
        f"payload of {event_type!r} fails schema version {version}: {reason}",
        row=row,
        path=path,
        reason=reason,
    )


def validate_batch(
    schemas: SchemaRegistry, batch: inputs.BatchInput, on_invalid: str
) -> tuple[inputs.BatchInput | None, Any, int]:
    """(rows to write with their schema versions, rejected rows or None, how many).

    ``on_invalid``: ``"raise"`` raises for the first failing row; ``"skip"`` leaves
    failing rows out; ``"return"`` leaves them out and reports them as a DataFrame.
    """
    types = batch.event_type
    names = pc.unique(types).to_pylist()
    found = {t: schemas.validator(t) for t in names}
    if not any(found.values()):
        return batch, None, 0
    versions = np.full(batch.n, -1, np.int32)
    texts = None
    bad: list[np.ndarray] = []
    for name, hit in found.items():
        if hit is None:
            continue
        version, validator = hit
        if len(names) == 1:
            rows = np.arange(batch.n)
            data, offsets = batch.payload
        else:
            rows = np.flatnonzero(pc.equal(types, name).to_numpy(zero_copy_only=False))
            if texts is None:
                texts = string_array_from_buffers(*batch.payload)
            data, offsets = string_buffers(texts.take(pa.array(rows)))
        versions[rows] = version
        invalid = validator.invalid_rows(data, offsets)
        if len(invalid):
            bad.append(rows[invalid])
    batch.schema_version = versions
    if not bad:
        return batch, None, 0
    rejected = np.sort(np.concatenate(bad))
    data, offsets = batch.payload

    def text(row: int) -> bytes:
        return data[offsets[row] : offsets[row + 1]].tobytes()

    if on_invalid == "raise":
        row = int(rejected[0])
        name = types[row].as_py()
        version, validator = found[name]  # type: ignore[misc]
        raise violation(name, version, validator, text(row), row)
    report = None
    if on_invalid == "return":
        import pandas as pd

        records = []
        for row in rejected.tolist():
            name = types[row].as_py()
            _, validator = found[name]  # type: ignore[misc]
            problems = validator.problems(text(row))
            path, reason = problems[0] if problems else ("#", "does not match the schema")
            records.append(
                (row, name, batch.entity_id[row].as_py(), text(row).decode(), path, reason)
            )
        columns = ["row", "event_type", "entity_id", "payload", "path", "reason"]
        report = pd.DataFrame.from_records(records, columns=columns)
    keep = np.setdiff1d(np.arange(batch.n), rejected)
    if not len(keep):
        return None, report, len(rejected)
    return inputs.take_rows(batch, keep), report, len(rejected)
