"""``%allsource ingest SOURCE``: append the rows of a DataFrame variable or of a file.

A file (CSV, JSON lines, Parquet) is read by :func:`allsource_lab.datasets.file_events`;
a DataFrame or pyarrow Table is mapped the same way here: the type and entity come from
named columns (or one type for every row), the event time from an optional column, the
payload from a ``payload`` column or from the other columns, and ``event_id`` and
``metadata`` columns are kept. Rows are appended in atomic batches; inputs of
``progress_rows`` rows or more show a progress bar.

Ingesting is idempotent, because notebook cells get re-run: every row has an event id
before anything is written, from ``--id-col`` (or an ``event_id`` column), else derived
from the row's content and how many identical rows come before it in the source
(:mod:`allsource_lab._ingest.row_ids`). The store does not write an id it already holds
with the same content again, so a re-run stores nothing new and a grown or edited file
stores only its new rows. (Not from the file's hash and the row number: one changed row
would then give every row a new id, and the file would be stored twice.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pyarrow as pa
from IPython.core.error import UsageError

from allsource_lab._ingest import id_columns, row_ids
from allsource_lab.display import iso
from allsource_lab.display.views import IngestView, ProgressView
from allsource_lab.errors import InvalidArgument, InvalidEvent, StorageError
from allsource_lab.notebook.session import Context, Outcome
from allsource_lab.settings import Settings

__all__ = ["frame_events", "ingest", "with_event_ids"]

_PASSED_THROUGH = ("metadata", "event_id")


def ingest(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``ingest SOURCE [--type-col COL | --event-type TYPE] [--entity-col COL] [--id-col COL]``."""
    from allsource_lab.datasets import load_table

    store = ctx.store()
    if args.timezone is not None:
        _check_timezone(args.timezone)
    columns = None
    if args.payload_cols is not None:
        columns = [c.strip() for c in args.payload_cols.split(",") if c.strip()]
    mapping: dict[str, Any] = {
        "type_col": args.type_col,
        "event_type": args.event_type,
        "entity_col": args.entity_col,
        "time_col": args.time_col,
        "payload_cols": columns,
        "timezone": args.timezone,
    }
    id_col = args.id_col
    source = ctx.namespace.get(args.source) if args.source.isidentifier() else None
    if _is_frame(source):
        if args.format is not None:
            raise UsageError(f"--format is for files; {args.source} is a {type(source).__name__}")
        table = frame_events(source, **mapping, id_col=id_col)
    else:
        table = _file_table(args.source, args.format, mapping, id_col)
    if table.num_rows == 0:
        raise UsageError(f"{args.source} has no rows; nothing to ingest")
    # Every id is settled (and every row checked) before the first batch is written, so
    # a bad row leaves the store as it was rather than half-ingested.
    table = with_event_ids(table, store.settings, id_col)
    first = store.stats()["last_sequence"] + 1
    progress = None
    if not args.quiet and table.num_rows >= ctx.options.progress_rows:
        progress = _progress_bar()
    batch = args.batch_size or ctx.options.ingest_batch_rows
    rows = load_table(store, table, batch_size=batch, progress=progress)
    last = store.stats()["last_sequence"]
    appended = last - first + 1
    facts = {
        "source": args.source,
        "rows": rows,
        "appended": appended,
        "first_sequence": first if appended else None,
        "last_sequence": last if appended else None,
    }
    return Outcome(IngestView(**facts, store=ctx.info()), facts)


def _is_frame(value: Any) -> bool:
    import pandas as pd

    return isinstance(value, pd.DataFrame | pa.Table | pa.RecordBatch)


def with_event_ids(table: pa.Table, settings: Settings, id_col: str | None = None) -> pa.Table:
    """``table`` with an ``event_id`` in every row: its own (checked), else derived.

    With ``id_col`` (the source column the ``event_id`` column was read from) every row
    must bring its id; without, rows that have none get one derived from their content.

    Raises:
        InvalidEvent: a bad row (named), or an id that is not a UUID (or missing, with
            ``id_col``).

    >>> from allsource_lab.settings import Settings
    >>> t = pa.table({"event_type": ["a"], "entity_id": ["x"], "payload": ["{}"]})
    >>> with_event_ids(t, Settings()).column("event_id").type
    FixedSizeBinaryType(fixed_size_binary[16])
    """
    if id_col is not None:
        ids = id_columns.id_column(table.column("event_id"), id_col)
        table = table.set_column(table.column_names.index("event_id"), "event_id", ids)
    return row_ids.with_table_ids(table, settings)


def _file_table(
    path: str, fmt: str | None, mapping: dict[str, Any], id_col: str | None = None
) -> pa.Table:
    from allsource_lab.datasets import file_events
    from allsource_lab.datasets.files import FILE_FORMATS

    if not os.path.isfile(path):
        what = "variable or file" if path.isidentifier() else "file"
        raise UsageError(
            f"no {what} named {path!r}: give a DataFrame variable or the path of a .csv, "
            ".jsonl or .parquet file"
        )
    name = os.path.basename(path)
    try:
        if id_col is None:
            return file_events(path, format=fmt, **mapping)
        fmt = fmt or FILE_FORMATS.get(os.path.splitext(path)[1].lower())
        return id_columns.read_with_ids(path, fmt, id_col, mapping, file_events)
    except OSError as exc:  # e.g. no permission to read it, or it went since the check above
        reason = exc.strerror or str(exc)
        raise StorageError(
            f"cannot read {path}: {reason}; check that the file is there and may be read"
        ) from None
    except UnicodeDecodeError as exc:  # Arrow reads a CSV header that is not UTF-8 this way
        raise InvalidEvent(f"cannot read {name} as text: {exc}; save it as UTF-8") from None
    except pa.ArrowInvalid as exc:  # what file_events does not name itself
        raise InvalidEvent(f"cannot read {name}: {exc}") from None


