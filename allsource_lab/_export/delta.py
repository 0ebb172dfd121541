"""The sealed history written to a Delta Lake table (delta-rs: no JVM in the kernel).

What the table holds: one row per sealed event, the eleven columns of docs/format.md in
plain types any engine reads (:data:`TABLE_SCHEMA`): ``event_id`` as its canonical UUID
text (Spark's Parquet reader refuses the UUID logical type), ``payload`` and ``metadata``
as JSON text (the ``arrow.json`` extension type is unknown to most readers), times as
``timestamp[us, UTC]``. The unsealed tail is never exported: sealed events never change,
so a row once written is final.

How it stays exactly-once: every commit appends the events of one sequence range
``(after, last]`` together with a Delta *application transaction* whose id names the store
(``allsource-lab-<store_id>``) and whose version is ``last``. The commit of the rows and of
that version is one atomic step of the Delta log, so the table's transaction version is
always exactly the last sequence it holds. An export reads it first and goes on after it:
a second call appends only what was sealed since, and a call killed mid-way left either a
whole commit or none (a half-written data file that no commit names is not part of the
table; ``VACUUM`` removes it). Commits are made against the snapshot the version was read
from, with no retries: if another exporter committed in between, the commit fails,
the version is read again, and the export goes on from there, so no range is appended
twice. Ranges are by sequence, never by segment file, since compaction rewrites segments.

Layout: no partition columns, each commit's rows sorted by ``(entity_id, sequence)`` in
zstd Parquet with row groups of :data:`ROW_GROUP_ROWS`, so a reader that filters one
entity skips the row groups whose ``entity_id`` range misses it, and a fold per entity
reads each entity's rows in version order. Partitioning by the store's 32 partitions was
measured to multiply the files by ~30 for no query that filters on partition.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from allsource_lab.errors import InvalidArgument, StorageError

if TYPE_CHECKING:
    from allsource_lab._feed import EventFeed

__all__ = [
    "APP_PREFIX",
    "ROWS_PER_COMMIT",
    "ROW_GROUP_ROWS",
    "TABLE_SCHEMA",
    "app_id",
    "export_delta",
    "plain_rows",
    "table_uri",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")

# The exported columns: the event's columns (docs/format.md) in plain types.
TABLE_SCHEMA = pa.schema(
    [
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("recorded_at", TIMESTAMP, nullable=False),
        pa.field("payload", pa.string(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
        pa.field("partition", pa.int16(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=True),
    ]
)

APP_PREFIX = "allsource-lab-"
_DESCRIPTION = "AllSource Lab export of store "

# Events per commit: one commit is one sorted data file. Reading, converting and sorting
# 1M events holds ~0.5 GB at the peak beside the store; more would crowd a notebook's kernel.
ROWS_PER_COMMIT = 1_000_000
# Rows per Parquet row group: sorted by entity, each group's entity_id min/max is narrow,
# so an entity filter reads one group of a file rather than the whole file.
ROW_GROUP_ROWS = 131_072

Progress = Callable[[int, int], None]

# The 36 characters of a UUID's text: where each of its 16 bytes' two hex digits go.
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), np.uint8).reshape(256, 2)
_DIGIT_AT = np.array([0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34])
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def app_id(store_id: str) -> str:
    """The Delta application id under which a store's exports record their progress.

    >>> app_id("0b3c")
    'allsource-lab-0b3c'
    """
    return APP_PREFIX + store_id


def table_uri(uri: str | os.PathLike[str]) -> str:
    """``uri`` as delta-rs takes it: an object-store URI as given, a local path absolute.

    Raises:
        InvalidArgument: not a path or a URI text.

    >>> table_uri("s3://bucket/events")
    's3://bucket/events'
    >>> table_uri("/data/events")
    '/data/events'
    """
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgument(
            f"the table URI must be a folder path or a URI like 's3://bucket/events', not {uri!r}"
        )
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        return uri
    return str(Path(uri).expanduser().absolute())


def plain_rows(rows: pa.Table) -> pa.Table:
    """Events as the store reads them (:data:`allsource_lab.events.EVENT_SCHEMA`) in the
    table's plain types, sorted by ``(entity_id, sequence)``.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("a", "y", {"n": 1}); _ = store.append("a", "x", {"n": 2})
    >>> out = plain_rows(store.events().to_arrow())
    >>> out.column("entity_id").to_pylist(), out.column("payload").to_pylist()
    (['x', 'y'], ['{"n":2}', '{"n":1}'])
    >>> len(out.column("event_id")[0].as_py())
    36
    """
    columns = []
    for field in TABLE_SCHEMA:
        column = rows.column(field.name)
        if field.name == "event_id":
            column = pa.chunked_array([_uuid_text(chunk) for chunk in column.chunks], pa.string())
        elif isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], field.type)
        columns.append(column)
    table = pa.Table.from_arrays(columns, schema=TABLE_SCHEMA)
    return table.sort_by([("entity_id", "ascending"), ("sequence", "ascending")])


def _uuid_text(ids: pa.Array) -> pa.Array:
    """16-byte UUIDs as their canonical text, in numpy (~40x a Python loop of str(UUID))."""
    storage = ids.storage if isinstance(ids, pa.ExtensionArray) else ids
    n = len(storage)
    raw = np.frombuffer(storage.buffers()[1], np.uint8, 16 * n, 16 * storage.offset)
    digits = _HEX[raw.reshape(n, 16)]
    text = np.full((n, 36), ord("-"), np.uint8)
    text[:, _DIGIT_AT] = digits[:, :, 0]
    text[:, _DIGIT_AT + 1] = digits[:, :, 1]
    offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def export_delta(
    feed: EventFeed,
    store_id: str,
    through: int,
    uri: str | os.PathLike[str],
    storage_options: Mapping[str, str] | None = None,
    *,
    progress: Progress | None = None,
    rows_per_commit: int | None = None,
) -> dict[str, Any]:
    """Append the events with sequence at most ``through`` that the table at ``uri`` does
    not hold yet; what was done: ``uri``, ``exported`` (events this call appended),
    ``through_sequence`` (the last one the table holds), ``commits``, ``table_version``
    and ``seconds``.

    ``through`` is the store's last sealed sequence. ``progress(done, total)`` is called
    before the first commit and after each, when there is anything to export.
    ``rows_per_commit`` defaults to :data:`ROWS_PER_COMMIT`.

    Raises:
        InvalidArgument: a bad URI or storage options, a table with another schema, or one
            that holds something other than this store's export; nothing was written.
        StorageError: the target cannot be reached or written (a missing credential, the
            network, a full disk); what was committed before stays, and the next export
            goes on from there.
    """
    try:
        from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
        from deltalake.exceptions import CommitFailedError
    except ImportError:
        raise ImportError(
            "exporting to Delta Lake needs the deltalake package: "
            "pip install 'allsource-lab[spark]' (or pip install deltalake)"
        ) from None

    started = time.perf_counter()
    chunk = ROWS_PER_COMMIT if rows_per_commit is None else rows_per_commit
    if chunk < 1:
        raise InvalidArgument(f"rows_per_commit must be at least 1, not {chunk}")
    target = table_uri(uri)
    options = _options(storage_options)
    app = app_id(store_id)
    table = _open_table(target, options)
    if table is not None:
        _check_table(table, target, store_id, app)
    done = 0 if table is None else table.transaction_version(app) or 0
    total = feed.count(done, through) if through > done else 0
    exported = commits = 0
    if not total:
        progress = None  # nothing to show: no bar for an export with nothing new
    if progress is not None:
        progress(0, total)
    while table is None or done < through:
        batch = feed.batch(done, chunk, through=through)
        last = batch.last_sequence if len(batch) else done
        rows = plain_rows(batch.to_arrow()) if len(batch) else TABLE_SCHEMA.empty_table()
        commit = CommitProperties(
            app_transactions=[Transaction(app, last)],
            custom_metadata={"allsource_lab.through_sequence": str(last)},
            max_commit_retries=0,
        )
        try:
            write_deltalake(
                target if table is None else table,
                rows,
                mode="append",
                name="allsource_lab_events",
                description=_DESCRIPTION + store_id,
                storage_options=options,
                writer_properties=_writer_properties(),
                commit_properties=commit,
            )
        except CommitFailedError:
            # Another export of this store committed since the version was read: read it
            # again and go on after what that one appended.
            table = _open_table(target, options)
            if table is not None:
                _check_table(table, target, store_id, app)
            done = 0 if table is None else table.transaction_version(app) or 0
            continue
        except Exception as exc:
            if not _is_storage(exc):
                raise
            raise _storage_error(exc, target, done) from None
        if table is None:
            table = DeltaTable(target, storage_options=options)
        exported += len(batch)
        commits += 1
        done = last
        if progress is not None:
            progress(exported, total)
        if not len(batch):
            break
    table.update_incremental()
    return {
        "uri": target,
        "exported": exported,
        "through_sequence": done,
        "commits": commits,
        "table_version": table.version(),
        "seconds": time.perf_counter() - started,
    }


def _options(storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    if storage_options is None:
        return None
    if not isinstance(storage_options, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in storage_options.items()
    ):
        raise InvalidArgument(
            "storage_options must be a dict of str to str, like "
            "{'AWS_REGION': 'eu-west-1'}; nothing was written"
        )
    return dict(storage_options)


def _writer_properties() -> Any:
    from deltalake import WriterProperties

    return WriterProperties(compression="ZSTD", max_row_group_size=ROW_GROUP_ROWS)


def _open_table(target: str, options: dict[str, str] | None) -> Any:
    """The Delta table at ``target``, or None when there is none yet.

    Raises:
        InvalidArgument: a URI scheme delta-rs does not know.
        StorageError: the location cannot be reached or read.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(target, storage_options=options)
    except TableNotFoundError as exc:
        text = _one_line(exc)
        if "unknown scheme" in text.lower():
            raise InvalidArgument(
                f"cannot export to {target}: {text}; give a folder path or an s3://, gs:// "
                "or az:// URI; nothing was written"
            ) from None
        return None
    except Exception as exc:
        if not _is_storage(exc):
            raise
        raise _storage_error(exc, target, None) from None


