"""The arguments of each ``%allsource`` subcommand: one parser each, with its ``--help``.

Times are ISO-8601 text with a zone (``2026-01-31T12:00:00Z``); the store checks them,
so a bad one is reported the way ``store.events(...)`` reports it. Every subcommand takes
``-o NAME`` to bind its result to a Python variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from allsource_lab._argtypes import count, positive
from allsource_lab.notebook.arguments import MagicArgumentParser, bound, output_name

__all__ = ["PROG", "SUMMARIES", "build_parsers"]

PROG = "%allsource"

# One line per subcommand, in the order the overview lists them.
SUMMARIES: dict[str, str] = {
    "open": "open a store folder (created if missing) or a memory store; it becomes current",
    "close": "close the current store",
    "append": "append one event: TYPE ENTITY and a JSON payload (on the line or in the cell)",
    "ingest": "append the rows of a DataFrame variable or a CSV, JSON lines or Parquet file",
    "events": "list events, filtered by entity, type and time (bitemporal)",
    "state": "an entity's state (its payloads merged), now or at a moment",
    "sql": "DuckDB SQL over the view events; {name} binds a Python variable as a parameter",
    "schema": "JSON Schemas: register, check, show, list, compat, panel",
    "replay": "rebuild a projection from history (with progress)",
    "window": "window analytics: tumbling, hopping or session windows with aggregates",
    "projections": "the store's live projections and where they stand",
    "pipelines": "the live pipelines and their stats, or one pipeline's results",
    "stats": "counts and facts about the current store",
    "verify": "recompute every checksum and check the log's invariants",
    "checkpoint": "seal the write-ahead log's tail into a Parquet segment",
    "compact": "merge small segments",
    "explore": "an interactive explorer of the store (widget)",
    "timetravel": "a slider through an entity's history (widget)",
    "tail": "a live tail of new events (widget)",
}

_TIME = "TIME"


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        type=output_name,
        metavar="NAME",
        help="bind the result (not its display) to the Python variable NAME",
    )


def _moments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of", metavar=_TIME, help="only events whose event time is <= TIME (ISO-8601)"
    )
    parser.add_argument("--known-at", metavar=_TIME, help="only events recorded by TIME")


def _open(p: MagicArgumentParser) -> None:
    p.add_argument("path", nargs="?", metavar="PATH", help="the store folder")
    p.add_argument(
        "--memory",
        action="store_true",
        help="an in-memory store (the default without PATH, unless the environment "
        "variable ALLSOURCE_DEFAULT_STORE names a folder: `make lab` sets it to a demo store)",
    )
    p.add_argument(
        "--fsync",
        choices=("always", "interval", "never"),
        help="when appends reach the disk (default: interval, every 0.1 s)",
    )
    p.add_argument("--read-only", action="store_true", help="open without writing")
    p.add_argument(
        "--recovery",
        choices=("truncate_tail", "strict", "salvage"),
        help="what to do with a damaged log (default: truncate_tail)",
    )


def _append(p: MagicArgumentParser) -> None:
    p.add_argument("event_type", metavar="TYPE", help="the event type, e.g. order.placed")
    p.add_argument("entity_id", metavar="ENTITY", help="the entity id, e.g. order-17")
    p.add_argument(
        "payload",
        nargs="?",
        metavar="JSON",
        help="the payload, a JSON object (default: the cell body, else {})",
    )
    p.add_argument("--metadata", metavar="JSON", help="a JSON object of metadata")
    p.add_argument("--time", metavar=_TIME, help="the event time (default: now)")
    p.add_argument("--event-id", metavar="UUID", help="an id that makes a retry idempotent")
    p.add_argument(
        "--expected-version",
        type=count,
        metavar="N",
        help="refuse unless the entity is at version N (0: it must not exist yet)",
    )


def _ingest(p: MagicArgumentParser) -> None:
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="a DataFrame or pyarrow Table variable, or a .csv, .jsonl or .parquet file",
    )
    p.add_argument(
        "--format", choices=("csv", "jsonl", "parquet"), help="the file's format (default: suffix)"
    )
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--type",
        "--type-col",
        dest="type_col",
        default="event_type",
        metavar="COL",
        help="column of event types (default: event_type)",
    )
    kind.add_argument("--event-type", metavar="TYPE", help="one event type for every row")
    p.add_argument(
        "--entity",
        "--entity-col",
        dest="entity_col",
        default="entity_id",
        metavar="COL",
        help="column of entity ids (default: entity_id)",
    )
    p.add_argument(
        "--time",
        "--time-col",
        dest="time_col",
        metavar="COL",
        help="column of event times (default: timestamp if present, else the time of ingest)",
    )
    p.add_argument(
        "--payload-cols",
        metavar="A,B,...",
        help="columns making up the payload (default: a 'payload' column, else every other one)",
    )
    p.add_argument("--timezone", metavar="ZONE", help="zone of times written without one")
    p.add_argument("--batch-size", type=positive, metavar="N", help="rows per atomic batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _events(p: MagicArgumentParser) -> None:
    p.add_argument("--entity", metavar="ID", help="only this entity's events")
    p.add_argument("--type", dest="event_type", metavar="TYPE", help="only events of this type")
    p.add_argument("--since", metavar=_TIME, help="event time >= TIME")
    p.add_argument("--until", metavar=_TIME, help="event time < TIME")
    _moments(p)
    p.add_argument("--after", type=count, metavar="SEQ", help="sequence > SEQ (next page)")
    p.add_argument("--limit", type=count, metavar="N", help="at most N events")
    p.add_argument("--reverse", action="store_true", help="newest first")


def _state(p: MagicArgumentParser) -> None:
    p.add_argument("entity_id", metavar="ENTITY", help="the entity id")
    _moments(p)


def _sql(p: MagicArgumentParser) -> None:
    p.add_argument(
        "sql",
        nargs="*",
        metavar="SQL",
        help="the query, after the options (or in the cell body, which is never parsed as options)",
    )


def _schema(p: MagicArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, summary: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=summary, description=summary)
        _output(sub)
        return sub

    text = "the schema as JSON, or $name of a dict (default: the cell body)"
    register = action("register", "register a schema as the subject's next version")
    register.add_argument("subject", metavar="SUBJECT", help="the event type")
    register.add_argument("schema", nargs="?", metavar="SCHEMA", help=text)
    register.add_argument("--compat", metavar="MODE", help="set the subject's mode first")
    check = action("check", "would this schema be accepted as the next version? (and why not)")
    check.add_argument("subject", metavar="SUBJECT", help="the event type")
    check.add_argument("schema", nargs="?", metavar="SCHEMA", help=text)
    show = action("show", "a subject's newest schema, or one version")
    show.add_argument("subject", metavar="SUBJECT", help="the event type")
    show.add_argument("--version", type=positive, metavar="N", help="this version")
    action("list", "every subject with its versions and compatibility mode")
    compat = action("compat", "show or set a subject's (or the default) compatibility mode")
    compat.add_argument("subject", nargs="?", metavar="SUBJECT", help="the event type")
    compat.add_argument(
        "mode", nargs="?", metavar="MODE", help="NONE, BACKWARD, FORWARD, FULL, ..._TRANSITIVE"
    )
    compat.add_argument(
        "--default", action="store_true", help="the store-wide default instead of a subject"
    )
    action("panel", "an interactive schema panel (widget)")


def _replay(p: MagicArgumentParser) -> None:
    p.add_argument(
        "projection",
        metavar="PROJECTION",
        help="a projection in store.projections, EventCounter, EntitySnapshots, or a "
        "variable holding a Projection",
    )
    p.add_argument("--since", type=bound, metavar="SEQ|TIME", help="from this sequence or time")
    p.add_argument("--until", type=bound, metavar="SEQ|TIME", help="before this sequence or time")
    p.add_argument(
        "--type",
        dest="event_types",
        action="append",
        metavar="TYPE",
        help="only this event type (repeat for more)",
    )
    p.add_argument("--batch-size", type=positive, default=10_000, metavar="N", help="per batch")
    p.add_argument("--wait", action="store_true", help="wait for the end, then show it")


def _window(p: MagicArgumentParser) -> None:
    p.add_argument("event_type", nargs="*", metavar="TYPE", help="event types (default: all)")
    p.add_argument("--every", default="1h", metavar="DURATION", help="window length (30s, 5m...)")
    p.add_argument(
        "--kind", choices=("tumbling", "hopping", "session"), default="tumbling", help="window kind"
    )
    p.add_argument("--hop", metavar="DURATION", help="hopping: one window every DURATION")
    p.add_argument("--gap", metavar="DURATION", help="session: the silence that ends one")
    p.add_argument(
        "--by",
        action="append",
        metavar="KEY",
        help="group by entity_id, event_type or payload.path (repeat for more)",
    )
    p.add_argument(
        "--agg",
        action="append",
        metavar="FIELD:AGG[,AGG]",
        help="aggregates, e.g. payload.amount:sum,avg or entity_id:count_distinct (repeat), "
        'or a JSON object {"payload.amount": ["sum"]}',
    )
    p.add_argument("--since", metavar=_TIME, help="windows starting at or after TIME")
    p.add_argument("--until", metavar=_TIME, help="windows starting before TIME")
    _moments(p)
    p.add_argument("--fill", action="store_true", help="add empty windows with zero counts")
    p.add_argument("--chart", action="store_true", help="also draw a chart (Vega-Lite)")


def _pipelines(p: MagicArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="show this pipeline's results")
    p.add_argument("--flush", action="store_true", help="close its open windows first")


def _timetravel(p: MagicArgumentParser) -> None:
    p.add_argument("entity_id", metavar="ENTITY", help="the entity id")


def _tail(p: MagicArgumentParser) -> None:
    p.add_argument("--rows", type=positive, metavar="N", help="rows kept (default: tail_rows)")


def _nothing(p: MagicArgumentParser) -> None:
    """A subcommand with no arguments of its own."""


_ARGUMENTS: dict[str, Callable[[MagicArgumentParser], None]] = {
    "open": _open,
    "append": _append,
    "ingest": _ingest,
    "events": _events,
    "state": _state,
    "sql": _sql,
    "schema": _schema,
    "replay": _replay,
    "window": _window,
    "pipelines": _pipelines,
    "timetravel": _timetravel,
    "tail": _tail,
}


def build_parsers() -> dict[str, MagicArgumentParser]:
    """A parser for every subcommand in :data:`SUMMARIES`.

    >>> parsers = build_parsers()
    >>> parsers["events"].parse_args(["--entity", "o-1", "--limit", "5"]).limit
    5
    """
    parsers = {}
    for name, summary in SUMMARIES.items():
        parser = MagicArgumentParser(
            prog=f"{PROG} {name}",
            description=summary,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _ARGUMENTS.get(name, _nothing)(parser)
        if name != "schema":  # each schema action has its own -o
            _output(parser)
        parsers[name] = parser
    return parsers
