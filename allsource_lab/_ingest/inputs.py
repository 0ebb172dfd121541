"""Turning what callers pass to ``append``/``append_batch`` into checked bytes and columns.

Everything here either returns clean values or raises ``InvalidEvent`` naming the row
and field; it never touches the store, so a rejected input cannot change it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._kernels import jsontext
from allsource_lab._storage.arrowbuf import fixed_values, string_buffers
from allsource_lab.errors import InvalidEvent
from allsource_lab.settings import Settings

__all__ = [
    "MISSING_TIME",
    "BatchInput",
    "check_entity_id",
    "check_event_type",
    "encode_json_object",
    "normalize_batch",
    "parse_event_id",
    "parse_time",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MISSING_TIME = np.iinfo(np.int64).min
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_COLUMNS = ("event_type", "entity_id", "payload", "timestamp", "metadata", "event_id")


# -- single values -------------------------------------------------------------------------


def check_event_type(value: object, settings: Settings, row: int | None = None) -> bytes:
    """The UTF-8 bytes of a valid event type.

    >>> check_event_type("order.placed", Settings())
    b'order.placed'
    """
    if not isinstance(value, str):
        raise InvalidEvent(
            f"event_type must be a string, not {type(value).__name__}", row=row, field="event_type"
        )
    if not value:
        raise InvalidEvent("event_type must not be empty", row=row, field="event_type")
    if len(value) > settings.max_event_type_chars:
        raise InvalidEvent(
            f"event_type is {len(value)} characters; the limit is "
            f"{settings.max_event_type_chars} (setting max_event_type_chars)",
            row=row,
            field="event_type",
        )
    bad = _CONTROL.search(value)
    if bad is not None:
        raise InvalidEvent(
            f"event_type contains a control character {bad.group()!r} at position {bad.start()}",
            row=row,
            field="event_type",
        )
    return _utf8(value, "event_type", row)


def check_entity_id(value: object, settings: Settings, row: int | None = None) -> bytes:
    """The UTF-8 bytes of a valid entity id.

    >>> check_entity_id("order-17", Settings())
    b'order-17'
    """
    if not isinstance(value, str):
        raise InvalidEvent(
            f"entity_id must be a string, not {type(value).__name__}", row=row, field="entity_id"
        )
    raw = _utf8(value, "entity_id", row)
    if not raw:
        raise InvalidEvent("entity_id must not be empty", row=row, field="entity_id")
    if len(raw) > settings.max_entity_id_bytes:
        raise InvalidEvent(
            f"entity_id is {len(raw)} bytes of UTF-8; the limit is "
            f"{settings.max_entity_id_bytes} (setting max_entity_id_bytes)",
            row=row,
            field="entity_id",
        )
    return raw


def _utf8(value: str, field: str, row: int | None) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidEvent(
            f"{field} is not valid Unicode text (lone surrogate at position {exc.start})",
            row=row,
            field=field,
        ) from None


def _nonfinite_path(value: Any, path: str = "$") -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for k, v in value.items():
            found = _nonfinite_path(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _nonfinite_path(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _depth_problem(data: bytes, settings: Settings) -> str | None:
    # Braces can only nest as deep as there are braces: most payloads skip the scan.
    if data.count(b"{") + data.count(b"[") <= settings.max_json_depth:
        return None
    arr = np.frombuffer(data, np.uint8)
    row, code, offset = jsontext.check_objects(
        arr, np.array([0, len(data)], np.int64), settings.max_json_depth
    )
    return None if row < 0 else _json_problem(code, offset, settings)


def _json_problem(code: int, offset: int, settings: Settings) -> str:
    """What ``jsontext.check_objects`` found, with the limit and its setting when too deep."""
    text = f"{jsontext.describe(code)} (at byte {offset})"
    if code == jsontext.TOO_DEEP:
        text += (
            f"; the limit is {settings.max_json_depth} levels (setting max_json_depth, at "
            f"most {jsontext.ORJSON_MAX_DEPTH})"
        )
    return text


def _too_large(size: int, limit: int, field: str) -> str:
    return (
        f"is {size} bytes of JSON; the limit is {limit} (setting max_{field}_bytes, e.g. "
        f"asl.open(path, max_{field}_bytes=...))"
    )


def encode_json_object(
    value: object, field: str, settings: Settings, row: int | None = None
) -> bytes:
    """The JSON text of a payload or metadata object, checked.

    A dict is encoded; ``str``/``bytes`` must already be JSON text of an object and is
    kept as given. NaN and Infinity are refused (they are not JSON), as are nesting past
    ``max_json_depth`` and texts past the size limit.

    >>> encode_json_object({"a": 1}, "payload", Settings())
    b'{"a":1}'
    >>> encode_json_object('{"a": [1, 2]}', "payload", Settings())
    b'{"a": [1, 2]}'
    """
    limit = settings.max_payload_bytes if field == "payload" else settings.max_metadata_bytes
    if isinstance(value, dict):
        try:
            data = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise InvalidEvent(f"cannot be encoded as JSON: {exc}", row=row, field=field) from None
        # orjson writes NaN and Infinity as null; only then is the slow walk needed.
        if b"null" in data:
            where = _nonfinite_path(value)
            if where is not None:
                raise InvalidEvent(
                    f"NaN/Infinity at {where} is not valid JSON; use null or a finite number",
                    row=row,
                    field=field,
                )
    elif isinstance(value, str | bytes | bytearray | memoryview):
        data = _utf8(value, field, row) if isinstance(value, str) else bytes(value)
        arr = np.frombuffer(data, np.uint8)
        bad_row, code, offset = jsontext.check_objects(
            arr, np.array([0, len(data)], np.int64), settings.max_json_depth
        )
        if bad_row >= 0:
            raise InvalidEvent(_json_problem(code, offset, settings), row=row, field=field)
    else:
        raise InvalidEvent(
            f"must be a JSON object (a dict or JSON text), not {type(value).__name__}",
            row=row,
            field=field,
        )
    if len(data) > limit:
        raise InvalidEvent(_too_large(len(data), limit, field), row=row, field=field)
    if isinstance(value, dict):
        problem = _depth_problem(data, settings)
        if problem is not None:
            raise InvalidEvent(problem, row=row, field=field)
    return data


def parse_time(value: object, field: str = "timestamp", row: int | None = None) -> int:
    """Microseconds since the epoch of an aware datetime, pandas Timestamp or ISO-8601 text.

    Naive times are refused: an event time must say which clock it is on.

    >>> parse_time("1970-01-01T00:00:01Z")
    1000000
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(
                f"{value!r} is not an ISO-8601 time (e.g. '2026-01-31T12:00:00Z')",
                row=row,
                field=field,
            ) from None
    if not isinstance(value, dt.datetime):
        raise InvalidEvent(
            f"must be a timezone-aware datetime or ISO-8601 text, not {type(value).__name__}",
            row=row,
            field=field,
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEvent(
            f"{value.isoformat()} has no timezone; give an aware time (e.g. with "
            "tzinfo=datetime.UTC, or a 'Z' suffix)",
            row=row,
            field=field,
        )
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_event_id(value: object, row: int | None = None) -> bytes:
    """The 16 bytes of a caller-supplied event id (UUID, its text, or 16 raw bytes).

    >>> parse_event_id("00000000-0000-0000-0000-000000000001")[-1]
    1
    """
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, bytes) and len(value) == 16:
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value).bytes
        except ValueError:
            pass
    raise InvalidEvent(
        f"{value!r} is not a UUID (give a uuid.UUID, its text form, or 16 bytes)",
        row=row,
        field="event_id",
    )


