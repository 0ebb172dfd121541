"""The store subcommands: open, close, append, events, state, sql, window, stats, verify,
checkpoint, compact.

Each takes the :class:`Context` and its parsed arguments and returns an
:class:`Outcome`: a view to display (which names the current store) and the plain
result ``-o`` binds — the ``EventStore``, an ``Event``, the ``EventFrame``, the state
dict, a DataFrame, the stats dict, the ``IntegrityReport``, the checkpoint dict.
"""

from __future__ import annotations

import argparse
import difflib
import os
from typing import Any

import orjson
from IPython.core.error import UsageError

from allsource_lab.display.views import (
    CheckpointView,
    CompactionView,
    EventsView,
    IntegrityView,
    StateView,
    StatsView,
    StoreView,
    TableView,
    WindowView,
)
from allsource_lab.errors import InvalidArgument, NotFound
from allsource_lab.notebook.errors import LIST_ENTITIES
from allsource_lab.notebook.session import Context, Outcome
from allsource_lab.notebook.sqlbind import bind

__all__ = [
    "append",
    "checkpoint",
    "close",
    "compact",
    "events",
    "json_object",
    "near_entities",
    "open_store",
    "sql",
    "state",
    "stats",
    "verify",
    "window",
]


def json_object(text: str, what: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object.

    Raises:
        UsageError: it is not JSON, or not an object.

    >>> json_object('{"amount": 42.5}', "the payload")
    {'amount': 42.5}
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(
            f"{what} is not JSON ({exc}); give an object such as '{{\"amount\": 42.5}}'"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


DEFAULT_STORE_VARIABLE = "ALLSOURCE_DEFAULT_STORE"


def open_store(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``open [PATH] [--memory] [--fsync F] [--read-only] [--recovery R]``."""
    if args.path is not None and args.memory:
        raise UsageError("give a PATH or --memory, not both")
    if args.path is None and not args.memory:
        # `make lab` and Binder build a demo store and name it here.
        args.path = os.environ.get(DEFAULT_STORE_VARIABLE) or None
    if args.path is None and args.read_only:
        raise UsageError("--read-only needs a PATH: a new memory store has nothing to read")
    settings = {k: v for k, v in (("fsync", args.fsync), ("recovery", args.recovery)) if v}
    store, note = ctx.session.open(args.path, args.read_only, settings)
    return Outcome(StoreView.of(store, note=note), store)


def close(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``close``: the current store is checkpointed and closed."""
    view = StoreView.of(ctx.store(), status="closed")
    return Outcome(view, ctx.session.close())


def append(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``append TYPE ENTITY [JSON]`` (or the JSON in the cell body)."""
    body = ctx.body()
    if args.payload is not None and body is not None:
        raise UsageError("give the payload on the line or in the cell body, not both")
    text = args.payload if args.payload is not None else body
    payload = {} if text is None else json_object(text, "the payload")
    metadata = None if args.metadata is None else json_object(args.metadata, "--metadata")
    store = ctx.store()
    event = store.append(
        args.event_type,
        args.entity_id,
        payload,
        metadata=metadata,
        timestamp=args.time,
        event_id=args.event_id,
        expected_version=args.expected_version,
    )
    return Outcome(EventsView([event], store=ctx.info(), source=store), event)


def events(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``events [--entity] [--type] [--since] [--until] [--as-of] [--known-at] ...``."""
    frame = ctx.store().events(
        entity_id=args.entity,
        event_type=args.event_type,
        since=args.since,
        until=args.until,
        as_of=args.as_of,
        known_at=args.known_at,
        after=args.after,
        limit=args.limit,
        reverse=args.reverse,
    )
    len(frame)  # pick the rows now, so a bad filter is reported here, not at display
    return Outcome(EventsView(frame, store=ctx.info()), frame)


# Entity ids a "did you mean" looks among: the entities of a bounded sample of rows, read
# through SQL (only the entity_id column), so a store of 10M ids is not scanned for a hint.
# Timed on a memory store of 1M events with 1M look-alike ids (order-0000000...; a one-off
# script calling near_entities, December): the SQL takes ~11 ms, difflib ~0.28 s over a
# 10,000-row sample but ~1.5 s over 100,000.
NEAR_NAMES_SAMPLE_ROWS = 10_000


def near_entities(store: Any, entity_id: str, n: int = 3) -> list[str]:
    """Up to ``n`` stored entity ids close to ``entity_id`` (difflib), looked for among
    the entities of ``NEAR_NAMES_SAMPLE_ROWS`` events (any): a hint, not a search.

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("order.placed", "order-17", {})
    >>> near_entities(store, "order-71"), near_entities(store, "zzz")
    (['order-17'], [])
    """
    query = (
        "select distinct entity_id from "
        f"(select entity_id from events limit {NEAR_NAMES_SAMPLE_ROWS})"
    )
    names = [row[0] for row in store.sql(query).fetchall()]
    return difflib.get_close_matches(entity_id, names, n=n)


def _not_found(store: Any, entity_id: str, exc: NotFound) -> NotFound:
    """``exc`` with near entity ids and a way to list them, when the entity has no event
    at all (at a moment before its first event, the name is right: ``exc`` as it is)."""
    if len(store.events(entity_id=entity_id, limit=1)):
        return exc
    near = near_entities(store, entity_id)
    guess = f"did you mean {', '.join(map(repr, near))}? " if near else ""
    return NotFound(f"{exc}; {guess}list entity ids with %allsource sql {LIST_ENTITIES}")


def state(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``state ENTITY [--as-of] [--known-at]``, with the last version folded in and the
    state before it."""
    store = ctx.store()
    try:
        view = StateView.of(store, args.entity_id, as_of=args.as_of, known_at=args.known_at)
    except NotFound as exc:
        raise _not_found(store, args.entity_id, exc) from None
    view.store = ctx.info()
    return Outcome(view, view.state)


def sql(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``sql`` with the query in the cell body (or after the options on the line).

    ``{name}`` placeholders bind Python variables as DuckDB parameters.
    """
    line_sql = args.sql.strip()
    body = ctx.body()
    if line_sql and body is not None:
        raise UsageError("give the SQL on the line or in the cell body, not both")
    text = body if body is not None else line_sql
    if not text:
        raise UsageError("no SQL given: put the query in the cell body (%%allsource sql)")
    query, params = bind(text, ctx.namespace)
    relation = ctx.store().sql(query, params or None)
    if relation is None:  # a statement without a result (CREATE, SET, ...)
        return Outcome(None, None)
    frame = relation.df()
    return Outcome(TableView(frame, query=text.strip(), store=ctx.info()), frame)


def _aggregates(specs: list[str] | None) -> dict[str, Any] | None:
    """``--agg`` values: ``FIELD:AGG[,AGG]`` or JSON objects, merged."""
    if not specs:
        return None
    merged: dict[str, Any] = {}
    for spec in specs:
        if spec.lstrip().startswith("{"):
            merged.update(json_object(spec, "--agg"))
            continue
        field, sep, names = spec.rpartition(":")
        aggs = [a.strip() for a in names.split(",") if a.strip()]
        if not sep or not field or not aggs:
            raise UsageError(
                f"--agg {spec!r} must be FIELD:AGG[,AGG] (e.g. payload.amount:sum,avg) or a "
                "JSON object"
            )
        merged[field] = aggs[0] if len(aggs) == 1 else aggs
    return merged


def window(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``window [TYPE...] --every D [--kind] [--hop] [--gap] [--by] [--agg] ...``."""
    types = args.event_type or None
    event_type = types[0] if types and len(types) == 1 else types
    by = args.by[0] if args.by and len(args.by) == 1 else args.by
    agg = _aggregates(args.agg)
    spec = {
        "event_type": event_type,
        "every": args.every,
        "kind": args.kind,
        "hop": args.hop,
        "gap": args.gap,
        "by": by,
        "agg": agg,
        "since": args.since,
        "until": args.until,
        "as_of": args.as_of,
        "known_at": args.known_at,
        "fill": args.fill,
    }
    frame = ctx.store().window(**spec)
    view = WindowView(frame, spec, store=ctx.info())
    if not args.chart:
        return Outcome(view, frame)
    try:
        from allsource_lab.notebook.charts import ChartAbove, window_chart
    except ImportError as exc:  # Altair is in the notebook extra
        raise UsageError(
            f"charts are not available in this installation ({exc}); "
            "pip install 'allsource-lab[notebook]'"
        ) from None
    try:
        chart = window_chart(frame)
    except InvalidArgument as exc:  # nothing to draw (no window or aggregate column)
        raise UsageError(f"cannot chart this result ({exc}); run it without --chart") from None
    # The chart is its own output, above the window's table: it draws every window, while
    # the table is cut at the display limit with the hint below it.
    return Outcome(ChartAbove(chart, view), frame)


def stats(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``stats``: ``store.stats()``."""
    facts = ctx.store().stats()
    return Outcome(StatsView(facts, store=ctx.info()), facts)


def verify(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``verify``: ``store.verify()`` (damage is reported, never raised)."""
    report = ctx.store().verify()
    return Outcome(IntegrityView(report, store=ctx.info()), report)


def checkpoint(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``checkpoint``: seal the tail into a segment."""
    sealed = ctx.store().checkpoint()
    return Outcome(CheckpointView(sealed, store=ctx.info()), sealed)


def compact(ctx: Context, args: argparse.Namespace) -> Outcome:
    """``compact``: merge small segments, where the store can."""
    store = ctx.store()
    merge = getattr(store, "compact", None)
    if not callable(merge):
        # Merging segments rewrites them and the manifest, which only the store may do:
        # say so rather than pretend.
        raise UsageError(
            "compaction is not available yet in this version of allsource_lab "
            "(EventStore has no compact()); nothing was changed"
        )
    result = merge()
    shown = result if isinstance(result, dict) or result is None else {"result": result}
    return Outcome(CompactionView(shown, store=ctx.info()), result)
