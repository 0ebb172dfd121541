"""``EventFrame``: the lazy result of ``store.events(...)``.

Building one only records the query; rows are selected when the frame is first
materialized (``len``, iteration, ``to_arrow``, ``to_pandas``, display) and then kept.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson
import pyarrow as pa

from allsource_lab.errors import InvalidArgument, InvalidEvent
from allsource_lab.events import Event, _iso

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["EventFrame", "Query", "events_from_table", "pandas_frame", "polars_frame"]

_JSON_COLUMNS = ("payload", "metadata")
_JSON_AS = ("objects", "text")


@dataclass(frozen=True, slots=True)
class Query:
    """The filters of one ``events()`` call; times are microseconds since the epoch."""

    entity_id: str | None = None
    event_type: str | None = None
    since: int | None = None
    until: int | None = None
    as_of: int | None = None
    known_at: int | None = None
    after: int | None = None
    limit: int | None = None
    reverse: bool = False

    def check(self) -> None:
        """Raises InvalidEvent for arguments of the wrong kind."""
        for name in ("entity_id", "event_type"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidEvent(f"{name} must be a string", field=name)
        for name in ("after", "limit"):
            value = getattr(self, name)
            # Sequences and counts are int64 in the index: a bigger int cannot be compared.
            if value is not None and (type(value) is not int or not 0 <= value < 2**63):
                raise InvalidEvent(
                    f"{name} must be an int from 0 to 2**63 - 1, not {value!r}", field=name
                )
        if not isinstance(self.reverse, bool | np.bool_):
            raise InvalidEvent(
                f"reverse must be True or False, not {self.reverse!r}", field="reverse"
            )


class RowSource(Protocol):
    """Where frames and batches get their rows: the store's read side, by position.

    Positions are ranks in sequence order on the read side; they stay valid for the
    life of the store (compaction keeps them).
    """

    def positions(self, query: Query) -> np.ndarray:
        """The positions answering ``query``, in sequence order."""
        ...

    def rows(self, positions: np.ndarray) -> pa.Table:
        """The events at ``positions`` as an Arrow table."""
        ...

    def column(self, positions: np.ndarray, name: str) -> pa.ChunkedArray:
        """One column of the events at ``positions``."""
        ...

    def payload_list(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The payloads at ``positions``, decoded."""
        ...

    def codes(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Type and entity numbers of the events at ``positions``."""
        ...

    def code_names(self, kind: str, codes: np.ndarray) -> list[str]:
        """The names of type (``kind="type"``) or entity (``"entity"``) numbers."""
        ...

    def positions_of(self, sequences: np.ndarray) -> np.ndarray:
        """The positions of stored ``sequences``."""
        ...


class EventFrame:
    """Events selected by a query, materialized on first use.

    Building a frame only records the query. The first ``len()`` picks the matching
    events from the index (positions: cheap, and fixed from then on, so a frame does not
    change under later appends); ``to_arrow()``, ``to_pandas()``, iteration and display
    also gather their rows. ``next_cursor`` is the sequence to pass as ``after=`` for the
    next page when a ``limit`` cut the result short, else None.
    """

    def __init__(self, source: RowSource, query: Query) -> None:
        self._source = source
        self.query = query
        self._positions: np.ndarray | None = None
        self._table: pa.Table | None = None

    def _picked(self) -> np.ndarray:
        if self._positions is None:
            self._positions = self._source.positions(self.query)
        return self._positions

    def to_arrow(self) -> pa.Table:
        """The events as an Arrow table with the event columns (docs/format.md)."""
        if self._table is None:
            self._table = self._source.rows(self._picked())
        return self._table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The events as an Arrow C stream (the Arrow PyCapsule interface).

        ``pyarrow.table(frame)``, ``polars.DataFrame(frame)`` and DuckDB
        (``duckdb.sql("select ... from frame")``) read the frame through it: the stream
        hands over the buffers of :meth:`to_arrow`'s table, not a copy. ``event_id``,
        ``payload`` and ``metadata`` travel as Arrow's UUID and JSON extension types
        (DuckDB reads them as UUID and JSON); :meth:`to_polars` gives polars plain
        binary and string columns instead.

        >>> import allsource_lab as asl, pyarrow as pa
        >>> store = asl.open()
        >>> _ = store.append("a", "x", {"n": 1})
        >>> pa.table(store.events()).column("sequence").to_pylist()
        [1]
        """
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_polars(self) -> pl.DataFrame:
        """The events as a polars DataFrame (the ``polars`` extra); see :func:`polars_frame`.

        Raises:
            ImportError: polars is not installed (``pip install 'allsource-lab[polars]'``).

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("order.placed", "o1", {"amount": 9.5})
        >>> store.events().to_polars()["payload"].to_list()
        ['{"amount":9.5}']
        """
        return polars_frame(self.to_arrow())

    def to_pandas(
        self, *, json: str = "objects", expand: str | Sequence[str] | None = None
    ) -> pd.DataFrame:
        """A DataFrame with the event columns; payloads and metadata as dicts by default.

        See :func:`pandas_frame` for ``json`` (``"objects"``: dicts, as ``states()`` gives;
        ``"text"``: the JSON text as stored) and ``expand`` (``"payload"``: one column per
        payload field, ``payload.a.b`` for nested keys, NA where an event lacks the key).
        Payloads come out upcast when upcasters are registered.

        Raises:
            InvalidArgument: ``json`` or ``expand`` is not one of the values above.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append("order.placed", "o1", {"amount": 9.5, "ship": {"city": "Oslo"}})
        >>> _ = store.append("order.paid", "o1", {"paid": True})
        >>> store.events().to_pandas()["payload"].tolist()
        [{'amount': 9.5, 'ship': {'city': 'Oslo'}}, {'paid': True}]
        >>> store.events().to_pandas(json="text")["payload"].tolist()
        ['{"amount":9.5,"ship":{"city":"Oslo"}}', '{"paid":true}']
        >>> wide = store.events().to_pandas(expand="payload")
        >>> [c for c in wide.columns if c.startswith("payload")]
        ['payload.amount', 'payload.ship.city', 'payload.paid']
        >>> wide["payload.ship.city"].isna().tolist()  # the second event has no ship
        [False, True]
        """
        return pandas_frame(self.to_arrow(), json=json, expand=expand)

    def __len__(self) -> int:
        return len(self._picked())

    def __iter__(self) -> Iterator[Event]:
        table = self.to_arrow()
        for batch in table.to_batches(max_chunksize=4096):
            yield from events_from_table(pa.Table.from_batches([batch]))

    @property
    def next_cursor(self) -> int | None:
        limit = self.query.limit
        n = len(self)
        if limit is None or n < limit or n == 0 or self.query.reverse:
            return None
        # Only the last row is read: a display asks for the cursor before any row.
        if self._table is not None:
            last = self._table.slice(n - 1)
        else:
            last = self._source.rows(self._picked()[-1:])
        return int(last.column("sequence")[0].as_py())

    def first(self, n: int) -> list[Event]:
        """The first ``n`` events of the frame; only their rows are gathered.

        >>> import allsource_lab as asl
        >>> store = asl.open()
        >>> _ = store.append_batch([{"event_type": "a", "entity_id": f"e{i}", "payload": {}}
        ...                         for i in range(5)])
        >>> [e.sequence for e in store.events().first(2)]
        [1, 2]
        """
        if self._table is not None:
            return events_from_table(self._table.slice(0, n))
        return events_from_table(self._source.rows(self._picked()[:n]))

    def __repr__(self) -> str:
        n = len(self)
        head = self.first(5)
        lines = [f"EventFrame: {n} event{'s' if n != 1 else ''}"]
        for e in head:
            lines.append(
                f"  {e.sequence:>6}  {_iso(e.timestamp_us)}  {e.event_type}  "
                f"{e.entity_id} v{e.version}"
            )
        if n > len(head):
            lines.append(f"  … {n - len(head)} more")
        return "\n".join(lines)

    @property
    def source(self) -> RowSource:
        """Where the rows come from: the store that made the frame. A display folds each
        shown row's entity state from it (``display.views.EventsView``)."""
        return self._source

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The AllSource JSON, HTML and text of the first rows (``display.default_limit()``),
        with a "showing N of M events" footer; only the rows shown are gathered."""
        from allsource_lab.display import bundle

        return bundle(self, include=include, exclude=exclude)

    def _repr_html_(self) -> str:
        from allsource_lab.display import bundle

        html: str = bundle(self, include=["text/html"])["text/html"]
        return html


def events_from_table(table: pa.Table) -> list[Event]:
    """Events from rows of an EVENT_SCHEMA table.

    The cyclic garbage collector is paused meanwhile (unless the caller paused it): the
    objects made here cannot form cycles, and the collections their count would set off
    made building events ~20% slower, and a projection applying them one at a time ~25%
    slower in all (measured on 100K events in batches of 4096).
    """
    if not gc.isenabled():
        return _events_from_table(table)
    gc.disable()
    try:
        return _events_from_table(table)
    finally:
        gc.enable()


def _events_from_table(table: pa.Table) -> list[Event]:
    cols = {name: table.column(name) for name in table.column_names}
    ids = cols["event_id"].combine_chunks().storage.to_pylist()
    ts = cols["timestamp"].cast(pa.int64()).to_pylist()
    rec = cols["recorded_at"].cast(pa.int64()).to_pylist()
    payload = cols["payload"].combine_chunks().storage.to_pylist()
    metadata = cols["metadata"].combine_chunks().storage.to_pylist()
    return [
        Event(s, t, e, v, a, r, i, p, m, part, sv)
        for s, t, e, v, a, r, i, p, m, part, sv in zip(
            cols["sequence"].to_pylist(),
            cols["event_type"].to_pylist(),
            cols["entity_id"].to_pylist(),
            cols["version"].to_pylist(),
            ts,
            rec,
            ids,
            payload,
            metadata,
            cols["partition"].to_pylist(),
            cols["schema_version"].to_pylist(),
            strict=True,
        )
    ]


def pandas_frame(
    table: pa.Table, json: str = "objects", expand: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Rows of an EVENT_SCHEMA table as a DataFrame: what ``to_pandas()`` of frames and
    batches gives.

    ``event_id`` holds ``uuid.UUID`` objects, times are UTC timestamps. ``json`` says how
    ``payload`` and ``metadata`` come out: ``"objects"`` (the default) decodes them to dicts,
    ``"text"`` keeps the JSON text as stored. ``expand`` (``"payload"``, ``"metadata"`` or
    both in a list) replaces that column, in place, by one column per field: nested objects
    are spread too, named by their path (``payload.ship.city``), and an event without a
    field has NA there (``None``, or ``NaN`` in a numeric column); lists stay whole.

    Dicts are made by ``orjson.loads`` mapped over the column's bytes. A spread column is
    parsed by Arrow's JSON reader straight into columns, with no dict per event; strings
    it would read as timestamps stay strings. Only where one field holds values of kinds
    one column cannot (a number here, an object there) does ``pandas.json_normalize``
    spread the decoded dicts instead, row by row.

    Raises:
        InvalidArgument: ``json`` is not ``"objects"`` or ``"text"``, or ``expand`` names
            something other than ``"payload"`` and ``"metadata"``.

    >>> import pyarrow as pa
    >>> from allsource_lab.events import EVENT_SCHEMA
    >>> pandas_frame(EVENT_SCHEMA.empty_table(), expand="payload").columns.tolist()[:3]
    ['sequence', 'event_id', 'event_type']
    >>> pandas_frame(EVENT_SCHEMA.empty_table(), json="dicts")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    allsource_lab.errors.InvalidArgument: json must be 'objects' (dicts) or 'text' ...
    """
    if json not in _JSON_AS:
        raise InvalidArgument(
            f"json must be 'objects' (dicts) or 'text' (JSON text as stored), not {json!r}"
        )
    spread = _expanded(expand)
    plain = pa.table(
        {
            name: (
                col.cast(col.type.storage_type)
                if isinstance(col.type, pa.ExtensionType) and name != "event_id"
                else col
            )
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    ids = plain.column("event_id").combine_chunks()
    decoded = json == "objects" or spread
    frame: pd.DataFrame = plain.drop_columns(
        ["event_id", *(c for c in _JSON_COLUMNS if decoded and c in plain.column_names)]
    ).to_pandas()
    import uuid

    frame.insert(1, "event_id", [uuid.UUID(bytes=b) for b in ids.storage.to_pylist()])
    if not decoded:
        return frame
    import pandas as pd

    # Each JSON column is replaced in place: the frame keeps the table's column order.
    columns: dict[str, Any] = {}
    for name in plain.column_names:
        if name not in _JSON_COLUMNS or not decoded:
            columns[name] = frame[name]
        elif name in spread:
            wide = _spread_columns(name, plain.column(name))
            columns.update((c, wide[c]) for c in wide.columns)
        elif json == "objects":
            columns[name] = pd.Series(_decode_column(plain.column(name)), dtype=object)
        else:
            columns[name] = plain.column(name).to_pandas()
    return pd.DataFrame(columns, index=frame.index)


def polars_frame(table: pa.Table) -> pl.DataFrame:
    """Rows of an EVENT_SCHEMA table as a polars DataFrame: what ``to_polars()`` gives.

    ``payload`` and ``metadata`` are the JSON text as stored (polars string columns, so
    ``.str.json_decode()`` and the other string functions apply) and ``event_id`` its 16
    bytes. The table goes over the Arrow C stream: the numeric and time columns are the
    table's own buffers (polars keeps them as they are); polars lays text out its own
    way, so string columns are converted as it reads them.

    Raises:
        ImportError: polars is not installed (``pip install 'allsource-lab[polars]'``).

    >>> from allsource_lab.events import EVENT_SCHEMA
    >>> polars_frame(EVENT_SCHEMA.empty_table()).schema["payload"]
    String
    """
    try:
        import polars as pl
    except ImportError:
        raise ImportError("to_polars() needs polars: pip install 'allsource-lab[polars]'") from None
    # The extension columns become their storage: a view of the same buffers, no copy.
    plain = pa.table(
        {
            name: (
                pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
                if isinstance(col.type, pa.BaseExtensionType)
                else col
            )
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    # Left in the table's chunks: polars would otherwise join them into new buffers.
    frame = pl.from_arrow(plain, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _expanded(expand: str | Sequence[str] | None) -> tuple[str, ...]:
    """The JSON columns ``expand`` asks to spread (checked)."""
    if expand is None:
        return ()
    names = (expand,) if isinstance(expand, str) else tuple(expand)
    for name in names:
        if name not in _JSON_COLUMNS:
            raise InvalidArgument(
                f"expand takes 'payload', 'metadata' or a list of them, not {name!r}"
            )
    return names


def _decode_column(column: pa.ChunkedArray) -> list[Any]:
    """Every JSON text of ``column`` decoded: ``orjson.loads`` mapped over its bytes.

    Making the dicts is most of the cost, so how the texts reach orjson matters little; of
    the ways tried on 100K ~110-byte payloads (11 interleaved runs on a loaded 2-core
    machine, December 2026), mapping ``loads`` over the column's bytes was fastest (median
    126 ms), before the same over ``str`` (136 ms) and one ``loads`` of every text joined
    into one array (182 ms). ``map`` keeps the loop in C.
    """
    arr = column.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    # Paused as in `events_from_table`: the dicts made here cannot form cycles, and the
    # collections their count sets off took 0.33 s of a 0.36 s decode of 100K empty
    # metadata objects (cProfile of to_pandas, loaded 2-core machine).
    paused = gc.isenabled()
    gc.disable()
    try:
        raw = pa.large_binary() if pa.types.is_large_string(arr.type) else pa.binary()
        return list(map(orjson.loads, arr.cast(raw).to_pylist()))
    finally:
        if paused:
            gc.enable()


def _joined_texts(column: pa.ChunkedArray, separator: bytes) -> bytes | None:
    """The texts of a string ``column`` joined by a one-byte ``separator`` (None: no rows).

    One copy by numpy: each text moves right by the separators before it.
    """
    arr = column.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    n = len(arr)
    if not n:
        return None
    width = 8 if pa.types.is_large_string(arr.type) else 4
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(
        offsets_buf, np.int64 if width == 8 else np.int32, n + 1, arr.offset * width
    ).astype(np.int64)
    data = np.frombuffer(data_buf, np.uint8)[offsets[0] : offsets[-1]]
    out = np.empty(len(data) + n - 1, np.uint8)
    gaps = offsets[1:-1] - offsets[0] + np.arange(n - 1)  # where each separator goes
    keep = np.ones(len(out), np.bool_)
    keep[gaps] = False
    out[keep] = data
    out[gaps] = separator[0]
    return out.tobytes()


def _spread_columns(prefix: str, column: pa.ChunkedArray) -> pd.DataFrame:
    """One column per field of the JSON objects in ``column``, named ``prefix.field.sub``.

    Arrow's JSON reader parses the texts straight into columns, with no Python object per
    value: on 100K ~110-byte payloads (medians of 9 interleaved runs on a loaded 2-core
    machine, December 2026) it took 303 ms where decoding to dicts and building Arrow
    columns from them took 460 ms, and ``pandas.json_normalize`` of the dicts 956 ms.
    Strings it would turn into timestamps are read again as the strings they are.
    """
    import pandas as pd
    import pyarrow.json as pa_json

    n = len(column)
    lines = _joined_texts(column, b"\n")
    table: pa.Table | None = None
    if lines is not None:
        # A text written with line breaks between its tokens spans lines: tell the reader.
        options = pa_json.ParseOptions(newlines_in_values=lines.count(b"\n") >= n)
        try:
            table = pa_json.read_json(pa.BufferReader(lines), parse_options=options)
            kept = _without_timestamps(table.schema)
            if kept != table.schema:
                options = pa_json.ParseOptions(
                    explicit_schema=kept, newlines_in_values=options.newlines_in_values
                )
                table = pa_json.read_json(pa.BufferReader(lines), parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # A field holds kinds one column cannot (a number here, text there): pandas
            # spreads the dicts row by row and keeps such a column as Python objects.
            spread = pd.json_normalize(_decode_column(column), sep=".")
            spread.columns = [f"{prefix}.{c}" for c in spread.columns]
            return spread
    if table is None or not table.num_columns:
        return pd.DataFrame(index=pd.RangeIndex(n))
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()  # one level a time: "ship" -> "ship.city"
    table = table.rename_columns([f"{prefix}.{c}" for c in table.column_names])
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _without_timestamps(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every timestamp the JSON reader inferred read as a string."""

    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return pa.string()
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(plain(f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(t.value_field.with_type(plain(t.value_type)))
        return t

    return pa.schema([f.with_type(plain(f.type)) for f in schema])
