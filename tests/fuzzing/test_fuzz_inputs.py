"""Bad input to ``append``/``append_batch``: only the documented errors, and a rejected call
leaves the store as it was (memory and folder stores, and the folder after a reopen).

The stores here are opened with small limits (a 2 KiB payload, nesting 8 deep, 16-byte
entity ids...) so that generated values land on both sides of every limit often; the
limits' own tests then check each one at, below and above its boundary with the default
settings' shapes of input (dicts, JSON text, DataFrames, Arrow tables).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab._ingest import inputs
from allsource_lab._storage import wal

# Examples per fuzz test in the default run, and under -m slow.
EXAMPLES = int(os.environ.get("ASL_FUZZ_EXAMPLES", "200"))
SLOW_EXAMPLES = 2_000
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SLOW_FUZZ = settings(FUZZ, max_examples=SLOW_EXAMPLES)

# Small limits, so that generated values cross them often.
LIMITS: dict[str, Any] = {
    "max_payload_bytes": 2048,
    "max_metadata_bytes": 512,
    "max_json_depth": 8,
    "max_entity_id_bytes": 16,
    "max_event_type_chars": 12,
}
DOCUMENTED_WRITE_ERRORS = (asl.InvalidEvent, asl.ConcurrencyError)

# -- what a store looks like ------------------------------------------------------------------


def fingerprint(store: asl.EventStore) -> tuple[Any, ...]:
    """Everything a rejected call must leave alone: counts, every event, the versions."""
    stats = store.stats()
    table = store.events().to_arrow()
    return stats["events"], stats["entities"], stats["last_sequence"], table


def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return a[:3] == b[:3] and a[3].equals(b[3])


def assert_documented(exc: BaseException, allowed: tuple[type[BaseException], ...]) -> None:
    """``exc`` is one of ``allowed`` and, if it is the store's own, says what went wrong
    in one line (DuckDB's errors are passed on as DuckDB wrote them)."""
    assert isinstance(exc, allowed), f"undocumented {type(exc).__module__}.{type(exc).__name__}"
    message = str(exc)
    assert message, type(exc)
    if isinstance(exc, asl.AllSourceError | ValueError):
        assert "\n" not in message, message


def rejected_or_done(
    store: asl.EventStore,
    call: Callable[[], Any],
    allowed: tuple[type[BaseException], ...] = DOCUMENTED_WRITE_ERRORS,
) -> Any:
    """Run ``call``; a refusal must be documented and change nothing. Returns its result,
    or None when it was refused."""
    before = fingerprint(store)
    try:
        return call()
    except Exception as exc:
        assert_documented(exc, allowed)
        after = fingerprint(store)
        assert same(before, after), f"a refused call changed the store: {exc}"
        return None


@pytest.fixture(params=["memory", "folder"])
def fuzz_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[asl.EventStore]:
    """One store reused by every example of a test; the folder one is reopened after the
    test and must hold the same events and verify clean."""
    path = None if request.param == "memory" else tmp_path / "fuzz.events"
    store = asl.open(path, **LIMITS)
    store.append("seed", "seed-1", {"n": 1})
    yield store
    report = store.verify()
    assert report.ok, report.problems
    if path is None:
        store.close()
        return
    before = fingerprint(store)
    store.close()
    with asl.open(path, **LIMITS) as again:
        assert same(before, fingerprint(again))
        assert again.verify().ok


# -- generated values -------------------------------------------------------------------------

# Text with what breaks text: lone surrogates, controls, NUL, quotes, backslashes, spaces.
_chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.characters(categories=["Cc", "Zs", "Zl", "Zp"]),
    st.sampled_from("\"\\'{}[]:,\x00\x7f\u2028\ufeff"),
)
nasty_text = st.text(_chars, max_size=24)
long_text = st.integers(0, 40).map(lambda n: "é" * n)  # 2 bytes each: crosses 16 bytes
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # past 64 bits too
    st.floats(),  # NaN and infinities too
    nasty_text,
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(nasty_text, inner, max_size=4),
    ),
    max_leaves=12,
)
odd_objects = st.one_of(
    st.sets(st.integers(), max_size=2),
    st.binary(max_size=8),
    st.tuples(st.integers()),
    st.just(object()),
    st.just(dt.date(2026, 1, 1)),
    st.just(np.int64(3)),
    st.just(np.float64("nan")),
    st.just(pd.NaT),
)


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    top = node
    for _ in range(depth - 1):
        node["a"] = {}
        node = node["a"]
    return top