def _check_table(table: Any, target: str, store_id: str, app: str) -> None:
    """Refuse a table this export must not append to: another schema, or another
    store's (or someone else's) data.

    Raises:
        InvalidArgument: what is there, and what to do instead.
    """
    have = pa.schema(table.schema().to_arrow())
    want = [(f.name, f.type) for f in TABLE_SCHEMA]
    got = [(f.name, f.type) for f in have]
    if got != want:
        missing = [n for n, _ in want if n not in have.names]
        extra = [n for n, _ in got if n not in TABLE_SCHEMA.names]
        retyped = [
            f"{n} is {t}, not {TABLE_SCHEMA.field(n).type}"
            for n, t in got
            if n in TABLE_SCHEMA.names and t != TABLE_SCHEMA.field(n).type
        ]
        details = "; ".join(
            part
            for part in (
                f"missing columns {', '.join(missing)}" if missing else "",
                f"other columns {', '.join(extra)}" if extra else "",
                "; ".join(retyped),
            )
            if part
        )
        details = details or "the same columns in another order"
        raise InvalidArgument(
            f"the Delta table at {target} has another schema ({details}); "
            "export to a new location, or remove that table first; nothing was written"
        )
    description = table.metadata().description or ""
    if table.transaction_version(app) is None:
        owner = description[len(_DESCRIPTION) :] if description.startswith(_DESCRIPTION) else None
        if owner is not None and owner != store_id:
            raise InvalidArgument(
                f"the Delta table at {target} holds the export of another store ({owner}); "
                f"this store is {store_id}; export to a new location; nothing was written"
            )
        if owner is None:
            raise InvalidArgument(
                f"the Delta table at {target} was not written by this store's export; "
                "export to a new location; nothing was written"
            )


