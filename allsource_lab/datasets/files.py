"""Event tables from files of rows: CSV, JSON lines or Parquet.

Each row becomes one event. Its type and entity come from named columns (or one type for
every row), its event time from an optional time column, and its payload from a
``payload`` column of JSON objects or from the other columns, as a JSON object keyed by
column name. An ``event_id`` column is kept, so ingesting a file twice is idempotent; a
``metadata`` column is kept too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab.errors import InvalidEvent

__all__ = ["FILE_FORMATS", "file_events"]

FILE_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_PASSED_THROUGH = ("metadata", "event_id")


def file_events(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    type_col: str = "event_type",
    event_type: str | None = None,
    entity_col: str = "entity_id",
    time_col: str | None = None,
    payload_cols: Sequence[str] | None = None,
    timezone: str | None = None,
) -> pa.Table:
    """A table ``store.append_batch`` takes, one event per row of ``source``.

    ``format`` is ``"csv"``, ``"jsonl"`` or ``"parquet"`` (default: from the suffix).
    ``event_type`` gives every row that type instead of reading ``type_col``.
    ``time_col`` defaults to ``timestamp`` when the file has one; rows without a time get
    the store's clock. Times must say their zone unless ``timezone`` (an IANA name) says
    which one zone-less times are in. The payload is the ``payload`` column when there
    is one, else an object of ``payload_cols`` (default: every column not used above).
    JSON lines keep their values exactly (a key a line lacks stays absent, not null).

    Raises:
        InvalidEvent: a named column is missing, the file is malformed, or times
            without a zone.
        OSError: the file cannot be read.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "orders.csv"
    >>> _ = path.write_text("id,kind,amount\\n7,order.placed,9.5\\n")
    >>> file_events(path, type_col="kind", entity_col="id").to_pylist()
    [{'event_type': 'order.placed', 'entity_id': '7', 'payload': '{"amount":9.5}'}]
    """
    path = Path(source)
    fmt = format or FILE_FORMATS.get(path.suffix.lower())
    if fmt not in ("csv", "jsonl", "parquet"):
        raise InvalidEvent(
            f"cannot tell the format of {path.name!r} from its suffix; give one of "
            "csv, jsonl, parquet"
        )
    rows: _Rows = _JsonLines(path) if fmt == "jsonl" else _Columns(path, fmt)
    names = rows.names
    if time_col is None and "timestamp" in names:
        time_col = "timestamp"

    def need(column: str, hint: str) -> str:
        if column not in names:
            raise InvalidEvent(
                f"{path.name} has no column {column!r}; {hint} (its columns: {', '.join(names)})",
                field=column,
            )
        return column

    used = {entity_col, *_PASSED_THROUGH}
    out: dict[str, Any] = {}
    if event_type is not None:
        out["event_type"] = pa.repeat(event_type, rows.count)
    else:
        hint = "name the type column, or give one type for every row"
        out["event_type"] = rows.text(need(type_col, hint))
        used.add(type_col)
    out["entity_id"] = rows.text(need(entity_col, "name the entity column"))
    if time_col is not None:
        out["timestamp"] = event_times(
            rows.column(need(time_col, "name the time column")), time_col, timezone
        )
        used.add(time_col)
    if payload_cols is None and "payload" in names:
        out["payload"] = rows.payload()
    else:
        if payload_cols is None:
            payload_cols = [c for c in names if c not in used]
        for column in payload_cols:
            need(column, "check the payload column names")
        out["payload"] = rows.objects(list(payload_cols))
    for name in _PASSED_THROUGH:
        if name in names:
            out[name] = rows.column(name)
    return pa.table(out)


class _Rows:
    """The rows of a file, as the columns an event table needs."""

    names: list[str]
    count: int

    def column(self, name: str) -> pa.Array | pa.ChunkedArray:
        raise NotImplementedError

    def text(self, name: str) -> pa.Array | pa.ChunkedArray:
        """A column as strings (a CSV of numeric ids is read as integers)."""
        column = self.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return column
        if pa.types.is_timestamp(column.type):
            return column  # event times, kept typed
        return column.cast(pa.string())

    def payload(self) -> pa.Array | pa.ChunkedArray:
        return self.column("payload")

    def objects(self, names: list[str]) -> pa.Array:
        """One JSON object per row of the named columns."""
        raise NotImplementedError


class _Columns(_Rows):
    """CSV or Parquet, read by Arrow into typed columns."""

    def __init__(self, path: Path, fmt: str) -> None:
        try:
            if fmt == "csv":
                import pyarrow.csv as pacsv

                self.table = pacsv.read_csv(path)
            else:
                import pyarrow.parquet as pq

                self.table = pq.read_table(path)
        except pa.ArrowInvalid as exc:
            raise InvalidEvent(f"cannot read {path.name} as {fmt}: {exc}") from None
        self.names = self.table.column_names
        self.count = self.table.num_rows

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)

    def objects(self, names: list[str]) -> pa.Array:
        # DuckDB renders every Arrow type (times, decimals, lists, structs) as JSON in C++.
        import duckdb

        if not names:
            return pa.repeat("{}", self.count)
        columns: dict[str, Any] = {}
        for name in names:
            column = self.table.column(name)
            if pa.types.is_floating(column.type):
                # NaN and infinities are not JSON: they become null.
                column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
            columns[name] = column
        con = duckdb.connect()
        try:
            con.register("source_rows", pa.table(columns))
            fields = ", ".join(f"{_sql_text(n)}, {_sql_name(n)}" for n in columns)
            result = con.sql(f"select to_json(json_object({fields})) from source_rows")
            return result.to_arrow_table().column(0).combine_chunks().cast(pa.string())
        finally:
            con.close()


class _JsonLines(_Rows):
    """JSON lines, one object each, values kept exactly as written.

    Not pyarrow's reader: it unifies nested objects into structs, adding null members a
    line never had — and in a JSON Merge Patch a null deletes.
    """

    def __init__(self, path: Path) -> None:
        self.rows: list[dict[str, Any]] = []
        keys: dict[str, None] = {}
        with path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InvalidEvent(f"{path.name} line {number} is not JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise InvalidEvent(f"{path.name} line {number} is not a JSON object")
                self.rows.append(row)
                keys.update(dict.fromkeys(row))
        self.names = list(keys)
        self.count = len(self.rows)

    def column(self, name: str) -> pa.Array:
        values = [row.get(name) for row in self.rows]
        return pa.array(
            [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
            pa.string(),
        )

    def payload(self) -> pa.Array:
        values = [row.get("payload") for row in self.rows]
        return pa.array(
            [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
            pa.string(),
        )

    def objects(self, names: list[str]) -> pa.Array:
        wanted = set(names)
        texts = [
            orjson.dumps({k: v for k, v in row.items() if k in wanted}).decode()
            for row in self.rows
        ]
        return pa.array(texts, pa.string())


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_text(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def event_times(column: pa.Array | pa.ChunkedArray, name: str, timezone: str | None) -> pa.Array:
    """Event times as timestamp[us, UTC]; zone-less ones read in ``timezone``."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:
            return arr.cast(pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            try:
                arr = arr.cast(pa.timestamp("us"))
            except pa.ArrowInvalid as exc:
                raise InvalidEvent(f"unreadable time in column {name!r}: {exc}") from None
    if not pa.types.is_timestamp(arr.type):
        raise InvalidEvent(
            f"column {name!r} holds {arr.type}, not times (ISO-8601 text or timestamps)",
            field=name,
        )
    if arr.type.tz is None:
        if timezone is None:
            raise InvalidEvent(
                f"times in column {name!r} have no zone; say which zone they are in "
                "(e.g. timezone 'UTC' or 'America/New_York')",
                field=name,
            )
        arr = pc.assume_timezone(arr, timezone, ambiguous="earliest", nonexistent="latest")
    return arr.cast(pa.timestamp("us", tz="UTC"))
