"""Event ids a caller names a column for (``ingest --id-col``), read and checked up front.

Every id is parsed before the first row is written, so a bad one is refused naming its
row and the store is left as it was. For a file the id column is read on its own and
kept out of the payload; its rows line up with the mapped rows of
:func:`allsource_lab.datasets.file_events` (JSON lines skip blank lines in both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab._ingest import inputs
from allsource_lab.errors import InvalidEvent

__all__ = ["id_column", "read_with_ids"]

# The columns ``file_events`` passes through as they are.
_PASSED_THROUGH = ("metadata", "event_id")


def id_column(values: pa.Array | pa.ChunkedArray, column: str) -> pa.Array:
    """A column of caller-given event ids (UUID text or 16 bytes) as fixed_size_binary(16).

    Every row must have one: the caller asked for ids from this column.

    Raises:
        InvalidEvent: naming the first row (from 0) whose id is missing or not a UUID.

    >>> id_column(pa.array(["00000000-0000-0000-0000-000000000001"]), "id")[0].as_py()[-1]
    1
    >>> id_column(pa.array(["x1"]), "id")
    Traceback (most recent call last):
    allsource_lab.errors.InvalidEvent: row 0, field 'id': 'x1' is not a UUID ...
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    if arr.null_count:
        _missing_id(int(pc.index(pc.is_null(arr), True).as_py()), column)
    if pa.types.is_fixed_size_binary(arr.type) and arr.type.byte_width == 16:
        return arr
    out = np.empty(len(arr) * 16, np.uint8)
    for i, value in enumerate(arr.to_pylist()):
        if value == "":  # an empty CSV cell
            _missing_id(i, column)
        try:
            raw = inputs.parse_event_id(value, i)
        except InvalidEvent as exc:
            message = str(exc).split(": ", 1)[-1].replace("(give a uuid.UUID, its", "(give its")
            raise InvalidEvent(message, row=i, field=column) from None
        out[i * 16 : i * 16 + 16] = np.frombuffer(raw, np.uint8)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(arr), [None, pa.py_buffer(out.tobytes())]
    )


def _missing_id(row: int, column: str) -> NoReturn:
    raise InvalidEvent(
        f"has no event id; give every row an id in {column!r}, or leave out --id-col to "
        "derive ids from the rows",
        row=row,
        field=column,
    )


def read_with_ids(
    path: str,
    fmt: str | None,
    id_col: str,
    mapping: dict[str, Any],
    read: Callable[..., pa.Table],
) -> pa.Table:
    """The mapped rows of a file (``read(path, format=fmt, **mapping)``, i.e.
    ``file_events``) with their ``event_id`` from column ``id_col``, kept out of the
    payload. ``fmt`` is the file's format (``csv``, ``jsonl``, ``parquet``; anything
    else is left to ``read`` to refuse).

    Raises:
        InvalidEvent: no such column, or a missing or bad id (naming its row).
        OSError: the file cannot be read.

    >>> import tempfile, pathlib
    >>> from allsource_lab.datasets import file_events
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
    >>> _ = path.write_text("key,entity_id,event_type,n\\n" + "0" * 32 + ",a,t,1\\n")
    >>> mapping = {"entity_col": "entity_id", "type_col": "event_type", "event_type": None,
    ...            "time_col": None, "payload_cols": None, "timezone": None}
    >>> t = read_with_ids(str(path), "csv", "key", mapping, file_events)
    >>> t.column("payload")[0].as_py(), t.column("event_id").type.byte_width
    ('{"n":1}', 16)
    """
    if fmt not in ("csv", "jsonl", "parquet"):
        return read(path, format=fmt, **mapping)  # which refuses it, saying why
    if id_col == "event_id":
        table = read(path, format=fmt, **mapping)
        if "event_id" not in table.column_names:
            raise InvalidEvent(f"{os.path.basename(path)} has no column 'event_id' for --id-col")
        given = id_column(table.column("event_id"), id_col)
        return table.set_column(table.column_names.index("event_id"), "event_id", given)
    values, names = _file_column(path, fmt, id_col)
    if mapping["payload_cols"] is None and "payload" not in names:
        used = {mapping["entity_col"], id_col, *_PASSED_THROUGH}
        if mapping["event_type"] is None:
            used.add(mapping["type_col"])
        used.add(mapping["time_col"] or ("timestamp" if "timestamp" in names else None))
        mapping = {**mapping, "payload_cols": [c for c in names if c not in used]}
    table = read(path, format=fmt, **mapping)
    given = id_column(values, id_col)
    if "event_id" in table.column_names:  # --id-col wins over a column named event_id
        return table.set_column(table.column_names.index("event_id"), "event_id", given)
    return table.append_column("event_id", given)


def _file_column(path: str, fmt: str, column: str) -> tuple[pa.Array | pa.ChunkedArray, list[str]]:
    """One column of a file, as text where it is text, and the names of all its columns."""
    values: pa.Array | pa.ChunkedArray | None = None
    if fmt == "csv":
        import pyarrow.csv as pacsv

        names = pacsv.open_csv(path).schema.names
        if column in names:
            options = pacsv.ConvertOptions(
                include_columns=[column], column_types={column: pa.string()}
            )
            values = pacsv.read_csv(path, convert_options=options).column(column)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if column in names:
            values = pq.read_table(path, columns=[column]).column(column)
    else:
        keys: dict[str, None] = {}
        found: list[Any] = []
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InvalidEvent(
                        f"{os.path.basename(path)} line {number} is not JSON: {exc}"
                    ) from None
                if isinstance(row, dict):
                    keys.update(dict.fromkeys(row))
                    found.append(row.get(column))
                else:
                    found.append(None)
        names = list(keys)
        values = pa.array([v if v is None or isinstance(v, str) else str(v) for v in found])
    if values is None or column not in names:
        raise InvalidEvent(
            f"{os.path.basename(path)} has no column {column!r} for --id-col "
            f"(its columns: {', '.join(names)})",
            field=column,
        )
    return values, names