def nested_text(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


@st.composite
def json_texts(draw: st.DrawFn) -> Any:
    """JSON text (str or bytes) that is right, nearly right, or wrong."""
    kind = draw(st.sampled_from(["dumped", "dup", "deep", "big", "bytes", "garbage", "cut"]))
    if kind == "dumped":
        value = draw(st.dictionaries(st.text(max_size=5), json_like, max_size=4))
        try:
            return orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):
            return "{}"
    if kind == "dup":  # duplicate keys: JSON allows them, the last one wins when read
        key = draw(st.text(max_size=3))
        return orjson.dumps({key: 1}).decode()[:-1] + "," + orjson.dumps({key: 2}).decode()[1:]
    if kind == "deep":
        return nested_text(draw(st.integers(6, 10)))
    if kind == "big":
        return '{"s":"' + "x" * draw(st.integers(2030, 2050)) + '"}'
    if kind == "bytes":
        return b'{"s":"' + draw(st.binary(max_size=6)) + b'"}'
    if kind == "cut":
        try:
            text = orjson.dumps(draw(st.dictionaries(st.text(max_size=4), scalars, max_size=3)))
        except (TypeError, orjson.JSONEncodeError):  # an integer past 64 bits
            text = b'{"a":1}'
        return text[: draw(st.integers(0, len(text)))].decode("utf-8", "replace")
    return draw(st.one_of(nasty_text, st.sampled_from(["{", "[]", "null", "1", '{"a":NaN}'])))


payloads = st.one_of(
    st.dictionaries(nasty_text, json_like, max_size=5),
    st.builds(nested, st.integers(6, 10)),
    st.builds(lambda n: {"s": "x" * n}, st.integers(2030, 2050)),
    json_texts(),
    json_like,
    odd_objects,
)
identifiers = st.one_of(
    st.sampled_from(["order-1", "order-2", "seed-1", " ", "\t", "a\x00b"]),
    nasty_text,
    long_text,
    st.integers(),
    st.none(),
    st.binary(max_size=4),
    st.lists(st.text(max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),  # unhashable
)
type_names = st.one_of(
    st.sampled_from(["order.placed", "seed", "a" * 12, "a" * 13, "tab\there"]), identifiers
)
_zones = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), None])
timestamps = st.one_of(
    st.none(),
    st.builds(
        lambda d, z: d.replace(tzinfo=z),
        st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)),
        _zones,
    ),
    st.sampled_from(
        [
            "2026-01-31T12:00:00Z",
            "2026-01-31T12:00:00",
            "2026-13-01T00:00:00Z",
            "yesterday",
            "",
            "2026-01-31T12:00:00+99:00",
            pd.Timestamp("2026-01-01", tz="UTC"),
            pd.Timestamp("2026-01-01"),
        ]
    ),
    nasty_text,
    st.integers(),
    st.floats(),
)
event_ids = st.one_of(
    st.none(),
    st.uuids(),
    st.uuids().map(str),
    st.binary(min_size=15, max_size=17),
    nasty_text,
    st.integers(),
)
versions = st.one_of(st.none(), st.integers(), st.booleans(), st.floats(), st.text(max_size=3))


# -- append -------------------------------------------------------------------------------------


GOOD_CALL: dict[str, st.SearchStrategy[Any]] = {
    "event_type": st.sampled_from(["order.placed", "order.paid"]),
    "entity_id": st.sampled_from(["order-1", "order-2", "é-3"]),
    "payload": st.dictionaries(st.text(max_size=4), st.integers(-9, 9), max_size=3),
    "metadata": st.none(),
    "timestamp": st.none(),
    "event_id": st.none(),
    "expected_version": st.none(),
}
GARBAGE: dict[str, st.SearchStrategy[Any]] = {
    "event_type": type_names,
    "entity_id": identifiers,
    "payload": payloads,
    "metadata": payloads,
    "timestamp": timestamps,
    "event_id": event_ids,
    "expected_version": versions,
}


@st.composite
def append_calls(draw: st.DrawFn) -> dict[str, Any]:
    """Each argument is garbage one time in three, so that calls get past the first
    check often and every check is reached."""
    return {
        name: draw(GARBAGE[name] if draw(st.integers(0, 2)) == 0 else good)
        for name, good in GOOD_CALL.items()
    }


