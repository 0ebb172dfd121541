"""``SqlProjection``: a DuckDB query over the events fed so far, kept materialized.

The query reads the table ``events``, which has the columns and types of ``store.sql``'s
view (docs/format.md, "The event"; ``payload->>'amount'`` works), so a query that runs in
``store.sql`` runs here. Two ways to keep its result:

* **Incremental**, when the query's result can be merged from results over parts of the
  events: a single SELECT over ``events`` alone (WHERE allowed), grouped by expressions
  that are all in the select list (or not grouped: one row of totals), selecting only
  those keys and bare ``count(*)``, ``count(x)``, ``sum(x)``, ``min(x)``, ``max(x)``
  (FILTER allowed; no DISTINCT, HAVING, ORDER BY, LIMIT, window functions, subqueries,
  joins or CTEs). Each batch runs the query over its own events only; the per-batch rows
  are merged into the kept result by DuckDB: ``count`` and ``sum`` add, ``min``/``max``
  take the smaller/larger, groups meet on equal keys with NULL equal to NULL (SQL
  grouping), and a NULL sum (no non-NULL value yet) stays NULL until a value arrives. A
  sum of DOUBLEs merged from parts may differ in its last bits from a sum in one pass.
  Each batch costs one DuckDB statement, about 1 ms whatever the batch's size (measured on
  the dev machine), so a projection fed one event per append adds that to each append;
  catch-up and ``append_batch`` spread it over many events.
* **Recompute**, for every other query (``avg``, HAVING, ORDER BY, joins, windows...):
  the events fed are kept (as Arrow) and the query runs over all of them when ``state()``
  is asked after new events arrived; the result is cached until the next batch. A query
  that fails on some event's data (a bad cast, say) fails there, in ``state()``, not when
  the event is fed. ``reason`` says why a query is not incremental. A query that reads
  the clock or draws random numbers (``now()``, ``random()``) is run again on every read.

Durable state is JSON: on the incremental path the result rows, each value as DuckDB's
own text for it under its column's DuckDB type (which reads back exactly: integers stay
integers, timestamps timestamps, doubles bit for bit); on the recompute path the fed
events' rows (so its saved state grows with the events, as its memory does).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab.errors import InvalidArgument
from allsource_lab.events import EVENT_SCHEMA
from allsource_lab.projections.base import EventBatch, Projection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SqlProjection"]

# Per-batch results wait in a side table and are merged into the kept result once the
# events behind them reach this many, or the kept result's row count if larger, or when
# the state is read: a merge rewrites the kept result, so merging after every one-event
# append would cost O(groups) per append instead of O(1) amortized.
FOLD_EVERY_EVENTS = 65_536
# The recompute path joins this many fed batches into one Arrow table, so that single-event
# appends do not leave DuckDB a million one-row chunks to scan (each event is copied once).
JOIN_EVERY_BATCHES = 256

_STATE_FORMAT = 1
_EMPTY = EVENT_SCHEMA.empty_table()
_EVENT_COLUMNS = frozenset(EVENT_SCHEMA.names)
# Aggregates whose results over parts merge into the result over the whole, and how.
_MERGES = {"count_star": "count", "count": "count", "sum": "sum", "min": "min", "max": "max"}
# Functions of the time a query runs: DuckDB marks them consistent within one query, as it
# does every TIMESTAMPTZ function (they read the time zone setting), so they are named here.
# Written without parentheses (current_timestamp) they parse as column names.
_CLOCK = frozenset(
    {
        "now", "today", "transaction_timestamp", "get_current_time", "get_current_timestamp",
        "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
        "current_localtime", "current_localtimestamp",
    }
)  # fmt: skip
_MODIFIERS = {
    "ORDER_MODIFIER": "ORDER BY needs every row of the result",
    "LIMIT_MODIFIER": "LIMIT/OFFSET needs every row of the result",
    "LIMIT_PERCENT_MODIFIER": "LIMIT/OFFSET needs every row of the result",
    "DISTINCT_MODIFIER": "SELECT DISTINCT needs every row of the result",
}


class SqlProjection(Projection):
    """The result of a DuckDB ``query`` over the events fed, kept up to date.

    ``state()`` is the result as a pandas DataFrame, equal to running ``query`` over the
    events fed so far (what ``store.sql(query).df()`` gives over the same events; with
    ``event_types``, events of other types are ignored). ``state(key)`` is the rows whose
    first column equals ``key``. ``incremental`` says whether batches are merged as they
    come (see the module's docs for which queries are); when not, ``reason`` says why and
    the query is recomputed over all the events fed when the state is read.

    Each projection has its own in-memory DuckDB connection (never the store's) and is
    safe to use from several threads.

    Raises:
        InvalidArgument: the query does not parse, is not a single SELECT, does not read from
            ``events`` or does not run over it (an unknown column, say).

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append_batch([
    ...     {"event_type": "sold", "entity_id": "o-1", "payload": {"sku": "tea", "n": 4}},
    ...     {"event_type": "sold", "entity_id": "o-2", "payload": {"sku": "jam", "n": 3}},
    ...     {"event_type": "sold", "entity_id": "o-3", "payload": {"sku": "tea", "n": 6}}])
    >>> sales = SqlProjection("sales", "select payload->>'sku' as sku, count(*) as orders, "
    ...                       "max((payload->>'n')::int) as most from events group by sku")
    >>> sales.incremental
    True
    >>> sales.apply_batch(store.feed.batch(0))
    >>> sales.state().sort_values("sku").to_dict("records")
    [{'sku': 'jam', 'orders': 1, 'most': 3}, {'sku': 'tea', 'orders': 2, 'most': 6}]
    >>> sales.state("tea").to_dict("records")
    [{'sku': 'tea', 'orders': 2, 'most': 6}]
    >>> mean = SqlProjection("mean", "select avg(version) from events")
    >>> mean.incremental
    False
    >>> print(mean.reason)
    avg(version): avg() does not merge from per-batch results (count, sum, min and max do)
    """

    incremental: bool
    reason: str | None
    query: str

    def __init__(
        self, name: str, query: str, event_types: Sequence[str] | str | None = None
    ) -> None:
        if not isinstance(query, str):
            raise TypeError(f"query must be SQL text, not {type(query).__name__}")
        self.query = query
        self._lock = threading.RLock()
        self._con = duckdb.connect()
        self._text = _single_select(self._con, query, name)
        tree = _parse_tree(self._con, self._text)
        if tree is not None and not _reads_events(tree):
            raise InvalidArgument(
                f"SqlProjection {name!r}: the query must read from `events` (the events fed "
                f"to the projection), and this one does not: {query!r}"
            )
        self._con.register("events", _EMPTY)
        try:
            relation = self._con.sql(self._text)
            self._types = [str(t) for t in relation.types]
            self._columns = list(relation.df().columns)
        except duckdb.Error as exc:
            raise InvalidArgument(
                f"SqlProjection {name!r}: the query must read from `events` (columns "
                f"{', '.join(EVENT_SCHEMA.names)}), and it does not run over it: {exc}"
            ) from None
        # A result that changes with the time of the run is never cached.
        self._volatile = tree is not None and any(_changes_per_run(n) for n in _nodes(tree))
        kinds, self.reason = _merge_plan(tree, self._text)
        if kinds is not None and len(kinds) != len(self._types):
            kinds, self.reason = None, "its select list expands into more columns"
        self.incremental = kinds is not None
        names = ", ".join(f"c{i}" for i in range(len(self._types)))
        self._as_kept = f"SELECT * FROM (\n{self._text}\n) AS q({names})"
        self._merge = "" if kinds is None else _merge_sql(kinds, self._types)
        self._pending_events = 0
        self._kept_rows = 0
        self._fed: list[pa.Table] = []
        self._loose = 0  # fed batches not yet joined into one table
        self._result: pd.DataFrame | None = None
        super().__init__(name, event_types)

    # -- feeding -------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._result = None
            self._fed, self._loose = [], 0
            self._pending_events = 0
            if self.incremental:
                # The query over no events is the right start: one row of zeros and NULLs
                # for a global aggregate, no rows when grouped.
                con = self._con
                con.register("events", _EMPTY)
                con.execute(f"CREATE OR REPLACE TABLE asl_kept AS {self._as_kept}")
                con.execute("CREATE OR REPLACE TABLE asl_pending AS FROM asl_kept LIMIT 0")
                self._kept_rows = self._count("asl_kept")

    def apply(self, event: Any) -> None:
        """Refused: a query runs over columns, so a SqlProjection is fed batches
        (``apply_batch``, which the runner always calls).

        Raises:
            TypeError: always.
        """
        raise TypeError(f"SqlProjection {self.name!r} is fed batches: use apply_batch(batch)")

    def apply_batch(self, batch: EventBatch) -> None:
        """Fold a batch in: merged into the result (incremental) or kept for the next
        recompute.

        Raises:
            InvalidArgument: the query fails on the batch's events (incremental path); the
                result is then as it was before the batch.
        """
        if not len(batch):
            return
        table = batch.to_arrow()
        if self.event_types is not None:
            table = table.filter(pc.is_in(table.column("event_type"), pa.array(self.event_types)))
            if not table.num_rows:
                return
        with self._lock:
            self._result = None
            if not self.incremental:
                self._keep(table)
                return
            # One statement per batch, whatever its size: DuckDB's fixed cost per statement
            # (~1 ms measured, with the registration) is the whole cost of a small batch.
            # Running the query later over many batches at once would be cheaper, but an
            # event the query fails on would then fail a later call, not its own batch.
            # The batch stays registered until the next one (no second registration).
            con = self._con
            con.register("events", table)
            try:
                con.execute(f"INSERT INTO asl_pending {self._as_kept}")
            except duckdb.Error as exc:
                raise InvalidArgument(
                    f"SqlProjection {self.name!r}: the query failed on events "
                    f"{batch.first_sequence}..{batch.last_sequence}: {exc}"
                ) from None
            self._pending_events += table.num_rows
            if self._pending_events >= max(FOLD_EVERY_EVENTS, self._kept_rows):
                self._fold()

    def _keep(self, table: pa.Table) -> None:
        fed = self._fed
        fed.append(table)
        self._loose += 1
        if self._loose >= JOIN_EVERY_BATCHES:
            fed[-self._loose :] = [pa.concat_tables(fed[-self._loose :]).combine_chunks()]
            self._loose = 0

    def _fold(self) -> None:
        """Merge the waiting per-batch rows into the kept result (under the lock)."""
        if not self._pending_events:
            return
        con = self._con
        con.begin()
        try:
            con.execute(self._merge)
            con.execute("DELETE FROM asl_pending")
            con.commit()
        except BaseException:
            con.rollback()
            raise
        self._pending_events = 0
        self._kept_rows = self._count("asl_kept")

    def _count(self, table: str) -> int:
        # fetchall, not fetchone: DuckDB keeps the connection busy until a result is read
        # to its end.
        rows = self._con.execute(f"SELECT count(*) FROM {table}").fetchall()
        return int(rows[0][0])

    # -- reading -------------------------------------------------------------------------

    def state(self, key: Any = None) -> pd.DataFrame:
        """The result as a DataFrame (a copy), or with ``key`` the rows whose first column
        equals it.

        Raises:
            InvalidArgument: on the recompute path, the query fails on the events fed.
        """
        with self._lock:
            if self._result is None or self._volatile:
                self._result = self._compute()
            frame = self._result
        if key is None:
            return frame.copy()
        rows: pd.DataFrame = frame[frame.iloc[:, 0] == key]
        return rows.reset_index(drop=True)

    def _compute(self) -> pd.DataFrame:
        con = self._con
        frame: pd.DataFrame
        if self.incremental:
            self._fold()
            frame = con.sql("SELECT * FROM asl_kept").df()
            # The query's own names (duplicates made unique as DuckDB makes them).
            frame.columns = self._columns
            return frame
        con.register("events", self._events())
        try:
            frame = con.sql(self._text).df()
            return frame
        except duckdb.Error as exc:
            raise InvalidArgument(
                f"SqlProjection {self.name!r}: the query failed over the events fed: {exc}"
            ) from None
        finally:
            con.register("events", _EMPTY)

    def _events(self) -> pa.Table:
        return pa.concat_tables(self._fed) if self._fed else _EMPTY

    # -- durability ----------------------------------------------------------------------

    def dump_state(self) -> Any:
        """The state as JSON-able data: the result's rows (incremental) or the fed events'
        rows (recompute), with what they were computed for."""
        with self._lock:
            saved: dict[str, Any] = {
                "format": _STATE_FORMAT,
                "query": self.query,
                "event_types": self._event_types_list(),
            }
            if not self.incremental:
                return {**saved, "path": "recompute", "events": _events_to_json(self._events())}
            self._fold()
            texts = ", ".join(f"CAST(c{i} AS VARCHAR)" for i in range(len(self._types)))
            rows = self._con.execute(f"SELECT {texts} FROM asl_kept").fetchall()
            columns = [
                {"type": kind, "values": [row[i] for row in rows]}
                for i, kind in enumerate(self._types)
            ]
            return {**saved, "path": "incremental", "columns": columns}

    def load_state(self, data: Any) -> None:
        """Take back what ``dump_state`` returned.

        Raises:
            InvalidArgument: the data is not a SqlProjection state of this query, these event
                types and result types (the projection is then unchanged).
        """
        path = "incremental" if self.incremental else "recompute"
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
            raise InvalidArgument(f"SqlProjection {self.name!r}: not a saved SqlProjection state")
        if data.get("query") != self.query or data.get("event_types") != self._event_types_list():
            raise InvalidArgument(
                f"SqlProjection {self.name!r}: the saved state is of another query or other "
                "event types; rebuild it from the events instead"
            )
        if data.get("path") != path:
            raise InvalidArgument(f"SqlProjection {self.name!r}: the saved state is not {path}")
        try:
            if not self.incremental:
                events = _events_from_json(data["events"])
            else:
                types = [c["type"] for c in data["columns"]]
                loaded = pa.table(
                    {
                        f"c{i}": pa.array(c["values"], pa.string())
                        for i, c in enumerate(data["columns"])
                    }
                )
        except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
            raise InvalidArgument(
                f"SqlProjection {self.name!r}: the saved state is damaged: {exc!r}"
            ) from None
        with self._lock:
            if not self.incremental:
                self._fed, self._loose = [events], 0
                self._result = None
                return
            if types != self._types:
                raise InvalidArgument(
                    f"SqlProjection {self.name!r}: the saved result has columns of types "
                    f"{types}, the query gives {self._types}"
                )
            casts = ", ".join(f"CAST(c{i} AS {kind}) AS c{i}" for i, kind in enumerate(types))
            con = self._con
            con.register("asl_loaded", loaded)
            try:
                con.begin()
                try:
                    con.execute(
                        f"CREATE OR REPLACE TABLE asl_kept AS SELECT {casts} FROM asl_loaded"
                    )
                    con.execute("DELETE FROM asl_pending")
                    con.commit()
                except duckdb.Error as exc:
                    con.rollback()
                    raise InvalidArgument(
                        f"SqlProjection {self.name!r}: the saved result does not read back: {exc}"
                    ) from None
            finally:
                con.unregister("asl_loaded")
            self._pending_events = 0
            self._kept_rows = self._count("asl_kept")
            self._result = None

    def _event_types_list(self) -> list[str] | None:
        return None if self.event_types is None else list(self.event_types)


# -- reading the query -------------------------------------------------------------------


def _single_select(con: duckdb.DuckDBPyConnection, query: str, name: str) -> str:
    """``query`` as the text of its one SELECT, without trailing ``;`` or comments (the
    text is run inside a larger statement, where those would end or break it)."""
    try:
        statements = con.extract_statements(query)
        tokens = duckdb.tokenize(query)
    except duckdb.Error as exc:
        raise InvalidArgument(
            f"SqlProjection {name!r}: the query must be one SELECT reading from `events`, "
            f"and it does not parse: {exc}"
        ) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidArgument(
            f"SqlProjection {name!r}: the query must be a single SELECT reading from "
            f"`events`, not {query!r}"
        )
    ends = [start for start, _ in tokens[1:]] + [len(query)]
    end = len(query)
    for (start, kind), next_start in zip(reversed(tokens), reversed(ends), strict=True):
        if kind != duckdb.token_type.comment and query[start] != ";":
            end = next_start
            break
    return query[:end].rstrip()


def _parse_tree(con: duckdb.DuckDBPyConnection, text: str) -> dict[str, Any] | None:
    """DuckDB's parse tree of the SELECT ``text`` (its JSON form), or None if DuckDB
    cannot serialize it."""
    rows = con.execute("SELECT json_serialize_sql(?)", [text]).fetchall()
    tree = json.loads(rows[0][0])
    return None if tree.get("error") else dict(tree["statements"][0]["node"])


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every node of a parse tree (or part of one), depth first."""
    stack = [tree]
    while stack:
        part = stack.pop()
        if isinstance(part, list):
            stack.extend(reversed(part))
        elif isinstance(part, dict):
            yield part
            stack.extend(reversed(list(part.values())))


def _reads_events(tree: Any) -> bool:
    return any(
        node.get("type") == "BASE_TABLE" and str(node.get("table_name", "")).lower() == "events"
        for node in _nodes(tree)
    )


def _changes_per_run(node: dict[str, Any]) -> str | None:
    """The name of the clock or random function ``node`` calls, if it is one."""
    _, volatile = _function_kinds()
    names = node.get("column_names") or []
    if node.get("class") == "COLUMN_REF" and len(names) == 1 and str(names[0]).lower() in _CLOCK:
        return str(names[0])  # current_timestamp and friends, written without parentheses
    name = str(node.get("function_name", "")).lower()
    return f"{name}()" if node.get("class") == "FUNCTION" and name in volatile else None


@functools.cache
def _function_kinds() -> tuple[frozenset[str], frozenset[str]]:
    """The names of DuckDB's aggregate functions, and of those whose value changes from
    one run to the next."""
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT DISTINCT function_name, function_type, stability FROM duckdb_functions()"
        ).fetchall()
    finally:
        con.close()
    aggregates = frozenset(str(n).lower() for n, kind, _ in rows if kind == "aggregate")
    volatile = {str(n).lower() for n, _, stability in rows if stability == "VOLATILE"}
    return aggregates | {"count_star"}, frozenset(volatile | _CLOCK)


def _merge_plan(
    tree: dict[str, Any] | None, text: str
) -> tuple[tuple[str, ...] | None, str | None]:
    """How each result column merges ("key", "count", "sum", "min", "max"), or None and
    why the query's results over parts of the events do not merge."""
    if tree is None:
        return None, "DuckDB cannot give this query's parse tree"
    if tree.get("type") != "SELECT_NODE":
        return None, "it combines queries (UNION, INTERSECT, EXCEPT or a recursive CTE)"
    if (tree.get("cte_map") or {}).get("map"):
        return None, "it has a WITH clause (CTE)"
    modifiers = tree.get("modifiers") or []
    if modifiers:
        return None, _MODIFIERS.get(modifiers[0].get("type"), "a modifier needs the whole result")
    if tree.get("having") is not None:
        return None, "HAVING filters on totals over all the events"
    if tree.get("qualify") is not None:
        return None, "QUALIFY filters on window results over all the events"
    if tree.get("sample") is not None:
        return None, "USING SAMPLE picks rows at random"
    source = tree.get("from_table") or {}
    if (
        source.get("type") != "BASE_TABLE"
        or str(source.get("table_name", "")).lower() != "events"
        or str(source.get("schema_name", "")).lower() not in ("", "main")
        or source.get("catalog_name")
        or source.get("at_clause") is not None
    ):
        return None, "it reads more than the events table alone (a join, subquery or function)"
    where = tree.get("where_clause")
    if where is not None and (trouble := _trouble(where)):
        return None, f"its WHERE clause has {trouble}"
    items: list[dict[str, Any]] = tree.get("select_list") or []
    kinds: list[str] = []
    for number, item in enumerate(items, 1):
        kind, why = _column_kind(item, text, number)
        if kind is None:
            return None, why
        kinds.append(kind)
    groups: list[dict[str, Any]] = tree.get("group_expressions") or []
    if groups:
        if tree.get("group_sets") != [list(range(len(groups)))]:
            return None, "GROUPING SETS, ROLLUP and CUBE are not merged"
        alias = str(source.get("alias") or "").lower()
        for group in groups:
            at = _group_column(group, items, alias)
            if at is None or kinds[at] != "key":
                return None, (
                    f"GROUP BY {_snippet(text, group)} is not in the select list, so the "
                    "rows of different groups could not be told apart when merging"
                )
    elif tree.get("aggregate_handling") != "FORCE_AGGREGATES" and "key" in kinds:
        at = kinds.index("key")
        return None, (
            f"{_snippet(text, items[at])} is neither grouped nor aggregated (without "
            "GROUP BY, only count, sum, min and max merge)"
        )
    return tuple(kinds), None


def _column_kind(item: dict[str, Any], text: str, number: int) -> tuple[str | None, str | None]:
    """How one select item merges, or None and why it does not."""
    # An operator's recorded place is its symbol alone: name the item by number instead.
    what = f"select item {number}" if item.get("is_operator") else _snippet(text, item)
    name = str(item.get("function_name", "")).lower()
    aggregates, _ = _function_kinds()
    if item.get("class") != "FUNCTION" or name not in aggregates:
        trouble = _trouble(item)
        return ("key", None) if trouble is None else (None, f"{what} has {trouble}")
    merge = _MERGES.get(name)
    if merge is None:
        return (
            None,
            f"{what}: {name}() does not merge from per-batch results (count, sum, min and max do)",
        )
    if item.get("distinct"):
        return None, f"{what}: DISTINCT in an aggregate needs every value seen"
    if item.get("export_state") or (item.get("order_bys") or {}).get("orders"):
        return None, f"{what}: an aggregate with ORDER BY or EXPORT_STATE is not merged"
    arguments = [a.get("expression") for a in item.get("arguments") or []]
    if len(arguments) != (0 if name == "count_star" else 1) and not (
        name == "count" and not arguments
    ):
        return None, f"{what}: {name}() of {len(arguments)} arguments is not merged"
    for part in [*arguments, item.get("filter")]:
        if part is not None and (trouble := _trouble(part)):
            return None, f"{what} has {trouble}"
    return merge, None


def _trouble(node: Any) -> str | None:
    """What in an expression stops merging: a subquery, a window function, an aggregate
    inside an expression, ``*``, or a volatile function."""
    aggregates, _ = _function_kinds()
    for part in _nodes(node):
        kind = part.get("class")
        if kind == "SUBQUERY":
            return "a subquery"
        if kind == "WINDOW":
            return "a window function"
        if kind == "STAR":
            return "* or COLUMNS()"
        if changing := _changes_per_run(part):
            return f"{changing}, which gives a new value on each run"
        name = str(part.get("function_name", "")).lower()
        if kind == "FUNCTION" and name in aggregates:
            shown = "count(*)" if name == "count_star" else f"{name}()"
            return f"{shown} inside an expression (only a bare count/sum/min/max merges)"
    return None


def _group_column(group: dict[str, Any], items: list[dict[str, Any]], alias: str) -> int | None:
    """Which select item a GROUP BY expression is: by position, by being the same
    expression, or by its alias (when the alias is not also an event column)."""
    if group.get("class") == "CONSTANT":
        literal = group.get("literal") or {}
        if "INT" in str(literal.get("kind", "")):
            at = int(literal.get("text", 0)) - 1
            return at if 0 <= at < len(items) else None
    same = _canonical(group, alias)
    for at, item in enumerate(items):
        if _canonical(item, alias) == same:
            return at
    names = group.get("column_names") or []
    if group.get("class") == "COLUMN_REF" and len(names) == 1:
        name = str(names[0]).lower()
        named = [at for at, item in enumerate(items) if str(item.get("alias", "")).lower() == name]
        if len(named) == 1 and name not in _EVENT_COLUMNS:
            return named[0]
    return None


def _canonical(node: Any, alias: str) -> str:
    """An expression as text that ignores where it was written, aliases, identifier case
    and a qualifying table name."""

    def clean(part: Any) -> Any:
        if isinstance(part, list):
            return [clean(x) for x in part]
        if not isinstance(part, dict):
            return part
        out = {
            k: clean(v)
            for k, v in part.items()
            if k not in ("query_location", "query_location_length", "alias")
        }
        if part.get("class") == "COLUMN_REF":
            names = [str(n).lower() for n in part.get("column_names") or []]
            if len(names) == 2 and names[0] in ("events", alias):
                names = names[1:]
            out["column_names"] = names
        return out

    return json.dumps(clean(node), sort_keys=True)


def _snippet(text: str, node: dict[str, Any]) -> str:
    """The part of the query text an expression came from."""
    at, length = node.get("query_location"), node.get("query_location_length")
    if isinstance(at, int) and isinstance(length, int) and length > 0:
        return text.encode()[at : at + length].decode(errors="replace")
    return str(node.get("function_name") or node.get("column_names") or "an expression")


def _merge_sql(kinds: Sequence[str], types: Sequence[str]) -> str:
    """The statement that merges the waiting per-batch rows into the kept result.

    Sums are cast back to the query's own type (a sum of counts or of HUGEINT sums would
    otherwise widen), so the kept result has exactly the types of the query.
    """
    columns = []
    for i, (kind, type_name) in enumerate(zip(kinds, types, strict=True)):
        column = f"c{i}"
        if kind == "key":
            columns.append(column)
        elif kind in ("count", "sum"):
            columns.append(f"CAST(sum({column}) AS {type_name}) AS {column}")
        else:
            columns.append(f"{kind}({column}) AS {column}")
    keys = [f"c{i}" for i, kind in enumerate(kinds) if kind == "key"]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return (
        f"CREATE OR REPLACE TABLE asl_kept AS SELECT {', '.join(columns)} "
        f"FROM (FROM asl_kept UNION ALL FROM asl_pending){group}"
    )


# -- the recompute path's durable events ---------------------------------------------------


def _events_to_json(table: pa.Table) -> dict[str, list[Any]]:
    """Events as JSON columns: ids as hex, times as microseconds since the epoch, payload
    and metadata as their JSON text."""
    out: dict[str, list[Any]] = {}
    for field in EVENT_SCHEMA:
        column = table.column(field.name).combine_chunks()
        if isinstance(column, pa.ExtensionArray):
            column = column.storage
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        values = column.to_pylist()
        if pa.types.is_fixed_size_binary(column.type):
            values = [v.hex() for v in values]
        out[field.name] = values
    return out


def _events_from_json(data: dict[str, list[Any]]) -> pa.Table:
    arrays = []
    for field in EVENT_SCHEMA:
        values, kind = data[field.name], field.type
        if isinstance(kind, pa.BaseExtensionType):
            storage = kind.storage_type
            if pa.types.is_fixed_size_binary(storage):
                values = [bytes.fromhex(v) for v in values]
            arrays.append(pa.ExtensionArray.from_storage(kind, pa.array(values, storage)))
        elif pa.types.is_timestamp(kind):
            arrays.append(pa.array(values, pa.int64()).cast(kind))
        else:
            arrays.append(pa.array(values, kind))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