# -- batches -------------------------------------------------------------------------------


@dataclass(slots=True)
class BatchInput:
    """A checked batch: Arrow strings for ids and types, JSON text as (data, offsets)."""

    n: int
    event_type: pa.Array
    entity_id: pa.Array
    payload: tuple[np.ndarray, np.ndarray]  # (data, offsets)
    metadata: tuple[np.ndarray, np.ndarray] | None  # None: every row is {}
    timestamp: np.ndarray | None  # int64 us, MISSING_TIME where not given
    event_id: np.ndarray | None  # uint8, 16 per row; rows not given are all zero
    event_id_given: np.ndarray | None  # bool per row
    schema_version: np.ndarray | None = None  # int32 per row, -1 = none; None: all none
    # event_type dictionary-encoded, as the check found it: (int32 code per row, the
    # distinct types as a string array). The reader numbers the types from it instead of
    # hashing every row again.
    type_codes: tuple[np.ndarray, pa.Array] | None = None
    # The payload as the Arrow string array it came in, if it did (the same bytes as
    # ``payload``): the stored batch uses it as it is.
    payload_array: pa.Array | None = None


_Text = tuple[np.ndarray, np.ndarray]  # (data, offsets) of JSON texts


def take_rows(batch: BatchInput, rows: np.ndarray) -> BatchInput:
    """The batch's ``rows`` (ascending row numbers), as a batch of their own."""
    from allsource_lab._storage.arrowbuf import string_array_from_buffers, string_buffers

    idx = pa.array(rows, pa.int64())

    def take_text(
        col: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if col is None:
            return None
        taken = string_array_from_buffers(*col).take(idx)
        data, offsets = string_buffers(taken)
        return data, offsets

    ids = None if batch.event_id is None else batch.event_id.reshape(-1, 16)[rows].reshape(-1)
    payload = take_text(batch.payload)
    assert payload is not None
    return BatchInput(
        n=len(rows),
        event_type=batch.event_type.take(idx),
        entity_id=batch.entity_id.take(idx),
        payload=payload,
        metadata=take_text(batch.metadata),
        timestamp=None if batch.timestamp is None else batch.timestamp[rows],
        event_id=ids,
        event_id_given=None if batch.event_id_given is None else batch.event_id_given[rows],
        schema_version=None if batch.schema_version is None else batch.schema_version[rows],
        type_codes=(
            None if batch.type_codes is None else (batch.type_codes[0][rows], batch.type_codes[1])
        ),
    )


def _columns(data: object) -> tuple[int, dict[str, Any]]:
    """Row count and each known column as a pyarrow array or a Python list."""
    # A DataFrame can only come from a process that imported pandas already; importing it
    # here for a check would cost every other kind of input ~0.3-1.5 s on its first call.
    pd = sys.modules.get("pandas")

    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        cols = {name: data.column(name) for name in _COLUMNS if name in data.column_names}
        return data.num_rows, cols
    if pd is not None and isinstance(data, pd.DataFrame):
        cols = {}
        for name in _COLUMNS:
            if name in data.columns:
                series = data[name]
                if isinstance(series, pd.DataFrame):  # a name given to several columns
                    raise InvalidEvent(
                        f"the DataFrame has {series.shape[1]} columns named {name!r}; keep one",
                        field=name,
                    )
                if series.dtype == object:
                    # pandas fills a value missing from some rows with NaN (or NA/NaT):
                    # null, like None, so an optional column may be given for some rows.
                    cols[name] = series.where(series.notna(), None).tolist()
                else:
                    try:
                        cols[name] = pa.array(series)
                    except (pa.ArrowException, TypeError, ValueError):
                        cols[name] = series.tolist()
        return len(data), cols
    if isinstance(data, str | bytes | Mapping):
        raise InvalidEvent(
            "append_batch takes a DataFrame, a pyarrow Table/RecordBatch, or an iterable "
            f"of dicts, not {type(data).__name__}"
        )
    if not isinstance(data, Iterable):
        raise InvalidEvent(
            "append_batch takes a DataFrame, a pyarrow Table/RecordBatch, or an iterable "
            f"of dicts, not {type(data).__name__}"
        )
    rows = list(data)
    lists: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidEvent(f"each row must be a dict, not {type(row).__name__}", row=i)
        unknown = set(row) - set(_COLUMNS)
        if unknown:
            raise InvalidEvent(
                f"unknown column(s) {sorted(unknown)}; expected some of {list(_COLUMNS)}", row=i
            )
        for name in _COLUMNS:
            lists[name].append(row.get(name))
    cols = {name: values for name, values in lists.items() if any(v is not None for v in values)}
    for name in ("event_type", "entity_id", "payload"):
        cols.setdefault(name, lists[name])
    return len(rows), cols


def _one_array(col: Any) -> Any:
    """A ChunkedArray as one Array; a single chunk is taken as is (combining copies it)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _first_null(col: Any) -> int | None:
    if isinstance(col, list):
        for i, v in enumerate(col):
            if v is None:
                return i
        return None
    if col.null_count == 0:
        return None
    mask = pc.is_null(col)
    return int(pc.index(mask, True).as_py())


def _check_utf8(arr: pa.Array, field: str) -> None:
    """Raise InvalidEvent naming the first row of a string array that is not UTF-8.

    Arrow trusts the buffers of an array built from them (``Array.from_buffers``, IPC,
    Parquet written elsewhere) without checking; text that is kept must read back, so it
    is checked here (~4 ms per 1M short strings, measured).
    """
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        for i in range(len(arr)):
            try:
                arr[i].as_py()
            except UnicodeDecodeError as exc:
                raise InvalidEvent(
                    f"is not valid UTF-8 text (byte {exc.start})", row=i, field=field
                ) from None
        raise InvalidEvent(
            f"{field} column is not a valid Arrow string array", field=field
        ) from None


def _string_column(col: Any, field: str, check: Any, settings: Settings, n: int) -> pa.Array:
    """A checked pyarrow string array for event_type or entity_id."""
    null = _first_null(col)
    if null is not None:
        raise InvalidEvent(f"{field} is required (got null)", row=null, field=field)
    if isinstance(col, list):
        # Python values: check the types before Arrow sees them; text that cannot be UTF-8
        # (a lone surrogate) makes Arrow raise, and then each value says which row it is.
        for i, v in enumerate(col):
            if not isinstance(v, str):
                check(v, settings, i)
        try:
            arr = pa.array(col, pa.string())
        except (UnicodeError, pa.ArrowException):
            for i, v in enumerate(col):
                _utf8(v, field, i)
            raise
    else:
        arr = _one_array(col)
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
            arr = arr.cast(pa.string())
        if not pa.types.is_string(arr.type):
            raise InvalidEvent(
                f"{field} column must hold strings, not {arr.type}", row=0, field=field
            )
        _check_utf8(arr, field)
    return arr


def _event_types(
    col: Any, settings: Settings, n: int
) -> tuple[pa.Array, tuple[np.ndarray, pa.Array]]:
    """The checked event_type column, with its codes (see ``BatchInput.type_codes``).

    The distinct types are few and checked in Python; encoding them once also numbers
    every row, which the reader would otherwise do by hashing each row again.
    """
    arr = _string_column(col, "event_type", check_event_type, settings, n)
    encoded = pc.dictionary_encode(arr)
    codes = fixed_values(encoded.indices)
    for code, value in enumerate(encoded.dictionary.to_pylist()):
        try:
            check_event_type(value, settings)
        except InvalidEvent as exc:
            row = int(np.argmax(codes == code))
            raise InvalidEvent(str(exc).split(": ", 1)[-1], row=row, field="event_type") from None
    return arr, (codes, encoded.dictionary)


def _entity_ids(col: Any, settings: Settings, n: int) -> pa.Array:
    """The checked entity_id column: non-empty text of at most ``max_entity_id_bytes``
    (checked in bulk from the offsets; the only rule besides being text)."""
    arr = _string_column(col, "entity_id", check_entity_id, settings, n)
    if len(arr):
        start = arr.offset
        offsets = np.frombuffer(arr.buffers()[1], np.int32)[start : start + len(arr) + 1]
        sizes = np.diff(offsets)
        if int(sizes.min()) == 0 or int(sizes.max()) > settings.max_entity_id_bytes:
            row = int(np.argmax((sizes == 0) | (sizes > settings.max_entity_id_bytes)))
            check_entity_id(arr[row].as_py(), settings, row)
    return arr


def _json_column(
    col: Any, field: str, settings: Settings, n: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """JSON text of every row of payload/metadata, checked, as (data, offsets)."""
    if field == "metadata":
        # A missing (null) metadata is {}; a column of nothing but nulls, whatever its type
        # (pandas makes float NaN of missing values), is no metadata at all.
        null = None
        if isinstance(col, list):
            col = [{} if v is None else v for v in col]
        elif col.null_count == len(col):
            return None
        elif col.null_count:
            arr = _one_array(col)
            if isinstance(arr.type, pa.ExtensionType):
                arr = arr.storage
            if pa.types.is_struct(arr.type):
                col = [{} if v is None else v for v in arr.to_pylist()]
            elif _is_jsonish(arr.type):
                col = pc.fill_null(arr.cast(pa.string()), "{}")
            elif pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
                col = pc.fill_null(arr, pa.scalar(b"{}", arr.type))
            else:
                raise InvalidEvent(
                    f"metadata column must hold JSON text or dicts, not {arr.type}",
                    row=_first_non_null(arr),
                    field=field,
                )
    else:
        null = _first_null(col)
    if null is not None:
        raise InvalidEvent(f"{field} is required (got null)", row=null, field=field)
    if isinstance(col, pa.ChunkedArray):
        col = _one_array(col)
    if isinstance(col, pa.Array) and isinstance(col.type, pa.ExtensionType):
        col = col.storage
    if isinstance(col, pa.Array) and pa.types.is_struct(col.type):
        col = col.to_pylist()
    if isinstance(col, list):
        data, offsets = _encode_values(col, field, settings)
    else:
        if not (
            pa.types.is_string(col.type)
            or pa.types.is_large_string(col.type)
            or pa.types.is_binary(col.type)
            or pa.types.is_large_binary(col.type)
        ):
            raise InvalidEvent(
                f"{field} column must hold JSON text or dicts, not {col.type}", row=0, field=field
            )
        data, offsets = string_buffers(col)
        if offsets[0] != 0:
            data = data[offsets[0] : offsets[-1]]
            offsets = offsets - offsets[0]
    limit = settings.max_payload_bytes if field == "payload" else settings.max_metadata_bytes
    sizes = np.diff(offsets)
    if n and int(sizes.max()) > limit:
        row = int(np.argmax(sizes > limit))
        raise InvalidEvent(_too_large(int(sizes[row]), limit, field), row=row, field=field)
    row, code, offset = _check_json_rows(data, offsets, settings.max_json_depth)
    if row >= 0:
        raise InvalidEvent(_json_problem(code, offset, settings), row=row, field=field)
    return data, offsets


_PARALLEL_ROWS = 65_536
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None


def row_chunks(
    fn: Callable[..., T], data: np.ndarray, offsets: np.ndarray, *args: Any
) -> list[tuple[int, T]]:
    """``fn(data, offsets[lo:hi + 1], *args)`` over every core for big columns.

    Returns ``(lo, result)`` per chunk of rows, in row order. ``fn`` must be a numba kernel
    that drops the GIL (every kernel here does); small columns run in one call.
    """
    n = len(offsets) - 1
    workers = min(os.cpu_count() or 1, 4)
    if n < _PARALLEL_ROWS or workers < 2:
        return [(0, fn(data, offsets, *args))]
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="allsource-json")
    bounds = np.linspace(0, n, workers + 1).astype(np.int64).tolist()
    parts = [
        (lo, _pool.submit(fn, data, offsets[lo : hi + 1], *args))
        for lo, hi in itertools.pairwise(bounds)
    ]
    return [(lo, part.result()) for lo, part in parts]


def _check_json_rows(data: np.ndarray, offsets: np.ndarray, depth: int) -> tuple[int, int, int]:
    """``jsontext.check_objects`` over every core for big columns.

    The JSON check is the largest CPU cost of a big batch (~0.3 s per 1M rows on one core).
    """
    for lo, (row, code, offset) in row_chunks(jsontext.check_objects, data, offsets, depth):
        if row >= 0:
            return lo + row, code, offset
    return -1, 0, 0


def _is_jsonish(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or isinstance(t, pa.ExtensionType)


def _encode_values(
    values: list[Any], field: str, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    if all(type(v) is dict for v in values):
        # One orjson call for the whole column, split by a kernel: n Python calls cost
        # more than the encoding itself.
        try:
            dumped = orjson.dumps(values)
        except (TypeError, orjson.JSONEncodeError):
            dumped = None
        if dumped is not None:
            data, offsets = jsontext.split_dumped_objects(np.frombuffer(dumped, np.uint8))
            if b"null" in dumped:
                for i, v in enumerate(values):
                    where = _nonfinite_path(v)
                    if where is not None:
                        raise InvalidEvent(
                            f"NaN/Infinity at {where} is not valid JSON; use null or a "
                            "finite number",
                            row=i,
                            field=field,
                        )
            return data, offsets
    pieces = [encode_json_object(v, field, settings, i) for i, v in enumerate(values)]
    offsets = np.zeros(len(pieces) + 1, np.int64)
    np.cumsum([len(p) for p in pieces], out=offsets[1:])
    return np.frombuffer(b"".join(pieces), np.uint8), offsets


def _time_column(col: Any, n: int) -> np.ndarray:
    if isinstance(col, list):
        out = np.empty(n, np.int64)
        for i, v in enumerate(col):
            out[i] = MISSING_TIME if v is None else parse_time(v, row=i)
        return out
    arr = _one_array(col)
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            row = _first_non_null(arr)
            raise InvalidEvent(
                "timestamp column has no timezone; localize it first (e.g. "
                "df['timestamp'].dt.tz_localize('UTC'))",
                row=row,
                field="timestamp",
            )
        arr = pc.cast(arr, pa.timestamp("us", tz="UTC"), safe=False)
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        _check_utf8(arr, "timestamp")
        try:
            arr = pc.cast(arr, pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            for i, v in enumerate(arr.to_pylist()):
                if v is not None:
                    parse_time(v, row=i)
            raise InvalidEvent("unparseable timestamp", field="timestamp") from None
    elif pa.types.is_null(arr.type):
        return np.full(n, MISSING_TIME, np.int64)
    else:
        raise InvalidEvent(
            f"timestamp column must hold aware datetimes or ISO-8601 text, not {arr.type}",
            row=0,
            field="timestamp",
        )
    values = arr.cast(pa.int64()).fill_null(MISSING_TIME)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _first_non_null(arr: pa.Array) -> int:
    valid = pc.is_valid(arr)
    return int(pc.index(valid, True).as_py()) if pc.any(valid).as_py() else 0


def _id_column(col: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros(n * 16, np.uint8)
    given = np.zeros(n, np.bool_)
    if not isinstance(col, list):
        arr = _one_array(col)
        if isinstance(arr.type, pa.ExtensionType):
            arr = arr.storage
        if pa.types.is_fixed_size_binary(arr.type) and arr.type.byte_width == 16:
            valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), np.bool_)
            filled = arr.fill_null(bytes(16)) if arr.null_count else arr
            buf = filled.buffers()[1]
            raw = np.frombuffer(buf, np.uint8)[filled.offset * 16 : (filled.offset + n) * 16]
            ids[:] = raw
            given[:] = valid
            return ids, given
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            _check_utf8(arr, "event_id")
        col = arr.to_pylist()
    for i, v in enumerate(col):
        if v is not None:
            ids[i * 16 : i * 16 + 16] = np.frombuffer(parse_event_id(v, i), np.uint8)
            given[i] = True
    return ids, given


# A batch is written as one write-ahead-log record, and a record longer than this is
# taken for damage when the log is read back (``wal.MAX_RECORD_BYTES``; a test keeps the
# two equal). The encoded size is known before anything is written: per event, 8 bytes
# each of version and timestamp, 4 of schema version, 2 of partition, 16 of id and 8 of
# offset for each of its four texts, then the texts; plus a 24-byte header and one more
# offset per text column.
MAX_BATCH_RECORD_BYTES = 2**31 - 1
_RECORD_BYTES_PER_EVENT = 8 + 8 + 4 + 2 + 16 + 4 * 8
_RECORD_BYTES_FIXED = 24 + 4 * 8


def _check_record_size(
    event_type: pa.Array, entity_id: pa.Array, payload: _Text, metadata: _Text | None
) -> None:
    """InvalidEvent if the batch cannot be one WAL record, naming the row that overflows."""
    n = len(event_type)
    # Cheap bound first: a batch far under the limit needs no per-row sums.
    texts = event_type.nbytes + entity_id.nbytes + len(payload[0])
    texts += 2 * n if metadata is None else len(metadata[0])
    if _RECORD_BYTES_FIXED + n * _RECORD_BYTES_PER_EVENT + texts <= MAX_BATCH_RECORD_BYTES:
        return
    sizes = np.full(n, _RECORD_BYTES_PER_EVENT, np.int64)
    sizes += np.asarray(pc.binary_length(event_type).to_numpy(zero_copy_only=False), np.int64)
    sizes += np.asarray(pc.binary_length(entity_id).to_numpy(zero_copy_only=False), np.int64)
    sizes += np.diff(payload[1])
    sizes += 2 if metadata is None else np.diff(metadata[1])
    total = np.cumsum(sizes) + _RECORD_BYTES_FIXED
    if total[-1] <= MAX_BATCH_RECORD_BYTES:
        return
    row = int(np.argmax(total > MAX_BATCH_RECORD_BYTES))
    raise InvalidEvent(
        f"the batch is {int(total[-1]):,} bytes encoded, over the {MAX_BATCH_RECORD_BYTES:,}-"
        f"byte limit of one atomic batch (one write-ahead-log record); the rows before "
        "this one fit, so append it in smaller batches",
        row=row,
    )


def normalize_batch(data: object, settings: Settings) -> BatchInput:
    """Check a whole batch and return its columns.

    A batch is written atomically as one log record, so its encoded size (about the
    bytes of its texts plus 70 per event) is limited to ``MAX_BATCH_RECORD_BYTES`` (2 GiB).

    Raises:
        InvalidEvent: naming the first bad row and field; nothing has been written.
    """
    n, cols = _columns(data)
    for name in ("event_type", "entity_id", "payload"):
        if name not in cols:
            raise InvalidEvent(
                f"a batch needs the columns event_type, entity_id and payload; {name!r} is missing",
                field=name,
            )
    event_type, type_codes = _event_types(cols["event_type"], settings, n)
    entity_id = _entity_ids(cols["entity_id"], settings, n)
    payload = _json_column(cols["payload"], "payload", settings, n)
    assert payload is not None
    payload_array = _plain_strings(cols["payload"])
    metadata = (
        _json_column(cols["metadata"], "metadata", settings, n) if "metadata" in cols else None
    )
    _check_record_size(event_type, entity_id, payload, metadata)
    timestamp = _time_column(cols["timestamp"], n) if "timestamp" in cols else None
    event_id = given = None
    if "event_id" in cols:
        event_id, given = _id_column(cols["event_id"], n)
        if not given.any():
            event_id = given = None
    return BatchInput(
        n,
        event_type,
        entity_id,
        payload,
        metadata,
        timestamp,
        event_id,
        given,
        type_codes=type_codes,
        payload_array=payload_array,
    )


def _plain_strings(col: Any) -> pa.Array | None:
    """``col`` itself if it is one Arrow string array (or a json extension array over
    one), else None: a column of that form can be stored as it came."""
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks != 1:
            return None
        col = col.chunk(0)
    if not isinstance(col, pa.Array):
        return None
    if isinstance(col, pa.ExtensionArray):
        col = col.storage
    return col if col.type == pa.string() and not col.null_count else None