def _is_storage(exc: BaseException) -> bool:
    """Whether delta-rs failed for the place (reach, rights, room), not for a bug."""
    from deltalake.exceptions import DeltaError

    return isinstance(exc, OSError | DeltaError)


def _one_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).replace("↳", " ")
    return " ".join(text.split())[:400]


def _storage_error(exc: BaseException, target: str, done: int | None) -> StorageError:
    """One line on why ``target`` failed, and what the table holds now."""
    text = _one_line(exc)
    lowered = text.lower()
    state = (
        "nothing was written"
        if not done
        else f"the table holds the events through sequence {done:,}; export again to go on"
    )
    if any(
        word in lowered
        for word in (
            "credential",
            "169.254.169.254",
            "/latest/api/token",  # asking the instance metadata service for credentials
            "meta-data/iam",
            "accessdenied",
            "access denied",
            "unauthorized",
            "forbidden",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "permission denied",
        )
    ):
        return StorageError(
            f"cannot write the Delta table at {target}: access refused or no credentials "
            f"({text}); give them in storage_options (e.g. AWS_ACCESS_KEY_ID, "
            f"AWS_SECRET_ACCESS_KEY, AWS_REGION) or the environment; {state}"
        )
    return StorageError(
        f"cannot reach or write the Delta table at {target} ({text}); check the URI, the "
        f"network and storage_options; {state}"
    )