def check_append(store: asl.EventStore, call: dict[str, Any]) -> None:
    count = store.stats()["events"]
    event = rejected_or_done(store, lambda: store.append(**call))
    if event is None:
        return
    if store.stats()["events"] == count:  # a retry of a stored event_id: the stored event
        assert call["event_id"] is not None and store.get(event.event_id) == event
        return
    # What was accepted reads back as it was acknowledged.
    stored = store.get(event.event_id)
    assert (stored.sequence, stored.version, stored.payload) == (
        event.sequence,
        event.version,
        event.payload,
    )
    assert store.events(entity_id=call["entity_id"], reverse=True, limit=1).first(1)[0] == stored


def test_append_fuzzed_arguments_only_raise_documented_errors(fuzz_store):
    @FUZZ
    @given(append_calls())
    def run(call: dict[str, Any]) -> None:
        check_append(fuzz_store, call)

    run()


@pytest.mark.slow
def test_append_fuzzed_arguments_only_raise_documented_errors_long(fuzz_store):
    @SLOW_FUZZ
    @given(append_calls())
    def run(call: dict[str, Any]) -> None:
        check_append(fuzz_store, call)

    run()


# -- append_batch -------------------------------------------------------------------------------


@st.composite
def batch_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows that are mostly right, with a few wrong values (or keys) among them."""
    n = draw(st.integers(0, 6))
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {
            "event_type": draw(st.sampled_from(["order.placed", "order.paid"])),
            "entity_id": draw(st.sampled_from(["order-1", "order-2", "order-3"])),
            "payload": draw(st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2)),
        }
        for key, values in (
            (
                "timestamp",
                st.sampled_from(["2026-01-01T00:00:00Z", dt.datetime(2026, 1, 2, tzinfo=dt.UTC)]),
            ),
            ("metadata", st.just({"source": "fuzz"})),
            ("event_id", st.uuids()),
        ):
            if draw(st.booleans()):
                row[key] = draw(values)
        if draw(st.integers(0, 7)) == 0:  # one value made wrong
            key, bad = draw(
                st.sampled_from(
                    [
                        ("event_type", type_names),
                        ("entity_id", identifiers),
                        ("payload", payloads),
                        ("metadata", payloads),
                        ("timestamp", timestamps),
                        ("event_id", event_ids),
                        ("bogus", st.integers()),
                    ]
                )
            )
            row[key] = draw(bad)
        rows.append(row)
    return rows


def as_frame(rows: list[dict[str, Any]]) -> pd.DataFrame | None:
    """The rows as a DataFrame, or None if pandas cannot hold them (its Arrow-backed
    strings refuse lone surrogates: the caller's problem, not the store's)."""
    try:
        return (
            pd.DataFrame(rows)
            if rows
            else pd.DataFrame(columns=["event_type", "entity_id", "payload"])
        )
    except (pa.ArrowException, UnicodeError):
        return None


def arrow_of(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table with every key of any row as a column (from_pylist looks only at
    the first row)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({k: [r.get(k) for r in rows] for k in keys})


def as_arrow(rows: list[dict[str, Any]]) -> pa.Table | None:
    """The rows as an Arrow table, or None if Arrow cannot hold them (the caller's problem,
    not the store's)."""
    try:
        return arrow_of(rows)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError):
        return None


def check_batch(
    store: asl.EventStore, rows: list[dict[str, Any]], shape: str, expected: Any
) -> None:
    data: Any = rows
    if shape == "frame":
        data = as_frame(rows)
        if data is None:
            data = rows
    elif shape == "arrow":
        data = as_arrow(rows)
        if data is None:
            data = rows
    elif shape == "generator":
        data = (row for row in rows)
    result = rejected_or_done(store, lambda: store.append_batch(data, expected_versions=expected))
    if result is None:
        return
    assert result.count + result.duplicates == len(rows)
    if result.count:
        got = store.events(after=result.first_sequence - 1, limit=result.count).to_arrow()
        assert got.column("sequence").to_pylist() == list(
            range(result.first_sequence, result.last_sequence + 1)
        )


