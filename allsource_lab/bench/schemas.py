"""Schema enforcement figures for the benchmark (``python -m allsource_lab.bench --only schemas``).

``append_batch`` of ``Sizes.batch`` order events whose type has a typical object schema
(8 properties: required ones, types, an enum, a numeric range, a date-time, a bounded
string), against the same batch with no schema; the peer validates the same payloads one
by one with ``jsonschema`` alone (a sample of them: it is far slower).

>>> import jsonschema
>>> validator = jsonschema.Draft202012Validator(ORDER_SCHEMA)
>>> validator.is_valid(orjson.loads(typed_payload(3)))
True
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pyarrow as pa

import allsource_lab as asl
from allsource_lab.bench.common import ENTITIES, Figure, Sizes, batch_append_rate, repeat

__all__ = ["ORDER_SCHEMA", "bench_schemas", "typed_payload"]

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order": {"type": "string", "maxLength": 32},
        "amount": {"type": "number", "minimum": 0, "maximum": 100_000},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "qty": {"type": "integer", "minimum": 1},
        "placed_at": {"type": "string", "format": "date-time"},
        "gift": {"type": "boolean"},
        "note": {"type": "string", "maxLength": 200},
        "channel": {"type": "string"},
    },
    "required": ["order", "amount", "currency", "qty", "placed_at"],
}
CURRENCIES = ("EUR", "USD", "GBP")


def typed_payload(i: int) -> bytes:
    """The ``i``-th payload valid under ORDER_SCHEMA (~170 bytes of JSON)."""
    return orjson.dumps(
        {
            "order": f"order-{i:08d}",
            "amount": (i % 997) + 0.5,
            "currency": CURRENCIES[i % 3],
            "qty": i % 9 + 1,
            "placed_at": f"2026-01-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            "gift": i % 2 == 0,
            "note": "leave at the side door",
            "channel": "web",
        }
    )


def typed_events(n: int) -> pa.Table:
    return pa.table(
        {
            "event_type": pa.array(["order.placed"] * n, pa.string()),
            "entity_id": pa.array([f"order-{i % ENTITIES}" for i in range(n)], pa.string()),
            "payload": pa.array([typed_payload(i).decode() for i in range(n)], pa.string()),
        }
    )


def bench_schemas(sizes: Sizes, folder: Path) -> list[Figure]:
    table = typed_events(sizes.batch)

    def register(store: asl.EventStore) -> None:
        store.schemas.register("order.placed", ORDER_SCHEMA)

    def append(with_schema: bool) -> float:
        return batch_append_rate(folder, table, register if with_schema else None)

    append(True)  # untimed: compiles and caches the validation kernels
    with_schema = repeat(sizes.repeats, lambda: append(True))
    without = repeat(sizes.repeats, lambda: append(False))
    return [
        Figure("append_batch_schema", with_schema),
        Figure("append_batch_no_schema", without),
        Figure("jsonschema_validate", repeat(sizes.repeats, lambda: jsonschema_rate(table))),
    ]


def jsonschema_rate(table: pa.Table) -> float:
    """The peer: payloads/s that ``jsonschema`` alone validates (decoding included)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        ORDER_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    texts = table.column("payload").to_pylist()[:50_000]
    start = time.perf_counter()
    for text in texts:
        validator.validate(orjson.loads(text))
    return float(len(texts) / (time.perf_counter() - start))
