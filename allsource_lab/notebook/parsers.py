"""The arguments of each ``%allsource`` subcommand: one function each, declaring them on
the parser :mod:`~allsource_lab.notebook.registry` builds (which also gives ``-o NAME``).

Times are ISO-8601 text with a zone (``2026-01-31T12:00:00Z``); the store checks them,
so a bad one is reported the way ``store.events(...)`` reports it. Every subcommand takes
``-o NAME`` to bind its result to a Python variable.

>>> parser = new_parser("state", "an entity's state")
>>> state_arguments(parser)
>>> parser.parse_args(["order-17", "--as-of", "2026-01-01T00:00:00Z"]).as_of
'2026-01-01T00:00:00Z'
"""

from __future__ import annotations

import argparse

from allsource_lab._argtypes import count, positive
from allsource_lab.notebook.arguments import MagicArgumentParser, bound, output_name

__all__ = [
    "PROG",
    "append_arguments",
    "events_arguments",
    "ingest_arguments",
    "new_parser",
    "no_arguments",
    "open_arguments",
    "output_option",
    "pipelines_arguments",
    "replay_arguments",
    "schema_arguments",
    "sql_arguments",
    "state_arguments",
    "tail_arguments",
    "timetravel_arguments",
    "window_arguments",
]

PROG = "%allsource"

_TIME = "TIME"


def output_option(parser: argparse.ArgumentParser) -> None:
    """``-o NAME``: bind the result to a Python variable."""
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


def open_arguments(p: MagicArgumentParser) -> None:
    """``open [PATH] [--memory] [--fsync F] [--read-only] [--recovery R]``."""
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


def append_arguments(p: MagicArgumentParser) -> None:
    """``append TYPE ENTITY [JSON] [--metadata] [--time] [--event-id] [--expected-version]``."""
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


def ingest_arguments(p: MagicArgumentParser) -> None:
    """``ingest SOURCE`` and how its columns map to events."""
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
        # `events --type` takes a type, so here the column option is --type-col; --type
        # still works (notebooks wrote it) but is deprecated, and --help says so.
        "--type-col",
        "--type",
        dest="type_col",
        default="event_type",
        metavar="COL",
        help="column of event types (default: event_type); --type is a deprecated alias of "
        "--type-col. One type for every row: --event-type",
    )
    kind.add_argument("--event-type", metavar="TYPE", help="one event type for every row")
    p.add_argument(
        "--entity-col",
        "--entity",
        dest="entity_col",
        default="entity_id",
        metavar="COL",
        help="column of entity ids (default: entity_id); --entity is a deprecated alias",
    )
    p.add_argument(
        "--time-col",
        "--time",
        dest="time_col",
        metavar="COL",
        help="column of event times (default: timestamp if present, else the time of ingest); "
        "--time is a deprecated alias",
    )
    p.add_argument(
        "--payload-cols",
        metavar="A,B,...",
        help="columns making up the payload (default: a 'payload' column, else every other one)",
    )
    p.add_argument(
        "--id-col",
        metavar="COL",
        help="column of event ids (UUIDs); default: an id derived from each row, so "
        "re-running the cell stores nothing twice",
    )
    p.add_argument("--timezone", metavar="ZONE", help="zone of times written without one")
    p.add_argument("--batch-size", type=positive, metavar="N", help="rows per atomic batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def events_arguments(p: MagicArgumentParser) -> None:
    """``events`` filters: entity, type, event time, bitemporal moments, paging."""
    p.add_argument("--entity", metavar="ID", help="only this entity's events")
    p.add_argument("--type", dest="event_type", metavar="TYPE", help="only events of this type")
    p.add_argument("--since", metavar=_TIME, help="event time >= TIME")
    p.add_argument("--until", metavar=_TIME, help="event time < TIME")
    _moments(p)
    p.add_argument("--after", type=count, metavar="SEQ", help="sequence > SEQ (next page)")
    p.add_argument("--limit", type=count, metavar="N", help="at most N events")
    p.add_argument("--reverse", action="store_true", help="newest first")


def state_arguments(p: MagicArgumentParser) -> None:
    """``state ENTITY [--as-of] [--known-at]``."""
    p.add_argument("entity_id", metavar="ENTITY", help="the entity id")
    _moments(p)


def sql_arguments(p: MagicArgumentParser) -> None:
    """``sql [SQL...]``: the magic keeps the text after the options as written."""
    p.add_argument(
        "sql",
        nargs="*",
        metavar="SQL",
        help="the query, after the options (or in the cell body, which is never parsed as options)",
    )


def schema_arguments(p: MagicArgumentParser) -> None:
    """``schema ACTION ...``: one sub-parser per action, each with its own ``-o``."""
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, summary: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=summary, description=summary)
        output_option(sub)
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


def replay_arguments(p: MagicArgumentParser) -> None:
    """``replay PROJECTION [--since] [--until] [--type] [--batch-size] [--wait]``."""
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


def window_arguments(p: MagicArgumentParser) -> None:
    """``window [TYPE...]``: the window's kind, length, keys, aggregates and bounds."""
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


def pipelines_arguments(p: MagicArgumentParser) -> None:
    """``pipelines [NAME] [--flush]``."""
    p.add_argument("name", nargs="?", metavar="NAME", help="show this pipeline's results")
    p.add_argument("--flush", action="store_true", help="close its open windows first")


def timetravel_arguments(p: MagicArgumentParser) -> None:
    """``timetravel ENTITY``."""
    p.add_argument("entity_id", metavar="ENTITY", help="the entity id")


def tail_arguments(p: MagicArgumentParser) -> None:
    """``tail [--rows N]``."""
    p.add_argument("--rows", type=positive, metavar="N", help="rows kept (default: tail_rows)")


def no_arguments(p: MagicArgumentParser) -> None:
    """A subcommand with no arguments of its own."""


def new_parser(name: str, summary: str) -> MagicArgumentParser:
    """An empty parser for subcommand ``name``: its ``--help`` starts with ``usage:
    %allsource NAME`` and describes it with ``summary``.

    >>> new_parser("stats", "counts and facts").format_usage()
    'usage: %allsource stats [-h]\\n'
    """
    return MagicArgumentParser(
        prog=f"{PROG} {name}",
        description=summary,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