expected_versions = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.dictionaries(st.sampled_from(["order-1", "order-2", "nobody"]), versions, max_size=2),
    st.dictionaries(
        identifiers.filter(lambda v: isinstance(v, str | int)), st.integers(0, 3), max_size=1
    ),
    st.integers(),
    st.lists(st.integers(), max_size=2),
)


def test_append_batch_fuzzed_rows_only_raise_documented_errors(fuzz_store):
    @FUZZ
    @given(
        batch_rows(), st.sampled_from(["list", "frame", "arrow", "generator"]), expected_versions
    )
    def run(rows: list[dict[str, Any]], shape: str, expected: Any) -> None:
        check_batch(fuzz_store, rows, shape, expected)

    run()


@pytest.mark.slow
def test_append_batch_fuzzed_rows_only_raise_documented_errors_long(fuzz_store):
    @SLOW_FUZZ
    @given(
        batch_rows(), st.sampled_from(["list", "frame", "arrow", "generator"]), expected_versions
    )
    def run(rows: list[dict[str, Any]], shape: str, expected: Any) -> None:
        check_batch(fuzz_store, rows, shape, expected)

    run()


# Arrow columns of every kind a caller may hand over, including buffers that are not UTF-8.


def raw_strings(values: list[bytes | None]) -> pa.Array:
    """A string array straight from buffers: Arrow does not check that they are UTF-8."""
    offsets = np.zeros(len(values) + 1, np.int32)
    np.cumsum([len(v or b"") for v in values], out=offsets[1:])
    valid = np.array([v is not None for v in values], np.bool_)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    data = pa.py_buffer(b"".join(v or b"" for v in values))
    return pa.Array.from_buffers(
        pa.string(), len(values), [bitmap, pa.py_buffer(offsets.tobytes()), data]
    )


@st.composite
def arrow_columns(draw: st.DrawFn, n: int, good: list[str]) -> pa.Array:
    kind = draw(
        st.sampled_from(["string", "large", "dict", "raw", "ints", "nulls", "binary", "view"])
    )
    if kind == "string":
        return pa.array(good, pa.string())
    if kind == "large":
        return pa.array(good, pa.large_string())
    if kind == "dict":
        return pa.array(good).dictionary_encode()
    if kind == "raw":
        values = [g.encode() for g in good]
        if n:
            values[draw(st.integers(0, n - 1))] = draw(st.one_of(st.binary(max_size=6), st.none()))
        return raw_strings(values)
    if kind == "ints":
        return pa.array(range(n), pa.int64())
    if kind == "nulls":
        return pa.nulls(n)
    if kind == "binary":
        return pa.array([g.encode() for g in good], pa.binary())
    return pa.array(good, pa.string_view())


@st.composite
def arrow_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 4))
    types = [draw(st.sampled_from(["a", "b"])) for _ in range(n)]
    ids = [draw(st.sampled_from(["x", "y", "é"])) for _ in range(n)]
    bodies = [orjson.dumps({"i": i}).decode() for i in range(n)]
    columns: dict[str, pa.Array] = {
        "event_type": draw(arrow_columns(n, types)),
        "entity_id": draw(arrow_columns(n, ids)),
        "payload": draw(
            st.one_of(
                arrow_columns(n, bodies),
                st.just(pa.array([{"i": i, "f": math.inf if i == 1 else 0.5} for i in range(n)])),
            )
        ),
    }
    if draw(st.booleans()):
        times = ["2026-01-01T00:00:00Z"] * n
        columns["timestamp"] = draw(
            st.one_of(
                arrow_columns(n, times),
                st.just(pa.array([0] * n, pa.timestamp("us"))),
                st.just(pa.array([0] * n, pa.timestamp("ns", tz="UTC"))),
                st.just(pa.array([2**62] * n, pa.timestamp("s", tz="UTC"))),
            )
        )
    if draw(st.booleans()):
        columns["metadata"] = draw(
            st.one_of(
                arrow_columns(n, ["{}"] * n),
                st.just(pa.array([None if i % 2 else {"m": i} for i in range(n)])),
                st.just(pa.array([None] * n, pa.float64())),
            )
        )
    if draw(st.booleans()):
        columns["event_id"] = draw(
            st.one_of(
                arrow_columns(n, [str(uuid.uuid4()) for _ in range(n)]),
                st.just(pa.array([uuid.uuid4().bytes for _ in range(n)], pa.binary(16))),
            )
        )
    table = pa.table(columns)
    if n and draw(st.booleans()):
        table = table.slice(draw(st.integers(0, n - 1)))
    if draw(st.booleans()):
        table = pa.concat_tables([table, table])  # two chunks
    return table