def _check_timezone(zone: str) -> None:
    """Refuse a ``--timezone`` Arrow cannot read before any row is read.

    Raises:
        InvalidArgument: Arrow knows no such zone.
    """
    import pyarrow.compute as pc

    try:
        # One value, not none: Arrow looks the zone up only when it has a time to convert.
        pc.assume_timezone(pa.array([0], pa.timestamp("us")), zone)
    except pa.ArrowInvalid as exc:
        raise InvalidArgument(
            f"--timezone: {exc}; give an IANA name such as 'UTC' or 'Europe/Paris', or an "
            "offset such as '+01:00'"
        ) from None


def _progress_bar() -> Callable[[int, int], None]:
    """A progress callback that redraws one display in the cell (HTML and text)."""
    from IPython import display as ipython_display

    show: Any = ipython_display.display  # untyped in IPython
    handle: Any = None

    def update(done: int, total: int) -> None:
        nonlocal handle
        view = ProgressView(done, total)
        if handle is None:
            handle = show(view, display_id=True)
        else:
            handle.update(view)

    return update


def frame_events(
    frame: Any,
    *,
    type_col: str = "event_type",
    event_type: str | None = None,
    entity_col: str = "entity_id",
    time_col: str | None = None,
    payload_cols: Sequence[str] | None = None,
    timezone: str | None = None,
    id_col: str | None = None,
) -> pa.Table:
    """A table ``store.append_batch`` takes, one event per row of a DataFrame (or Arrow
    table), mapped as :func:`allsource_lab.datasets.file_events` maps a file's rows.
    ``id_col`` names a column of event ids, kept out of the payload.

    Raises:
        InvalidEvent: a named column is missing, or times without a zone.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [7], "kind": ["order.placed"], "amount": [9.5]})
    >>> frame_events(df, type_col="kind", entity_col="id").to_pylist()
    [{'event_type': 'order.placed', 'entity_id': '7', 'payload': '{"amount":9.5}'}]
    """
    if isinstance(frame, pa.Table | pa.RecordBatch):
        frame = frame.to_pandas()
    frame = frame.rename(columns=str)
    names = list(frame.columns)
    if time_col is None and "timestamp" in names:
        time_col = "timestamp"

    def need(column: str, hint: str) -> Any:
        if column not in names:
            raise InvalidEvent(
                f"the data has no column {column!r}; {hint} (its columns: {', '.join(names)})",
                field=column,
            )
        return frame[column]

    used = {entity_col, *_PASSED_THROUGH}
    if id_col is not None:
        need(id_col, "check the --id-col name")
        used.add(id_col)
    out: dict[str, Any] = {}
    if event_type is not None:
        out["event_type"] = pa.array([event_type] * len(frame), pa.string())
    else:
        hint = "name the type column with --type, or give one type with --event-type"
        out["event_type"] = _texts(need(type_col, hint))
        used.add(type_col)
    out["entity_id"] = _texts(need(entity_col, "name the entity column with --entity"))
    if time_col is not None:
        times = need(time_col, "name the time column with --time")
        out["timestamp"] = _times(times, time_col, timezone)
        used.add(time_col)
    if payload_cols is None and "payload" in names:
        out["payload"] = [_json_text(v) for v in frame["payload"].tolist()]
    else:
        picked = [c for c in names if c not in used] if payload_cols is None else payload_cols
        for column in picked:
            need(column, "check the --payload-cols names")
        records = frame[list(picked)].to_dict("records") if picked else [{}] * len(frame)
        out["payload"] = pa.array([_dumps(r) for r in records], pa.string())
    for name in _PASSED_THROUGH:
        if name in names and not (name == "event_id" and id_col is not None):
            values = frame[name].tolist()
            out[name] = [None if _missing(v) else _json_text(v) for v in values]
    if id_col is not None:
        out["event_id"] = pa.array([_id_text(v) for v in frame[id_col].tolist()], pa.string())
    return pa.table(out)


def _texts(series: Any) -> pa.Array:
    """A column as strings (ids read as numbers become their text)."""
    values = series.tolist()
    return pa.array([None if _missing(v) else str(v) for v in values], pa.string())


def _id_text(value: Any) -> str | None:
    """An ``--id-col`` cell as text for :func:`row_ids.id_column` to parse (and name)."""
    if _missing(value):
        return None
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _times(series: Any, name: str, timezone: str | None) -> pa.Array:
    """Event times as timestamp[us, UTC], read as a file's time column is read."""
    from allsource_lab.datasets.files import event_times as file_times

    try:
        column = pa.array(series.tolist() if series.dtype.kind == "O" else series)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidEvent(f"unreadable time in column {name!r}: {exc}", field=name) from None
    try:
        return file_times(column, name, timezone)
    except InvalidEvent as exc:
        message = str(exc).replace("timezone 'UTC'", "--timezone UTC")
        raise InvalidEvent(message.split(": ", 1)[-1], field=name) from None


def _default(value: Any) -> Any:
    """JSON for what orjson does not know: pandas times, missing values, decimals."""
    if isinstance(value, dt.datetime | dt.date) or type(value).__name__ == "Timestamp":
        return iso(value)
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _dumps(record: dict[str, Any]) -> str:
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
    return orjson.dumps(record, default=_default, option=option).decode()


def _json_text(value: Any) -> Any:
    """A payload/metadata cell as JSON text (dicts encoded; text kept as it is)."""
    if isinstance(value, str | bytes) or value is None:
        return value
    return _dumps(value) if isinstance(value, dict) else value