def test_append_batch_of_fuzzed_arrow_columns_only_raises_documented_errors(fuzz_store):
    @FUZZ
    @given(arrow_tables(), st.booleans())
    def run(table: pa.Table, as_batch: bool) -> None:
        data: Any = table
        if as_batch:
            data = table.combine_chunks().to_batches()[0] if table.num_rows else table
        result = rejected_or_done(fuzz_store, lambda: fuzz_store.append_batch(data))
        if result is not None and result.count:
            # Whatever was accepted reads back as text (the display and pandas paths).
            frame = fuzz_store.events(after=result.first_sequence - 1).to_pandas()
            assert len(frame) == result.count

    run()


# -- limits: at, below and above each boundary ----------------------------------------------------


def _shapes(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The same rows as every input shape append_batch takes (payloads as JSON text)."""
    texts = [{**r, "payload": orjson.dumps(r["payload"]).decode()} for r in rows]
    return {
        "dicts": rows,
        "json-text rows": texts,
        "pandas": pd.DataFrame(texts),
        "arrow": arrow_of(texts),
    }


def _at_row_2(value_for: Callable[[int], dict[str, Any]], **changes: Any) -> list[dict[str, Any]]:
    """Three good rows with ``changes`` made to row 2."""
    rows = [{"event_type": "t", "entity_id": f"e{i}", "payload": {"i": i}} for i in range(3)]
    rows[2] = {**rows[2], **value_for(2), **changes}
    return rows


def _payload_of_size(size: int) -> dict[str, str]:
    """A payload whose JSON text is exactly ``size`` bytes."""
    return {"s": "x" * (size - len('{"s":""}'))}


def _expect_limit(
    store: asl.EventStore, call: Callable[[], Any], field: str, setting: str, row: int | None
) -> None:
    before = fingerprint(store)
    with pytest.raises(asl.InvalidEvent) as info:
        call()
    message = str(info.value)
    assert info.value.field == field and info.value.row == row, message
    assert setting in message and "limit" in message, message
    assert same(before, fingerprint(store))


LIMIT_CASES = {
    # setting: (field, a payload/metadata/id/type at exactly the limit given the setting)
    "max_payload_bytes": ("payload", lambda limit: {"payload": _payload_of_size(limit)}),
    "max_metadata_bytes": ("metadata", lambda limit: {"metadata": _payload_of_size(limit)}),
    "max_entity_id_bytes": (
        "entity_id",
        lambda limit: {"entity_id": "é" * (limit // 2) + "x" * (limit % 2)},
    ),
    "max_event_type_chars": ("event_type", lambda limit: {"event_type": "é" * limit}),
    "max_json_depth": ("payload", lambda limit: {"payload": nested(limit)}),
}
# Each limit at a small value and at its default.
LIMIT_VALUES = [
    ("max_payload_bytes", 64),
    ("max_payload_bytes", 1024 * 1024),
    ("max_metadata_bytes", 64),
    ("max_metadata_bytes", 64 * 1024),
    ("max_entity_id_bytes", 9),
    ("max_entity_id_bytes", 255),
    ("max_event_type_chars", 7),
    ("max_event_type_chars", 255),
    ("max_json_depth", 5),
    ("max_json_depth", 64),
]


def _one_more(setting: str, values: dict[str, Any]) -> dict[str, Any]:
    """The same value one unit past the limit."""
    if setting in ("max_payload_bytes", "max_metadata_bytes"):
        key = "payload" if setting == "max_payload_bytes" else "metadata"
        return {key: {"s": values[key]["s"] + "x"}}
    if setting == "max_entity_id_bytes":
        return {"entity_id": values["entity_id"] + "x"}
    if setting == "max_event_type_chars":
        return {"event_type": values["event_type"] + "x"}
    return {"payload": {"a": values["payload"]}}


@pytest.mark.parametrize(("setting", "limit"), LIMIT_VALUES)
def test_each_limit_holds_at_below_and_above_its_boundary(store_factory, setting, limit):
    store = store_factory(**{setting: limit})
    field, at_limit = LIMIT_CASES[setting]
    at = at_limit(limit)
    over = _one_more(setting, at)
    base = {"event_type": "t", "entity_id": "e", "payload": {}}
    # Single appends: at the limit (and so below it) is accepted, one past is refused.
    assert store.append(**{**base, **at}).version == 1
    _expect_limit(store, lambda: store.append(**{**base, **over}), field, setting, None)
    # Batches, in each shape: the bad row is named.
    for shape, data in _shapes(_at_row_2(lambda i: at)).items():
        result = store.append_batch(data)
        assert result.count == 3, shape
    for shape, data in _shapes(_at_row_2(lambda i: over)).items():
        _expect_limit(store, lambda data=data: store.append_batch(data), field, setting, 2)
        assert shape  # (named in the failure's traceback)
    # JSON text at the limit and past it, as given.
    if field in ("payload", "metadata") and setting != "max_json_depth":
        text = orjson.dumps(at[field]).decode()
        assert len(text.encode()) == limit
        store.append(**{**base, field: text})
        _expect_limit(
            store,
            lambda: store.append(**{**base, field: orjson.dumps(over[field])}),
            field,
            setting,
            None,
        )
    if setting == "max_json_depth":
        store.append(**{**base, "payload": nested_text(limit)})
        _expect_limit(
            store,
            lambda: store.append(**{**base, "payload": nested_text(limit + 1)}),
            field,
            setting,
            None,
        )
    assert store.verify().ok


# -- the size of one batch ----------------------------------------------------------------------


def test_the_batch_size_limit_is_the_wal_record_limit():
    assert inputs.MAX_BATCH_RECORD_BYTES == wal.MAX_RECORD_BYTES


def _record_bytes(rows: list[dict[str, Any]]) -> int:
    """The encoded size of a batch record, counted from its rows as the docstring says."""
    size = inputs._RECORD_BYTES_FIXED
    for r in rows:
        size += inputs._RECORD_BYTES_PER_EVENT + len(r["event_type"].encode())
        size += len(r["entity_id"].encode()) + len(orjson.dumps(r["payload"]))
        size += len(orjson.dumps(r.get("metadata", {})))
    return size


def _wal_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in (path / "wal").glob("*.wal"))


def test_a_batch_is_refused_past_the_record_limit_naming_the_row(tmp_path, monkeypatch):
    rows = [
        {"event_type": "t" * (i % 3 + 1), "entity_id": f"e{i}", "payload": {"s": "x" * i}}
        for i in range(40)
    ]
    rows[7]["metadata"] = {"m": 1}
    size = _record_bytes(rows)
    path = tmp_path / "s.events"
    store = asl.open(path)
    # The count is exact: it is what the log grows by (plus the 8-byte frame header).
    before = _wal_bytes(path)
    store.append_batch(rows[:20])
    assert _wal_bytes(path) - before == _record_bytes(rows[:20]) + 8
    # At the limit the batch is written; one byte under it, refused, naming the row that
    # crosses it, in every input shape.
    monkeypatch.setattr(inputs, "MAX_BATCH_RECORD_BYTES", size)
    for shape, data in _shapes(rows).items():
        if shape != "dicts":
            continue
        assert store.append_batch(data).count == 40
    monkeypatch.setattr(inputs, "MAX_BATCH_RECORD_BYTES", size - 1)
    for shape, data in _shapes(rows).items():
        if shape == "json-text rows":  # the same bytes as "dicts"
            continue
        before_fp = fingerprint(store)
        with pytest.raises(asl.InvalidEvent, match="smaller batches") as info:
            store.append_batch(data)
        assert info.value.row == 39, shape
        assert same(before_fp, fingerprint(store))
    rows[10]["payload"] = {"s": "y" * 10_000}
    with pytest.raises(asl.InvalidEvent) as info:
        store.append_batch(rows)
    assert info.value.row == 10
    store.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_batch_over_two_gib_is_refused_before_anything_is_written(tmp_path):
    # ~2.15 GB of JSON in one Arrow table: before the limit this was written as one WAL
    # record the log could not read back (opening the store then scanned for ever).
    n = 2_020
    payload = '{"a":"' + "x" * 999_990 + '"}'
    meta = '{"m":"' + "y" * 64_990 + '"}'
    table = pa.table(
        {
            "event_type": ["big"] * n,
            "entity_id": [f"e{i}" for i in range(n)],
            "payload": pa.array([payload] * n, pa.large_string()),
            "metadata": pa.array([meta] * n, pa.large_string()),
        }
    )
    path = tmp_path / "big.events"
    with asl.open(path) as store:
        with pytest.raises(asl.InvalidEvent, match="smaller batches") as info:
            store.append_batch(table)
        assert 2_000 < info.value.row < n
        assert store.stats()["events"] == 0
        assert store.append_batch(table.slice(0, 1_000)).count == 1_000
    with asl.open(path) as store:
        assert store.stats()["events"] == 1_000
        assert store.verify().ok


# -- what the fuzzing found, one case each ------------------------------------------------------


def _row(**changes: Any) -> dict[str, Any]:
    return {"event_type": "t", "entity_id": "e", "payload": {"n": 1}, **changes}


FOUND_REFUSED = {
    "lone surrogate in a listed entity id": ([_row(), _row(entity_id="\ud800")], 1, "entity_id"),
    "lone surrogate in a listed event type": ([_row(event_type="a\udc00")], 0, "event_type"),
    "Arrow entity ids that are not UTF-8": (
        pa.table(
            {
                "event_type": ["t", "t"],
                "entity_id": raw_strings([b"ok", b"\xff"]),
                "payload": ["{}", "{}"],
            }
        ),
        1,
        "entity_id",
    ),
    "Arrow event types that are not UTF-8": (
        pa.table({"event_type": raw_strings([b"\xc3"]), "entity_id": ["e"], "payload": ["{}"]}),
        0,
        "event_type",
    ),
    "Arrow timestamps that are not UTF-8": (
        pa.table(
            {
                "event_type": ["t"],
                "entity_id": ["e"],
                "payload": ["{}"],
                "timestamp": raw_strings([b"\xff"]),
            }
        ),
        0,
        "timestamp",
    ),
    "Arrow event ids that are not UTF-8": (
        pa.table(
            {
                "event_type": ["t"],
                "entity_id": ["e"],
                "payload": ["{}"],
                "event_id": raw_strings([b"\xff"]),
            }
        ),
        0,
        "event_id",
    ),
    "a DataFrame with two payload columns": (
        pd.DataFrame(
            [["t", "e", "{}", "{}"]], columns=["event_type", "entity_id", "payload", "payload"]
        ),
        None,
        "payload",
    ),
    "a metadata column of numbers with a gap": (
        pd.DataFrame(
            {
                "event_type": ["t", "t"],
                "entity_id": ["e", "e"],
                "payload": ["{}", "{}"],
                "metadata": [math.nan, 1.0],
            }
        ),
        1,
        "metadata",
    ),
}


@pytest.mark.parametrize("case", FOUND_REFUSED)
def test_found_by_fuzzing_bad_batches_are_invalid_event_naming_row_and_field(store, case):
    data, row, field = FOUND_REFUSED[case]
    before = fingerprint(store)
    with pytest.raises(asl.InvalidEvent) as info:
        store.append_batch(data)
    assert (info.value.row, info.value.field) == (row, field)
    assert same(before, fingerprint(store))
    assert len(store.events().to_pandas()) == 0  # nothing unreadable was stored


FOUND_ACCEPTED = {
    "pandas NaN where some rows have no metadata": pd.DataFrame(
        [_row(payload="{}"), _row(payload="{}", metadata={"m": 1})]
    ),
    "an Arrow metadata column of nulls only": pa.table(
        {
            "event_type": ["t"],
            "entity_id": ["e"],
            "payload": ["{}"],
            "metadata": pa.array([None], pa.int64()),
        }
    ),
    "Arrow metadata structs with null rows": pa.table(
        {
            "event_type": ["t", "t"],
            "entity_id": ["e", "e"],
            "payload": ["{}", "{}"],
            "metadata": [None, {"m": 1}],
        }
    ),
    "pandas NaN where some rows have no timestamp": pd.DataFrame(
        [_row(payload="{}"), _row(payload="{}", timestamp="2026-01-01T00:00:00Z")]
    ),
}


@pytest.mark.parametrize("case", FOUND_ACCEPTED)
def test_found_by_fuzzing_missing_optional_values_are_defaults(store, case):
    data = FOUND_ACCEPTED[case]
    assert store.append_batch(data).count == len(data)
    metadata = [e.metadata for e in store.events()]
    assert metadata[0] == {} and all(m in ({}, {"m": 1}) for m in metadata)
